//! An MCP client for the legacy HTTP+SSE transport (protocol 2024-11-05), just enough to
//! measure it: `GET /sse`, read the `endpoint` event, `initialize`, then `tools/call`s
//! posted to the endpoint whose answers arrive on the stream.
//!
//!   sse-bench calls --url http://127.0.0.1:P [--header 'K: V']... --tool NAME \
//!       --args '{"limit":10}' [--clients 1] [--duration 10] [--warmup 2] \
//!       [--expect TEXT] [--out FILE]
//!     Each client runs its own session and sends one call at a time; latency is from the
//!     start of the POST to the matching response on the stream.
//!
//!   sse-bench hold --url ... [--header ...] --streams 1000 [--initialize] \
//!       [--ready-file F] [--hold 60]
//!     Opens N streams (each initialized when asked), writes F, and keeps them open for
//!     `--hold` seconds or until stdin closes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[derive(Clone)]
struct Options {
    host: String,
    headers: Vec<String>,
    tool: String,
    args: Value,
    clients: usize,
    duration: Duration,
    warmup: Duration,
    expect: Option<String>,
    out: Option<String>,
    streams: usize,
    initialize: bool,
    ready_file: Option<String>,
    hold: Duration,
}

fn parse_options(args: impl Iterator<Item = String>) -> Options {
    let mut options = Options {
        host: String::new(),
        headers: Vec::new(),
        tool: String::new(),
        args: json!({}),
        clients: 1,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        expect: None,
        out: None,
        streams: 1,
        initialize: false,
        ready_file: None,
        hold: Duration::from_secs(3600),
    };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        if flag == "--initialize" {
            options.initialize = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => {
                options.host = value
                    .strip_prefix("http://")
                    .expect("--url must be http://HOST:PORT")
                    .trim_end_matches('/')
                    .to_string()
            }
            "--header" => options.headers.push(value),
            "--tool" => options.tool = value,
            "--args" => options.args = serde_json::from_str(&value).expect("--args JSON"),
            "--clients" => options.clients = value.parse().unwrap(),
            "--duration" => options.duration = Duration::from_secs_f64(value.parse().unwrap()),
            "--warmup" => options.warmup = Duration::from_secs_f64(value.parse().unwrap()),
            "--expect" => options.expect = Some(value),
            "--out" => options.out = Some(value),
            "--streams" => options.streams = value.parse().unwrap(),
            "--ready-file" => options.ready_file = Some(value),
            "--hold" => options.hold = Duration::from_secs_f64(value.parse().unwrap()),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!options.host.is_empty(), "--url is required");
    options
}

/// A response body reader that undoes chunked transfer encoding when it is used.
struct Body<R: BufRead> {
    inner: R,
    chunked: bool,
    remaining: usize,
    done: bool,
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.chunked {
            return self.inner.read(out);
        }
        if self.done {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line.trim().is_empty() {
                // The CRLF that ends the previous chunk.
                line.clear();
                self.inner.read_line(&mut line)?;
            }
            if line.is_empty() {
                self.done = true;
                return Ok(0);
            }
            let size = line.trim().split(';').next().unwrap_or("0");
            self.remaining = usize::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if self.remaining == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = out.len().min(self.remaining);
        let read = self.inner.read(&mut out[..want])?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= read;
        Ok(read)
    }
}

/// Reads a response head; returns the status and the (lower-cased) header lines.
fn read_head(reader: &mut impl BufRead) -> io::Result<(u16, Vec<String>)> {
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, status_line.clone()))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            return Ok((status, headers));
        }
        headers.push(line.to_ascii_lowercase());
    }
}

fn header_value<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    headers.iter().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim())
    })
}

/// One legacy SSE session: the event stream and a keep-alive connection for POSTs.
struct Session {
    events: BufReader<Body<BufReader<TcpStream>>>,
    post: Option<BufReader<TcpStream>>,
    endpoint: String,
    host: String,
    headers: Vec<String>,
    next_id: u64,
}

