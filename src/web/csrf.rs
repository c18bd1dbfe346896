//! Cross-site protection for the try-a-tool form. The Access cookie rides along with every
//! browser request, so a state-changing POST must prove it came from this page: its `Origin`
//! must be the page's own, and it must carry a token only this server can make for this
//! identity: `expiry.HMAC-SHA256(key, identity, expiry)`, the key made at start-up.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::access::Identity;

type HmacSha256 = Hmac<Sha256>;

/// How long a rendered form may be submitted.
pub const TOKEN_TTL_SECS: u64 = 3600;

/// Why a POST was refused before anything was called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("the request carries no Origin header")]
    MissingOrigin,
    #[error("the request's Origin \"{origin}\" is not this page's origin \"{expected}\"")]
    ForeignOrigin { origin: String, expected: String },
    #[error("the form carries no token")]
    MissingToken,
    /// Never echoes the token: it is a credential of sorts, and this message is logged.
    #[error("the form token is malformed")]
    MalformedToken,
    #[error("the form token expired at {0} (Unix time)")]
    Expired(u64),
    #[error("the form token was not made for this identity by this server")]
    Mismatch,
}

impl CsrfError {
    /// The reason class the audit trail and the metrics record.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingOrigin | Self::ForeignOrigin { .. } => "csrf_origin",
            Self::MissingToken | Self::MalformedToken | Self::Mismatch => "csrf_token",
            Self::Expired(_) => "csrf_token_expired",
        }
    }
}

/// The per-process key. A form rendered by one process is refused by another (or after a
/// restart): the person reloads the page.
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub fn generate() -> Self {
        let mut key = [0_u8; 32];
        rand::rng().fill(&mut key);
        Self(key)
    }

    /// A token for `identity`, valid for [`TOKEN_TTL_SECS`] from `now`.
    pub fn issue(&self, identity: &Identity, now: u64) -> String {
        let expiry = now.saturating_add(TOKEN_TTL_SECS);
        match self.mac(identity, expiry) {
            Some(mac) => format!(
                "{expiry}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            ),
            None => String::new(),
        }
    }

    /// Checks `token` for `identity` at `now`; the MAC is compared in constant time.
    pub fn verify(&self, identity: &Identity, token: &str, now: u64) -> Result<(), CsrfError> {
        if token.is_empty() {
            return Err(CsrfError::MissingToken);
        }
        let malformed = || CsrfError::MalformedToken;
        let (expiry, signature) = token.split_once('.').ok_or_else(malformed)?;
        let expiry: u64 = expiry.parse().map_err(|_| malformed())?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed())?;
        if expiry < now {
            return Err(CsrfError::Expired(expiry));
        }
        let mac = self.mac(identity, expiry).ok_or(CsrfError::Mismatch)?;
        mac.verify_slice(&signature)
            .map_err(|_| CsrfError::Mismatch)
    }

    fn mac(&self, identity: &Identity, expiry: u64) -> Option<HmacSha256> {
        // HMAC takes a key of any length; a refusal would be a bug in `hmac`, and then no
        // token verifies.
        let mut mac = HmacSha256::new_from_slice(&self.0).ok()?;
        for part in [
            format!("{:?}", identity.kind).as_str(),
            identity.sub.as_str(),
            identity.email.as_deref().unwrap_or(""),
            identity.common_name.as_deref().unwrap_or(""),
        ] {
            mac.update(part.as_bytes());
            // A separator no identity field holds, so ("ab", "c") and ("a", "bc") differ.
            mac.update(&[0]);
        }
        mac.update(&expiry.to_be_bytes());
        Some(mac)
    }
}

/// Checks that a POST came from the page itself: `Origin` present and equal to the page's own
/// origin (derived from the `Host` the allowlist admitted).
pub fn check_origin(origin: Option<&str>, host: &str) -> Result<(), CsrfError> {
    let origin = origin.ok_or(CsrfError::MissingOrigin)?;
    let expected = super::origin::own_origin(host);
    let normalised = url::Url::parse(origin)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default();
    let expected_normalised = url::Url::parse(&expected)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or(expected.clone());
    if !normalised.is_empty() && normalised == expected_normalised {
        Ok(())
    } else {
        Err(CsrfError::ForeignOrigin {
            origin: origin.chars().take(100).collect(),
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::IdentityKind;

    fn ada() -> Identity {
        Identity {
            kind: IdentityKind::User,
            email: Some("ada@example.com".into()),
            sub: "sub-ada".into(),
            country: None,
            common_name: None,
            identity_nonce: None,
            expires_at: 0,
            audience: "aud".into(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn accepts_its_own_token_for_the_same_identity_until_it_expires() {
        let key = CsrfKey::generate();
        let token = key.issue(&ada(), 1_000);

        assert_eq!(key.verify(&ada(), &token, 1_000 + TOKEN_TTL_SECS), Ok(()));
        assert_eq!(
            key.verify(&ada(), &token, 1_001 + TOKEN_TTL_SECS),
            Err(CsrfError::Expired(1_000 + TOKEN_TTL_SECS))
        );
    }

    #[test]
    fn refuses_a_token_made_for_someone_else_or_by_another_process() {
        let key = CsrfKey::generate();
        let bob = Identity {
            email: Some("bob@example.com".into()),
            ..ada()
        };

        let bobs = key.issue(&bob, 1_000);
        let other_process = CsrfKey::generate().issue(&ada(), 1_000);

        assert_eq!(key.verify(&ada(), &bobs, 1_000), Err(CsrfError::Mismatch));
        assert_eq!(
            key.verify(&ada(), &other_process, 1_000),
            Err(CsrfError::Mismatch)
        );
    }

    #[test]
    fn refuses_a_stretched_expiry_and_a_missing_or_garbled_token() {
        let key = CsrfKey::generate();
        let token = key.issue(&ada(), 1_000);
        let (_, signature) = token.split_once('.').unwrap();

        let stretched = format!("{}.{signature}", 1_000 + 10 * TOKEN_TTL_SECS);

        assert_eq!(
            key.verify(&ada(), &stretched, 1_000),
            Err(CsrfError::Mismatch)
        );
        assert_eq!(key.verify(&ada(), "", 1_000), Err(CsrfError::MissingToken));
        assert_eq!(
            key.verify(&ada(), "tomorrow.abc", 1_000),
            Err(CsrfError::MalformedToken)
        );
    }

    #[test]
    fn accepts_only_the_pages_own_origin() {
        assert_eq!(
            check_origin(Some("https://mcp.example.com"), "mcp.example.com"),
            Ok(())
        );
        assert_eq!(
            check_origin(Some("http://127.0.0.1:8081"), "127.0.0.1:8081"),
            Ok(())
        );
        assert_eq!(
            check_origin(None, "mcp.example.com"),
            Err(CsrfError::MissingOrigin)
        );
        for foreign in [
            "https://evil.example",
            "http://mcp.example.com",
            "https://mcp.example.com:8443",
            "http://localhost:6274",
            "null",
        ] {
            assert!(
                check_origin(Some(foreign), "mcp.example.com").is_err(),
                "{foreign}"
            );
        }
    }
}
