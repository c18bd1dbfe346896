//! A local stand-in for the internal API: answers with scripted responses per path (or a
//! default JSON echo) and records every request it receives, headers included.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query exactly as they arrived on the wire.
    pub target: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

#[derive(Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Scripted {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn raw(status: u16, content_type: &str, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct State {
    scripts: Mutex<HashMap<String, VecDeque<Scripted>>>,
    recorded: Mutex<Vec<Recorded>>,
    document: Mutex<Option<Scripted>>,
}

pub struct FakeUpstream {
    state: Arc<State>,
    pub url: String,
}

impl FakeUpstream {
    pub fn start() -> Self {
        let state = Arc::new(State::default());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .default_service(web::to(answer))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        Self { state, url }
    }

    /// Queues responses for `path` (without query); each request takes the next one.
    pub fn script(&self, path: &str, responses: Vec<Scripted>) {
        self.state
            .scripts
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .extend(responses);
    }

    /// Serves `document` at `/openapi.json` (or a failure, when `None`).
    pub fn serve_document(&self, document: Option<Scripted>) {
        *self.state.document.lock().unwrap() = document;
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.recorded.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.recorded()
            .into_iter()
            .filter(|r| r.target.split('?').next() == Some(path))
            .collect()
    }
}

async fn answer(request: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let path = request.path().to_string();
    if path == "/openapi.json" {
        let document = state.document.lock().unwrap().clone();
        return match document {
            Some(scripted) => respond(scripted).await,
            None => HttpResponse::ServiceUnavailable().body("document unavailable"),
        };
    }
    let target = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_default();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_ascii_lowercase(),
                value.to_str().unwrap_or("<binary>").to_string(),
            )
        })
        .collect();
    state.recorded.lock().unwrap().push(Recorded {
        method: request.method().to_string(),
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let scripted = state
        .scripts
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    match scripted {
        Some(scripted) => respond(scripted).await,
        None => HttpResponse::Ok().json(json!({"id": "default", "path": path})),
    }
}

async fn respond(scripted: Scripted) -> HttpResponse {
    if !scripted.delay.is_zero() {
        tokio::time::sleep(scripted.delay).await;
    }
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(scripted.status).unwrap());
    for (name, value) in &scripted.headers {
        response.insert_header((name.as_str(), value.as_str()));
    }
    response.body(scripted.body)
}
