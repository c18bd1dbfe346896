//! Turning what the upstream answered into a tool result the model can use: JSON objects
//! as `structuredContent` plus compact text, other bodies as text, failures as concise
//! `isError` results — never SDK internals, never the credential.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

use super::errors::summarize_upstream_error_with_challenge;
use crate::upstream::{UpstreamError, UpstreamResponse};

pub fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
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
        return tool_error(summarize_upstream_error_with_challenge(
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
        let text = value.to_string();
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