impl Session {
    fn open(options: &Options) -> io::Result<Self> {
        let stream = TcpStream::connect(&options.host)?;
        stream.set_nodelay(true)?;
        let mut request = format!(
            "GET /sse HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n",
            options.host
        );
        for header in &options.headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        (&stream).write_all(request.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader)?;
        if status != 200 {
            return Err(io::Error::other(format!("GET /sse answered {status}")));
        }
        let chunked = header_value(&headers, "transfer-encoding") == Some("chunked");
        let events = BufReader::new(Body {
            inner: reader,
            chunked,
            remaining: 0,
            done: false,
        });
        let mut session = Session {
            events,
            post: None,
            endpoint: String::new(),
            host: options.host.clone(),
            headers: options.headers.clone(),
            next_id: 1,
        };
        loop {
            let (event, data) = session.next_event()?;
            if event == "endpoint" {
                // Either a path or an absolute URL on the same origin.
                let path = match data.find("://") {
                    Some(at) => {
                        let rest = &data[at + 3..];
                        rest[rest.find('/').unwrap_or(rest.len())..].to_string()
                    }
                    None => data,
                };
                session.endpoint = path;
                return Ok(session);
            }
        }
    }

    /// The next event on the stream as (event name, data); comments are skipped.
    fn next_event(&mut self) -> io::Result<(String, String)> {
        let mut event = String::from("message");
        let mut data = String::new();
        let mut seen_field = false;
        loop {
            let mut line = String::new();
            if self.events.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if seen_field {
                    return Ok((event, data));
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            seen_field = true;
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
    }

    fn post(&mut self, message: &Value) -> io::Result<u16> {
        let body = message.to_string();
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.endpoint,
            self.host,
            body.len()
        );
        for header in &self.headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        request.push_str(&body);
        for attempt in 0..2 {
            if self.post.is_none() {
                let stream = TcpStream::connect(&self.host)?;
                stream.set_nodelay(true)?;
                self.post = Some(BufReader::new(stream));
            }
            let connection = self.post.as_mut().unwrap();
            let outcome = (|| {
                connection.get_mut().write_all(request.as_bytes())?;
                let (status, headers) = read_head(connection)?;
                let close = header_value(&headers, "connection") == Some("close");
                if header_value(&headers, "transfer-encoding") == Some("chunked") {
                    let mut body = Body {
                        inner: &mut *connection,
                        chunked: true,
                        remaining: 0,
                        done: false,
                    };
                    io::copy(&mut body, &mut io::sink())?;
                    // The CRLF after the last chunk.
                    let mut end = String::new();
                    connection.read_line(&mut end)?;
                } else {
                    let length: usize = header_value(&headers, "content-length")
                        .and_then(|value| value.parse().ok())
                        .unwrap_or(0);
                    let mut skip = vec![0u8; length];
                    connection.read_exact(&mut skip)?;
                }
                Ok::<_, io::Error>((status, close))
            })();
            match outcome {
                Ok((status, close)) => {
                    if close {
                        self.post = None;
                    }
                    return Ok(status);
                }
                // A keep-alive connection the server closed meanwhile: reconnect once.
                Err(error) if attempt == 0 => {
                    let _ = error;
                    self.post = None;
                }
                Err(error) => return Err(error),
            }
        }
        unreachable!()
    }

    /// Posts a request and waits for the response with its id on the stream.
    fn request(&mut self, method: &str, params: Value) -> io::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let status =
            self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        if !(200..300).contains(&status) {
            return Err(io::Error::other(format!("POST {method} answered {status}")));
        }
        loop {
            let (event, data) = self.next_event()?;
            if event != "message" {
                continue;
            }
            let message: Value = serde_json::from_str(&data)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
            if message.get("id").and_then(Value::as_u64) == Some(id) {
                return Ok(message);
            }
        }
    }

