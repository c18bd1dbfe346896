//! The legacy HTTP+SSE transport (protocol 2024-11-05): `GET /sse` opens a stream whose
//! first event names the endpoint, `POST /message?sessionId=…` delivers client messages
//! (answered 202), and responses travel back on the stream as `event: message`.
//!
//! A session is only its owner, a sender for its stream, a cancel token and the requests it
//! has in flight: no rmcp service, task or channel pair per session (those cost ~45 KB each
//! when 1,000 sit open). Each posted request is answered by its own short task, which
//! `notifications/cancelled` (or the session's end) aborts: `initialize` and `ping` here,
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
use futures::{Stream, StreamExt};
use rand::RngCore;
use rmcp::ErrorData;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, ErrorCode, InitializeResult,
    ProtocolVersion,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::fast_lane::{self, HotMethod};
use super::handler::{self, McpHandler};
use super::jsonrpc_guard::repeated_member;
use crate::access::Identity;
use crate::admin::metrics::Metrics;
use crate::cluster::{Delivery, LocalSessions, RelayedMessage, SessionRelay};
use crate::telemetry::RequestInfo;
use crate::tools::ToolRegistry;

/// Answers a session may owe at once (in flight, or written and not yet read from its
/// stream); a POST beyond that is refused 503 with `Retry-After`, so a client that posts
/// without reading its stream cannot grow the server's memory.
const CHANNEL_DEPTH: usize = 128;
/// 128 random bits, hex-encoded.
const SESSION_ID_LEN: usize = 32;

struct Session {
    owner: Arc<Identity>,
    to_client: mpsc::Sender<String>,
    last_activity: Instant,
    cancel: CancellationToken,
    /// Requests being answered, by JSON-RPC id (as JSON text, so `1` and `"1"` differ); at
    /// most [`CHANNEL_DEPTH`], since each holds a place on the stream.
    in_flight: HashMap<String, tokio::task::AbortHandle>,
}

impl Session {
    /// Ends the session: its stream closes and the requests it has in flight are abandoned
    /// (each tool call among them is audited as cancelled).
    fn close(&mut self) {
        self.cancel.cancel();
        for (_, request) in self.in_flight.drain() {
            request.abort();
        }
    }
}

type SessionTable = Arc<Mutex<HashMap<String, Session>>>;

