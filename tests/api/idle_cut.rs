//! Streams through an edge that cuts idle connections, as Cloudflare does after about 100 s
//! without a byte: keep-alive comments shorter than the cut keep a legacy SSE session and a
//! stateful Streamable HTTP stream open across longer idle gaps; without them the edge cuts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tunnelgate::config::ServerMode;

use crate::helpers::{TestApp, spawn_app_with};
use crate::issuer::TokenBuilder;

/// The edge's idle limit, the server's keep-alive below it, and a gap well past it.
const IDLE_LIMIT: Duration = Duration::from_secs(2);
const KEEP_ALIVE: Duration = Duration::from_secs(1);
const NO_KEEP_ALIVE_WITHIN_THE_TEST: Duration = Duration::from_secs(60);
const IDLE_GAP: Duration = Duration::from_millis(3500);

/// A TCP relay that closes a connection once no byte has passed either way for its limit.
struct IdleCutProxy {
    address: String,
    cuts: Arc<AtomicUsize>,
}

impl IdleCutProxy {
    async fn in_front_of(app: &TestApp, idle_limit: Duration) -> Self {
        let server: SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let cuts = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&cuts);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, server, idle_limit, Arc::clone(&counted)));
            }
        });
        Self { address, cuts }
    }

    fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

async fn relay(
    mut client: TcpStream,
    server: SocketAddr,
    idle_limit: Duration,
    cuts: Arc<AtomicUsize>,
) {
    let Ok(mut upstream) = TcpStream::connect(server).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = upstream.split();
    let mut from_client = [0u8; 16 * 1024];
    let mut from_server = [0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = client_read.read(&mut from_client) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => if server_write.write_all(&from_client[..n]).await.is_err() { return },
            },
            read = server_read.read(&mut from_server) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => if client_write.write_all(&from_server[..n]).await.is_err() { return },
            },
            () = tokio::time::sleep(idle_limit) => {
                cuts.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

/// What a reader of an SSE stream sees: events (keep-alive comments skipped), then its end.
#[derive(Debug)]
enum StreamItem {
    Event { kind: String, data: String },
    Closed,
}

/// Reads `response` as SSE in the background, so the stream is drained as a client would.
fn read_in_background(response: reqwest::Response) -> mpsc::UnboundedReceiver<StreamItem> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut bytes = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(Ok(chunk)) = bytes.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
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
                if !data.is_empty() {
                    let _ = sender.send(StreamItem::Event { kind, data });
                }
            }
        }
        let _ = sender.send(StreamItem::Closed);
    });
    receiver
}

async fn next_item(stream: &mut mpsc::UnboundedReceiver<StreamItem>) -> StreamItem {
    tokio::time::timeout(Duration::from_secs(10), stream.recv())
        .await
        .expect("the stream says something within 10 s")
        .expect("the reader is alive")
}

/// Whether the stream ended during `gap` (events in between are consumed).
async fn closes_within(stream: &mut mpsc::UnboundedReceiver<StreamItem>, gap: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + gap;
    loop {
        match tokio::time::timeout_at(deadline, stream.recv()).await {
            Err(_) => return false,
            Ok(None | Some(StreamItem::Closed)) => return true,
            Ok(Some(StreamItem::Event { .. })) => {}
        }
    }
}

/// A client that opens a new connection for each request, so no pooled connection the edge
/// closed in between is reused.
fn unpooled_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Opens a legacy SSE session through `proxy`, initializes it and returns the stream and the
/// URL to post to.
async fn open_legacy_session(
    proxy: &IdleCutProxy,
    token: &str,
) -> (mpsc::UnboundedReceiver<StreamItem>, String) {
    let response = unpooled_client()
        .get(format!("{}/sse", proxy.address))
        .header("Cf-Access-Jwt-Assertion", token)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = read_in_background(response);
    let StreamItem::Event { kind, data } = next_item(&mut stream).await else {
        panic!("the stream closed before naming its endpoint");
    };
    assert_eq!(kind, "endpoint");
    let endpoint = format!("{}{}", proxy.address, data);
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "idle-cut-test", "version": "1"}}});
    post_message(&endpoint, token, &initialize).await;
    let answer = next_message(&mut stream).await;
    assert_eq!(answer["id"], 1, "{answer}");
    post_message(
        &endpoint,
        token,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    (stream, endpoint)
}

