//! The fast lane: in stateless Streamable HTTP, `tools/call` and `tools/list` are answered by
//! calling the registry directly and writing the JSON-RPC answer, instead of building an rmcp
//! service, a task and channels per request and a `serde_json::Value` per answer.
//!
//! It answers only requests it can answer exactly as rmcp would: a plain request (string or
//! integer id, `tools/list` without parameters, `tools/call` with only `name` and `arguments`)
//! from a peer on a protocol version before 2026-07-28 that sends the headers rmcp requires.
//! Anything else — other methods, `_meta`, cursors, 2026-07-28's per-request negotiation, bad
//! `Accept` or `Content-Type`, stateful mode — goes to rmcp unchanged, so rmcp's checks and
//! error answers stay the only ones. `tests/api/fast_lane.rs` sends the same requests through
//! both paths and requires equal answers.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use rmcp::ErrorData;
use rmcp::model::JsonObject;
use serde_json::Value;

use super::handler::unknown_tool_error;
use crate::access::Identity;
use crate::outcome::CallOutcome;
use crate::telemetry::RequestInfo;
use crate::tools::{CallError, CallVia, Caller, ToolRegistry};

/// The protocol versions whose answers the fast lane writes (what rmcp calls legacy peers);
/// a request without the header is treated as 2025-03-26, as rmcp does.
const LEGACY_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];

const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream";

/// App data present when the fast lane is on (`server.fast_lane` in stateless mode).
pub struct FastLane {
    registry: Arc<ToolRegistry>,
}

impl FastLane {
    pub fn new(registry: Arc<ToolRegistry>) -> Self {
        Self { registry }
    }
}

/// A request the fast lane will answer.
pub struct Plan {
    id: Value,
    method: HotMethod,
}

impl Plan {
    /// The method this plan answers and, for `tools/call`, the tool it names.
    pub fn describe(&self) -> (&'static str, Option<&str>) {
        match &self.method {
            HotMethod::ListTools => ("tools/list", None),
            HotMethod::CallTool { name, .. } => ("tools/call", Some(name)),
        }
    }
}

/// The two methods answered without rmcp, on this transport and on legacy SSE.
pub enum HotMethod {
    ListTools,
    CallTool {
        name: String,
        arguments: Option<JsonObject>,
    },
}

/// The plan for `message`, when the request is one the fast lane answers exactly as rmcp
/// would; `None` sends it to rmcp.
pub fn plan(request: &HttpRequest, message: Value) -> Option<Plan> {
    if !headers_are_plain(request.headers()) {
        return None;
    }
    let Value::Object(mut message) = message else {
        return None;
    };
    let id = message.remove("id")?;
    let id_is_plain = id.is_string() || id.as_i64().is_some();
    if !id_is_plain || message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return None;
    }
    let params = match message.remove("params") {
        None => JsonObject::new(),
        Some(Value::Object(params)) => params,
        Some(_) => return None,
    };
    let method = match message.get("method").and_then(Value::as_str)? {
        "tools/list" if params.is_empty() => HotMethod::ListTools,
        "tools/call" => call_params(params)?,
        _ => return None,
    };
    // Keys beyond jsonrpc/method (id and params were taken out) are rmcp's to judge.
    (message.len() == 2).then_some(Plan { id, method })
}

fn call_params(mut params: JsonObject) -> Option<HotMethod> {
    let Some(Value::String(name)) = params.remove("name") else {
        return None;
    };
    let arguments = match params.remove("arguments") {
        None => None,
        Some(Value::Object(arguments)) => Some(arguments),
        Some(_) => return None,
    };
    params
        .is_empty()
        .then_some(HotMethod::CallTool { name, arguments })
}

/// The headers rmcp requires of a POST, on a protocol version the fast lane writes for.
fn headers_are_plain(headers: &HeaderMap) -> bool {
    let mut versions = headers.get_all("mcp-protocol-version");
    let version_is_legacy = match (versions.next(), versions.next()) {
        (None, _) => true,
        (Some(version), None) => version
            .to_str()
            .is_ok_and(|version| LEGACY_VERSIONS.contains(&version)),
        (Some(_), Some(_)) => false,
    };
    let content_type_is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split(';').next().unwrap_or_default();
            essence.trim().eq_ignore_ascii_case(JSON)
        });
    let (mut accepts_json, mut accepts_event_stream) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for media_range in value.split(',') {
            let mut parts = media_range.split(';');
            let essence = parts.next().unwrap_or_default().trim();
            // Anything beyond a bare media type (a weight, a parameter, a quoted comma) is
            // left to rmcp's full parser.
            if parts.next().is_some() || media_range.contains('"') {
                return false;
            }
            accepts_json |= essence.eq_ignore_ascii_case(JSON);
            accepts_event_stream |= essence.eq_ignore_ascii_case(EVENT_STREAM);
        }
    }
    version_is_legacy && content_type_is_json && accepts_json && accepts_event_stream
}

