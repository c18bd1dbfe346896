//! The methods protocol 2026-07-28 removed: a request that names that revision and one of
//! them is answered 404 with JSON-RPC -32601, as that revision answers any unknown method,
//! before the transport's own checks; the older revisions keep their handshake.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use serde_json::{Map, Value};

/// The revision without a handshake, and the `_meta` key that names a request's revision.
const STATELESS_REVISION: &str = "2026-07-28";
const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// What 2026-07-28 dropped, with what a client uses instead.
const REMOVED: &[(&str, &str)] = &[
    (
        "initialize",
        "requests carry their protocol version and capabilities in `_meta`; `server/discover` describes the server",
    ),
    ("ping", "any request shows the server is alive"),
    (
        "logging/setLevel",
        "a request asks for log messages with `_meta` `io.modelcontextprotocol/logLevel`",
    ),
    ("resources/subscribe", "use `subscriptions/listen`"),
    (
        "resources/unsubscribe",
        "cancel the `subscriptions/listen` request",
    ),
];

pub const METHOD_NOT_FOUND: i32 = -32601;

/// The refusal for a request (a message with an `id`) that names 2026-07-28, by the
/// `MCP-Protocol-Version` header or, without one, by its `_meta`, and a method that revision
/// removed; `None` for everything else, which the transport handles as before.
pub fn refusal(request: &HttpRequest, message: &Map<String, Value>) -> Option<(StatusCode, Value)> {
    let id = message.get("id")?;
    let method = message.get("method")?.as_str()?;
    let (_, instead) = REMOVED.iter().find(|(removed, _)| *removed == method)?;
    if requested_revision(request, message)? != STATELESS_REVISION {
        return None;
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": METHOD_NOT_FOUND,
            "message": format!(
                "Method not found: {method} was removed in protocol {STATELESS_REVISION} ({instead})"
            ),
            "data": {"method": method, "protocolVersion": STATELESS_REVISION},
        }
    });
    Some((StatusCode::NOT_FOUND, body))
}

/// The header wins: when it and `_meta` disagree, the transport reports the mismatch.
fn requested_revision<'a>(
    request: &'a HttpRequest,
    message: &'a Map<String, Value>,
) -> Option<&'a str> {
    if let Some(header) = request.headers().get("mcp-protocol-version") {
        return header.to_str().ok().map(str::trim);
    }
    message
        .get("params")?
        .get("_meta")?
        .get(PROTOCOL_VERSION_META)?
        .as_str()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    fn ping() -> Map<String, Value> {
        object(json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}))
    }

    #[test]
    fn refuses_a_removed_method_named_by_the_header() {
        let request = TestRequest::default()
            .insert_header(("MCP-Protocol-Version", "2026-07-28"))
            .to_http_request();

        let (status, body) = refusal(&request, &ping()).expect("refused");

        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["id"], 4);
        assert_eq!(body["error"]["code"], METHOD_NOT_FOUND);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|text| text.starts_with("Method not found: ping was removed")),
            "{body}"
        );
    }

    #[test]
    fn refuses_initialize_named_by_its_meta() {
        let request = TestRequest::default().to_http_request();
        let message = object(json!({
            "jsonrpc": "2.0", "id": "a", "method": "initialize",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
        }));

        let refused = refusal(&request, &message);

        assert!(refused.is_some_and(|(status, _)| status == StatusCode::NOT_FOUND));
    }

    #[test]
    fn leaves_the_older_revisions_their_handshake() {
        let request = TestRequest::default()
            .insert_header(("MCP-Protocol-Version", "2025-11-25"))
            .to_http_request();
        let message = object(json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
        }));

        assert!(refusal(&request, &message).is_none());
        assert!(refusal(&TestRequest::default().to_http_request(), &ping()).is_none());
    }

    #[test]
    fn leaves_methods_that_remain_and_notifications_alone() {
        let request = TestRequest::default()
            .insert_header(("MCP-Protocol-Version", "2026-07-28"))
            .to_http_request();
        let list = object(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
        let notification = object(json!({"jsonrpc": "2.0", "method": "ping"}));

        assert!(refusal(&request, &list).is_none());
        assert!(refusal(&request, &notification).is_none());
    }
}
