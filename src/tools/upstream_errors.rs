//! Summarising an upstream error response into one short message a model can act on.
//!
//! Understands Polar's shapes (`{"error": "...", "detail": "..."}`, 422 `{"detail": [{"loc": [...], "msg": ...}]}`,
//! RFC 6750 `insufficient_scope`), RFC 7807 problem documents and plain `message` bodies, and falls back to a
//! trimmed excerpt of the body. The result never exceeds [`MAX_SUMMARY_CHARS`], never quotes request headers (it
//! is only given the response), and masks anything that looks like a bearer token or a Polar token should an
//! upstream reflect one.

use serde_json::Value;

/// Upper bound for a summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 500;

/// How many 422 field errors are listed.
const MAX_FIELD_ERRORS: usize = 5;

/// Longest excerpt of a body we could not interpret.
const MAX_EXCERPT_CHARS: usize = 300;

/// Summarises an upstream error response. `content_type` is the response's `Content-Type`, if any; the
/// `WWW-Authenticate` challenge is read too, because Polar (like RFC 6750) names the scopes an operation
/// needs in its `scope="…"` attribute rather than in the body.
pub fn summarize_upstream_error(
    status: u16,
    content_type: Option<&str>,
    www_authenticate: Option<&str>,
    body: &[u8],
) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .map(|reason| format!(" {reason}"))
        .unwrap_or_default();
    let head = format!("upstream returned HTTP {status}{reason}");
    let json = parse_json_body(content_type, body);
    let error_code = json
        .as_ref()
        .and_then(|json| json.get("error"))
        .and_then(Value::as_str);
    let challenge_error =
        www_authenticate.and_then(|challenge| challenge_attribute(challenge, "error"));

    let explanation = if error_code == Some("insufficient_scope")
        || challenge_error.as_deref() == Some("insufficient_scope")
    {
        let scopes = json.as_ref().and_then(scopes_from_body).or_else(|| {
            www_authenticate.and_then(|challenge| challenge_attribute(challenge, "scope"))
        });
        match scopes {
            Some(scopes) => format!(
                "the upstream token lacks scope for this operation; it needs one of: {}. Ask the operator to grant \
                 it; retrying will not help",
                scopes.split_whitespace().collect::<Vec<_>>().join(", ")
            ),
            None => "the upstream token lacks scope for this operation. Ask the operator to grant it; retrying will \
                     not help"
                .to_owned(),
        }
    } else {
        let detail = json
            .as_ref()
            .and_then(describe_json_body)
            .or_else(|| excerpt(content_type, body));
        let hint = match status {
            401 => {
                Some("the upstream rejected the configured credential; the operator must check it")
            }
            404 => Some(
                "not found: check the id, it may be wrong, deleted or belong to another account",
            ),
            429 => Some("rate limited by the upstream; wait before retrying"),
            500..=599 => Some("the upstream failed; retrying later may help"),
            _ => None,
        };
        match (hint, detail) {
            (Some(hint), Some(detail)) => format!("{hint} ({detail})"),
            (Some(hint), None) => hint.to_owned(),
            (None, Some(detail)) => detail,
            (None, None) => "no details in the response body".to_owned(),
        }
    };
    cap(
        &redact_secrets(&format!("{head}: {explanation}")),
        MAX_SUMMARY_CHARS,
    )
}

fn parse_json_body(content_type: Option<&str>, body: &[u8]) -> Option<Value> {
    let trimmed = body.trim_ascii();
    let declared_json = content_type.is_some_and(|media| {
        let essence = media
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        essence == "application/json" || essence.ends_with("+json")
    });
    let looks_json = trimmed
        .first()
        .is_some_and(|byte| matches!(byte, b'{' | b'['));
    if !(declared_json || looks_json) {
        return None;
    }
    serde_json::from_slice(trimmed).ok()
}

