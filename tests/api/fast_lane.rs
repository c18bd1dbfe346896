//! The fast lane answers `tools/call` and `tools/list` exactly as rmcp does: the same
//! requests go to a server with the fast lane and to one without it (everything through
//! rmcp), and the answers must be equal — status, content type and JSON-RPC message.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::api_tools::{ApiFixture, spawn_with_fixture};
use crate::fake_upstream::Scripted;

/// One request as a client sends it, and what the fake upstream answers (if it is asked).
struct Case {
    name: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Value,
    upstream: Option<Scripted>,
}

const PLAIN: [(&str, &str); 2] = [
    ("Accept", "application/json, text/event-stream"),
    ("Content-Type", "application/json"),
];

fn case(name: &'static str, version: Option<&'static str>, body: Value) -> Case {
    let mut headers = PLAIN.to_vec();
    if let Some(version) = version {
        headers.push(("MCP-Protocol-Version", version));
    }
    Case {
        name,
        headers,
        body,
        upstream: None,
    }
}

fn call(id: Value, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": arguments}})
}

fn list(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})
}

fn with_upstream(mut case: Case, scripted: Scripted) -> Case {
    case.upstream = Some(scripted);
    case
}

fn with_header(mut case: Case, name: &'static str, value: &'static str) -> Case {
    case.headers
        .retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
    case.headers.push((name, value));
    case
}

fn cases() -> Vec<Case> {
    let v = Some("2025-06-18");
    let items = || call(json!(7), "items_list", json!({"limit": 2}));
    vec![
        case("tools/list without a version header", None, list(json!(1))),
        case(
            "tools/list on 2025-03-26",
            Some("2025-03-26"),
            list(json!(1)),
        ),
        case("tools/list on 2025-06-18", v, list(json!("list-1"))),
        case(
            "tools/list on 2025-11-25",
            Some("2025-11-25"),
            list(json!(2)),
        ),
        case(
            "tools/list on 2026-07-28",
            Some("2026-07-28"),
            list(json!(3)),
        ),
        case(
            "tools/list on an unknown version",
            Some("1999-01-01"),
            list(json!(4)),
        ),
        case(
            "tools/list with empty params",
            v,
            json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {}}),
        ),
        case(
            "tools/list with a cursor",
            v,
            json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": {"cursor": "x"}}),
        ),
        case("whoami", v, call(json!(8), "whoami", json!({}))),
        case(
            "whoami without arguments",
            v,
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "whoami"}}),
        ),
        with_upstream(
            case("an upstream JSON object, pretty-printed", v, items()),
            Scripted::raw(
                200,
                "application/json",
                "{\n  \"items\": [ {\"id\": \"a\\\"b\", \"price\": 1.5e3, \"note\": \"é ✓\"} ],\n  \"pagination\": {\"total_count\": 1}\n}",
            ),
        ),
        with_upstream(
            case("an upstream JSON array", v, items()),
            Scripted::raw(200, "application/json", "[1, 2, {\"a\": null}]"),
        ),
        with_upstream(
            case("an upstream text answer", v, items()),
            Scripted::raw(200, "text/plain", "plain words"),
        ),
        with_upstream(
            case("upstream JSON that does not parse", v, items()),
            Scripted::raw(200, "application/json", "{\"items\": ["),
        ),
        with_upstream(
            case("an upstream 404", v, items()),
            Scripted::json(
                404,
                json!({"error": "ResourceNotFound", "detail": "Not found"}),
            ),
        ),
        with_upstream(
            case(
                "an upstream 422",
                v,
                call(json!(10), "items_create", json!({"body": {"name": "x"}})),
            ),
            Scripted::json(
                422,
                json!({"detail": [{"loc": ["body", "name"], "msg": "too short", "type": "value_error"}]}),
            ),
        ),
        case(
            "arguments that fail validation",
            v,
            call(json!(11), "items_list", json!({"limit": 0})),
        ),
        case(
            "an unknown argument",
            v,
            call(json!(12), "items_list", json!({"limt": 1})),
        ),
        case(
            "an unknown tool",
            v,
            call(json!(13), "no_such_tool", json!({})),
        ),
        case(
            "an unknown tool with a string id",
            v,
            call(json!("x"), "nope", json!({})),
        ),
        case(
            "tools/call with _meta",
            v,
            json!({"jsonrpc": "2.0", "id": 14, "method": "tools/call",
                   "params": {"name": "whoami", "arguments": {}, "_meta": {"progressToken": 1}}}),
        ),
        case(
            "an unknown method",
            v,
            json!({"jsonrpc": "2.0", "id": 15, "method": "foo/bar"}),
        ),
        case(
            "ping",
            v,
            json!({"jsonrpc": "2.0", "id": 16, "method": "ping"}),
        ),
        case(
            "a notification",
            v,
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        ),
        with_header(
            case("Accept without event streams", v, list(json!(17))),
            "Accept",
            "application/json",
        ),
        with_header(
            case("Accept with weights", v, list(json!(18))),
            "Accept",
            "application/json;q=0.9, text/event-stream",
        ),
        with_header(
            case("a Content-Type that is not JSON", v, list(json!(19))),
            "Content-Type",
            "text/plain",
        ),
        with_header(
            case("a Content-Type with a charset", v, list(json!(20))),
            "Content-Type",
            "application/json; charset=utf-8",
        ),
    ]
}

/// Status, content type (without parameters) and body (as JSON when it is JSON).
async fn send(fixture: &ApiFixture, case: &Case) -> (u16, String, Value) {
    if let Some(scripted) = &case.upstream {
        fixture.upstream.script("/items", vec![scripted.clone()]);
    }
    let mut request = fixture
        .app
        .http
        .post(fixture.app.mcp_url())
        .header("Cf-Access-Jwt-Assertion", &fixture.token)
        .body(case.body.to_string());
    for (name, value) in &case.headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, content_type, body)
}

async fn fast_lane_answers(fixture: &ApiFixture) -> u64 {
    let metrics = fixture.app.metrics().await;
    metrics
        .lines()
        .find(|line| line.starts_with("tunnelgate_fast_lane_answers_total "))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

#[actix_web::test]
async fn answers_every_request_exactly_as_rmcp_does() {
    let fast = spawn_with_fixture(|_| {}).await;
    let mut rmcp_only = spawn_with_fixture(|settings| settings.server.fast_lane = false).await;
    // One token for both: `whoami` shows its expiry, which differs between tokens minted
    // in different seconds.
    rmcp_only.token = fast.token.clone();

    for case in cases() {
        let expected = send(&rmcp_only, &case).await;
        let answered = send(&fast, &case).await;

        assert_eq!(answered, expected, "{}", case.name);
    }
    assert!(
        fast_lane_answers(&fast).await >= 15,
        "the fast lane answered too few cases"
    );
    assert_eq!(fast_lane_answers(&rmcp_only).await, 0);
}

#[actix_web::test]
async fn leaves_stateful_mode_to_rmcp() {
    let fixture = spawn_with_fixture(|settings| {
        settings.server.mode = tunnelgate::config::ServerMode::Stateful;
    })
    .await;

    let response = fixture
        .app
        .http
        .post(fixture.app.mcp_url())
        .header("Cf-Access-Jwt-Assertion", &fixture.token)
        .header(ACCEPT, "application/json, text/event-stream")
        .header(CONTENT_TYPE, "application/json")
        .header("MCP-Protocol-Version", "2025-06-18")
        .body(list(json!(1)).to_string())
        .send()
        .await
        .unwrap();

    assert!(response.status().is_client_error() || response.status().is_success());
    assert_eq!(fast_lane_answers(&fixture).await, 0);
}
