//! The cache of Cloudflare Access signing keys: loaded at start-up, refreshed in the
//! background, refetched (rate-limited, single-flight) on an unknown `kid`, and never
//! emptied by a failed fetch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::DecodingKey;
use rand::Rng;

use super::certs::{CertsFetcher, FetchError};
use crate::admin::metrics::Metrics;

/// One published set of keys, swapped as a whole.
pub struct KeySet {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// Changes whenever the set of `kid`s changes; cached verifications carry it so a
    /// token signed by a withdrawn key is checked again.
    pub generation: u64,
}

impl KeySet {
    fn empty() -> Self {
        Self {
            keys: HashMap::new(),
            generation: 0,
        }
    }
}

/// Why no key could be produced for a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyLookupError {
    #[error("no signing key has the id \"{0}\"")]
    UnknownKid(String),
    #[error("signing keys have not been loaded yet")]
    NotLoaded,
}

pub struct KeyCache {
    current: RwLock<Arc<KeySet>>,
    fetcher: CertsFetcher,
    loaded: AtomicBool,
    /// Serialises fetches so concurrent misses for the same `kid` share one request.
    fetch_gate: tokio::sync::Mutex<()>,
    /// Counts completed fetch attempts; a waiter that sees it move knows a fetch happened
    /// while it queued and need not start another.
    fetch_attempts: AtomicU64,
    last_unknown_kid_fetch: Mutex<Option<Instant>>,
    unknown_kid_cooldown: Duration,
    metrics: Arc<Metrics>,
}

impl KeyCache {
    pub fn new(
        fetcher: CertsFetcher,
        unknown_kid_cooldown: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            current: RwLock::new(Arc::new(KeySet::empty())),
            fetcher,
            loaded: AtomicBool::new(false),
            fetch_gate: tokio::sync::Mutex::new(()),
            fetch_attempts: AtomicU64::new(0),
            last_unknown_kid_fetch: Mutex::new(None),
            unknown_kid_cooldown,
            metrics,
        }
    }

    /// True once a key set has been loaded; stays true through later fetch failures.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn generation(&self) -> u64 {
        self.snapshot().generation
    }

    /// The key for `kid`, refetching the set at most once per cooldown when it is unknown.
    pub async fn key_for(&self, kid: &str) -> Result<(Arc<DecodingKey>, u64), KeyLookupError> {
        let snapshot = self.snapshot();
        if let Some(key) = snapshot.keys.get(kid) {
            return Ok((Arc::clone(key), snapshot.generation));
        }
        if !self.is_loaded() {
            return Err(KeyLookupError::NotLoaded);
        }
        let attempts_before = self.fetch_attempts.load(Ordering::Acquire);
        let _gate = self.fetch_gate.lock().await;
        if self.fetch_attempts.load(Ordering::Acquire) == attempts_before && self.may_refetch_now()
        {
            tracing::info!(kid, "unknown signing key id; refetching Access certs");
            // Failure is already logged and counted; the old keys stay in place.
            let _ = self.fetch_locked().await;
        }
        let snapshot = self.snapshot();
        snapshot
            .keys
            .get(kid)
            .map(|key| (Arc::clone(key), snapshot.generation))
            .ok_or_else(|| KeyLookupError::UnknownKid(kid.to_string()))
    }

    fn may_refetch_now(&self) -> bool {
        let mut last = match self.last_unknown_kid_fetch.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        match *last {
            Some(at) if now.duration_since(at) < self.unknown_kid_cooldown => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    /// Fetches the key set now (used at start-up and by the background refresher).
    pub async fn refresh(&self) -> Result<usize, FetchError> {
        let _gate = self.fetch_gate.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<usize, FetchError> {
        let outcome = self.fetcher.fetch().await;
        self.fetch_attempts.fetch_add(1, Ordering::AcqRel);
        match outcome {
            Ok(keys) => {
                let count = keys.len();
                self.install(keys);
                self.metrics.record_key_fetch(true, count, unix_now());
                tracing::debug!(keys = count, "Access signing keys loaded");
                Ok(count)
            }
            Err(error) => {
                self.metrics.record_key_fetch(false, 0, unix_now());
                tracing::warn!(
                    error = %error,
                    url = %self.fetcher.url(),
                    kept_keys = self.snapshot().keys.len(),
                    "fetching Access signing keys failed; keeping the last good set"
                );
                Err(error)
            }
        }
    }

    fn install(&self, keys: HashMap<String, Arc<DecodingKey>>) {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let same_kids =
            guard.keys.len() == keys.len() && keys.keys().all(|kid| guard.keys.contains_key(kid));
        let generation = if same_kids && self.is_loaded() {
            guard.generation
        } else {
            guard.generation + 1
        };
        *guard = Arc::new(KeySet { keys, generation });
        self.loaded.store(true, Ordering::Release);
    }

    /// Keeps the key set fresh: retries with backoff until the first load succeeds, then
    /// refreshes every `interval` with ±10 % jitter so replicas do not fetch in lockstep.
    pub fn spawn_refresher(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let wait = if cache.is_loaded() {
                    backoff = Duration::from_secs(1);
                    jittered(interval)
                } else {
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    wait
                };
                tokio::time::sleep(wait).await;
                if cache.refresh().await.is_err() && cache.is_loaded() {
                    // Keys are still served from the last good set; retry sooner than a
                    // full interval so a rotation is not missed for long.
                    tokio::time::sleep(Duration::from_secs(30).min(interval)).await;
                    let _ = cache.refresh().await;
                }
            }
        })
    }
}

fn jittered(interval: Duration) -> Duration {
    let factor = rand::rng().random_range(0.9..=1.1);
    interval.mul_f64(factor)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}
