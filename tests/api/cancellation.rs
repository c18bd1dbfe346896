//! A tool call whose caller stops waiting: `notifications/cancelled` on a legacy SSE
//! session, or a session that ends, abandons the call: no answer, and exactly one audit
//! event with the outcome `cancelled`. A Streamable HTTP client that hangs up does not stop
//! its call (actix notices a closed connection only when it writes), which still leaves
//! exactly one audit event.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_tools::{ApiFixture, spawn_with_fixture};
use crate::fake_upstream::Scripted;
use crate::helpers::eventually;
use crate::legacy_sse::open;

const SLOW: Duration = Duration::from_secs(3);

async fn spawn_with_slow_item(audit_file: PathBuf) -> ApiFixture {
    spawn_with_slow_item_and(audit_file, SLOW, |_| {}).await
}

async fn spawn_with_slow_item_and(
    audit_file: PathBuf,
    slowness: Duration,
    adjust: impl FnOnce(&mut tunnelgate::config::Settings),
) -> ApiFixture {
    let fx = spawn_with_fixture(move |settings| {
        settings.audit.file = Some(audit_file);
        adjust(settings);
    })
    .await;
    fx.upstream.script(
        "/items/slow",
        vec![Scripted::json(200, json!({"id": "slow"})).delayed(slowness)],
    );
    fx
}

fn audit_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn wait_for_events(path: &Path, count: usize) -> Vec<Value> {
    eventually(Duration::from_secs(10), || async {
        audit_events(path).len() >= count
    })
    .await;
    audit_events(path)
}

/// Waits until the slow call is under way upstream, so a cancellation lands mid-call.
async fn slow_call_reached_the_upstream(fx: &ApiFixture) {
    let reached = eventually(Duration::from_secs(5), || async {
        !fx.upstream.requests_to("/items/slow").is_empty()
    })
    .await;
    assert!(reached, "the slow call never reached the upstream");
}

fn call(id: u64, item: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "items_get", "arguments": {"id": item}}})
}

#[actix_web::test]
async fn a_cancelled_legacy_sse_call_gets_no_answer_and_is_audited_once_as_cancelled() {
    let directory = tempfile::tempdir().unwrap();
    let audit_file = directory.path().join("audit.jsonl");
    let fx = spawn_with_slow_item(audit_file.clone()).await;
    let mut session = open(&fx.app, &fx.token).await;
    session.initialize(&fx.app, &fx.token).await;

    let posted = session.post(&fx.app, &fx.token, call(7, "slow")).await;
    slow_call_reached_the_upstream(&fx).await;
    let cancelled = session
        .post(
            &fx.app,
            &fx.token,
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": 7, "reason": "the user pressed stop"}}),
        )
        .await;
    let pinged = session
        .post(
            &fx.app,
            &fx.token,
            json!({"jsonrpc": "2.0", "id": 8, "method": "ping"}),
        )
        .await;
    let next = session.next_message().await;
    // Had the call gone on, its answer would arrive after SLOW; wait past that.
    let after = tokio::time::timeout(SLOW + Duration::from_secs(1), session.next_message()).await;

    assert_eq!(posted.status(), StatusCode::ACCEPTED);
    assert_eq!(cancelled.status(), StatusCode::ACCEPTED);
    assert_eq!(pinged.status(), StatusCode::ACCEPTED);
    assert_eq!(
        next["id"], 8,
        "the first message is the ping's answer: {next}"
    );
    assert!(after.is_err(), "the cancelled call was answered: {after:?}");
    let events = wait_for_events(&audit_file, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["tool"], "items_get");
    assert_eq!(events[0]["outcome"], "cancelled");
    assert_eq!(events[0]["principal"], "ada@example.com");
    let metrics = fx.app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("tunnelgate_mcp_requests_total")
                && line.contains("outcome=\"cancelled\"")
                && line.ends_with(" 1")),
        "{metrics}"
    );
}

