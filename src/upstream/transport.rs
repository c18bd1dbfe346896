//! How a request reaches the upstream: hyper's pooled client straight to it (one pool per
//! worker thread), or reqwest through the HTTP proxy the environment names for it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::proxy::UpstreamProxy;
use crate::error_chain::{error_chain, with_causes};

/// Idle pooled connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// TCP keep-alive on upstream connections, and how long unacknowledged data may wait before
/// the kernel drops the connection: reqwest's defaults, kept.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);
const TCP_KEEPALIVE_RETRIES: u32 = 3;
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// What building a transport or sending through it can fail with.
#[derive(Debug, thiserror::Error)]
pub(super) enum TransportError {
    /// Nothing was sent: the connection (DNS, TCP, TLS or the proxy's) could not be made.
    #[error("{0}")]
    Connect(String),
    /// The upstream refused the request before processing it (HTTP/2 `REFUSED_STREAM`, or a
    /// graceful `GOAWAY` that came first): safe to send again on a new stream, whatever the method.
    #[error("{0}")]
    NotProcessed(String),
    #[error("{0}")]
    Exchange(String),
    #[error("{0}")]
    Setup(String),
}

/// The answer's head and its body, gathered up to a limit.
pub(super) struct Received {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub truncated: bool,
}

pub(super) struct TransportSettings {
    pub connect_timeout: Duration,
    pub max_idle_per_host: usize,
    pub user_agent: &'static str,
}

pub(super) enum Transport {
    /// hyper's client with no layer above it: the request is already an `http::Request`
    /// with its final URI and headers, so there is nothing to parse or merge per call.
    Direct(Box<PerThreadClients>),
    /// reqwest, which speaks to HTTP proxies (absolute-form requests, `CONNECT` tunnels,
    /// proxy credentials); used only when the environment names a proxy for the upstream.
    Proxied(reqwest::Client),
}

impl Transport {
    pub fn new(
        settings: TransportSettings,
        proxy: Option<&UpstreamProxy>,
    ) -> Result<Self, TransportError> {
        match proxy {
            None => PerThreadClients::new(settings).map(|clients| Self::Direct(Box::new(clients))),
            Some(proxy) => proxied_client(&settings, proxy).map(Self::Proxied),
        }
    }

    /// Sends `request` and reads at most `max_body` bytes of the answer's body.
    pub async fn exchange(
        &self,
        request: Request<Bytes>,
        max_body: usize,
    ) -> Result<Received, TransportError> {
        match self {
            Self::Direct(clients) => {
                let response = clients
                    .for_this_thread()
                    .request(request.map(Full::new))
                    .await
                    .map_err(|error| {
                        let message = error_chain(&error);
                        if error.is_connect() {
                            TransportError::Connect(message)
                        } else if is_refused_before_processing(&error) {
                            TransportError::NotProcessed(message)
                        } else {
                            TransportError::Exchange(message)
                        }
                    })?;
                let (head, mut body) = response.into_parts();
                let expected = content_length(&head.headers);
                let mut gathered = BodyGatherer::new(max_body, expected);
                while !gathered.is_truncated() {
                    let Some(frame) = body.frame().await else {
                        break;
                    };
                    let frame =
                        frame.map_err(|error| TransportError::Exchange(error_chain(&error)))?;
                    if let Ok(data) = frame.into_data() {
                        gathered.push(data);
                    }
                }
                Ok(gathered.finish(head.status.as_u16(), head.headers))
            }
            Self::Proxied(client) => {
                let request = reqwest::Request::try_from(request)
                    .map_err(|error| TransportError::Setup(reqwest_error(error)))?;
                let mut response = client.execute(request).await.map_err(|error| {
                    if error.is_connect() {
                        TransportError::Connect(reqwest_error(error))
                    } else {
                        TransportError::Exchange(reqwest_error(error))
                    }
                })?;
                let status = response.status().as_u16();
                let headers = std::mem::take(response.headers_mut());
                let mut gathered = BodyGatherer::new(max_body, content_length(&headers));
                while !gathered.is_truncated() {
                    let chunk = response
                        .chunk()
                        .await
                        .map_err(|error| TransportError::Exchange(reqwest_error(error)))?;
                    match chunk {
                        Some(chunk) => gathered.push(chunk),
                        None => break,
                    }
                }
                Ok(gathered.finish(status, headers))
            }
        }
    }
}

