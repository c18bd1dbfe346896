//! The verified caller: who a Cloudflare Access token says is on the other end.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether the token was issued to a person or to a service token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    User,
    Service,
}

/// A caller whose Access token passed every check. Handlers and tools receive this; they
/// never see the token itself. Deserialised only from a replica of the same cluster (a legacy
/// SSE message relayed through Redis to the replica holding its session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub kind: IdentityKind,
    /// User tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Access's stable user id; empty for service tokens.
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Service tokens only: the service token's Client ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// Ties the token to one Access session; keys the get-identity cache.
    #[serde(skip)]
    pub identity_nonce: Option<String>,
    /// Token expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    /// The configured audience this token matched.
    pub audience: String,
    /// Groups from the configured claim and/or the get-identity lookup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Identity {
    /// A short name for logs and audit: the email for users, the client id for services.
    pub fn principal(&self) -> &str {
        match self.kind {
            IdentityKind::User => self.email.as_deref().unwrap_or(&self.sub),
            IdentityKind::Service => self.common_name.as_deref().unwrap_or("service"),
        }
    }

    /// Whether two identities are the same caller (used to bind SSE sessions).
    pub fn is_same_caller(&self, other: &Identity) -> bool {
        self.kind == other.kind
            && self.sub == other.sub
            && self.email == other.email
            && self.common_name == other.common_name
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.principal())
    }
}
