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

pub const PARSE_ERROR: i32 = -32700;
pub const INVALID_REQUEST: i32 = -32600;
pub const INVALID_PARAMS: i32 = -32602;

/// The largest body accepted, in bytes (`server.max_body`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub async fn validate_jsonrpc(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if request.method() != Method::POST {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
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
