//! The Polar profile against Polar's real OpenAPI document (read from ../shared, never
//! copied into the repository) and a local fake of a few Polar routes.

use serde_json::{Value, json};

use crate::api_tools::UPSTREAM_TOKEN;
use crate::fake_upstream::{FakeUpstream, Scripted};
use crate::helpers::{TestApp, spawn_app_with};
use crate::issuer::TokenBuilder;
use crate::polar_document::polar_document_path;

async fn spawn_polar(read_only: bool) -> Option<(TestApp, FakeUpstream, String)> {
    let document = polar_document_path()?;
    let upstream = FakeUpstream::start();
    let base_url = upstream.url.clone();
    let app = spawn_app_with(|settings| {
        settings.upstream.profile = tunnelgate::config::UpstreamProfile::Polar;
        settings.upstream.spec = Some(document.display().to_string().parse().unwrap());
        settings.upstream.base_url = Some(base_url.parse().unwrap());
        settings.upstream.token = Some(tunnelgate::config::Secret::new(UPSTREAM_TOKEN));
        settings.tools.read_only = read_only;
        settings.policy.default_access = tunnelgate::config::AccessClass::Write;
    })
    .await;
    Some((app, upstream, TokenBuilder::user("ada@example.com").build()))
}

fn text(response: &Value) -> &str {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
}

#[actix_web::test]
async fn serves_the_63_read_only_organization_token_operations_by_default() {
    let Some((app, _upstream, token)) = spawn_polar(true).await else {
        return;
    };

    let names = app.tool_names(&token).await;

    assert_eq!(names.len(), 63 + 1, "63 API tools plus whoami");
    assert!(names.contains(&"products_list".to_string()));
    assert!(!names.iter().any(|name| name.starts_with("customer_portal")));
}

#[actix_web::test]
async fn serves_all_125_organization_token_operations_when_writes_are_enabled() {
    let Some((app, _upstream, token)) = spawn_polar(false).await else {
        return;
    };

    let names = app.tool_names(&token).await;

    assert_eq!(names.len(), 125 + 1, "125 API tools plus whoami");
}

#[actix_web::test]
async fn lists_products_with_pagination_and_the_polar_headers() {
    let Some((app, upstream, token)) = spawn_polar(true).await else {
        return;
    };
    upstream.script(
        "/v1/products/",
        vec![Scripted::json(
            200,
            json!({"items": [{"id": "p1"}], "pagination": {"total_count": 21, "max_page": 3}}),
        )],
    );

    let response = app
        .call_tool(&token, "products_list", json!({"page": 2, "limit": 10}))
        .await;

    assert_eq!(
        response["result"]["structuredContent"]["pagination"]["max_page"],
        3
    );
    let sent = upstream.requests_to("/v1/products/");
    assert_eq!(sent[0].target, "/v1/products/?page=2&limit=10");
    assert_eq!(sent[0].headers["polar-version"], "2026-04");
    assert_eq!(
        sent[0].headers["authorization"],
        format!("Bearer {UPSTREAM_TOKEN}")
    );
}

#[actix_web::test]
async fn refuses_a_page_size_over_polars_maximum_before_calling() {
    let Some((app, upstream, token)) = spawn_polar(true).await else {
        return;
    };

    let response = app
        .call_tool(&token, "products_list", json!({"limit": 500}))
        .await;

    assert_eq!(response["result"]["isError"], true);
    assert!(text(&response).contains("100"), "{response}");
    assert!(upstream.recorded().is_empty());
}

#[actix_web::test]
async fn gets_a_product_by_id_and_reports_a_missing_one() {
    let Some((app, upstream, token)) = spawn_polar(true).await else {
        return;
    };
    upstream.script(
        "/v1/products/p1",
        vec![Scripted::json(200, json!({"id": "p1", "name": "Pro plan"}))],
    );
    upstream.script(
        "/v1/products/missing",
        vec![Scripted::json(
            404,
            json!({"error": "ResourceNotFound", "detail": "Not found"}),
        )],
    );

    let found = app
        .call_tool(&token, "products_get", json!({"id": "p1"}))
        .await;
    let missing = app
        .call_tool(&token, "products_get", json!({"id": "missing"}))
        .await;

    assert_eq!(found["result"]["structuredContent"]["name"], "Pro plan");
    assert_eq!(missing["result"]["isError"], true);
    assert!(text(&missing).contains("404"), "{missing}");
}

#[actix_web::test]
async fn turns_a_422_into_field_level_messages() {
    let Some((app, upstream, token)) = spawn_polar(true).await else {
        return;
    };
    upstream.script(
        "/v1/products/",
        vec![Scripted::json(422, json!({"error": "RequestValidationError", "detail": [
            {"loc": ["query", "organization_id"], "msg": "Input should be a valid UUID", "type": "uuid_parsing", "input": "nope"}
        ]}))],
    );

    let response = app.call_tool(&token, "products_list", json!({})).await;

    assert_eq!(response["result"]["isError"], true);
    assert!(
        text(&response).contains("query.organization_id: Input should be a valid UUID"),
        "{response}"
    );
}

#[actix_web::test]
async fn waits_out_a_429_with_retry_after() {
    let Some((app, upstream, token)) = spawn_polar(true).await else {
        return;
    };
    upstream.script(
        "/v1/orders/",
        vec![
            Scripted::json(429, json!({"error": "TooManyRequests"})).header("Retry-After", "1"),
            Scripted::json(
                200,
                json!({"items": [], "pagination": {"total_count": 0, "max_page": 1}}),
            ),
        ],
    );

    let response = app.call_tool(&token, "orders_list", json!({})).await;

    assert_eq!(response["result"]["isError"], false, "{response}");
    assert_eq!(upstream.requests_to("/v1/orders/").len(), 2);
}

#[actix_web::test]
async fn says_which_scope_the_token_lacks() {
    let Some((app, upstream, token)) = spawn_polar(true).await else {
        return;
    };
    upstream.script(
        "/v1/customers/",
        vec![Scripted::json(403, json!({"error": "insufficient_scope", "error_description": "The token does not have the required scopes."}))
            .header("WWW-Authenticate", "Bearer error=\"insufficient_scope\", scope=\"customers:read customers:write\"")],
    );

    let response = app.call_tool(&token, "customers_list", json!({})).await;

    assert_eq!(response["result"]["isError"], true);
    let message = text(&response);
    assert!(message.contains("lacks scope"), "{message}");
    assert!(message.contains("customers:read"), "{message}");
}
