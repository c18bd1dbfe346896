//! The legacy HTTP+SSE transport (2024-11-05), driven by hand over HTTP.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::issuer::TokenBuilder;

/// An open `/sse` stream and the endpoint it announced.
pub(crate) struct SseSession {
    pub(crate) endpoint: String,
    events: futures::stream::BoxStream<'static, (String, String)>,
}

pub(crate) async fn open(app: &TestApp, token: &str) -> SseSession {
    let response = app
        .http
        .get(format!("{}/sse", app.address))
        .header("Cf-Access-Jwt-Assertion", token)
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert!(
        response
            .headers()
            .get("content-encoding")
            .is_none_or(|v| v == "identity")
    );
    let mut events = parse_events(response).boxed();
    let (kind, data) = events.next().await.unwrap();
    assert_eq!(kind, "endpoint");
    SseSession {
        endpoint: format!("{}{}", app.address, data),
        events,
    }
}

/// Splits an SSE body into (event, data) pairs, skipping keep-alive comments.
pub(crate) fn parse_events(
    response: reqwest::Response,
) -> impl futures::Stream<Item = (String, String)> {
    let bytes = response.bytes_stream();
    futures::stream::unfold(
        (bytes, String::new()),
        |(mut bytes, mut buffer)| async move {
            loop {
                if let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let mut kind = String::from("message");
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(value) = line.strip_prefix("event:") {
                            kind = value.trim().to_string();
                        } else if let Some(value) = line.strip_prefix("data:") {
                            data.push_str(value.trim_start());
                        }
                    }
                    if data.is_empty() {
                        continue;
                    }
                    return Some(((kind, data), (bytes, buffer)));
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
                    _ => return None,
                }
            }
        },
    )
}

impl SseSession {
    pub(crate) async fn post(
        &self,
        app: &TestApp,
        token: &str,
        message: Value,
    ) -> reqwest::Response {
        app.http
            .post(&self.endpoint)
            .header("Cf-Access-Jwt-Assertion", token)
            .json(&message)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn next_message(&mut self) -> Value {
        let (kind, data) = tokio::time::timeout(Duration::from_secs(10), self.events.next())
            .await
            .expect("a message within 10 s")
            .expect("the stream is open");
        assert_eq!(kind, "message");
        serde_json::from_str(&data).unwrap()
    }

    pub(crate) async fn initialize(&mut self, app: &TestApp, token: &str) {
        let accepted = self
            .post(
                app,
                token,
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2024-11-05", "capabilities": {},
                "clientInfo": {"name": "legacy-test", "version": "1"}}}),
            )
            .await;
        assert_eq!(accepted.status(), StatusCode::ACCEPTED);
        let response = self.next_message().await;
        assert_eq!(response["result"]["protocolVersion"], "2024-11-05");
        let notified = self
            .post(
                app,
                token,
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(notified.status(), StatusCode::ACCEPTED);
    }
}

#[actix_web::test]
async fn a_full_legacy_session_lists_tools_and_calls_whoami() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();
    let mut session = open(&app, &token).await;
    session.initialize(&app, &token).await;

    session
        .post(
            &app,
            &token,
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    let tools = session.next_message().await;
    session
        .post(
            &app,
            &token,
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "whoami", "arguments": {}}}),
        )
        .await;
    let whoami = session.next_message().await;

    assert!(
        tools["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tool| tool["name"] == "whoami")
    );
    assert_eq!(whoami["id"], 3);
    assert_eq!(
        whoami["result"]["structuredContent"]["email"],
        "ada@example.com"
    );
}

