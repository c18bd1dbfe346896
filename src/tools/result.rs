//! Turning what the upstream answered into a tool result the model can use: JSON objects
//! as `structuredContent` plus compact text, other bodies as text, failures as concise
//! `isError` results — never SDK internals, never the credential.
//!
//! A JSON answer is checked for syntax without building a tree and kept as the upstream's
//! bytes ([`ToolOutput::UpstreamJson`]). The fast lane writes it in one pass that compacts
//! and escapes together (the text content), then the compact bytes raw (`structuredContent`);
//! only the rmcp transports parse it into a `serde_json::Value`, because rmcp's
//! `CallToolResult` holds one.

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
    /// A successful JSON answer from the upstream, as the upstream sent it.
    UpstreamJson(UpstreamJson),
}

/// Syntactically valid JSON text from the upstream (UTF-8 checked), as received: compacting
/// it waits until the answer is written, where it is done in the same pass as escaping.
#[derive(Debug, Clone)]
pub struct UpstreamJson {
    body: bytes::Bytes,
}

impl UpstreamJson {
    /// The compact text and whether it may be `structuredContent`, for the rmcp transports;
    /// the escaped copy the pass also writes is not needed there.
    fn compacted(&self) -> (std::borrow::Cow<'_, [u8]>, bool) {
        let scan = write_compacted_as_string(&self.body, &mut Vec::new());
        let is_object = scan.may_be_structured(&self.body);
        let compact = match scan.compacted {
            Some(compacted) => std::borrow::Cow::Owned(compacted),
            None => std::borrow::Cow::Borrowed(&self.body[..]),
        };
        (compact, is_object)
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
                let (compact, is_object) = json.compacted();
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
            Self::Built(result) => {
                let mut result = ServerResult::CallToolResult(result.clone());
                result.strip_result_type_for_legacy_peer();
                result.strip_non_object_output_for_legacy_peer();
                serde_json::to_writer(out, &result)
            }
            Self::UpstreamJson(json) => {
                // Room for the escaped text (typically an eighth more than the body) and, when
                // the answer may be an object, its raw copy, so the buffer is not moved as the
                // answer grows.
                let body = json.body.len();
                let may_be_object = json.body.trim_ascii_start().first() == Some(&b'{');
                out.reserve(body + body / 8 + if may_be_object { body } else { 0 } + 96);
                out.extend_from_slice(br#"{"content":[{"type":"text","text":"#);
                let scan = write_compacted_as_string(&json.body, out);
                out.extend_from_slice(b"}]");
                if scan.may_be_structured(&json.body) {
                    out.extend_from_slice(br#","structuredContent":"#);
                    out.extend_from_slice(scan.compacted.as_deref().unwrap_or(&json.body));
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
    // first); compacting valid JSON's bytes, when the answer is written, yields valid JSON text.
    if is_json
        && std::str::from_utf8(&response.body).is_ok()
        && serde_json::from_slice::<IgnoredAny>(&response.body).is_ok()
    {
        return ToolOutput::UpstreamJson(UpstreamJson {
            body: response.body,
        });
    }
    ToolOutput::Built(CallToolResult::success(vec![ContentBlock::text(
        String::from_utf8_lossy(&response.body).into_owned(),
    )]))
}

pub fn from_error(error: &UpstreamError) -> CallToolResult {
    tool_error(error.to_string())
}

/// Parses any JSON value, numbers included (which `IgnoredAny` skips unread), keeping nothing.
struct IgnoredValue;

impl<'de> serde::Deserialize<'de> for IgnoredValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Value is the reference for what rmcp accepts; it is only built for the rare answer
        // with an exponent or a very long number.
        Value::deserialize(deserializer).map(|_| Self)
    }
}

/// What the one pass over valid JSON text found besides the text it wrote.
struct Scan {
    /// The text with the whitespace between tokens removed (strings untouched), or `None`
    /// when there was none to remove.
    compacted: Option<Vec<u8>>,
    /// The text holds something `serde_json` checks only when it builds a value, so only a
    /// full parse can say whether rmcp would keep it as `structuredContent`: a number with an
    /// exponent or of 300 digits or more (it may not fit an f64), or a `\u` escape of a UTF-16
    /// surrogate (a lone one is refused).
    needs_value_check: bool,
    /// Nesting deeper than [`DEEPEST_STRUCTURED`].
    too_deep: bool,
}

/// The deepest nesting an answer may have and still travel as `structuredContent`. Clients'
/// JSON parsers stop at about 128 levels (`serde_json` does), and the JSON-RPC answer wraps
/// `structuredContent` in two more: an answer nested 126 deep, which rmcp would embed, makes
/// the whole answer unreadable to such a client. Real APIs nest a handful of levels; the text
/// content carries any answer in full.
const DEEPEST_STRUCTURED: u32 = 100;

impl Scan {
    /// Whether the compact text may travel as `structuredContent`: only an object may (before
    /// protocol 2026-07-28), only one nested at most [`DEEPEST_STRUCTURED`] levels, and only
    /// one serde_json, and so rmcp, reads as a value. A number beyond f64 (`1e400`) or a lone
    /// surrogate (`"\ud800"`) is valid JSON that it will not read. Any other answer travels as
    /// text only, on both paths.
    fn may_be_structured(&self, original: &[u8]) -> bool {
        let compact = self.compacted.as_deref().unwrap_or(original);
        compact.first() == Some(&b'{')
            && !self.too_deep
            && (!self.needs_value_check || serde_json::from_slice::<IgnoredValue>(compact).is_ok())
    }
}

/// Writes valid JSON text, compacted, to `out` as a JSON string — byte for byte what
/// `serde_json` writes for the compact text — and returns the compact text when it differs
/// from `json`. One pass does both: most of an answer is inside strings, which are copied as
/// runs found with `memchr`; between them only whitespace is dropped. Inside a JSON string
/// raw control characters are not allowed, so `"` and `\` are the only bytes to escape; the
/// whitespace outside strings is what compacting removes.
fn write_compacted_as_string(json: &[u8], out: &mut Vec<u8>) -> Scan {
    const LONGEST_SAFE_NUMBER: usize = 300;
    out.reserve(json.len() + json.len() / 8 + 2);
    out.push(b'"');
    let mut compacted: Option<Vec<u8>> = None;
    let mut needs_value_check = false;
    let mut deepest = 0u32;
    let mut digits = 0;
    let mut depth = 0u32;
    let mut at = 0;
    while let Some(&byte) = json.get(at) {
        match byte {
            b'"' => {
                digits = 0;
                let (end, has_surrogate) = copy_string(json, at, out, compacted.as_mut());
                needs_value_check |= has_surrogate;
                at = end;
            }
            b' ' | b'\n' | b'\r' | b'\t' => {
                digits = 0;
                compacted.get_or_insert_with(|| {
                    let mut copy = Vec::with_capacity(json.len());
                    copy.extend_from_slice(json.get(..at).unwrap_or_default());
                    copy
                });
                at += 1;
            }
            _ => {
                if byte.is_ascii_digit() {
                    digits += 1;
                    needs_value_check |= digits >= LONGEST_SAFE_NUMBER;
                } else {
                    // `e` after a digit is an exponent; in `true` and `false` it follows a letter.
                    needs_value_check |= matches!(byte, b'e' | b'E') && digits > 0;
                    digits = 0;
                    match byte {
                        b'{' | b'[' => {
                            depth += 1;
                            deepest = deepest.max(depth);
                        }
                        b'}' | b']' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
                out.push(byte);
                if let Some(compacted) = &mut compacted {
                    compacted.push(byte);
                }
                at += 1;
            }
        }
    }
    out.push(b'"');
    Scan {
        compacted,
        needs_value_check,
        too_deep: deepest > DEEPEST_STRUCTURED,
    }
}

/// Copies the string whose opening quote is at `at` to `out` escaped and to `compacted` as
/// it is; returns the index just past its closing quote, and whether the string holds a
/// `\u` escape of a UTF-16 surrogate (`\uD800`-`\uDFFF`).
fn copy_string(
    json: &[u8],
    at: usize,
    out: &mut Vec<u8>,
    mut compacted: Option<&mut Vec<u8>>,
) -> (usize, bool) {
    out.extend_from_slice(br#"\""#);
    let mut from = at + 1;
    let mut has_surrogate = false;
    loop {
        let rest = json.get(from..).unwrap_or_default();
        let Some(offset) = memchr::memchr2(b'"', b'\\', rest) else {
            // Unreachable for checked JSON; keeps the pass total on any input.
            out.extend_from_slice(rest);
            if let Some(compacted) = compacted.as_deref_mut() {
                compacted.extend_from_slice(json.get(at..).unwrap_or_default());
            }
            return (json.len(), has_surrogate);
        };
        let (run, special) = rest.split_at(offset);
        out.extend_from_slice(run);
        out.push(b'\\');
        out.push(special.first().copied().unwrap_or(b'"'));
        from += offset + 1;
        // A `\` escapes the next byte, which is one of `"\/bfnrtu`: a quote or backslash there
        // is escaped once more, anything else starts the next run.
        if special.first() == Some(&b'\\') {
            match json.get(from) {
                Some(&next @ (b'"' | b'\\')) => {
                    out.push(b'\\');
                    out.push(next);
                    from += 1;
                }
                Some(b'u') => {
                    has_surrogate |= matches!(
                        json.get(from + 1..from + 3),
                        Some([b'd' | b'D', b'8' | b'9' | b'a'..=b'f' | b'A'..=b'F'])
                    );
                }
                _ => {}
            }
            continue;
        }
        let end = from;
        if let Some(compacted) = compacted.as_deref_mut() {
            compacted.extend_from_slice(json.get(at..end).unwrap_or_default());
        }
        return (end, has_surrogate);
    }
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

        let compact = write_compacted_as_string(pretty, &mut Vec::new())
            .compacted
            .unwrap();

        assert_eq!(
            std::str::from_utf8(&compact).unwrap(),
            r#"{"name":"a b","quote":"say \"hi\" \\","list":[1,2]}"#
        );
        let reparsed: Value = serde_json::from_slice(&compact).unwrap();
        let original: Value = serde_json::from_slice(pretty).unwrap();
        assert_eq!(reparsed, original);
    }

    #[test]
    fn passes_an_already_compact_answer_through_without_a_copy() {
        let body = br#"{"name":"a b","list":[1,2],"end":"\\"}"#;
        let response = ok_response("application/json", std::str::from_utf8(body).unwrap());
        let sent = response.body.as_ptr();

        let output = from_response(response, 1 << 20);

        assert!(
            write_compacted_as_string(body, &mut Vec::new())
                .compacted
                .is_none()
        );
        let ToolOutput::UpstreamJson(json) = output else {
            panic!("not passed through: {output:?}");
        };
        assert_eq!(json.body.as_ptr(), sent, "the body was copied");
    }

    #[test]
    fn escapes_compact_json_exactly_as_serde_json_does() {
        let documents = [
            r#"{"a":"plain"}"#,
            r#"{"quote":"say \"hi\"","slash":"a\/b","backslash":"c:\\d"}"#,
            r#"{"controls":"\n\t\r\b\f\u0001\u001f","unicode":"é ✓ 😀 \u00e9"}"#,
            r#"[1,-2.5e10,true,false,null,"",{},[]]"#,
            r#""just a string with a \" and a \\""#,
            "{\"raw\":\"é✓😀\u{7f}\"}",
            "",
        ];
        for document in documents {
            let mut written = Vec::new();

            let scan = write_compacted_as_string(document.as_bytes(), &mut written);

            assert!(scan.compacted.is_none(), "{document}");

            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(document).unwrap(),
                "{document}"
            );
        }
    }

    #[test]
    fn compacts_and_escapes_in_one_pass_as_serde_json_would_in_two() {
        let documents = [
            (
                "{ \"a\" : \"x y\" ,\n\t\"b\":[ 1 , 2.5e3 , true ] }",
                r#"{"a":"x y","b":[1,2.5e3,true]}"#,
            ),
            (
                r#"  {"ends in a backslash": "c:\\", "then": "a \"quoted\" word" }  "#,
                r#"{"ends in a backslash":"c:\\","then":"a \"quoted\" word"}"#,
            ),
            (
                r#"[ "\\\"", "\u0022 \/", { } , [ ] , null ]"#,
                r#"["\\\"","\u0022 \/",{},[],null]"#,
            ),
            ("\r\n\"é ✓ 😀\"\r\n", "\"é ✓ 😀\""),
        ];
        for (document, compact) in documents {
            let mut written = Vec::new();

            let scan = write_compacted_as_string(document.as_bytes(), &mut written);

            let compacted = String::from_utf8(scan.compacted.unwrap()).unwrap();
            assert_eq!(compacted, compact, "{document}");
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(compact).unwrap(),
                "{document}"
            );
        }
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

    #[test]
    fn compacts_and_escapes_strings_that_end_in_escapes() {
        for (body, compact) in [
            (r#""a\"""#, r#""a\"""#),
            (r#"[ "a\\" , "\"" ]"#, r#"["a\\","\""]"#),
            (r#"{ "k\"" : "\\\"" }"#, r#"{"k\"":"\\\""}"#),
        ] {
            let mut written = Vec::new();

            let scan = write_compacted_as_string(body.as_bytes(), &mut written);

            let compacted = scan.compacted.as_deref().unwrap_or(body.as_bytes());
            assert_eq!(std::str::from_utf8(compacted).unwrap(), compact, "{body}");
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(compact).unwrap(),
                "{body}"
            );
        }
    }
}
