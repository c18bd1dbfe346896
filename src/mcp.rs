//! The MCP surface: Streamable HTTP at `/mcp`, legacy HTTP+SSE at `/sse` + `/message`,
//! both behind the Access guard and the Host/Origin allowlist, both feeding one handler.

pub mod allowlist;
pub mod fast_lane;
pub mod handler;
pub mod jsonrpc_guard;
pub mod legacy_sse;
mod removed_methods;
pub mod sessions;
pub mod streamable;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{Error, web};

use crate::access::require_access;
pub use allowlist::RequestAllowlist;
pub use fast_lane::FastLane;
pub use legacy_sse::SseSessions;
pub use sessions::StatefulSessions;

/// Mounts both transports and, with `page`, the page at `/` (`web.rs`) in the same scope.
/// Middleware order (outermost first): request id, allowlist, Access guard (which answers a
/// browser with the page's 403 when the page is on), stream headers; nothing reaches a
/// transport or the page without a verified identity.
pub fn routes(config: &mut web::ServiceConfig, streamable: streamable::McpHttpService, page: bool) {
    config.service(
        web::scope("")
            .wrap(from_fn(stream_headers))
            .wrap(from_fn(require_access))
            .wrap(from_fn(allowlist::enforce_allowlist))
            .wrap(from_fn(crate::telemetry::assign_request_id))
            .route("/sse", web::get().to(legacy_sse::open_stream))
            .route("/message", web::post().to(legacy_sse::post_message))
            .configure(|config| {
                if page {
                    crate::web::routes(config);
                }
            })
            .service(
                streamable
                    .scope_with_path("/mcp")
                    .wrap(from_fn(jsonrpc_guard::validate_jsonrpc))
                    .wrap(from_fn(sessions::guard_sessions)),
            ),
    );
}

/// Event streams must reach the client unbuffered: proxies (nginx-style) honour
/// `X-Accel-Buffering: no`, and `no-cache` stops intermediaries from holding them.
async fn stream_headers(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut response = next.call(request).await?;
    // rmcp's plain-text refusals (406, 415, some 400s) leave the type to the transport,
    // which calls them application/octet-stream. Say what they are.
    let untyped_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|value| value == "application/octet-stream")
        && (response.status().is_client_error() || response.status().is_server_error())
        && !matches!(
            response.response().body().size(),
            actix_web::body::BodySize::None | actix_web::body::BodySize::Sized(0)
        );
    if untyped_text {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    let is_event_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    if is_event_stream {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
        headers.remove(header::CONTENT_ENCODING);
    }
    Ok(response)
}
