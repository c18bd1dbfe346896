//! `tunnelgate dev`'s stand-in for the Cloudflare edge: a loopback listener that puts the dev
//! identity's `Cf-Access-Jwt-Assertion` on every request and forwards it to the MCP listener,
//! as Access does in production, so a browser can open the page at `/` without Cloudflare.
//! `Host` and `Origin` pass unchanged (as through cloudflared); a token the client sent is
//! replaced, never forwarded.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header::HeaderName;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use super::issuer::DevIssuer;
use crate::access::ACCESS_JWT_HEADER;

/// A minted token is reused for this long (dev tokens live 8 h).
const TOKEN_REUSE: Duration = Duration::from_secs(3600);

/// Largest request body the edge buffers before forwarding.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Headers that describe one connection, not the request: never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("building the edge's HTTP client failed: {0}")]
    Client(#[from] reqwest::Error),
    #[error("serving the edge on {address} failed: {source}")]
    Serve {
        address: String,
        source: std::io::Error,
    },
}

/// Who the edge signs requests as.
pub struct EdgeIdentity {
    issuer: Arc<DevIssuer>,
    email: String,
    minted: Mutex<Option<(String, Instant)>>,
}

impl EdgeIdentity {
    pub fn new(issuer: Arc<DevIssuer>, email: impl Into<String>) -> Self {
        Self {
            issuer,
            email: email.into(),
            minted: Mutex::new(None),
        }
    }

    fn token(&self) -> Option<String> {
        let mut minted = match self.minted.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((token, at)) = minted.as_ref()
            && at.elapsed() < TOKEN_REUSE
        {
            return Some(token.clone());
        }
        match self.issuer.user_token(&self.email, None) {
            Ok(token) => {
                *minted = Some((token.clone(), Instant::now()));
                Some(token)
            }
            Err(error) => {
                tracing::error!(error = %error, "the dev edge cannot sign a token");
                None
            }
        }
    }
}

struct Forwarding {
    client: reqwest::Client,
    target: SocketAddr,
    identity: EdgeIdentity,
}

/// Serves the edge on `listener`, forwarding to `target` (the MCP listener) as `identity`.
pub fn serve(
    listener: TcpListener,
    target: SocketAddr,
    identity: EdgeIdentity,
) -> Result<actix_web::dev::Server, EdgeError> {
    let address = listener
        .local_addr()
        .map(|address| address.to_string())
        .unwrap_or_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let forwarding = web::Data::new(Forwarding {
        client,
        target,
        identity,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(forwarding.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .default_service(web::to(forward))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(|source| EdgeError::Serve { address, source })?
    .run();
    Ok(server)
}

async fn forward(
    forwarding: web::Data<Forwarding>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let url = format!("http://{}{path}", forwarding.target);
    let Ok(method) = reqwest::Method::from_bytes(request.method().as_str().as_bytes()) else {
        return HttpResponse::MethodNotAllowed().finish();
    };
    let mut outgoing = forwarding.client.request(method, url);
    for (name, value) in request.headers() {
        let lowered = name.as_str();
        if HOP_BY_HOP.contains(&lowered) || lowered.eq_ignore_ascii_case(ACCESS_JWT_HEADER) {
            continue;
        }
        outgoing = outgoing.header(name.as_str(), value.as_bytes());
    }
    if let Some(token) = forwarding.identity.token() {
        outgoing = outgoing.header(ACCESS_JWT_HEADER, token);
    }
    let answer = match outgoing.body(body).send().await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(error = %error, "the dev edge cannot reach the MCP listener");
            return HttpResponse::BadGateway()
                .content_type("text/plain; charset=utf-8")
                .body("tunnelgate dev edge: the MCP listener did not answer");
        }
    };
    let status = actix_web::http::StatusCode::from_u16(answer.status().as_u16())
        .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
    let mut response = HttpResponse::build(status);
    let mut streaming = false;
    for (name, value) in answer.headers() {
        let lowered = name.as_str();
        if HOP_BY_HOP.contains(&lowered) || lowered == "content-length" {
            continue;
        }
        if lowered == "content-type" && value.as_bytes().starts_with(b"text/event-stream") {
            streaming = true;
        }
        if let Ok(name) = HeaderName::from_bytes(name.as_str().as_bytes()) {
            response.append_header((name, value.as_bytes()));
        }
    }
    if streaming {
        return response.streaming(answer.bytes_stream());
    }
    match answer.bytes().await {
        Ok(bytes) => response.body(bytes),
        Err(error) => {
            tracing::warn!(error = %error, "the dev edge lost the MCP listener's answer");
            HttpResponse::BadGateway().finish()
        }
    }
}

/// The edge's origins, for `server.allowed_origins`: a browser that opened the page through
/// the edge posts forms with one of them as `Origin`.
pub fn origins(address: SocketAddr) -> [String; 2] {
    [
        format!("http://127.0.0.1:{}", address.port()),
        format!("http://localhost:{}", address.port()),
    ]
}
