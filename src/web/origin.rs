//! The page's own origin, from the `Host` the allowlist admitted: what the Connect section
//! fills in and what a form POST's `Origin` must be.

use actix_web::HttpRequest;
use actix_web::http::header;

/// The request's `Host` (the allowlist has already checked it).
pub fn request_host(request: &HttpRequest) -> Option<String> {
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
pub fn own_origin(host: &str) -> String {
    if is_loopback_host(host) {
        format!("http://{host}")
    } else {
        format!("https://{host}")
    }
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
