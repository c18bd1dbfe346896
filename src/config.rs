//! Typed, strict configuration: built-in defaults → optional TOML file → `TUNNELGATE__*`
//! environment, parsed once into [`Settings`] (addresses, URLs, headers, globs, durations and
//! sizes are typed values from here on) and validated section by section, with every problem
//! reported at once and each naming its key.

mod access;
mod cluster;
mod limits;
mod observability;
mod policy;
mod secret;
mod server;
mod tools;
mod upstream;
mod values;
mod web;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

pub use access::{AccessSettings, TeamDomain, issuer_for_team_domain};
pub use cluster::{ClusterSettings, RedisUrlError};
pub use limits::{LimitsSettings, Rate};
pub use observability::{AuditSettings, LogFormat, LogSettings};
pub use policy::{AccessClass, LookupFailure, PolicyRule, PolicySettings};
pub use secret::Secret;
pub use server::{AdminSettings, ServerMode, ServerSettings};
pub use tools::{ToolsMode, ToolsSettings};
pub use upstream::{
    PolarEnvironment, PolarSettings, PolarVersion, SpecSource, UpstreamProfile, UpstreamSettings,
};
pub use values::{
    BindAddress, ByteSize, HeaderList, HeaderNameText, HttpUrl, IdentityGlob, NameGlob, Origin,
};
pub use web::WebSettings;

/// Environment variable that names the configuration file when `--config` is absent.
pub const CONFIG_FILE_ENV: &str = "TUNNELGATE_CONFIG";
const ENV_PREFIX: &str = "TUNNELGATE";

/// Everything tunnelgate can be told, after layering and validation.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub admin: AdminSettings,
    pub access: AccessSettings,
    pub upstream: UpstreamSettings,
    pub polar: PolarSettings,
    pub tools: ToolsSettings,
    pub log: LogSettings,
    pub policy: PolicySettings,
    pub audit: AuditSettings,
    pub limits: LimitsSettings,
    pub cluster: ClusterSettings,
    pub web: WebSettings,
    /// Where tunnelgate keeps state that should survive a restart (the last good OpenAPI copy).
    pub state_dir: PathBuf,
    /// The file these settings were read from; SIGHUP re-reads it for policy changes.
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
    /// Set only by `tunnelgate dev`: where a fresh dev token comes from. A token signed by an
    /// earlier run's keys is then refused with a message that says so and points here.
    #[serde(skip)]
    pub dev_token_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings::default(),
            admin: AdminSettings::default(),
            access: AccessSettings::default(),
            upstream: UpstreamSettings::default(),
            polar: PolarSettings::default(),
            tools: ToolsSettings::default(),
            log: LogSettings::default(),
            policy: PolicySettings::default(),
            audit: AuditSettings::default(),
            limits: LimitsSettings::default(),
            cluster: ClusterSettings::default(),
            web: WebSettings::default(),
            state_dir: PathBuf::from("/var/lib/tunnelgate"),
            source_file: None,
            dev_token_url: None,
        }
    }
}

/// The top-level keys there are; anything else in the file or the environment is an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only the key check matters; the values are read section by section.
struct KnownSections {
    server: Option<IgnoredAny>,
    admin: Option<IgnoredAny>,
    access: Option<IgnoredAny>,
    upstream: Option<IgnoredAny>,
    polar: Option<IgnoredAny>,
    tools: Option<IgnoredAny>,
    log: Option<IgnoredAny>,
    policy: Option<IgnoredAny>,
    audit: Option<IgnoredAny>,
    limits: Option<IgnoredAny>,
    cluster: Option<IgnoredAny>,
    web: Option<IgnoredAny>,
    state_dir: Option<IgnoredAny>,
}

/// Problems found while loading, each naming its key.
pub(crate) type Problems = Vec<String>;

/// A configuration that could not be loaded or is invalid; each problem names its key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(String),
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

