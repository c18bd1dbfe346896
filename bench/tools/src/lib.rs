//! What the soak binaries share: the fault model (the upstream injects it, the driver
//! predicts it, the report checks the audit trail against it), a minimal HTTP/1.1 server
//! loop on hyper, and a flag parser.
//!
//! Everything here serves or calls loopback addresses only; the binaries bind the address
//! they are given (bench/soak.sh passes 127.0.0.1) and stop by themselves.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// The soak's single tool (operationId `items:get`, `GET /v1/items/{seq}`).
pub const TOOL: &str = "items_get";
/// How long a slow answer takes.
pub const SLOW_DELAY: Duration = Duration::from_secs(2);
/// `Retry-After` of an injected 429 (tunnelgate retries twice, waiting this long each time).
pub const RETRY_AFTER_SECS: u64 = 1;

/// What the upstream does with the call numbered `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 200 at once.
    Ok,
    /// 200 after [`SLOW_DELAY`].
    Slow,
    /// This 5xx status (500, 502 or 503) with a JSON error body.
    ServerError(u16),
    /// 429 with `Retry-After`.
    TooManyRequests,
}

impl Fault {
    /// The final HTTP status the caller's tool result reflects.
    pub fn status(self) -> u16 {
        match self {
            Fault::Ok | Fault::Slow => 200,
            Fault::ServerError(status) => status,
            Fault::TooManyRequests => 429,
        }
    }
}

/// Deterministic per call number: 10 % 5xx (a third each of 500, which tunnelgate does not
/// retry, and 502/503, which it retries twice and which fail again), 2 % 429, 5 % delayed by
/// 2 s, the rest answered at once. Decided by the call number, not by the upstream's request
/// counter, so a retry of a call meets the same fault and the driver knows what each call
/// must end as.
pub fn fault_for(seq: u64) -> Fault {
    let hash = splitmix64(seq);
    match hash % 1000 {
        0..=99 => Fault::ServerError([500, 502, 503][((hash >> 32) % 3) as usize]),
        100..=119 => Fault::TooManyRequests,
        120..=169 => Fault::Slow,
        _ => Fault::Ok,
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The email of soak identity `index` (`soak-user-07@soak.example`).
pub fn identity_email(index: usize) -> String {
    format!("soak-user-{index:02}@soak.example")
}

pub type Body = Full<Bytes>;

pub fn response(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

pub fn json_response(status: u16, value: &serde_json::Value) -> Response<Body> {
    response(status, "application/json", value.to_string())
}

/// Serves HTTP/1.1 (keep-alive) on `listen` with `handler` until `lifetime` has passed, then
/// returns (connections still open are dropped with the runtime). Accept errors (EMFILE)
/// are logged and retried, never fatal.
pub async fn serve<H, F>(listen: SocketAddr, lifetime: Duration, name: &str, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("{name}: cannot listen on {listen}: {error}");
            std::process::exit(2);
        }
    };
    eprintln!("{name}: listening on {listen} for {} s", lifetime.as_secs());
    let deadline = tokio::time::sleep(lifetime);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        eprintln!("{name}: accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let answer = handler(request);
                        async move { Ok::<_, Infallible>(answer.await) }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            () = &mut deadline => {
                eprintln!("{name}: lifetime over; stopping");
                return;
            }
        }
    }
}

/// `--flag value` pairs (every flag takes a value); the first argument may be a subcommand.
pub struct Flags {
    values: HashMap<String, String>,
}

impl Flags {
    pub fn parse(args: impl Iterator<Item = String>) -> Self {
        let mut values = HashMap::new();
        let mut args = args.peekable();
        while let Some(flag) = args.next() {
            let Some(name) = flag.strip_prefix("--") else {
                panic!("unexpected argument {flag:?}");
            };
            let value = args
                .next()
                .unwrap_or_else(|| panic!("--{name} needs a value"));
            values.insert(name.to_string(), value);
        }
        Self { values }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| panic!("--{name} is required"))
    }

    pub fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.get(name) {
            Some(value) => value
                .parse()
                .unwrap_or_else(|_| panic!("--{name}: not a number: {value:?}")),
            None => default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_mix_is_close_to_the_promised_shares() {
        let mut counts = HashMap::new();
        for seq in 0..100_000 {
            let key = match fault_for(seq) {
                Fault::Ok => "ok",
                Fault::Slow => "slow",
                Fault::ServerError(_) => "5xx",
                Fault::TooManyRequests => "429",
            };
            *counts.entry(key).or_insert(0u32) += 1;
        }
        let share = |key| f64::from(counts[key]) / 100_000.0;
        assert!((share("5xx") - 0.10).abs() < 0.005);
        assert!((share("429") - 0.02).abs() < 0.002);
        assert!((share("slow") - 0.05).abs() < 0.003);
    }
}
