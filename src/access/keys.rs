//! The cache of Cloudflare Access signing keys: loaded at start-up from a [`KeySource`],
//! refreshed in the background, refetched (rate-limited, single-flight) on an unknown
//! `kid`, and never emptied by a failed fetch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::DecodingKey;
use rand::Rng;

use super::source::FetchError;
use super::source::{KeySource, SigningKeys};
use crate::admin::metrics::Metrics;

/// One published set of keys, swapped as a whole.
pub struct KeySet {
    keys: SigningKeys,
    /// Changes whenever the set of `kid`s changes; cached verifications carry it so a
    /// token signed by a withdrawn key is checked again.
    pub generation: u64,
    /// When this set was last fetched successfully; `None` before the first load.
    loaded_at: Option<Instant>,
}

impl KeySet {
    fn empty() -> Self {
        Self {
            keys: HashMap::new(),
            generation: 0,
            loaded_at: None,
        }
    }
}

/// What the web page says about the signing keys: how many, and how long since they were
/// last fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStatus {
    pub count: usize,
    /// `None` before the first successful fetch.
    pub age: Option<Duration>,
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
    source: Arc<dyn KeySource>,
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
        source: Arc<dyn KeySource>,
        unknown_kid_cooldown: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            current: RwLock::new(Arc::new(KeySet::empty())),
            source,
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

    /// The number of keys held and the time since the last successful fetch.
    pub fn status(&self) -> KeyStatus {
        let snapshot = self.snapshot();
        KeyStatus {
            count: snapshot.keys.len(),
            age: snapshot.loaded_at.map(|at| at.elapsed()),
        }
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
        let outcome = self.source.fetch().await;
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
                    // `url` as before the source was abstracted, so log queries keep working.
                    url = %self.source.describe(),
                    kept_keys = self.snapshot().keys.len(),
                    "fetching Access signing keys failed; keeping the last good set"
                );
                Err(error)
            }
        }
    }

    fn install(&self, keys: SigningKeys) {
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
        *guard = Arc::new(KeySet {
            keys,
            generation,
            loaded_at: Some(Instant::now()),
        });
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

#[cfg(test)]
mod tests {
    //! The cache's rules against the dev issuer's in-memory certs: no sockets, and the
    //! issuer's fetch counter shows exactly when the cache went to its source.

    use std::time::Duration;

    use futures::future::join_all;

    use super::*;
    use crate::dev::issuer::{DevIssuer, SHARED_KIDS};

    const COOLDOWN: Duration = Duration::from_secs(60);

    fn issuer_publishing(published: &[usize]) -> Arc<DevIssuer> {
        Arc::new(
            DevIssuer::with_shared_keys("unitteam", "unit-audience", published)
                .expect("the shared test keys"),
        )
    }

    fn cache_over(issuer: &Arc<DevIssuer>, unknown_kid_cooldown: Duration) -> KeyCache {
        KeyCache::new(
            Arc::clone(issuer) as Arc<dyn KeySource>,
            unknown_kid_cooldown,
            Arc::new(Metrics::new()),
        )
    }

    fn kid(index: usize) -> &'static str {
        SHARED_KIDS[index]
    }

    #[tokio::test]
    async fn loads_every_published_key_on_the_first_refresh() {
        let issuer = issuer_publishing(&[0, 1]);
        let cache = cache_over(&issuer, COOLDOWN);

        let loaded = cache.refresh().await;

        assert_eq!(loaded.unwrap(), 2);
        assert!(cache.is_loaded());
        assert_eq!(cache.generation(), 1);
        assert!(cache.key_for(kid(0)).await.is_ok());
        assert!(cache.key_for(kid(1)).await.is_ok());
        assert_eq!(issuer.fetches(), 1);
    }

    #[tokio::test]
    async fn keeps_the_generation_when_a_refresh_brings_the_same_kids() {
        let issuer = issuer_publishing(&[0, 1]);
        let cache = cache_over(&issuer, COOLDOWN);
        cache.refresh().await.unwrap();
        issuer.publish(&[1, 0]);

        cache.refresh().await.unwrap();

        assert_eq!(cache.generation(), 1);
        assert_eq!(issuer.fetches(), 2);
    }

    #[tokio::test]
    async fn changes_the_generation_when_a_refresh_brings_other_kids() {
        let issuer = issuer_publishing(&[0]);
        let cache = cache_over(&issuer, COOLDOWN);
        cache.refresh().await.unwrap();
        issuer.publish(&[0, 1]);

        cache.refresh().await.unwrap();

        assert_eq!(cache.generation(), 2);
        let (_, generation) = cache.key_for(kid(1)).await.unwrap();
        assert_eq!(generation, 2);
    }

    #[tokio::test]
    async fn replaces_the_key_set_on_refresh_so_a_withdrawn_key_is_gone() {
        let issuer = issuer_publishing(&[0, 1]);
        let cache = cache_over(&issuer, COOLDOWN);
        cache.refresh().await.unwrap();
        issuer.publish(&[1]);

        cache.refresh().await.unwrap();

        assert_eq!(
            cache.key_for(kid(0)).await.unwrap_err(),
            KeyLookupError::UnknownKid(kid(0).to_string())
        );
        assert!(cache.key_for(kid(1)).await.is_ok());
        assert_eq!(cache.generation(), 2);
    }

    #[tokio::test]
    async fn refetches_once_to_find_a_newly_published_kid() {
        let issuer = issuer_publishing(&[0]);
        let cache = cache_over(&issuer, COOLDOWN);
        cache.refresh().await.unwrap();
        issuer.publish(&[0, 1]);

        let found = cache.key_for(kid(1)).await;

        let (_, generation) = found.unwrap();
        assert_eq!(generation, 2);
        assert_eq!(issuer.fetches(), 2);
    }

    #[tokio::test]
    async fn refetches_once_for_many_concurrent_unknown_kids() {
        // No cooldown, so only the single flight can keep the waiters from fetching again;
        // the latency makes every lookup queue behind the first one's fetch.
        let issuer = issuer_publishing(&[0]);
        let cache = cache_over(&issuer, Duration::ZERO);
        cache.refresh().await.unwrap();
        issuer.publish(&[0, 1]);
        issuer.set_latency(Duration::from_millis(50));

        let lookups = join_all((0..20).map(|_| cache.key_for(kid(1)))).await;

        assert!(lookups.iter().all(Result::is_ok));
        assert_eq!(issuer.fetches(), 2);
    }

    #[tokio::test]
    async fn shares_one_refetch_among_concurrent_lookups_of_different_forged_kids() {
        let issuer = issuer_publishing(&[0]);
        let cache = cache_over(&issuer, Duration::ZERO);
        cache.refresh().await.unwrap();
        issuer.set_latency(Duration::from_millis(50));
        let forged: Vec<String> = (0..20).map(|n| format!("forged-{n}")).collect();

        let lookups = join_all(forged.iter().map(|kid| cache.key_for(kid))).await;

        assert!(
            lookups
                .iter()
                .all(|lookup| matches!(lookup, Err(KeyLookupError::UnknownKid(_))))
        );
        assert_eq!(issuer.fetches(), 2);
    }

    #[tokio::test]
    async fn does_not_refetch_for_a_second_unknown_kid_within_the_cooldown() {
        let issuer = issuer_publishing(&[0]);
        let cache = cache_over(&issuer, COOLDOWN);
        cache.refresh().await.unwrap();
        let _ = cache.key_for("forged-1").await;
        let fetches_after_first_miss = issuer.fetches();
        issuer.publish(&[0, 1]);

        let second = cache.key_for(kid(1)).await;

        assert_eq!(fetches_after_first_miss, 2);
        assert_eq!(issuer.fetches(), 2);
        assert_eq!(
            second.unwrap_err(),
            KeyLookupError::UnknownKid(kid(1).to_string())
        );
    }

    #[tokio::test]
    async fn refetches_again_for_an_unknown_kid_once_the_cooldown_has_passed() {
        let issuer = issuer_publishing(&[0]);
        let cache = cache_over(&issuer, Duration::from_millis(50));
        cache.refresh().await.unwrap();
        let _ = cache.key_for("forged-1").await;
        tokio::time::sleep(Duration::from_millis(80)).await;

        let _ = cache.key_for("forged-2").await;

        assert_eq!(issuer.fetches(), 3);
    }

    #[tokio::test]
    async fn keeps_the_last_good_keys_when_a_refresh_fails() {
        let issuer = issuer_publishing(&[0]);
        let cache = cache_over(&issuer, COOLDOWN);
        cache.refresh().await.unwrap();
        issuer.set_failing(true);

        let refreshed = cache.refresh().await;

        assert!(matches!(refreshed, Err(FetchError::Status(503))));
        assert!(cache.is_loaded());
        assert_eq!(cache.generation(), 1);
        assert!(cache.key_for(kid(0)).await.is_ok());
    }

    #[tokio::test]
    async fn keeps_the_last_good_keys_when_the_certs_list_no_usable_key() {
        let issuer = issuer_publishing(&[0]);
        let cache = cache_over(&issuer, COOLDOWN);
        cache.refresh().await.unwrap();
        issuer.publish(&[]);

        let refreshed = cache.refresh().await;

        assert!(matches!(refreshed, Err(FetchError::NoUsableKeys)));
        assert!(cache.key_for(kid(0)).await.is_ok());
    }

    #[tokio::test]
    async fn keeps_the_last_good_keys_when_an_unknown_kid_refetch_fails() {
        let issuer = issuer_publishing(&[0]);
        let cache = cache_over(&issuer, COOLDOWN);
        cache.refresh().await.unwrap();
        issuer.set_failing(true);

        let unknown = cache.key_for(kid(1)).await;

        assert_eq!(
            unknown.unwrap_err(),
            KeyLookupError::UnknownKid(kid(1).to_string())
        );
        assert_eq!(issuer.fetches(), 2);
        assert!(cache.key_for(kid(0)).await.is_ok());
    }

    #[tokio::test]
    async fn reports_not_loaded_before_any_key_set_arrives_without_fetching() {
        let issuer = issuer_publishing(&[0]);
        let cache = cache_over(&issuer, COOLDOWN);

        let lookup = cache.key_for(kid(0)).await;

        assert_eq!(lookup.unwrap_err(), KeyLookupError::NotLoaded);
        assert!(!cache.is_loaded());
        assert_eq!(issuer.fetches(), 0);
    }

    #[tokio::test]
    async fn stays_not_loaded_while_the_first_fetch_fails() {
        let issuer = issuer_publishing(&[0]);
        issuer.set_failing(true);
        let cache = cache_over(&issuer, COOLDOWN);

        let refreshed = cache.refresh().await;

        assert!(refreshed.is_err());
        assert!(!cache.is_loaded());
        assert_eq!(
            cache.key_for(kid(0)).await.unwrap_err(),
            KeyLookupError::NotLoaded
        );
    }
}
