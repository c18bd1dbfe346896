//! The legacy HTTP+SSE transport (protocol 2024-11-05): `GET /sse` opens a stream whose
//! first event names the endpoint, `POST /message?sessionId=…` delivers client messages
//! (answered 202), and responses travel back on the stream as `event: message`.
//!
//! A session is only its owner, a sender for its stream and its negotiated version: no rmcp
//! service, task or channel pair per session (those cost ~75 KB each when 1,000 sit open).
//! Each posted request is answered by its own short task: `initialize` and `ping` here,
//! `tools/list` and `tools/call` by the fast lane's writer, with rmcp's answers for a peer
//! before 2026-07-28; any other method is unknown, as rmcp would say for this server.
//!
//! With a `[cluster]`, a message for a session another replica holds is relayed there
//! (`cluster/relay.rs`), where the owner check runs as it does here.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::{HttpMessage, HttpRequest, HttpResponse, Responder, web};
use actix_web_lab::sse::{self, Sse};
use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt};
use rand::RngCore;
use rmcp::ErrorData;
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, ErrorCode, InitializeResult, ProtocolVersion,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::fast_lane::{self, HotMethod};
use super::handler::{self, McpHandler};
use super::jsonrpc_guard::repeated_member;
use crate::access::Identity;
use crate::admin::metrics::Metrics;
use crate::cluster::{Delivery, LocalSessions, RelayedMessage, SessionRelay};
use crate::telemetry::RequestInfo;
use crate::tools::ToolRegistry;

/// Answers buffered for a slow stream reader before posting waits for it.
const CHANNEL_DEPTH: usize = 64;
/// 128 random bits, hex-encoded.
const SESSION_ID_LEN: usize = 32;

struct Session {
    owner: Arc<Identity>,
    to_client: mpsc::Sender<String>,
    last_activity: Instant,
    cancel: CancellationToken,
}

/// Open legacy SSE sessions of this process, each bound to the identity that opened it.
pub struct SseSessions {
    sessions: Mutex<HashMap<String, Session>>,
    registry: Arc<ToolRegistry>,
    metrics: Arc<Metrics>,
    max_sessions: usize,
    keep_alive: Duration,
    idle_timeout: Duration,
    /// With a `[cluster]`: records sessions in Redis and relays messages for other replicas'.
    relay: Option<Arc<SessionRelay>>,
}

impl SseSessions {
    pub fn new(
        registry: Arc<ToolRegistry>,
        metrics: Arc<Metrics>,
        max_sessions: usize,
        keep_alive: Duration,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            registry,
            metrics,
            max_sessions,
            keep_alive,
            idle_timeout,
            relay: None,
        }
    }

    /// Shares the sessions with the other replicas of a cluster (attach the relay to the
    /// table once it is in its `Arc`).
    pub fn with_relay(mut self, relay: Option<Arc<SessionRelay>>) -> Self {
        self.relay = relay;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        match self.sessions.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn open_count(&self) -> usize {
        self.lock().len()
    }

    fn remove(&self, session_id: &str) {
        if let Some(session) = self.lock().remove(session_id) {
            session.cancel.cancel();
            if let Some(relay) = &self.relay {
                relay.forget(session_id);
            }
        }
    }

    /// Closes every session (shutdown): their streams end cleanly instead of being cut.
    pub fn close_all(&self) {
        let mut sessions = self.lock();
        for (session_id, session) in sessions.iter() {
            session.cancel.cancel();
            if let Some(relay) = &self.relay {
                relay.forget(session_id);
            }
        }
        sessions.clear();
    }

    /// Hands `message` to a session held here if `identity` owns it. `identity` (verified for
    /// this message) and `request` decide it: a caller whose groups changed since the stream
    /// opened gets the new groups' tools, on an open session too.
    fn deliver(
        &self,
        session_id: &str,
        identity: Arc<Identity>,
        request: RequestInfo,
        message: ClientJsonRpcMessage,
    ) -> Delivery {
        let mut to_client = {
            let mut open = self.lock();
            let Some(session) = open.get_mut(session_id) else {
                return Delivery::UnknownSession;
            };
            if !session.owner.is_same_caller(&identity) {
                tracing::warn!(
                    principal = identity.principal(),
                    owner = session.owner.principal(),
                    "refused a message for another identity's SSE session"
                );
                return Delivery::Forbidden;
            }
            session.last_activity = Instant::now();
            session.to_client.clone()
        };
        // Notifications (initialized, cancelled, progress) and responses need no answer.
        let ClientJsonRpcMessage::Request(request_message) = message else {
            return Delivery::Accepted;
        };
        let registry = Arc::clone(&self.registry);
        tokio::spawn(async move {
            let answer = answer_request(&registry, &identity, &request, request_message).await;
            // A closed stream has nobody left to tell.
            let _ = to_client.send(answer).await;
        });
        Delivery::Accepted
    }

    /// Closes sessions whose client has sent nothing for `idle_timeout`.
    pub fn reap_idle(&self) -> usize {
        let now = Instant::now();
        let mut sessions = self.lock();
        let before = sessions.len();
        sessions.retain(|_, session| {
            let alive = now.duration_since(session.last_activity) < self.idle_timeout;
            if !alive {
                session.cancel.cancel();
            }
            alive
        });
        before - sessions.len()
    }

    pub fn spawn_reaper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sessions = Arc::clone(self);
        let period = (self.idle_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        tokio::spawn(async move {
            let mut open_before = sessions.open_count();
            loop {
                tokio::time::sleep(period).await;
                let reaped = sessions.reap_idle();
                if reaped > 0 {
                    tracing::info!(reaped, "closed idle legacy SSE sessions");
                }
                // Sessions hold tens of KB each; after a burst has gone, hand the pages
                // back rather than keep the high-water mark for the process's life.
                let open_now = sessions.open_count();
                if open_now < open_before {
                    // malloc_trim can take milliseconds on a large heap: not on a worker.
                    let _ = tokio::task::spawn_blocking(crate::memory::release_freed_memory).await;
                }
                open_before = open_now;
            }
        })
    }
}

