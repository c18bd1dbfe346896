//! `[access]`: which Cloudflare Access team and application a token must come from, and how
//! signing keys and verified tokens are kept.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::values::{HttpUrl, as_optional_text, string_or_list};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessSettings {
    /// `myteam`, `myteam.cloudflareaccess.com` or `https://myteam.cloudflareaccess.com`.
    #[serde(with = "as_optional_text")]
    pub team_domain: Option<TeamDomain>,
    /// Application Audience (AUD) tags; a token must carry at least one of them.
    #[serde(deserialize_with = "string_or_list")]
    pub audiences: Vec<String>,
    /// Signing keys URL; defaults to `<issuer>/cdn-cgi/access/certs`.
    #[serde(with = "as_optional_text")]
    pub certs_url: Option<HttpUrl>,
    #[serde(with = "super::values::duration_text")]
    pub leeway: Duration,
    #[serde(with = "super::values::duration_text")]
    pub jwks_refresh: Duration,
    #[serde(with = "super::values::duration_text")]
    pub unknown_kid_cooldown: Duration,
    /// Most verified tokens remembered, so a reused token skips the RSA check.
    pub token_cache_size: usize,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            team_domain: None,
            audiences: Vec::new(),
            certs_url: None,
            leeway: Duration::from_secs(60),
            jwks_refresh: Duration::from_secs(3600),
            unknown_kid_cooldown: Duration::from_secs(30),
            token_cache_size: 10_000,
        }
    }
}

impl AccessSettings {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        if self.audiences.iter().any(|aud| aud.trim().is_empty()) {
            problems.push("access.audiences: an audience tag is empty".into());
        }
        if let Some(url) = &self.certs_url
            && !url.is_https_or_loopback()
        {
            problems.push(format!(
                "access.certs_url: \"{url}\" must use https (plain http is allowed on loopback only): the signing keys decide who gets in"
            ));
        }
        if self.jwks_refresh < Duration::from_secs(10) {
            problems.push("access.jwks_refresh: must be at least 10s".into());
        }
        if self.leeway > Duration::from_secs(300) {
            problems.push("access.leeway: must be at most 300s".into());
        }
        if self.token_cache_size == 0 {
            problems.push("access.token_cache_size: must be at least 1".into());
        }
    }

    /// The signing keys URL: `certs_url`, else the team's `/cdn-cgi/access/certs`.
    pub fn certs_url(&self) -> Option<String> {
        match (&self.certs_url, &self.team_domain) {
            (Some(url), _) => Some(url.to_string()),
            (None, Some(team)) => Some(format!("{}/cdn-cgi/access/certs", team.issuer())),
            (None, None) => None,
        }
    }
}

/// A Zero Trust team domain as written, and the token issuer it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamDomain {
    written: String,
    issuer: String,
}

impl TeamDomain {
    /// The `iss` every token of this team carries, e.g. `https://myteam.cloudflareaccess.com`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

impl FromStr for TeamDomain {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        Ok(Self {
            written: raw.to_owned(),
            issuer: issuer_for_team_domain(raw)?,
        })
    }
}

impl fmt::Display for TeamDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

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
    use super::*;

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

    #[test]
    fn keeps_the_team_domain_as_written_beside_its_issuer() {
        let team: TeamDomain = "MyTeam".parse().unwrap();

        assert_eq!(team.to_string(), "MyTeam");
        assert_eq!(team.issuer(), "https://myteam.cloudflareaccess.com");
    }
}
