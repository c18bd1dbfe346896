//! Rate limits: a token bucket per identity on tool calls, and one shared bucket on
//! upstream calls so no group of users can exhaust the organization's API quota. With a
//! `[cluster]` the buckets live in Redis and all replicas share them; while Redis is down each
//! replica decides alone with its share (`cluster.expected_replicas`) of every bucket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::admin::metrics::Metrics;
use crate::cluster::{Gcra, SharedLimiter};
use crate::config::{Rate, Settings};
use crate::outcome::LimitKind;

/// A classic token bucket; `try_take` says how long to wait when empty.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug, Clone, Copy)]
struct BucketShape {
    capacity: f64,
    per_second: f64,
}

impl BucketShape {
    fn from_rate(rate: Rate, burst: Option<u32>) -> Option<Self> {
        match rate {
            Rate::Off => None,
            Rate::PerPeriod { count, period } => Some(Self {
                capacity: f64::from(burst.unwrap_or(count)),
                per_second: f64::from(count) / period.as_secs_f64(),
            }),
        }
    }

    fn take(&self, bucket: &mut Bucket, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    /// One replica's share of the bucket when `replicas` split it.
    fn share(self, replicas: u32) -> Self {
        let replicas = f64::from(replicas.max(1));
        Self {
            capacity: (self.capacity / replicas).ceil().max(1.0),
            per_second: self.per_second / replicas,
        }
    }

    fn gcra(self) -> Gcra {
        Gcra::new(self.per_second, self.capacity.max(1.0) as u32)
    }

    fn full(&self, now: Instant) -> Bucket {
        Bucket {
            tokens: self.capacity,
            updated: now,
        }
    }
}

/// Which limit refused a call, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    pub limit: LimitKind,
    pub retry_after: Duration,
}

impl Limited {
    pub fn message(&self) -> String {
        let seconds = self.retry_after.as_secs_f64().ceil().max(1.0);
        match self.limit {
            LimitKind::PerIdentity => {
                format!("rate limit: you have made too many tool calls; retry in {seconds:.0} s")
            }
            LimitKind::Upstream => format!(
                "rate limit: the shared budget for the upstream API is spent for now; retry in {seconds:.0} s"
            ),
        }
    }
}

const MAX_TRACKED_IDENTITIES: usize = 50_000;

/// The buckets in Redis, for a replica of a cluster.
struct Shared {
    limiter: Arc<SharedLimiter>,
    metrics: Arc<Metrics>,
    per_identity: Option<Gcra>,
    upstream: Option<Gcra>,
}

pub struct RateLimits {
    /// The local buckets: the whole limit for one process, this replica's share in a cluster
    /// (used only while Redis is down).
    per_identity: Option<BucketShape>,
    identities: Mutex<HashMap<String, Bucket>>,
    /// The most identities tracked at once (the table never grows past it).
    max_identities: usize,
    upstream: Option<BucketShape>,
    upstream_bucket: Mutex<Option<Bucket>>,
    shared: Option<Shared>,
}

impl RateLimits {
    pub fn from_settings(settings: &Settings) -> Self {
        let limits = &settings.limits;
        Self::new(
            limits.per_identity.unwrap_or(Rate::Off),
            limits.per_identity_burst,
            settings.effective_upstream_rate(),
            // A full bucket of `count` plus a minute of refill would allow twice the rate
            // in the first minute; a tenth keeps every 60 s window within 110 %.
            limits
                .upstream_burst
                .or_else(|| match settings.effective_upstream_rate() {
                    Rate::PerPeriod { count, .. } => Some((count / 10).max(1)),
                    Rate::Off => None,
                }),
        )
    }

    pub fn new(
        per_identity: Rate,
        per_identity_burst: Option<u32>,
        upstream: Rate,
        upstream_burst: Option<u32>,
    ) -> Self {
        Self {
            per_identity: BucketShape::from_rate(per_identity, per_identity_burst),
            identities: Mutex::new(HashMap::new()),
            max_identities: MAX_TRACKED_IDENTITIES,
            upstream: BucketShape::from_rate(upstream, upstream_burst),
            upstream_bucket: Mutex::new(None),
            shared: None,
        }
    }