/// Open legacy SSE sessions of this process, each bound to the identity that opened it.
pub struct SseSessions {
    sessions: SessionTable,
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
            sessions: Arc::new(Mutex::new(HashMap::new())),
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
        lock_table(&self.sessions)
    }

    pub fn open_count(&self) -> usize {
        self.lock().len()
    }

    fn remove(&self, session_id: &str) {
        if let Some(mut session) = self.lock().remove(session_id) {
            session.close();
            if let Some(relay) = &self.relay {
                relay.forget(session_id);
            }
        }
    }

    /// Closes every session (shutdown): their streams end cleanly instead of being cut.
    pub fn close_all(&self) {
        let mut sessions = self.lock();
        for (session_id, session) in sessions.iter_mut() {
            session.close();
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
        let request_message = match message {
            ClientJsonRpcMessage::Request(request_message) => request_message,
            ClientJsonRpcMessage::Notification(notification) => {
                if let ClientNotification::CancelledNotification(cancelled) =
                    notification.notification
                    && let Some(request_id) = cancelled.params.request_id
                    && let Some(request) = session.in_flight.remove(&request_key(&request_id))
                {
                    // The answer's place on the stream goes with the task: nothing is sent
                    // for a cancelled request, as the protocol asks.
                    request.abort();
                }
                return Delivery::Accepted;
            }
            // Responses (and errors) to nothing this server asked: no answer.
            _ => return Delivery::Accepted,
        };
        // The answer's place on the stream is taken now, or the POST is refused.
        let answer_slot = match session.to_client.clone().try_reserve_owned() {
            Ok(slot) => slot,
            Err(mpsc::error::TrySendError::Full(_)) => return Delivery::Busy,
            Err(mpsc::error::TrySendError::Closed(_)) => return Delivery::UnknownSession,
        };
        let key = request_key(&request_message.id);
        let registry = Arc::clone(&self.registry);
        let table = Arc::clone(&self.sessions);
        let owning_session = session_id.to_owned();
        let answering = tokio::spawn({
            let key = key.clone();
            async move {
                let answer = answer_request(&registry, &identity, &request, request_message).await;
                // A closed stream drops the answer: nobody is left to tell.
                answer_slot.send(answer);
                let task = tokio::task::id();
                if let Some(session) = lock_table(&table).get_mut(&owning_session)
                    && session
                        .in_flight
                        .get(&key)
                        .is_some_and(|entry| entry.id() == task)
                {
                    session.in_flight.remove(&key);
                }
            }
        });
        // Still under the table's lock, so the task cannot finish (and look for its entry)
        // before the entry is there. A reused id leaves the earlier request uncancellable.
        session.in_flight.insert(key, answering.abort_handle());
        Delivery::Accepted
    }

    /// Closes sessions whose client has sent nothing for `idle_timeout`.
    pub fn reap_idle(&self) -> usize {
        let now = Instant::now();
        let mut sessions = self.lock();
        let before = sessions.len();
        sessions.retain(|session_id, session| {
            let alive = now.duration_since(session.last_activity) < self.idle_timeout;
            if !alive {
                session.close();
                // Other replicas must stop relaying to it now, not when its record expires.
                if let Some(relay) = &self.relay {
                    relay.forget(session_id);
                }
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

fn lock_table(table: &SessionTable) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
    table
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A JSON-RPC id as a key: its JSON text, so the number 1 and the string "1" stay apart.
fn request_key(id: &rmcp::model::RequestId) -> String {
    serde_json::to_string(id).unwrap_or_default()
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
                in_flight: HashMap::new(),
            },
        );
    }

    sessions.metrics.sse_stream_opened();
    let endpoint = sse::Event::Data(
        sse::Data::new(format!("/message?sessionId={session_id}")).event("endpoint"),
    );
    // Closing the session (reaper, shutdown) ends the stream at once, even while a call
    // still holds a sender.
    let mut from_server = from_server;
    let messages = futures::stream::poll_fn(move |context| from_server.poll_recv(context))
        .take_until(Box::pin(cancel.cancelled_owned()))
        .map(|data| sse::Event::Data(sse::Data::new(data).event("message")));
    // Built before the first await: a client that goes away while the session is being
    // registered still has it removed (the stream's drop does it).
    let stream = SessionStream {
        inner: futures::stream::iter([endpoint])
            .chain(messages)
            .map(Ok::<_, std::convert::Infallible>),
        session_id: session_id.clone(),
        sessions: Arc::clone(&sessions),
    };
    // Before the client learns the endpoint: its first POST may land on another replica.
    if let Some(relay) = &sessions.relay {
        relay.register(&session_id).await;
    }
    tracing::info!(
        principal = identity.principal(),
        "legacy SSE session opened"
    );
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
        Delivery::Busy => {
            let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, "session_busy");
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("1"),
            );
            response
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
        Some(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| {
            // serde_json writes UTF-8; were it not, an empty event would leave the client
            // waiting forever.
            error_text(
                &id,
                &ErrorData::internal_error("cannot serialise the answer", None),
            )
        }),
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

    fn sessions_for_tests() -> SseSessions {
        use crate::audit::Auditor;
        use crate::config::{AuditSettings, PolicySettings, Settings};
        use crate::limits::RateLimits;
        use crate::tools::{Policy, RegistryServices};
        let metrics = Arc::new(Metrics::new());
        let services = RegistryServices {
            policy: Policy::from_settings(&PolicySettings::default()),
            limits: RateLimits::from_settings(&Settings::default()),
            auditor: Arc::new(
                Auditor::from_settings(&AuditSettings {
                    stdout: false,
                    ..AuditSettings::default()
                })
                .unwrap(),
            ),
            metrics: Arc::clone(&metrics),
        };
        SseSessions::new(
            Arc::new(ToolRegistry::builtin_only(services)),
            metrics,
            10,
            Duration::from_secs(15),
            Duration::from_secs(60),
        )
    }

    fn identity(email: &str) -> Arc<Identity> {
        Arc::new(Identity {
            kind: crate::access::IdentityKind::User,
            email: Some(email.into()),
            sub: format!("sub-{email}"),
            country: None,
            common_name: None,
            identity_nonce: None,
            expires_at: 1_900_000_000,
            audience: "aud".into(),
            groups: vec![],
        })
    }

    fn ping(id: u64) -> ClientJsonRpcMessage {
        parse_client_message(format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#).as_bytes())
            .unwrap()
    }

    #[tokio::test]
    async fn refuses_requests_beyond_the_answers_a_session_may_owe_until_its_stream_is_read() {
        let sessions = sessions_for_tests();
        let ada = identity("ada@example.com");
        let (to_client, mut stream) = mpsc::channel(CHANNEL_DEPTH);
        sessions.lock().insert(
            "s".repeat(SESSION_ID_LEN),
            Session {
                owner: Arc::clone(&ada),
                to_client,
                last_activity: Instant::now(),
                cancel: CancellationToken::new(),
                in_flight: HashMap::new(),
            },
        );
        let session_id = "s".repeat(SESSION_ID_LEN);
        let deliver = |id| {
            sessions.deliver(
                &session_id,
                Arc::clone(&ada),
                RequestInfo::new(None),
                ping(id),
            )
        };

        let owed: Vec<Delivery> = (0..CHANNEL_DEPTH as u64).map(deliver).collect();
        let one_more = deliver(1_000);
        let notification = sessions.deliver(
            &session_id,
            Arc::clone(&ada),
            RequestInfo::new(None),
            parse_client_message(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .unwrap(),
        );
        let first_answer = stream.recv().await;
        let after_reading = deliver(1_001);

        assert!(owed.iter().all(|delivery| *delivery == Delivery::Accepted));
        assert_eq!(one_more, Delivery::Busy);
        assert_eq!(notification, Delivery::Accepted);
        assert!(first_answer.is_some_and(|answer| answer.contains(r#""result":{}"#)));
        assert_eq!(after_reading, Delivery::Accepted);
    }

    #[test]
    fn rejects_malformed_session_ids() {
        assert!(!is_well_formed_session_id("../../etc"));
        assert!(!is_well_formed_session_id(""));
        assert!(!is_well_formed_session_id(&"g".repeat(SESSION_ID_LEN)));
    }
}