impl LocalSessions for SseSessions {
    fn deliver_relayed(
        &self,
        session_id: String,
        message: RelayedMessage,
    ) -> futures::future::BoxFuture<'_, Delivery> {
        // The replica that relayed it parsed it already; this cannot fail but for a bug.
        let delivery = match parse_client_message(message.body.as_bytes()) {
            Ok(parsed) => self.deliver(&session_id, message.identity, message.request, parsed),
            Err(_) => Delivery::Unavailable,
        };
        Box::pin(std::future::ready(delivery))
    }

    fn session_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

fn new_session_id() -> String {
    let mut bytes = [0u8; SESSION_ID_LEN / 2];
    rand::rng().fill_bytes(&mut bytes);
    crate::hex::lower_hex(&bytes)
}

fn is_well_formed_session_id(candidate: &str) -> bool {
    candidate.len() == SESSION_ID_LEN && candidate.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes the session when the client goes away and the response stream is dropped.
struct SessionStream<S> {
    inner: S,
    session_id: String,
    sessions: Arc<SseSessions>,
}

impl<S: Stream + Unpin> Stream for SessionStream<S> {
    type Item = S::Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl<S> Drop for SessionStream<S> {
    fn drop(&mut self) {
        self.sessions.remove(&self.session_id);
        self.sessions.metrics.sse_stream_closed();
    }
}

fn json_error(status: actix_web::http::StatusCode, error: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": error }))
}

/// `GET /sse`: opens a session and streams its messages.
pub async fn open_stream(request: HttpRequest, sessions: web::Data<SseSessions>) -> HttpResponse {
    let Some(identity) = request.extensions().get::<Arc<Identity>>().cloned() else {
        return json_error(actix_web::http::StatusCode::FORBIDDEN, "access_denied");
    };
    let sessions = sessions.into_inner();
    let (to_client, from_server) = mpsc::channel::<String>(CHANNEL_DEPTH);
    let session_id = new_session_id();
    let cancel = CancellationToken::new();
    {
        let mut open = sessions.lock();
        if open.len() >= sessions.max_sessions {
            tracing::warn!(
                limit = sessions.max_sessions,
                "legacy SSE session limit reached"
            );
            return json_error(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
            );
        }
        open.insert(
            session_id.clone(),
            Session {
                owner: Arc::clone(&identity),
                to_client,
                last_activity: Instant::now(),
                cancel: cancel.clone(),
            },
        );
    }

    // Before the client learns the endpoint: its first POST may land on another replica.
    if let Some(relay) = &sessions.relay {
        relay.register(&session_id).await;
    }
    tracing::info!(
        principal = identity.principal(),
        "legacy SSE session opened"
    );
    sessions.metrics.sse_stream_opened();
    let endpoint = sse::Event::Data(
        sse::Data::new(format!("/message?sessionId={session_id}")).event("endpoint"),
    );
    // Closing the session (reaper, shutdown) ends the stream at once, even while a call
    // still holds a sender.
    let messages = from_server
        .take_until(Box::pin(cancel.cancelled_owned()))
        .map(|data| sse::Event::Data(sse::Data::new(data).event("message")));
    let stream = SessionStream {
        inner: futures::stream::iter([endpoint])
            .chain(messages)
            .map(Ok::<_, std::convert::Infallible>),
        session_id,
        sessions: Arc::clone(&sessions),
    };
    Sse::from_stream(stream)
        .with_keep_alive(sessions.keep_alive)
        .respond_to(&request)
        .map_into_boxed_body()
}

#[derive(Deserialize)]
pub struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// `POST /message?sessionId=…`: hands one client message to its session.
pub async fn post_message(
    request: HttpRequest,
    query: web::Query<MessageQuery>,
    body: web::Bytes,
    sessions: web::Data<SseSessions>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let Some(identity) = request.extensions().get::<Arc<Identity>>().cloned() else {
        return json_error(StatusCode::FORBIDDEN, "access_denied");
    };
    let Some(session_id) = query
        .session_id
        .as_deref()
        .filter(|id| is_well_formed_session_id(id))
    else {
        return json_error(StatusCode::BAD_REQUEST, "invalid_session_id");
    };
    let message = match parse_client_message(&body) {
        Ok(message) => message,
        Err((code, text)) => return jsonrpc_error(code, &text),
    };
    let request_info = request
        .extensions()
        .get::<RequestInfo>()
        .cloned()
        .unwrap_or_else(|| RequestInfo::new(None));
    let mut delivery = sessions.deliver(
        session_id,
        Arc::clone(&identity),
        request_info.clone(),
        message,
    );
    if delivery == Delivery::UnknownSession
        && let Some(relay) = &sessions.relay
    {
        delivery = relay
            .forward(session_id, &identity, Some(&request_info), &body)
            .await;
    }
    match delivery {
        Delivery::Accepted => HttpResponse::Accepted().finish(),
        Delivery::UnknownSession => json_error(StatusCode::NOT_FOUND, "unknown_session"),
        Delivery::Forbidden => {
            json_error(StatusCode::FORBIDDEN, "session_belongs_to_another_identity")
        }
        Delivery::Unavailable => {
            let mut response = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "session_replica_unreachable",
            );
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("1"),
            );
            response
        }
    }
}

