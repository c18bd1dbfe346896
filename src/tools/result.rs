//! Turning what the upstream answered into a tool result the model can use: JSON objects
//! as `structuredContent` plus compact text, other bodies as text, failures as concise
//! `isError` results — never SDK internals, never the credential.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

use super::upstream_errors::summarize_upstream_error;
use crate::outcome::CallOutcome;
use crate::upstream::{UpstreamError, UpstreamResponse};

pub fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// `ToolError` for a result flagged `isError`, `Ok` otherwise.
pub fn outcome_of(result: &CallToolResult) -> CallOutcome {
    if result.is_error == Some(true) {
        CallOutcome::ToolError
    } else {
        CallOutcome::Ok
    }
}

pub fn from_response(response: UpstreamResponse, max_response: usize) -> CallToolResult {
    if response.status == 429 {
        let when = response
            .retry_after
            .map_or_else(|| "in a minute".to_string(), |secs| format!("in {secs} s"));
        return tool_error(format!(
            "the upstream API is rate limiting requests (HTTP 429); retry {when}"
        ));
    }
    if !(200..300).contains(&response.status) {
        return tool_error(summarize_upstream_error(
            response.status,
            response.content_type.as_deref(),
            response.www_authenticate.as_deref(),
            &response.body,
        ));
    }
    if response.body.is_empty() {
        return CallToolResult::success(vec![ContentBlock::text(format!(
            "upstream returned HTTP {} with no content",
            response.status
        ))]);
    }
    if response.truncated {
        let text = String::from_utf8_lossy(&response.body);
        return CallToolResult::success(vec![ContentBlock::text(format!(
            "{text}\n[truncated: the response exceeded {max_response} bytes; narrow the request, e.g. with a smaller limit or filters]"
        ))]);
    }
    let is_json = response
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.contains("json"));
    if is_json && let Ok(value) = serde_json::from_slice::<Value>(&response.body) {
        // The body is valid JSON (so valid UTF-8): compacting its bytes is several times
        // cheaper than serialising the parsed value again.
        let text = compact_json(&response.body);
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        // structuredContent must be an object; arrays and scalars travel as text only.
        if value.is_object() {
            result.structured_content = Some(value);
        }
        return result;
    }
    CallToolResult::success(vec![ContentBlock::text(
        String::from_utf8_lossy(&response.body).into_owned(),
    )])
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
