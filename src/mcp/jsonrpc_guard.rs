//! Checks each POST to `/mcp` is well-formed JSON-RPC before rmcp sees it, so malformed
//! JSON, wrong shapes and bad parameters get the error codes the JSON-RPC and MCP
//! specifications name (-32700, -32600, -32602) instead of a transport-level 415.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};
use bytes::BytesMut;
use futures::StreamExt;
use serde_json::{Value, json};

use super::fast_lane::{self, FastLane};
use super::removed_methods;

pub const PARSE_ERROR: i32 = -32700;
pub const INVALID_REQUEST: i32 = -32600;
pub const INVALID_PARAMS: i32 = -32602;

/// The largest body accepted, in bytes (`server.max_body`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub async fn validate_jsonrpc(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if request.method() != Method::POST {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    accept_any_as_both(request.headers_mut());
    let limit = request
        .app_data::<web::Data<BodyLimit>>()
        .map_or(4 * 1024 * 1024, |limit| limit.0);
    let (http_request, mut payload) = request.into_parts();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            let response = HttpResponse::PayloadTooLarge().json(json!({
                "jsonrpc": "2.0", "id": null,
                "error": {"code": INVALID_REQUEST, "message": format!("request body exceeds {limit} bytes")}
            }));
            return Ok(ServiceResponse::new(http_request, response));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let message = match check_message(&body) {
        Ok(message) => message,
        Err((id, code, message)) => {
            let response = HttpResponse::build(StatusCode::BAD_REQUEST).json(json!({
                "jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}
            }));
            return Ok(ServiceResponse::new(http_request, response));
        }
    };
    if let Some((status, body)) = message
        .as_object()
        .and_then(|object| removed_methods::refusal(&http_request, object))
    {
        let response = HttpResponse::build(status).json(body);
        return Ok(ServiceResponse::new(http_request, response));
    }
    if let Some(lane) = http_request.app_data::<web::Data<FastLane>>()
        && let Some(plan) = fast_lane::plan(&http_request, message)
        && let Some(response) = fast_lane::answer(lane, &http_request, plan).await
    {
        return Ok(ServiceResponse::new(http_request, response));
    }
    let request = ServiceRequest::from_parts(http_request, Payload::from(body));
    next.call(request)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// `Accept: */*` (curl's default) accepts JSON and event streams, but rmcp insists on seeing
/// both named; say so for the client, so it is served instead of refused with 406.
fn accept_any_as_both(headers: &mut actix_web::http::header::HeaderMap) {
    use actix_web::http::header::{ACCEPT, HeaderValue};
    let accepts_anything = headers.get_all(ACCEPT).any(|value| {
        value.to_str().is_ok_and(|value| {
            value.split(',').any(|range| {
                let mut parts = range.split(';');
                let essence = parts.next().unwrap_or_default().trim();
                // An explicit zero weight refuses the range.
                let refused = parts.any(|parameter| {
                    parameter
                        .trim()
                        .strip_prefix("q=")
                        .is_some_and(|weight| weight.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
                });
                essence == "*/*" && !refused
            })
        })
    });
    if accepts_anything {
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
    }
}

/// The id to answer with, the JSON-RPC error code and the message.
pub type Problem = (Value, i32, String);

/// The message, parsed, when it is one well-formed JSON-RPC object with the parameters its
/// method needs.
pub fn check_message(body: &[u8]) -> Result<Value, Problem> {
    let message: Value = serde_json::from_slice(body)
        .map_err(|error| (Value::Null, PARSE_ERROR, format!("Parse error: {error}")))?;
    let Value::Object(object) = &message else {
        return Err((
            Value::Null,
            INVALID_REQUEST,
            "Invalid Request: a message must be one JSON-RPC object (batches are not supported)"
                .into(),
        ));
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    let invalid = |text: &str| {
        (
            id.clone(),
            INVALID_REQUEST,
            format!("Invalid Request: {text}"),
        )
    };
    if let Some(name) = repeated_member(body) {
        return Err(invalid(&format!("the member {name:?} appears twice")));
    }
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("\"jsonrpc\" must be \"2.0\""));
    }
    if !matches!(id, Value::Null | Value::String(_) | Value::Number(_)) {
        return Err(invalid("\"id\" must be a string or a number"));
    }
    let Some(method) = object.get("method") else {
        let is_response = object.contains_key("id")
            && (object.contains_key("result") || object.contains_key("error"));
        return if is_response {
            Ok(message)
        } else {
            Err(invalid("a request needs a \"method\""))
        };
    };
    let Some(method) = method.as_str() else {
        return Err(invalid("\"method\" must be a string"));
    };
    let params = object.get("params");
    if params.is_some_and(|params| !params.is_object()) {
        return Err((
            id,
            INVALID_PARAMS,
            "Invalid params: \"params\" must be an object".into(),
        ));
    }
    check_params(method, params)
        .map_err(|problem| (id, INVALID_PARAMS, format!("Invalid params: {problem}")))?;
    Ok(message)
}

