//! Dynamic mode: three tools front the whole catalog — `search_tools`, `describe_tool`
//! and `call_tool` — so a large API costs the model a few hundred tokens up front.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use super::api;
use crate::json::into_object;
use crate::openapi::ApiTool;

pub const SEARCH_TOOLS: &str = "search_tools";
pub const DESCRIBE_TOOL: &str = "describe_tool";
pub const CALL_TOOL: &str = "call_tool";

const DEFAULT_RESULTS: usize = 8;
const MAX_RESULTS: usize = 25;

fn object(value: Value) -> Arc<JsonObject> {
    Arc::new(into_object(value))
}

pub fn definitions(api_name: &str) -> Vec<Tool> {
    let mut search = Tool::new(
        SEARCH_TOOLS,
        format!(
            "Search the {api_name} operations available as tools. Returns ranked names with one-line summaries; then use describe_tool and call_tool."
        ),
        object(json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words describing the operation, e.g. \"list subscriptions\"."},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": DEFAULT_RESULTS}
            },
            "required": ["query"],
            "additionalProperties": false
        })),
    );
    search.annotations = Some(ToolAnnotations::new().read_only(true).open_world(false));
    let mut describe = Tool::new(
        DESCRIBE_TOOL,
        "Full description and input schema of one tool found with search_tools.",
        object(json!({
            "type": "object",
            "properties": {"name": {"type": "string", "description": "Tool name from search_tools."}},
            "required": ["name"],
            "additionalProperties": false
        })),
    );
    describe.annotations = Some(ToolAnnotations::new().read_only(true).open_world(false));
    let mut call = Tool::new(
        CALL_TOOL,
        "Call a tool found with search_tools, with arguments matching its describe_tool schema.",
        object(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "arguments": {"type": "object", "description": "Arguments per the tool's input schema."}
            },
            "required": ["name"],
            "additionalProperties": false
        })),
    );
    call.annotations = Some(ToolAnnotations::new().read_only(false).open_world(true));
    vec![search, describe, call]
}

/// `search_tools` over the tools this caller may use.
pub fn search<'a>(
    matches: impl Iterator<Item = (&'a ApiTool, u32)>,
    limit: usize,
) -> CallToolResult {
    let found: Vec<Value> = matches
        .take(limit.clamp(1, MAX_RESULTS))
        .map(|(tool, _score)| {
            json!({
                "name": tool.name,
                "summary": tool.summary_line(),
                "access": if tool.read_only { "read" } else { "write" },
            })
        })
        .collect();
    let text = if found.is_empty() {
        "no tool matches; try other words".to_string()
    } else {
        found
            .iter()
            .map(|entry| {
                format!(
                    "{} ({}): {}",
                    entry["name"].as_str().unwrap_or_default(),
                    entry["access"].as_str().unwrap_or_default(),
                    entry["summary"].as_str().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({ "tools": found }));
    result
}

pub fn describe(tool: &ApiTool) -> CallToolResult {
    let value = json!({
        "name": tool.name,
        "description": tool.description,
        "method": tool.method.as_str(),
        "path": tool.path_template,
        "inputSchema": Value::Object(tool.input_schema.as_ref().clone()),
        "annotations": api::definition(tool).annotations,
    });
    let mut result = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
    result.structured_content = Some(value);
    result
}

pub fn requested_limit(arguments: &JsonObject) -> usize {
    arguments
        .get("limit")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_RESULTS, |limit| {
            usize::try_from(limit).unwrap_or(MAX_RESULTS)
        })
}
