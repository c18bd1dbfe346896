//! The soak's load driver and its judge.
//!
//!   soak-driver run --out DIR --mcp http://127.0.0.1:P --admin http://127.0.0.1:A \
//!       --issuer http://127.0.0.1:I --upstream http://127.0.0.1:U --tg-pid PID \
//!       --config FILE --config-base FILE --policy-a FILE --policy-b FILE \
//!       [--duration 600] [--sse-sessions 500] [--sse-interval 4] [--http-rate 200] \
//!       [--identities 20] [--sighup-every 30] [--sample-every 10] [--baseline-at 60] \
//!       [--sse-warmup 64]
//!
//!   soak-driver report --out DIR --tg-exit RC --tg-log FILE --audit FILE \
//!       [--rss-tolerance-kb 5120] [--readyz-max-ms 50] [--fd-tolerance 0]
//!
//! `run` opens the legacy SSE sessions (GET /sse, initialize, notifications/initialized) and
//! has each send a `tools/call` every `--sse-interval` seconds (phases spread evenly), sends
//! `--http-rate` Streamable HTTP `tools/call`s per second (headers as a 2025-06-18 client
//! sends them) round-robin over the identities, polls the issuer for rotated tokens, rewrites
//! the config file and sends SIGHUP every `--sighup-every` seconds (alternating two policies),
//! probes `/readyz` every second and the MCP listener with `ping` every second (each on a new
//! connection, so they land on every worker), and samples tunnelgate's RSS and open file
//! descriptors. At the end it stops sending, waits for every call in flight, then sends
//! SIGTERM to tunnelgate with the SSE sessions still open and watches them close.
//!
//! Every call gets a unique number `seq`, sent as the tool's only argument. The upstream's
//! fault for it is known in advance (`fault_for`), so each answer is classified exactly:
//! `ok`, `slow-ok`, `injected-5xx`, `injected-429` when it is what that fault must produce
//! (a clean tool result with `isError` and the upstream's one-line summary for the faults),
//! `unexpected` otherwise (transport errors, timeouts, JSON-RPC errors, wrong answers).
//! Calls are written to DIR/calls.tsv, the rest to DIR/driver.json and DIR/samples.tsv.
//!
//! `report` checks DIR against the audit file (exactly one `tool_call` event per call, same
//! identity, outcome and upstream status; no denials) and the pass criteria, prints a table
//! and exits 1 when anything fails.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::time::Instant as TokioInstant;
use tunnelgate_bench_tools::{fault_for, identity_email, Fault, Flags, TOOL};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const PROTOCOL_HTTP: &str = "2025-06-18";
const PROTOCOL_SSE: &str = "2024-11-05";
const TOKEN_HEADER: &str = "Cf-Access-Jwt-Assertion";

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let flags = Flags::parse(args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match command.as_str() {
        "run" => runtime.block_on(run(flags)),
        "report" => report(&flags),
        _ => {
            eprintln!("usage: soak-driver run|report --flag value ...  (see the source's header)");
            2
        }
    };
    // Tasks still blocked on sockets must not hold the process.
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

// ---------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Ok,
    SlowOk,
    Injected5xx,
    Injected429,
    Unexpected,
}

const KINDS: [Kind; 5] = [
    Kind::Ok,
    Kind::SlowOk,
    Kind::Injected5xx,
    Kind::Injected429,
    Kind::Unexpected,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::SlowOk => "slow-ok",
            Kind::Injected5xx => "injected-5xx",
            Kind::Injected429 => "injected-429",
            Kind::Unexpected => "unexpected",
        }
    }

    fn parse(name: &str) -> Option<Kind> {
        KINDS.into_iter().find(|kind| kind.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Transport {
    Sse,
    Http,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Http => "http",
        }
    }
}

/// What the answer to call `seq` must be, given its fault; `Err` says what was wrong.
fn classify(seq: u64, message: &Value) -> Result<Kind, String> {
    if let Some(error) = message.get("error") {
        return Err(format!("JSON-RPC error: {error}"));
    }
    let Some(result) = message.get("result") else {
        return Err(format!("no result in {}", excerpt(&message.to_string())));
    };
    let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
    let text = result
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let fault = fault_for(seq);
    match fault {
        Fault::Ok | Fault::Slow => {
            if is_error {
                return Err(format!(
                    "expected item {seq}, got a tool error: {}",
                    excerpt(text)
                ));
            }
            let answered = result
                .pointer("/structuredContent/seq")
                .and_then(Value::as_u64);
            if answered != Some(seq) {
                return Err(format!(
                    "expected item {seq}, got {}",
                    excerpt(&result.to_string())
                ));
            }
            Ok(if fault == Fault::Slow {
                Kind::SlowOk
            } else {
                Kind::Ok
            })
        }
        Fault::ServerError(status) => {
            // The upstream's own one-line summary, with the detail of its error body.
            let clean = is_error
                && single_text(result)
                && text.starts_with(&format!("upstream returned HTTP {status}"))
                && text.contains(&format!("soak: injected {status}"));
            if !clean {
                return Err(format!(
                    "expected a tool error for the injected {status}, got {}",
                    excerpt(&result.to_string())
                ));
            }
            Ok(Kind::Injected5xx)
        }
        Fault::TooManyRequests => {
            // After its retries, tunnelgate's own summary of a 429: status and when to retry.
            let clean = is_error
                && single_text(result)
                && text.contains("(HTTP 429)")
                && text.contains("retry in");
            if !clean {
                return Err(format!(
                    "expected a tool error for the injected 429, got {}",
                    excerpt(&result.to_string())
                ));
            }
            Ok(Kind::Injected429)
        }
    }
}

/// A tool result with exactly one text item.
fn single_text(result: &Value) -> bool {
    result
        .get("content")
        .and_then(Value::as_array)
        .is_some_and(|items| items.len() == 1 && items[0]["type"] == "text")
}

fn excerpt(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| {
            if c == '\t' || c == '\n' || c == '\r' {
                ' '
            } else {
                c
            }
        })
        .collect();
    if flat.chars().count() > 300 {
        format!("{}…", flat.chars().take(300).collect::<String>())
    } else {
        flat
    }
}

/// The JSON-RPC message answering `id` in a Streamable HTTP answer (JSON or an event stream).
fn parse_answer(content_type: &str, body: &[u8], id: &Value) -> Result<Value, String> {
    let text = String::from_utf8_lossy(body);
    if content_type.starts_with("text/event-stream") {
        for (_, data) in sse_events(&text.replace("\r\n", "\n")) {
            if let Ok(message) = serde_json::from_str::<Value>(&data) {
                if message.get("id") == Some(id) {
                    return Ok(message);
                }
            }
        }
        return Err(format!(
            "no answer with id {id} in the event stream: {}",
            excerpt(&text)
        ));
    }
    serde_json::from_str(&text)
        .map_err(|error| format!("unreadable answer ({error}): {}", excerpt(&text)))
}

/// Complete events (`event`, `data`) of an SSE text; comments are skipped.
fn sse_events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n").filter_map(parse_sse_block).collect()
}

