//! The tools a server offers — built-ins plus the internal API's catalog, statically or
//! through the dynamic trio — listed and called on behalf of a verified identity.

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::Value;

use super::api::{self, ApiTools};
use super::dynamic::{self, CALL_TOOL, DESCRIBE_TOOL, SEARCH_TOOLS};
use super::outcome::tool_error;
use super::whoami;
use crate::access::Identity;
use crate::config::ToolsMode;

/// A call that cannot be dispatched at all (as opposed to a tool that ran and failed,
/// which is a `CallToolResult` with `isError`).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("unknown tool: {0}")]
    UnknownTool(String),
}

const BUILTIN_NAMES: [&str; 4] = [whoami::WHOAMI, SEARCH_TOOLS, DESCRIBE_TOOL, CALL_TOOL];

pub struct ToolRegistry {
    mode: ToolsMode,
    api: Option<ApiTools>,
    listing: Arc<[Tool]>,
}

impl ToolRegistry {
    pub fn builtin_only() -> Self {
        Self {
            mode: ToolsMode::Static,
            api: None,
            listing: Arc::from(vec![whoami::definition()]),
        }
    }

    pub fn new(api: ApiTools, mode: ToolsMode, api_name: &str) -> Self {
        let mut listing = vec![whoami::definition()];
        match mode {
            ToolsMode::Static => {
                for tool in api.catalog.tools() {
                    if BUILTIN_NAMES.contains(&tool.name.as_str()) {
                        tracing::warn!(tool = %tool.name, "an API operation shares a built-in tool's name; the built-in wins");
                        continue;
                    }
                    listing.push(api::definition(tool));
                }
            }
            ToolsMode::Dynamic => listing.extend(dynamic::definitions(api_name)),
        }
        Self {
            mode,
            api: Some(api),
            listing: Arc::from(listing),
        }
    }

    /// The tools `identity` may see.
    pub fn list(&self, _identity: &Identity) -> Vec<Tool> {
        self.listing.to_vec()
    }

    pub fn len(&self) -> usize {
        self.listing.len()
    }

    pub fn is_empty(&self) -> bool {
        self.listing.is_empty()
    }

    pub fn api(&self) -> Option<&ApiTools> {
        self.api.as_ref()
    }

    pub async fn call(
        &self,
        identity: &Identity,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, CallError> {
        if name == whoami::WHOAMI {
            return Ok(whoami::call(identity));
        }
        let unknown = || CallError::UnknownTool(name.to_string());
        let api = self.api.as_ref().ok_or_else(unknown)?;
        match self.mode {
            ToolsMode::Static => {
                let tool = api.catalog.get(name).ok_or_else(unknown)?;
                Ok(api.call(tool, arguments).await)
            }
            ToolsMode::Dynamic => {
                let arguments = arguments.unwrap_or_default();
                match name {
                    SEARCH_TOOLS => {
                        let query = arguments
                            .get("query")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let limit = dynamic::requested_limit(&arguments);
                        Ok(dynamic::search(
                            api.catalog.search(query, usize::MAX).into_iter(),
                            limit,
                        ))
                    }
                    DESCRIBE_TOOL => {
                        let target = arguments
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        Ok(match api.catalog.get(target) {
                            Some(tool) => dynamic::describe(tool),
                            None => no_such_tool(target),
                        })
                    }
                    CALL_TOOL => {
                        let target = arguments
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let inner = match arguments.get("arguments") {
                            None | Some(Value::Null) => None,
                            Some(Value::Object(map)) => Some(map.clone()),
                            Some(_) => {
                                return Ok(tool_error(
                                    "call_tool: \"arguments\" must be an object",
                                ));
                            }
                        };
                        Ok(match api.catalog.get(target) {
                            Some(tool) => api.call(tool, inner).await,
                            None => no_such_tool(target),
                        })
                    }
                    _ => Err(unknown()),
                }
            }
        }
    }
}

fn no_such_tool(name: &str) -> CallToolResult {
    tool_error(format!(
        "no tool named {name:?}; use search_tools to find the right name"
    ))
}
