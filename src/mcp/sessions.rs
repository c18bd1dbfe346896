//! Stateful Streamable HTTP sessions (`server.mode = "stateful"`): rmcp keeps the sessions,
//! this keeps who owns them. A session belongs to the identity that created it (another
//! identity's request with its id is refused, as on legacy SSE), at most `server.max_sessions`
//! exist at once (one more answers 503 with `Retry-After`), and a session idle for
//! `server.session_idle_timeout` is closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::json;

use crate::access::Identity;

const SESSION_HEADER: &str = "mcp-session-id";

/// How long a client is told to wait when the session table is full.
const RETRY_AFTER_SECS: u64 = 30;

struct Owned {
    owner: Arc<Identity>,
    last_activity: Instant,
}

pub struct StatefulSessions {
    owners: Mutex<HashMap<String, Owned>>,
    manager: Arc<LocalSessionManager>,
    max_sessions: usize,
    idle_timeout: Duration,
}

impl StatefulSessions {
    pub fn new(
        manager: Arc<LocalSessionManager>,
        max_sessions: usize,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            owners: Mutex::new(HashMap::new()),
            manager,
            max_sessions,
            idle_timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Owned>> {
        match self.owners.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    async fn close(&self, session_id: &str) {
        self.lock().remove(session_id);
        let id: Arc<str> = Arc::from(session_id);
        if let Err(error) = self.manager.close_session(&id).await {
            tracing::debug!(error = %error, "closing a stateful session");
        }
    }

    /// Closes sessions idle for longer than the timeout.
    pub fn spawn_reaper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sessions = Arc::clone(self);
        let period = (self.idle_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let idle: Vec<String> = sessions
                    .lock()
                    .iter()
                    .filter(|(_, owned)| owned.last_activity.elapsed() >= sessions.idle_timeout)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &idle {
                    sessions.close(id).await;
                }
                if !idle.is_empty() {
                    tracing::info!(closed = idle.len(), "closed idle stateful sessions");
                }
            }
        })
    }
}

fn refuse(status: StatusCode, error: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": error }))
}

/// Middleware on `/mcp` in stateful mode: the owner check before rmcp sees a request that
/// names a session, and the bookkeeping after rmcp creates or deletes one.
pub async fn guard_sessions(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(sessions) = request
        .app_data::<web::Data<StatefulSessions>>()
        .map(|data| data.clone().into_inner())
    else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let identity = request.extensions().get::<Arc<Identity>>().cloned();
    let named = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if let (Some(session_id), Some(identity)) = (&named, &identity) {
        let mut owners = sessions.lock();
        if let Some(owned) = owners.get_mut(session_id) {
            if !owned.owner.is_same_caller(identity) {
                tracing::warn!(
                    principal = identity.principal(),
                    owner = owned.owner.principal(),
                    "refused a request for another identity's session"
                );
                drop(owners);
                let response = refuse(StatusCode::FORBIDDEN, "session_belongs_to_another_identity");
                return Ok(request.into_response(response));
            }
            owned.last_activity = Instant::now();
        }
    }
    let deleting = request.method() == Method::DELETE;
    let response = next.call(request).await?.map_into_boxed_body();
    match (named, identity) {
        (Some(session_id), _) if deleting && response.status().is_success() => {
            sessions.lock().remove(&session_id);
            Ok(response)
        }
        (None, Some(identity)) => {
            let created = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let Some(session_id) = created else {
                return Ok(response);
            };
            let admitted = {
                let mut owners = sessions.lock();
                let admitted = owners.len() < sessions.max_sessions;
                if admitted {
                    owners.insert(
                        session_id.clone(),
                        Owned {
                            owner: identity,
                            last_activity: Instant::now(),
                        },
                    );
                }
                admitted
            };
            if admitted {
                return Ok(response);
            }
            // rmcp made the session before anyone could know the table was full: undo it.
            sessions.close(&session_id).await;
            tracing::warn!(
                limit = sessions.max_sessions,
                "stateful session limit reached"
            );
            let (request, _) = response.into_parts();
            let mut refused = refuse(StatusCode::SERVICE_UNAVAILABLE, "too_many_sessions");
            refused.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(RETRY_AFTER_SECS),
            );
            Ok(ServiceResponse::new(request, refused))
        }
        _ => Ok(response),
    }
}
