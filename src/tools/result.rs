//! Turning what the upstream answered into a tool result the model can use: JSON objects
//! as `structuredContent` plus compact text, other bodies as text, failures as concise
//! `isError` results — never SDK internals, never the credential.
//!
//! A JSON answer is checked for syntax without building a tree and kept as its compacted
//! bytes ([`ToolOutput::UpstreamJson`]): the fast lane writes those bytes twice (escaped as
//! the text content, raw as `structuredContent`); only the rmcp transports parse them into a
//! `serde_json::Value`, because rmcp's `CallToolResult` holds one.

use rmcp::model::{CallToolResult, ContentBlock, ServerResult};
use serde::de::IgnoredAny;
use serde_json::Value;

use super::upstream_errors::summarize_upstream_error;
use crate::outcome::CallOutcome;
use crate::upstream::{UpstreamError, UpstreamResponse};

/// What a tool call produced.
#[derive(Debug, Clone)]
pub enum ToolOutput {
    /// A result built in process: built-in tools, errors, non-JSON answers.
    Built(CallToolResult),
    /// A successful JSON answer from the upstream, as compact JSON text.
    UpstreamJson(UpstreamJson),
}

/// Compact, syntactically valid JSON from the upstream.
#[derive(Debug, Clone)]
pub struct UpstreamJson {
    compact: String,
    /// Only an object may be `structuredContent` (before protocol 2026-07-28).
    is_object: bool,
}

impl ToolOutput {
    pub fn outcome(&self) -> CallOutcome {
        match self {
            Self::Built(result) if result.is_error == Some(true) => CallOutcome::ToolError,
            Self::Built(_) | Self::UpstreamJson(_) => CallOutcome::Ok,
        }
    }

    /// The result as rmcp's type, for the transports rmcp serves.
    pub fn into_call_tool_result(self) -> CallToolResult {
        match self {
            Self::Built(result) => result,
            Self::UpstreamJson(json) => {
                let structured = json
                    .is_object
                    .then(|| serde_json::from_str::<Value>(&json.compact).ok())
                    .flatten();
                let mut result = CallToolResult::success(vec![ContentBlock::text(json.compact)]);
                result.structured_content = structured;
                result
            }
        }
    }

