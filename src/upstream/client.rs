//! The client for the internal API: the credential from configuration only, bounded
//! concurrency, capped response bodies, retries that respect the method, and a connection
//! pool per worker thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
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
    http: PerThreadClients,
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
        let http = PerThreadClients::new(&options)?;
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
            .for_this_thread()
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
        let expected_len = response.content_length().unwrap_or_default();
        // A body that arrives in one chunk (most small answers) is kept as that chunk; one
        // in several is gathered into a buffer sized from Content-Length.
        let mut first: Option<Bytes> = None;
        let mut gathered: Vec<u8> = Vec::new();
        let mut truncated = false;
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|error| self.classify(error))?;
            let received = first.as_ref().map_or(0, Bytes::len) + gathered.len();
            let room = self.max_response.saturating_sub(received);
            let (chunk, cut) = if chunk.len() > room {
                (chunk.slice(..room), true)
            } else {
                (chunk, false)
            };
            match first.take() {
                None if gathered.is_empty() => first = Some(chunk),
                earlier => {
                    if let Some(earlier) = earlier {
                        let capacity = usize::try_from(expected_len)
                            .unwrap_or(usize::MAX)
                            .clamp(earlier.len() + chunk.len(), self.max_response);
                        gathered.reserve(capacity);
                        gathered.extend_from_slice(&earlier);
                    }
                    gathered.extend_from_slice(&chunk);
                }
            }
            if cut {
                truncated = true;
                break;
            }
        }
        let body = first.unwrap_or_else(|| Bytes::from(gathered));
        Ok(UpstreamResponse {
            status,
            content_type,
            www_authenticate,
            retry_after,
            body,
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

/// One `reqwest::Client` (and so one connection pool) per thread that calls the upstream,
/// built on its first call. A pooled connection is driven by a task on the runtime that
/// opened it; with one pool shared by the actix workers, a call on one worker often rides a
/// connection driven by the other, and every exchange then wakes a second thread.
struct PerThreadClients {
    /// Slot 0, built at start-up so a configuration the HTTP stack refuses fails early.
    first: reqwest::Client,
    /// One slot per core (the actix worker count); threads beyond that share slots.
    others: Vec<OnceLock<reqwest::Client>>,
    settings: ClientSettings,
}

struct ClientSettings {
    timeout: Duration,
    connect_timeout: Duration,
    max_idle_per_host: usize,
}

impl ClientSettings {
    fn build(&self) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(self.max_idle_per_host)
            .tcp_nodelay(true)
            // A redirect could carry the credential to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tunnelgate/", env!("CARGO_PKG_VERSION")))
            .build()
    }
}

/// Hands each thread the next client slot, round robin.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
}

impl PerThreadClients {
    fn new(options: &UpstreamClientOptions) -> Result<Self, UpstreamError> {
        let slots = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let settings = ClientSettings {
            timeout: options.timeout,
            connect_timeout: options.connect_timeout,
            max_idle_per_host: options.max_concurrency,
        };
        let first = settings
            .build()
            .map_err(|error| UpstreamError::InvalidRequest(error.to_string()))?;
        Ok(Self {
            first,
            others: (1..slots).map(|_| OnceLock::new()).collect(),
            settings,
        })
    }

    fn for_this_thread(&self) -> &reqwest::Client {
        let slot = THREAD_SLOT.with(|slot| *slot) % (self.others.len() + 1);
        match slot.checked_sub(1).and_then(|index| self.others.get(index)) {
            // The settings built `first` already; should a later build fail all the same,
            // the thread shares `first` rather than fail its calls.
            Some(lazy) => {
                lazy.get_or_init(|| self.settings.build().unwrap_or_else(|_| self.first.clone()))
            }
            None => &self.first,
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Serves one HTTP/1.1 answer whose body goes out as these chunks, a moment apart.
    async fn serve_chunks(chunks: Vec<&'static str>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                .await
                .unwrap();
            for chunk in chunks {
                let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
                socket.write_all(framed.as_bytes()).await.unwrap();
                socket.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            socket.write_all(b"0\r\n\r\n").await.unwrap();
        });
        format!("http://{address}")
    }

    fn client(base_url: String, max_response: usize) -> UpstreamClient {
        let options = UpstreamClientOptions {
            base_url,
            credential: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            max_concurrency: 4,
            max_response,
        };
        UpstreamClient::new(options, Arc::new(Metrics::new())).unwrap()
    }

    async fn get(client: &UpstreamClient) -> UpstreamResponse {
        let request = UpstreamRequest {
            method: Method::GET,
            path_and_query: "/items".into(),
            headers: Vec::new(),
            body: None,
        };
        let never = || -> futures::future::BoxFuture<'_, bool> { Box::pin(async { false }) };
        client.send(&request, &never).await.unwrap()
    }

    #[tokio::test]
    async fn gathers_a_body_sent_in_several_chunks() {
        let base_url = serve_chunks(vec![r#"{"items":"#, r#"[1,2,"#, r#"3]}"#]).await;

        let response = get(&client(base_url, 1 << 20)).await;

        assert_eq!(&response.body[..], br#"{"items":[1,2,3]}"#);
        assert!(!response.truncated);
    }

    #[tokio::test]
    async fn cuts_a_chunked_body_at_the_limit_and_says_so() {
        let base_url = serve_chunks(vec!["abcdef", "ghijkl", "mnopqr"]).await;

        let response = get(&client(base_url, 10)).await;

        assert_eq!(&response.body[..], b"abcdefghij");
        assert!(response.truncated);
    }

    #[tokio::test]
    async fn cuts_a_first_chunk_that_is_already_too_long() {
        let base_url = serve_chunks(vec!["abcdefghijklmnop"]).await;

        let response = get(&client(base_url, 4)).await;

        assert_eq!(&response.body[..], b"abcd");
        assert!(response.truncated);
    }
}