type HyperClient = Client<ConnectDeadline<HttpsConnector<HttpConnector>>, Full<Bytes>>;

/// One hyper client (and so one connection pool) per thread that calls the upstream, built
/// on its first call. A pooled connection is driven by a task on the runtime that opened it;
/// with one pool shared by the actix workers, a call on one worker often rides a connection
/// driven by the other, and every exchange then wakes a second thread.
pub(super) struct PerThreadClients {
    /// Slot 0, built at start-up.
    first: HyperClient,
    /// One slot per core (the actix worker count); threads beyond that share slots.
    others: Vec<OnceLock<HyperClient>>,
    tls: rustls::ClientConfig,
    settings: TransportSettings,
}

/// Hands each thread the next client slot, round robin.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
}

impl PerThreadClients {
    fn new(settings: TransportSettings) -> Result<Self, TransportError> {
        let tls = tls_config()?;
        let slots = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Ok(Self {
            first: hyper_client(&settings, tls.clone()),
            others: (1..slots).map(|_| OnceLock::new()).collect(),
            tls,
            settings,
        })
    }

    fn for_this_thread(&self) -> &HyperClient {
        let slot = THREAD_SLOT.with(|slot| *slot) % (self.others.len() + 1);
        match slot.checked_sub(1).and_then(|index| self.others.get(index)) {
            Some(lazy) => lazy.get_or_init(|| hyper_client(&self.settings, self.tls.clone())),
            None => &self.first,
        }
    }
}

fn hyper_client(settings: &TransportSettings, tls: rustls::ClientConfig) -> HyperClient {
    let mut tcp = HttpConnector::new();
    // The HTTPS connector above it handles `https`.
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_keepalive(Some(TCP_KEEPALIVE));
    tcp.set_keepalive_interval(Some(TCP_KEEPALIVE));
    tcp.set_keepalive_retries(Some(TCP_KEEPALIVE_RETRIES));
    tcp.set_tcp_user_timeout(Some(TCP_USER_TIMEOUT));
    let connector = ConnectDeadline {
        inner: HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp),
        deadline: settings.connect_timeout,
    };
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(settings.max_idle_per_host)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// A connector whose whole connection set-up (name lookup, TCP, TLS handshake) must finish
/// within `deadline`; `HttpConnector`'s own timeout covers each TCP attempt only, and a peer
/// that accepts TCP but stalls the handshake would otherwise hold a call for its whole timeout
/// (and a connection attempt hyper keeps racing in the background, for ever).
#[derive(Clone)]
pub(super) struct ConnectDeadline<C> {
    inner: C,
    deadline: Duration,
}

impl<C> tower_service::Service<http::Uri> for ConnectDeadline<C>
where
    C: tower_service::Service<http::Uri>,
    C::Future: Send + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = C::Response;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context).map_err(Into::into)
    }

    fn call(&mut self, destination: http::Uri) -> Self::Future {
        let deadline = self.deadline;
        let connecting = self.inner.call(destination);
        Box::pin(async move {
            match tokio::time::timeout(deadline, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within upstream.connect_timeout ({deadline:?})"),
                )) as Self::Error),
            }
        })
    }
}

/// Whether hyper failed because the HTTP/2 server refused the stream before processing it:
/// `REFUSED_STREAM` (RFC 9113, 8.7) or a graceful `GOAWAY` (`NO_ERROR`) the request met on a
/// pooled connection. reqwest retried exactly these, for any method; so does the client.
fn is_refused_before_processing(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            return h2.is_remote()
                && ((h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR))
                    || (h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM)));
        }
        source = cause.source();
    }
    false
}

/// TLS as reqwest set it up before: rustls with aws-lc-rs, TLS 1.2 and 1.3, and the
/// platform's trust store (on Linux the system roots, `SSL_CERT_FILE` / `SSL_CERT_DIR` honoured).
fn tls_config() -> Result<rustls::ClientConfig, TransportError> {
    use rustls_platform_verifier::BuilderVerifierExt;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map(|builder| builder.with_no_client_auth())
        .map_err(|error| TransportError::Setup(format!("TLS set-up: {error}")))
}

