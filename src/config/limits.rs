//! `[limits]`: rates for tool calls per identity and for upstream calls in all.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// Tool calls per identity, e.g. `120/min`; `off` or unset: unlimited.
    pub per_identity: Option<Rate>,
    /// Bucket size per identity; defaults to the rate's count.
    pub per_identity_burst: Option<u32>,
    /// Upstream calls for everyone together, e.g. `450/min`. Unset: the profile's default
    /// (Polar: 450/min production, 90/min sandbox); `off`: unlimited.
    pub upstream: Option<Rate>,
    pub upstream_burst: Option<u32>,
}

impl LimitsSettings {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        for (key, burst) in [
            ("limits.per_identity_burst", self.per_identity_burst),
            ("limits.upstream_burst", self.upstream_burst),
        ] {
            if burst == Some(0) {
                problems.push(format!("{key}: must be at least 1"));
            }
        }
    }
}

/// A request rate such as `120/min`, `10/s` or `1000/h`; `off` means no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Off,
    PerPeriod { count: u32, period: Duration },
}

impl Rate {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.eq_ignore_ascii_case("off") || trimmed.eq_ignore_ascii_case("none") {
            return Ok(Self::Off);
        }
        let (count, unit) = trimmed
            .split_once('/')
            .ok_or_else(|| format!("\"{raw}\" is not a rate such as 120/min"))?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|count| *count > 0)
            .ok_or_else(|| format!("\"{raw}\" needs a positive count"))?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => {
                return Err(format!(
                    "\"{raw}\" has an unknown period \"{other}\" (use s, min or h)"
                ));
            }
        };
        Ok(Self::PerPeriod { count, period })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::PerPeriod { count, period } => match period.as_secs() {
                1 => write!(f, "{count}/s"),
                60 => write!(f, "{count}/min"),
                _ => write!(f, "{count}/h"),
            },
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Rate::parse(&raw).map_err(serde::de::Error::custom)
    }
}