/// Reads the useful part of a JSON error body, or `None` when nothing recognisable is in it.
fn describe_json_body(json: &Value) -> Option<String> {
    let detail = json.get("detail");
    if let Some(Value::Array(items)) = detail
        && let Some(fields) = describe_validation_errors(items)
    {
        return Some(fields);
    }
    let error = json.get("error").and_then(|error| {
        error.as_str().map(str::to_owned).or_else(|| {
            error
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    });
    let message = [
        detail,
        json.get("error_description"),
        json.get("message"),
        json.get("title"),
    ]
    .into_iter()
    .flatten()
    .find_map(|value| match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Null | Value::String(_) => None,
        other => Some(other.to_string()),
    });
    match (error, message) {
        (Some(error), Some(message)) if error != message => Some(format!("{error}: {message}")),
        (Some(only), _) | (None, Some(only)) => Some(only),
        (None, None) => None,
    }
}

/// Pydantic/FastAPI validation errors: `loc` joined like our argument paths (`body.prices[0].amount`) plus `msg`.
/// The `input` member is never quoted: it echoes the request and may be large.
fn describe_validation_errors(items: &[Value]) -> Option<String> {
    let described: Vec<String> = items
        .iter()
        .filter_map(|item| {
            let message = item.get("msg").and_then(Value::as_str)?;
            let location = item
                .get("loc")
                .and_then(Value::as_array)
                .map(|segments| {
                    let mut path = String::new();
                    for segment in segments {
                        match segment {
                            Value::Number(index) => path.push_str(&format!("[{index}]")),
                            Value::String(name) => {
                                if !path.is_empty() {
                                    path.push('.');
                                }
                                path.push_str(name);
                            }
                            _ => {}
                        }
                    }
                    path
                })
                .filter(|path| !path.is_empty());
            Some(match location {
                Some(location) => format!("{location}: {message}"),
                None => message.to_owned(),
            })
        })
        .collect();
    if described.is_empty() {
        return None;
    }
    let mut summary = described
        .iter()
        .take(MAX_FIELD_ERRORS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if described.len() > MAX_FIELD_ERRORS {
        summary.push_str(&format!(
            " (and {} more)",
            described.len() - MAX_FIELD_ERRORS
        ));
    }
    Some(summary)
}

fn scopes_from_body(json: &Value) -> Option<String> {
    ["scope", "scopes", "required_scopes"]
        .iter()
        .find_map(|key| match json.get(key)? {
            Value::String(scopes) if !scopes.trim().is_empty() => Some(scopes.clone()),
            Value::Array(scopes) => {
                let joined: Vec<&str> = scopes.iter().filter_map(Value::as_str).collect();
                (!joined.is_empty()).then(|| joined.join(" "))
            }
            _ => None,
        })
}

/// Reads `name="value"` (or `name=value`) from a `WWW-Authenticate` challenge.
fn challenge_attribute(challenge: &str, name: &str) -> Option<String> {
    let lower = challenge.to_ascii_lowercase();
    let mut search_from = 0;
    while let Some(found) = lower[search_from..].find(name) {
        let start = search_from + found;
        search_from = start + name.len();
        let preceded_ok =
            start == 0 || matches!(lower.as_bytes().get(start - 1), Some(b' ' | b',' | b'\t'));
        let rest = challenge[start + name.len()..].trim_start();
        let Some(value) = rest.strip_prefix('=').map(str::trim_start) else {
            continue;
        };
        if !preceded_ok {
            continue;
        }
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or_default(),
            None => value.split([',', ' ']).next().unwrap_or_default(),
        };
        return Some(value.to_owned()).filter(|value| !value.is_empty());
    }
    None
}

/// A readable excerpt of a non-JSON body: tags stripped from HTML, whitespace collapsed, control characters dropped.
fn excerpt(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let is_html = content_type.is_some_and(|media| media.to_ascii_lowercase().contains("html"))
        || text.trim_start().starts_with('<');
    let visible = if is_html {
        strip_tags(&text)
    } else {
        text.into_owned()
    };
    let collapsed = visible
        .split(|character: char| character.is_whitespace() || character.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!collapsed.is_empty()).then(|| cap(&collapsed, MAX_EXCERPT_CHARS))
}

fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for character in html.chars() {
        match character {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(character),
            _ => {}
        }
    }
    text
}

/// Masks `Bearer <token>` and Polar-style tokens (`polar_oat_…`, `polar_pat_…`) wherever they appear.
fn redact_secrets(text: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut mask_next = false;
    for word in text.split(' ') {
        if mask_next && !word.is_empty() {
            words.push("[redacted]".to_owned());
            mask_next = false;
            continue;
        }
        let lower = word.to_ascii_lowercase();
        if lower.trim_matches(|c: char| !c.is_ascii_alphanumeric()) == "bearer" {
            mask_next = true;
            words.push(word.to_owned());
        } else if let Some(position) = lower.find("polar_") {
            words.push(format!("{}[redacted]", &word[..position]));
        } else {
            words.push(word.to_owned());
        }
    }
    words.join(" ")
}

