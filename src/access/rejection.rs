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

impl RejectReason {
    /// What went wrong and what the person behind the client can do, in words; the same
    /// for everyone, so it tells an attacker nothing the reason does not.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::Missing => {
                "no Cf-Access-Jwt-Assertion header: Cloudflare Access adds it to each request it lets through, so reach this server at its Access hostname (on loopback, send the header yourself)"
            }
            Self::Malformed => {
                "the Cf-Access-Jwt-Assertion header does not hold exactly one well-formed token"
            }
            Self::UnknownKey => {
                "the token is signed by a key this team's Access does not publish: sign in again"
            }
            Self::BadSignature => "the token's signature does not verify: sign in again",
            Self::Expired => "the token has expired: sign in again",
            Self::NotYetValid => {
                "the token is not valid yet: check the clocks of client and server"
            }
            Self::WrongIssuer => "the token was issued by another Cloudflare Access team",
            Self::WrongAudience => {
                "the token is for another Access application: its AUD tag is not one this server accepts"
            }
            Self::WrongType => "the token is not a Cloudflare Access application token",
            Self::IdentityLookupFailed => {
                "your identity's groups could not be looked up at Access: try again, or ask the administrator"
            }
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
struct DenialBody<'a> {
    error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    message: &'a str,
}

impl AccessError {
    /// The answer, with `message` in place of the standard explanation.
    pub fn response_saying(&self, message: &str) -> HttpResponse {
        let body = match self {
            Self::Rejected(reason) => DenialBody {
                error: "access_denied",
                reason: Some(reason.as_str()),
                message,
            },
            Self::KeysUnavailable => DenialBody {
                error: "signing_keys_unavailable",
                reason: None,
                message,
            },
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::KeysUnavailable) {
            response.insert_header(("Retry-After", "5"));
        }
        response.json(body)
    }

    fn explanation(&self) -> &'static str {
        match self {
            Self::Rejected(reason) => reason.explanation(),
            Self::KeysUnavailable => {
                "the server has not loaded Cloudflare Access's signing keys yet: try again shortly"
            }
        }
    }
}

impl ResponseError for AccessError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Rejected(_) => StatusCode::FORBIDDEN,
            Self::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.response_saying(self.explanation())
    }
}
