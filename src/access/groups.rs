//! Groups for policy: from a configured claim path in the Access token, and optionally
//! from Cloudflare's get-identity endpoint (cached per Access session).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Map, Value};

use crate::config::LookupFailure;

const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// The same cap as the certs document: read as it streams, never buffered past it.
const MAX_IDENTITY_BYTES: usize = 1024 * 1024;
const MAX_CACHED_SESSIONS: usize = 10_000;

/// The groups at a dot-separated claim path: an array of strings, or one string.
pub fn groups_from_claims(claims: &Map<String, Value>, path: &[String]) -> Vec<String> {
    let mut current: Option<&Value> = None;
    for (depth, segment) in path.iter().enumerate() {
        current = if depth == 0 {
            claims.get(segment)
        } else {
            current.and_then(|value| value.get(segment))
        };
    }
    group_names(current)
}

/// Group names from the shapes IdPs use: strings, or objects with `name` (or `id`/`email`).
fn group_names(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(name) => Some(name.clone()),
                Value::Object(object) => ["name", "id", "email"]
                    .iter()
                    .find_map(|key| object.get(*key).and_then(Value::as_str))
                    .map(str::to_string),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("get-identity request failed: {0}")]
    Transport(String),
    #[error("get-identity answered HTTP {0}")]
    Status(u16),
    #[error("get-identity answer is not usable: {0}")]
    Body(String),
}

/// Looks groups up at `<issuer>/cdn-cgi/access/get-identity`, once per Access session.
pub struct IdentityLookup {
    client: reqwest::Client,
    url: String,
    ttl: Duration,
    pub failure: LookupFailure,
    cache: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    /// One gate per Access session being looked up, so concurrent requests of one person
    /// share one lookup: the first asks, the rest wait and read the cache.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl IdentityLookup {
    pub fn new(url: String, ttl: Duration, failure: LookupFailure) -> Result<Self, LookupError> {
        let client = reqwest::Client::builder()
            .timeout(LOOKUP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| LookupError::Transport(error.to_string()))?;
        Ok(Self {
            client,
            url,
            ttl,
            failure,
            cache: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The caller's groups; `session` (the token's `identity_nonce`) keys the cache.
    pub async fn groups(
        &self,
        token: &str,
        session: Option<&str>,
    ) -> Result<Vec<String>, LookupError> {
        let Some(session) = session else {
            return self.look_up(token).await;
        };
        if let Some(groups) = self.cached(session) {
            return Ok(groups);
        }
        let gate = {
            let mut in_flight = match self.in_flight.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            Arc::clone(in_flight.entry(session.to_owned()).or_default())
        };
        let looked_up = {
            let _turn = gate.lock().await;
            match self.cached(session) {
                Some(groups) => Ok(groups),
                None => self.look_up(token).await.inspect(|groups| {
                    self.remember(session, groups.clone());
                }),
            }
        };
        let mut in_flight = match self.in_flight.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // The map's reference and ours: nobody else is waiting on this gate.
        if Arc::strong_count(&gate) == 2 {
            in_flight.remove(session);
        }
        looked_up
    }

    /// One get-identity request, its body read as it streams and capped.
    async fn look_up(&self, token: &str) -> Result<Vec<String>, LookupError> {
        // get-identity authenticates with the application cookie, not a header.
        let response = self
            .client
            .get(&self.url)
            .header("Cookie", format!("CF_Authorization={token}"))
            .send()
            .await
            .map_err(|error| LookupError::Transport(error.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(LookupError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_IDENTITY_BYTES as u64)
        {
            return Err(LookupError::Body(format!(
                "larger than {MAX_IDENTITY_BYTES} bytes"
            )));
        }
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk =
                chunk.map_err(|error| LookupError::Transport(error.without_url().to_string()))?;
            if body.len() + chunk.len() > MAX_IDENTITY_BYTES {
                return Err(LookupError::Body(format!(
                    "larger than {MAX_IDENTITY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let identity: Value =
            serde_json::from_slice(&body).map_err(|error| LookupError::Body(error.to_string()))?;
        Ok(group_names(identity.get("groups")))
    }

    fn cached(&self, session: &str) -> Option<Vec<String>> {
        let cache = self.cache.lock().ok()?;
        let (at, groups) = cache.get(session)?;
        (at.elapsed() < self.ttl).then(|| groups.clone())
    }

    fn remember(&self, session: &str, groups: Vec<String>) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= MAX_CACHED_SESSIONS {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED_SESSIONS {
                cache.clear();
            }
        }
        cache.insert(session.to_string(), (Instant::now(), groups));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(raw: &str) -> Vec<String> {
        raw.split('.').map(String::from).collect()
    }

    #[test]
    fn reads_groups_from_a_nested_claim() {
        let claims = json!({"custom": {"groups": ["finance", "ops"]}});
        let Value::Object(claims) = claims else {
            unreachable!()
        };

        assert_eq!(
            groups_from_claims(&claims, &path("custom.groups")),
            vec!["finance", "ops"]
        );
    }

    #[test]
    fn reads_a_single_group_string_and_group_objects() {
        let Value::Object(claims) =
            json!({"group": "ops", "groups": [{"id": "1", "name": "admins"}, {"id": "2"}]})
        else {
            unreachable!()
        };

        assert_eq!(groups_from_claims(&claims, &path("group")), vec!["ops"]);
        assert_eq!(
            groups_from_claims(&claims, &path("groups")),
            vec!["admins", "2"]
        );
    }

    #[test]
    fn a_missing_claim_gives_no_groups() {
        let Value::Object(claims) = json!({"email": "a@b"}) else {
            unreachable!()
        };
        assert!(groups_from_claims(&claims, &path("custom.groups")).is_empty());
    }
}
