//! Configuration values parsed once, at load, into the types the code uses: byte sizes
//! (`4MiB`), socket addresses, http(s) URLs, browser origins, header names and values, globs,
//! and lists that may arrive as comma-separated environment strings. Each keeps the text it
//! was written as, so `check-config` prints values as they were given.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use globset::{Glob, GlobBuilder};
use http::{HeaderName, HeaderValue};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

/// A size in bytes, written as a number or with a unit: `512KiB`, `4MiB`, `2MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (digits, unit) = trimmed.split_at(split);
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("\"{raw}\" is not a size such as 4MiB"))?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "kib" | "k" => 1 << 10,
            "mb" => 1_000_000,
            "mib" | "m" => 1 << 20,
            "gb" => 1_000_000_000,
            "gib" | "g" => 1 << 30,
            other => return Err(format!("\"{raw}\" has an unknown unit \"{other}\"")),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("\"{raw}\" is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: u64 = 1 << 20;
        const KIB: u64 = 1 << 10;
        if self.0 >= MIB && self.0.is_multiple_of(MIB) {
            write!(f, "{}MiB", self.0 / MIB)
        } else if self.0 >= KIB && self.0.is_multiple_of(KIB) {
            write!(f, "{}KiB", self.0 / KIB)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 4MiB or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<ByteSize, E> {
                u64::try_from(value)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{value} is negative")))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<ByteSize, E> {
                ByteSize::parse(value).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// Accepts a list or one comma-separated string (how lists arrive from the environment).
pub fn string_or_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct ListVisitor;
    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of strings or a comma-separated string")
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Vec<String>, E> {
            Ok(value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(String::from)
                .collect())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_any(ListVisitor)
}

/// Durations are written with a unit (`"120s"`, `"5m"`, `"1h 30m"`). A bare number is refused
/// with an example rather than guessed at: seconds to one reader are milliseconds to another.
pub mod duration_text {
    use std::fmt;
    use std::time::Duration;

    use serde::Serializer;
    use serde::de::{self, Deserializer, Visitor};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }

    fn bare_number<E: de::Error>(number: impl fmt::Display) -> E {
        E::custom(format!(
            "{number} is a bare number; a duration needs a unit, e.g. \"{number}s\" or \"{number}ms\""
        ))
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a duration with a unit, e.g. \"120s\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            let trimmed = text.trim();
            if !trimmed.is_empty() && trimmed.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(bare_number(trimmed));
            }
            humantime::parse_duration(trimmed).map_err(|problem| {
                E::custom(format!(
                    "\"{text}\" is not a duration ({problem}); write a number with a unit, e.g. \"120s\", \"5m\" or \"1h\""
                ))
            })
        }

        fn visit_i64<E: de::Error>(self, number: i64) -> Result<Duration, E> {
            Err(bare_number(number))
        }

        fn visit_u64<E: de::Error>(self, number: u64) -> Result<Duration, E> {
            Err(bare_number(number))
        }

        fn visit_f64<E: de::Error>(self, number: f64) -> Result<Duration, E> {
            Err(bare_number(number))
        }
    }
}

/// Switches are `true` or `false`: a TOML boolean, or exactly that text (environment values
/// are text). `"yes"`, `"on"` or `1` are refused, not read as `true`.
pub fn strict_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct BoolVisitor;

    impl Visitor<'_> for BoolVisitor {
        type Value = bool;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("true or false")
        }

        fn visit_bool<E: de::Error>(self, value: bool) -> Result<bool, E> {
            Ok(value)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<bool, E> {
            match text.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(E::custom(format!(
                    "\"{text}\" is not a boolean; write true or false"
                ))),
            }
        }

        fn visit_i64<E: de::Error>(self, number: i64) -> Result<bool, E> {
            Err(E::custom(format!(
                "{number} is not a boolean; write true or false"
            )))
        }

        fn visit_u64<E: de::Error>(self, number: u64) -> Result<bool, E> {
            Err(E::custom(format!(
                "{number} is not a boolean; write true or false"
            )))
        }
    }

    deserializer.deserialize_any(BoolVisitor)
}

/// Serde glue for any value that is written as text: parsed with `FromStr` (whose error
/// message the configuration error repeats) and rendered with `Display`.
pub mod as_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr<Err: Display>,
    {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer, T: Display>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }
}

/// The same for an optional value.
pub mod as_optional_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr<Err: Display>,
    {
        Option::<String>::deserialize(deserializer)?
            .map(|raw| raw.parse().map_err(serde::de::Error::custom))
            .transpose()
    }

    pub fn serialize<S: Serializer, T: Display>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.collect_str(value),
            None => serializer.serialize_none(),
        }
    }
}

/// The same for a list, which may also arrive as one comma-separated string.
pub mod as_text_list {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serializer};

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr<Err: Display>,
    {
        crate::config::values::string_or_list(deserializer)?
            .iter()
            .map(|raw| raw.parse().map_err(serde::de::Error::custom))
            .collect()
    }

    pub fn serialize<S: Serializer, T: Display>(
        values: &[T],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(values.len()))?;
        for value in values {
            seq.serialize_element(&value.to_string())?;
        }
        seq.end()
    }
}

/// A listener address such as `0.0.0.0:8080`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindAddress(pub SocketAddr);

impl FromStr for BindAddress {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse()
            .map(Self)
            .map_err(|_| format!("\"{raw}\" is not a socket address such as 0.0.0.0:8080"))
    }
}

impl fmt::Display for BindAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An absolute `http` or `https` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(Url);

