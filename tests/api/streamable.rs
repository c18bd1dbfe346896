//! Streamable HTTP at `/mcp` with an MCP client library, and the JSON-RPC error surface.

use std::collections::HashMap;

use reqwest::StatusCode;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::helpers::{read_jsonrpc, spawn_app};
use crate::issuer::TokenBuilder;

fn client_transport(url: String, token: &str) -> StreamableHttpClientTransport<reqwest::Client> {
    let mut headers = HashMap::new();
    headers.insert(
        http::HeaderName::from_static("cf-access-jwt-assertion"),
        http::HeaderValue::from_str(token).unwrap(),
    );
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers),
    )
}

#[actix_web::test]
async fn a_client_library_initializes_lists_tools_and_calls_whoami() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    let client = ().serve(client_transport(app.mcp_url(), &token)).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    let result = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    let _ = client.cancel().await;

    assert!(tools.iter().any(|tool| tool.name == "whoami"));
    let identity = result.structured_content.unwrap();
    assert_eq!(identity["email"], "ada@example.com");
}

#[actix_web::test]
async fn a_client_library_with_a_wrong_audience_token_fails_with_403() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com")
        .claim("aud", json!(["another-app"]))
        .build();

    let outcome = ().serve(client_transport(app.mcp_url(), &token)).await;

    let error = match outcome {
        Ok(_) => panic!("initialize must fail"),
        Err(error) => format!("{error:?}"),
    };
    assert!(error.contains("403"), "{error}");
}

#[actix_web::test]
async fn answers_an_initialize_with_a_supported_protocol_version() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let response = app
            .http
            .post(app.mcp_url())
            .header("Cf-Access-Jwt-Assertion", &token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", version)
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": version, "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = read_jsonrpc(response).await;
        assert_eq!(body["result"]["protocolVersion"], version);
        assert_eq!(body["result"]["serverInfo"]["name"], "tunnelgate");
    }
}

#[actix_web::test]
async fn malformed_json_gets_a_parse_error_not_a_crash() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    let response = app
        .http
        .post(app.mcp_url())
        .header("Cf-Access-Jwt-Assertion", &token)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-06-18")
        .body("{not json")
        .send()
        .await
        .unwrap();

    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], -32700, "{body}");
}

#[actix_web::test]
async fn a_tools_call_without_a_name_is_invalid_params() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    let response = app
        .post_mcp(
            Some(&token),
            &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"nme": "whoami"}}),
        )
        .await;

    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert_eq!(body["id"], 4);
}

#[actix_web::test]
async fn an_unknown_method_gets_method_not_found() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    let response = app
        .post_mcp(
            Some(&token),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/frobnicate", "params": {}}),
        )
        .await;

    let body = read_jsonrpc(response).await;
    assert_eq!(body["error"]["code"], -32601, "{body}");
}

#[actix_web::test]
async fn calling_an_unknown_tool_is_an_invalid_params_error() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    let body = app.call_tool(&token, "no_such_tool", json!({})).await;

    assert_eq!(body["error"]["code"], -32602, "{body}");
}

#[actix_web::test]
async fn a_stateless_server_issues_no_session_id() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    let response = app
        .post_mcp(
            Some(&token),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"}}}),
        )
        .await;

    assert!(response.headers().get("mcp-session-id").is_none());
}

#[actix_web::test]
async fn stateful_mode_keeps_sessions_and_sends_no_priming_event_to_older_clients() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.server.mode = tunnelgate::config::ServerMode::Stateful;
        settings.server.sse_keep_alive = std::time::Duration::from_secs(1);
    })
    .await;
    let token = TokenBuilder::user("ada@example.com").build();
    let initialized = app
        .post_mcp(
            Some(&token),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"}}}),
        )
        .await;
    let session = initialized
        .headers()
        .get("mcp-session-id")
        .expect("a stateful server issues a session id")
        .to_str()
        .unwrap()
        .to_string();
    let _ = read_jsonrpc(initialized).await;
    app.http
        .post(app.mcp_url())
        .header("Cf-Access-Jwt-Assertion", &token)
        .header("Mcp-Session-Id", &session)
        .header("MCP-Protocol-Version", "2025-06-18")
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();

    let mut stream = app
        .http
        .get(app.mcp_url())
        .header("Cf-Access-Jwt-Assertion", &token)
        .header("Mcp-Session-Id", &session)
        .header("MCP-Protocol-Version", "2025-06-18")
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["x-accel-buffering"], "no");
    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(2500);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, stream.chunk()).await {
        received.push_str(&String::from_utf8_lossy(&chunk));
    }

    assert!(
        !received.contains("retry:"),
        "a priming event was sent: {received:?}"
    );
    assert!(
        !received.contains("data:"),
        "unexpected event: {received:?}"
    );
    assert!(
        received.contains(':'),
        "no keep-alive comment within 2.5 s: {received:?}"
    );
}

/// Initializes a stateful session as `token`'s holder and returns its id (or the refusal).
async fn open_stateful(app: &crate::helpers::TestApp, token: &str) -> reqwest::Response {
    app.post_mcp(
        Some(token),
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
    )
    .await
}

