//! The soak's faulty upstream: a small OpenAPI document with one GET operation, and that
//! operation answered with the faults of `tunnelgate_bench_tools::fault_for` (10 % 5xx, 2 %
//! 429, 5 % delayed by 2 s), decided by the call number in the path so retries of one call
//! meet the same fault.
//!
//!   soak-upstream --listen 127.0.0.1:18180 --token TOKEN [--lifetime 900]
//!
//! Routes:
//!   GET /openapi.json          the document (its `servers` entry is this listener)
//!   GET /v1/items/{seq}        the operation; needs `Authorization: Bearer TOKEN` (else 401)
//!   GET /__stats               requests served, by what was answered
//!
//! It binds only the address it is given and exits after `--lifetime` seconds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::json;
use tunnelgate_bench_tools::{
    fault_for, json_response, serve, Body, Fault, Flags, RETRY_AFTER_SECS, SLOW_DELAY,
};

#[derive(Default)]
struct Stats {
    ok: AtomicU64,
    slow: AtomicU64,
    status_500: AtomicU64,
    status_502: AtomicU64,
    status_503: AtomicU64,
    status_429: AtomicU64,
    unauthorized: AtomicU64,
    bad_request: AtomicU64,
    documents: AtomicU64,
}

struct State {
    document: String,
    authorization: String,
    stats: Stats,
}

fn document(listen: SocketAddr) -> String {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "soak upstream", "version": "1"},
        "servers": [{"url": format!("http://{listen}")}],
        "paths": {
            "/v1/items/{seq}": {
                "get": {
                    "operationId": "items:get",
                    "summary": "Get an item by its sequence number",
                    "tags": ["items"],
                    "parameters": [{
                        "name": "seq", "in": "path", "required": true,
                        "description": "The item's sequence number.",
                        "schema": {"type": "integer", "minimum": 0}
                    }],
                    "responses": {
                        "200": {
                            "description": "The item",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}
                        },
                        "default": {"description": "An error"}
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "Item": {
                    "type": "object",
                    "properties": {
                        "seq": {"type": "integer"},
                        "name": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string"}}
                    }
                }
            }
        }
    })
    .to_string()
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

async fn handle(request: Request<Incoming>, state: Arc<State>) -> Response<Body> {
    let path = request.uri().path().to_string();
    if request.method() != Method::GET {
        return json_response(405, &json!({"detail": "Method Not Allowed"}));
    }
    if path == "/openapi.json" {
        count(&state.stats.documents);
        return tunnelgate_bench_tools::response(200, "application/json", state.document.clone());
    }
    if path == "/__stats" {
        let stats = &state.stats;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        return json_response(
            200,
            &json!({
                "ok": get(&stats.ok), "slow": get(&stats.slow),
                "500": get(&stats.status_500), "502": get(&stats.status_502),
                "503": get(&stats.status_503), "429": get(&stats.status_429),
                "unauthorized": get(&stats.unauthorized), "bad_request": get(&stats.bad_request),
                "documents": get(&stats.documents),
            }),
        );
    }
    let Some(seq) = path.strip_prefix("/v1/items/") else {
        return json_response(404, &json!({"detail": "Not Found"}));
    };
    let authorized = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        == Some(state.authorization.as_str());
    if !authorized {
        count(&state.stats.unauthorized);
        return json_response(401, &json!({"detail": "soak: missing or wrong credential"}));
    }
    let Ok(seq) = seq.parse::<u64>() else {
        count(&state.stats.bad_request);
        return json_response(400, &json!({"detail": "soak: seq is not a number"}));
    };
    let item = || {
        json_response(
            200,
            &json!({"seq": seq, "name": format!("item {seq}"), "tags": ["soak"]}),
        )
    };
    match fault_for(seq) {
        Fault::Ok => {
            count(&state.stats.ok);
            item()
        }
        Fault::Slow => {
            count(&state.stats.slow);
            tokio::time::sleep(SLOW_DELAY).await;
            item()
        }
        Fault::ServerError(status) => {
            count(match status {
                500 => &state.stats.status_500,
                502 => &state.stats.status_502,
                _ => &state.stats.status_503,
            });
            json_response(
                status,
                &json!({"detail": format!("soak: injected {status}")}),
            )
        }
        Fault::TooManyRequests => {
            count(&state.stats.status_429);
            let mut answer = json_response(429, &json!({"detail": "soak: injected 429"}));
            answer.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from(RETRY_AFTER_SECS),
            );
            answer
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let flags = Flags::parse(std::env::args().skip(1));
    let listen: SocketAddr = flags
        .required("listen")
        .parse()
        .expect("--listen HOST:PORT");
    let lifetime = Duration::from_secs(flags.number("lifetime", 900));
    let state = Arc::new(State {
        document: document(listen),
        authorization: format!("Bearer {}", flags.required("token")),
        stats: Stats::default(),
    });
    serve(listen, lifetime, "soak-upstream", move |request| {
        handle(request, Arc::clone(&state))
    })
    .await;
}
