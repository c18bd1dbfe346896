//! Logging: structured JSON in production, readable lines in `dev`, `RUST_LOG`-style
//! filtering. Nothing here ever formats a token or secret.

mod deferred;
mod line;

use std::sync::Arc;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::JsonFields;

use crate::config::LogFormat;
pub use deferred::{DeferredFields, attach as attach_deferred_fields};

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
            .fmt_fields(JsonFields::new())
            .event_format(line::LineFormat::json())
            .try_init(),
        LogFormat::Pretty => builder.event_format(line::LineFormat::text()).try_init(),
    };
}

/// Identifies one HTTP request in logs and audit events. The id carries `Cf-Ray` when
/// Cloudflare sent one, so a log line can be matched to Cloudflare's own logs.
/// Cloning one is cheap (it is copied into each call's audit event and log span).
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub request_id: Arc<str>,
    pub cf_ray: Option<Arc<str>>,
    pub started: std::time::Instant,
}

impl RequestInfo {
    pub fn new(cf_ray: Option<&str>) -> Self {
        let request_id = match cf_ray {
            Some(ray) => format!("{ray}-{}", short_id()).into(),
            None => short_id().into(),
        };
        Self {
            request_id,
            cf_ray: cf_ray.map(Arc::from),
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

/// Middleware: gives every request a [`RequestInfo`] and a span carrying its id, method and
/// path (without the query string), formatted only if a line is logged inside it.
pub async fn assign_request_id(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    use tracing::Instrument;
    let info = RequestInfo::new(cf_ray(request.headers()));
    let span = tracing::info_span!("request");
    attach_deferred_fields(&span, || RequestFields {
        request_id: Arc::clone(&info.request_id),
        method: request.method().clone(),
        path: request.path().into(),
    });
    request.extensions_mut().insert(info);
    next.call(request).instrument(span).await
}

/// The `request` span's fields.
struct RequestFields {
    request_id: Arc<str>,
    method: actix_web::http::Method,
    path: Box<str>,
}

impl DeferredFields for RequestFields {
    fn for_each(&self, visit: &mut dyn FnMut(&'static str, &dyn std::fmt::Display)) {
        visit("request_id", &self.request_id);
        visit("method", &self.method);
        visit("path", &self.path);
    }
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