/// A member name that appears twice in the message object or in its `params` object. JSON allows it, and parsers
/// disagree on what it means: a `Value` keeps the last one (what this guard and the fast lane read), rmcp's typed
/// messages refuse the body, and a lenient reader may keep the first. Such a message is refused on both transports,
/// so every reader sees one message. Deeper objects (tool arguments) are read alike everywhere: last one wins.
pub fn repeated_member(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Repeated>(body).ok()?.0
}

/// The first repeated member name of an object, and of its `params` member; anything else is skipped.
struct Repeated(Option<String>);

impl<'de> serde::Deserialize<'de> for Repeated {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RepeatedVisitor {
            look_into_params: true,
        })
    }
}

/// `params`, looked into without looking further.
struct RepeatedInParams(Option<String>);

impl<'de> serde::Deserialize<'de> for RepeatedInParams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(RepeatedVisitor {
                look_into_params: false,
            })
            .map(|found| RepeatedInParams(found.0))
    }
}

struct RepeatedVisitor {
    look_into_params: bool,
}

impl<'de> serde::de::Visitor<'de> for RepeatedVisitor {
    type Value = Repeated;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Repeated, A::Error> {
        let mut seen = std::collections::HashSet::new();
        let mut repeated = None;
        while let Some(name) = map.next_key::<String>()? {
            if self.look_into_params && name == "params" {
                let inner = map.next_value::<RepeatedInParams>()?;
                repeated = repeated.or(inner.0.map(|inner| format!("params.{inner}")));
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
            if !seen.insert(name.clone()) {
                repeated = repeated.or(Some(name));
            }
        }
        Ok(Repeated(repeated))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Repeated, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Repeated(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }

    fn visit_unit<E>(self) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }
}

/// The parameters the methods tunnelgate serves require; others are left to rmcp.
fn check_params(method: &str, params: Option<&Value>) -> Result<(), String> {
    let field = |name: &str| params.and_then(|params| params.get(name));
    match method {
        "tools/call" => {
            if !field("name").is_some_and(Value::is_string) {
                return Err("tools/call needs \"name\" (string)".into());
            }
            if field("arguments")
                .is_some_and(|arguments| !arguments.is_object() && !arguments.is_null())
            {
                return Err("tools/call \"arguments\" must be an object".into());
            }
            Ok(())
        }
        "initialize" => {
            if !field("protocolVersion").is_some_and(Value::is_string) {
                return Err("initialize needs \"protocolVersion\" (string)".into());
            }
            if !field("capabilities").is_some_and(Value::is_object) {
                return Err("initialize needs \"capabilities\" (object)".into());
            }
            if !field("clientInfo").is_some_and(Value::is_object) {
                return Err("initialize needs \"clientInfo\" (object)".into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(body: &str) -> Option<i32> {
        check_message(body.as_bytes())
            .err()
            .map(|(_, code, _)| code)
    }

    #[test]
    fn classifies_malformed_messages() {
        assert_eq!(code_of("{not json"), Some(PARSE_ERROR));
        assert_eq!(code_of("[]"), Some(INVALID_REQUEST));
        assert_eq!(code_of(r#"{"hello":"world"}"#), Some(INVALID_REQUEST));
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1}"#),
            Some(INVALID_REQUEST)
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#),
            Some(INVALID_REQUEST)
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"nme":"x"}}"#),
            Some(INVALID_PARAMS)
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}"#),
            Some(INVALID_PARAMS)
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#),
            Some(INVALID_PARAMS)
        );
    }

    #[test]
    fn refuses_a_member_named_twice_in_the_message_or_its_params() {
        // The fast lane would answer these (its `Value` keeps the last member); rmcp refuses the body.
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"a"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
        ] {
            let (_, code, message) = check_message(body.as_bytes()).unwrap_err();

            assert_eq!(code, INVALID_REQUEST, "{body}");
            assert!(message.contains("appears twice"), "{message}");
        }
    }

    #[test]
    fn reads_repeated_names_deeper_than_params_as_the_last_one_like_rmcp() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}"#;

        let message = check_message(body.as_bytes()).unwrap();

        assert_eq!(message["params"]["arguments"]["x"], 2);
    }

    #[test]
    fn lets_well_formed_messages_through() {
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            None
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            None
        );
        assert_eq!(code_of(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), None);
        assert_eq!(
            code_of(
                r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"whoami"}}"#
            ),
            None
        );
    }
}
