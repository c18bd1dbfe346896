//! Logging: structured JSON in production, readable lines in `dev`, `RUST_LOG`-style
//! filtering. Nothing here ever formats a token or secret.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// Identifies one HTTP request in logs and audit events. The id carries `Cf-Ray` when
/// Cloudflare sent one, so a log line can be matched to Cloudflare's own logs.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub request_id: String,
    pub cf_ray: Option<String>,
    pub started: std::time::Instant,
}

impl RequestInfo {
    pub fn new(cf_ray: Option<String>) -> Self {
        let request_id = match &cf_ray {
            Some(ray) => format!("{ray}-{}", short_id()),
            None => short_id(),
        };
        Self {
            request_id,
            cf_ray,
            started: std::time::Instant::now(),
        }
    }
}

fn short_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id.chars().take(16).collect()
}

/// Middleware: gives every request a [`RequestInfo`] and a span carrying its id.
pub async fn assign_request_id(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    use tracing::Instrument;
    let cf_ray = request
        .headers()
        .get("Cf-Ray")
        .and_then(|value| value.to_str().ok())
        .filter(|value| value.len() <= 64 && value.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string);
    let info = RequestInfo::new(cf_ray);
    let span = tracing::info_span!(
        "request",
        request_id = %info.request_id,
        method = %request.method(),
        path = %request.path()
    );
    request.extensions_mut().insert(info);
    next.call(request).instrument(span).await
}
