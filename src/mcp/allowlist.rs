//! Host and Origin allowlists for every MCP route: the tunnel presents the public
//! hostname as `Host`; anything else (DNS rebinding, a foreign browser page) is refused.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError, web};

use crate::config::Origin;

const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Hostnames accepted in `Host` and their https origins accepted in `Origin`.
#[derive(Debug, Clone)]
pub struct RequestAllowlist {
    hosts: Vec<String>,
    /// Configured extra origins, normalised by `url` (`scheme://host[:port]`).
    extra_origins: Vec<String>,
}

impl RequestAllowlist {
    pub fn with_extra_origins(public_hostnames: &[String], extra_origins: &[Origin]) -> Self {
        let mut hosts: Vec<String> = public_hostnames
            .iter()
            .map(|host| host.trim().to_ascii_lowercase())
            .collect();
        hosts.extend(LOOPBACK_HOSTS.iter().map(|host| host.to_string()));
        hosts.dedup();
        let extra_origins = extra_origins
            .iter()
            .map(|origin| origin.as_str().to_owned())
            .collect();
        Self {
            hosts,
            extra_origins,
        }
    }

    /// The list as rmcp's Streamable HTTP transport takes it (same policy, checked twice).
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    pub fn origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = self
            .hosts
            .iter()
            .map(|host| {
                // An explicit default port: rmcp treats a portless entry as "any port".
                if host.contains(':') {
                    format!("https://[{host}]:443")
                } else {
                    format!("https://{host}:443")
                }
            })
            .collect();
        origins.extend(self.extra_origins.iter().cloned());
        origins
    }

    /// `Host` may carry a port; the hostname alone decides.
    pub fn allows_host(&self, authority: &str) -> bool {
        let Ok(parsed) = authority.parse::<http::uri::Authority>() else {
            return false;
        };
        let host = parsed
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    /// Only the https origin of an allowed host, on the default port.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let Ok(url) = url::Url::parse(origin) else {
            return false;
        };
        if self
            .extra_origins
            .contains(&url.origin().ascii_serialization())
        {
            return true;
        }
        if url.scheme() != "https" || url.port().is_some() {
            return false;
        }
        let host = match url.host() {
            Some(url::Host::Domain(domain)) => domain.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return false,
        };
        self.hosts.contains(&host)
    }
}

#[derive(Debug, Clone, Copy, thiserror::Error)]
enum AllowlistRejection {
    #[error("host not allowed")]
    Host,
    #[error("origin not allowed")]
    Origin,
}

impl ResponseError for AllowlistRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    fn error_response(&self) -> HttpResponse {
        let error = match self {
            Self::Host => "host_not_allowed",
            Self::Origin => "origin_not_allowed",
        };
        HttpResponse::Forbidden().json(serde_json::json!({ "error": error }))
    }
}

fn record_refusal(request: &ServiceRequest, rejection: AllowlistRejection) {
    let reason = match rejection {
        AllowlistRejection::Host => "host_not_allowed",
        AllowlistRejection::Origin => "origin_not_allowed",
    };
    crate::audit::record_denied_request(request.request(), reason);
}

/// Middleware: refuses a foreign `Host` or a present, foreign `Origin` with 403.
pub async fn enforce_allowlist(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(allowlist) = request.app_data::<web::Data<RequestAllowlist>>() else {
        return Err(AllowlistRejection::Host.into());
    };
    let host = request
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.to_string())
        });
    if !host
        .as_deref()
        .is_some_and(|host| allowlist.allows_host(host))
    {
        tracing::warn!(
            host = host.as_deref().unwrap_or("-"),
            "request for a host that is not allowed"
        );
        record_refusal(&request, AllowlistRejection::Host);
        return Err(AllowlistRejection::Host.into());
    }
    if let Some(origin) = request.headers().get(actix_web::http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !allowlist.allows_origin(origin) {
            tracing::warn!(origin, "request from an origin that is not allowed");
            record_refusal(&request, AllowlistRejection::Origin);
            return Err(AllowlistRejection::Origin.into());
        }
    }
    next.call(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowlist() -> RequestAllowlist {
        RequestAllowlist::with_extra_origins(&["mcp.example.com".to_string()], &[])
    }

    #[test]
    fn allows_the_public_hostname_and_loopback_with_any_port() {
        let list = allowlist();
        assert!(list.allows_host("mcp.example.com"));
        assert!(list.allows_host("MCP.example.com:443"));
        assert!(list.allows_host("127.0.0.1:8080"));
        assert!(list.allows_host("[::1]:8080"));
        assert!(list.allows_host("localhost"));
    }

    #[test]
    fn allows_a_configured_extra_origin_exactly() {
        let list = RequestAllowlist::with_extra_origins(
            &["mcp.example.com".to_string()],
            &["http://localhost:6274".parse().unwrap()],
        );
        assert!(list.allows_origin("http://localhost:6274"));
        assert!(!list.allows_origin("http://localhost:6275"));
    }

    #[test]
    fn refuses_other_hosts() {
        let list = allowlist();
        assert!(!list.allows_host("evil.example"));
        assert!(!list.allows_host("mcp.example.com.evil.example"));
        assert!(!list.allows_host(""));
    }

    #[test]
    fn allows_only_https_origins_of_allowed_hosts() {
        let list = allowlist();
        assert!(list.allows_origin("https://mcp.example.com"));
        assert!(!list.allows_origin("http://mcp.example.com"));
        assert!(!list.allows_origin("https://mcp.example.com:8443"));
        assert!(!list.allows_origin("https://evil.example"));
        assert!(!list.allows_origin("null"));
    }
}
