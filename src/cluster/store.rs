//! The shared Redis: one multiplexed connection with a timeout on every command, whether Redis
//! is up (watched by a pinging task that reconnects with back-off), and the key names.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::admin::metrics::Metrics;
use crate::config::{ClusterSettings, Secret};

/// How often Redis is pinged while it answers.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// The first pause after Redis stops answering; doubles up to `reconnect_max_delay`.
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(100);

/// Why a Redis command did not give an answer; the caller goes on without Redis.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis is down (waiting for it to come back)")]
    Down,
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis command failed: {0}")]
    Command(#[from] redis::RedisError),
}

/// Why the cluster cannot be set up at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Url(#[from] crate::config::RedisUrlError),
    /// The URL is not shown: it may hold a password.
    #[error("cluster.redis_url: not a Redis URL the client accepts ({kind})")]
    Invalid { kind: String },
    #[error("the cluster must be set up within the Tokio runtime")]
    NoRuntime(#[from] tokio::runtime::TryCurrentError),
}

pub struct Store {
    connection: ConnectionManager,
    client: redis::Client,
    prefix: String,
    command_timeout: Duration,
    connect_timeout: Duration,
    reconnect_max_delay: Duration,
    /// Where Redis is, without user or password (for logs).
    shown: String,
    up: AtomicBool,
    recovered: tokio::sync::Notify,
    metrics: Arc<Metrics>,
}

impl Store {
    /// Sets up the client without waiting for Redis: a replica starts (and serves on its
    /// fallback) while Redis is unreachable.
    pub fn new(
        url: &Secret,
        settings: &ClusterSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ConnectError> {
        let invalid = |error: redis::RedisError| ConnectError::Invalid {
            kind: format!("{:?}", error.kind()),
        };
        let client = redis::Client::open(url.expose()).map_err(invalid)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.command_timeout))
            // One attempt per command: the health task does the retrying, with back-off.
            .set_number_of_retries(1)
            .set_max_delay(settings.reconnect_max_delay);
        let connection =
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(invalid)?;
        Ok(Self {
            connection,
            client,
            prefix: settings.key_prefix.clone(),
            command_timeout: settings.command_timeout,
            connect_timeout: settings.connect_timeout,
            reconnect_max_delay: settings.reconnect_max_delay,
            shown: redacted(url.expose()),
            up: AtomicBool::new(false),
            recovered: tokio::sync::Notify::new(),
            metrics,
        })
    }

    /// `{prefix}:{name}`.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    pub fn reconnect_max_delay(&self) -> Duration {
        self.reconnect_max_delay
    }

    /// Resolves when Redis answers again after having been down.
    pub async fn recovered(&self) {
        self.recovered.notified().await;
    }

    /// Runs one command (or pipeline, or script) on the shared connection, within the command
    /// timeout. While Redis is known to be down, fails at once: no call waits on a dead Redis.
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.is_up() {
            return Err(StoreError::Down);
        }
        self.attempt(command).await
    }

    async fn attempt<T, F, Fut>(&self, command: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let outcome = match tokio::time::timeout(
            self.command_timeout,
            command(self.connection.clone()),
        )
        .await
        {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => StoreError::Command(error),
            Err(_) => StoreError::Timeout(self.command_timeout),
        };
        // A script error is ours, not Redis being down.
        if !matches!(&outcome, StoreError::Command(error) if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError))
        {
            self.mark_down(&outcome);
        }
        Err(outcome)
    }

    fn mark_down(&self, error: &StoreError) {
        if self.up.swap(false, Ordering::AcqRel) {
            self.metrics.cluster_redis_up.set(0);
            tracing::warn!(
                redis = %self.shown,
                error = %error,
                "Redis is unreachable: limits fall back to this replica's share (budget / cluster.expected_replicas), legacy SSE messages for sessions on other replicas get 503"
            );
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            self.metrics.cluster_redis_up.set(1);
            tracing::info!(redis = %self.shown, "Redis answers: limits and legacy SSE sessions are shared again");
            self.recovered.notify_waiters();
        }
    }

    /// One PING now, whatever the last state (`tunnelgate doctor`); an answer marks Redis up.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.ping().await?;
        self.mark_up();
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.attempt(|mut connection| async move {
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Pings Redis once now (start-up), then every second while it answers; while it does
    /// not, retries with a pause that doubles from 100 ms to `reconnect_max_delay`.
    pub async fn watch(self: Arc<Self>) {
        match self.ping().await {
            Ok(()) => self.mark_up(),
            Err(error) => {
                self.metrics.cluster_redis_up.set(0);
                tracing::warn!(
                    redis = %self.shown,
                    error = %error,
                    "Redis is unreachable at start-up: serving on the fallback until it answers"
                );
            }
        }
        let mut delay = FIRST_RECONNECT_DELAY;
        loop {
            if self.is_up() {
                delay = FIRST_RECONNECT_DELAY;
                tokio::time::sleep(HEALTH_INTERVAL).await;
                let _ = self.ping().await;
            } else {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(self.reconnect_max_delay);
                if self.ping().await.is_ok() {
                    self.mark_up();
                }
            }
        }
    }
}

/// `redis://user:password@host:6379/0` → `redis://host:6379/0`.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            parsed.to_string()
        }
        Err(_) => "[a Redis URL]".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_the_password_of_the_url() {
        assert_eq!(
            redacted("redis://admin:hunter2@redis:6379/1"),
            "redis://redis:6379/1"
        );
        assert_eq!(redacted("redis://:hunter2@redis"), "redis://redis");
        assert!(!redacted("not a url hunter2").contains("hunter2"));
    }
}

/// `rediss://` against a real TLS Redis, by hand (no TLS server in CI):
/// `TUNNELGATE_TEST_REDISS_URL=rediss://localhost:PORT/0 SSL_CERT_FILE=ca.pem cargo test --lib cluster::store::tls -- --ignored`
#[cfg(test)]
mod tls {
    use super::*;

    #[tokio::test]
    #[ignore = "needs a TLS redis-server: set TUNNELGATE_TEST_REDISS_URL and SSL_CERT_FILE"]
    async fn answers_over_tls() {
        let url = std::env::var("TUNNELGATE_TEST_REDISS_URL").unwrap();
        let store = Arc::new(
            Store::new(
                &Secret::new(url),
                &ClusterSettings::default(),
                Arc::new(Metrics::with_cluster()),
            )
            .unwrap(),
        );

        let pinged = store.ping().await;

        assert!(pinged.is_ok(), "{pinged:?}");
    }
}
