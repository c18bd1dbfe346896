//! Exists for the fuzz targets in `fuzz/` only; not a public API (hidden from the docs, no stability promise).
//!
//! Thin wrappers over private functions, so each target drives exactly the code production runs: the JSON-RPC
//! guard, the fast-lane planner and the legacy SSE message parse; argument validation, request building and the
//! upstream client's request assembly; an upstream answer turned into a tool result; OpenAPI parsing and catalog
//! building. The Access target needs nothing
//! here: the verifier, the key cache and the dev issuer are already exported for the tests and the benchmark.

use std::sync::Arc;

use actix_web::test::TestRequest;
use http::{HeaderValue, header};
use rmcp::model::ClientJsonRpcMessage;
use serde_json::Value;

use crate::admin::metrics::Metrics;
use crate::mcp::{fast_lane, jsonrpc_guard, legacy_sse};
use crate::openapi::{Catalog, CatalogOptions, parse_document};
use crate::tools::{ArgumentValidator, build_request};
use crate::upstream::{UpstreamClient, UpstreamClientOptions};

/// `POST /mcp`'s body check: the message, or the id, JSON-RPC code and message of the 400 answer.
pub fn check_jsonrpc_message(body: &[u8]) -> Result<Value, (Value, i32, String)> {
    jsonrpc_guard::check_message(body)
}

/// The fast lane's plan for a checked `message` arriving as `POST /mcp` with `headers` (pairs that are not a
/// valid header name and value are left out, as the HTTP parser would refuse them): the method it would answer
/// and, for `tools/call`, the tool name; `None` leaves the request to rmcp.
pub fn fast_lane_plan(
    headers: &[(&[u8], &[u8])],
    message: Value,
) -> Option<(&'static str, Option<String>)> {
    let mut request = TestRequest::post().uri("/mcp");
    for (name, value) in headers {
        // actix-web's header types (http 0.2), not the upstream client's (http 1).
        if let (Ok(name), Ok(value)) = (
            actix_web::http::header::HeaderName::from_bytes(name),
            actix_web::http::header::HeaderValue::from_bytes(value),
        ) {
            request = request.append_header((name, value));
        }
    }
    let request = request.to_http_request();
    let plan = fast_lane::plan(&request, message)?;
    let (method, tool) = plan.describe();
    Some((method, tool.map(str::to_owned)))
}

/// `POST /message`'s parse (legacy SSE): the message as rmcp typed it, serialised back to JSON, or the JSON-RPC
/// code and message of the 400 answer.
pub fn legacy_sse_message(body: &[u8]) -> Result<Value, (i32, String)> {
    let message = legacy_sse::parse_client_message(body)?;
    serde_json::to_value(&message).map_err(|error| (0, format!("cannot serialise back: {error}")))
}

/// How the Streamable HTTP transport (rmcp-actix-web) reads a body the fast lane did not answer: the message
/// serialised back to JSON, or rmcp's refusal.
pub fn rmcp_streamable_message(body: &[u8]) -> Result<Value, String> {
    let message: ClientJsonRpcMessage =
        serde_json::from_slice(body).map_err(|error| error.to_string())?;
    serde_json::to_value(&message).map_err(|error| format!("cannot serialise back: {error}"))
}

/// What [`openapi_catalog`] built.
#[derive(Debug, Clone, Copy)]
pub struct CatalogSummary {
    pub tools: usize,
    pub skipped: usize,
    /// The input schemas' total size, as compact JSON.
    pub schema_bytes: usize,
}

/// Start-up's document → catalog step: any bytes, read as JSON or YAML, validated and compiled into tools (writes
/// included, pagination described with a page limit, so every stage runs). The error is the text start-up logs.
pub fn openapi_catalog(bytes: &[u8]) -> Result<CatalogSummary, String> {
    let document = parse_document(bytes).map_err(|error| error.to_string())?;
    let catalog =
        Catalog::build(&document, &every_operation()).map_err(|error| error.to_string())?;
    let schema_bytes = catalog
        .tools()
        .iter()
        .map(|tool| serde_json::to_string(&tool.input_schema).map_or(0, |text| text.len()))
        .sum();
    Ok(CatalogSummary {
        tools: catalog.len(),
        skipped: catalog.skipped().len(),
        schema_bytes,
    })
}

fn every_operation() -> CatalogOptions {
    CatalogOptions {
        read_only: false,
        required_security_scheme: None,
        ..CatalogOptions::polar()
    }
}

/// A fixed catalog and an upstream client holding a credential: tool arguments in, the upstream request (as the
/// client would send it) or the error texts a caller would read out.
pub struct ToolRequestHarness {
    catalog: Catalog,
    validators: Vec<ArgumentValidator>,
    client: UpstreamClient,
}

