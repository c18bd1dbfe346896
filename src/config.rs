//! Typed, strict configuration: built-in defaults → optional TOML file → `TUNNELGATE__*`
//! environment, validated once at start-up into [`Settings`].

mod secret;
mod units;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use secret::Secret;
pub use units::ByteSize;
use units::string_or_list;

/// Environment variable that names the configuration file when `--config` is absent.
pub const CONFIG_FILE_ENV: &str = "TUNNELGATE_CONFIG";
const ENV_PREFIX: &str = "TUNNELGATE";

/// Everything tunnelgate can be told, after layering and validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Where tunnelgate keeps state that should survive a restart (the last good OpenAPI copy).
    pub state_dir: PathBuf,
    /// The file these settings were read from; SIGHUP re-reads it for policy changes.
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
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
            state_dir: PathBuf::from("/var/lib/tunnelgate"),
            source_file: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address of the MCP listener (the one cloudflared forwards to).
    pub bind: String,
    /// Zero Trust hostnames clients use; with loopback names they form the Host allowlist.
    #[serde(deserialize_with = "string_or_list")]
    pub public_hostnames: Vec<String>,
    pub mode: ServerMode,
    /// Idle keep-alive for client connections; longer than cloudflared's 90 s pool so the
    /// connector closes idle connections first and never sends into a closing socket.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Interval of SSE keep-alive comments; must stay well under Cloudflare's ~100 s idle cut.
    #[serde(with = "humantime_serde")]
    pub sse_keep_alive: Duration,
    /// Largest accepted request body; larger bodies get 413.
    pub max_body: ByteSize,
    /// Extra browser origins allowed besides the https origins of the hostnames, e.g.
    /// `http://localhost:6274` for a local MCP Inspector web UI.
    #[serde(deserialize_with = "string_or_list")]
    pub allowed_origins: Vec<String>,
    /// Most legacy SSE sessions open at once.
    pub max_sse_sessions: usize,
    /// A legacy SSE session with no client message for this long is closed.
    #[serde(with = "humantime_serde")]
    pub sse_idle_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0:8080".into(),
            public_hostnames: Vec::new(),
            mode: ServerMode::Stateless,
            allowed_origins: Vec::new(),
            keep_alive: Duration::from_secs(120),
            sse_keep_alive: Duration::from_secs(15),
            max_body: ByteSize(4 * 1024 * 1024),
            max_sse_sessions: 1_000,
            sse_idle_timeout: Duration::from_secs(30 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerMode {
    /// Any replica can serve any request; no `Mcp-Session-Id` is issued.
    Stateless,
    /// Sessions are kept in this process for clients that negotiate them.
    Stateful,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Address of the admin listener (`/healthz`, `/readyz`, `/metrics`); never tunnelled.
    pub bind: String,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0:9090".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessSettings {
    /// `myteam`, `myteam.cloudflareaccess.com` or `https://myteam.cloudflareaccess.com`.
    pub team_domain: Option<String>,
    /// Application Audience (AUD) tags; a token must carry at least one of them.
    #[serde(deserialize_with = "string_or_list")]
    pub audiences: Vec<String>,
    /// Signing keys URL; defaults to `<issuer>/cdn-cgi/access/certs`.
    pub certs_url: Option<String>,
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    #[serde(with = "humantime_serde")]
    pub jwks_refresh: Duration,
    #[serde(with = "humantime_serde")]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProfile {
    /// Any API described by an OpenAPI document.
    Generic,
    /// Polar (polar.sh): base URL, spec URL, version header and token scopes preset.
    Polar,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    pub profile: UpstreamProfile,
    /// OpenAPI 3.0/3.1 document: a file path or an http(s) URL. Without one, only built-in
    /// tools are served.
    pub spec: Option<String>,
    /// Defaults to the document's first `servers` entry.
    pub base_url: Option<String>,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    /// Header that carries the token; `Authorization` sends `Bearer <token>`.
    pub token_header: String,
    /// Static extra headers sent with every upstream request.
    pub headers: BTreeMap<String, String>,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    pub max_concurrency: usize,
    pub max_response: ByteSize,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            profile: UpstreamProfile::Generic,
            spec: None,
            base_url: None,
            token: None,
            token_file: None,
            token_header: "Authorization".into(),
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_concurrency: 64,
            max_response: ByteSize(2 * 1024 * 1024),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolarEnvironment {
    Production,
    Sandbox,
}

impl PolarEnvironment {
    pub fn api_base(self) -> &'static str {
        match self {
            Self::Production => "https://api.polar.sh",
            Self::Sandbox => "https://sandbox-api.polar.sh",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolarSettings {
    pub environment: PolarEnvironment,
    /// Sent as `Polar-Version`; also picks the default spec URL.
    pub api_version: String,
}

impl Default for PolarSettings {
    fn default() -> Self {
        Self {
            environment: PolarEnvironment::Production,
            api_version: "2026-04".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolsMode {
    /// Every selected operation is its own tool.
    Static,
    /// Three tools (`search_tools`, `describe_tool`, `call_tool`) front the whole catalog.
    Dynamic,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsSettings {
    /// Serve only GET/HEAD operations unless switched off.
    pub read_only: bool,
    #[serde(deserialize_with = "string_or_list")]
    pub include: Vec<String>,
    #[serde(deserialize_with = "string_or_list")]
    pub exclude: Vec<String>,
    pub mode: ToolsMode,
    /// Longest tool description, in characters.
    pub description_max: usize,
}

impl Default for ToolsSettings {
    fn default() -> Self {
        Self {
            read_only: true,
            include: Vec::new(),
            exclude: Vec::new(),
            mode: ToolsMode::Static,
            description_max: 300,
        }
    }
}

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
            filter: "info,rmcp=warn".into(),
            format: LogFormat::Json,
        }
    }
}

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
    pub email: Option<String>,
    /// Service-token client id (`common_name`), exact or glob.
    pub service: Option<String>,
    /// A group from the configured claim or the get-identity lookup.
    pub group: Option<String>,
    /// Globs over tool names; `*` when omitted.
    #[serde(default = "every_tool", deserialize_with = "string_or_list")]
    pub tools: Vec<String>,
    pub access: AccessClass,
}

fn every_tool() -> Vec<String> {
    vec!["*".to_string()]
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
    pub identity_lookup: bool,
    /// Override of the get-identity URL (tests, FedRAMP).
    pub identity_url: Option<String>,
    /// How long looked-up groups are reused for one Access session (`identity_nonce`).
    #[serde(with = "humantime_serde")]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Write audit events as JSON lines to stdout (logs go to stderr).
    pub stdout: bool,
    /// Also append them to this file, flushed per event.
    pub file: Option<PathBuf>,
    /// Record the arguments themselves (with `redact_keys` masked), not only their digest.
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
        let layered = builder
            .build()
            .map_err(|error| ConfigError::Load(error.to_string()))?;
        let mut settings: Settings = layered
            .try_deserialize()
            .map_err(|error| ConfigError::Load(error.to_string()))?;
        settings.apply_profile_env(&env);
        settings.source_file = file.map(Path::to_path_buf);
        settings.validate()?;
        Ok(settings)
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

    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("server.bind", &self.server.bind),
            ("admin.bind", &self.admin.bind),
        ] {
            if value.parse::<SocketAddr>().is_err() {
                problems.push(format!(
                    "{key}: \"{value}\" is not a socket address such as 0.0.0.0:8080"
                ));
            }
        }
        for hostname in &self.server.public_hostnames {
            if hostname.is_empty()
                || hostname.contains("://")
                || hostname.contains('/')
                || hostname.contains(':')
                || hostname.chars().any(char::is_whitespace)
            {
                problems.push(format!(
                    "server.public_hostnames: \"{hostname}\" must be a bare hostname such as mcp.example.com (no scheme, port or path)"
                ));
            }
        }
        for origin in &self.server.allowed_origins {
            let valid = url::Url::parse(origin).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.path() == "/"
                    && url.query().is_none()
            });
            if !valid {
                problems.push(format!(
                    "server.allowed_origins: \"{origin}\" must be an origin such as http://localhost:6274"
                ));
            }
        }
        if self.server.sse_keep_alive.is_zero() || self.server.sse_keep_alive.as_secs() >= 90 {
            problems.push(format!(
                "server.sse_keep_alive: {} must be between 1s and 89s (Cloudflare cuts streams idle for ~100 s)",
                humantime::format_duration(self.server.sse_keep_alive)
            ));
        }
        if self.server.max_body.0 == 0 {
            problems.push("server.max_body: must be greater than zero".into());
        }
        if self.server.max_sse_sessions == 0 {
            problems.push("server.max_sse_sessions: must be at least 1".into());
        }
        if let Some(team) = &self.access.team_domain
            && let Err(problem) = crate::access::issuer_for_team_domain(team)
        {
            problems.push(format!("access.team_domain: {problem}"));
        }
        if self
            .access
            .audiences
            .iter()
            .any(|aud| aud.trim().is_empty())
        {
            problems.push("access.audiences: an audience tag is empty".into());
        }
        if let Some(url) = &self.access.certs_url
            && let Err(problem) = check_http_url(url)
        {
            problems.push(format!("access.certs_url: {problem}"));
        }
        if self.access.jwks_refresh < Duration::from_secs(10) {
            problems.push("access.jwks_refresh: must be at least 10s".into());
        }
        if self.access.leeway > Duration::from_secs(300) {
            problems.push("access.leeway: must be at most 300s".into());
        }
        if self.access.token_cache_size == 0 {
            problems.push("access.token_cache_size: must be at least 1".into());
        }
        if let Some(url) = &self.upstream.base_url
            && let Err(problem) = check_http_url(url)
        {
            problems.push(format!("upstream.base_url: {problem}"));
        }
        if self.upstream.token.is_some() && self.upstream.token_file.is_some() {
            problems.push("upstream.token and upstream.token_file: set only one of them".into());
        }
        if let Some(path) = &self.upstream.token_file
            && !path.is_file()
        {
            problems.push(format!(
                "upstream.token_file: {} does not exist or is not a file",
                path.display()
            ));
        }
        if http::HeaderName::from_bytes(self.upstream.token_header.as_bytes()).is_err() {
            problems.push(format!(
                "upstream.token_header: \"{}\" is not a valid header name",
                self.upstream.token_header
            ));
        }
        for (name, value) in &self.upstream.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                problems.push(format!(
                    "upstream.headers: \"{name}\" is not a valid header name"
                ));
            }
            if http::HeaderValue::from_str(value).is_err() {
                problems.push(format!(
                    "upstream.headers.{name}: the value holds characters a header cannot carry"
                ));
            }
        }
        if self.upstream.max_concurrency == 0 {
            problems.push("upstream.max_concurrency: must be at least 1".into());
        }
        if self.upstream.timeout.is_zero() || self.upstream.connect_timeout.is_zero() {
            problems.push("upstream.timeout / upstream.connect_timeout: must be positive".into());
        }
        if self.polar.api_version.is_empty()
            || !self
                .polar
                .api_version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            problems.push(format!(
                "polar.api_version: \"{}\" is not a version such as 2026-04",
                self.polar.api_version
            ));
        }
        if self.tools.description_max < 40 {
            problems.push("tools.description_max: must be at least 40".into());
        }
        for pattern in self.tools.include.iter().chain(&self.tools.exclude) {
            if globset::Glob::new(pattern).is_err() {
                problems.push(format!(
                    "tools.include / tools.exclude: \"{pattern}\" is not a valid glob"
                ));
            }
        }
        for (index, rule) in self.policy.rules.iter().enumerate() {
            let key = format!("policy.rules[{index}]");
            if rule.email.is_none() && rule.service.is_none() && rule.group.is_none() {
                problems.push(format!(
                    "{key}: needs at least one of email, service or group"
                ));
            }
            for pattern in rule.email.iter().chain(&rule.service).chain(&rule.tools) {
                if globset::Glob::new(pattern).is_err() {
                    problems.push(format!("{key}: \"{pattern}\" is not a valid glob"));
                }
            }
        }
        if let Some(path) = &self.policy.groups_claim
            && (path.is_empty() || path.split('.').any(str::is_empty))
        {
            problems.push(format!(
                "policy.groups_claim: \"{path}\" is not a dot-separated claim path such as custom.groups"
            ));
        }
        if let Some(url) = &self.policy.identity_url
            && let Err(problem) = check_http_url(url)
        {
            problems.push(format!("policy.identity_url: {problem}"));
        }
        for (key, burst) in [
            ("limits.per_identity_burst", self.limits.per_identity_burst),
            ("limits.upstream_burst", self.limits.upstream_burst),
        ] {
            if burst == Some(0) {
                problems.push(format!("{key}: must be at least 1"));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.filter).is_err() {
            problems.push(format!(
                "log.filter: \"{}\" is not a valid filter",
                self.log.filter
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
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

fn check_http_url(raw: &str) -> Result<(), String> {
    match url::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        Ok(_) => Err(format!("\"{raw}\" must be an http(s) URL with a host")),
        Err(error) => Err(format!("\"{raw}\" is not a URL ({error})")),
    }
}

#[cfg(test)]
mod tests;