fn proxied_client(
    settings: &TransportSettings,
    proxy: &UpstreamProxy,
) -> Result<reqwest::Client, TransportError> {
    let mut route = reqwest::Proxy::all(proxy.uri.to_string())
        .map_err(|error| TransportError::Setup(reqwest_error(error)))?;
    if let Some(authorization) = &proxy.authorization {
        route = route.custom_http_auth(authorization.clone());
    }
    reqwest::Client::builder()
        .proxy(route)
        .connect_timeout(settings.connect_timeout)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(settings.max_idle_per_host)
        .tcp_nodelay(true)
        // A redirect could carry the credential to another host.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(settings.user_agent)
        .build()
        .map_err(|error| TransportError::Setup(reqwest_error(error)))
}

/// A body that arrives in one chunk (most small answers) is kept as that chunk; one in
/// several is gathered into a buffer sized from Content-Length. Stops at `limit` bytes.
struct BodyGatherer {
    limit: usize,
    expected: usize,
    first: Option<Bytes>,
    gathered: Vec<u8>,
    truncated: bool,
}

impl BodyGatherer {
    fn new(limit: usize, expected: Option<u64>) -> Self {
        Self {
            limit,
            expected: expected.map_or(0, |length| usize::try_from(length).unwrap_or(usize::MAX)),
            first: None,
            gathered: Vec::new(),
            truncated: false,
        }
    }

    fn is_truncated(&self) -> bool {
        self.truncated
    }

    fn push(&mut self, chunk: Bytes) {
        let received = self.first.as_ref().map_or(0, Bytes::len) + self.gathered.len();
        let room = self.limit.saturating_sub(received);
        let chunk = if chunk.len() > room {
            self.truncated = true;
            chunk.slice(..room)
        } else {
            chunk
        };
        match self.first.take() {
            None if self.gathered.is_empty() => self.first = Some(chunk),
            earlier => {
                if let Some(earlier) = earlier {
                    let capacity = self
                        .expected
                        .clamp(earlier.len() + chunk.len(), self.limit.max(earlier.len()));
                    self.gathered.reserve(capacity);
                    self.gathered.extend_from_slice(&earlier);
                }
                self.gathered.extend_from_slice(&chunk);
            }
        }
    }

    fn finish(self, status: u16, headers: HeaderMap) -> Received {
        Received {
            status,
            headers,
            body: self.first.unwrap_or_else(|| Bytes::from(self.gathered)),
            truncated: self.truncated,
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// reqwest's message without the URL (it may hold argument values), and its causes.
fn reqwest_error(error: reqwest::Error) -> String {
    let error = error.without_url();
    with_causes(error.to_string(), std::error::Error::source(&error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gather(limit: usize, expected: Option<u64>, chunks: &[&'static [u8]]) -> Received {
        let mut gatherer = BodyGatherer::new(limit, expected);
        for chunk in chunks {
            if gatherer.is_truncated() {
                break;
            }
            gatherer.push(Bytes::from_static(chunk));
        }
        gatherer.finish(200, HeaderMap::new())
    }

    #[test]
    fn keeps_a_body_in_one_chunk_as_that_chunk() {
        let received = gather(100, Some(5), &[b"hello"]);

        assert_eq!(&received.body[..], b"hello");
        assert!(!received.truncated);
    }

    #[test]
    fn joins_chunks_in_order() {
        let received = gather(100, None, &[b"ab", b"cd", b"ef"]);

        assert_eq!(&received.body[..], b"abcdef");
        assert!(!received.truncated);
    }

    #[test]
    fn stops_at_the_limit_and_says_so() {
        let received = gather(5, Some(9), &[b"abc", b"def", b"ghi"]);

        assert_eq!(&received.body[..], b"abcde");
        assert!(received.truncated);
    }

    #[test]
    fn a_body_exactly_at_the_limit_is_whole() {
        let received = gather(6, Some(6), &[b"abc", b"def"]);

        assert_eq!(&received.body[..], b"abcdef");
        assert!(!received.truncated);
    }
}