fn parse_sse_block(block: &str) -> Option<(String, String)> {
    let mut event = String::from("message");
    let mut data = String::new();
    let mut seen = false;
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        seen = true;
        match field {
            "event" => event = value.to_string(),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
    seen.then_some((event, data))
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

struct Recorder {
    calls: BufWriter<File>,
    counts: BTreeMap<(Transport, Kind), u64>,
    per_identity: BTreeMap<usize, u64>,
    latencies: BTreeMap<Kind, Vec<f64>>,
    unexpected: Vec<Value>,
}

struct Shared {
    mcp: String,
    identities: usize,
    /// `ping`s each SSE session sends before the load starts.
    sse_warmup: usize,
    tokens: RwLock<Arc<Vec<String>>>,
    generation: AtomicU64,
    seq: AtomicU64,
    inflight: AtomicI64,
    stopping: AtomicBool,
    started: Instant,
    recorder: Mutex<Recorder>,
    /// Streamable HTTP calls and SSE POSTs.
    http: reqwest::Client,
    /// The SSE streams (one connection each).
    streams: reqwest::Client,
}

impl Shared {
    fn token(&self, identity: usize) -> String {
        let tokens = self.tokens.read().unwrap_or_else(|p| p.into_inner());
        tokens.get(identity).cloned().unwrap_or_default()
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn record(
        &self,
        seq: u64,
        transport: Transport,
        identity: usize,
        outcome: Result<Kind, String>,
        latency: Duration,
    ) {
        let kind = *outcome.as_ref().unwrap_or(&Kind::Unexpected);
        let detail = outcome.err().unwrap_or_default();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let mut recorder = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            recorder.calls,
            "{seq}\t{}\t{identity}\t{}\t{latency_ms:.1}\t{}",
            transport.name(),
            kind.name(),
            excerpt(&detail)
        );
        *recorder.counts.entry((transport, kind)).or_default() += 1;
        *recorder.per_identity.entry(identity).or_default() += 1;
        recorder.latencies.entry(kind).or_default().push(latency_ms);
        if kind == Kind::Unexpected {
            let t = self.elapsed();
            if recorder.unexpected.len() < 50 {
                recorder
                    .unexpected
                    .push(json!({"t": t, "seq": seq, "transport": transport.name(),
                    "identity": identity_email(identity), "detail": detail}));
            }
            eprintln!(
                "[{t:7.1}s] unexpected: seq {seq} ({}): {detail}",
                transport.name()
            );
        }
    }

    fn done(&self) -> u64 {
        let recorder = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        recorder.counts.values().sum()
    }
}

/// Counts a call in flight for as long as it lives.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.inflight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn call_body(seq: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": seq, "method": "tools/call",
           "params": {"name": TOOL, "arguments": {"seq": seq}}})
}

/// A POST to `/mcp` as a 2025-06-18 client sends it; the answer's JSON-RPC message.
async fn mcp_post(shared: &Shared, identity: usize, body: &Value) -> Result<Value, String> {
    let response = shared
        .http
        .post(format!("{}/mcp", shared.mcp))
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", PROTOCOL_HTTP)
        .header(TOKEN_HEADER, shared.token(identity))
        .timeout(CALL_TIMEOUT)
        .body(body.to_string())
        .send()
        .await
        .map_err(|error| format!("POST /mcp failed: {error}"))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = response
        .bytes()
        .await
        .map_err(|error| format!("reading the /mcp answer failed: {error}"))?;
    if status != 200 {
        return Err(format!(
            "POST /mcp answered {status}: {}",
            excerpt(&String::from_utf8_lossy(&bytes))
        ));
    }
    parse_answer(&content_type, &bytes, &body["id"])
}

async fn http_call(shared: Arc<Shared>, seq: u64, identity: usize) {
    let _inflight = InFlight::new(&shared);
    let started = Instant::now();
    let outcome = match mcp_post(&shared, identity, &call_body(seq)).await {
        Ok(message) => classify(seq, &message),
        Err(error) => Err(error),
    };
    shared.record(seq, Transport::Http, identity, outcome, started.elapsed());
}

/// `initialize` and `notifications/initialized` for each identity, as a client does before
/// its calls (stateless mode keeps no session, but the exchange must work).
async fn initialize_http(shared: &Shared) -> Result<(), String> {
    for identity in 0..shared.identities {
        let answer = mcp_post(
            shared,
            identity,
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": PROTOCOL_HTTP, "capabilities": {},
                       "clientInfo": {"name": "soak-driver", "version": "0"}}}),
        )
        .await?;
        if answer.pointer("/result/protocolVersion").is_none() {
            return Err(format!("initialize: {}", excerpt(&answer.to_string())));
        }
        let response = shared
            .http
            .post(format!("{}/mcp", shared.mcp))
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("MCP-Protocol-Version", PROTOCOL_HTTP)
            .header(TOKEN_HEADER, shared.token(identity))
            .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
            .send()
            .await
            .map_err(|error| format!("notifications/initialized: {error}"))?;
        if response.status().as_u16() != 202 {
            return Err(format!(
                "notifications/initialized answered {}",
                response.status()
            ));
        }
    }
    Ok(())
}

// --- legacy SSE --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    Open,
    Eof,
    Error,
}

struct Session {
    index: usize,
    identity: usize,
    endpoint: std::sync::OnceLock<String>,
    pending: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    end: Mutex<(StreamEnd, f64)>,
}

impl Session {
    fn ended(&self) -> StreamEnd {
        self.end.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Posts `message` to the session's endpoint; 202 expected.
    async fn post(&self, shared: &Shared, message: &Value) -> Result<(), String> {
        let endpoint = self.endpoint.get().ok_or("no endpoint")?;
        let response = shared
            .http
            .post(format!("{}{}", shared.mcp, endpoint))
            .header("Content-Type", "application/json")
            .header(TOKEN_HEADER, shared.token(self.identity))
            .timeout(CALL_TIMEOUT)
            .body(message.to_string())
            .send()
            .await
            .map_err(|error| format!("POST /message failed: {error}"))?;
        let status = response.status().as_u16();
        if status != 202 {
            let body = response.text().await.unwrap_or_default();
            return Err(format!(
                "POST /message answered {status}: {}",
                excerpt(&body)
            ));
        }
        Ok(())
    }

    /// Posts a request and waits for its answer on the stream.
    async fn request(&self, shared: &Shared, message: &Value) -> Result<Value, String> {
        let key = message["id"].to_string();
        let (sender, receiver) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), sender);
        if let Err(error) = self.post(shared, message).await {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            return Err(error);
        }
        match tokio::time::timeout(CALL_TIMEOUT, receiver).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err("the SSE stream closed before the answer came".into()),
            Err(_) => {
                self.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                Err(format!(
                    "no answer on the SSE stream within {} s",
                    CALL_TIMEOUT.as_secs()
                ))
            }
        }
    }
}

/// Reads the session's event stream until it ends: the endpoint event, then answers.
async fn read_stream(
    session: Arc<Session>,
    response: reqwest::Response,
    endpoint: oneshot::Sender<String>,
    shared: Arc<Shared>,
) {
    let mut endpoint = Some(endpoint);
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let end = loop {
        match stream.next().await {
            Some(Ok(chunk)) => {
                buffer.push_str(&String::from_utf8_lossy(&chunk).replace('\r', ""));
                while let Some(at) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..at + 2).collect();
                    let Some((event, data)) = parse_sse_block(&block) else {
                        continue;
                    };
                    if event == "endpoint" {
                        if let Some(sender) = endpoint.take() {
                            let _ = sender.send(data);
                        }
                    } else if event == "message" {
                        let Ok(message) = serde_json::from_str::<Value>(&data) else {
                            eprintln!(
                                "session {}: unreadable message {}",
                                session.index,
                                excerpt(&data)
                            );
                            continue;
                        };
                        let key = message.get("id").map(Value::to_string).unwrap_or_default();
                        let waiter = session
                            .pending
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&key);
                        match waiter {
                            Some(waiter) => {
                                let _ = waiter.send(message);
                            }
                            None => eprintln!(
                                "session {}: answer nobody waits for: {}",
                                session.index,
                                excerpt(&data)
                            ),
                        }
                    }
                }
            }
            Some(Err(error)) => {
                if !shared.stopping.load(Ordering::SeqCst) {
                    eprintln!(
                        "[{:7.1}s] session {}: stream failed: {error}",
                        shared.elapsed(),
                        session.index
                    );
                }
                break StreamEnd::Error;
            }
            None => break StreamEnd::Eof,
        }
    };
    *session.end.lock().unwrap_or_else(|p| p.into_inner()) = (end, shared.elapsed());
    // Waiters see their sender dropped: "closed before the answer came".
    session
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
}