async fn list_in_session(
    app: &crate::helpers::TestApp,
    token: &str,
    session: &str,
) -> reqwest::Response {
    app.http
        .post(app.mcp_url())
        .header("Cf-Access-Jwt-Assertion", token)
        .header("Mcp-Session-Id", session)
        .header("MCP-Protocol-Version", "2025-06-18")
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap()
}

fn session_id(response: &reqwest::Response) -> String {
    response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn a_stateful_session_refuses_another_identity() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.server.mode = tunnelgate::config::ServerMode::Stateful;
    })
    .await;
    let ada = TokenBuilder::user("ada@example.com").build();
    let mallory = TokenBuilder::user("mallory@example.com").build();
    let opened = open_stateful(&app, &ada).await;
    let session = session_id(&opened);

    let foreign = list_in_session(&app, &mallory, &session).await;
    let own = list_in_session(&app, &ada, &session).await;

    assert_eq!(foreign.status(), 403);
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["error"], "session_belongs_to_another_identity");
    assert_eq!(own.status(), 200);
}

#[actix_web::test]
async fn stateful_sessions_beyond_the_cap_get_503_with_retry_after() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.server.mode = tunnelgate::config::ServerMode::Stateful;
        settings.server.max_sessions = 2;
    })
    .await;
    let token = TokenBuilder::user("ada@example.com").build();

    let first = open_stateful(&app, &token).await;
    let second = open_stateful(&app, &token).await;
    let third = open_stateful(&app, &token).await;

    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    assert_eq!(third.status(), 503);
    assert_eq!(third.headers()["retry-after"], "30");
    assert!(
        list_in_session(&app, &token, &session_id(&first))
            .await
            .status()
            .is_success()
    );
}

#[actix_web::test]
async fn an_idle_stateful_session_is_closed() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.server.mode = tunnelgate::config::ServerMode::Stateful;
        settings.server.session_idle_timeout = std::time::Duration::from_secs(1);
        settings.server.max_sessions = 1;
    })
    .await;
    let token = TokenBuilder::user("ada@example.com").build();
    let session = session_id(&open_stateful(&app, &token).await);

    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let after = list_in_session(&app, &token, &session).await;
    let reopened = open_stateful(&app, &token).await;

    assert_eq!(after.status(), 404, "the idle session still answers");
    assert_eq!(
        reopened.status(),
        200,
        "the closed session still counts against the cap"
    );
}

async fn list_with_accept(
    app: &crate::helpers::TestApp,
    token: &str,
    accept: &str,
) -> reqwest::Response {
    app.http
        .post(app.mcp_url())
        .header("Cf-Access-Jwt-Assertion", token)
        .header("MCP-Protocol-Version", "2025-06-18")
        .header("Accept", accept)
        .header("Content-Type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn serves_a_client_that_accepts_anything_as_curl_does() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    let served = list_with_accept(&app, &token, "*/*").await;
    let refused = list_with_accept(&app, &token, "*/*;q=0").await;

    assert_eq!(served.status(), 200);
    let body: Value = served.json().await.unwrap();
    assert!(body["result"]["tools"].is_array(), "{body}");
    assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
}

#[actix_web::test]
async fn a_refusal_in_words_says_it_is_plain_text() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    let refused = list_with_accept(&app, &token, "application/json").await;

    assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
    assert_eq!(
        refused.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert!(refused.text().await.unwrap().contains("text/event-stream"));
}

async fn post_with_version(
    app: &crate::helpers::TestApp,
    token: &str,
    version: &str,
    body: &Value,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.mcp_url())
        .header("Cf-Access-Jwt-Assertion", token)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", version)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn every_method_protocol_2026_07_28_removed_is_not_found_under_it() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    for method in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": {
            "protocolVersion": "2026-07-28", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}, "level": "info", "uri": "x:y",
        }});
        let by_header = post_with_version(&app, &token, "2026-07-28", &body).await;
        let status = by_header.status();
        let answer = by_header.json::<Value>().await.unwrap();

        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {answer}");
        assert_eq!(answer["id"], 3, "{method}");
        assert_eq!(answer["error"]["code"], -32601, "{method}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{method} was removed in protocol 2026-07-28")),
            "{message}"
        );
    }
}

#[actix_web::test]
async fn initialize_named_2026_07_28_only_in_its_meta_is_not_found() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"},
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    }});

    let response = reqwest::Client::new()
        .post(app.mcp_url())
        .header("Cf-Access-Jwt-Assertion", &token)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        -32601
    );
}

#[actix_web::test]
async fn the_older_revisions_keep_their_handshake_and_ping() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();

    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        }});
        let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});

        let initialized =
            read_jsonrpc(post_with_version(&app, &token, version, &initialize).await).await;
        let pinged = read_jsonrpc(post_with_version(&app, &token, version, &ping).await).await;

        assert_eq!(
            initialized["result"]["protocolVersion"], version,
            "{initialized}"
        );
        assert_eq!(pinged["result"], json!({}), "{version}: {pinged}");
    }
}

#[actix_web::test]
async fn an_unknown_method_is_said_to_be_unknown() {
    let app = spawn_app().await;
    let token = TokenBuilder::user("ada@example.com").build();
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/run", "params": {}});

    let answer = read_jsonrpc(post_with_version(&app, &token, "2025-06-18", &body).await).await;

    assert_eq!(answer["error"]["code"], -32601);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Method not found: tools/run"),
        "{answer}"
    );
}