    /// Shares the buckets through Redis; the local buckets shrink to one replica's share
    /// (`expected_replicas`) and decide only while Redis does not answer.
    pub fn shared(
        mut self,
        limiter: Arc<SharedLimiter>,
        metrics: Arc<Metrics>,
        expected_replicas: u32,
    ) -> Self {
        self.shared = Some(Shared {
            limiter,
            metrics,
            per_identity: self.per_identity.map(BucketShape::gcra),
            upstream: self.upstream.map(BucketShape::gcra),
        });
        self.per_identity = self
            .per_identity
            .map(|shape| shape.share(expected_replicas));
        self.upstream = self.upstream.map(|shape| shape.share(expected_replicas));
        self
    }

    /// Takes one tool call from `caller`'s bucket.
    pub async fn check_identity(&self, caller: &str) -> Result<(), Limited> {
        let Some(shape) = self.per_identity else {
            return Ok(());
        };
        if let Some(shared) = &self.shared
            && let Some(gcra) = shared.per_identity
        {
            let key = shared.limiter.identity_key(caller);
            match shared.limiter.take(&key, gcra).await {
                Ok(decision) => {
                    return decision.map_err(|retry_after| Limited {
                        limit: LimitKind::PerIdentity,
                        retry_after,
                    });
                }
                Err(_) => shared.metrics.record_limit_fallback(LimitKind::PerIdentity),
            }
        }
        let now = Instant::now();
        let mut buckets = match self.identities.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= self.max_identities && !buckets.contains_key(caller) {
            make_room(&mut buckets, shape, now, self.max_identities);
        }
        let bucket = buckets
            .entry(caller.to_string())
            .or_insert_with(|| shape.full(now));
        shape.take(bucket, now).map_err(|retry_after| Limited {
            limit: LimitKind::PerIdentity,
            retry_after,
        })
    }

    #[cfg(test)]
    fn with_max_identities(mut self, max_identities: usize) -> Self {
        self.max_identities = max_identities;
        self
    }