#[actix_web::test]
async fn cancelling_one_request_leaves_the_others_of_the_session_alone() {
    let directory = tempfile::tempdir().unwrap();
    let audit_file = directory.path().join("audit.jsonl");
    let fx = spawn_with_slow_item(audit_file.clone()).await;
    let mut session = open(&fx.app, &fx.token).await;
    session.initialize(&fx.app, &fx.token).await;

    session.post(&fx.app, &fx.token, call(1, "slow")).await;
    session.post(&fx.app, &fx.token, call(2, "fast")).await;
    // An id nobody used, and the string "1", which is not the number 1.
    for request_id in [json!(99), json!("1")] {
        let cancelled = session
            .post(
                &fx.app,
                &fx.token,
                json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": {"requestId": request_id}}),
            )
            .await;
        assert_eq!(cancelled.status(), StatusCode::ACCEPTED);
    }
    let first = session.next_message().await;
    let second = session.next_message().await;

    assert_eq!(first["id"], 2);
    assert_eq!(second["id"], 1, "the slow call still answered: {second}");
    assert_eq!(second["result"]["isError"], false);
    let events = wait_for_events(&audit_file, 2).await;
    let outcomes: Vec<&Value> = events.iter().map(|event| &event["outcome"]).collect();
    assert_eq!(outcomes, vec!["ok", "ok"]);
}

#[actix_web::test]
async fn a_call_in_flight_when_its_sse_stream_closes_is_audited_as_cancelled() {
    let directory = tempfile::tempdir().unwrap();
    let audit_file = directory.path().join("audit.jsonl");
    // The server learns that a stream's client is gone when a keep-alive cannot be written.
    let slowness = Duration::from_secs(8);
    let fx = spawn_with_slow_item_and(audit_file.clone(), slowness, |settings| {
        settings.server.sse_keep_alive = Duration::from_secs(1);
    })
    .await;
    let mut session = open(&fx.app, &fx.token).await;
    session.initialize(&fx.app, &fx.token).await;

    session.post(&fx.app, &fx.token, call(3, "slow")).await;
    slow_call_reached_the_upstream(&fx).await;
    drop(session);
    let events = wait_for_events(&audit_file, 1).await;

    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "cancelled");
    let elapsed_ms = events[0]["duration_ms"].as_f64().unwrap();
    assert!(
        elapsed_ms < slowness.as_millis() as f64,
        "{elapsed_ms} ms: not abandoned"
    );
}

#[actix_web::test]
async fn a_streamable_http_call_whose_client_hangs_up_still_runs_and_is_audited_once() {
    let directory = tempfile::tempdir().unwrap();
    let audit_file = directory.path().join("audit.jsonl");
    let fx = spawn_with_slow_item(audit_file.clone()).await;

    let hung_up = tokio::time::timeout(
        Duration::from_millis(500),
        fx.app.post_mcp(Some(&fx.token), &call(4, "slow")),
    )
    .await;
    let events = wait_for_events(&audit_file, 1).await;
    // Nothing more comes later.
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(hung_up.is_err(), "the slow call answered within 500 ms");
    assert_eq!(audit_events(&audit_file).len(), 1, "{events:?}");
    assert_eq!(events[0]["tool"], "items_get");
    assert_eq!(events[0]["outcome"], "ok");
    assert_eq!(events[0]["upstream"]["status"], 200);
}

#[actix_web::test]
async fn a_call_cancelled_in_a_stateful_session_is_abandoned_and_audited_as_cancelled() {
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
    use rmcp::service::PeerRequestOptions;

    let directory = tempfile::tempdir().unwrap();
    let audit_file = directory.path().join("audit.jsonl");
    let slowness = Duration::from_secs(8);
    let fx = spawn_with_slow_item_and(audit_file.clone(), slowness, |settings| {
        settings.server.mode = tunnelgate::config::ServerMode::Stateful;
    })
    .await;
    let client = ()
        .serve(crate::rmcp_client::transport_with_access_header(
            fx.app.mcp_url(),
            &fx.token,
        ))
        .await
        .unwrap();

    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("items_get")
            .with_arguments(json!({"id": "slow"}).as_object().unwrap().clone()),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    slow_call_reached_the_upstream(&fx).await;
    handle
        .cancel(Some("the user pressed stop".into()))
        .await
        .unwrap();
    let events = wait_for_events(&audit_file, 1).await;
    let _ = client.cancel().await;

    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "cancelled");
    let elapsed_ms = events[0]["duration_ms"].as_f64().unwrap();
    assert!(
        elapsed_ms < slowness.as_millis() as f64,
        "{elapsed_ms} ms: not abandoned"
    );
}
