//! The internal API as tools: the catalog built once at start-up and the client that
//! calls it. Arguments are validated before any request is made.

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use serde_json::Value;

use super::catalog::{ApiTool, Catalog};
use super::{arguments, outcome, request};
use crate::upstream::UpstreamClient;

pub struct ApiTools {
    pub catalog: Catalog,
    pub client: UpstreamClient,
    pub max_response: usize,
}

impl ApiTools {
    pub async fn call(&self, tool: &ApiTool, arguments: Option<JsonObject>) -> CallToolResult {
        let arguments = Value::Object(arguments.unwrap_or_default());
        if let Err(error) = arguments::validate(tool, &arguments) {
            return outcome::tool_error(error.to_string());
        }
        let Value::Object(arguments) = arguments else {
            return outcome::tool_error("arguments must be a JSON object");
        };
        let request = match request::build_request(tool, &arguments) {
            Ok(request) => request,
            Err(error) => return outcome::tool_error(error.to_string()),
        };
        match self.client.send(&request).await {
            Ok(response) => outcome::from_response(response, self.max_response),
            Err(error) => outcome::from_error(&error),
        }
    }
}

/// The MCP definition of an API tool.
pub fn definition(tool: &ApiTool) -> Tool {
    let mut definition = Tool::new(
        tool.name.clone(),
        tool.description.clone(),
        Arc::clone(&tool.input_schema),
    );
    let hints = &tool.annotations;
    let mut annotations = ToolAnnotations::new().read_only(hints.read_only);
    // Read-only tools omit the write hints (they are meaningless there) to keep the list small.
    if !hints.read_only {
        annotations = annotations
            .destructive(hints.destructive)
            .idempotent(hints.idempotent);
    }
    definition.annotations = Some(annotations.open_world(hints.open_world));
    definition
}
