//! `[cluster]`: the optional Redis that replicas share (limits, legacy SSE session routing).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://`); unset (or empty) with
    /// `redis_url_file` unset too: one process, nothing shared. May hold a password: never
    /// logged.
    pub redis_url: Option<Secret>,
    /// A file holding the URL (a mounted secret); its surrounding whitespace is ignored.
    pub redis_url_file: Option<PathBuf>,
    /// How many replicas share the limits: with Redis unreachable each replica falls back to
    /// this share of every budget.
    pub expected_replicas: u32,
    /// Longest wait for one Redis command before the call goes on without it.
    #[serde(with = "super::values::duration_text")]
    pub command_timeout: Duration,
    /// Longest wait for a new Redis connection.
    #[serde(with = "super::values::duration_text")]
    pub connect_timeout: Duration,
    /// Longest pause between two reconnection attempts while Redis is down (the pause
    /// doubles from 100 ms up to this).
    #[serde(with = "super::values::duration_text")]
    pub reconnect_max_delay: Duration,
    /// Longest wait for the replica holding a legacy SSE session to take a relayed message.
    #[serde(with = "super::values::duration_text")]
    pub relay_timeout: Duration,
    /// Prefix of every Redis key and channel, so deployments can share one Redis.
    pub key_prefix: String,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_url_file: None,
            expected_replicas: 2,
            command_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(1),
            reconnect_max_delay: Duration::from_secs(5),
            relay_timeout: Duration::from_secs(5),
            key_prefix: "tunnelgate".into(),
        }
    }
}

/// Why the Redis URL cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum RedisUrlError {
    #[error("cluster.redis_url_file: cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cluster.redis_url_file: {path} is empty")]
    Empty { path: String },
}

impl ClusterSettings {
    /// `redis_url` unless it is empty (an empty value, as a compose file passes an unset
    /// variable, means no URL).
    fn url_value(&self) -> Option<&Secret> {
        self.redis_url
            .as_ref()
            .filter(|url| !url.expose().trim().is_empty())
    }

    /// Whether a Redis is configured at all.
    pub fn is_enabled(&self) -> bool {
        self.url_value().is_some() || self.redis_url_file.is_some()
    }

    /// The URL from `redis_url` or read from `redis_url_file`; `None` without a cluster.
    pub fn redis_url(&self) -> Result<Option<Secret>, RedisUrlError> {
        if let Some(url) = self.url_value() {
            return Ok(Some(Secret::new(url.expose().trim())));
        }
        let Some(path) = &self.redis_url_file else {
            return Ok(None);
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RedisUrlError::Read {
            path: shown.clone(),
            source,
        })?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(RedisUrlError::Empty { path: shown });
        }
        Ok(Some(Secret::new(trimmed)))
    }

    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        if self.url_value().is_some() && self.redis_url_file.is_some() {
            problems
                .push("cluster.redis_url and cluster.redis_url_file: set only one of them".into());
        }
        if let Some(url) = self.url_value() {
            let scheme = url.expose().split_once("://").map(|(scheme, _)| scheme);
            if !matches!(scheme, Some("redis" | "rediss")) {
                // The value may hold a password: name the key, never the value.
                problems.push(
                    "cluster.redis_url: must start with redis:// or rediss:// (value not shown: it may hold a password)"
                        .into(),
                );
            }
        }
        if let Some(path) = &self.redis_url_file
            && !path.is_file()
        {
            problems.push(format!(
                "cluster.redis_url_file: {} does not exist or is not a file",
                path.display()
            ));
        }
        if self.expected_replicas == 0 {
            problems.push("cluster.expected_replicas: must be at least 1".into());
        }
        for (key, value) in [
            ("cluster.command_timeout", self.command_timeout),
            ("cluster.connect_timeout", self.connect_timeout),
            ("cluster.reconnect_max_delay", self.reconnect_max_delay),
            ("cluster.relay_timeout", self.relay_timeout),
        ] {
            if value < Duration::from_millis(1) || value > Duration::from_secs(60) {
                problems.push(format!(
                    "{key}: {} must be between 1ms and 60s",
                    humantime::format_duration(value)
                ));
            }
        }
        let prefix_ok = !self.key_prefix.is_empty()
            && self.key_prefix.len() <= 64
            && self
                .key_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if !prefix_ok {
            problems.push(format!(
                "cluster.key_prefix: \"{}\" must be 1 to 64 characters of letters, digits, - _ . :",
                self.key_prefix
            ));
        }
    }
}