async fn open_session(shared: Arc<Shared>, index: usize) -> Result<Arc<Session>, String> {
    let identity = index % shared.identities;
    let response = shared
        .streams
        .get(format!("{}/sse", shared.mcp))
        .header("Accept", "text/event-stream")
        .header(TOKEN_HEADER, shared.token(identity))
        .send()
        .await
        .map_err(|error| format!("GET /sse failed: {error}"))?;
    if response.status().as_u16() != 200 {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!("GET /sse answered {status}: {}", excerpt(&body)));
    }
    let session = Arc::new(Session {
        index,
        identity,
        endpoint: std::sync::OnceLock::new(),
        pending: Mutex::new(HashMap::new()),
        end: Mutex::new((StreamEnd::Open, 0.0)),
    });
    let (endpoint_sender, endpoint_receiver) = oneshot::channel();
    tokio::spawn(read_stream(
        Arc::clone(&session),
        response,
        endpoint_sender,
        Arc::clone(&shared),
    ));
    let endpoint = tokio::time::timeout(Duration::from_secs(10), endpoint_receiver)
        .await
        .map_err(|_| "no endpoint event within 10 s".to_string())?
        .map_err(|_| "the stream ended before the endpoint event".to_string())?;
    // A path, or an absolute URL on the same origin.
    let path = match endpoint.find("://") {
        Some(at) => {
            let rest = &endpoint[at + 3..];
            rest[rest.find('/').unwrap_or(rest.len())..].to_string()
        }
        None => endpoint,
    };
    let _ = session.endpoint.set(path);
    let answer = session
        .request(
            &shared,
            &json!({"jsonrpc": "2.0", "id": "init", "method": "initialize",
            "params": {"protocolVersion": PROTOCOL_SSE, "capabilities": {},
                       "clientInfo": {"name": "soak-driver", "version": "0"}}}),
        )
        .await?;
    if answer.pointer("/result/protocolVersion").is_none() {
        return Err(format!("initialize: {}", excerpt(&answer.to_string())));
    }
    session
        .post(
            &shared,
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await?;
    // Warm-up: a session's buffers reach their steady size only after a few dozen messages
    // (rmcp's per-session answer queue grows a second block at its 32nd answer). `ping`s
    // bring every session there before the clock starts, so the RSS after the first minute
    // is that of a warm process and a rise after it means a leak, not warm-up.
    // One at a time, as the load will send them: a burst would size the queues for the burst.
    for k in 0..shared.sse_warmup {
        let answer = session
            .request(
                &shared,
                &json!({"jsonrpc": "2.0", "id": format!("warm-{k}"), "method": "ping"}),
            )
            .await?;
        if answer.get("result").is_none() {
            return Err(format!("ping: {}", excerpt(&answer.to_string())));
        }
    }
    Ok(session)
}

async fn sse_call(shared: Arc<Shared>, session: Arc<Session>, seq: u64) {
    let _inflight = InFlight::new(&shared);
    let started = Instant::now();
    let outcome = match session.request(&shared, &call_body(seq)).await {
        Ok(message) => classify(seq, &message),
        Err(error) => Err(format!("session {}: {error}", session.index)),
    };
    shared.record(
        seq,
        Transport::Sse,
        session.identity,
        outcome,
        started.elapsed(),
    );
}

async fn session_loop(
    shared: Arc<Shared>,
    session: Arc<Session>,
    first: TokioInstant,
    interval: Duration,
    end: TokioInstant,
) {
    let mut next = first;
    while next < end {
        tokio::time::sleep_until(next).await;
        if shared.stopping.load(Ordering::SeqCst) || session.ended() != StreamEnd::Open {
            return;
        }
        next += interval;
        let seq = shared.seq.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(sse_call(Arc::clone(&shared), Arc::clone(&session), seq));
    }
}

// --- tunnelgate's process ----------------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct Sample {
    t: f64,
    rss_kb: u64,
    threads: u64,
    cpu_s: f64,
    fds: Fds,
    sse_open: i64,
    calls_done: u64,
    inflight: i64,
}

/// tunnelgate's open file descriptors, its sockets sorted by what they connect.
#[derive(Debug, Clone, Copy, Default)]
struct Fds {
    total: u64,
    /// Files, pipes, eventfds, epoll: nothing here depends on the load.
    non_socket: u64,
    listening: u64,
    /// Accepted on the MCP listener: the SSE streams and the connections calls come on.
    mcp_in: u64,
    admin_in: u64,
    upstream_out: u64,
    issuer_out: u64,
    other_sockets: u64,
    /// Sockets whose peer has closed and tunnelgate has not: what a leaked connection looks like.
    close_wait: u64,
}

impl Fds {
    fn to_json(self) -> Value {
        json!({"total": self.total, "non_socket": self.non_socket, "listening": self.listening,
               "mcp_in": self.mcp_in, "admin_in": self.admin_in, "upstream_out": self.upstream_out,
               "issuer_out": self.issuer_out, "other_sockets": self.other_sockets, "close_wait": self.close_wait})
    }
}

const SAMPLE_COLUMNS: &str = "t_s\trss_kb\tthreads\tcpu_s\tfds\tnon_socket\tlistening\tmcp_in\tadmin_in\tupstream_out\tissuer_out\tother_sockets\tclose_wait\tsse_open\tcalls_done\tinflight";

impl Sample {
    fn tsv(&self) -> String {
        let f = self.fds;
        format!(
            "{:.0}\t{}\t{}\t{:.2}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.t,
            self.rss_kb,
            self.threads,
            self.cpu_s,
            f.total,
            f.non_socket,
            f.listening,
            f.mcp_in,
            f.admin_in,
            f.upstream_out,
            f.issuer_out,
            f.other_sockets,
            f.close_wait,
            self.sse_open,
            self.calls_done,
            self.inflight
        )
    }

    fn to_json(&self) -> Value {
        json!({"t": self.t, "rss_kb": self.rss_kb, "threads": self.threads, "cpu_s": self.cpu_s,
               "fds": self.fds.total, "fd_kinds": self.fds.to_json(), "sse_open": self.sse_open,
               "calls_done": self.calls_done, "inflight": self.inflight})
    }
}

async fn take_sample(
    shared: &Shared,
    control: &reqwest::Client,
    metrics_url: &str,
    pid: i32,
    ports: Ports,
    t: f64,
) -> Option<Sample> {
    let (rss_kb, threads, cpu_s) = read_process(pid)?;
    let fds = read_fds(pid, ports)?;
    let metrics = match control
        .get(metrics_url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    Some(Sample {
        t,
        rss_kb,
        threads,
        cpu_s,
        fds,
        sse_open: metric(&metrics, "tunnelgate_sse_streams_open").map_or(-1, |v| v as i64),
        calls_done: shared.done(),
        inflight: shared.inflight.load(Ordering::SeqCst),
    })
}

#[derive(Clone, Copy)]
struct Ports {
    mcp: u16,
    admin: u16,
    upstream: u16,
    issuer: u16,
}

/// (local port, remote port, state) of every TCP socket in the namespace, by inode.
fn tcp_table(pid: i32) -> HashMap<u64, (u16, u16, u8)> {
    let mut table = HashMap::new();
    for file in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 {
                continue;
            }
            let port = |address: &str| {
                address
                    .rsplit(':')
                    .next()
                    .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                    .unwrap_or(0)
            };
            let state = u8::from_str_radix(fields[3], 16).unwrap_or(0);
            if let Ok(inode) = fields[9].parse::<u64>() {
                table.insert(inode, (port(fields[1]), port(fields[2]), state));
            }
        }
    }
    table
}

