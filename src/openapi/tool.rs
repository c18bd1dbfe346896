//! One operation served as an MCP tool: its name, prose, input schema, and how each argument
//! maps onto the upstream request.

use std::sync::Arc;

use http::Method;
use serde_json::{Map, Value};

pub use super::operation::ParamStyle;

/// Where an argument goes in the upstream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamLocation {
    Path,
    Query,
    Header,
}

/// How one tool argument maps onto the upstream request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamBinding {
    /// The property name in `inputSchema`.
    pub arg_name: String,
    /// The name on the wire (path variable, query key, header name).
    pub wire_name: String,
    pub location: ParamLocation,
    pub style: ParamStyle,
    pub explode: bool,
    pub required: bool,
}

/// How the `body` argument is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyBinding {
    pub required: bool,
    pub content_type: String,
}

/// MCP tool annotations (hints for clients, never trusted for security).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolHints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

impl ToolHints {
    pub(super) fn for_method(method: &Method) -> Self {
        let read_only = matches!(*method, Method::GET | Method::HEAD);
        Self {
            read_only,
            destructive: *method == Method::DELETE,
            // RFC 9110 §9.2.2: PUT and DELETE (and the safe methods) are idempotent.
            idempotent: read_only || matches!(*method, Method::PUT | Method::DELETE),
            open_world: true,
        }
    }
}

/// One operation served as an MCP tool.
#[derive(Debug, Clone)]
pub struct ApiTool {
    pub name: String,
    /// The operation's `summary`, used as the human-facing title.
    pub title: Option<String>,
    pub description: String,
    pub method: Method,
    /// The OpenAPI path, e.g. `/v1/products/{id}`.
    pub path_template: String,
    pub tags: Vec<String>,
    pub read_only: bool,
    pub input_schema: Arc<Map<String, Value>>,
    pub params: Vec<ParamBinding>,
    pub body: Option<BodyBinding>,
    pub annotations: ToolHints,
    /// Scopes the document lists for the operation (under the required scheme when one is set): what the
    /// upstream token needs for this tool.
    pub scopes: Vec<String>,
}

impl ApiTool {
    /// The first line of the description, for `tunnelgate tools` and `search_tools` results.
    pub fn summary_line(&self) -> &str {
        self.title
            .as_deref()
            .unwrap_or_else(|| self.description.lines().next().unwrap_or_default())
    }
}
