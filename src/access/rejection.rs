//! Why a request was refused at the door, and the small JSON answer it gets.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The check class a token failed. Clients see only this class, never more detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    Missing,
    Malformed,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    WrongType,
    /// `policy.identity_lookup_failure = "deny"` and get-identity did not answer.
    IdentityLookupFailed,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::WrongType => "wrong_type",
            Self::IdentityLookupFailed => "identity_lookup_failed",
        }
    }
}

/// A request that may not proceed to any MCP route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("Cloudflare Access token rejected: {}", .0.as_str())]
    Rejected(RejectReason),
    #[error("Cloudflare Access signing keys are not loaded yet")]
    KeysUnavailable,
}

#[derive(Serialize)]
struct DenialBody {
    error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

impl ResponseError for AccessError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Rejected(_) => StatusCode::FORBIDDEN,
            Self::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            Self::Rejected(reason) => DenialBody {
                error: "access_denied",
                reason: Some(reason.as_str()),
            },
            Self::KeysUnavailable => DenialBody {
                error: "signing_keys_unavailable",
                reason: None,
            },
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::KeysUnavailable) {
            response.insert_header(("Retry-After", "5"));
        }
        response.json(body)
    }
}
