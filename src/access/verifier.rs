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

#[cfg(test)]
mod tests {
    //! The checks on one token, against keys the dev issuer hands out in memory.

    use serde_json::json;

    use super::*;
    use crate::access::source::KeySource;
    use crate::admin::metrics::Metrics;
    use crate::dev::issuer::{DevIssuer, SignatureKind};

    const AUDIENCE: &str = "unit-audience";

    struct Fixture {
        issuer: Arc<DevIssuer>,
        keys: Arc<KeyCache>,
        verifier: AccessVerifier,
    }

    /// Keys 0 and 1 of the shared set exist; `published` says which the issuer lists. The
    /// cache has loaded them, and the verifier allows 60 s of clock skew.
    async fn fixture(published: &[usize]) -> Fixture {
        let issuer = Arc::new(
            DevIssuer::with_shared_keys("unitteam", AUDIENCE, published)
                .expect("the shared test keys"),
        );
        let keys = Arc::new(KeyCache::new(
            Arc::clone(&issuer) as Arc<dyn KeySource>,
            Duration::from_secs(60),
            Arc::new(Metrics::new()),
        ));
        keys.refresh().await.expect("the issuer's keys load");
        let verifier = AccessVerifier::new(
            Arc::clone(&keys),
            issuer.issuer(),
            vec![AUDIENCE.to_string()],
            Duration::from_secs(60),
            100,
        );
        Fixture {
            issuer,
            keys,
            verifier,
        }
    }

    fn rejected(reason: RejectReason) -> AccessError {
        AccessError::Rejected(reason)
    }

    #[tokio::test]
    async fn accepts_a_user_token_the_issuer_signed() {
        let fixture = fixture(&[0]).await;
        let token = fixture.issuer.user_token("ada@example.com", None).unwrap();

        let identity = fixture.verifier.verify(&token).await.unwrap();

        assert_eq!(identity.kind, IdentityKind::User);
        assert_eq!(identity.email.as_deref(), Some("ada@example.com"));
        assert_eq!(identity.audience, AUDIENCE);
    }

    #[tokio::test]
    async fn accepts_a_service_token_by_its_client_id() {
        let fixture = fixture(&[0]).await;
        let token = fixture.issuer.service_token("ci-bot.access", None).unwrap();

        let identity = fixture.verifier.verify(&token).await.unwrap();

        assert_eq!(identity.kind, IdentityKind::Service);
        assert_eq!(identity.common_name.as_deref(), Some("ci-bot.access"));
    }

    #[tokio::test]
    async fn rejects_a_token_for_another_audience() {
        let fixture = fixture(&[0]).await;
        let token = fixture
            .issuer
            .user_token("ada@example.com", Some("someone-elses-app"))
            .unwrap();

        let verified = fixture.verifier.verify(&token).await;

        assert_eq!(verified.unwrap_err(), rejected(RejectReason::WrongAudience));
    }

    #[tokio::test]
    async fn rejects_a_token_from_another_issuer() {
        let fixture = fixture(&[0]).await;
        let mut claims = fixture.issuer.user_claims("ada@example.com", None);
        claims.insert(
            "iss".into(),
            json!("https://otherteam.cloudflareaccess.com"),
        );
        let token = fixture.issuer.token(&claims).unwrap();

        let verified = fixture.verifier.verify(&token).await;

        assert_eq!(verified.unwrap_err(), rejected(RejectReason::WrongIssuer));
    }

    #[tokio::test]
    async fn rejects_a_token_expired_beyond_the_leeway() {
        let fixture = fixture(&[0]).await;
        let mut claims = fixture.issuer.user_claims("ada@example.com", None);
        claims.insert("exp".into(), json!(unix_now() - 600));
        let token = fixture.issuer.token(&claims).unwrap();

        let verified = fixture.verifier.verify(&token).await;

        assert_eq!(verified.unwrap_err(), rejected(RejectReason::Expired));
    }

