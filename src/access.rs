//! Cloudflare Access: the signing-key cache, token verification, the verified
//! [`Identity`] and the guard that admits nothing else to an MCP route.

mod certs;
mod groups;
mod guard;
mod identity;
mod keys;
mod rejection;
mod source;
mod token_cache;
mod verifier;

pub use certs::CertsFetcher;
// `tunnelgate doctor` parses the certs document exactly as the key cache does.
pub use certs::parse_certs;
pub use groups::IdentityLookup;
pub use guard::{ACCESS_JWT_HEADER, DevTokenHint, RefusalResponder, require_access};
pub use identity::{Identity, IdentityKind};
pub use keys::KeyCache;
pub use rejection::{AccessError, RejectReason};
pub use source::{FetchError, KeySource, SigningKeys};
pub use verifier::AccessVerifier;
