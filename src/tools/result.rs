//! Turning what the upstream answered into a tool result the model can use: JSON objects
//! as `structuredContent` plus compact text, other bodies as text, failures as concise
//! `isError` results — never SDK internals, never the credential.
//!
//! A JSON answer is kept as the upstream's bytes ([`ToolOutput::UpstreamJson`]) and never
//! made into a tree on the fast lane: one pass ([`super::json_pass`]) checks its syntax,
//! compacts it and escapes it (the text content) as the answer is written, then the compact
//! bytes follow raw (`structuredContent`). Only the rmcp transports parse it into a
//! `serde_json::Value`, because rmcp's `CallToolResult` holds one.

use rmcp::model::{CallToolResult, ContentBlock, ServerResult};
use serde_json::Value;

use super::json_pass::{Scan, write_compacted_as_string};
use super::upstream_errors::summarize_upstream_error;
use crate::outcome::CallOutcome;
use crate::upstream::{UpstreamError, UpstreamResponse};

/// What a tool call produced.
#[derive(Debug, Clone)]
pub enum ToolOutput {
    /// A result built in process: built-in tools, errors, non-JSON answers.
    Built(CallToolResult),
    /// A successful answer the upstream labelled JSON, as the upstream sent it.
    UpstreamJson(UpstreamJson),
}

/// A UTF-8 body the upstream labelled JSON, as received. Its syntax is checked in the pass
/// that writes it, which also compacts and escapes it: a body that turns out not to be JSON
/// is written as plain text instead, as any non-JSON answer is.
#[derive(Debug, Clone)]
pub struct UpstreamJson {
    body: bytes::Bytes,
}

impl UpstreamJson {
    /// The compact text and whether it may be `structuredContent`, for the rmcp transports
    /// (the escaped copy the pass also writes is not needed there); `None` if the body is not
    /// JSON.
    fn compacted(&self) -> Option<(std::borrow::Cow<'_, [u8]>, bool)> {
        let scan = write_compacted_as_string(&self.body, &mut Vec::new())?;
        let is_object = scan.may_be_structured(&self.body);
        let compact = match scan.compacted {
            Some(compacted) => std::borrow::Cow::Owned(compacted),
            None => std::borrow::Cow::Borrowed(&self.body[..]),
        };
        Some((compact, is_object))
    }

    /// The result for a body that proved not to be JSON: its text, as for any other answer.
    fn as_text(&self) -> CallToolResult {
        text_result(&self.body)
    }
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
                let Some((compact, is_object)) = json.compacted() else {
                    return json.as_text();
                };
                let structured = is_object
                    .then(|| serde_json::from_slice::<Value>(&compact).ok())
                    .flatten();
                let text = String::from_utf8_lossy(&compact).into_owned();
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = structured;
                result
            }
        }
    }

    /// Writes the `result` member of the JSON-RPC answer exactly as rmcp does for a peer on a
    /// protocol version before 2026-07-28 (no `resultType`).
    pub fn write_legacy_result(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Self::Built(result) => write_built_legacy_result(result.clone(), out),
            Self::UpstreamJson(json) => {
                // Room for the escaped text (typically an eighth more than the body) and, when
                // the answer may be an object, its raw copy, so the buffer is not moved as the
                // answer grows.
                let body = json.body.len();
                let may_be_object = json.body.trim_ascii_start().first() == Some(&b'{');
                out.reserve(body + body / 8 + if may_be_object { body } else { 0 } + 96);
                let start = out.len();
                out.extend_from_slice(br#"{"content":[{"type":"text","text":"#);
                let Some(scan) = write_compacted_as_string(&json.body, out) else {
                    out.truncate(start);
                    return write_built_legacy_result(json.as_text(), out);
                };
                write_rest_of_json_result(&scan, &json.body, out);
                Ok(())
            }
        }
    }
}

fn write_built_legacy_result(result: CallToolResult, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let mut result = ServerResult::CallToolResult(result);
    result.strip_result_type_for_legacy_peer();
    result.strip_non_object_output_for_legacy_peer();
    serde_json::to_writer(out, &result)
}

/// What follows the text content of a JSON answer: the compact bytes raw as
/// `structuredContent` when they may be, and the success flag.
fn write_rest_of_json_result(scan: &Scan, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"}]");
    if scan.may_be_structured(body) {
        out.extend_from_slice(br#","structuredContent":"#);
        out.extend_from_slice(scan.compacted.as_deref().unwrap_or(body));
    }
    out.extend_from_slice(br#","isError":false}"#);
}

fn text_result(body: &[u8]) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(
        String::from_utf8_lossy(body).into_owned(),
    )])
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
    // The syntax check waits for the pass that writes the answer, which does not look at
    // UTF-8: that is checked here, once.
    if is_json && std::str::from_utf8(&response.body).is_ok() {
        return ToolOutput::UpstreamJson(UpstreamJson {
            body: response.body,
        });
    }
    ToolOutput::Built(text_result(&response.body))
}

