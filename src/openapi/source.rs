//! Loading the OpenAPI document from a file or an http(s) URL. A fetched document that
//! parses is saved under `state_dir`; when the URL is down at start-up, that copy is used.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::config::SpecSource;

const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Polar's document is ~1.5 MB; this leaves room for much larger APIs.
const MAX_SPEC_BYTES: usize = 64 * 1024 * 1024;

/// Where the document in use came from; logged at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecOrigin {
    File(PathBuf),
    Url(String),
    /// The URL failed; this saved copy was used instead.
    SavedCopy {
        url: String,
        path: PathBuf,
    },
}

impl std::fmt::Display for SpecOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Url(url) => write!(f, "{url}"),
            Self::SavedCopy { url, path } => {
                write!(f, "the last good copy of {url} saved at {}", path.display())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpecLoadError {
    #[error("upstream.spec: cannot read {path}: {reason}")]
    File { path: String, reason: String },
    #[error("upstream.spec: cannot fetch {url} ({reason}) and no saved copy exists at {saved}")]
    Unreachable {
        url: String,
        reason: String,
        saved: String,
    },
}

/// The document read from `source` and parsed by `parse`, with where it came from. Each byte
/// string is parsed exactly once: the parse result decides whether fetched bytes replace the
/// saved copy, and is what the caller gets. A document that does not parse is returned as the
/// parse error (with its origin) unless a saved good copy can stand in for a fetched one.
pub async fn load_document<T, E>(
    source: &SpecSource,
    state_dir: &Path,
    parse: impl Fn(&[u8]) -> Result<T, E>,
) -> Result<(Result<T, E>, SpecOrigin), SpecLoadError> {
    let source = match source {
        SpecSource::File(path) => {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|error| SpecLoadError::File {
                    path: path.display().to_string(),
                    reason: error.to_string(),
                })?;
            return Ok((parse(&bytes), SpecOrigin::File(path.clone())));
        }
        SpecSource::Url(url) => url.as_str(),
    };
    let saved = saved_copy_path(state_dir, source);
    let saved_copy = || SpecOrigin::SavedCopy {
        url: source.to_string(),
        path: saved.clone(),
    };
    match fetch(source).await {
        Ok(bytes) => {
            let parsed = parse(&bytes);
            if parsed.is_ok() {
                save_copy(&saved, &bytes).await;
                return Ok((parsed, SpecOrigin::Url(source.to_string())));
            }
            // A bad document from the URL (an error page, a truncated body) must not stop a
            // restart that a saved good copy can serve; without one, the caller reports
            // exactly what is wrong with the fetched bytes.
            match tokio::fs::read(&saved).await {
                Ok(saved_bytes) => {
                    tracing::warn!(
                        url = source,
                        saved = %saved.display(),
                        "the fetched OpenAPI document is not valid; using the last good copy"
                    );
                    Ok((parse(&saved_bytes), saved_copy()))
                }
                Err(_) => Ok((parsed, SpecOrigin::Url(source.to_string()))),
            }
        }
        Err(reason) => match tokio::fs::read(&saved).await {
            Ok(bytes) => {
                tracing::warn!(
                    url = source,
                    reason = %reason,
                    saved = %saved.display(),
                    "cannot fetch the OpenAPI document; using the last good copy"
                );
                Ok((parse(&bytes), saved_copy()))
            }
            Err(_) => Err(SpecLoadError::Unreachable {
                url: source.to_string(),
                reason,
                saved: saved.display().to_string(),
            }),
        },
    }
}

/// One file per source URL, so switching URLs never serves another API's document.
fn saved_copy_path(state_dir: &Path, url: &str) -> PathBuf {
    let digest = Sha256::digest(url.as_bytes());
    let short = crate::hex::lower_hex(digest.get(..8).unwrap_or_default());
    state_dir.join(format!("openapi-{short}.json"))
}

async fn save_copy(path: &Path, bytes: &[u8]) {
    let outcome = async {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let temporary = path.with_extension("json.tmp");
        tokio::fs::write(&temporary, bytes).await?;
        tokio::fs::rename(&temporary, path).await
    }
    .await;
    if let Err(error) = outcome {
        tracing::warn!(
            path = %path.display(),
            error = %error,
            "cannot save the OpenAPI document; a restart while the URL is down will fail"
        );
    }
}

async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .user_agent(concat!("tunnelgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| error.to_string())?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| error.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| error.without_url().to_string())?;
        if body.len() + chunk.len() > MAX_SPEC_BYTES {
            return Err(format!("document larger than {MAX_SPEC_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