#[actix_web::test]
async fn another_identity_cannot_post_into_a_session() {
    let app = spawn_app().await;
    let ada = TokenBuilder::user("ada@example.com").build();
    let mallory = TokenBuilder::user("mallory@example.com").build();
    let mut session = open(&app, &ada).await;
    session.initialize(&app, &ada).await;

    let hijack = session
        .post(
            &app,
            &mallory,
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
        )
        .await;

    assert_eq!(hijack.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn the_sse_endpoints_require_a_token() {
    let app = spawn_app().await;

    let stream = app
        .http
        .get(format!("{}/sse", app.address))
        .send()
        .await
        .unwrap();
    let message = app
        .http
        .post(format!(
            "{}/message?sessionId={}",
            app.address,
            "0".repeat(32)
        ))
        .body("{}")
        .send()
        .await
        .unwrap();

    assert_eq!(stream.status(), StatusCode::FORBIDDEN);
    assert_eq!(message.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn an_unknown_session_is_404_and_a_malformed_one_400() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();
    let post = |query: String| {
        app.http
            .post(format!("{}/message?{query}", app.address))
            .header("Cf-Access-Jwt-Assertion", &token)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
    };

    let unknown = post(format!("sessionId={}", "a".repeat(32))).await.unwrap();
    let malformed = post("sessionId=../../x".into()).await.unwrap();
    let missing = post(String::new()).await.unwrap();

    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn malformed_messages_get_jsonrpc_errors() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();
    let session = open(&app, &token).await;

    let garbage = app
        .http
        .post(&session.endpoint)
        .header("Cf-Access-Jwt-Assertion", &token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    let wrong_shape = session.post(&app, &token, json!({"hello": "world"})).await;

    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        garbage.json::<Value>().await.unwrap()["error"]["code"],
        -32700
    );
    assert_eq!(wrong_shape.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        wrong_shape.json::<Value>().await.unwrap()["error"]["code"],
        -32600
    );
}

#[actix_web::test]
async fn the_session_cap_refuses_streams_beyond_it() {
    let app = crate::helpers::spawn_app_with(|settings| settings.server.max_sse_sessions = 1).await;
    let token = TokenBuilder::user("ada@example.com").build();
    let _first = open(&app, &token).await;

    let second = app
        .http
        .get(format!("{}/sse", app.address))
        .header("Cf-Access-Jwt-Assertion", &token)
        .send()
        .await
        .unwrap();

    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[actix_web::test]
async fn an_idle_session_is_reaped_and_its_stream_ends() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.server.sse_idle_timeout = Duration::from_millis(500);
    })
    .await;
    let token = TokenBuilder::user("ada@example.com").build();
    let mut session = open(&app, &token).await;

    let ended = tokio::time::timeout(Duration::from_secs(5), session.events.next()).await;

    assert!(matches!(ended, Ok(None)), "the idle stream did not end");
    let late = session
        .post(
            &app,
            &token,
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(late.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn each_message_is_decided_by_the_identity_that_posted_it() {
    let fixture = crate::api_tools::spawn_with_fixture(|settings| {
        settings.policy.default_access = tunnelgate::config::AccessClass::None;
        settings.policy.groups_claim = Some("groups".into());
        settings.policy.rules = vec![tunnelgate::config::PolicyRule {
            email: None,
            service: None,
            group: Some("ops".into()),
            tools: vec!["items_*".parse().unwrap()],
            access: tunnelgate::config::AccessClass::Read,
        }];
    })
    .await;
    let in_ops = TokenBuilder::user("ada@example.com")
        .claim("groups", json!(["ops"]))
        .build();
    // The same person after Access took her out of the group (a new token, same sub).
    let removed_from_ops = TokenBuilder::user("ada@example.com")
        .claim("groups", json!([]))
        .claim("iat", json!(crate::issuer::now() - 1))
        .build();
    let app = &fixture.app;
    let mut session = open(app, &in_ops).await;
    session.initialize(app, &in_ops).await;
    let call = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "items_list", "arguments": {}}})
    };
    session.post(app, &in_ops, call(2)).await;
    let allowed = session.next_message().await;

    let posted = session.post(app, &removed_from_ops, call(3)).await;
    let refused = session.next_message().await;

    assert!(allowed.get("result").is_some(), "{allowed}");
    assert_eq!(posted.status(), StatusCode::ACCEPTED);
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert_eq!(refused["error"]["message"], "unknown tool: items_list");
}

/// The answer rmcp gives on `/mcp` (fast lane off) to the same message, for a peer on
/// `version` (none for `initialize`, which settles it).
async fn rmcp_answer(app: &TestApp, token: &str, version: Option<&str>, message: &Value) -> Value {
    let mut request = app
        .http
        .post(app.mcp_url())
        .header("Cf-Access-Jwt-Assertion", token)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream");
    if let Some(version) = version {
        request = request.header("MCP-Protocol-Version", version);
    }
    let response = request.json(message).send().await.unwrap();
    crate::helpers::read_jsonrpc(response).await
}

#[actix_web::test]
async fn answers_each_request_as_rmcp_does_on_the_other_transport() {
    let app = crate::helpers::spawn_app_with(|settings| settings.server.fast_lane = false).await;
    let token = TokenBuilder::user("ada@example.com").build();
    let mut session = open(&app, &token).await;
    let initialize = |id: u64, version: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "legacy-test", "version": "1"}}})
    };
    let cases = [
        ("initialize, 2024-11-05", initialize(1, "2024-11-05")),
        ("initialize, 2025-06-18", initialize(2, "2025-06-18")),
        (
            "initialize, an unknown version",
            initialize(3, "1999-01-01"),
        ),
        (
            "ping",
            json!({"jsonrpc": "2.0", "id": "p", "method": "ping"}),
        ),
        (
            "tools/list",
            json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {}}),
        ),
        (
            "whoami",
            json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
                   "params": {"name": "whoami", "arguments": {}}}),
        ),
        (
            "an unknown tool",
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                   "params": {"name": "whoamii", "arguments": {}}}),
        ),
        (
            "an unknown method",
            json!({"jsonrpc": "2.0", "id": 8, "method": "tools/run", "params": {}}),
        ),
        (
            "a method this server does not offer",
            json!({"jsonrpc": "2.0", "id": 9, "method": "prompts/list", "params": {}}),
        ),
    ];

    for (name, message) in cases {
        let accepted = session.post(&app, &token, message.clone()).await;
        assert_eq!(accepted.status(), StatusCode::ACCEPTED, "{name}");
        let over_sse = session.next_message().await;
        let version = (message["method"] != "initialize").then_some("2025-06-18");
        let expected = rmcp_answer(&app, &token, version, &message).await;

        if name == "a method this server does not offer" {
            // rmcp names only the method; this transport also says what the server offers.
            assert_eq!(
                over_sse["error"]["code"], expected["error"]["code"],
                "{name}"
            );
            assert_eq!(over_sse["id"], expected["id"], "{name}");
        } else {
            assert_eq!(over_sse, expected, "{name}");
        }
    }
}
