//! Fetching and parsing Cloudflare's certs document (`/cdn-cgi/access/certs`): bounded in
//! time and size, keeping only RSA signing keys from `keys`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use super::source::{FetchError, KeySource, SigningKeys};

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CERTS_BYTES: usize = 1024 * 1024;

/// Cloudflare's certs JSON. `public_cert`/`public_certs` carry the same keys as PEM
/// certificates; they are accepted and ignored because `keys` is authoritative.
#[derive(Debug, Deserialize)]
struct CertsDocument {
    #[serde(default)]
    keys: Vec<Jwk>,
    #[serde(default, rename = "public_cert")]
    _public_cert: Option<serde_json::Value>,
    #[serde(default, rename = "public_certs")]
    _public_certs: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

pub struct CertsFetcher {
    client: reqwest::Client,
    url: String,
}

impl CertsFetcher {
    pub fn new(url: String) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tunnelgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| FetchError::Transport(error.to_string()))?;
        Ok(Self { client, url })
    }

    pub async fn fetch(&self) -> Result<SigningKeys, FetchError> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|error| FetchError::Transport(error.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_CERTS_BYTES as u64)
        {
            return Err(FetchError::TooLarge(MAX_CERTS_BYTES));
        }
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|error| FetchError::Transport(error.to_string()))?;
            if body.len() + chunk.len() > MAX_CERTS_BYTES {
                return Err(FetchError::TooLarge(MAX_CERTS_BYTES));
            }
            body.extend_from_slice(&chunk);
        }
        parse_certs(&body)
    }
}

impl KeySource for CertsFetcher {
    fn fetch(&self) -> BoxFuture<'_, Result<SigningKeys, FetchError>> {
        Box::pin(CertsFetcher::fetch(self))
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

/// The RSA signing keys of a certs document, by `kid`.
pub fn parse_certs(body: &[u8]) -> Result<SigningKeys, FetchError> {
    let document: CertsDocument =
        serde_json::from_slice(body).map_err(|error| FetchError::Json(error.to_string()))?;
    let keys: SigningKeys = document
        .keys
        .into_iter()
        .filter_map(|jwk| {
            let is_rsa = jwk.kty.as_deref() == Some("RSA");
            let signs = jwk.usage.as_deref().is_none_or(|usage| usage == "sig");
            let rs256 = jwk.alg.as_deref().is_none_or(|alg| alg == "RS256");
            if !(is_rsa && signs && rs256) {
                return None;
            }
            let kid = jwk.kid.filter(|kid| !kid.is_empty())?;
            let key =
                DecodingKey::from_rsa_components(jwk.n.as_deref()?, jwk.e.as_deref()?).ok()?;
            Some((kid, Arc::new(key)))
        })
        .collect();
    if keys.is_empty() {
        return Err(FetchError::NoUsableKeys);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_rsa_signing_keys_with_an_id() {
        let body = br#"{
            "keys": [
                {"kid": "a", "kty": "RSA", "alg": "RS256", "use": "sig", "e": "AQAB", "n": "sXch"},
                {"kid": "b", "kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256", "x": "x", "y": "y"},
                {"kid": "c", "kty": "RSA", "alg": "RS256", "use": "enc", "e": "AQAB", "n": "sXch"},
                {"kty": "RSA", "alg": "RS256", "use": "sig", "e": "AQAB", "n": "sXch"}
            ],
            "public_cert": {"kid": "a", "cert": "-----BEGIN CERTIFICATE-----"},
            "public_certs": [{"kid": "a", "cert": "-----BEGIN CERTIFICATE-----"}]
        }"#;

        let keys = parse_certs(body).unwrap();

        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn a_document_without_rsa_keys_is_an_error_not_an_empty_set() {
        let error = parse_certs(br#"{"keys": []}"#).unwrap_err();
        assert!(matches!(error, FetchError::NoUsableKeys));
    }

    #[test]
    fn garbage_is_a_json_error() {
        assert!(matches!(
            parse_certs(b"<html>").unwrap_err(),
            FetchError::Json(_)
        ));
    }
}
