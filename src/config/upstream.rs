//! `[upstream]` and `[polar]`: the internal API — its OpenAPI document, base URL, credential,
//! static headers and client limits — and the Polar profile's presets.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use http::HeaderValue;
use serde::{Deserialize, Serialize};

use super::secret::Secret;
use super::values::{ByteSize, HeaderList, HeaderNameText, HttpUrl, as_optional_text, as_text};

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
    #[serde(with = "as_optional_text")]
    pub spec: Option<SpecSource>,
    /// Defaults to the document's first `servers` entry.
    #[serde(with = "as_optional_text")]
    pub base_url: Option<HttpUrl>,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    /// Header that carries the token; `Authorization` sends `Bearer <token>`.
    #[serde(with = "as_text")]
    pub token_header: HeaderNameText,
    /// Static extra headers sent with every upstream request.
    pub headers: HeaderList,
    #[serde(with = "super::values::duration_text")]
    pub timeout: Duration,
    #[serde(with = "super::values::duration_text")]
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
            token_header: HeaderNameText::authorization(),
            headers: HeaderList::default(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_concurrency: 64,
            max_response: ByteSize(2 * 1024 * 1024),
        }
    }
}

impl UpstreamSettings {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        if self.token.is_some() && self.token_file.is_some() {
            problems.push("upstream.token and upstream.token_file: set only one of them".into());
        }
        if let Some(path) = &self.token_file
            && !path.is_file()
        {
            problems.push(format!(
                "upstream.token_file: {} does not exist or is not a file",
                path.display()
            ));
        }
        if self.max_concurrency == 0 {
            problems.push("upstream.max_concurrency: must be at least 1".into());
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            problems.push("upstream.timeout / upstream.connect_timeout: must be positive".into());
        }
    }
}

/// Where the OpenAPI document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecSource {
    File(PathBuf),
    Url(HttpUrl),
}

impl FromStr for SpecSource {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("the OpenAPI document location is empty".into());
        }
        if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            trimmed.parse().map(Self::Url)
        } else {
            Ok(Self::File(PathBuf::from(trimmed)))
        }
    }
}

impl fmt::Display for SpecSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Url(url) => url.fmt(f),
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
    #[serde(with = "as_text")]
    pub api_version: PolarVersion,
}

impl Default for PolarSettings {
    fn default() -> Self {
        Self {
            environment: PolarEnvironment::Production,
            api_version: PolarVersion {
                text: "2026-04".into(),
                header: HeaderValue::from_static("2026-04"),
            },
        }
    }
}

/// A Polar API version such as `2026-04`, ready to send as the `Polar-Version` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolarVersion {
    text: String,
    header: HeaderValue,
}

impl PolarVersion {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.header
    }
}

impl FromStr for PolarVersion {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let valid = !raw.is_empty() && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let header = HeaderValue::from_str(raw).ok().filter(|_| valid);
        header
            .map(|header| Self {
                text: raw.to_owned(),
                header,
            })
            .ok_or_else(|| format!("\"{raw}\" is not a version such as 2026-04"))
    }
}

impl fmt::Display for PolarVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
