//! Internal-API tools end to end against a local upstream: argument validation, safe
//! request building, no token passthrough, retries, result shapes and upstream faults.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_upstream::{FakeUpstream, Scripted};
use crate::helpers::{TestApp, spawn_app_with};
use crate::issuer::TokenBuilder;

pub const UPSTREAM_TOKEN: &str = "upstream-secret-token-123";

/// A small API with every parameter style the tools must encode.
pub fn fixture_document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "fixture", "version": "1"},
        "servers": [{"url": "http://unused.invalid"}],
        "paths": {
            "/items": {
                "get": {
                    "operationId": "items:list",
                    "tags": ["items"],
                    "summary": "List items",
                    "parameters": [
                        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                        {"name": "tag", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                        {"name": "metadata", "in": "query", "style": "deepObject", "explode": true,
                         "schema": {"type": "object", "additionalProperties": {"type": "string"}}}
                    ],
                    "responses": {"200": {"description": "ok"}}
                },
                "post": {
                    "operationId": "items:create",
                    "tags": ["items"],
                    "summary": "Create an item",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["name"],
                        "properties": {"name": {"type": "string"}, "price": {"type": "integer", "minimum": 0}}}}}},
                    "responses": {"201": {"description": "created"}}
                }
            },
            "/items/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {
                    "operationId": "items:get",
                    "tags": ["items"],
                    "summary": "Get an item",
                    "parameters": [{"name": "X-Trace-Tag", "in": "header", "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "ok"}}
                },
                "put": {
                    "operationId": "items:replace",
                    "tags": ["items"],
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {"200": {"description": "ok"}}
                },
                "delete": {
                    "operationId": "items:delete",
                    "tags": ["items"],
                    "responses": {"204": {"description": "gone"}}
                }
            }
        }
    })
}

pub fn write_document(document: &Value) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    file.write_all(document.to_string().as_bytes()).unwrap();
    file
}

pub struct ApiFixture {
    pub app: TestApp,
    pub upstream: FakeUpstream,
    pub token: String,
    _document: tempfile::NamedTempFile,
}

pub async fn spawn_with_fixture(
    adjust: impl FnOnce(&mut tunnelgate::config::Settings),
) -> ApiFixture {
    let upstream = FakeUpstream::start();
    let document = write_document(&fixture_document());
    let path = document.path().display().to_string();
    let base_url = upstream.url.clone();
    let app = spawn_app_with(|settings| {
        settings.upstream.spec = Some(path.parse().unwrap());
        settings.upstream.base_url = Some(base_url.parse().unwrap());
        settings.upstream.token = Some(tunnelgate::config::Secret::new(UPSTREAM_TOKEN));
        settings.tools.read_only = false;
        settings.policy.default_access = tunnelgate::config::AccessClass::Write;
        adjust(settings);
    })
    .await;
    ApiFixture {
        app,
        upstream,
        token: TokenBuilder::user("ada@example.com").build(),
        _document: document,
    }
}

fn result_text(response: &Value) -> String {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content: {response}"))
        .to_string()
}

fn is_error(response: &Value) -> bool {
    response["result"]["isError"] == true
}

#[actix_web::test]
async fn sends_the_configured_credential_and_never_the_callers_token() {
    let fx = spawn_with_fixture(|_| {}).await;

    let response = fx
        .app
        .http
        .post(fx.app.mcp_url())
        .header("Cf-Access-Jwt-Assertion", &fx.token)
        .header("Authorization", "Bearer client-supplied")
        .header("Cookie", "CF_Authorization=abc; session=xyz")
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-06-18")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"items_get","arguments":{"id":"it_1"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let sent = fx.upstream.requests_to("/items/it_1");
    assert_eq!(sent.len(), 1);
    let headers = &sent[0].headers;
    assert_eq!(headers["authorization"], format!("Bearer {UPSTREAM_TOKEN}"));
    assert!(!headers.contains_key("cf-access-jwt-assertion"));
    assert!(!headers.contains_key("cookie"));
}