fn read_fds(pid: i32, ports: Ports) -> Option<Fds> {
    const LISTEN: u8 = 0x0A;
    const CLOSE_WAIT: u8 = 0x08;
    let table = tcp_table(pid);
    let mut fds = Fds::default();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        fds.total += 1;
        let target = std::fs::read_link(entry.path())
            .map(|t| t.to_string_lossy().to_string())
            .unwrap_or_default();
        let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
        else {
            fds.non_socket += 1;
            continue;
        };
        let Some(&(local, remote, state)) = inode
            .parse::<u64>()
            .ok()
            .and_then(|inode| table.get(&inode))
        else {
            fds.other_sockets += 1;
            continue;
        };
        if state == CLOSE_WAIT {
            fds.close_wait += 1;
        }
        match () {
            () if state == LISTEN => fds.listening += 1,
            () if local == ports.mcp => fds.mcp_in += 1,
            () if local == ports.admin => fds.admin_in += 1,
            () if remote == ports.upstream => fds.upstream_out += 1,
            () if remote == ports.issuer => fds.issuer_out += 1,
            () => fds.other_sockets += 1,
        }
    }
    Some(fds)
}

/// VmRSS (kB), threads, and CPU seconds (user + system) of `pid`.
fn read_process(pid: i32) -> Option<(u64, u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the name.
    let ticks: u64 =
        after_name.get(11)?.parse::<u64>().ok()? + after_name.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf reads a constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((
        field("VmRSS:")?,
        field("Threads:").unwrap_or(0),
        ticks as f64 / per_second,
    ))
}

/// `http://127.0.0.1:PORT` → its socket address.
fn socket_address(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("{url}: expected http://IP:PORT"))
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn signal(pid: i32, signal: libc::c_int) -> bool {
    // SAFETY: kill(2) with a pid we were given; no memory is involved.
    unsafe { libc::kill(pid, signal) == 0 }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency_summary(values: &mut [f64]) -> Value {
    values.sort_by(|a, b| a.total_cmp(b));
    json!({"count": values.len(), "p50_ms": percentile(values, 50.0), "p99_ms": percentile(values, 99.0),
           "max_ms": values.last().copied().unwrap_or(0.0)})
}

async fn fetch_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    let response = client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    response.json_value().await
}