impl Settings {
    /// Layers defaults, the optional file and `TUNNELGATE__*` variables from the process
    /// environment, then validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from));
        Self::load_from(file.as_deref(), std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment, so tests need not mutate the
    /// process environment.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let layered = layer(file, &env)?;
        let mut problems = Problems::new();
        if let Err(error) = layered.clone().try_deserialize::<KnownSections>() {
            problems.push(error.to_string());
        }
        let mut settings = Settings {
            server: section(&layered, "server", &mut problems),
            admin: section(&layered, "admin", &mut problems),
            access: section(&layered, "access", &mut problems),
            upstream: section(&layered, "upstream", &mut problems),
            polar: section(&layered, "polar", &mut problems),
            tools: section(&layered, "tools", &mut problems),
            log: section(&layered, "log", &mut problems),
            policy: section(&layered, "policy", &mut problems),
            audit: section(&layered, "audit", &mut problems),
            limits: section(&layered, "limits", &mut problems),
            cluster: section(&layered, "cluster", &mut problems),
            web: section(&layered, "web", &mut problems),
            state_dir: layered
                .get::<PathBuf>("state_dir")
                .unwrap_or_else(|_| Settings::default().state_dir),
            source_file: file.map(Path::to_path_buf),
            dev_token_url: None,
        };
        settings.apply_profile_env(&env);
        settings.validate(&mut problems);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Polar's conventional `POLAR_ACCESS_TOKEN` / `POLAR_ACCESS_TOKEN_FILE` variables
    /// count as the upstream token when the Polar profile is selected and no generic
    /// token key is set.
    fn apply_profile_env(&mut self, env: &[(String, String)]) {
        if self.upstream.profile != UpstreamProfile::Polar
            || self.upstream.token.is_some()
            || self.upstream.token_file.is_some()
        {
            return;
        }
        let lookup = |name: &str| {
            env.iter()
                .find(|(key, value)| key == name && !value.is_empty())
                .map(|(_, value)| value.clone())
        };
        if let Some(token) = lookup("POLAR_ACCESS_TOKEN") {
            self.upstream.token = Some(Secret::new(token));
        } else if let Some(path) = lookup("POLAR_ACCESS_TOKEN_FILE") {
            self.upstream.token_file = Some(PathBuf::from(path));
        }
    }

    /// Each section checks what its types cannot say (ranges, combinations).
    fn validate(&self, problems: &mut Problems) {
        self.server.validate(problems);
        self.access.validate(problems);
        self.upstream.validate(problems);
        self.tools.validate(problems);
        self.policy.validate(problems);
        self.limits.validate(problems);
        self.log.validate(problems);
        self.cluster.validate(problems);
        if self.cluster.is_enabled() && self.server.mode == ServerMode::Stateful {
            problems.push(
                "server.mode: \"stateful\" cannot be combined with cluster.redis_url: stateful Streamable HTTP sessions live in the process that created them and are not shared between replicas; use the default \"stateless\" mode (every replica can answer every request) or run one replica without [cluster]"
                    .into(),
            );
        }
        self.web.validate(problems);
    }

    /// Settings that are valid but probably not what was meant, each naming its key; logged
    /// at start-up and printed by `check-config`.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for audience in &self.access.audiences {
            let looks_like_a_tag =
                audience.len() == 64 && audience.bytes().all(|byte| byte.is_ascii_hexdigit());
            if !looks_like_a_tag {
                warnings.push(format!(
                    "access.audiences: \"{audience}\" is not 64 hexadecimal characters; an Access application's AUD tag is (Access › Applications › your app › Additional settings)"
                ));
            }
        }
        warnings
    }

    /// What `serve` needs beyond what defaults provide; `dev` fills these itself.
    pub fn require_access(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.access.team_domain.is_none() {
            problems.push(
                "access.team_domain: missing (set TUNNELGATE__ACCESS__TEAM_DOMAIN to your Zero Trust team name)"
                    .to_string(),
            );
        }
        if self.access.audiences.is_empty() {
            problems.push(
                "access.audiences: missing (set TUNNELGATE__ACCESS__AUDIENCES to the Access application's AUD tag)"
                    .to_string(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The upstream budget after profile defaults: Polar's organization limit is 500
    /// requests/min in production and 100/min in the sandbox; stay just under it.
    pub fn effective_upstream_rate(&self) -> Rate {
        match (self.limits.upstream, self.upstream.profile) {
            (Some(rate), _) => rate,
            (None, UpstreamProfile::Polar) => Rate::PerPeriod {
                count: match self.polar.environment {
                    PolarEnvironment::Production => 450,
                    PolarEnvironment::Sandbox => 90,
                },
                period: Duration::from_secs(60),
            },
            (None, UpstreamProfile::Generic) => Rate::Off,
        }
    }

    /// The effective configuration as TOML with every secret replaced by `[redacted]`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|error| format!("# cannot render: {error}"))
    }
}

/// Defaults, then the file (when given), then `TUNNELGATE__SECTION__KEY` variables.
fn layer(file: Option<&Path>, env: &[(String, String)]) -> Result<config::Config, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::Load(format!(
                "configuration file {} does not exist",
                path.display()
            )));
        }
        builder = builder.add_source(
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true),
        );
    }
    let prefixed: config::Map<String, String> = env
        .iter()
        .filter(|(key, _)| key.starts_with(&format!("{ENV_PREFIX}__")))
        .cloned()
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .source(Some(prefixed)),
    );
    builder
        .build()
        .map_err(|error| ConfigError::Load(error.to_string()))
}

/// One section, parsed on its own so a bad value in one section does not hide the problems
/// of another; an absent section takes its defaults. When the section does not parse, each of
/// its keys is parsed alone to name every bad one, and the section is built from the good ones
/// so its range checks still run.
fn section<T: DeserializeOwned + Default>(
    layered: &config::Config,
    key: &str,
    problems: &mut Problems,
) -> T {
    let whole = match layered.get::<T>(key) {
        Ok(section) => return section,
        Err(config::ConfigError::NotFound(_)) => return T::default(),
        Err(error) => error,
    };
    let Ok(table) = layered.get_table(key) else {
        problems.push(whole.to_string());
        return T::default();
    };
    let table_of = |entries: config::Map<String, config::Value>| {
        config::Value::new(None, config::ValueKind::Table(entries))
    };
    let mut good = config::Map::new();
    let before = problems.len();
    for (field, value) in table {
        let alone = table_of(config::Map::from_iter([(field.clone(), value.clone())]));
        match T::deserialize(alone) {
            Ok(_) => {
                good.insert(field, value);
            }
            Err(error) => {
                let origin = value
                    .origin()
                    .map(|origin| format!(" (set in {origin})"))
                    .unwrap_or_default();
                problems.push(format!("{key}.{field}: {}{origin}", innermost(&error)));
            }
        }
    }
    if problems.len() == before {
        problems.push(whole.to_string());
    }
    T::deserialize(table_of(good)).unwrap_or_default()
}

/// The message of a parse error without the `for key …` suffixes the config crate adds (the
/// caller names the key itself).
fn innermost(error: &config::ConfigError) -> String {
    match error {
        config::ConfigError::At { error, .. } => innermost(error),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
