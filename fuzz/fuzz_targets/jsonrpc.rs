//! The JSON-RPC entry points of both transports: `POST /mcp`'s guard (`check_message`) and the fast lane's planner
//! on what it lets through, and `POST /message`'s parse into rmcp's `ClientJsonRpcMessage` (legacy SSE).
//!
//! Properties: no panic; and the fast lane answers only what rmcp would have read as the same request (same
//! method, same tool name), so taking the fast lane never changes which requests are served.
//!
//! Input: the request body. An input starting with `H\n` carries its own headers first (`name: value` lines up to
//! an empty line, then the body); otherwise the request has the headers an MCP client sends.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tunnelgate::fuzzing;

const PLAIN_HEADERS: [(&[u8], &[u8]); 2] = [
    (b"content-type", b"application/json"),
    (b"accept", b"application/json, text/event-stream"),
];

/// Splits an input into its header pairs and the body.
fn split(data: &[u8]) -> (Vec<(&[u8], &[u8])>, &[u8]) {
    let Some(rest) = data.strip_prefix(b"H\n") else {
        return (PLAIN_HEADERS.to_vec(), data);
    };
    let mut headers = Vec::new();
    let mut remaining = rest;
    loop {
        let (line, after) = match remaining.iter().position(|&byte| byte == b'\n') {
            Some(end) => (&remaining[..end], &remaining[end + 1..]),
            None => (remaining, &b""[..]),
        };
        remaining = after;
        if line.is_empty() {
            break;
        }
        if let Some(colon) = line.iter().position(|&byte| byte == b':') {
            let value = &line[colon + 1..];
            let value = value.strip_prefix(b" ").unwrap_or(value);
            headers.push((&line[..colon], value));
        }
        if remaining.is_empty() {
            break;
        }
    }
    (headers, remaining)
}

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let (headers, body) = split(data);

    // Legacy SSE: every body reaches the parse (the guard only sits on `/mcp`).
    let _ = fuzzing::legacy_sse_message(body);

    // Streamable HTTP: the guard, then the fast lane on what it lets through.
    let Ok(message) = fuzzing::check_jsonrpc_message(body) else {
        return;
    };
    let Some((method, tool)) = fuzzing::fast_lane_plan(&headers, message) else {
        return;
    };
    let read = fuzzing::rmcp_streamable_message(body).unwrap_or_else(|error| {
        panic!(
            "the fast lane would answer {method} ({tool:?}) but rmcp refuses the body: {error}\nbody: {:?}",
            String::from_utf8_lossy(body)
        )
    });
    assert_eq!(
        read.get("method").and_then(Value::as_str),
        Some(method),
        "{read}"
    );
    if let Some(tool) = tool {
        assert_eq!(
            read.pointer("/params/name").and_then(Value::as_str),
            Some(tool.as_str()),
            "{read}"
        );
    }
}