impl HttpUrl {
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// True for `https`, or for any scheme on a loopback host (tests, `tunnelgate dev`).
    pub fn is_https_or_loopback(&self) -> bool {
        self.0.scheme() == "https" || self.is_loopback()
    }

    pub fn is_loopback(&self) -> bool {
        match self.0.host() {
            Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(address)) => address.is_loopback(),
            Some(url::Host::Ipv6(address)) => address.is_loopback(),
            None => false,
        }
    }
}

impl FromStr for HttpUrl {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        match Url::parse(raw.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Ok(Self(url))
            }
            Ok(_) => Err(format!("\"{raw}\" must be an http(s) URL with a host")),
            Err(error) => Err(format!("\"{raw}\" is not a URL ({error})")),
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// A browser origin such as `http://localhost:6274`, kept in its serialised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Origin {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let origin = Url::parse(raw.trim()).ok().filter(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.path() == "/"
                && url.query().is_none()
        });
        origin
            .map(|url| Self(url.origin().ascii_serialization()))
            .ok_or_else(|| format!("\"{raw}\" must be an origin such as http://localhost:6274"))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An HTTP header name, kept as written for display (`Authorization`, not `authorization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNameText {
    written: String,
    name: HeaderName,
}

impl HeaderNameText {
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// `Authorization`, the default token header.
    pub fn authorization() -> Self {
        Self {
            written: "Authorization".to_owned(),
            name: http::header::AUTHORIZATION,
        }
    }
}

impl FromStr for HeaderNameText {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let written = raw.trim();
        HeaderName::from_bytes(written.as_bytes())
            .map(|name| Self {
                written: written.to_owned(),
                name,
            })
            .map_err(|_| format!("\"{raw}\" is not a valid header name"))
    }
}

impl fmt::Display for HeaderNameText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// Static headers, written as a table of name = value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList(pub Vec<(HeaderName, HeaderValue)>);

impl<'de> Deserialize<'de> for HeaderList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = BTreeMap::<String, String>::deserialize(deserializer)?;
        let mut headers = Vec::with_capacity(table.len());
        for (name, value) in table {
            let parsed_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| de::Error::custom(format!("\"{name}\" is not a valid header name")))?;
            let parsed_value = HeaderValue::from_str(&value).map_err(|_| {
                de::Error::custom(format!(
                    "the value of \"{name}\" holds characters a header cannot carry"
                ))
            })?;
            headers.push((parsed_name, parsed_value));
        }
        Ok(Self(headers))
    }
}

impl Serialize for HeaderList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let table: BTreeMap<&str, String> = self
            .0
            .iter()
            .map(|(name, value)| {
                let text = value.to_str().map_or_else(
                    |_| String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    str::to_owned,
                );
                (name.as_str(), text)
            })
            .collect();
        table.serialize(serializer)
    }
}

/// A glob over tool names or tags (`orders_*`), matched case-sensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameGlob(pub Glob);

impl FromStr for NameGlob {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        Glob::new(raw)
            .map(Self)
            .map_err(|error| format!("\"{raw}\" is not a valid glob ({})", error.kind()))
    }
}

impl fmt::Display for NameGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.glob())
    }
}

/// A glob over emails or service-token names (`*@example.com`), matched case-insensitively
/// because email addresses are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityGlob(pub Glob);

impl FromStr for IdentityGlob {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        GlobBuilder::new(raw)
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map(Self)
            .map_err(|error| format!("\"{raw}\" is not a valid glob ({})", error.kind()))
    }
}

impl fmt::Display for IdentityGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.glob())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_with_and_without_units() {
        assert_eq!(ByteSize::parse("4MiB"), Ok(ByteSize(4 * 1024 * 1024)));
        assert_eq!(ByteSize::parse("512 KiB"), Ok(ByteSize(512 * 1024)));
        assert_eq!(ByteSize::parse("2MB"), Ok(ByteSize(2_000_000)));
        assert_eq!(ByteSize::parse("1024"), Ok(ByteSize(1024)));
    }

    #[test]
    fn rejects_a_size_with_an_unknown_unit() {
        let error = ByteSize::parse("4 parsecs").unwrap_err();
        assert!(error.contains("parsecs"), "{error}");
    }

    #[test]
    fn keeps_an_origin_in_its_serialised_form_and_refuses_a_path() {
        assert_eq!(
            "http://LOCALHOST:6274"
                .parse::<Origin>()
                .map(|o| o.to_string()),
            Ok("http://localhost:6274".to_owned())
        );
        assert!("http://localhost:6274/app".parse::<Origin>().is_err());
    }

    #[test]
    fn tells_loopback_urls_from_others() {
        let url = |raw: &str| raw.parse::<HttpUrl>().unwrap();
        assert!(url("http://127.0.0.1:9000/x").is_https_or_loopback());
        assert!(url("http://localhost/x").is_https_or_loopback());
        assert!(url("http://[::1]:80/").is_https_or_loopback());
        assert!(url("https://api.example.com").is_https_or_loopback());
        assert!(!url("http://api.example.com").is_https_or_loopback());
        assert!("ftp://example.com".parse::<HttpUrl>().is_err());
    }

    #[test]
    fn matches_identity_globs_without_regard_to_case() {
        let glob = "*@Example.com".parse::<IdentityGlob>().unwrap();
        assert!(glob.0.compile_matcher().is_match("ada@example.COM"));
        assert!("[".parse::<NameGlob>().is_err());
    }

    #[test]
    fn renders_sizes_in_the_unit_they_were_written_in() {
        assert_eq!(ByteSize(4 * 1024 * 1024).to_string(), "4MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }
}