#[actix_web::test]
async fn a_json_object_comes_back_as_structured_content_and_text() {
    let fx = spawn_with_fixture(|_| {}).await;
    fx.upstream.script(
        "/items/it_1",
        vec![Scripted::json(200, json!({"id": "it_1", "name": "lamp"}))],
    );

    let response = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": "it_1"}))
        .await;

    assert!(!is_error(&response));
    assert_eq!(response["result"]["structuredContent"]["name"], "lamp");
    assert_eq!(
        serde_json::from_str::<Value>(&result_text(&response)).unwrap()["id"],
        "it_1"
    );
}

#[actix_web::test]
async fn encodes_a_path_parameter_as_one_segment() {
    let fx = spawn_with_fixture(|_| {}).await;

    let response = fx
        .app
        .call_tool(
            &fx.token,
            "items_get",
            json!({"id": "../admin/keys?all=1#frag"}),
        )
        .await;

    assert!(!is_error(&response), "{response}");
    let sent = fx.upstream.recorded();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].target, "/items/..%2Fadmin%2Fkeys%3Fall%3D1%23frag");
}

#[actix_web::test]
async fn refuses_a_dot_dot_path_parameter_without_calling_the_upstream() {
    let fx = spawn_with_fixture(|_| {}).await;

    let response = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": ".."}))
        .await;

    assert!(is_error(&response));
    assert!(fx.upstream.recorded().is_empty());
}

#[actix_web::test]
async fn encodes_query_arrays_and_deep_objects_as_declared() {
    let fx = spawn_with_fixture(|_| {}).await;

    fx.app
        .call_tool(
            &fx.token,
            "items_list",
            json!({"page": 2, "limit": 5, "tag": ["a b", "c&d"], "metadata": {"team": "core"}}),
        )
        .await;

    let sent = fx.upstream.requests_to("/items");
    let query = sent[0].target.split_once('?').unwrap().1;
    let pairs: Vec<&str> = query.split('&').collect();
    assert!(pairs.contains(&"page=2"), "{query}");
    assert!(pairs.contains(&"limit=5"), "{query}");
    assert!(
        pairs.contains(&"tag=a%20b") || pairs.contains(&"tag=a+b"),
        "{query}"
    );
    assert!(pairs.contains(&"tag=c%26d"), "{query}");
    assert!(
        pairs.contains(&"metadata%5Bteam%5D=core") || pairs.contains(&"metadata[team]=core"),
        "{query}"
    );
}

#[actix_web::test]
async fn refuses_crlf_in_a_header_argument() {
    let fx = spawn_with_fixture(|_| {}).await;

    let response = fx
        .app
        .call_tool(
            &fx.token,
            "items_get",
            json!({"id": "it_1", "X-Trace-Tag": "x\r\nX-Injected: 1"}),
        )
        .await;

    assert!(is_error(&response), "{response}");
    assert!(fx.upstream.recorded().is_empty());
}

#[actix_web::test]
async fn wrong_argument_types_are_a_tool_error_naming_the_field() {
    let fx = spawn_with_fixture(|_| {}).await;

    let response = fx
        .app
        .call_tool(&fx.token, "items_list", json!({"limit": "ten"}))
        .await;

    assert!(is_error(&response));
    assert!(result_text(&response).contains("limit"), "{response}");
    assert!(fx.upstream.recorded().is_empty());
}

#[actix_web::test]
async fn unknown_arguments_are_a_tool_error() {
    let fx = spawn_with_fixture(|_| {}).await;

    let response = fx
        .app
        .call_tool(
            &fx.token,
            "items_get",
            json!({"id": "it_1", "sneaky": true}),
        )
        .await;

    assert!(is_error(&response));
    assert!(result_text(&response).contains("sneaky"), "{response}");
}