    /// Writes the `result` member of the JSON-RPC answer exactly as rmcp does for a peer on a
    /// protocol version before 2026-07-28 (no `resultType`).
    pub fn write_legacy_result(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Self::Built(result) => {
                let mut result = ServerResult::CallToolResult(result.clone());
                result.strip_result_type_for_legacy_peer();
                result.strip_non_object_output_for_legacy_peer();
                serde_json::to_writer(out, &result)
            }
            Self::UpstreamJson(json) => {
                out.extend_from_slice(br#"{"content":[{"type":"text","text":"#);
                serde_json::to_writer(&mut *out, &json.compact)?;
                out.extend_from_slice(b"}]");
                if json.is_object {
                    out.extend_from_slice(br#","structuredContent":"#);
                    out.extend_from_slice(json.compact.as_bytes());
                }
                out.extend_from_slice(br#","isError":false}"#);
                Ok(())
            }
        }
    }
}

pub fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

pub fn from_response(response: UpstreamResponse, max_response: usize) -> ToolOutput {
    if response.status == 429 {
        let when = response
            .retry_after
            .map_or_else(|| "in a minute".to_string(), |secs| format!("in {secs} s"));
        return ToolOutput::Built(tool_error(format!(
            "the upstream API is rate limiting requests (HTTP 429); retry {when}"
        )));
    }
    if !(200..300).contains(&response.status) {
        return ToolOutput::Built(tool_error(summarize_upstream_error(
            response.status,
            response.content_type.as_deref(),
            response.www_authenticate.as_deref(),
            &response.body,
        )));
    }
    if response.body.is_empty() {
        return ToolOutput::Built(CallToolResult::success(vec![ContentBlock::text(format!(
            "upstream returned HTTP {} with no content",
            response.status
        ))]));
    }
    if response.truncated {
        let text = String::from_utf8_lossy(&response.body);
        return ToolOutput::Built(CallToolResult::success(vec![ContentBlock::text(format!(
            "{text}\n[truncated: the response exceeded {max_response} bytes; narrow the request, e.g. with a smaller limit or filters]"
        ))]));
    }
    let is_json = response
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.contains("json"));
    // A syntax check that builds no tree (it skips string contents, so UTF-8 is checked
    // first); compacting valid JSON's bytes yields valid JSON text.
    if is_json
        && std::str::from_utf8(&response.body).is_ok()
        && serde_json::from_slice::<IgnoredAny>(&response.body).is_ok()
    {
        let compact = compact_json(&response.body);
        // structuredContent must be an object; arrays and scalars travel as text only.
        let is_object = compact.starts_with('{');
        return ToolOutput::UpstreamJson(UpstreamJson { compact, is_object });
    }
    ToolOutput::Built(CallToolResult::success(vec![ContentBlock::text(
        String::from_utf8_lossy(&response.body).into_owned(),
    )]))
}

pub fn from_error(error: &UpstreamError) -> CallToolResult {
    tool_error(error.to_string())
}

/// Valid JSON text with the whitespace between tokens removed; strings are untouched.
fn compact_json(json: &[u8]) -> String {
    let mut compact = Vec::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            compact.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
            in_string = byte == b'"';
            compact.push(byte);
        }
    }
    String::from_utf8(compact)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_response(content_type: &str, body: &str) -> UpstreamResponse {
        UpstreamResponse {
            status: 200,
            content_type: Some(content_type.to_owned()),
            www_authenticate: None,
            retry_after: None,
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
            truncated: false,
        }
    }

    /// What rmcp sends for this output to a peer before 2026-07-28.
    fn as_rmcp_sends_it(output: ToolOutput) -> Value {
        let mut result = ServerResult::CallToolResult(output.into_call_tool_result());
        result.strip_result_type_for_legacy_peer();
        result.strip_non_object_output_for_legacy_peer();
        serde_json::to_value(result).unwrap()
    }

    fn as_the_fast_lane_writes_it(output: &ToolOutput) -> Value {
        let mut written = Vec::new();
        output.write_legacy_result(&mut written).unwrap();
        serde_json::from_slice(&written).unwrap()
    }

    #[test]
    fn writes_an_upstream_json_object_as_rmcp_would_without_parsing_it() {
        let body = r#"{ "items": [ {"id": "a\"b", "n": 1.5e3} ], "pagination": {"max_page": 1} }"#;

        let output = from_response(ok_response("application/json", body), 1 << 20);

        assert!(matches!(output, ToolOutput::UpstreamJson(_)));
        assert_eq!(
            as_the_fast_lane_writes_it(&output),
            as_rmcp_sends_it(output)
        );
    }

    #[test]
    fn keeps_a_json_array_as_text_only() {
        let output = from_response(ok_response("application/json", "[1, 2]"), 1 << 20);

        let written = as_the_fast_lane_writes_it(&output);

        assert_eq!(written, as_rmcp_sends_it(output));
        assert!(written.get("structuredContent").is_none());
        assert_eq!(written["content"][0]["text"], "[1,2]");
    }

    #[test]
    fn treats_invalid_json_as_text() {
        let output = from_response(ok_response("application/json", "{\"a\": "), 1 << 20);

        assert!(matches!(output, ToolOutput::Built(_)));
        assert_eq!(
            as_the_fast_lane_writes_it(&output),
            as_rmcp_sends_it(output)
        );
    }

    #[test]
    fn writes_a_built_error_result_as_rmcp_would() {
        let output = ToolOutput::Built(tool_error("no tool named \"x\""));

        assert_eq!(output.outcome(), CallOutcome::ToolError);
        assert_eq!(
            as_the_fast_lane_writes_it(&output),
            as_rmcp_sends_it(output)
        );
    }

    #[test]
    fn compacts_json_without_touching_strings() {
        let pretty = br#"{
            "name": "a b",
            "quote": "say \"hi\" \\",
            "list": [ 1, 2 ]
        }"#;

        let compact = compact_json(pretty);

        assert_eq!(
            compact,
            r#"{"name":"a b","quote":"say \"hi\" \\","list":[1,2]}"#
        );
        let reparsed: Value = serde_json::from_str(&compact).unwrap();
        let original: Value = serde_json::from_slice(pretty).unwrap();
        assert_eq!(reparsed, original);
    }
}
