//! The optional `[cluster]`: what replicas share through Redis (rate limits, the routing of
//! legacy SSE messages) and how each replica carries on while Redis is down.

mod limiter;
mod relay;
mod store;

use std::sync::Arc;

pub use limiter::{Gcra, SharedLimiter};
pub use relay::{Delivery, LocalSessions, RelayedMessage, SessionRelay};
pub use store::{ConnectError, Store};

use crate::admin::metrics::Metrics;
use crate::config::Settings;

/// The shared pieces of one replica, built once at start-up.
pub struct Cluster {
    pub store: Arc<Store>,
    pub limiter: Arc<SharedLimiter>,
    pub relay: Arc<SessionRelay>,
}

impl Cluster {
    /// `None` without `cluster.redis_url`: one process, nothing shared. Never waits for Redis.
    pub fn from_settings(
        settings: &Settings,
        metrics: &Arc<Metrics>,
    ) -> Result<Option<Self>, ConnectError> {
        let Some(url) = settings.cluster.redis_url()? else {
            return Ok(None);
        };
        let store = Arc::new(Store::new(&url, &settings.cluster, Arc::clone(metrics))?);
        let limiter = Arc::new(SharedLimiter::new(Arc::clone(&store)));
        let relay = Arc::new(SessionRelay::new(
            Arc::clone(&store),
            settings.server.sse_keep_alive,
            settings.cluster.relay_timeout,
            Arc::clone(metrics),
            tokio::runtime::Handle::try_current()?,
        ));
        tracing::info!(
            redis = %store.shown(),
            replica = relay.replica(),
            expected_replicas = settings.cluster.expected_replicas,
            "cluster mode: limits and legacy SSE sessions shared through Redis"
        );
        Ok(Some(Self {
            store,
            limiter,
            relay,
        }))
    }

    /// The health watch (with reconnection), the relay listener and the record renewal.
    pub fn spawn_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(Arc::clone(&self.store).watch()),
            tokio::spawn(Arc::clone(&self.relay).listen()),
            tokio::spawn(Arc::clone(&self.relay).renew()),
        ]
    }
}
