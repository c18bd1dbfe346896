//! Where the key cache gets signing keys from: the seam between [`KeyCache`] and the network.
//!
//! Production fetches Cloudflare's certs document over HTTP ([`CertsFetcher`]); the dev
//! issuer hands out its own published keys in memory, so the cache's rules (refresh,
//! unknown-`kid` refetch, cooldown, stale-if-error) can be exercised without a socket.
//!
//! [`KeyCache`]: crate::access::KeyCache
//! [`CertsFetcher`]: crate::access::CertsFetcher

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use jsonwebtoken::DecodingKey;

/// One fetched key set: RSA verification keys by `kid`.
pub type SigningKeys = HashMap<String, Arc<DecodingKey>>;

/// Why a key set could not be fetched or used.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("certs request failed: {0}")]
    Transport(String),
    #[error("certs endpoint answered HTTP {0}")]
    Status(u16),
    #[error("certs document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("certs document is not valid JSON: {0}")]
    Json(String),
    #[error("certs document holds no usable RSA signing key")]
    NoUsableKeys,
}

/// A provider of the currently published signing keys.
///
/// A boxed future rather than `async fn` keeps the trait object-safe, so the cache can
/// hold an `Arc<dyn KeySource>` and tests can keep their own handle on the same source.
pub trait KeySource: Send + Sync {
    /// The complete key set as published right now. An error leaves the caller's last
    /// good set in place; it never means "no keys".
    fn fetch(&self) -> BoxFuture<'_, Result<SigningKeys, FetchError>>;

    /// Where the keys come from, for log lines (the certs URL in production).
    fn describe(&self) -> String;
}
