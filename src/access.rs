//! Cloudflare Access: the signing-key cache, token verification, the verified
//! [`Identity`] and the guard that admits nothing else to an MCP route.

mod certs;
mod groups;
mod guard;
mod identity;
mod keys;
mod rejection;
mod token_cache;
mod verifier;

pub use certs::CertsFetcher;
// `tunnelgate doctor` parses the certs document exactly as the key cache does.
pub use certs::parse_certs;
pub use groups::IdentityLookup;
pub use guard::require_access;
pub use identity::{Identity, IdentityKind};
pub use keys::KeyCache;
pub use verifier::AccessVerifier;

/// The token issuer for a Zero Trust team, from any of the accepted spellings:
/// `myteam`, `myteam.cloudflareaccess.com` or `https://myteam.cloudflareaccess.com`.
pub fn issuer_for_team_domain(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let host = trimmed.strip_prefix("https://").unwrap_or(trimmed);
    if host.contains("://") {
        return Err(format!("\"{raw}\" must use https or be a bare team name"));
    }
    // FedRAMP tenants live under `fed.cloudflareaccess.com`.
    let (team, domain) = match host.strip_suffix(".fed.cloudflareaccess.com") {
        Some(team) => (team, "fed.cloudflareaccess.com"),
        None => (
            host.strip_suffix(".cloudflareaccess.com").unwrap_or(host),
            "cloudflareaccess.com",
        ),
    };
    let valid = !team.is_empty()
        && team.len() <= 63
        && team.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !team.starts_with('-')
        && !team.ends_with('-');
    if !valid {
        return Err(format!(
            "\"{raw}\" is not a team name such as myteam or myteam.cloudflareaccess.com"
        ));
    }
    Ok(format!("https://{}.{domain}", team.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::issuer_for_team_domain;

    #[test]
    fn accepts_every_spelling_of_a_team_domain() {
        for spelling in [
            "myteam",
            "myteam.cloudflareaccess.com",
            "https://myteam.cloudflareaccess.com",
            "https://myteam.cloudflareaccess.com/",
        ] {
            assert_eq!(
                issuer_for_team_domain(spelling).as_deref(),
                Ok("https://myteam.cloudflareaccess.com"),
                "{spelling}"
            );
        }
    }

    #[test]
    fn keeps_a_fedramp_team_domain_under_fed() {
        assert_eq!(
            issuer_for_team_domain("myteam.fed.cloudflareaccess.com").as_deref(),
            Ok("https://myteam.fed.cloudflareaccess.com")
        );
    }

    #[test]
    fn rejects_a_team_domain_with_another_scheme_or_a_path() {
        assert!(issuer_for_team_domain("http://myteam.cloudflareaccess.com").is_err());
        assert!(issuer_for_team_domain("myteam.cloudflareaccess.com/x").is_err());
        assert!(issuer_for_team_domain("").is_err());
    }
}