trait JsonValue {
    async fn json_value(self) -> Option<Value>;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Option<Value> {
        let bytes = self.bytes().await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Polls the issuer for tokens; the first answer is awaited by the caller.
async fn poll_tokens(
    shared: Arc<Shared>,
    client: reqwest::Client,
    url: String,
    adopted: Arc<Mutex<Vec<Value>>>,
) {
    while !shared.stopping.load(Ordering::SeqCst) {
        if let Some(answer) = fetch_json(&client, &url).await {
            let generation = answer["generation"].as_u64().unwrap_or(0);
            if generation != shared.generation.load(Ordering::SeqCst) {
                let tokens: Vec<String> = answer["tokens"]
                    .as_array()
                    .map(|tokens| {
                        tokens
                            .iter()
                            .filter_map(|t| t.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                if tokens.len() == shared.identities {
                    *shared.tokens.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tokens);
                    shared.generation.store(generation, Ordering::SeqCst);
                    let event = json!({"t": shared.elapsed(), "generation": generation, "kid": answer["kid"]});
                    eprintln!(
                        "[{:7.1}s] tokens of generation {generation} (kid {})",
                        shared.elapsed(),
                        answer["kid"]
                    );
                    adopted
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(event);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[derive(Default)]
struct Probes {
    count: u64,
    failures: u64,
    latencies: Vec<f64>,
    worst: Vec<Value>,
}

/// One HTTP/1.1 exchange on a new connection (`Connection: close`), blocking; the status.
fn probe_once(address: std::net::SocketAddr, request: &[u8]) -> Result<u16, String> {
    use std::io::Read;
    let timeout = Duration::from_secs(5);
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let head = String::from_utf8_lossy(&answer[..answer.len().min(64)]).to_string();
    head.split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| format!("no status line in {head:?}"))
}

/// Every second until `end`, one request on a new connection (so successive probes land on
/// every worker of the listener), from a thread of its own so the driver's load does not
/// delay it; the latency includes connecting and reading the whole answer.
fn probe_thread(
    shared: Arc<Shared>,
    name: &'static str,
    address: std::net::SocketAddr,
    end: Instant,
    request: impl Fn() -> Vec<u8> + Send + 'static,
) -> std::thread::JoinHandle<Probes> {
    std::thread::Builder::new()
        .name(format!("probe {name}"))
        .spawn(move || {
            let mut probes = Probes::default();
            let mut next = Instant::now();
            while next <= end {
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                next += Duration::from_secs(1);
                let request = request();
                let started = Instant::now();
                let outcome = match probe_once(address, &request) {
                    Ok(200) => Ok(()),
                    Ok(status) => Err(format!("status {status}")),
                    Err(error) => Err(error),
                };
                let latency = started.elapsed().as_secs_f64() * 1000.0;
                probes.count += 1;
                probes.latencies.push(latency);
                if let Err(error) = outcome {
                    probes.failures += 1;
                    eprintln!("[{:7.1}s] {name} probe failed: {error}", shared.elapsed());
                }
                if latency > 50.0 && probes.worst.len() < 20 {
                    probes
                        .worst
                        .push(json!({"t": shared.elapsed(), "ms": latency}));
                }
            }
            probes
        })
        .expect("probe thread")
}

fn probes_json(mut probes: Probes) -> Value {
    probes.latencies.sort_by(|a, b| a.total_cmp(b));
    json!({"count": probes.count, "failures": probes.failures,
           "p50_ms": percentile(&probes.latencies, 50.0), "p99_ms": percentile(&probes.latencies, 99.0),
           "max_ms": probes.latencies.last().copied().unwrap_or(0.0), "over_50ms": probes.worst})
}

async fn run(flags: Flags) -> i32 {
    let out = std::path::PathBuf::from(flags.required("out"));
    let mcp = flags.required("mcp").trim_end_matches('/').to_string();
    let admin = flags.required("admin").trim_end_matches('/').to_string();
    let issuer = flags.required("issuer").trim_end_matches('/').to_string();
    let upstream = flags.required("upstream").trim_end_matches('/').to_string();
    let tg_pid: i32 = flags.number("tg-pid", 0);
    assert!(tg_pid > 0, "--tg-pid is required");
    let config = std::path::PathBuf::from(flags.required("config"));
    let config_base =
        std::fs::read_to_string(flags.required("config-base")).expect("--config-base");
    let policies = [
        std::fs::read_to_string(flags.required("policy-a")).expect("--policy-a"),
        std::fs::read_to_string(flags.required("policy-b")).expect("--policy-b"),
    ];
    let duration = Duration::from_secs_f64(flags.number("duration", 600.0));
    let sessions_wanted: usize = flags.number("sse-sessions", 500);
    let sse_interval = Duration::from_secs_f64(flags.number("sse-interval", 4.0));
    let http_rate: f64 = flags.number("http-rate", 200.0);
    let identities: usize = flags.number("identities", 20);
    let sighup_every = Duration::from_secs_f64(flags.number("sighup-every", 30.0));
    let sample_every = Duration::from_secs_f64(flags.number("sample-every", 10.0));
    let baseline_at: f64 = flags.number("baseline-at", 60.0);

    let client = |idle: usize| {
        reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(idle)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client")
    };
    let calls_file = File::create(out.join("calls.tsv")).expect("calls.tsv");
    let shared = Arc::new(Shared {
        mcp: mcp.clone(),
        identities,
        sse_warmup: flags.number("sse-warmup", 64),
        tokens: RwLock::new(Arc::new(Vec::new())),
        generation: AtomicU64::new(0),
        seq: AtomicU64::new(1),
        inflight: AtomicI64::new(0),
        stopping: AtomicBool::new(false),
        started: Instant::now(),
        recorder: Mutex::new(Recorder {
            calls: BufWriter::new(calls_file),
            counts: BTreeMap::new(),
            per_identity: BTreeMap::new(),
            latencies: BTreeMap::new(),
            unexpected: Vec::new(),
        }),
        http: client(32),
        streams: client(0),
    });
    let control = client(4);

    // Tokens first: nothing works without them.
    let adopted = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(poll_tokens(
        Arc::clone(&shared),
        control.clone(),
        format!("{issuer}/__tokens"),
        Arc::clone(&adopted),
    ));
    for _ in 0..100 {
        if shared.generation.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if shared.generation.load(Ordering::SeqCst) == 0 {
        eprintln!("no tokens from the issuer at {issuer}");
        return 1;
    }
    if let Err(error) = initialize_http(&shared).await {
        eprintln!("Streamable HTTP initialize failed: {error}");
        return 1;
    }

    // The SSE sessions, 50 opening at a time.
    let opening = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(50));
    let mut openers = tokio::task::JoinSet::new();
    for index in 0..sessions_wanted {
        let shared = Arc::clone(&shared);
        let gate = Arc::clone(&gate);
        openers.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (index, open_session(shared, index).await)
        });
    }
    let mut sessions = Vec::new();
    let mut open_failures = Vec::new();
    while let Some(joined) = openers.join_next().await {
        match joined {
            Ok((_, Ok(session))) => sessions.push(session),
            Ok((index, Err(error))) => {
                eprintln!("session {index}: {error}");
                open_failures.push(json!({"session": index, "error": error}));
            }
            Err(error) => open_failures.push(json!({"error": error.to_string()})),
        }
    }
    sessions.sort_by_key(|session| session.index);
    eprintln!(
        "[{:7.1}s] {} SSE sessions open in {:.1} s ({} failed); load for {} s",
        shared.elapsed(),
        sessions.len(),
        opening.elapsed().as_secs_f64(),
        open_failures.len(),
        duration.as_secs()
    );

    let start = TokioInstant::now();
    let load_started_at = shared.elapsed();
    let end = start + duration;

    // SSE: each session calls every interval, phases spread over the interval.
    for (position, session) in sessions.iter().enumerate() {
        let phase = sse_interval.mul_f64(position as f64 / sessions.len().max(1) as f64);
        tokio::spawn(session_loop(
            Arc::clone(&shared),
            Arc::clone(session),
            start + phase,
            sse_interval,
            end,
        ));
    }

    // Streamable HTTP: the k-th call at start + k / rate, round-robin over the identities.
    let http_scheduler = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let total = (http_rate * duration.as_secs_f64()).round() as u64;
            for k in 0..total {
                tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 / http_rate))
                    .await;
                if shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let seq = shared.seq.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(http_call(
                    Arc::clone(&shared),
                    seq,
                    (k as usize) % shared.identities,
                ));
            }
        })
    };

    // Probes: /readyz on the admin listener, `ping` on the MCP listener.
    let admin_address = socket_address(&admin);
    let mcp_address = socket_address(&mcp);
    let end_instant = Instant::now() + duration;
    let readyz = probe_thread(
        Arc::clone(&shared),
        "readyz",
        admin_address,
        end_instant,
        move || {
            format!("GET /readyz HTTP/1.1\r\nHost: {admin_address}\r\nConnection: close\r\n\r\n")
                .into_bytes()
        },
    );
    let ping = {
        let probe_shared = Arc::clone(&shared);
        probe_thread(
            Arc::clone(&shared),
            "mcp ping",
            mcp_address,
            end_instant,
            move || {
                let body = json!({"jsonrpc": "2.0", "id": "ping", "method": "ping"}).to_string();
                format!(
                "POST /mcp HTTP/1.1\r\nHost: {mcp_address}\r\nConnection: close\r\n\
                 Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
                 MCP-Protocol-Version: {PROTOCOL_HTTP}\r\n{TOKEN_HEADER}: {}\r\nContent-Length: {}\r\n\r\n{body}",
                probe_shared.token(0),
                body.len()
            )
            .into_bytes()
            },
        )
    };

    // SIGHUP with the other policy every `sighup_every`.
    let hangups = {
        let shared = Arc::clone(&shared);
        let config = config.clone();
        tokio::spawn(async move {
            let mut sent = Vec::new();
            for round in 1u32.. {
                let at = start + sighup_every * round;
                if at >= end {
                    break;
                }
                tokio::time::sleep_until(at).await;
                let variant = (round % 2) as usize; // 1 = policy B first, then A, ...
                let text = format!("{config_base}\n{}", policies[variant]);
                let temporary = config.with_extension("toml.tmp");
                let written = std::fs::write(&temporary, text)
                    .and_then(|()| std::fs::rename(&temporary, &config));
                if let Err(error) = written {
                    eprintln!("cannot rewrite {}: {error}", config.display());
                    continue;
                }
                let delivered = signal(tg_pid, libc::SIGHUP);
                let policy = if variant == 1 { "b" } else { "a" };
                eprintln!(
                    "[{:7.1}s] SIGHUP with policy {policy} (delivered: {delivered})",
                    shared.elapsed()
                );
                sent.push(json!({"t": shared.elapsed(), "policy": policy, "delivered": delivered}));
            }
            sent
        })
    };

    // Samples of tunnelgate's process every `sample_every`, with a progress line.
    let ports = Ports {
        mcp: mcp_address.port(),
        admin: admin_address.port(),
        upstream: socket_address(&upstream).port(),
        issuer: socket_address(&issuer).port(),
    };
    let metrics_url = format!("{admin}/metrics");
    let mut samples_file =
        BufWriter::new(File::create(out.join("samples.tsv")).expect("samples.tsv"));
    let _ = writeln!(samples_file, "{SAMPLE_COLUMNS}");
    let sampler = {
        let (shared, control, metrics_url) =
            (Arc::clone(&shared), control.clone(), metrics_url.clone());
        tokio::spawn(async move {
            let mut samples: Vec<Sample> = Vec::new();
            let mut tick = 0u32;
            loop {
                let at = start + sample_every * tick;
                if at > end {
                    break;
                }
                tokio::time::sleep_until(at).await;
                let t = (sample_every * tick).as_secs_f64();
                tick += 1;
                let Some(sample) =
                    take_sample(&shared, &control, &metrics_url, tg_pid, ports, t).await
                else {
                    eprintln!("[{t:7.1}s] cannot read /proc/{tg_pid}: is tunnelgate gone?");
                    continue;
                };
                let _ = writeln!(samples_file, "{}", sample.tsv());
                let _ = samples_file.flush();
                let counts = {
                    let recorder = shared.recorder.lock().unwrap_or_else(|p| p.into_inner());
                    KINDS
                        .iter()
                        .map(|kind| {
                            let n: u64 = recorder
                                .counts
                                .iter()
                                .filter(|((_, k), _)| k == kind)
                                .map(|(_, n)| n)
                                .sum();
                            format!("{} {n}", kind.name())
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                eprintln!(
                    "[{t:5.0}s] calls {} ({counts}), in flight {}, RSS {} kB, fds {} (non-socket {}, MCP connections {}, upstream {}, CLOSE_WAIT {}), CPU {:.1} s, SSE open {}",
                    sample.calls_done, sample.inflight, sample.rss_kb, sample.fds.total, sample.fds.non_socket,
                    sample.fds.mcp_in, sample.fds.upstream_out, sample.fds.close_wait, sample.cpu_s, sample.sse_open
                );
                samples.push(sample);
            }
            (samples, samples_file)
        })
    };

    tokio::time::sleep_until(end).await;
    shared.stopping.store(true, Ordering::SeqCst);
    let _ = http_scheduler.await;
    let stopped_at = shared.elapsed();
    eprintln!(
        "[{stopped_at:7.1}s] load over; waiting for {} calls in flight",
        shared.inflight.load(Ordering::SeqCst)
    );
    let drain_deadline = Instant::now() + CALL_TIMEOUT + Duration::from_secs(5);
    while shared.inflight.load(Ordering::SeqCst) > 0 && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left_in_flight = shared.inflight.load(Ordering::SeqCst);
    let drained_at = shared.elapsed();
    let (samples, mut samples_file) = sampler.await.expect("the sampler");
    // The quiet point: nothing in flight, pools idle, SSE sessions still open.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let drained = take_sample(
        &shared,
        &control,
        &metrics_url,
        tg_pid,
        ports,
        shared.elapsed() - load_started_at,
    )
    .await;
    if let Some(drained) = &drained {
        let _ = writeln!(samples_file, "{}\tdrained", drained.tsv());
    }
    let _ = samples_file.flush();
    let readyz =
        tokio::task::spawn_blocking(move || readyz.join().map(probes_json).unwrap_or(Value::Null))
            .await
            .unwrap_or(Value::Null);
    let ping =
        tokio::task::spawn_blocking(move || ping.join().map(probes_json).unwrap_or(Value::Null))
            .await
            .unwrap_or(Value::Null);
    let hangups = hangups.await.unwrap_or_default();

    let metrics_text = match control.get(format!("{admin}/metrics")).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(error) => format!("# cannot scrape: {error}"),
    };
    let _ = std::fs::write(out.join("metrics.txt"), &metrics_text);
    let upstream_stats = fetch_json(&control, &format!("{upstream}/__stats")).await;
    let issuer_stats = fetch_json(&control, &format!("{issuer}/__stats")).await;
    let lost_before_shutdown: Vec<Value> = sessions
        .iter()
        .filter_map(|session| {
            let (end, t) = *session.end.lock().unwrap_or_else(|p| p.into_inner());
            (end != StreamEnd::Open)
                .then(|| json!({"session": session.index, "end": format!("{end:?}"), "t": t}))
        })
        .collect();

    // SIGTERM with the SSE sessions still open: they must end cleanly, tunnelgate exit 0.
    let term_at = Instant::now();
    let delivered = signal(tg_pid, libc::SIGTERM);
    eprintln!(
        "[{:7.1}s] SIGTERM sent (delivered: {delivered}); watching the SSE streams close",
        shared.elapsed()
    );
    let close_deadline = Instant::now() + Duration::from_secs(20);
    while sessions.iter().any(|s| s.ended() == StreamEnd::Open) && Instant::now() < close_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let streams_closed_after_s = term_at.elapsed().as_secs_f64();
    let count_end = |wanted: StreamEnd| sessions.iter().filter(|s| s.ended() == wanted).count();
    let (closed_eof, closed_error, still_open) = (
        count_end(StreamEnd::Eof),
        count_end(StreamEnd::Error),
        count_end(StreamEnd::Open),
    );
    // Time until the process is gone (or a zombie waiting for bench/soak.sh).
    let exit_deadline = Instant::now() + Duration::from_secs(30);
    let mut exited_after_s = None;
    while Instant::now() < exit_deadline {
        let state = std::fs::read_to_string(format!("/proc/{tg_pid}/stat")).unwrap_or_default();
        let zombie_or_gone = state.is_empty()
            || state
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        if zombie_or_gone {
            exited_after_s = Some(term_at.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut recorder = shared.recorder.lock().unwrap_or_else(|p| p.into_inner());
    let _ = recorder.calls.flush();
    let mut by_kind: BTreeMap<&str, Value> = BTreeMap::new();
    for ((transport, kind), n) in &recorder.counts {
        let entry = by_kind
            .entry(kind.name())
            .or_insert_with(|| json!({"sse": 0, "http": 0, "total": 0}));
        entry[transport.name()] = json!(entry[transport.name()].as_u64().unwrap_or(0) + n);
        entry["total"] = json!(entry["total"].as_u64().unwrap_or(0) + n);
    }
    let latencies: BTreeMap<&str, Value> = recorder
        .latencies
        .iter_mut()
        .map(|(kind, values)| (kind.name(), latency_summary(values)))
        .collect();
    let per_identity: BTreeMap<String, u64> = recorder
        .per_identity
        .iter()
        .map(|(identity, n)| (identity_email(*identity), *n))
        .collect();
    let adopted = adopted.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let summary = json!({
        "settings": {
            "duration_s": duration.as_secs_f64(), "sse_sessions": sessions_wanted, "sse_warmup_pings": shared.sse_warmup, "sse_interval_s": sse_interval.as_secs_f64(),
            "http_rate": http_rate, "identities": identities, "sighup_every_s": sighup_every.as_secs_f64(),
            "sample_every_s": sample_every.as_secs_f64(), "baseline_at_s": baseline_at,
        },
        "load_started_at_s": load_started_at,
        "stopped_at_s": stopped_at,
        "drained_at_s": drained_at,
        "left_in_flight": left_in_flight,
        "calls": recorder.counts.values().sum::<u64>(),
        "by_kind": by_kind,
        "per_identity": per_identity,
        "latency": latencies,
        "unexpected_examples": recorder.unexpected,
        "sse": {
            "opened": sessions.len(), "open_failures": open_failures,
            "lost_before_shutdown": lost_before_shutdown,
            "after_sigterm": {"closed_cleanly": closed_eof, "closed_with_error": closed_error, "still_open": still_open,
                              "all_closed_after_s": streams_closed_after_s},
        },
        "shutdown": {"sigterm_delivered": delivered, "process_ended_after_s": exited_after_s},
        "readyz": readyz,
        "mcp_ping": ping,
        "sighups": hangups,
        "token_generations": adopted,
        "samples": samples.iter().map(Sample::to_json).collect::<Vec<_>>(),
        "drained_sample": drained.as_ref().map(Sample::to_json),
        "upstream": upstream_stats,
        "issuer": issuer_stats,
        "metrics": {
            "access_denials": metrics_text.lines().filter(|l| l.starts_with("tunnelgate_access_denials_total")).collect::<Vec<_>>(),
            "key_fetches": metrics_text.lines().filter(|l| l.starts_with("tunnelgate_access_key_fetches_total")).collect::<Vec<_>>(),
            "upstream_requests": metrics_text.lines().filter(|l| l.starts_with("tunnelgate_upstream_requests_total")).collect::<Vec<_>>(),
        },
    });
    let _ = std::fs::write(
        out.join("driver.json"),
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    );
    eprintln!(
        "[{:7.1}s] driver done: {} calls",
        shared.elapsed(),
        summary["calls"]
    );
    0
}

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

struct CallRow {
    identity: usize,
    kind: Kind,
}

struct Check {
    name: String,
    value: String,
    pass: bool,
}

fn report(flags: &Flags) -> i32 {
    let out = std::path::PathBuf::from(flags.required("out"));
    let tg_exit: i32 = flags.number("tg-exit", -1);
    let rss_tolerance_kb: u64 = flags.number("rss-tolerance-kb", 5120);
    let readyz_max_ms: f64 = flags.number("readyz-max-ms", 50.0);
    let fd_tolerance: u64 = flags.number("fd-tolerance", 32);
    let driver: Value = std::fs::read(out.join("driver.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    if driver.is_null() {
        eprintln!(
            "no readable {}/driver.json: the driver did not finish",
            out.display()
        );
        return 1;
    }

    // The driver's calls.
    let mut calls: HashMap<u64, CallRow> = HashMap::new();
    let mut duplicate_seqs = 0u64;
    if let Ok(file) = File::open(out.join("calls.tsv")) {
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            let mut fields = line.split('\t');
            let (Some(seq), Some(_), Some(identity), Some(kind)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (Ok(seq), Ok(identity), Some(kind)) =
                (seq.parse(), identity.parse(), Kind::parse(kind))
            else {
                continue;
            };
            if calls.insert(seq, CallRow { identity, kind }).is_some() {
                duplicate_seqs += 1;
            }
        }
    }

    // The audit trail.
    let mut events_per_seq: HashMap<u64, u32> = HashMap::new();
    let mut audit_per_identity: BTreeMap<String, u64> = BTreeMap::new();
    let (
        mut tool_calls,
        mut orphans,
        mut mismatched,
        mut denials,
        mut unreadable,
        mut other_events,
    ) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut mismatch_examples: Vec<String> = Vec::new();
    let audit_path = flags.required("audit");
    let audit = File::open(audit_path).map(BufReader::new);
    let Ok(audit) = audit else {
        eprintln!("cannot open the audit file {audit_path}");
        return 1;
    };
    for line in audit.lines().map_while(Result::ok) {
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            unreadable += 1;
            continue;
        };
        match event["event"].as_str() {
            Some("tool_call") => {
                tool_calls += 1;
                let principal = event["principal"].as_str().unwrap_or_default().to_string();
                *audit_per_identity.entry(principal.clone()).or_default() += 1;
                let Some(seq) = event.pointer("/arguments/seq").and_then(Value::as_u64) else {
                    orphans += 1;
                    continue;
                };
                *events_per_seq.entry(seq).or_default() += 1;
                let Some(call) = calls.get(&seq) else {
                    orphans += 1;
                    continue;
                };
                let fault = fault_for(seq);
                let expected_outcome = match fault {
                    Fault::Ok | Fault::Slow => "ok",
                    _ => "tool_error",
                };
                let status = event.pointer("/upstream/status").and_then(Value::as_u64);
                let mut wrong = Vec::new();
                if principal != identity_email(call.identity) {
                    wrong.push(format!(
                        "principal {principal}, the driver sent {}",
                        identity_email(call.identity)
                    ));
                }
                if call.kind != Kind::Unexpected {
                    if event["outcome"].as_str() != Some(expected_outcome) {
                        wrong.push(format!(
                            "outcome {}, expected {expected_outcome}",
                            event["outcome"]
                        ));
                    }
                    if status != Some(u64::from(fault.status())) {
                        wrong.push(format!(
                            "upstream status {status:?}, expected {}",
                            fault.status()
                        ));
                    }
                    if event["tool"].as_str() != Some(TOOL) {
                        wrong.push(format!("tool {}", event["tool"]));
                    }
                }
                if !wrong.is_empty() {
                    mismatched += 1;
                    if mismatch_examples.len() < 10 {
                        mismatch_examples.push(format!("seq {seq}: {}", wrong.join("; ")));
                    }
                }
            }
            Some("access_denied") => denials += event["count"].as_u64().unwrap_or(1),
            _ => other_events += 1,
        }
    }
    let missing = calls
        .keys()
        .filter(|seq| !events_per_seq.contains_key(seq))
        .count() as u64;
    let duplicated = events_per_seq.values().filter(|&&n| n > 1).count() as u64;
    let mut driver_per_identity: BTreeMap<String, u64> = BTreeMap::new();
    for call in calls.values() {
        *driver_per_identity
            .entry(identity_email(call.identity))
            .or_default() += 1;
    }
    let identities_differing: Vec<String> = driver_per_identity
        .keys()
        .chain(audit_per_identity.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|email| driver_per_identity.get(*email) != audit_per_identity.get(*email))
        .map(|email| {
            format!(
                "{email}: driver {}, audit {}",
                driver_per_identity.get(email).unwrap_or(&0),
                audit_per_identity.get(email).unwrap_or(&0)
            )
        })
        .collect();

    // The tunnelgate log.
    let log = std::fs::read_to_string(flags.required("tg-log")).unwrap_or_default();
    let log_count = |needle: &str| log.lines().filter(|line| line.contains(needle)).count();
    let reloads = log_count("\"policy reloaded\"");
    let reload_failures = log_count("policy reload failed");
    let panics = log_count("panicked");
    let error_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("\"level\":\"ERROR\""))
        .collect();
    let unknown_kid_refetches = log_count("unknown signing key id");

    // Counting.
    let by_kind = &driver["by_kind"];
    let kind_total = |kind: Kind| by_kind[kind.name()]["total"].as_u64().unwrap_or(0);
    let kind_transport =
        |kind: Kind, transport: &str| by_kind[kind.name()][transport].as_u64().unwrap_or(0);
    let total_calls = calls.len() as u64;

    let samples = driver["samples"].as_array().cloned().unwrap_or_default();
    let baseline_at = driver["settings"]["baseline_at_s"].as_f64().unwrap_or(60.0);
    let baseline = samples
        .iter()
        .find(|s| s["t"].as_f64().unwrap_or(0.0) >= baseline_at - 0.5)
        .cloned()
        .unwrap_or(Value::Null);
    let last = samples.last().cloned().unwrap_or(Value::Null);
    let get = |sample: &Value, key: &str| sample[key].as_u64().unwrap_or(0);
    let (rss_base, rss_end) = (get(&baseline, "rss_kb"), get(&last, "rss_kb"));
    let (fds_base, fds_end) = (get(&baseline, "fds"), get(&last, "fds"));
    let fds_max = samples.iter().map(|s| get(s, "fds")).max().unwrap_or(0);
    let rss_max = samples.iter().map(|s| get(s, "rss_kb")).max().unwrap_or(0);
    let readyz_max = driver["readyz"]["max_ms"].as_f64().unwrap_or(f64::MAX);
    let readyz_failures = driver["readyz"]["failures"].as_u64().unwrap_or(u64::MAX);
    let readyz_count = driver["readyz"]["count"].as_u64().unwrap_or(0);
    let sighups = driver["sighups"].as_array().map_or(0, Vec::len);
    let sse = &driver["sse"];
    let sessions_wanted = driver["settings"]["sse_sessions"].as_u64().unwrap_or(0);
    let sessions_opened = sse["opened"].as_u64().unwrap_or(0);
    let sessions_lost = sse["lost_before_shutdown"].as_array().map_or(0, Vec::len) as u64;
    let closed_cleanly = sse["after_sigterm"]["closed_cleanly"].as_u64().unwrap_or(0);
    let generations = driver["token_generations"].as_array().map_or(0, Vec::len);
    let withdrawals = driver["issuer"]["events"].as_array().map_or(0, |events| {
        events.iter().filter(|e| e["event"] == "withdrawn").count()
    });

    let mut checks = Vec::new();
    let mut check = |name: &str, value: String, pass: bool| {
        checks.push(Check {
            name: name.to_string(),
            value,
            pass,
        })
    };
    check(
        "calls completed",
        format!(
            "{total_calls} (SSE {}, Streamable HTTP {})",
            KINDS.iter().map(|k| kind_transport(*k, "sse")).sum::<u64>(),
            KINDS
                .iter()
                .map(|k| kind_transport(*k, "http"))
                .sum::<u64>()
        ),
        total_calls > 0 && duplicate_seqs == 0,
    );
    for kind in KINDS {
        check(
            &format!("  {}", kind.name()),
            format!(
                "{} (SSE {}, HTTP {}; p50 {:.0} ms, p99 {:.0} ms)",
                kind_total(kind),
                kind_transport(kind, "sse"),
                kind_transport(kind, "http"),
                driver["latency"][kind.name()]["p50_ms"]
                    .as_f64()
                    .unwrap_or(0.0),
                driver["latency"][kind.name()]["p99_ms"]
                    .as_f64()
                    .unwrap_or(0.0)
            ),
            kind != Kind::Unexpected || kind_total(kind) == 0,
        );
    }
    check(
        "calls left in flight at the end",
        driver["left_in_flight"].to_string(),
        driver["left_in_flight"].as_i64() == Some(0),
    );
    check(
        "audit tool_call events vs calls",
        format!("{tool_calls} events for {total_calls} calls: {missing} missing, {duplicated} duplicated, {orphans} without a call, {mismatched} disagreeing"),
        tool_calls == total_calls && missing == 0 && duplicated == 0 && orphans == 0 && mismatched == 0 && unreadable == 0,
    );
    check(
        "audit events per identity",
        if identities_differing.is_empty() {
            format!(
                "{} identities, each equal to the driver's count",
                driver_per_identity.len()
            )
        } else {
            identities_differing.join("; ")
        },
        identities_differing.is_empty(),
    );
    check(
        "access denials (folded counts added)",
        format!("{denials} ({other_events} other events)"),
        denials == 0 && other_events == 0,
    );
    check(
        "RSS after the first minute → end",
        format!("{rss_base} kB at {:.0} s → {rss_end} kB at {:.0} s ({:+} kB; max {rss_max} kB; limit +{rss_tolerance_kb} kB)",
            baseline["t"].as_f64().unwrap_or(0.0), last["t"].as_f64().unwrap_or(0.0), rss_end as i64 - rss_base as i64),
        rss_base > 0 && rss_end <= rss_base + rss_tolerance_kb,
    );
    let kinds = |sample: &Value, key: &str| sample["fd_kinds"][key].as_u64().unwrap_or(0);
    let fixed = |sample: &Value| kinds(sample, "non_socket") + kinds(sample, "listening");
    let drained = &driver["drained_sample"];
    check(
        "open fds after the first minute → end",
        format!(
            "{fds_base} → {fds_end} (max {fds_max}; limit +{fd_tolerance}: connections in flight come and go)"
        ),
        fds_base > 0 && fds_end <= fds_base + fd_tolerance,
    );
    check(
        "  fds that are not connections",
        format!(
            "{} → {} (files, pipes, eventfds, epoll, listeners)",
            fixed(&baseline),
            fixed(&last)
        ),
        fixed(&baseline) > 0 && fixed(&last) <= fixed(&baseline),
    );
    check(
        "  connections once the calls drained",
        format!(
            "{} MCP (SSE streams {} + idle keep-alive), {} upstream, {} in CLOSE_WAIT",
            kinds(drained, "mcp_in"),
            drained["sse_open"],
            kinds(drained, "upstream_out"),
            kinds(drained, "close_wait")
        ),
        !drained.is_null() && kinds(drained, "close_wait") == 0,
    );
    check(
        "/readyz latency (probe every second)",
        format!("max {readyz_max:.1} ms, p99 {:.1} ms, {readyz_count} probes, {readyz_failures} failed (limit {readyz_max_ms} ms)",
            driver["readyz"]["p99_ms"].as_f64().unwrap_or(0.0)),
        readyz_max <= readyz_max_ms && readyz_failures == 0 && readyz_count > 0,
    );
    check(
        "MCP `ping` latency (information)",
        format!(
            "max {:.1} ms, p99 {:.1} ms, {} failed",
            driver["mcp_ping"]["max_ms"].as_f64().unwrap_or(0.0),
            driver["mcp_ping"]["p99_ms"].as_f64().unwrap_or(0.0),
            driver["mcp_ping"]["failures"]
        ),
        driver["mcp_ping"]["failures"].as_u64() == Some(0),
    );
    check(
        "SSE sessions open / lost / closed on SIGTERM",
        format!("{sessions_opened} of {sessions_wanted} / {sessions_lost} / {closed_cleanly} closed cleanly in {:.2} s",
            sse["after_sigterm"]["all_closed_after_s"].as_f64().unwrap_or(0.0)),
        sessions_opened == sessions_wanted && sessions_lost == 0 && closed_cleanly as u64 == sessions_opened,
    );
    check(
        "SIGHUP policy reloads",
        format!("{sighups} sent, {reloads} reloaded, {reload_failures} failed"),
        reloads == sighups && reload_failures == 0,
    );
    check(
        "key rotations",
        format!("{} token generations, {withdrawals} withdrawals, {unknown_kid_refetches} unknown-kid refetches, {} certs fetches",
            generations, driver["issuer"]["certs_fetches"]),
        true,
    );
    check(
        "tunnelgate exit after SIGTERM",
        format!(
            "exit {tg_exit} after {:.2} s",
            driver["shutdown"]["process_ended_after_s"]
                .as_f64()
                .unwrap_or(-1.0)
        ),
        tg_exit == 0,
    );
    check(
        "tunnelgate log: ERROR lines / panics",
        format!("{} / {panics}", error_lines.len()),
        error_lines.is_empty() && panics == 0,
    );

    let mut table = String::new();
    table.push_str("| check | value | result |\n|---|---|---|\n");
    for Check { name, value, pass } in &checks {
        table.push_str(&format!(
            "| {name} | {value} | {} |\n",
            if *pass { "pass" } else { "FAIL" }
        ));
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.name.trim())
        .collect();
    let mut details = String::new();
    if !mismatch_examples.is_empty() {
        details.push_str(&format!(
            "\nAudit disagreements (first {}):\n",
            mismatch_examples.len()
        ));
        for example in &mismatch_examples {
            details.push_str(&format!("  {example}\n"));
        }
    }
    if let Some(examples) = driver["unexpected_examples"]
        .as_array()
        .filter(|e| !e.is_empty())
    {
        details.push_str("\nUnexpected errors (first ones):\n");
        for example in examples.iter().take(10) {
            details.push_str(&format!("  {example}\n"));
        }
    }
    if !error_lines.is_empty() {
        details.push_str("\ntunnelgate ERROR lines (first 5):\n");
        for line in error_lines.iter().take(5) {
            details.push_str(&format!("  {}\n", excerpt(line)));
        }
    }
    details.push_str("\nRSS and fds over time (t s: RSS kB / fds):\n  ");
    details.push_str(
        &samples
            .iter()
            .map(|s| {
                format!(
                    "{:.0}: {} / {}",
                    s["t"].as_f64().unwrap_or(0.0),
                    get(s, "rss_kb"),
                    get(s, "fds")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    details.push('\n');
    let verdict = if failed.is_empty() {
        "SOAK PASSED".to_string()
    } else {
        format!("SOAK FAILED: {}", failed.join(", "))
    };
    // The plain closing line CI logs are read for.
    let text = format!(
        "{table}{details}\n{verdict}\nsoak: {} passed, {} failed\n",
        checks.len() - failed.len(),
        failed.len()
    );
    let _ = std::fs::write(out.join("summary.md"), &text);
    print!("{text}");
    i32::from(!failed.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq_with(fault: Fault) -> u64 {
        (1..).find(|seq| fault_for(*seq) == fault).unwrap()
    }

    #[test]
    fn classifies_answers_by_their_fault() {
        let ok = seq_with(Fault::Ok);
        let answer = json!({"jsonrpc": "2.0", "id": ok, "result": {"content": [{"type": "text", "text": "{}"}], "structuredContent": {"seq": ok}, "isError": false}});
        assert_eq!(classify(ok, &answer), Ok(Kind::Ok));
        let failed = seq_with(Fault::ServerError(503));
        let answer = json!({"jsonrpc": "2.0", "id": failed, "result": {"content": [{"type": "text",
            "text": "upstream returned HTTP 503 Service Unavailable: the upstream failed; retrying later may help (soak: injected 503)"}], "isError": true}});
        assert_eq!(classify(failed, &answer), Ok(Kind::Injected5xx));
        assert!(classify(ok, &answer).is_err());
        assert!(classify(
            failed,
            &json!({"jsonrpc": "2.0", "id": failed, "error": {"code": -32603, "message": "boom"}})
        )
        .is_err());
    }

    #[test]
    fn finds_the_answer_in_an_event_stream() {
        let body = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n";
        let message = parse_answer("text/event-stream", body, &json!(7)).unwrap();
        assert_eq!(message["id"], 7);
    }
}
