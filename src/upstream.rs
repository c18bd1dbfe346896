//! The internal API: where its OpenAPI document comes from (with a last-good copy under
//! `state_dir`), and the one pooled HTTP client that calls it with the server's credential.

mod client;
mod spec_source;

pub use client::{UpstreamClient, UpstreamClientOptions, UpstreamError, UpstreamResponse};
pub use spec_source::{SpecLoadError, SpecOrigin, load_spec};

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
    let credential = crate::tools::credential_header(settings)?;
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