#[actix_web::test]
async fn a_huge_argument_is_refused_without_calling_the_upstream() {
    let fx = spawn_with_fixture(|_| {}).await;

    let response = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": "x".repeat(100_000)}))
        .await;

    assert!(is_error(&response), "{response}");
    assert!(fx.upstream.recorded().is_empty());
}

#[actix_web::test]
async fn sends_a_json_body_under_body() {
    let fx = spawn_with_fixture(|_| {}).await;

    fx.app
        .call_tool(
            &fx.token,
            "items_create",
            json!({"body": {"name": "lamp", "price": 3}}),
        )
        .await;

    let sent = fx.upstream.requests_to("/items");
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].headers["content-type"], "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(&sent[0].body).unwrap(),
        json!({"name": "lamp", "price": 3})
    );
}

#[actix_web::test]
async fn read_only_mode_hides_write_operations() {
    let fx = spawn_with_fixture(|settings| settings.tools.read_only = true).await;

    let listed = crate::helpers::read_jsonrpc(fx.app.list_tools(&fx.token).await).await;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    let call = fx
        .app
        .call_tool(&fx.token, "items_create", json!({"body": {"name": "x"}}))
        .await;

    assert_eq!(names, vec!["whoami", "items_list", "items_get"]);
    assert_eq!(call["error"]["code"], -32602);
}

