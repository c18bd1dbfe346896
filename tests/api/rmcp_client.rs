//! The Rust MCP SDK's own client (rmcp, Streamable HTTP over reqwest) against the real server:
//! the Access header rides in the transport's `custom_headers`, as a Rust agent would send it.
//! Both lifecycles rmcp offers are exercised: the `initialize` handshake and `server/discover`.

use std::collections::HashMap;

use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt, service::RunningService};
use serde_json::{Value, json};

use crate::api_tools::{ApiFixture, spawn_with_fixture};
use crate::fake_upstream::Scripted;
use crate::issuer::TokenBuilder;

/// A transport that sends `Cf-Access-Jwt-Assertion: <token>` on every request it makes.
pub(crate) fn transport_with_access_header(
    url: String,
    token: &str,
) -> StreamableHttpClientTransport<reqwest::Client> {
    let headers = HashMap::from([(
        http::HeaderName::from_static("cf-access-jwt-assertion"),
        http::HeaderValue::from_str(token).unwrap(),
    )]);
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers),
    )
}

/// Lists every tool, calls `whoami` and `items_list`, and returns what the checks need.
async fn list_and_call(
    client: &RunningService<RoleClient, ()>,
    fixture: &ApiFixture,
) -> (Vec<String>, Value, Value) {
    let tools = client.list_all_tools().await.unwrap();
    let whoami = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    fixture.upstream.script(
        "/items",
        vec![Scripted::json(200, json!({"items": [{"id": "it_1"}]}))],
    );
    let items = client
        .call_tool(
            CallToolRequestParams::new("items_list")
                .with_arguments(json!({"limit": 1}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    (
        tools
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect(),
        whoami.structured_content.unwrap_or(Value::Null),
        items.structured_content.unwrap_or(Value::Null),
    )
}

#[actix_web::test]
async fn the_rmcp_client_initializes_lists_tools_and_calls_whoami_and_an_api_tool() {
    // Arrange
    let fixture = spawn_with_fixture(|_| {}).await;
    let token = TokenBuilder::user("ada@example.com").build();

    // Act
    let client =
        ().serve(transport_with_access_header(fixture.app.mcp_url(), &token))
            .await
            .unwrap();
    let negotiated = client.peer_info().map(|info| info.protocol_version.clone());
    let (names, identity, items) = list_and_call(&client, &fixture).await;
    let _ = client.cancel().await;

    // Assert
    assert_eq!(negotiated, Some(ProtocolVersion::LATEST_WITH_INITIALIZE));
    assert!(names.contains(&"whoami".to_string()), "{names:?}");
    assert!(names.contains(&"items_list".to_string()), "{names:?}");
    assert_eq!(identity["email"], "ada@example.com");
    assert_eq!(items["items"][0]["id"], "it_1");
    let sent = fixture.upstream.requests_to("/items");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].target, "/items?limit=1");
}

#[actix_web::test]
async fn the_rmcp_client_discovers_protocol_2026_07_28_and_calls_tools_with_the_header() {
    // Arrange
    let fixture = spawn_with_fixture(|_| {}).await;
    let token = TokenBuilder::user("grace@example.com").build();

    // Act
    let client = ()
        .serve_with_lifecycle(
            transport_with_access_header(fixture.app.mcp_url(), &token),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let negotiated = client.peer_info().map(|info| info.protocol_version.clone());
    let (names, identity, items) = list_and_call(&client, &fixture).await;
    let _ = client.cancel().await;

    // Assert
    assert_eq!(negotiated, Some(ProtocolVersion::V_2026_07_28));
    assert!(names.contains(&"whoami".to_string()), "{names:?}");
    assert_eq!(identity["email"], "grace@example.com");
    assert_eq!(items["items"][0]["id"], "it_1");
}

#[actix_web::test]
async fn the_rmcp_client_with_a_token_for_another_audience_reports_the_servers_403() {
    // Arrange
    let fixture = spawn_with_fixture(|_| {}).await;
    let token = TokenBuilder::user("ada@example.com")
        .claim("aud", json!(["another-application-aud"]))
        .build();

    // Act
    let outcome = ().serve(transport_with_access_header(fixture.app.mcp_url(), &token)).await;

    // Assert
    let error = match outcome {
        Ok(_) => panic!("the handshake must fail with a wrong-audience token"),
        Err(error) => format!("{error:?}"),
    };
    assert!(error.contains("403"), "{error}");
    assert!(error.contains("wrong_audience"), "{error}");
    assert!(
        fixture.upstream.recorded().is_empty(),
        "nothing may reach the upstream"
    );
}
