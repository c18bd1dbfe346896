//! Streamable HTTP at `/mcp` through rmcp-actix-web, for protocol versions 2025-03-26
//! through 2026-07-28; stateless unless `server.mode = stateful`.

use std::sync::Arc;

use actix_web::HttpMessage;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp_actix_web::transport::StreamableHttpService;

use super::allowlist::RequestAllowlist;
use super::handler::McpHandler;
use crate::access::Identity;
use crate::config::{ServerMode, ServerSettings};
use crate::telemetry::RequestInfo;
use crate::tools::ToolRegistry;

pub type McpHttpService = StreamableHttpService<McpHandler, LocalSessionManager>;

pub fn service(
    registry: Arc<ToolRegistry>,
    settings: &ServerSettings,
    allowlist: &RequestAllowlist,
    sessions: Arc<LocalSessionManager>,
) -> McpHttpService {
    let factory_registry = Arc::clone(&registry);
    StreamableHttpService::builder()
        .service_factory(Arc::new(move || {
            Ok(McpHandler::new(Arc::clone(&factory_registry)))
        }))
        .session_manager(sessions)
        .stateful_mode(settings.mode == ServerMode::Stateful)
        // Tool calls are request/response: a plain JSON answer avoids SSE framing and
        // buffering surprises in proxies, and rmcp falls back to SSE when it must stream.
        .json_response(true)
        .max_request_body_bytes(settings.max_body.as_usize())
        .allowed_hosts(allowlist.hosts().to_vec())
        .allowed_origins(allowlist.origins())
        .on_request_fn(|request, extensions| {
            let http_extensions = request.extensions();
            if let Some(identity) = http_extensions.get::<Arc<Identity>>() {
                extensions.insert(Arc::clone(identity));
            }
            if let Some(info) = http_extensions.get::<RequestInfo>() {
                extensions.insert(info.clone());
            }
        })
        .sse_keep_alive(settings.sse_keep_alive)
        // rmcp primes every SSE stream when a retry interval is set, whatever version the
        // client negotiated; clients older than 2025-11-25 may choke on the empty priming
        // event, and without an event store there is nothing to resume anyway.
        .disable_sse_retry()
        .build()
}
