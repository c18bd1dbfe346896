//! The client for the internal API: the credential from configuration only, bounded
//! concurrency, a deadline per exchange, capped response bodies and retries that respect
//! the method.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header};
use rand::Rng;
use tokio::sync::Semaphore;

use super::proxy::UpstreamProxy;
use super::request::UpstreamRequest;
use super::transport::{Received, Transport, TransportError, TransportSettings};
use crate::admin::metrics::Metrics;

/// Retries of a 429 and the total time spent waiting for them.
const MAX_RATE_LIMIT_RETRIES: u32 = 2;
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);
/// Retries of a 502/503/504 or a failed connection, for idempotent methods only.
const MAX_TRANSIENT_RETRIES: u32 = 2;
const TRANSIENT_BACKOFF: Duration = Duration::from_millis(200);
/// When a 429 names no delay.
const DEFAULT_RATE_LIMIT_DELAY: Duration = Duration::from_secs(1);
/// Immediate resends of a request the upstream refused unprocessed (reqwest's number).
const MAX_NOT_PROCESSED_RETRIES: u32 = 2;

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
    transport: Transport,
    base_url: String,
    /// Sent unless the tool's own headers name them (`accept: */*`, `user-agent`).
    default_headers: HeaderMap,
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
    /// The HTTP proxy to reach the upstream through; `None` connects straight to it.
    pub proxy: Option<UpstreamProxy>,
}

impl UpstreamClient {
    pub fn new(
        options: UpstreamClientOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Self, UpstreamError> {
        let base_url = options.base_url.trim_end_matches('/').to_string();
        // Neither message shows the URL: a user name and password in it would be a secret.
        let base = base_url.parse::<Uri>().map_err(|error| {
            UpstreamError::InvalidRequest(format!("the base URL is not a valid URI: {error}"))
        })?;
        if base
            .authority()
            .is_some_and(|authority| authority.as_str().contains('@'))
        {
            return Err(UpstreamError::InvalidRequest(
                "the base URL carries a user name or password; give the credential as upstream.token (or upstream.headers) instead".into(),
            ));
        }
        let settings = TransportSettings {
            connect_timeout: options.connect_timeout,
            max_idle_per_host: options.max_concurrency,
            user_agent: USER_AGENT,
        };
        let transport = Transport::new(settings, options.proxy.as_ref())
            .map_err(|error| UpstreamError::InvalidRequest(error.to_string()))?;
        let mut default_headers = HeaderMap::with_capacity(2);
        default_headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        default_headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        let mut fixed_headers = HeaderMap::new();
        for (name, value) in options.headers {
            fixed_headers.insert(name, value);
        }
        if let Some((name, mut value)) = options.credential {
            value.set_sensitive(true);
            fixed_headers.insert(name, value);
        }
        Ok(Self {
            transport,
            base_url,
            default_headers,
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
        let started = Instant::now();
        let outcome = self.exchange(request).await;
        let class = match &outcome {
            Ok(response) => status_class(response.status),
            Err(_) => "error",
        };
        self.metrics.record_upstream(class, started.elapsed());
        outcome
    }

    /// The HTTP request for `request`: the base URL joined with its path; the default
    /// headers, then its own, then the configured headers (credential last), each
    /// replacing any of the same name; and the body.
    pub(crate) fn http_request(
        &self,
        request: &UpstreamRequest,
    ) -> Result<http::Request<Bytes>, UpstreamError> {
        let uri = format!("{}{}", self.base_url, request.path_and_query)
            .parse::<Uri>()
            .map_err(|error| UpstreamError::InvalidRequest(format!("the URL: {error}")))?;
        let mut headers = HeaderMap::with_capacity(
            self.default_headers.len() + request.headers.len() + self.fixed_headers.len(),
        );
        for (name, value) in &self.default_headers {
            headers.insert(name.clone(), value.clone());
        }
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
        let body = match &request.body {
            Some(body) => serde_json::to_vec(body)
                .map(Bytes::from)
                .map_err(|error| UpstreamError::InvalidRequest(error.to_string()))?,
            None => Bytes::new(),
        };
        let mut http_request = http::Request::new(body);
        *http_request.method_mut() = request.method.clone();
        *http_request.uri_mut() = uri;
        *http_request.headers_mut() = headers;
        Ok(http_request)
    }

    /// One exchange, answer body included, within the configured timeout. A request the
    /// upstream refused before processing it is sent again at once, up to
    /// [`MAX_NOT_PROCESSED_RETRIES`] times, whatever its method.
    async fn exchange(&self, request: &UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        let attempts = async {
            let mut retries = 0;
            loop {
                let http_request = self.http_request(request)?;
                match self
                    .transport
                    .exchange(http_request, self.max_response)
                    .await
                {
                    Err(TransportError::NotProcessed(reason))
                        if retries < MAX_NOT_PROCESSED_RETRIES =>
                    {
                        retries += 1;
                        tracing::debug!(
                            reason,
                            "upstream refused the request unprocessed; sending it again"
                        );
                    }
                    outcome => return outcome.map_err(UpstreamError::from),
                }
            }
        };
        let received = tokio::time::timeout(self.timeout, attempts)
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout))??;
        Ok(UpstreamResponse::from(received))
    }
}

impl From<TransportError> for UpstreamError {
    fn from(error: TransportError) -> Self {
        match error {
            // A connection that failed sent nothing; `send` retries these for idempotent
            // methods only, like a failure after the request left, which may have been carried out.
            TransportError::Connect(reason)
            | TransportError::NotProcessed(reason)
            | TransportError::Exchange(reason) => UpstreamError::Unreachable(reason),
            TransportError::Setup(reason) => UpstreamError::InvalidRequest(reason),
        }
    }
}

impl From<Received> for UpstreamResponse {
    fn from(received: Received) -> Self {
        let header = |name: header::HeaderName| {
            received
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        Self {
            status: received.status,
            content_type: header(header::CONTENT_TYPE),
            www_authenticate: header(header::WWW_AUTHENTICATE),
            retry_after: header(header::RETRY_AFTER)
                .and_then(|value| value.trim().parse::<u64>().ok()),
            body: received.body,
            truncated: received.truncated,
        }
    }
}

const USER_AGENT: &str = concat!("tunnelgate/", env!("CARGO_PKG_VERSION"));

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