/// The answer to one posted request, as the JSON text of its `event: message`.
async fn answer_request(
    registry: &ToolRegistry,
    identity: &Arc<Identity>,
    request_info: &RequestInfo,
    message: rmcp::model::JsonRpcRequest<ClientRequest>,
) -> String {
    let id = serde_json::to_value(&message.id).unwrap_or(Value::Null);
    let hot = match message.request {
        ClientRequest::InitializeRequest(initialize) => {
            return result_text(&id, &initialize_result(&initialize.params.protocol_version));
        }
        ClientRequest::PingRequest(_) => return result_text(&id, &json!({})),
        ClientRequest::ListToolsRequest(_) => HotMethod::ListTools,
        ClientRequest::CallToolRequest(call) => HotMethod::CallTool {
            name: call.params.name.into_owned(),
            arguments: call.params.arguments,
        },
        other => {
            let error = ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "Method not found: {} (this server offers tools: tools/list, tools/call)",
                    other.method()
                ),
                None,
            );
            return error_text(&id, &error);
        }
    };
    match fast_lane::write_answer(registry, identity, request_info, &id, hot).await {
        Some(bytes) => String::from_utf8(bytes).unwrap_or_default(),
        None => error_text(
            &id,
            &ErrorData::internal_error("cannot serialise the answer", None),
        ),
    }
}

/// What rmcp answers to `initialize`: the requested version when this server speaks it
/// with a handshake, else the newest one that has it.
fn initialize_result(requested: &ProtocolVersion) -> InitializeResult {
    let mut info = McpHandler::server_info();
    info.protocol_version =
        if requested.has_initialize() && handler::SUPPORTED_VERSIONS.contains(requested) {
            requested.clone()
        } else {
            ProtocolVersion::V_2025_11_25
        };
    info
}

fn result_text(id: &Value, result: &impl serde::Serialize) -> String {
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

fn error_text(id: &Value, error: &ErrorData) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string()
}

/// One client message from a `POST /message` body: -32700 when it is not JSON, -32600 when
/// it is JSON but not a message rmcp understands, or names a member twice (as on `/mcp`).
pub fn parse_client_message(body: &[u8]) -> Result<ClientJsonRpcMessage, (i32, String)> {
    let value = serde_json::from_slice::<serde_json::Value>(body)
        .map_err(|_| (-32700, "Parse error".to_owned()))?;
    if let Some(name) = repeated_member(body) {
        return Err((
            -32600,
            format!("Invalid Request: the member {name:?} appears twice"),
        ));
    }
    serde_json::from_value(value).map_err(|error| (-32600, format!("Invalid Request: {error}")))
}

fn jsonrpc_error(code: i32, message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code, "message": message }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_random_and_well_formed() {
        let first = new_session_id();
        let second = new_session_id();
        assert!(is_well_formed_session_id(&first));
        assert_ne!(first, second);
    }

    #[test]
    fn refuses_a_message_that_names_a_member_twice() {
        // Through a `Value` the last `id` would win; rmcp's own parse refuses such a body.
        let body = br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}"#;

        let refused = parse_client_message(body).map(|_| ());

        assert_eq!(
            refused,
            Err((
                -32600,
                "Invalid Request: the member \"id\" appears twice".to_owned()
            ))
        );
    }

    #[test]
    fn rejects_malformed_session_ids() {
        assert!(!is_well_formed_session_id("../../etc"));
        assert!(!is_well_formed_session_id(""));
        assert!(!is_well_formed_session_id(&"g".repeat(SESSION_ID_LEN)));
    }
}
