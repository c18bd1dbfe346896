//! The internal API: the one pooled HTTP client that calls it with the server's credential.
//! A leaf: it knows nothing of tools, OpenAPI or MCP; it sends the [`UpstreamRequest`]s it is given.

mod client;
mod credential;
mod request;

pub use client::{UpstreamClient, UpstreamClientOptions, UpstreamError, UpstreamResponse};
pub use request::UpstreamRequest;

use std::collections::BTreeMap;

use anyhow::Context;
use http::{HeaderName, HeaderValue};

use crate::config::Settings;

/// Client options from settings: base URL, credential, extra headers, limits.
pub fn client_options(
    settings: &Settings,
    base_url: String,
    headers: &BTreeMap<String, String>,
) -> anyhow::Result<UpstreamClientOptions> {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("upstream.headers: invalid header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .with_context(|| format!("upstream.headers.{name}: invalid value"))?;
            Ok((name, value))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let credential = credential::credential_header(settings)?;
    if credential.is_none() {
        tracing::warn!(
            "no upstream token configured; upstream calls are sent without a credential"
        );
    }
    Ok(UpstreamClientOptions {
        base_url,
        credential,
        headers,
        timeout: settings.upstream.timeout,
        connect_timeout: settings.upstream.connect_timeout,
        max_concurrency: settings.upstream.max_concurrency,
        max_response: settings.upstream.max_response.as_usize(),
    })
}
