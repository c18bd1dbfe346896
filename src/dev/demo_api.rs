//! A small bookshop API for dev mode, with its own OpenAPI document, so a newcomer sees
//! real tools working offline: list (paginated), get, create (with validation), delete.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::RwLock;

use actix_web::{App, HttpResponse, HttpServer, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize)]
struct Book {
    id: String,
    title: String,
    author: String,
    year: i64,
    tags: Vec<String>,
}

struct Shelf {
    books: RwLock<BTreeMap<String, Book>>,
}

impl Shelf {
    fn seeded() -> Self {
        let seed = [
            (
                "bk_1",
                "The Pragmatic Programmer",
                "Hunt & Thomas",
                1999,
                "craft",
            ),
            (
                "bk_2",
                "Designing Data-Intensive Applications",
                "Kleppmann",
                2017,
                "systems",
            ),
            (
                "bk_3",
                "The Rust Programming Language",
                "Klabnik & Nichols",
                2018,
                "rust",
            ),
            (
                "bk_4",
                "Zero To Production In Rust",
                "Palmieri",
                2022,
                "rust",
            ),
            ("bk_5", "Release It!", "Nygard", 2007, "operations"),
            (
                "bk_6",
                "Site Reliability Engineering",
                "Beyer et al.",
                2016,
                "operations",
            ),
            (
                "bk_7",
                "Crafting Interpreters",
                "Nystrom",
                2021,
                "languages",
            ),
        ];
        let books = seed
            .into_iter()
            .map(|(id, title, author, year, tag)| {
                (
                    id.to_string(),
                    Book {
                        id: id.into(),
                        title: title.into(),
                        author: author.into(),
                        year,
                        tags: vec![tag.into()],
                    },
                )
            })
            .collect();
        Self {
            books: RwLock::new(books),
        }
    }
}

/// The credential the demo API expects, so dev mode shows the server's own token (not the
/// caller's) reaching the upstream.
pub const DEMO_API_TOKEN: &str = "demo-api-token";

/// Serves the demo API (and its document at `/openapi.json`) on `listener`.
pub fn serve(listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let shelf = web::Data::new(Shelf::seeded());
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(shelf.clone())
            .wrap(actix_web::middleware::from_fn(require_demo_token))
            .route("/openapi.json", web::get().to(document))
            .route("/v1/books", web::get().to(list_books))
            .route("/v1/books", web::post().to(create_book))
            .route("/v1/books/{id}", web::get().to(get_book))
            .route("/v1/books/{id}", web::delete().to(delete_book))
    })
    .workers(1)
    // The process stops when the server does (run_until_stopped handles the signals).
    .disable_signals()
    .listen(listener)?
    .run())
}

async fn require_demo_token(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let expected = format!("Bearer {DEMO_API_TOKEN}");
    let authorized = request.path() == "/openapi.json"
        || request
            .headers()
            .get("authorization")
            .is_some_and(|value| value.as_bytes() == expected.as_bytes());
    if authorized {
        next.call(request).await
    } else {
        let response = HttpResponse::Unauthorized()
            .json(json!({"error": "Unauthorized", "detail": "missing or wrong API token"}));
        Ok(request.into_response(response))
    }
}

#[derive(Deserialize)]
struct ListQuery {
    page: Option<u32>,
    limit: Option<u32>,
    tag: Option<String>,
}

async fn list_books(shelf: web::Data<Shelf>, query: web::Query<ListQuery>) -> HttpResponse {
    let page = query.page.unwrap_or(1).max(1) as usize;
    let limit = query.limit.unwrap_or(10).clamp(1, 100) as usize;
    let books = match shelf.books.read() {
        Ok(books) => books,
        Err(poisoned) => poisoned.into_inner(),
    };
    let matching: Vec<&Book> = books
        .values()
        .filter(|book| query.tag.as_ref().is_none_or(|tag| book.tags.contains(tag)))
        .collect();
    let total = matching.len();
    let items: Vec<&Book> = matching
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .collect();
    HttpResponse::Ok().json(json!({
        "items": items,
        "pagination": {"total_count": total, "max_page": total.div_ceil(limit).max(1)}
    }))
}

async fn get_book(shelf: web::Data<Shelf>, id: web::Path<String>) -> HttpResponse {
    let books = match shelf.books.read() {
        Ok(books) => books,
        Err(poisoned) => poisoned.into_inner(),
    };
    match books.get(id.as_str()) {
        Some(book) => HttpResponse::Ok().json(book),
        None => HttpResponse::NotFound()
            .json(json!({"error": "ResourceNotFound", "detail": "Not found"})),
    }
}

