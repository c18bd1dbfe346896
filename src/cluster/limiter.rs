//! Rate limits shared by all replicas: one atomic GCRA update per check, a Lua script run by
//! Redis (EVALSHA) against Redis's own clock, so no read-modify-write race and no clock skew.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::store::{Store, StoreError};

/// GCRA, the token bucket kept as one number: the theoretical arrival time (TAT) of the next
/// call. A call is allowed when at most `burst - 1` emission intervals are already booked past
/// now, i.e. a full bucket holds `burst` calls and refills one per interval.
/// ARGV: the interval (µs), the burst. Returns {1, 0} when allowed, {0, µs to wait} when not.
const GCRA: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - burst * interval
if allow_at > now then
  return {0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return {1, 0}
";

/// One bucket's shape in GCRA terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gcra {
    /// Time between two calls at the sustained rate, in µs.
    pub interval_us: u64,
    /// Calls a full bucket allows at once.
    pub burst: u32,
}

impl Gcra {
    pub fn new(per_second: f64, burst: u32) -> Self {
        let interval = if per_second > 0.0 {
            1_000_000.0 / per_second
        } else {
            f64::from(u32::MAX)
        };
        Self {
            interval_us: interval.round().max(1.0) as u64,
            burst: burst.max(1),
        }
    }
}

pub struct SharedLimiter {
    store: Arc<Store>,
    script: redis::Script,
}

impl SharedLimiter {
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            script: redis::Script::new(GCRA),
        }
    }

    /// The Redis key of the upstream budget.
    pub fn upstream_key(&self) -> String {
        self.store.key("limit:upstream")
    }

    /// The Redis key of one caller's bucket: a digest, so no email lands in Redis.
    pub fn identity_key(&self, caller: &str) -> String {
        let digest = Sha256::digest(caller.as_bytes());
        let short = digest.get(..16).unwrap_or(&[]);
        self.store
            .key(&format!("limit:identity:{}", crate::hex::lower_hex(short)))
    }

    /// Takes one call from the bucket at `key`: `Ok(Ok(()))` allowed, `Ok(Err(wait))` refused,
    /// `Err` when Redis gave no answer (the caller decides locally).
    pub async fn take(&self, key: &str, shape: Gcra) -> Result<Result<(), Duration>, StoreError> {
        let (allowed, wait_us): (i64, i64) = self
            .store
            .run(|mut connection| async move {
                self.script
                    .key(key)
                    .arg(shape.interval_us)
                    .arg(shape.burst)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        if allowed == 1 {
            Ok(Ok(()))
        } else {
            Ok(Err(Duration::from_micros(wait_us.max(1).unsigned_abs())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::metrics::Metrics;
    use crate::config::{ClusterSettings, Secret};

    #[tokio::test]
    async fn a_redis_known_to_be_down_is_not_asked() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = Secret::new(format!("redis://127.0.0.1:{port}/0"));
        let metrics = Arc::new(Metrics::with_cluster());
        let store = Store::new(&url, &ClusterSettings::default(), metrics).unwrap();
        let limiter = SharedLimiter::new(Arc::new(store));

        let answer = limiter
            .take(&limiter.upstream_key(), Gcra::new(10.0, 10))
            .await;

        assert!(matches!(answer, Err(StoreError::Down)), "{answer:?}");
    }

    #[test]
    fn a_rate_becomes_an_emission_interval_and_a_burst() {
        assert_eq!(
            Gcra::new(10.0, 10),
            Gcra {
                interval_us: 100_000,
                burst: 10
            }
        );
        assert_eq!(Gcra::new(450.0 / 60.0, 45).interval_us, 133_333);
        assert_eq!(Gcra::new(1.0, 0).burst, 1);
    }
}
