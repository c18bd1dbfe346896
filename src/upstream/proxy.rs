//! Whether the upstream is reached through an HTTP proxy: the standard environment variables
//! (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, also lower case), read once at start-up.

use http::{HeaderValue, Uri};
use hyper_util::client::proxy::matcher::Matcher;

/// The proxy for the upstream's base URL, with the credentials its URL carried.
pub struct UpstreamProxy {
    pub uri: Uri,
    /// `Proxy-Authorization` (Basic) from `http://user:password@proxy:port`.
    pub authorization: Option<HeaderValue>,
}

impl std::fmt::Debug for UpstreamProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamProxy")
            .field("uri", &self.uri)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The proxy the process environment names for `base_url`, the way curl and reqwest read it
/// (`HTTP_PROXY` is ignored when `REQUEST_METHOD` is set, as under CGI).
pub fn from_environment(base_url: &str) -> Option<UpstreamProxy> {
    proxy_for(&Matcher::from_system(), base_url)
}

pub fn proxy_for(matcher: &Matcher, base_url: &str) -> Option<UpstreamProxy> {
    let destination = base_url.parse::<Uri>().ok()?;
    let intercept = matcher.intercept(&destination)?;
    Some(UpstreamProxy {
        uri: intercept.uri().clone(),
        authorization: intercept.basic_auth().cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_proxy_for_an_https_upstream() {
        let matcher = Matcher::builder()
            .https("http://user:secret@proxy.internal:3128")
            .build();

        let proxy = proxy_for(&matcher, "https://api.polar.sh/").unwrap();

        assert_eq!(proxy.uri, "http://proxy.internal:3128/");
        assert_eq!(
            proxy.authorization.unwrap(),
            "Basic dXNlcjpzZWNyZXQ=" // user:secret
        );
    }

    #[test]
    fn leaves_out_a_host_that_no_proxy_names() {
        let matcher = Matcher::builder()
            .all("http://proxy.internal:3128")
            .no("api.internal,localhost")
            .build();

        assert!(proxy_for(&matcher, "http://api.internal:8080/v1").is_none());
        assert!(proxy_for(&matcher, "http://billing.internal/").is_some());
    }

    #[test]
    fn an_http_proxy_setting_does_not_catch_an_https_upstream() {
        let matcher = Matcher::builder()
            .http("http://proxy.internal:3128")
            .build();

        assert!(proxy_for(&matcher, "https://api.polar.sh/").is_none());
    }

    #[test]
    fn never_shows_the_proxy_password_in_debug() {
        let matcher = Matcher::builder()
            .all("http://user:hunter2@proxy.internal:3128")
            .build();

        let proxy = proxy_for(&matcher, "https://api.polar.sh/").unwrap();

        assert!(!format!("{proxy:?}").contains("hunter2"));
        assert!(!format!("{proxy:?}").contains("dXNlcjpodW50ZXIy"));
    }
}