/// Answers a planned request; `None` when the request carries no verified identity (it
/// cannot happen behind the Access guard, and rmcp then answers as it always does).
pub async fn answer(lane: &FastLane, request: &HttpRequest, plan: Plan) -> Option<HttpResponse> {
    let identity = request.extensions().get::<Arc<Identity>>().cloned()?;
    let request_info = request
        .extensions()
        .get::<RequestInfo>()
        .cloned()
        .unwrap_or_else(|| RequestInfo::new(None));
    let body = write_answer(
        &lane.registry,
        &identity,
        &request_info,
        &plan.id,
        plan.method,
    )
    .await?;
    lane.registry.metrics().fast_lane_answers.inc();
    Some(HttpResponse::Ok().content_type(JSON).body(body))
}

/// The JSON-RPC answer (one object, as bytes) to `method` with `id`, called as `identity`:
/// what rmcp would write for a peer before 2026-07-28. `None` only when `id` cannot be
/// serialised, which owned JSON always can.
pub async fn write_answer(
    registry: &ToolRegistry,
    identity: &Arc<Identity>,
    request_info: &RequestInfo,
    id: &Value,
    method: HotMethod,
) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(512);
    body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    let written = match method {
        HotMethod::ListTools => {
            let started = Instant::now();
            let listed = registry.legacy_list_result(identity).and_then(|list| {
                serde_json::to_writer(&mut body, id)?;
                body.extend_from_slice(br#","result":"#);
                body.extend_from_slice(&list);
                Ok(())
            });
            registry.metrics().record_mcp_request(
                "tools/list",
                "",
                CallOutcome::Ok,
                started.elapsed(),
            );
            listed
        }
        HotMethod::CallTool { name, arguments } => {
            let caller = Caller {
                identity,
                request: request_info,
                via: CallVia::Mcp,
            };
            let called = registry.call(caller, &name, arguments).await;
            serde_json::to_writer(&mut body, id).and_then(|()| match called {
                Ok(output) => {
                    body.extend_from_slice(br#","result":"#);
                    output.write_legacy_result(&mut body)
                }
                Err(CallError::UnknownTool { name, closest }) => {
                    body.extend_from_slice(br#","error":"#);
                    serde_json::to_writer(&mut body, &unknown_tool_error(&name, closest.as_deref()))
                }
            })
        }
    };
    if let Err(error) = written {
        // Unreachable in practice (serialising owned JSON into a Vec); answer like rmcp would.
        tracing::error!(error = %error, "cannot write a fast-lane answer");
        let error = ErrorData::internal_error("cannot serialise the answer", None);
        body.clear();
        body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        serde_json::to_writer(&mut body, id).ok()?;
        body.extend_from_slice(br#","error":"#);
        serde_json::to_writer(&mut body, &error).ok()?;
    }
    body.push(b'}');
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use serde_json::json;

    fn plain_request() -> TestRequest {
        TestRequest::post()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .insert_header((header::ACCEPT, "application/json, text/event-stream"))
            .insert_header(("MCP-Protocol-Version", "2025-06-18"))
    }

    fn call(arguments: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": "books_list", "arguments": arguments}})
    }

    #[test]
    fn takes_a_plain_tools_call_and_tools_list() {
        let request = plain_request().to_http_request();

        assert!(plan(&request, call(json!({"limit": 1}))).is_some());
        let list = json!({"jsonrpc": "2.0", "id": "a", "method": "tools/list"});
        assert!(plan(&request, list).is_some());
    }

    #[test]
    fn leaves_other_methods_meta_cursors_and_odd_ids_to_rmcp() {
        let request = plain_request().to_http_request();
        let leaves = |message: Value| plan(&request, message).is_none();

        assert!(leaves(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})));
        assert!(leaves(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                               "params": {"cursor": "x"}})
        ));
        assert!(leaves(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                               "params": {"name": "a", "_meta": {}}})
        ));
        assert!(leaves(
            json!({"jsonrpc": "2.0", "id": 1.5, "method": "tools/list"})
        ));
        assert!(leaves(json!({"jsonrpc": "2.0", "method": "tools/list"})));
        assert!(leaves(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                               "params": {"name": "a", "arguments": [1]}})
        ));
    }

    #[test]
    fn leaves_unusual_headers_and_other_protocol_versions_to_rmcp() {
        let cases = [
            TestRequest::post()
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .insert_header((header::ACCEPT, "application/json")),
            plain_request().insert_header((header::CONTENT_TYPE, "text/plain")),
            plain_request().insert_header(("MCP-Protocol-Version", "2026-07-28")),
            plain_request()
                .insert_header((header::ACCEPT, "application/json;q=0, text/event-stream")),
        ];

        for case in cases {
            let request = case.to_http_request();
            assert!(
                plan(&request, call(json!({}))).is_none(),
                "{:?}",
                request.headers()
            );
        }
    }
}
