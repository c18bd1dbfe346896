//! The internal API as tools: the catalog built once at start-up and the client that
//! calls it. Arguments are validated, and the shared upstream budget consulted, before any
//! request is made.

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use serde_json::Value;

use super::catalog::{ApiTool, Catalog};
use super::{arguments, outcome, request};
use crate::admin::metrics::Metrics;
use crate::audit::UpstreamTrace;
use crate::limits::RateLimits;
use crate::upstream::UpstreamClient;

pub struct ApiTools {
    pub catalog: Catalog,
    pub client: UpstreamClient,
    pub max_response: usize,
}

/// What a call produced, and the upstream request it made (if any), for the audit trail.
pub struct ApiCallOutcome {
    pub result: CallToolResult,
    pub upstream: Option<UpstreamTrace>,
    pub rate_limited: bool,
}

impl ApiTools {
    pub async fn call(
        &self,
        tool: &ApiTool,
        arguments: Option<&JsonObject>,
        limits: &RateLimits,
        metrics: &Metrics,
    ) -> ApiCallOutcome {
        let only = |result| ApiCallOutcome {
            result,
            upstream: None,
            rate_limited: false,
        };
        let arguments = Value::Object(arguments.cloned().unwrap_or_default());
        if let Err(error) = arguments::validate(tool, &arguments) {
            return only(outcome::tool_error(error.to_string()));
        }
        let Value::Object(arguments) = arguments else {
            return only(outcome::tool_error("arguments must be a JSON object"));
        };
        let request = match request::build_request(tool, &arguments) {
            Ok(request) => request,
            Err(error) => return only(outcome::tool_error(error.to_string())),
        };
        if let Err(limited) = limits.check_upstream() {
            metrics.record_rate_limited(limited.limit);
            return ApiCallOutcome {
                result: outcome::tool_error(limited.message()),
                upstream: None,
                rate_limited: true,
            };
        }
        let mut trace = UpstreamTrace {
            method: tool.method.to_string(),
            path: tool.path_template.clone(),
            status: None,
        };
        let may_retry = || limits.check_upstream().is_ok();
        let result = match self.client.send(&request, &may_retry).await {
            Ok(response) => {
                trace.status = Some(response.status);
                outcome::from_response(response, self.max_response)
            }
            Err(error) => outcome::from_error(&error),
        };
        ApiCallOutcome {
            result,
            upstream: Some(trace),
            rate_limited: false,
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
