//! Check 6: with `[cluster]`, the shared Redis answers and runs the limiter's script, within the
//! configured timeouts (docs/scaling.md). Without a cluster there is nothing to check.

use std::sync::Arc;
use std::time::Instant;

use super::checklist::Check;
use crate::admin::metrics::Metrics;
use crate::cluster::{Gcra, SharedLimiter, Store};
use crate::config::Settings;

pub const TITLE: &str = "Shared Redis ([cluster])";

const REACH_FIX: &str = "start Redis, or correct cluster.redis_url / cluster.redis_url_file (host, port, password); with the compose `ha` profile it is redis://redis:6379/0";

pub async fn check(settings: &Settings) -> Check {
    if !settings.cluster.is_enabled() {
        return Check::skipped(
            6,
            TITLE,
            "no cluster.redis_url: one process, nothing shared (docs/scaling.md)",
        );
    }
    let mut check = Check::new(6, TITLE);
    let url = match settings.cluster.redis_url() {
        Ok(Some(url)) => url,
        Ok(None) => return Check::skipped(6, TITLE, "no cluster.redis_url"),
        Err(error) => {
            check.fail(
                error.to_string(),
                "mount the file that holds the Redis URL, readable by this user",
            );
            return check;
        }
    };
    let store = match Store::new(&url, &settings.cluster, Arc::new(Metrics::with_cluster())) {
        Ok(store) => Arc::new(store),
        Err(error) => {
            check.fail(
                error.to_string(),
                "write the URL as redis://[user:password@]host:port[/db] (or rediss:// for TLS)",
            );
            return check;
        }
    };
    check.note(format!("Redis at {}", store.shown()));
    let started = Instant::now();
    if let Err(error) = store.probe().await {
        check.fail(
            format!(
                "no answer to PING within cluster.command_timeout ({}): {error}",
                humantime::format_duration(settings.cluster.command_timeout)
            ),
            REACH_FIX,
        );
        return check;
    }
    let round_trip = started.elapsed();
    let limiter = SharedLimiter::new(Arc::clone(&store));
    match limiter
        .take(&store.key("doctor:probe"), Gcra::new(1000.0, 1000))
        .await
    {
        Ok(_) => check.note(format!(
            "PING answered in {:.1} ms; the shared-limit script runs (EVALSHA)",
            round_trip.as_secs_f64() * 1000.0
        )),
        Err(error) => check.fail(
            format!("the shared-limit script failed: {error}"),
            "allow Lua scripting (EVAL, EVALSHA, SCRIPT LOAD) for this Redis user; a Redis without it cannot share limits",
        ),
    }
    check.note(format!(
        "while Redis is down each replica spends 1/{} of every budget (cluster.expected_replicas)",
        settings.cluster.expected_replicas
    ));
    check
}