pub fn from_error(error: &UpstreamError) -> CallToolResult {
    tool_error(error.to_string())
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
    fn writes_an_answer_labelled_json_that_is_not_as_its_text() {
        for body in [
            "{\"a\": ",
            "{\"a\": 1}}",
            "[1, 2,]",
            "{\"raw\": \"tab\there\"}",
            "",
        ] {
            let output = from_response(ok_response("application/json", body), 1 << 20);

            let written = as_the_fast_lane_writes_it(&output);

            assert_eq!(written, as_rmcp_sends_it(output), "{body:?}");
            if !body.is_empty() {
                assert_eq!(written["content"][0]["text"], body, "{body:?}");
                assert!(written.get("structuredContent").is_none(), "{body:?}");
            }
        }
    }

    #[test]
    fn keeps_what_was_written_before_an_answer_that_is_not_json() {
        let output = from_response(ok_response("application/json", "{\"a\": [1,"), 1 << 20);
        let mut written = b"{\"result\":".to_vec();

        output.write_legacy_result(&mut written).unwrap();

        written.push(b'}');
        let answer: Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(answer["result"]["content"][0]["text"], "{\"a\": [1,");
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
    fn passes_an_already_compact_answer_through_without_a_copy() {
        let body = br#"{"name":"a b","list":[1,2],"end":"\\"}"#;
        let response = ok_response("application/json", std::str::from_utf8(body).unwrap());
        let sent = response.body.as_ptr();

        let output = from_response(response, 1 << 20);

        assert!(
            write_compacted_as_string(body, &mut Vec::new())
                .unwrap()
                .compacted
                .is_none()
        );
        let ToolOutput::UpstreamJson(json) = output else {
            panic!("not passed through: {output:?}");
        };
        assert_eq!(json.body.as_ptr(), sent, "the body was copied");
    }

    #[test]
    fn writes_what_only_a_full_parse_can_judge_as_rmcp_would() {
        let very_long = format!(r#"{{"long": 1{}}}"#, "0".repeat(400));
        for body in [
            r#"{"huge": 1e400}"#,
            r#"{"huge": -2.5E+999, "ok": true, "no": false}"#,
            r#"{"fine": 1e10, "flag": true}"#,
            &very_long,
            r#"{"a": 1, "a": 2}"#,
            r#"{"big": 123456789012345678901234567890}"#,
            r#"{"lone": "\ud800", "n": 1}"#,
            r#"{"trailing": "\uDC00"}"#,
            r#"{"pair": "\ud83d\ude00", "escaped quote at the end": "\""}"#,
            r#"{"not a surrogate": "\u00e9\\ud800"}"#,
            &deep_object(99),
            &deep_object(100),
            &deep_object(125),
            &deep_object(126),
            &deep_object(127),
            &deep_object(140),
        ] {
            let output = from_response(ok_response("application/json", body), 1 << 20);

            let mut written = Vec::new();
            output.write_legacy_result(&mut written).unwrap();
            let fast_lane: Value = serde_json::from_slice(&written).unwrap_or_else(|error| {
                panic!("{body}: {error}: {}", String::from_utf8_lossy(&written))
            });

            assert_eq!(fast_lane, as_rmcp_sends_it(output), "{body}");
        }
    }

    /// An object with `levels` levels of arrays inside: `{"a":[[...]]}`.
    fn deep_object(levels: usize) -> String {
        format!(r#"{{"a": {}{}}}"#, "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn keeps_an_object_as_structured_content_unless_too_deep_or_unreadable_to_serde_json() {
        let cases = [
            (r#"{"pair": "\ud83d\ude00"}"#, true),
            (r#"{"lone": "\ud800"}"#, false),
            (&deep_object(20), true),
            // The object and 99 arrays: 100 levels.
            (&deep_object(99), true),
            (&deep_object(100), false),
            // 127 levels: serde_json reads it, but not the answer around it.
            (&deep_object(126), false),
            (&deep_object(140), false),
            // Brackets inside a string are text, not nesting.
            (&format!(r#"{{"text": "{}"}}"#, "[{".repeat(200)), true),
            (r#"{"huge": 1e400}"#, false),
            (r#"{"fine": 1e10}"#, true),
        ];
        for (body, structured) in cases {
            let output = from_response(ok_response("application/json", body), 1 << 20);

            let written = as_the_fast_lane_writes_it(&output);

            assert_eq!(
                written.get("structuredContent").is_some(),
                structured,
                "{body}"
            );
            assert_eq!(
                written["content"][0]["text"].as_str().map(str::len),
                Some(body.replace(' ', "").len()),
                "{body}"
            );
        }
    }
}
