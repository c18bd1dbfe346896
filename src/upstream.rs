//! The internal API: the pooled HTTP client that calls it with the server's credential.
//! A leaf: it knows nothing of tools, OpenAPI or MCP; it sends the [`UpstreamRequest`]s it is given.

mod client;
mod credential;
mod proxy;
mod request;
mod transport;

pub use client::{UpstreamClient, UpstreamClientOptions, UpstreamError, UpstreamResponse};
pub use request::UpstreamRequest;

use http::{HeaderName, HeaderValue};

use crate::config::Settings;

/// Client options from settings: base URL, credential, extra headers, limits.
pub fn client_options(
    settings: &Settings,
    base_url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> anyhow::Result<UpstreamClientOptions> {
    let credential = credential::credential_header(settings)?;
    if credential.is_none() {
        tracing::warn!(
            "no upstream token configured; upstream calls are sent without a credential"
        );
    }
    refuse_credentials_in_the_url(&base_url)?;
    warn_if_plain_http_beyond_loopback(&base_url);
    let proxy = proxy::from_environment(&base_url);
    if let Some(proxy) = &proxy {
        tracing::info!(proxy = %proxy.uri, "upstream requests go through the proxy the environment names");
    }
    Ok(UpstreamClientOptions {
        base_url,
        credential,
        headers,
        timeout: settings.upstream.timeout,
        connect_timeout: settings.upstream.connect_timeout,
        max_concurrency: settings.upstream.max_concurrency,
        max_response: settings.upstream.max_response.as_usize(),
        proxy,
    })
}

/// A user name and password in `upstream.base_url` would be sent nowhere useful (and would
/// show in logs); the credential belongs in `upstream.token`. The message never shows it.
fn refuse_credentials_in_the_url(base_url: &str) -> anyhow::Result<()> {
    let Ok(url) = url::Url::parse(base_url) else {
        return Ok(());
    };
    if !url.username().is_empty() || url.password().is_some() {
        anyhow::bail!(
            "upstream.base_url carries a user name or password; give the credential as upstream.token (or upstream.headers) instead"
        );
    }
    Ok(())
}

/// Internal APIs are often plain http, so it is allowed; but the credential then crosses the
/// network in clear text, which an operator should decide knowingly.
fn warn_if_plain_http_beyond_loopback(base_url: &str) {
    let Ok(url) = url::Url::parse(base_url) else {
        return;
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        tracing::warn!(
            base_url,
            "upstream.base_url is plain http beyond loopback: the upstream credential travels unencrypted"
        );
    }
}
