//! A deliberately minimal HTTP/1.1 server for the benchmark: every route answers a fixed,
//! pre-rendered response, so what is measured is the proxy in front of it, not this.
//!
//! Thread per connection, blocking I/O, keep-alive, Content-Length bodies only. It binds
//! only the address it is given (the benchmark passes 127.0.0.1).
//!
//! Usage:
//!   fast-upstream --listen 127.0.0.1:0 --port-file F \
//!       --route /v1/products=products.json --route /cdn-cgi/access/certs=certs.json
//!
//! A route matches when the request path (without the query) starts with it; the first
//! match wins. `GET /__stats` answers the number of requests served per route as JSON.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

struct Route {
    prefix: String,
    response: Vec<u8>,
    served: AtomicU64,
}

struct State {
    routes: Vec<Route>,
    not_found: AtomicU64,
}

fn render(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    response
}

fn main() {
    let mut listen = "127.0.0.1:0".to_string();
    let mut port_file = None;
    let mut routes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value,
            "--port-file" => port_file = Some(value),
            "--route" => {
                let (prefix, file) = value.split_once('=').expect("--route PREFIX=FILE");
                let body = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
                routes.push(Route {
                    prefix: prefix.to_string(),
                    response: render("200 OK", "application/json", &body),
                    served: AtomicU64::new(0),
                });
            }
            other => panic!("unknown flag {other}"),
        }
    }
    let listener = TcpListener::bind(&listen).unwrap_or_else(|e| panic!("bind {listen}: {e}"));
    let address = listener.local_addr().unwrap();
    if let Some(path) = port_file {
        std::fs::write(&path, address.port().to_string()).unwrap();
    }
    eprintln!("fast-upstream listening on {address}");
    let state = Arc::new(State {
        routes,
        not_found: AtomicU64::new(0),
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let state = Arc::clone(&state);
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = serve(stream, &state);
            })
            .expect("spawn");
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> usize {
    let text = String::from_utf8_lossy(head);
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

fn wants_close(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.contains("\r\nconnection: close")
}

fn serve(mut stream: TcpStream, state: &State) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        // Read until a complete head is buffered.
        let head_end = loop {
            if let Some(at) = find(&buffer, b"\r\n\r\n") {
                break at + 4;
            }
            let read = stream.read(&mut chunk)?;
            if read == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..read]);
        };
        let head = buffer[..head_end].to_vec();
        let body_len = content_length(&head);
        while buffer.len() < head_end + body_len {
            let read = stream.read(&mut chunk)?;
            if read == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
        buffer.drain(..head_end + body_len);

        let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
        let target = request_line
            .split(|&b| b == b' ')
            .nth(1)
            .unwrap_or_default();
        let path = target.split(|&b| b == b'?').next().unwrap_or_default();
        if path == b"/__stats" {
            let mut stats = serde_json::Map::new();
            for route in &state.routes {
                stats.insert(
                    route.prefix.clone(),
                    route.served.load(Ordering::Relaxed).into(),
                );
            }
            stats.insert(
                "not_found".into(),
                state.not_found.load(Ordering::Relaxed).into(),
            );
            let body = serde_json::Value::Object(stats).to_string();
            stream.write_all(&render("200 OK", "application/json", body.as_bytes()))?;
        } else if let Some(route) = state
            .routes
            .iter()
            .find(|route| path.starts_with(route.prefix.as_bytes()))
        {
            route.served.fetch_add(1, Ordering::Relaxed);
            stream.write_all(&route.response)?;
        } else {
            state.not_found.fetch_add(1, Ordering::Relaxed);
            stream.write_all(&render(
                "404 Not Found",
                "application/json",
                br#"{"detail":"Not Found"}"#,
            ))?;
        }
        if wants_close(&head) {
            return Ok(());
        }
    }
}