/// One tool call taken as far as the upstream request, without sending it.
#[derive(Debug)]
pub struct ToolRun {
    pub tool: String,
    /// The OpenAPI path template, e.g. `/v1/items/{id}`.
    pub path_template: String,
    /// The argument validator's verdict, as the caller would read it.
    pub validation: Result<(), String>,
    /// Request building, run whether or not validation passed (it must be safe on its own).
    pub built: Result<BuiltRequest, String>,
}

/// What request building produced, and what the client made of it.
#[derive(Debug)]
pub struct BuiltRequest {
    pub path_and_query: String,
    /// Headers from arguments (and `content-type` with a body).
    pub argument_headers: Vec<(String, String)>,
    /// The request the client would send, or the error a caller would read.
    pub sent: Result<SentRequest, String>,
}

/// The HTTP request as it would leave: URL and every header, configured ones included.
#[derive(Debug)]
pub struct SentRequest {
    pub url: String,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ToolRequestHarness {
    /// The catalog of `document` (every operation, writes included) and a client for `base_url` that sends
    /// `token` as `Authorization: Bearer …`, as `upstream.token` configures it.
    pub fn new(document: &[u8], base_url: &str, token: &str) -> Result<Self, String> {
        let document = parse_document(document).map_err(|error| error.to_string())?;
        let catalog =
            Catalog::build(&document, &every_operation()).map_err(|error| error.to_string())?;
        let credential = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the token cannot be a header value".to_owned())?;
        let options = UpstreamClientOptions {
            base_url: base_url.to_owned(),
            credential: Some((header::AUTHORIZATION, credential)),
            headers: Vec::new(),
            timeout: std::time::Duration::from_secs(5),
            connect_timeout: std::time::Duration::from_secs(1),
            max_concurrency: 1,
            max_response: 1024 * 1024,
            proxy: None,
        };
        let client = UpstreamClient::new(options, Arc::new(Metrics::new()))
            .map_err(|error| error.to_string())?;
        let validators = catalog
            .tools()
            .iter()
            .map(|_| ArgumentValidator::default())
            .collect();
        Ok(Self {
            catalog,
            validators,
            client,
        })
    }

    /// How many tools the catalog holds.
    pub fn tool_count(&self) -> usize {
        self.catalog.len()
    }

    /// The position of the tool named `name`.
    pub fn tool_index(&self, name: &str) -> Option<usize> {
        self.catalog.index_of(name)
    }

    /// Tool number `index` called with `arguments` (the MCP `arguments`; anything, not only objects).
    pub fn run(&self, index: usize, arguments: &Value) -> Option<ToolRun> {
        let tool = self.catalog.tools().get(index)?;
        let validator = self.validators.get(index)?;
        let validation = validator
            .validate(tool, arguments)
            .map_err(|error| error.to_string());
        let empty = serde_json::Map::new();
        let object = arguments.as_object().unwrap_or(&empty);
        let built = build_request(tool, object)
            .map(|request| {
                let sent = self
                    .client
                    .http_request(&request)
                    .map(|sent| SentRequest {
                        url: sent.uri().to_string(),
                        headers: sent
                            .headers()
                            .iter()
                            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                            .collect(),
                    })
                    .map_err(|error| error.to_string());
                BuiltRequest {
                    path_and_query: request.path_and_query,
                    argument_headers: request.headers,
                    sent,
                }
            })
            .map_err(|error| error.to_string());
        Some(ToolRun {
            tool: tool.name.clone(),
            path_template: tool.path_template.clone(),
            validation,
            built,
        })
    }
}

/// A JSON upstream answer with `body`, turned into the `tools/call` result as the fast lane writes it and as rmcp
/// sends it (before 2026-07-28), both parsed back; `None` when the fast lane's bytes are not JSON at all.
pub fn upstream_answer_both_ways(body: &[u8]) -> Option<(Value, Value)> {
    let response = crate::upstream::UpstreamResponse {
        status: 200,
        content_type: Some("application/json".to_owned()),
        www_authenticate: None,
        retry_after: None,
        body: bytes::Bytes::copy_from_slice(body),
        truncated: false,
    };
    let output = crate::tools::from_response(response, usize::MAX);
    let mut written = Vec::new();
    output.write_legacy_result(&mut written).ok()?;
    let fast_lane = serde_json::from_slice(&written).ok()?;
    let mut result = rmcp::model::ServerResult::CallToolResult(output.into_call_tool_result());
    result.strip_result_type_for_legacy_peer();
    result.strip_non_object_output_for_legacy_peer();
    Some((fast_lane, serde_json::to_value(result).ok()?))
}

/// Whether the fast lane's one pass over an answer (syntax check, compaction, escaping) takes `body` as JSON text;
/// the target holds it to `serde_json`'s own judgement.
pub fn json_pass_accepts(body: &[u8]) -> bool {
    crate::tools::write_compacted_as_string(body, &mut Vec::new()).is_some()
}
