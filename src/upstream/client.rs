//! The one pooled client for the internal API: the credential from configuration only,
//! bounded concurrency, capped response bodies, and retries that respect the method.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use rand::Rng;
use tokio::sync::Semaphore;

use super::request::UpstreamRequest;
use crate::admin::metrics::Metrics;

/// Retries of a 429 and the total time spent waiting for them.
const MAX_RATE_LIMIT_RETRIES: u32 = 2;
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);
/// Retries of a 502/503/504 or a failed connection, for idempotent methods only.
const MAX_TRANSIENT_RETRIES: u32 = 2;
const TRANSIENT_BACKOFF: Duration = Duration::from_millis(200);
/// When a 429 names no delay.
const DEFAULT_RATE_LIMIT_DELAY: Duration = Duration::from_secs(1);

/// What the upstream answered (any status), with the body capped at `max_response`.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub www_authenticate: Option<String>,
    pub retry_after: Option<u64>,
    pub body: Bytes,
    /// The body was longer than `max_response` and was cut there.
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the upstream: {0}")]
    Unreachable(String),
    #[error("the upstream request could not be built: {0}")]
    InvalidRequest(String),
}

pub struct UpstreamClient {
    http: reqwest::Client,
    base_url: String,
    /// Configured headers (credential last), applied after the tool's own headers so
    /// nothing an argument carries can replace them.
    fixed_headers: HeaderMap,
    permits: Semaphore,
    max_response: usize,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

pub struct UpstreamClientOptions {
    pub base_url: String,
    pub credential: Option<(HeaderName, HeaderValue)>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_concurrency: usize,
    pub max_response: usize,
}

impl UpstreamClient {
    pub fn new(
        options: UpstreamClientOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Self, UpstreamError> {
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(options.max_concurrency)
            .tcp_nodelay(true)
            // A redirect could carry the credential to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tunnelgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| UpstreamError::InvalidRequest(error.to_string()))?;
        let mut fixed_headers = HeaderMap::new();
        for (name, value) in options.headers {
            fixed_headers.insert(name, value);
        }
        if let Some((name, mut value)) = options.credential {
            value.set_sensitive(true);
            fixed_headers.insert(name, value);
        }
        Ok(Self {
            http,
            base_url: options.base_url.trim_end_matches('/').to_string(),
            fixed_headers,
            permits: Semaphore::new(options.max_concurrency.max(1)),
            max_response: options.max_response,
            timeout: options.timeout,
            metrics,
        })
    }

    /// Sends `request`, retrying a 429 within its budget and transient failures of
    /// idempotent methods; any final status is returned as a response. `may_retry` is
    /// asked before each retry (a retry spends the shared upstream budget too).
    pub async fn send<'a>(
        &self,
        request: &UpstreamRequest,
        may_retry: &'a (dyn Fn() -> futures::future::BoxFuture<'a, bool> + Sync),
    ) -> Result<UpstreamResponse, UpstreamError> {
        let idempotent = matches!(
            request.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let mut rate_limit_retries = 0;
        let mut rate_limit_waited = Duration::ZERO;
        let mut transient_retries = 0;
        loop {
            match self.send_once(request).await {
                Ok(response) if response.status == 429 => {
                    let delay = response
                        .retry_after
                        .map_or(DEFAULT_RATE_LIMIT_DELAY, Duration::from_secs);
                    if rate_limit_retries < MAX_RATE_LIMIT_RETRIES
                        && rate_limit_waited + delay <= MAX_RATE_LIMIT_WAIT
                        && may_retry().await
                    {
                        rate_limit_retries += 1;
                        rate_limit_waited += delay;
                        tracing::info!(
                            delay_ms = delay.as_millis() as u64,
                            "upstream answered 429; retrying"
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Ok(response);
                }
                Ok(response)
                    if idempotent
                        && matches!(response.status, 502..=504)
                        && transient_retries < MAX_TRANSIENT_RETRIES
                        && may_retry().await =>
                {
                    transient_retries += 1;
                    tokio::time::sleep(backoff(transient_retries)).await;
                }
                Err(UpstreamError::Unreachable(reason))
                    if idempotent
                        && transient_retries < MAX_TRANSIENT_RETRIES
                        && may_retry().await =>
                {
                    transient_retries += 1;
                    tracing::info!(reason, "upstream unreachable; retrying");
                    tokio::time::sleep(backoff(transient_retries)).await;
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        request: &UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| UpstreamError::Unreachable("client is shutting down".into()))?;
        let builder = self.request_builder(request)?;
        let started = Instant::now();
        let outcome = self.exchange(builder).await;
        let class = match &outcome {
            Ok(response) => status_class(response.status),
            Err(_) => "error",
        };
        self.metrics.record_upstream(class, started.elapsed());
        outcome
    }

    /// The HTTP request for `request`: the base URL joined with its path, its headers, then the configured
    /// headers (credential last) replacing any of the same name, and the body.
    pub(crate) fn request_builder(
        &self,
        request: &UpstreamRequest,
    ) -> Result<reqwest::RequestBuilder, UpstreamError> {
        let url = format!("{}{}", self.base_url, request.path_and_query);
        let mut headers =
            HeaderMap::with_capacity(request.headers.len() + self.fixed_headers.len());
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| UpstreamError::InvalidRequest(format!("header name {name:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| UpstreamError::InvalidRequest(format!("value of header {name}")))?;
            headers.insert(name, value);
        }
        for (name, value) in &self.fixed_headers {
            headers.insert(name.clone(), value.clone());
        }
        let mut builder = self
            .http
            .request(request.method.clone(), &url)
            .headers(headers);
        if let Some(body) = &request.body {
            let bytes = serde_json::to_vec(body)
                .map_err(|error| UpstreamError::InvalidRequest(error.to_string()))?;
            builder = builder.body(bytes);
        }
        Ok(builder)
    }

    async fn exchange(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let response = builder.send().await.map_err(|error| self.classify(error))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type");
        let www_authenticate = header("www-authenticate");
        let retry_after = header("retry-after").and_then(|value| value.trim().parse::<u64>().ok());
        let mut body = Vec::new();
        let mut truncated = false;
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|error| self.classify(error))?;
            let room = self.max_response.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(chunk.get(..room).unwrap_or_default());
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(UpstreamResponse {
            status,
            content_type,
            www_authenticate,
            retry_after,
            body: Bytes::from(body),
            truncated,
        })
    }

    pub(crate) fn classify(&self, error: reqwest::Error) -> UpstreamError {
        if error.is_connect() {
            // Includes connect timeouts: nothing was sent, so a retry is safe to consider.
            UpstreamError::Unreachable(error.without_url().to_string())
        } else if error.is_timeout() {
            UpstreamError::Timeout(self.timeout)
        } else {
            // Without the URL: it may hold argument values, and never the credential.
            UpstreamError::Unreachable(error.without_url().to_string())
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    let base = TRANSIENT_BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1));
    base + Duration::from_millis(rand::rng().random_range(0..100))
}

fn status_class(status: u16) -> &'static str {
    match status {
        429 => "429",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
