//! Check 2: the Access signing keys, fetched from the configured certs URL and parsed exactly as
//! the key cache parses them, plus what the response's headers say about their age and about
//! this host's clock (tokens are checked against it).

use std::time::{Duration, SystemTime};

use actix_web::http::header::HttpDate;
use futures::StreamExt;

use super::checklist::Check;
use crate::access::parse_certs;
use crate::config::Settings;
use crate::error_chain::error_chain;

pub const TITLE: &str = "Access signing keys";

/// The server's own limits for the certs fetch (src/access/certs.rs).
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CERTS_BYTES: usize = 1024 * 1024;
/// Below this, a clock difference is the Date header's one-second resolution and network time.
const NOTABLE_SKEW: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
enum KeysProblem {
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {MAX_CERTS_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} did not send a usable certs document: {reason}")]
    NotCerts { url: String, reason: String },
}

/// What one successful fetch returned.
struct Fetched {
    body: Vec<u8>,
    date: Option<SystemTime>,
    last_modified: Option<SystemTime>,
    age: Option<u64>,
    received_at: SystemTime,
}

pub async fn check(settings: &Settings) -> Check {
    let mut check = Check::new(2, TITLE);
    let Some(url) = settings.access.certs_url() else {
        return Check::skipped(2, TITLE, "no access.team_domain, so no certs URL (check 1)");
    };
    let fetched = match fetch(&url).await {
        Ok(fetched) => fetched,
        Err(problem) => {
            let fix = fix_for(&problem, settings);
            check.fail(problem.to_string(), fix);
            return check;
        }
    };
    let keys = match parse_certs(&fetched.body) {
        Ok(keys) => keys,
        Err(error) => {
            let problem = KeysProblem::NotCerts {
                url: url.clone(),
                reason: error.to_string(),
            };
            let fix = fix_for(&problem, settings);
            check.fail(problem.to_string(), fix);
            return check;
        }
    };
    let mut ids: Vec<&str> = keys.keys().map(String::as_str).collect();
    ids.sort_unstable();
    check.note(format!("GET {url}: 200"));
    check.note(format!(
        "{} RSA signing key{}: {}",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        ids.join(", ")
    ));
    check.note(age_of(&fetched));
    if let Some(date) = fetched.date {
        let (skew, direction) = match fetched.received_at.duration_since(date) {
            Ok(ahead) => (ahead, "ahead of"),
            Err(behind) => (behind.duration(), "behind"),
        };
        let seconds = skew.as_secs();
        if skew > settings.access.leeway + Duration::from_secs(1) {
            check.fail(
                format!(
                    "this host's clock is {seconds} s {direction} the certs server's Date, more than access.leeway ({} s): tokens would be refused as expired or not yet valid",
                    settings.access.leeway.as_secs()
                ),
                "synchronise the host's clock (NTP, e.g. `timedatectl set-ntp true`)",
            );
        } else if skew > NOTABLE_SKEW {
            check.note(format!(
                "this host's clock is {seconds} s {direction} the certs server's Date (within access.leeway)"
            ));
        } else {
            check.note("clock: within a few seconds of the certs server's Date");
        }
    }
    check
}

async fn fetch(url: &str) -> Result<Fetched, KeysProblem> {
    let unreachable = |reason: String| KeysProblem::Unreachable {
        url: url.to_owned(),
        reason,
    };
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tunnelgate-doctor/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| unreachable(error.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| unreachable(error_chain(&error.without_url())))?;
    let received_at = SystemTime::now();
    if !response.status().is_success() {
        return Err(KeysProblem::Status {
            url: url.to_owned(),
            status: response.status().as_u16(),
        });
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let date = header("date").and_then(|value| parse_http_date(&value));
    let last_modified = header("last-modified").and_then(|value| parse_http_date(&value));
    let age = header("age").and_then(|value| value.trim().parse().ok());
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| unreachable(error_chain(&error)))?;
        if body.len() + chunk.len() > MAX_CERTS_BYTES {
            return Err(KeysProblem::TooLarge {
                url: url.to_owned(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        body,
        date,
        last_modified,
        age,
        received_at,
    })
}

fn parse_http_date(value: &str) -> Option<SystemTime> {
    value.parse::<HttpDate>().ok().map(SystemTime::from)
}

/// What the response says about how old the keys are. The JWKs themselves carry no date, so
/// only `Last-Modified` (when the document last changed) and `Age` (time in a cache) can tell.
fn age_of(fetched: &Fetched) -> String {
    let mut parts = Vec::new();
    if let Some(modified) = fetched.last_modified {
        let days = fetched
            .received_at
            .duration_since(modified)
            .map_or(0, |age| age.as_secs() / 86_400);
        parts.push(format!(
            "document last modified {} ({days} days ago, from Last-Modified)",
            HttpDate::from(modified)
        ));
    }
    if let Some(age) = fetched.age {
        parts.push(format!("served from a cache, {age} s old (from Age)"));
    }
    if parts.is_empty() {
        "age: not stated (the response has no Last-Modified or Age header; the keys themselves carry no date). Cloudflare rotates them every 6 weeks and keeps the previous key for 7 days, so two keys are normal".to_owned()
    } else {
        format!("age: {}", parts.join("; "))
    }
}

fn fix_for(problem: &KeysProblem, settings: &Settings) -> String {
    let team = settings
        .access
        .team_domain
        .as_ref()
        .map_or_else(|| "<team>".to_owned(), ToString::to_string);
    match problem {
        KeysProblem::Unreachable { .. } => format!(
            "check TUNNELGATE__ACCESS__TEAM_DOMAIN (now \"{team}\"; the team name from Zero Trust › Settings › Team name and domain) and that this host can open HTTPS connections to it (firewall, proxy, DNS)"
        ),
        KeysProblem::Status { .. } => format!(
            "check TUNNELGATE__ACCESS__TEAM_DOMAIN (now \"{team}\"): it must be your Zero Trust team name; if access.certs_url is set, it must be the team's /cdn-cgi/access/certs"
        ),
        KeysProblem::TooLarge { .. } | KeysProblem::NotCerts { .. } => {
            "access.certs_url points at something other than Cloudflare's certs document: remove it to use https://<team>.cloudflareaccess.com/cdn-cgi/access/certs".to_owned()
        }
    }
}
