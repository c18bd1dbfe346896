//! The upstream credential: the configured token (or token file) as the header that carries it.

use anyhow::Context;
use http::{HeaderName, HeaderValue};

use crate::config::Settings;

/// The credential header the client sends, or `None` when no token is configured.
pub fn credential_header(settings: &Settings) -> anyhow::Result<Option<(HeaderName, HeaderValue)>> {
    let token = match (&settings.upstream.token, &settings.upstream.token_file) {
        (Some(token), _) => Some(token.expose().trim().to_string()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("upstream.token_file: cannot read {}", path.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let Some(token) = token.filter(|token| !token.is_empty()) else {
        return Ok(None);
    };
    let name = settings.upstream.token_header.name().clone();
    let value = if name == http::header::AUTHORIZATION {
        format!("Bearer {token}")
    } else {
        token
    };
    let value = HeaderValue::from_str(&value)
        .map_err(|_| anyhow::anyhow!("upstream.token: holds characters a header cannot carry"))?;
    Ok(Some((name, value)))
}
