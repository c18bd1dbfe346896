//! `[log]` and `[audit]`: where diagnostics and the audit trail go.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::values::string_or_list;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `RUST_LOG`-style filter; the `RUST_LOG` variable wins when set.
    pub filter: String,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: "info,rmcp=warn,actix_server=warn".into(),
            format: LogFormat::Json,
        }
    }
}

impl LogSettings {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        if tracing_subscriber::EnvFilter::try_new(&self.filter).is_err() {
            problems.push(format!(
                "log.filter: \"{}\" is not a valid filter",
                self.filter
            ));
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Write audit events as JSON lines to stdout (logs go to stderr).
    #[serde(deserialize_with = "super::values::strict_bool")]
    pub stdout: bool,
    /// Also append them to this file (written by the audit thread, flushed once per burst).
    pub file: Option<PathBuf>,
    /// Record the arguments themselves (with `redact_keys` masked), not only their digest.
    #[serde(deserialize_with = "super::values::strict_bool")]
    pub include_arguments: bool,
    /// Argument keys (at any depth, case-insensitive) replaced by `[redacted]`.
    #[serde(deserialize_with = "string_or_list")]
    pub redact_keys: Vec<String>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            stdout: true,
            file: None,
            include_arguments: false,
            redact_keys: [
                "token",
                "password",
                "secret",
                "authorization",
                "api_key",
                "card",
            ]
            .iter()
            .map(|key| key.to_string())
            .collect(),
        }
    }
}
