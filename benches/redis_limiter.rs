//! The cost of one shared rate-limit check against Redis (`[cluster]`): the GCRA script by
//! EVALSHA over the replica's one multiplexed connection, to a `redis-server` this benchmark
//! starts on loopback (no persistence), one check at a time (latency) and 64 at once
//! (throughput of one replica's connection).
//!
//! `cargo bench --bench redis_limiter` (hand-rolled timing loop, `harness = false`). Needs
//! `redis-server` on PATH (Debian: `apt-get install redis-server`); without it, says so and
//! exits 0. docs/performance.md and docs/scaling.md quote its figures.

// Tests and benchmarks may panic on a broken fixture; production code may not (Cargo.toml [lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tunnelgate::config::{ClusterSettings, Secret};
use tunnelgate::{Gcra, Metrics, SharedLimiter, Store};

const SEQUENTIAL: usize = 20_000;
const CONCURRENT: usize = 40_000;
const IN_FLIGHT: usize = 64;

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn main() {
    let Some(redis) = redis_server::RedisServer::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let settings = ClusterSettings::default();
        let store = Arc::new(
            Store::new(
                &Secret::new(redis.url()),
                &settings,
                Arc::new(Metrics::with_cluster()),
            )
            .unwrap(),
        );
        tokio::spawn(Arc::clone(&store).watch());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !store.is_up() {
            assert!(Instant::now() < deadline, "Redis never came up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let limiter = Arc::new(SharedLimiter::new(Arc::clone(&store)));
        // A budget no run exhausts: every check is a full GCRA update, never an early refusal.
        let shape = Gcra::new(1_000_000.0, 1_000_000);
        let keys: Vec<String> = (0..100)
            .map(|index| limiter.identity_key(&format!("user-{index}@example.com")))
            .collect();
        for key in keys.iter().cycle().take(2_000) {
            limiter.take(key, shape).await.unwrap().unwrap();
        }

        let mut samples = Vec::with_capacity(SEQUENTIAL);
        for key in keys.iter().cycle().take(SEQUENTIAL) {
            let started = Instant::now();
            limiter.take(key, shape).await.unwrap().unwrap();
            samples.push(started.elapsed());
        }
        samples.sort();
        let mean = samples.iter().sum::<Duration>() / SEQUENTIAL as u32;

        let started = Instant::now();
        let per_task = CONCURRENT / IN_FLIGHT;
        let tasks: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                let key = limiter.upstream_key();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        limiter.take(&key, shape).await.unwrap().unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = started.elapsed();
        let throughput = (per_task * IN_FLIGHT) as f64 / elapsed.as_secs_f64();

        println!("redis_limiter: one shared limit check = GCRA script by EVALSHA on loopback redis-server");
        println!(
            "  one at a time ({SEQUENTIAL} checks): mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs",
            mean.as_secs_f64() * 1e6,
            percentile(&samples, 0.50).as_secs_f64() * 1e6,
            percentile(&samples, 0.99).as_secs_f64() * 1e6,
        );
        println!(
            "  {IN_FLIGHT} in flight ({} checks on one key): {:.0} checks/s ({:.1} µs per check amortised)",
            per_task * IN_FLIGHT,
            throughput,
            1e6 / throughput
        );
    });
}