fn cap(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars.saturating_sub(1)) {
        Some((cut, _)) if text.chars().count() > max_chars => format!("{}…", &text[..cut]),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn lists_the_fields_of_a_polar_validation_error() {
        let body = br#"{"error":"RequestValidationError","detail":[
            {"loc":["body","price_amount"],"msg":"Input should be greater than 0","type":"greater_than","input":-5},
            {"loc":["body","prices",0,"currency"],"msg":"Field required","type":"missing"}]}"#;

        let summary = summarize_upstream_error(422, JSON, None, body);

        assert_eq!(
            summary,
            "upstream returned HTTP 422 Unprocessable Entity: body.price_amount: Input should be greater than 0; \
             body.prices[0].currency: Field required"
        );
    }

    #[test]
    fn caps_a_long_list_of_validation_errors() {
        let items: Vec<String> = (0..9)
            .map(|n| format!(r#"{{"loc":["query","f{n}"],"msg":"bad"}}"#))
            .collect();
        let body = format!(r#"{{"detail":[{}]}}"#, items.join(","));

        let summary = summarize_upstream_error(422, JSON, None, body.as_bytes());

        assert!(summary.ends_with("query.f4: bad (and 4 more)"), "{summary}");
    }

    #[test]
    fn explains_a_missing_scope_with_the_scopes_from_the_challenge() {
        let body = br#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token."}"#;
        let challenge = r#"Bearer realm="polar", error="insufficient_scope", scope="discounts:read discounts:write""#;

        let summary = summarize_upstream_error(403, JSON, Some(challenge), body);

        assert_eq!(
            summary,
            "upstream returned HTTP 403 Forbidden: the upstream token lacks scope for this operation; it needs one of: \
             discounts:read, discounts:write. Ask the operator to grant it; retrying will not help"
        );
    }

    #[test]
    fn explains_a_missing_scope_named_in_the_body() {
        let body = br#"{"error":"insufficient_scope","scope":"products:write"}"#;

        let summary = summarize_upstream_error(403, JSON, None, body);

        assert!(
            summary.contains("lacks scope for this operation; it needs one of: products:write"),
            "{summary}"
        );
    }

    #[test]
    fn explains_a_missing_scope_without_naming_scopes_when_none_are_given() {
        let summary =
            summarize_upstream_error(403, JSON, None, br#"{"error":"insufficient_scope"}"#);

        assert!(
            summary.contains("the upstream token lacks scope for this operation. Ask"),
            "{summary}"
        );
    }

    #[test]
    fn reports_a_polar_not_found() {
        let summary = summarize_upstream_error(
            404,
            JSON,
            None,
            br#"{"error":"ResourceNotFound","detail":"Not found"}"#,
        );

        assert_eq!(
            summary,
            "upstream returned HTTP 404 Not Found: not found: check the id, it may be wrong, deleted or belong to \
             another account (ResourceNotFound: Not found)"
        );
    }

    #[test]
    fn reports_a_rate_limit_with_an_empty_body() {
        let summary = summarize_upstream_error(429, None, None, b"");

        assert_eq!(
            summary,
            "upstream returned HTTP 429 Too Many Requests: rate limited by the upstream; wait before retrying"
        );
    }

    #[test]
    fn reports_a_polar_domain_error() {
        let body = br#"{"error":"AlreadyCanceledSubscription","detail":"This subscription is already canceled."}"#;

        let summary = summarize_upstream_error(403, JSON, None, body);

        assert_eq!(
            summary,
            "upstream returned HTTP 403 Forbidden: AlreadyCanceledSubscription: This subscription is already canceled."
        );
    }

    #[test]
    fn reads_a_problem_json_document() {
        let body = br#"{"type":"about:blank","title":"Conflict","status":409,"detail":"Slug already taken"}"#;

        let summary = summarize_upstream_error(409, Some("application/problem+json"), None, body);

        assert_eq!(
            summary,
            "upstream returned HTTP 409 Conflict: Slug already taken"
        );
    }

    #[test]
    fn falls_back_to_a_short_excerpt_of_an_html_page() {
        let page = format!(
            "<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
            "<p>oops</p>".repeat(500)
        );

        let summary = summarize_upstream_error(502, Some("text/html"), None, page.as_bytes());

        assert!(summary.starts_with("upstream returned HTTP 502 Bad Gateway: the upstream failed; retrying later may help (502 Bad Gateway oops"), "{summary}");
        assert!(summary.chars().count() <= MAX_SUMMARY_CHARS);
    }

    #[test]
    fn never_returns_more_than_the_cap_even_for_a_huge_body() {
        let body = "x".repeat(5_000_000);

        let summary = summarize_upstream_error(500, Some("text/plain"), None, body.as_bytes());

        assert!(
            summary.chars().count() <= MAX_SUMMARY_CHARS,
            "{}",
            summary.len()
        );
    }

    #[test]
    fn masks_tokens_an_upstream_reflects() {
        let body = br#"{"error":"Unauthorized","detail":"token Bearer polar_oat_abc123 is invalid; also polar_pat_zzz"}"#;

        let summary = summarize_upstream_error(401, JSON, None, body);

        assert!(
            !summary.contains("abc123") && !summary.contains("zzz"),
            "{summary}"
        );
        assert!(summary.contains("Bearer [redacted]"), "{summary}");
    }

    #[test]
    fn survives_invalid_json_and_binary_bodies() {
        let summary = summarize_upstream_error(500, JSON, None, b"{\"error\": \xff\xfe");

        assert!(
            summary.starts_with(
                "upstream returned HTTP 500 Internal Server Error: the upstream failed"
            ),
            "{summary}"
        );
    }

    #[test]
    fn handles_an_unknown_status_code() {
        let summary = summarize_upstream_error(599, None, None, b"");

        assert!(
            summary.starts_with("upstream returned HTTP 599"),
            "{summary}"
        );
    }
}
