//! Verification of one `Cf-Access-Jwt-Assertion` token: RS256 only, `kid` required,
//! `exp`/`iss`/`aud` required and checked, `nbf` honoured, `type` must be `app`.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::groups::{IdentityLookup, groups_from_claims};
use super::identity::{Identity, IdentityKind};
use super::keys::{KeyCache, KeyLookupError, unix_now};
use super::rejection::{AccessError, RejectReason};
use super::token_cache::{TokenCache, digest};
use crate::config::LookupFailure;

/// Longer than any token Access issues (a few KB with custom claims); anything bigger is
/// refused before hashing or parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The claims Cloudflare puts in an application token.
#[derive(Debug, Deserialize)]
struct AccessClaims {
    #[serde(default)]
    aud: Option<Audience>,
    exp: u64,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    common_name: Option<String>,
    #[serde(default)]
    identity_nonce: Option<String>,
    #[serde(default, rename = "type")]
    token_type: Option<String>,
    /// Every other claim, for the configured groups claim path.
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

pub struct AccessVerifier {
    keys: Arc<KeyCache>,
    cache: TokenCache,
    validation: Validation,
    audiences: Vec<String>,
    groups_claim: Option<Vec<String>>,
    lookup: Option<IdentityLookup>,
}

impl AccessVerifier {
    pub fn new(
        keys: Arc<KeyCache>,
        issuer: &str,
        audiences: Vec<String>,
        leeway: Duration,
        cache_capacity: usize,
    ) -> Self {
        // Whatever algorithm a token names, only RS256 is acceptable: this is what
        // defeats `alg: none` and HS256-with-the-public-key forgeries.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&audiences);
        // jsonwebtoken checks `iss` and `aud` only when present unless they are required.
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.leeway = leeway.as_secs();
        Self {
            keys,
            cache: TokenCache::new(cache_capacity),
            validation,
            audiences,
            groups_claim: None,
            lookup: None,
        }
    }

    /// Reads groups from this dot-separated claim path.
    pub fn with_groups_claim(mut self, path: Option<&str>) -> Self {
        self.groups_claim = path.map(|path| path.split('.').map(String::from).collect());
        self
    }

    /// Adds groups from Cloudflare's get-identity endpoint.
    pub fn with_identity_lookup(mut self, lookup: Option<IdentityLookup>) -> Self {
        self.lookup = lookup;
        self
    }

    /// The identity a token proves, or the check class it failed.
    pub async fn verify(&self, token: &str) -> Result<Arc<Identity>, AccessError> {
        if token.is_empty() {
            return Err(AccessError::Rejected(RejectReason::Missing));
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AccessError::Rejected(RejectReason::Malformed));
        }
        let token_digest = digest(token);
        let now = unix_now();
        let generation = self.keys.generation();
        if let Some(identity) = self.cache.get(&token_digest, now, generation) {
            return Ok(identity);
        }

        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| AccessError::Rejected(classify(error.kind())))?;
        if header.alg != Algorithm::RS256 {
            return Err(AccessError::Rejected(RejectReason::BadSignature));
        }
        let kid = header
            .kid
            .filter(|kid| !kid.is_empty())
            .ok_or(AccessError::Rejected(RejectReason::Malformed))?;
        let (key, key_generation) = self.keys.key_for(&kid).await.map_err(|error| match error {
            KeyLookupError::UnknownKid(_) => AccessError::Rejected(RejectReason::UnknownKey),
            KeyLookupError::NotLoaded => AccessError::KeysUnavailable,
        })?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)
            .map_err(|error| AccessError::Rejected(classify(error.kind())))?
            .claims;

        if claims.token_type.as_deref() != Some("app") {
            return Err(AccessError::Rejected(RejectReason::WrongType));
        }
        let audience = self
            .matched_audience(claims.aud.as_ref())
            .ok_or(AccessError::Rejected(RejectReason::WrongAudience))?;
        let mut groups = match &self.groups_claim {
            Some(path) => groups_from_claims(&claims.other, path),
            None => Vec::new(),
        };
        let mut cache_until = u64::MAX;
        // get-identity describes people; service tokens carry no user identity to look up.
        let is_user = claims
            .email
            .as_deref()
            .is_some_and(|email| !email.is_empty());
        if let Some(lookup) = self.lookup.as_ref().filter(|_| is_user) {
            match lookup.groups(token, claims.identity_nonce.as_deref()).await {
                Ok(looked_up) => {
                    groups.extend(looked_up);
                    cache_until = now + lookup.ttl().as_secs();
                }
                Err(error) => {
                    tracing::warn!(error = %error, "get-identity lookup failed");
                    if lookup.failure == LookupFailure::Deny {
                        return Err(AccessError::Rejected(RejectReason::IdentityLookupFailed));
                    }
                    // Retry the lookup soon rather than for the token's whole life.
                    cache_until = now + 30;
                }
            }
        }
        groups.sort();
        groups.dedup();
        let identity = Arc::new(identity_from(claims, audience, groups)?);
        self.cache.insert(
            token_digest,
            Arc::clone(&identity),
            now,
            key_generation,
            cache_until,
        );
        Ok(identity)
    }

    fn matched_audience(&self, aud: Option<&Audience>) -> Option<String> {
        let presented: &[String] = match aud? {
            Audience::One(one) => std::slice::from_ref(one),
            Audience::Many(many) => many,
        };
        presented
            .iter()
            .find(|candidate| self.audiences.contains(candidate))
            .cloned()
    }
}

fn identity_from(
    claims: AccessClaims,
    audience: String,
    groups: Vec<String>,
) -> Result<Identity, AccessError> {
    let email = claims.email.filter(|email| !email.is_empty());
    let common_name = claims.common_name.filter(|name| !name.is_empty());
    let kind = match (&email, &common_name) {
        (Some(_), _) => IdentityKind::User,
        (None, Some(_)) => IdentityKind::Service,
        // A token naming nobody cannot be attributed, so it cannot be admitted.
        (None, None) => return Err(AccessError::Rejected(RejectReason::Malformed)),
    };
    Ok(Identity {
        kind,
        email,
        sub: claims.sub,
        country: claims.country.filter(|country| !country.is_empty()),
        common_name,
        identity_nonce: claims.identity_nonce,
        expires_at: claims.exp,
        audience,
        groups,
    })
}

fn classify(kind: &ErrorKind) -> RejectReason {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidRsaKey(_) => RejectReason::BadSignature,
        ErrorKind::ExpiredSignature => RejectReason::Expired,
        ErrorKind::ImmatureSignature => RejectReason::NotYetValid,
        ErrorKind::InvalidIssuer => RejectReason::WrongIssuer,
        ErrorKind::InvalidAudience => RejectReason::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => RejectReason::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => RejectReason::WrongIssuer,
        _ => RejectReason::Malformed,
    }
}