    fn initialize(&mut self) -> io::Result<()> {
        let answer = self.request(
            "initialize",
            json!({
                "protocolVersion": "2024-11-05",
                "capabilities": {},
                "clientInfo": {"name": "tunnelgate-bench", "version": "0"}
            }),
        )?;
        if answer.get("result").is_none() {
            return Err(io::Error::other(format!("initialize failed: {answer}")));
        }
        let status =
            self.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        if !(200..300).contains(&status) {
            return Err(io::Error::other(format!("initialized answered {status}")));
        }
        Ok(())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn call_ok(answer: &Value, expect: Option<&str>) -> bool {
    let Some(result) = answer.get("result") else {
        return false;
    };
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        return false;
    }
    match expect {
        Some(text) => result.to_string().contains(text),
        None => true,
    }
}

fn run_calls(options: Options) {
    let stop_warmup = Instant::now() + options.warmup;
    let deadline = stop_warmup + options.duration;
    let first_answer = Arc::new(std::sync::Mutex::new(None::<Value>));
    let failed = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..options.clients)
        .map(|_| {
            let options = options.clone();
            let first_answer = Arc::clone(&first_answer);
            let failed = Arc::clone(&failed);
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut session = match Session::open(&options) {
                    Ok(session) => session,
                    Err(error) => {
                        eprintln!("opening a session failed: {error}");
                        failed.store(true, Ordering::Relaxed);
                        return (latencies, 1);
                    }
                };
                if let Err(error) = session.initialize() {
                    eprintln!("initialize failed: {error}");
                    failed.store(true, Ordering::Relaxed);
                    return (latencies, 1);
                }
                let params = json!({"name": options.tool, "arguments": options.args});
                loop {
                    let started = Instant::now();
                    if started >= deadline {
                        break;
                    }
                    match session.request("tools/call", params.clone()) {
                        Ok(answer) => {
                            let elapsed = started.elapsed();
                            let ok = call_ok(&answer, options.expect.as_deref());
                            {
                                let mut first = first_answer.lock().unwrap();
                                if first.is_none() {
                                    *first = Some(answer);
                                }
                            }
                            if !ok {
                                errors += 1;
                            } else if started >= stop_warmup {
                                latencies.push(elapsed.as_secs_f64() * 1000.0);
                            }
                        }
                        Err(error) => {
                            eprintln!("tools/call failed: {error}");
                            errors += 1;
                            break;
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut some, failures) = worker.join().unwrap();
        latencies.append(&mut some);
        errors += failures;
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let seconds = options.duration.as_secs_f64();
    let summary = json!({
        "transport": "legacy-sse",
        "clients": options.clients,
        "duration_s": seconds,
        "requests": latencies.len(),
        "errors": errors,
        "rps": latencies.len() as f64 / seconds,
        "p50_ms": percentile(&latencies, 50.0),
        "p90_ms": percentile(&latencies, 90.0),
        "p99_ms": percentile(&latencies, 99.0),
        "max_ms": latencies.last().copied().unwrap_or(f64::NAN),
        "mean_ms": latencies.iter().sum::<f64>() / latencies.len().max(1) as f64,
        "first_answer_bytes": first_answer.lock().unwrap().as_ref().map(|a| a.to_string().len()),
    });
    let text = serde_json::to_string_pretty(&summary).unwrap();
    match &options.out {
        Some(path) => std::fs::write(path, &text).unwrap(),
        None => println!("{text}"),
    }
    if failed.load(Ordering::Relaxed) || latencies.is_empty() {
        if let Some(answer) = first_answer.lock().unwrap().as_ref() {
            eprintln!(
                "first answer: {}",
                &answer.to_string()[..answer.to_string().len().min(600)]
            );
        }
        std::process::exit(1);
    }
    if errors > 0 {
        if let Some(answer) = first_answer.lock().unwrap().as_ref() {
            eprintln!(
                "first answer: {}",
                &answer.to_string()[..answer.to_string().len().min(600)]
            );
        }
        eprintln!("{errors} calls failed");
        std::process::exit(1);
    }
}

fn run_hold(options: Options) {
    let started = Instant::now();
    let mut sessions = Vec::with_capacity(options.streams);
    for n in 0..options.streams {
        match Session::open(&options) {
            Ok(mut session) => {
                if options.initialize {
                    if let Err(error) = session.initialize() {
                        eprintln!("stream {n}: initialize failed: {error}");
                        std::process::exit(1);
                    }
                    // The POST connection is not needed any more; the stream stays open.
                    session.post = None;
                }
                sessions.push(session);
            }
            Err(error) => {
                eprintln!("stream {n}: {error}");
                std::process::exit(1);
            }
        }
    }
    eprintln!(
        "{} streams open in {:.1} s",
        sessions.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &options.ready_file {
        std::fs::write(path, sessions.len().to_string()).unwrap();
    }
    // Hold until stdin closes or the time is up, whichever comes first.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        let _ = done_tx.send(());
    });
    let _ = done_rx.recv_timeout(options.hold);
    drop(sessions);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let options = parse_options(args);
    match mode.as_str() {
        "calls" => run_calls(options),
        "hold" => run_hold(options),
        _ => {
            eprintln!("usage: sse-bench calls|hold --url http://HOST:PORT ...");
            std::process::exit(2);
        }
    }
}