    /// Answers one connection with `answer` (written in full, then the socket is held open
    /// for `hold`), and hands back the request head it read.
    async fn serve_once(
        answer: &'static [u8],
        hold: Duration,
    ) -> (String, tokio::sync::oneshot::Receiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (sender, head) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buffer = [0u8; 4096];
            while !received.windows(4).any(|window| window == b"\r\n\r\n") {
                let read = socket.read(&mut buffer).await.unwrap();
                if read == 0 {
                    break;
                }
                received.extend_from_slice(&buffer[..read]);
            }
            let _ = sender.send(String::from_utf8_lossy(&received).into_owned());
            socket.write_all(answer).await.unwrap();
            tokio::time::sleep(hold).await;
        });
        (format!("http://{address}"), head)
    }

    fn options(base_url: String, max_response: usize) -> UpstreamClientOptions {
        UpstreamClientOptions {
            base_url,
            credential: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            max_concurrency: 4,
            max_response,
            proxy: None,
        }
    }

    fn client(base_url: String, max_response: usize) -> UpstreamClient {
        UpstreamClient::new(options(base_url, max_response), Arc::new(Metrics::new())).unwrap()
    }

    fn items_request() -> UpstreamRequest {
        UpstreamRequest {
            method: Method::GET,
            path_and_query: "/items?limit=2".into(),
            headers: vec![("authorization".into(), "Bearer from-an-argument".into())],
            body: None,
        }
    }

    async fn try_get(client: &UpstreamClient) -> Result<UpstreamResponse, UpstreamError> {
        let never = || -> futures::future::BoxFuture<'_, bool> { Box::pin(async { false }) };
        client.send(&items_request(), &never).await
    }

    async fn get(client: &UpstreamClient) -> UpstreamResponse {
        try_get(client).await.unwrap()
    }

    const SMALL_ANSWER: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

    #[tokio::test]
    async fn sends_the_configured_credential_in_place_of_an_arguments_header() {
        let (base_url, head) = serve_once(SMALL_ANSWER, Duration::ZERO).await;
        let mut options = options(format!("{base_url}/api/"), 1024);
        options.credential = Some((
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer configured"),
        ));
        let client = UpstreamClient::new(options, Arc::new(Metrics::new())).unwrap();

        let response = get(&client).await;

        let head = head.await.unwrap().to_ascii_lowercase();
        assert_eq!(response.status, 200);
        assert_eq!(response.content_type.as_deref(), Some("application/json"));
        assert!(
            head.starts_with("get /api/items?limit=2 http/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\nauthorization: bearer configured\r\n"),
            "{head}"
        );
        assert!(!head.contains("from-an-argument"), "{head}");
        assert!(head.contains("\r\naccept: */*\r\n"), "{head}");
        assert!(head.contains("\r\nuser-agent: tunnelgate/"), "{head}");
        assert!(head.contains("\r\nhost: 127.0.0.1:"), "{head}");
    }

    #[tokio::test]
    async fn goes_through_the_named_proxy_with_its_credentials() {
        let (proxy_url, head) = serve_once(SMALL_ANSWER, Duration::ZERO).await;
        let mut options = options("http://upstream.invalid/api".into(), 1024);
        options.proxy = Some(UpstreamProxy {
            uri: proxy_url.parse().unwrap(),
            authorization: Some(HeaderValue::from_static("Basic dXNlcjpzZWNyZXQ=")),
        });
        let client = UpstreamClient::new(options, Arc::new(Metrics::new())).unwrap();

        let response = get(&client).await;

        let head = head.await.unwrap().to_ascii_lowercase();
        assert_eq!(response.status, 200);
        assert!(
            head.starts_with("get http://upstream.invalid/api/items?limit=2 http/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\nproxy-authorization: basic dxnlcjpzzwnyzxq=\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn the_timeout_covers_a_body_that_stalls() {
        let stalls = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial\":";
        let (base_url, _head) = serve_once(stalls, Duration::from_secs(5)).await;
        let mut options = options(base_url, 1024);
        options.timeout = Duration::from_millis(200);
        let client = UpstreamClient::new(options, Arc::new(Metrics::new())).unwrap();

        let outcome = try_get(&client).await;

        assert!(
            matches!(outcome, Err(UpstreamError::Timeout(timeout)) if timeout == Duration::from_millis(200)),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable_and_says_why() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);

        let outcome = try_get(&client(base_url, 1024)).await;

        match outcome {
            Err(UpstreamError::Unreachable(reason)) => {
                assert!(reason.to_ascii_lowercase().contains("refused"), "{reason}");
            }
            other => panic!("expected unreachable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_tls_handshake_that_stalls_ends_at_the_connect_timeout_as_unreachable() {
        // Accepts TCP and never answers the TLS hello.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let mut options = options(format!("https://{address}"), 1024);
        options.connect_timeout = Duration::from_millis(200);
        options.timeout = Duration::from_secs(30);
        let client = UpstreamClient::new(options, Arc::new(Metrics::new())).unwrap();

        let outcome = try_get(&client).await;

        match outcome {
            Err(UpstreamError::Unreachable(reason)) => {
                assert!(reason.contains("upstream.connect_timeout"), "{reason}");
            }
            other => panic!("expected unreachable at the connect timeout, got {other:?}"),
        }
    }

    #[test]
    fn refuses_a_base_url_with_a_password_without_showing_it() {
        let outcome = UpstreamClient::new(
            options("https://user:hunter2@api.internal/v1".into(), 1024),
            Arc::new(Metrics::new()),
        );

        let Err(UpstreamError::InvalidRequest(reason)) = outcome else {
            panic!("a base URL with a password must be refused");
        };
        assert!(reason.contains("upstream.token"), "{reason}");
        assert!(!reason.contains("hunter2"), "{reason}");
    }

    #[test]
    fn refuses_a_base_url_that_is_not_a_uri() {
        let outcome = UpstreamClient::new(
            options("http://exa mple.com".into(), 1024),
            Arc::new(Metrics::new()),
        );

        let Err(UpstreamError::InvalidRequest(reason)) = outcome else {
            panic!("a base URL with a space must be refused");
        };
        assert!(reason.contains("not a valid URI"), "{reason}");
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