async fn post_message(endpoint: &str, token: &str, message: &Value) {
    let response = unpooled_client()
        .post(endpoint)
        .header("Cf-Access-Jwt-Assertion", token)
        .json(message)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

async fn next_message(stream: &mut mpsc::UnboundedReceiver<StreamItem>) -> Value {
    match next_item(stream).await {
        StreamItem::Event { kind, data } => {
            assert_eq!(kind, "message");
            serde_json::from_str(&data).unwrap()
        }
        StreamItem::Closed => panic!("the stream was closed"),
    }
}

#[actix_web::test]
async fn a_legacy_sse_session_outlives_idle_gaps_longer_than_the_edge_allows() {
    let app = spawn_app_with(|settings| settings.server.sse_keep_alive = KEEP_ALIVE).await;
    let proxy = IdleCutProxy::in_front_of(&app, IDLE_LIMIT).await;
    let token = TokenBuilder::user("ada@example.com").build();
    let (mut stream, endpoint) = open_legacy_session(&proxy, &token).await;

    let closed = closes_within(&mut stream, IDLE_GAP).await;
    post_message(
        &endpoint,
        &token,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "whoami", "arguments": {}}}),
    )
    .await;
    let answer = next_message(&mut stream).await;

    assert!(!closed, "the stream was cut during the idle gap");
    assert_eq!(answer["id"], 2);
    assert_eq!(
        answer["result"]["structuredContent"]["email"],
        "ada@example.com"
    );
}

#[actix_web::test]
async fn without_keep_alive_the_edge_cuts_an_idle_legacy_sse_stream() {
    let app = spawn_app_with(|settings| {
        settings.server.sse_keep_alive = NO_KEEP_ALIVE_WITHIN_THE_TEST;
    })
    .await;
    let proxy = IdleCutProxy::in_front_of(&app, IDLE_LIMIT).await;
    let token = TokenBuilder::user("ada@example.com").build();
    let (mut stream, _) = open_legacy_session(&proxy, &token).await;

    let closed = closes_within(&mut stream, IDLE_GAP).await;

    assert!(closed, "the idle stream should have been cut");
    assert!(proxy.cuts() >= 1);
}

/// Initializes a stateful Streamable HTTP session through `proxy` and opens its standing
/// `GET /mcp` stream, the one response that stays open between calls.
async fn open_stateful_stream(
    proxy: &IdleCutProxy,
    token: &str,
) -> (mpsc::UnboundedReceiver<StreamItem>, String) {
    let client = unpooled_client();
    let post = |body: Value, session: Option<String>| {
        let mut request = client
            .post(format!("{}/mcp", proxy.address))
            .header("Cf-Access-Jwt-Assertion", token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-06-18")
            .json(&body);
        if let Some(session) = session {
            request = request.header("Mcp-Session-Id", session);
        }
        request.send()
    };
    let initialized = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "idle-cut-test", "version": "1"}}}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(initialized.status(), StatusCode::OK);
    let session = initialized.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let notified = post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some(session.clone()),
    )
    .await
    .unwrap();
    assert_eq!(notified.status(), StatusCode::ACCEPTED);
    let standing = client
        .get(format!("{}/mcp", proxy.address))
        .header("Cf-Access-Jwt-Assertion", token)
        .header("Accept", "text/event-stream")
        .header("MCP-Protocol-Version", "2025-06-18")
        .header("Mcp-Session-Id", &session)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap();
    assert_eq!(standing.status(), StatusCode::OK);
    (read_in_background(standing), session)
}

#[actix_web::test]
async fn a_stateful_streamable_http_stream_outlives_idle_gaps_longer_than_the_edge_allows() {
    let app = spawn_app_with(|settings| {
        settings.server.mode = ServerMode::Stateful;
        settings.server.sse_keep_alive = KEEP_ALIVE;
    })
    .await;
    let proxy = IdleCutProxy::in_front_of(&app, IDLE_LIMIT).await;
    let token = TokenBuilder::user("ada@example.com").build();
    let (mut stream, _) = open_stateful_stream(&proxy, &token).await;

    let closed = closes_within(&mut stream, IDLE_GAP).await;

    assert!(!closed, "the standing stream was cut during the idle gap");
    assert_eq!(proxy.cuts(), 0);
}

#[actix_web::test]
async fn without_keep_alive_the_edge_cuts_an_idle_streamable_http_stream() {
    let app = spawn_app_with(|settings| {
        settings.server.mode = ServerMode::Stateful;
        settings.server.sse_keep_alive = NO_KEEP_ALIVE_WITHIN_THE_TEST;
    })
    .await;
    let proxy = IdleCutProxy::in_front_of(&app, IDLE_LIMIT).await;
    let token = TokenBuilder::user("ada@example.com").build();
    let (mut stream, _) = open_stateful_stream(&proxy, &token).await;

    let closed = closes_within(&mut stream, IDLE_GAP).await;

    assert!(closed, "the idle standing stream should have been cut");
    assert!(proxy.cuts() >= 1);
}
