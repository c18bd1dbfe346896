//! Who may call what: rules map identities (email, email glob, service token, group) to
//! tool globs with an access class; first match wins, else `default_access`.

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::access::{Identity, IdentityKind};
use crate::config::{AccessClass, PolicySettings};

#[derive(Debug, thiserror::Error)]
#[error("policy.rules[{index}]: {problem}")]
pub struct PolicyError {
    index: usize,
    problem: String,
}

struct CompiledRule {
    email: Option<GlobMatcher>,
    service: Option<GlobMatcher>,
    group: Option<String>,
    tool_patterns: Vec<String>,
    tools: GlobSet,
    access: AccessClass,
}

impl CompiledRule {
    fn matches_identity(&self, identity: &Identity) -> bool {
        let email_ok = self.email.as_ref().is_none_or(|glob| {
            identity.kind == IdentityKind::User
                && identity
                    .email
                    .as_deref()
                    .is_some_and(|email| glob.is_match(email.to_ascii_lowercase()))
        });
        let service_ok = self.service.as_ref().is_none_or(|glob| {
            identity.kind == IdentityKind::Service
                && identity
                    .common_name
                    .as_deref()
                    .is_some_and(|name| glob.is_match(name))
        });
        let group_ok = self
            .group
            .as_ref()
            .is_none_or(|group| identity.groups.iter().any(|candidate| candidate == group));
        email_ok && service_ok && group_ok
    }
}

pub struct Policy {
    default_access: AccessClass,
    rules: Vec<CompiledRule>,
}

fn glob(pattern: &str, case_insensitive: bool) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .literal_separator(false)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|error| format!("\"{pattern}\": {error}"))
}

impl Policy {
    pub fn from_settings(settings: &PolicySettings) -> Result<Self, PolicyError> {
        let mut rules = Vec::with_capacity(settings.rules.len());
        for (index, rule) in settings.rules.iter().enumerate() {
            let fail = |problem: String| PolicyError { index, problem };
            if rule.email.is_none() && rule.service.is_none() && rule.group.is_none() {
                return Err(fail("needs at least one of email, service or group".into()));
            }
            let mut tools = GlobSetBuilder::new();
            for pattern in &rule.tools {
                tools.add(
                    Glob::new(pattern).map_err(|error| fail(format!("\"{pattern}\": {error}")))?,
                );
            }
            rules.push(CompiledRule {
                email: rule
                    .email
                    .as_deref()
                    .map(|p| glob(p, true))
                    .transpose()
                    .map_err(fail)?,
                service: rule
                    .service
                    .as_deref()
                    .map(|p| glob(p, false))
                    .transpose()
                    .map_err(fail)?,
                group: rule.group.clone(),
                tool_patterns: rule.tools.clone(),
                tools: tools.build().map_err(|error| fail(error.to_string()))?,
                access: rule.access,
            });
        }
        Ok(Self {
            default_access: settings.default_access,
            rules,
        })
    }

    /// The access class `identity` has for the tool named `tool`.
    pub fn access_for(&self, identity: &Identity, tool: &str) -> AccessClass {
        self.rules
            .iter()
            .find(|rule| rule.tools.is_match(tool) && rule.matches_identity(identity))
            .map_or(self.default_access, |rule| rule.access)
    }

    /// Whether `identity` may see and call `tool` (a read-only tool needs `read`).
    pub fn permits(&self, identity: &Identity, tool: &str, read_only: bool) -> bool {
        match self.access_for(identity, tool) {
            AccessClass::None => false,
            AccessClass::Read => read_only,
            AccessClass::Write => true,
        }
    }

