//! The page at `/` for the people behind the assistants: who Access says they are, the tools
//! the policy lets them call (searchable, each with a try-it form that runs through the same
//! registry path as MCP), and how to connect a client. Server-rendered with `maud`, one
//! stylesheet and one small script embedded in the binary; every route sits in the same scope
//! as `/mcp`, behind the same allowlist and Access guard (`mcp.rs`).

mod assets;
mod connect;
mod csrf;
mod fields;
pub mod forbidden;
mod layout;
mod page;
mod result;
mod try_tool;

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::access::{Identity, KeyCache};
use crate::config::Settings;
use crate::telemetry::RequestInfo;
use crate::tools::ToolRegistry;

pub use csrf::CsrfKey;

/// Everything the page needs, built once in `Application::build`.
pub struct Site {
    title: String,
    /// The first of `server.public_hostnames`: what the Connect section fills in.
    public_hostname: Option<String>,
    registry: Arc<ToolRegistry>,
    keys: Arc<KeyCache>,
    csrf: CsrfKey,
    started: Instant,
}

impl Site {
    pub fn new(settings: &Settings, registry: Arc<ToolRegistry>, keys: Arc<KeyCache>) -> Self {
        Self {
            title: settings.web.title.trim().to_owned(),
            public_hostname: settings.server.public_hostnames.first().cloned(),
            registry,
            keys,
            csrf: CsrfKey::generate(),
            started: Instant::now(),
        }
    }
}

/// The page's routes, mounted inside the guarded scope (nothing here runs without a verified
/// identity).
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(page::show))
        .route("/tools/{name}", web::get().to(try_tool::form))
        .route("/tools/{name}", web::post().to(try_tool::run))
        .route("/assets/{file}", web::get().to(assets::serve));
}

/// The strict policy every page and the 403 page carry: nothing but this origin's own script
/// and stylesheet, no frames, forms post only here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML answer with the security headers. Every page says who is signed in, so none may be
/// stored by the browser or anything in between.
fn html(status: StatusCode, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    with_security_headers(response.body(body))
}

fn with_security_headers(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: under it a browser sends `Origin: null` with the page's own form POST,
    // which the cross-site check must refuse. `same-origin` still sends nothing to other sites.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The verified identity the guard put into the request, and the request's id.
fn caller(request: &HttpRequest) -> Option<(Arc<Identity>, RequestInfo)> {
    let extensions = request.extensions();
    let identity = extensions.get::<Arc<Identity>>().cloned()?;
    let info = extensions
        .get::<RequestInfo>()
        .cloned()
        .unwrap_or_else(|| RequestInfo::new(None));
    Some((identity, info))
}

/// The request's `Host` (the allowlist has already checked it).
fn request_host(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(|host| host.trim().to_ascii_lowercase())
        .filter(|host| !host.is_empty())
}

/// Whether `host` (with or without a port) names this machine.
fn is_loopback_host(host: &str) -> bool {
    let Ok(authority) = host.parse::<http::uri::Authority>() else {
        return false;
    };
    let name = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// The page's own origin as the browser sees it: https for the public hostname (Cloudflare
/// terminates TLS), http for loopback (`tunnelgate dev`'s edge, tests).
fn own_origin(host: &str) -> String {
    if is_loopback_host(host) {
        format!("http://{host}")
    } else {
        format!("https://{host}")
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_hostname_is_https_and_loopback_is_http() {
        assert_eq!(own_origin("mcp.example.com"), "https://mcp.example.com");
        assert_eq!(own_origin("127.0.0.1:8081"), "http://127.0.0.1:8081");
        assert_eq!(own_origin("localhost:8081"), "http://localhost:8081");
        assert_eq!(own_origin("[::1]:8081"), "http://[::1]:8081");
    }
}
