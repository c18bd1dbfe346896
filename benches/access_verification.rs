//! The cost of one Cloudflare Access verification through tunnelgate's public API, for a
//! token seen before (served from the token cache) and for a new one (RS256 check).
//!
//! A hand-rolled timing loop (no benchmark framework is among the dependencies). It needs
//! `harness = false` in Cargo.toml:
//!
//! ```toml
//! [[bench]]
//! name = "access_verification"
//! harness = false
//! ```
//!
//! then `cargo bench --bench access_verification [-- --json FILE]`. `bench/run.sh` runs it
//! for docs/performance.md. Without that entry Cargo builds this file with the test
//! harness, and `verification_cost_smoke` runs a few iterations so it stays compiled and
//! correct.
//!
//! Everything happens in this process, in memory: the library's dev issuer makes an RSA
//! key and signs tokens with Cloudflare's claims, and the key cache loads its published
//! keys through the `KeySource` seam, so no listener or socket is involved.

// Tests and benchmarks may panic on a broken fixture; production code may not (Cargo.toml [lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Algorithm;
use serde_json::json;
use tunnelgate::{
    AccessVerifier, DevIssuer, KeyCache, KeySource, Metrics, SignatureKind, SigningKey,
};

const TEAM: &str = "bench";
const ISSUER: &str = "https://bench.cloudflareaccess.com";
const AUDIENCE: &str = "bench-aud";
const KID: &str = "bench-key";

struct Plan {
    /// Verifications of one token per cached round.
    cached_iterations: usize,
    /// Distinct tokens, each verified once, per uncached round.
    uncached_tokens: usize,
    rounds: usize,
}

impl Plan {
    fn full() -> Self {
        Self {
            cached_iterations: 1_000_000,
            uncached_tokens: 2_000,
            rounds: 5,
        }
    }

    /// A few iterations, to check the benchmark still runs (`-- --smoke`).
    fn smoke() -> Self {
        Self {
            cached_iterations: 1_000,
            uncached_tokens: 20,
            rounds: 1,
        }
    }
}

struct Results {
    cached_ns: Vec<f64>,
    cached_two_threads_ns: Vec<f64>,
    uncached_ns: Vec<f64>,
    uncached_signature_only_ns: Vec<f64>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// One fresh key under a fixed `kid`, published by a dev issuer for the bench team.
fn new_issuer() -> Arc<DevIssuer> {
    let key = SigningKey::generate_with_kid(KID).expect("generating an RSA key");
    Arc::new(DevIssuer::with_keys(
        TEAM,
        AUDIENCE,
        Arc::from(vec![key]),
        &[0],
    ))
}

/// A user token as Cloudflare issues them; `n` makes each one distinct.
fn token(issuer: &DevIssuer, n: usize) -> String {
    let now = unix_now();
    let serde_json::Value::Object(claims) = json!({
        "aud": [AUDIENCE],
        "email": format!("user{n}@example.com"),
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "iss": ISSUER,
        "type": "app",
        "identity_nonce": format!("nonce-{n}"),
        "sub": format!("7335d417-61da-459d-899c-{n:012}"),
        "country": "XX",
    }) else {
        unreachable!("a JSON object literal")
    };
    let key = issuer.key(0).expect("the bench key");
    key.sign(&key.header(), &claims, SignatureKind::Rs256)
        .expect("signing a token")
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted[sorted.len() / 2]
}

fn new_verifier(keys: &Arc<KeyCache>, capacity: usize) -> AccessVerifier {
    AccessVerifier::new(
        Arc::clone(keys),
        ISSUER,
        vec![AUDIENCE.to_string()],
        Duration::from_secs(60),
        capacity,
    )
}

fn run(plan: &Plan) -> Results {
    assert_eq!(
        tunnelgate::issuer_for_team_domain(TEAM).as_deref(),
        Ok(ISSUER)
    );
    let issuer = new_issuer();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let keys = Arc::new(KeyCache::new(
        Arc::clone(&issuer) as Arc<dyn KeySource>,
        Duration::from_secs(30),
        Arc::new(Metrics::new()),
    ));
    let loaded = runtime.block_on(keys.refresh()).expect("loading the certs");
    assert_eq!(loaded, 1);

    let started = Instant::now();
    let tokens: Vec<String> = (0..plan.uncached_tokens + 1)
        .map(|n| token(&issuer, n))
        .collect();
    eprintln!(
        "signed {} tokens of {} bytes in {:.1} s",
        tokens.len(),
        tokens[0].len(),
        started.elapsed().as_secs_f64()
    );

    let mut results = Results {
        cached_ns: Vec::new(),
        cached_two_threads_ns: Vec::new(),
        uncached_ns: Vec::new(),
        uncached_signature_only_ns: Vec::new(),
    };

    // A token seen before: every round re-verifies the same token.
    let verifier = Arc::new(new_verifier(&keys, 10_000));
    let seen = tokens[plan.uncached_tokens].as_str();
    let identity = runtime
        .block_on(verifier.verify(seen))
        .expect("the token verifies");
    let expected = format!("user{}@example.com", plan.uncached_tokens);
    assert_eq!(identity.email.as_deref(), Some(expected.as_str()));
    for _ in 0..plan.rounds {
        let elapsed = runtime.block_on(async {
            let started = Instant::now();
            for _ in 0..plan.cached_iterations {
                let identity = verifier.verify(std::hint::black_box(seen)).await;
                std::hint::black_box(identity.expect("cached verification"));
            }
            started.elapsed()
        });
        results
            .cached_ns
            .push(elapsed.as_nanos() as f64 / plan.cached_iterations as f64);
    }

    // The same, from two threads at once (the server runs one worker per core).
    for _ in 0..plan.rounds {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let verifier = Arc::clone(&verifier);
                let token = seen.to_string();
                let iterations = plan.cached_iterations;
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("a Tokio runtime");
                    runtime.block_on(async {
                        let started = Instant::now();
                        for _ in 0..iterations {
                            let identity = verifier.verify(std::hint::black_box(&token)).await;
                            std::hint::black_box(identity.expect("cached verification"));
                        }
                        started.elapsed()
                    })
                })
            })
            .collect();
        let slowest = threads
            .into_iter()
            .map(|thread| thread.join().expect("bench thread"))
            .max()
            .unwrap_or_default();
        results
            .cached_two_threads_ns
            .push(slowest.as_nanos() as f64 / plan.cached_iterations as f64);
    }

    // New tokens: a fresh verifier (empty cache) sees each token once.
    for _ in 0..plan.rounds {
        let verifier = new_verifier(&keys, 10_000);
        let batch = &tokens[..plan.uncached_tokens];
        let elapsed = runtime.block_on(async {
            let started = Instant::now();
            for token in batch {
                let identity = verifier.verify(std::hint::black_box(token)).await;
                std::hint::black_box(identity.expect("uncached verification"));
            }
            started.elapsed()
        });
        results
            .uncached_ns
            .push(elapsed.as_nanos() as f64 / plan.uncached_tokens as f64);
    }

    // For reference: jsonwebtoken's RS256 decode alone, the floor of the uncached path.
    // The same key the cache holds, straight from the issuer's certs.
    let published = runtime
        .block_on(issuer.fetch())
        .expect("the issuer's certs");
    let decoding = Arc::clone(published.get(KID).expect("the bench key is published"));
    let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    for _ in 0..plan.rounds {
        let batch = &tokens[..plan.uncached_tokens];
        let started = Instant::now();
        for token in batch {
            let decoded = jsonwebtoken::decode::<serde_json::Value>(
                std::hint::black_box(token),
                &decoding,
                &validation,
            );
            std::hint::black_box(decoded.expect("signature check"));
        }
        results
            .uncached_signature_only_ns
            .push(started.elapsed().as_nanos() as f64 / plan.uncached_tokens as f64);
    }
    results
}