    #[tokio::test]
    async fn rejects_a_token_signed_by_an_unpublished_key() {
        let fixture = fixture(&[0]).await;
        let claims = fixture.issuer.user_claims("ada@example.com", None);
        let unpublished = fixture.issuer.key(1).unwrap();
        let token = unpublished
            .sign(&unpublished.header(), &claims, SignatureKind::Rs256)
            .unwrap();

        let verified = fixture.verifier.verify(&token).await;

        assert_eq!(verified.unwrap_err(), rejected(RejectReason::UnknownKey));
    }

    #[tokio::test]
    async fn rejects_a_token_signed_by_another_key_under_a_published_kid() {
        let fixture = fixture(&[0]).await;
        let claims = fixture.issuer.user_claims("ada@example.com", None);
        let published_header = fixture.issuer.key(0).unwrap().header();
        let token = fixture
            .issuer
            .sign(1, &published_header, &claims, SignatureKind::Rs256)
            .unwrap();

        let verified = fixture.verifier.verify(&token).await;

        assert_eq!(verified.unwrap_err(), rejected(RejectReason::BadSignature));
    }

    #[tokio::test]
    async fn rejects_hs256_keyed_with_the_public_key() {
        let fixture = fixture(&[0]).await;
        let claims = fixture.issuer.user_claims("ada@example.com", None);
        let mut header = fixture.issuer.key(0).unwrap().header();
        header.insert("alg".into(), json!("HS256"));
        let token = fixture
            .issuer
            .sign(0, &header, &claims, SignatureKind::Hs256WithPublicKey)
            .unwrap();

        let verified = fixture.verifier.verify(&token).await;

        assert_eq!(verified.unwrap_err(), rejected(RejectReason::BadSignature));
    }

    #[tokio::test]
    async fn reports_keys_unavailable_before_the_first_key_set_loads() {
        let issuer = Arc::new(DevIssuer::with_shared_keys("unitteam", AUDIENCE, &[0]).unwrap());
        let keys = Arc::new(KeyCache::new(
            Arc::clone(&issuer) as Arc<dyn KeySource>,
            Duration::from_secs(60),
            Arc::new(Metrics::new()),
        ));
        let verifier = AccessVerifier::new(
            keys,
            issuer.issuer(),
            vec![AUDIENCE.to_string()],
            Duration::from_secs(60),
            100,
        );
        let token = issuer.user_token("ada@example.com", None).unwrap();

        let verified = verifier.verify(&token).await;

        assert_eq!(verified.unwrap_err(), AccessError::KeysUnavailable);
    }

    #[tokio::test]
    async fn serves_a_repeated_token_from_the_cache() {
        let fixture = fixture(&[0]).await;
        let token = fixture.issuer.user_token("ada@example.com", None).unwrap();
        let first = fixture.verifier.verify(&token).await.unwrap();

        let second = fixture.verifier.verify(&token).await.unwrap();

        // The very same identity: the token was not parsed or checked a second time.
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(fixture.issuer.fetches(), 1);
    }

    #[tokio::test]
    async fn verifies_a_cached_token_again_after_the_key_set_changes() {
        let fixture = fixture(&[0]).await;
        let token = fixture.issuer.user_token("ada@example.com", None).unwrap();
        let before = fixture.verifier.verify(&token).await.unwrap();
        fixture.issuer.publish(&[0, 1]);
        fixture.keys.refresh().await.unwrap();

        let after = fixture.verifier.verify(&token).await.unwrap();

        assert!(!Arc::ptr_eq(&before, &after));
        assert_eq!(before, after);
    }

    #[tokio::test]
    async fn refuses_a_cached_token_once_its_key_is_withdrawn() {
        let fixture = fixture(&[0, 1]).await;
        let token = fixture.issuer.user_token("ada@example.com", None).unwrap();
        fixture.verifier.verify(&token).await.unwrap();
        fixture.issuer.publish(&[1]);
        fixture.keys.refresh().await.unwrap();

        let verified = fixture.verifier.verify(&token).await;

        assert_eq!(verified.unwrap_err(), rejected(RejectReason::UnknownKey));
    }
}
