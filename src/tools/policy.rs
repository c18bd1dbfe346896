//! Who may call what: rules map identities (email, email glob, service token, group) to
//! tool globs with an access class; first match wins, else `default_access`.

use globset::GlobMatcher;

use crate::access::{Identity, IdentityKind};
use crate::config::{AccessClass, PolicySettings};

struct CompiledRule {
    /// Position in `policy.rules`, for explanations.
    index: usize,
    email: Option<GlobMatcher>,
    service: Option<GlobMatcher>,
    group: Option<String>,
    tools: Vec<GlobMatcher>,
    access: AccessClass,
}

impl CompiledRule {
    fn matches_identity(&self, identity: &Identity) -> bool {
        let email_ok = self.email.as_ref().is_none_or(|glob| {
            identity.kind == IdentityKind::User
                && identity
                    .email
                    .as_deref()
                    .is_some_and(|email| glob.is_match(email))
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

    fn matches_tool(&self, tool: &str) -> bool {
        self.tools.iter().any(|glob| glob.is_match(tool))
    }
}

/// The policy as it applies to one identity, for people reading the page at `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessExplanation {
    pub default_access: AccessClass,
    /// The rules whose identity side matches, in order (first match per tool wins).
    pub matching_rules: Vec<MatchedRule>,
}

/// One rule that matches an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRule {
    /// Its position in `policy.rules`.
    pub index: usize,
    pub tools: Vec<String>,
    pub access: AccessClass,
}

/// The rules compiled for matching. The globs were parsed (and the rules checked) when the
/// configuration was loaded, so building a policy cannot fail.
pub struct Policy {
    default_access: AccessClass,
    rules: Vec<CompiledRule>,
}

impl Policy {
    pub fn from_settings(settings: &PolicySettings) -> Self {
        let rules = settings
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| CompiledRule {
                index,
                email: rule.email.as_ref().map(|glob| glob.0.compile_matcher()),
                service: rule.service.as_ref().map(|glob| glob.0.compile_matcher()),
                group: rule.group.clone(),
                tools: rule
                    .tools
                    .iter()
                    .map(|glob| glob.0.compile_matcher())
                    .collect(),
                access: rule.access,
            })
            .collect();
        Self {
            default_access: settings.default_access,
            rules,
        }
    }

    /// The access class `identity` has for the tool named `tool`.
    pub fn access_for(&self, identity: &Identity, tool: &str) -> AccessClass {
        self.rules
            .iter()
            .find(|rule| rule.matches_tool(tool) && rule.matches_identity(identity))
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

    /// Why `identity` has the access it has: the default and the rules that match it.
    pub fn explain(&self, identity: &Identity) -> AccessExplanation {
        AccessExplanation {
            default_access: self.default_access,
            matching_rules: self
                .rules
                .iter()
                .filter(|rule| rule.matches_identity(identity))
                .map(|rule| MatchedRule {
                    index: rule.index,
                    tools: rule
                        .tools
                        .iter()
                        .map(|glob| glob.glob().to_string())
                        .collect(),
                    access: rule.access,
                })
                .collect(),
        }
    }

    /// Tool globs that match none of `tool_names`: likely typos, warned about at start-up.
    pub fn unmatched_tool_globs<'a>(
        &self,
        tool_names: impl Iterator<Item = &'a str> + Clone,
    ) -> Vec<String> {
        let mut unmatched = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            for glob in &rule.tools {
                if !tool_names.clone().any(|name| glob.is_match(name)) {
                    unmatched.push(format!("policy.rules[{index}] tools \"{}\"", glob.glob()));
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
            email: email.map(|glob| glob.parse().unwrap()),
            service: service.map(|glob| glob.parse().unwrap()),
            group: group.map(String::from),
            tools: tools.iter().map(|glob| glob.parse().unwrap()).collect(),
            access,
        }
    }

    fn policy(default_access: AccessClass, rules: Vec<PolicyRule>) -> Policy {
        Policy::from_settings(&PolicySettings {
            default_access,
            rules,
            ..PolicySettings::default()
        })
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
    fn explains_which_rules_match_an_identity_and_the_default() {
        let policy = policy(
            AccessClass::Read,
            vec![
                rule(
                    Some("ada@example.com"),
                    None,
                    None,
                    &["refunds_*"],
                    AccessClass::None,
                ),
                rule(None, None, Some("ops"), &["*"], AccessClass::Write),
            ],
        );

        let explained = policy.explain(&user("ada@example.com", &[]));

        assert_eq!(explained.default_access, AccessClass::Read);
        assert_eq!(
            explained.matching_rules,
            vec![MatchedRule {
                index: 0,
                tools: vec!["refunds_*".into()],
                access: AccessClass::None
            }]
        );
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
