//! `[policy]`: who may call which tools — rules over emails, service tokens and groups — and
//! where groups come from.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::values::{HttpUrl, IdentityGlob, NameGlob, as_optional_text, as_text_list};

/// What an identity may do with a tool: nothing, read-only tools, or every tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessClass {
    None,
    Read,
    Write,
}

/// One policy rule: an identity matcher (every given field must match) and tool globs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// Exact email or glob such as `*@example.com` (case-insensitive).
    #[serde(default, with = "as_optional_text")]
    pub email: Option<IdentityGlob>,
    /// Service-token client id (`common_name`), exact or glob.
    #[serde(default, with = "as_optional_text")]
    pub service: Option<NameGlob>,
    /// A group from the configured claim or the get-identity lookup.
    pub group: Option<String>,
    /// Globs over tool names; `*` when omitted.
    #[serde(default = "every_tool", with = "as_text_list")]
    pub tools: Vec<NameGlob>,
    pub access: AccessClass,
}

fn every_tool() -> Vec<NameGlob> {
    // `*` always parses; were it ever refused, an empty list matches no tool, which fails closed.
    globset::Glob::new("*").map(NameGlob).into_iter().collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LookupFailure {
    /// Refuse the request when the groups cannot be looked up.
    Deny,
    /// Carry on with the groups from the token's claims.
    Claims,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// Access for identities no rule matches.
    pub default_access: AccessClass,
    /// First match wins.
    pub rules: Vec<PolicyRule>,
    /// Dot-separated path of a claim holding groups (a custom OIDC/SAML claim Access passes
    /// through), e.g. `groups` or `custom.groups`.
    pub groups_claim: Option<String>,
    /// Look groups up at `<issuer>/cdn-cgi/access/get-identity` with the caller's token.
    #[serde(deserialize_with = "super::values::strict_bool")]
    pub identity_lookup: bool,
    /// Override of the get-identity URL (tests, FedRAMP).
    #[serde(with = "as_optional_text")]
    pub identity_url: Option<HttpUrl>,
    /// How long looked-up groups are reused for one Access session (`identity_nonce`).
    #[serde(with = "super::values::duration_text")]
    pub identity_cache_ttl: Duration,
    pub identity_lookup_failure: LookupFailure,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            default_access: AccessClass::Read,
            rules: Vec::new(),
            groups_claim: None,
            identity_lookup: false,
            identity_url: None,
            identity_cache_ttl: Duration::from_secs(300),
            identity_lookup_failure: LookupFailure::Deny,
        }
    }
}

impl PolicySettings {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.email.is_none() && rule.service.is_none() && rule.group.is_none() {
                problems.push(format!(
                    "policy.rules[{index}]: needs at least one of email, service or group"
                ));
            }
        }
        if let Some(path) = &self.groups_claim
            && (path.is_empty() || path.split('.').any(str::is_empty))
        {
            problems.push(format!(
                "policy.groups_claim: \"{path}\" is not a dot-separated claim path such as custom.groups"
            ));
        }
        if let Some(url) = &self.identity_url
            && !url.is_https_or_loopback()
        {
            problems.push(format!(
                "policy.identity_url: \"{url}\" must use https (plain http is allowed on loopback only): it carries the caller's token"
            ));
        }
    }
}
