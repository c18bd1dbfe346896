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

/// 64 random bits as 16 hex digits, from the thread's generator (no system call per request).
fn short_id() -> String {
    crate::hex::lower_hex(&rand::random::<u64>().to_be_bytes())
}

/// The request's `Cf-Ray`, if it looks like one. The header is client-controlled when a
/// request does not come through Cloudflare, so anything long or with control characters
/// is dropped rather than copied into logs and audit lines.
pub fn cf_ray(headers: &actix_web::http::header::HeaderMap) -> Option<&str> {
    headers
        .get("Cf-Ray")
        .and_then(|value| value.to_str().ok())
        .filter(|value| value.len() <= 64 && value.bytes().all(|b| b.is_ascii_graphic()))
}

/// Middleware: gives every request a [`RequestInfo`] and a span carrying its id.
pub async fn assign_request_id(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    use tracing::Instrument;
    let cf_ray = cf_ray(request.headers()).map(str::to_string);
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

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    use super::cf_ray;

    fn headers_with_ray(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("cf-ray"),
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn reads_a_cf_ray_as_cloudflare_sends_it() {
        let headers = headers_with_ray("8f1e2d3c4b5a6978-AMS");

        assert_eq!(cf_ray(&headers), Some("8f1e2d3c4b5a6978-AMS"));
    }

    #[test]
    fn drops_a_cf_ray_that_is_too_long_or_holds_spaces() {
        let too_long = headers_with_ray(&"a".repeat(65));
        let spaced = headers_with_ray("8f1e2d3c 4b5a6978-AMS");

        assert_eq!(cf_ray(&too_long), None);
        assert_eq!(cf_ray(&spaced), None);
    }

    #[test]
    fn has_no_cf_ray_when_the_header_is_absent() {
        assert_eq!(cf_ray(&HeaderMap::new()), None);
    }
}