fn report(results: &Results, json_path: Option<&str>) {
    let rows = [
        ("cached (token seen before)", &results.cached_ns),
        (
            "cached, 2 threads at once (per verification)",
            &results.cached_two_threads_ns,
        ),
        ("uncached (new token)", &results.uncached_ns),
        (
            "  of which: jsonwebtoken RS256 decode alone",
            &results.uncached_signature_only_ns,
        ),
    ];
    println!(
        "{:<46} {:>12}   rounds (ns)",
        "Access verification", "median ns"
    );
    for (name, values) in rows {
        let rounds: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
        println!("{name:<46} {:>12.0}   {}", median(values), rounds.join(" "));
    }
    if let Some(path) = json_path {
        let document = json!({
            "cached_ns": median(&results.cached_ns),
            "cached_two_threads_ns": median(&results.cached_two_threads_ns),
            "uncached_ns": median(&results.uncached_ns),
            "uncached_signature_only_ns": median(&results.uncached_signature_only_ns),
            "rounds": {
                "cached_ns": results.cached_ns,
                "cached_two_threads_ns": results.cached_two_threads_ns,
                "uncached_ns": results.uncached_ns,
                "uncached_signature_only_ns": results.uncached_signature_only_ns,
            }
        });
        std::fs::write(path, document.to_string()).expect("writing the JSON results");
    }
}

fn main() {
    // `cargo bench` appends `--bench`; only `--json FILE` is ours.
    let args: Vec<String> = std::env::args().collect();
    let json_path = args
        .iter()
        .position(|arg| arg == "--json")
        .and_then(|at| args.get(at + 1))
        .map(String::as_str);
    let plan = if args.iter().any(|arg| arg == "--smoke") {
        Plan::smoke()
    } else {
        Plan::full()
    };
    let results = run(&plan);
    report(&results, json_path);
}

#[cfg(test)]
#[test]
fn verification_cost_smoke() {
    let results = run(&Plan::smoke());
    report(&results, None);
    assert!(results.cached_ns.iter().all(|ns| ns.is_finite()));
}