#[actix_web::test]
async fn annotations_follow_the_http_method() {
    let fx = spawn_with_fixture(|_| {}).await;

    let listed = crate::helpers::read_jsonrpc(fx.app.list_tools(&fx.token).await).await;
    let annotations = |name: &str| {
        listed["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|tool| tool["name"] == name)
            .unwrap()["annotations"]
            .clone()
    };

    assert_eq!(annotations("items_get")["readOnlyHint"], true);
    assert_eq!(annotations("items_delete")["destructiveHint"], true);
    assert_eq!(annotations("items_replace")["idempotentHint"], true);
    assert_eq!(annotations("items_create")["openWorldHint"], true);
}

#[actix_web::test]
async fn honours_retry_after_on_429_and_then_succeeds() {
    let fx = spawn_with_fixture(|_| {}).await;
    fx.upstream.script(
        "/items",
        vec![
            Scripted::json(429, json!({"error": "TooManyRequests"})).header("Retry-After", "1"),
            Scripted::json(200, json!({"items": []})),
        ],
    );

    let started = std::time::Instant::now();
    let response = fx.app.call_tool(&fx.token, "items_list", json!({})).await;

    assert!(!is_error(&response), "{response}");
    assert_eq!(fx.upstream.requests_to("/items").len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[actix_web::test]
async fn gives_up_on_429_after_two_retries_saying_when_to_retry() {
    let fx = spawn_with_fixture(|_| {}).await;
    let limited =
        Scripted::json(429, json!({"error": "TooManyRequests"})).header("Retry-After", "1");
    fx.upstream
        .script("/items", vec![limited.clone(), limited.clone(), limited]);

    let response = fx.app.call_tool(&fx.token, "items_list", json!({})).await;

    assert!(is_error(&response));
    assert!(
        result_text(&response).contains("retry in 1 s"),
        "{response}"
    );
    assert_eq!(fx.upstream.requests_to("/items").len(), 3);
}

#[actix_web::test]
async fn does_not_wait_longer_than_ten_seconds_for_a_429() {
    let fx = spawn_with_fixture(|_| {}).await;
    fx.upstream.script(
        "/items",
        vec![Scripted::json(429, json!({})).header("Retry-After", "60")],
    );

    let started = std::time::Instant::now();
    let response = fx.app.call_tool(&fx.token, "items_list", json!({})).await;

    assert!(is_error(&response));
    assert!(
        result_text(&response).contains("retry in 60 s"),
        "{response}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[actix_web::test]
async fn retries_a_503_for_get_but_never_for_post() {
    let fx = spawn_with_fixture(|_| {}).await;
    fx.upstream.script(
        "/items/it_1",
        vec![
            Scripted::json(503, json!({})),
            Scripted::json(200, json!({"id": "it_1"})),
        ],
    );
    fx.upstream.script(
        "/items",
        vec![Scripted::json(503, json!({"error": "Unavailable"}))],
    );

    let get = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": "it_1"}))
        .await;
    let post = fx
        .app
        .call_tool(&fx.token, "items_create", json!({"body": {"name": "x"}}))
        .await;

    assert!(!is_error(&get), "{get}");
    assert_eq!(fx.upstream.requests_to("/items/it_1").len(), 2);
    assert!(is_error(&post));
    assert_eq!(fx.upstream.requests_to("/items").len(), 1);
}

#[actix_web::test]
async fn a_slow_upstream_becomes_a_timeout_error() {
    let fx = spawn_with_fixture(|settings| {
        settings.upstream.timeout = Duration::from_millis(300);
    })
    .await;
    fx.upstream.script(
        "/items/it_1",
        vec![Scripted::json(200, json!({})).delayed(Duration::from_secs(2))],
    );

    let response = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": "it_1"}))
        .await;

    assert!(is_error(&response));
    assert!(
        result_text(&response).contains("did not answer"),
        "{response}"
    );
}

#[actix_web::test]
async fn an_unreachable_upstream_is_a_tool_error() {
    let fx = spawn_with_fixture(|settings| {
        // A port nothing listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        settings.upstream.base_url = Some(
            format!("http://{}", closed.local_addr().unwrap())
                .parse()
                .unwrap(),
        );
    })
    .await;

    let response = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": "it_1"}))
        .await;

    assert!(is_error(&response));
    assert!(
        result_text(&response).contains("cannot reach"),
        "{response}"
    );
    assert!(!result_text(&response).contains(UPSTREAM_TOKEN));
}

#[actix_web::test]
async fn invalid_json_from_the_upstream_comes_back_as_text() {
    let fx = spawn_with_fixture(|_| {}).await;
    fx.upstream.script(
        "/items/it_1",
        vec![Scripted::raw(200, "application/json", "{\"truncated\": ")],
    );

    let response = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": "it_1"}))
        .await;

    assert!(!is_error(&response));
    assert_eq!(result_text(&response), "{\"truncated\": ");
    assert!(response["result"].get("structuredContent").is_none());
}

#[actix_web::test]
async fn an_oversized_response_is_truncated_with_a_notice() {
    let fx = spawn_with_fixture(|settings| {
        settings.upstream.max_response = tunnelgate::config::ByteSize(1024);
    })
    .await;
    fx.upstream.script(
        "/items/it_1",
        vec![Scripted::raw(200, "text/plain", "z".repeat(10_000))],
    );

    let response = fx
        .app
        .call_tool(&fx.token, "items_get", json!({"id": "it_1"}))
        .await;

    let text = result_text(&response);
    assert!(text.contains("[truncated"), "{text}");
    assert!(text.len() < 1400);
}

#[actix_web::test]
async fn a_5xx_error_body_never_echoes_the_credential() {
    let fx = spawn_with_fixture(|_| {}).await;
    fx.upstream.script(
        "/items",
        vec![Scripted::json(
            500,
            json!({"error": "InternalError", "detail": format!("failed with Authorization: Bearer {UPSTREAM_TOKEN}")}),
        )],
    );

    let response = fx
        .app
        .call_tool(&fx.token, "items_create", json!({"body": {"name": "x"}}))
        .await;

    assert!(is_error(&response));
    assert!(
        !result_text(&response).contains(UPSTREAM_TOKEN),
        "{response}"
    );
}

#[actix_web::test]
async fn dynamic_mode_serves_three_tools_that_reach_the_whole_catalog() {
    let fx = spawn_with_fixture(|settings| {
        settings.tools.mode = tunnelgate::config::ToolsMode::Dynamic;
    })
    .await;
    fx.upstream.script(
        "/items/it_9",
        vec![Scripted::json(200, json!({"id": "it_9"}))],
    );

    let listed = crate::helpers::read_jsonrpc(fx.app.list_tools(&fx.token).await).await;
    let search = fx
        .app
        .call_tool(&fx.token, "search_tools", json!({"query": "get item"}))
        .await;
    let described = fx
        .app
        .call_tool(&fx.token, "describe_tool", json!({"name": "items_get"}))
        .await;
    let called = fx
        .app
        .call_tool(
            &fx.token,
            "call_tool",
            json!({"name": "items_get", "arguments": {"id": "it_9"}}),
        )
        .await;

    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["whoami", "search_tools", "describe_tool", "call_tool"]
    );
    assert_eq!(
        search["result"]["structuredContent"]["tools"][0]["name"],
        "items_get"
    );
    assert_eq!(
        described["result"]["structuredContent"]["inputSchema"]["required"],
        json!(["id"])
    );
    assert_eq!(called["result"]["structuredContent"]["id"], "it_9");
}

#[actix_web::test]
async fn keeps_the_last_good_document_for_a_restart_while_the_url_is_down() {
    let upstream = FakeUpstream::start();
    let state_dir = tempfile::tempdir().unwrap();
    upstream.serve_document(Some(Scripted::json(200, fixture_document())));
    let spec_url = format!("{}/openapi.json", upstream.url);
    let configure = |settings: &mut tunnelgate::config::Settings| {
        settings.upstream.spec = Some(spec_url.parse().unwrap());
        settings.upstream.base_url = Some(upstream.url.parse().unwrap());
        settings.state_dir = state_dir.path().to_path_buf();
    };
    let first = spawn_app_with(configure).await;
    let token = TokenBuilder::user("ada@example.com").build();
    let first_tools = crate::helpers::read_jsonrpc(first.list_tools(&token).await).await;

    upstream.serve_document(None);
    let second = spawn_app_with(configure).await;
    let second_tools = crate::helpers::read_jsonrpc(second.list_tools(&token).await).await;

    assert_eq!(
        first_tools["result"]["tools"],
        second_tools["result"]["tools"]
    );
    assert_eq!(second_tools["result"]["tools"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn a_broken_document_fails_start_up_naming_the_place() {
    let issuer = crate::issuer::TestIssuer::start(&[0]);
    let mut document = fixture_document();
    document["paths"]["/items"]["get"]["parameters"][0]["in"] = json!("body");
    let file = write_document(&document);
    let mut settings = crate::helpers::test_settings(&issuer);
    settings.upstream.spec = Some(file.path().display().to_string().parse().unwrap());

    let error = tunnelgate::Application::build(settings)
        .await
        .err()
        .expect("start-up must fail");

    let message = format!("{error:#}");
    assert!(
        message.contains("/paths/~1items/get/parameters/0"),
        "{message}"
    );
}

#[actix_web::test]
async fn a_mistyped_tool_name_suggests_the_closest_visible_tool() {
    let fixture = spawn_with_fixture(|_| {}).await;

    let typo = fixture
        .app
        .call_tool(&fixture.token, "itms_list", json!({}))
        .await;
    let nonsense = fixture
        .app
        .call_tool(&fixture.token, "launch_rockets", json!({}))
        .await;

    assert_eq!(typo["error"]["code"], -32602);
    assert_eq!(
        typo["error"]["message"],
        "unknown tool: itms_list (did you mean items_list?)"
    );
    assert_eq!(nonsense["error"]["message"], "unknown tool: launch_rockets");
}

#[actix_web::test]
async fn never_suggests_a_tool_the_caller_may_not_see() {
    let fixture = spawn_with_fixture(|settings| {
        settings.policy.default_access = tunnelgate::config::AccessClass::Read;
    })
    .await;

    let typo = fixture
        .app
        .call_tool(&fixture.token, "items_creat", json!({}))
        .await;

    assert_eq!(typo["error"]["message"], "unknown tool: items_creat");
}