async fn delete_book(shelf: web::Data<Shelf>, id: web::Path<String>) -> HttpResponse {
    let mut books = match shelf.books.write() {
        Ok(books) => books,
        Err(poisoned) => poisoned.into_inner(),
    };
    match books.remove(id.as_str()) {
        Some(_) => HttpResponse::NoContent().finish(),
        None => HttpResponse::NotFound()
            .json(json!({"error": "ResourceNotFound", "detail": "Not found"})),
    }
}

async fn create_book(shelf: web::Data<Shelf>, body: web::Json<Value>) -> HttpResponse {
    let mut problems = Vec::new();
    let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::trim);
    let title = text("title").unwrap_or_default().to_string();
    let author = text("author").unwrap_or_default().to_string();
    if title.is_empty() {
        problems
            .push(json!({"loc": ["body", "title"], "msg": "Field required", "type": "missing"}));
    }
    if author.is_empty() {
        problems
            .push(json!({"loc": ["body", "author"], "msg": "Field required", "type": "missing"}));
    }
    let year = body.get("year").and_then(Value::as_i64).unwrap_or(0);
    if !(1450..=2100).contains(&year) {
        problems.push(json!({"loc": ["body", "year"], "msg": "Input should be between 1450 and 2100", "type": "range"}));
    }
    if !problems.is_empty() {
        return HttpResponse::UnprocessableEntity()
            .json(json!({"error": "RequestValidationError", "detail": problems}));
    }
    let tags = body
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut books = match shelf.books.write() {
        Ok(books) => books,
        Err(poisoned) => poisoned.into_inner(),
    };
    let id = format!(
        "bk_{}",
        books.len() + 1 + usize::from(books.contains_key(&format!("bk_{}", books.len() + 1)))
    );
    let book = Book {
        id: id.clone(),
        title,
        author,
        year,
        tags,
    };
    books.insert(id, book.clone());
    HttpResponse::Created().json(book)
}

async fn document() -> HttpResponse {
    HttpResponse::Ok().json(openapi_document())
}

/// The demo API's OpenAPI 3.1 document.
pub fn openapi_document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "tunnelgate demo bookshop", "version": "1.0.0"},
        "servers": [{"url": "http://127.0.0.1"}],
        "paths": {
            "/v1/books": {
                "get": {
                    "operationId": "books:list",
                    "tags": ["books"],
                    "summary": "List books",
                    "description": "Books on the shelf, optionally filtered by tag.",
                    "parameters": [
                        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}, "description": "Page number, starting at 1."},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}, "description": "Page size."},
                        {"name": "tag", "in": "query", "schema": {"type": "string"}, "description": "Only books with this tag."}
                    ],
                    "responses": {"200": {"description": "A page of books", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BookPage"}}}}}
                },
                "post": {
                    "operationId": "books:create",
                    "tags": ["books"],
                    "summary": "Add a book",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BookCreate"}}}},
                    "responses": {
                        "201": {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Book"}}}},
                        "422": {"description": "Validation error"}
                    }
                }
            },
            "/v1/books/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "Book id, e.g. bk_1."}],
                "get": {
                    "operationId": "books:get",
                    "tags": ["books"],
                    "summary": "Get a book",
                    "responses": {"200": {"description": "The book", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Book"}}}}, "404": {"description": "Not found"}}
                },
                "delete": {
                    "operationId": "books:delete",
                    "tags": ["books"],
                    "summary": "Remove a book",
                    "responses": {"204": {"description": "Removed"}, "404": {"description": "Not found"}}
                }
            }
        },
        "components": {
            "schemas": {
                "Book": {
                    "type": "object",
                    "required": ["id", "title", "author", "year"],
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "author": {"type": "string"},
                        "year": {"type": "integer"},
                        "tags": {"type": "array", "items": {"type": "string"}}
                    }
                },
                "BookCreate": {
                    "type": "object",
                    "required": ["title", "author", "year"],
                    "properties": {
                        "title": {"type": "string", "minLength": 1},
                        "author": {"type": "string", "minLength": 1},
                        "year": {"type": "integer", "description": "Year of publication."},
                        "tags": {"type": "array", "items": {"type": "string"}}
                    }
                },
                "BookPage": {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Book"}},
                        "pagination": {"type": "object", "properties": {"total_count": {"type": "integer"}, "max_page": {"type": "integer"}}}
                    }
                }
            }
        }
    })
}