    /// Tool globs that match none of `tool_names`: likely typos, warned about at start-up.
    pub fn unmatched_tool_globs<'a>(
        &self,
        tool_names: impl Iterator<Item = &'a str> + Clone,
    ) -> Vec<String> {
        let mut unmatched = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            for pattern in &rule.tool_patterns {
                let Ok(matcher) = glob(pattern, false) else {
                    continue;
                };
                if !tool_names.clone().any(|name| matcher.is_match(name)) {
                    unmatched.push(format!("policy.rules[{index}] tools \"{pattern}\""));
                }
            }
        }
        unmatched
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PolicyRule;

    fn user(email: &str, groups: &[&str]) -> Identity {
        Identity {
            kind: IdentityKind::User,
            email: Some(email.into()),
            sub: "s".into(),
            country: None,
            common_name: None,
            identity_nonce: None,
            expires_at: 0,
            audience: "a".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn service(name: &str) -> Identity {
        Identity {
            kind: IdentityKind::Service,
            email: None,
            common_name: Some(name.into()),
            ..user("unused@x", &[])
        }
    }

    fn rule(
        email: Option<&str>,
        service: Option<&str>,
        group: Option<&str>,
        tools: &[&str],
        access: AccessClass,
    ) -> PolicyRule {
        PolicyRule {
            email: email.map(String::from),
            service: service.map(String::from),
            group: group.map(String::from),
            tools: tools.iter().map(|t| t.to_string()).collect(),
            access,
        }
    }

    fn policy(default_access: AccessClass, rules: Vec<PolicyRule>) -> Policy {
        Policy::from_settings(&PolicySettings {
            default_access,
            rules,
            ..PolicySettings::default()
        })
        .unwrap()
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let policy = policy(
            AccessClass::None,
            vec![
                rule(
                    Some("ada@example.com"),
                    None,
                    None,
                    &["refunds_*"],
                    AccessClass::None,
                ),
                rule(
                    Some("*@example.com"),
                    None,
                    None,
                    &["*"],
                    AccessClass::Write,
                ),
            ],
        );
        let ada = user("ada@example.com", &[]);

        assert!(!policy.permits(&ada, "refunds_create", false));
        assert!(policy.permits(&ada, "products_create", false));
    }

    #[test]
    fn email_globs_are_case_insensitive_and_anchored() {
        let policy = policy(
            AccessClass::None,
            vec![rule(
                Some("*@example.com"),
                None,
                None,
                &["*"],
                AccessClass::Read,
            )],
        );

        assert!(policy.permits(&user("Ada@Example.COM", &[]), "products_list", true));
        assert!(!policy.permits(&user("ada@example.com.evil", &[]), "products_list", true));
    }

    #[test]
    fn read_access_does_not_reach_write_tools() {
        let policy = policy(AccessClass::Read, vec![]);
        let ada = user("ada@example.com", &[]);

        assert!(policy.permits(&ada, "products_list", true));
        assert!(!policy.permits(&ada, "products_create", false));
    }

    #[test]
    fn matches_service_tokens_by_common_name_only() {
        let policy = policy(
            AccessClass::None,
            vec![rule(
                None,
                Some("ci-*.access"),
                None,
                &["*"],
                AccessClass::Write,
            )],
        );

        assert!(policy.permits(&service("ci-bot.access"), "orders_list", true));
        assert!(!policy.permits(&user("ci-bot.access@x", &[]), "orders_list", true));
    }

    #[test]
    fn matches_groups() {
        let policy = policy(
            AccessClass::None,
            vec![rule(
                None,
                None,
                Some("finance"),
                &["orders_*"],
                AccessClass::Read,
            )],
        );

        assert!(policy.permits(&user("a@x", &["finance"]), "orders_list", true));
        assert!(!policy.permits(&user("a@x", &["ops"]), "orders_list", true));
        assert!(!policy.permits(&user("a@x", &["finance"]), "products_list", true));
    }

    #[test]
    fn reports_tool_globs_that_match_nothing() {
        let policy = policy(
            AccessClass::Read,
            vec![rule(
                Some("*"),
                None,
                None,
                &["prodcts_*", "orders_*"],
                AccessClass::Write,
            )],
        );

        let unmatched = policy.unmatched_tool_globs(["orders_list", "products_list"].into_iter());

        assert_eq!(unmatched, vec!["policy.rules[0] tools \"prodcts_*\""]);
    }
}