    #[cfg(test)]
    fn tracked_identities(&self) -> usize {
        match self.identities.lock() {
            Ok(guard) => guard.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    /// Takes one upstream call from the shared budget.
    pub async fn check_upstream(&self) -> Result<(), Limited> {
        let Some(shape) = self.upstream else {
            return Ok(());
        };
        if let Some(shared) = &self.shared
            && let Some(gcra) = shared.upstream
        {
            match shared
                .limiter
                .take(&shared.limiter.upstream_key(), gcra)
                .await
            {
                Ok(decision) => {
                    return decision.map_err(|retry_after| Limited {
                        limit: LimitKind::Upstream,
                        retry_after,
                    });
                }
                Err(_) => shared.metrics.record_limit_fallback(LimitKind::Upstream),
            }
        }
        let now = Instant::now();
        let mut bucket = match self.upstream_bucket.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let bucket = bucket.get_or_insert_with(|| shape.full(now));
        shape.take(bucket, now).map_err(|retry_after| Limited {
            limit: LimitKind::Upstream,
            retry_after,
        })
    }
}

/// Frees room in a full identity table: buckets that have refilled go first (a full bucket
/// is the same as no bucket); if that is not enough, the longest idle eighth goes, so a flood
/// of new identities costs one sort per eighth of the table, never unbounded memory.
fn make_room(
    buckets: &mut HashMap<String, Bucket>,
    shape: BucketShape,
    now: Instant,
    max_identities: usize,
) {
    let refill = Duration::from_secs_f64(shape.capacity / shape.per_second);
    buckets.retain(|_, bucket| now.saturating_duration_since(bucket.updated) < refill);
    if buckets.len() < max_identities {
        return;
    }
    let evict = (max_identities / 8).max(1);
    let mut by_age: Vec<Instant> = buckets.values().map(|bucket| bucket.updated).collect();
    let (_, &mut newest_evicted, _) = by_age.select_nth_unstable(evict.saturating_sub(1));
    let mut evicted = 0;
    buckets.retain(|_, bucket| {
        let goes = evicted < evict && bucket.updated <= newest_evicted;
        evicted += usize::from(goes);
        !goes
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(count: u32) -> Rate {
        Rate::PerPeriod {
            count,
            period: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn allows_the_burst_then_refuses_with_a_wait() {
        let limits = RateLimits::new(per_minute(3), None, Rate::Off, None);

        for _ in 0..3 {
            assert!(limits.check_identity("ada").await.is_ok());
        }
        let refused = limits.check_identity("ada").await.unwrap_err();

        assert_eq!(refused.limit, LimitKind::PerIdentity);
        assert!(refused.retry_after > Duration::from_secs(15));
        assert!(refused.message().contains("retry in"));
    }

    #[tokio::test]
    async fn identities_have_separate_buckets() {
        let limits = RateLimits::new(per_minute(1), None, Rate::Off, None);

        assert!(limits.check_identity("ada").await.is_ok());
        assert!(limits.check_identity("grace").await.is_ok());
        assert!(limits.check_identity("ada").await.is_err());
    }

    #[tokio::test]
    async fn the_upstream_budget_is_shared() {
        let limits = RateLimits::new(Rate::Off, None, per_minute(2), None);

        assert!(limits.check_upstream().await.is_ok());
        assert!(limits.check_upstream().await.is_ok());
        assert_eq!(
            limits.check_upstream().await.unwrap_err().limit,
            LimitKind::Upstream
        );
    }

    #[tokio::test]
    async fn off_means_unlimited() {
        let limits = RateLimits::new(Rate::Off, None, Rate::Off, None);
        for _ in 0..1000 {
            assert!(limits.check_identity("ada").await.is_ok());
            assert!(limits.check_upstream().await.is_ok());
        }
    }

    #[tokio::test]
    async fn never_tracks_more_identities_than_its_cap() {
        let limits = RateLimits::new(per_minute(5), None, Rate::Off, None).with_max_identities(100);

        for index in 0..1_000 {
            assert!(
                limits
                    .check_identity(&format!("user-{index}"))
                    .await
                    .is_ok()
            );
        }

        assert!(limits.tracked_identities() <= 100);
    }

    #[tokio::test]
    async fn forgets_the_longest_idle_identities_first() {
        let limits = RateLimits::new(per_minute(1), None, Rate::Off, None).with_max_identities(16);
        assert!(limits.check_identity("busy").await.is_ok());
        for index in 0..15 {
            assert!(
                limits
                    .check_identity(&format!("idle-{index}"))
                    .await
                    .is_ok()
            );
        }

        // "busy" is the oldest entry; refresh it so the idle ones are older.
        std::thread::sleep(Duration::from_millis(5));
        let _ = limits.check_identity("busy").await;
        for index in 0..8 {
            assert!(limits.check_identity(&format!("new-{index}")).await.is_ok());
        }

        assert!(
            limits.check_identity("busy").await.is_err(),
            "the active caller's empty bucket was forgotten"
        );
    }
}

#[cfg(test)]
mod share_tests {
    use super::*;

    #[test]
    fn a_replica_share_divides_the_rate_and_keeps_at_least_one_call() {
        let shape = BucketShape {
            capacity: 10.0,
            per_second: 10.0,
        };

        let third = shape.share(3);

        assert_eq!(third.capacity, 4.0);
        assert!((third.per_second - 10.0 / 3.0).abs() < 1e-9);
        assert_eq!(shape.share(100).capacity, 1.0);
    }
}

#[cfg(test)]
mod fallback_tests {
    use super::*;
    use crate::cluster::Store;
    use crate::config::{ClusterSettings, Secret};

    /// A Redis nobody listens on: the store never comes up.
    fn unreachable_limiter(metrics: &Arc<Metrics>) -> Arc<SharedLimiter> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = Secret::new(format!("redis://127.0.0.1:{port}/0"));
        let store = Store::new(&url, &ClusterSettings::default(), Arc::clone(metrics)).unwrap();
        Arc::new(SharedLimiter::new(Arc::new(store)))
    }

    #[tokio::test]
    async fn without_redis_a_replica_spends_only_its_share_of_the_budget() {
        let metrics = Arc::new(Metrics::with_cluster());
        let per_minute = Rate::PerPeriod {
            count: 600,
            period: Duration::from_secs(60),
        };
        let limits = RateLimits::new(Rate::Off, None, per_minute, Some(10)).shared(
            unreachable_limiter(&metrics),
            Arc::clone(&metrics),
            2,
        );

        let mut allowed = 0;
        for _ in 0..20 {
            if limits.check_upstream().await.is_ok() {
                allowed += 1;
            }
        }

        assert_eq!(allowed, 5, "half of the burst of 10");
        let page = metrics.encode();
        assert!(
            page.contains("tunnelgate_cluster_limit_fallbacks_total{limit=\"upstream\"} 20"),
            "{page}"
        );
    }
}
