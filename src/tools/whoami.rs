//! The built-in `whoami` tool: the verified identity, as Access presented it. It is how an
//! operator checks the whole Access setup end to end.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, Tool, ToolAnnotations};
use serde_json::json;

use crate::access::Identity;
use crate::json::into_object;

pub const WHOAMI: &str = "whoami";

pub fn definition() -> Tool {
    let schema =
        into_object(json!({"type": "object", "properties": {}, "additionalProperties": false}));
    let mut tool = Tool::new(
        WHOAMI,
        "Show the caller's verified Cloudflare Access identity: email or service-token name, \
         sub, country, token expiry and the matched audience.",
        Arc::new(schema),
    );
    tool.annotations = Some(
        ToolAnnotations::with_title("Who am I")
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    );
    tool
}

pub fn call(identity: &Identity) -> CallToolResult {
    let value = json!({
        "kind": identity.kind,
        "email": identity.email,
        "service_token": identity.common_name,
        "sub": identity.sub,
        "country": identity.country,
        "expires_at": identity.expires_at,
        "audience": identity.audience,
        "groups": identity.groups,
    });
    let text = value.to_string();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}
