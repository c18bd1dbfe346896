//! The internal API as tools: the compiled catalog, one argument validator per tool, and the
//! client that calls the API. Arguments are validated, and the shared upstream budget
//! consulted, before any request is made.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::Value;

use super::arguments::ArgumentValidator;
use super::request;
use super::result::{self, ToolOutput};
use crate::admin::metrics::Metrics;
use crate::audit::UpstreamTrace;
use crate::limits::RateLimits;
use crate::openapi::{ApiTool, Catalog};
use crate::outcome::CallOutcome;
use crate::upstream::UpstreamClient;

pub struct ApiTools {
    catalog: Catalog,
    /// One per catalog tool, same order; each compiles on its tool's first call.
    validators: Vec<ArgumentValidator>,
    client: UpstreamClient,
    max_response: usize,
}

/// A catalog tool together with its argument validator.
#[derive(Clone, Copy)]
pub struct ApiToolRef<'a> {
    pub tool: &'a ApiTool,
    validator: &'a ArgumentValidator,
}

/// What a call produced, and the upstream request it made (if any), for the audit trail.
pub struct ApiCall {
    pub result: ToolOutput,
    pub outcome: CallOutcome,
    pub upstream: Option<UpstreamTrace>,
}

impl ApiTools {
    pub fn new(catalog: Catalog, client: UpstreamClient, max_response: usize) -> Self {
        let validators = catalog
            .tools()
            .iter()
            .map(|_| ArgumentValidator::default())
            .collect();
        Self {
            catalog,
            validators,
            client,
            max_response,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The tool named `name`, if the catalog has one.
    pub fn get(&self, name: &str) -> Option<ApiToolRef<'_>> {
        let index = self.catalog.index_of(name)?;
        Some(ApiToolRef {
            tool: self.catalog.tools().get(index)?,
            validator: self.validators.get(index)?,
        })
    }

    pub async fn call(
        &self,
        target: ApiToolRef<'_>,
        arguments: Option<&JsonObject>,
        limits: &RateLimits,
        metrics: &Metrics,
    ) -> ApiCall {
        let tool = target.tool;
        let refused = |result, outcome| ApiCall {
            result: ToolOutput::Built(result),
            outcome,
            upstream: None,
        };
        let arguments = Value::Object(arguments.cloned().unwrap_or_default());
        if let Err(error) = target.validator.validate(tool, &arguments) {
            return refused(
                result::tool_error(error.to_string()),
                CallOutcome::ToolError,
            );
        }
        let Value::Object(arguments) = arguments else {
            return refused(
                result::tool_error("arguments must be a JSON object"),
                CallOutcome::ToolError,
            );
        };
        let request = match request::build_request(tool, &arguments) {
            Ok(request) => request,
            Err(error) => {
                return refused(
                    result::tool_error(error.to_string()),
                    CallOutcome::ToolError,
                );
            }
        };
        if let Err(limited) = limits.check_upstream().await {
            metrics.record_rate_limited(limited.limit);
            return refused(
                result::tool_error(limited.message()),
                CallOutcome::RateLimited,
            );
        }
        let mut trace = UpstreamTrace {
            method: tool.method.to_string(),
            path: tool.path_template.clone(),
            status: None,
        };
        let may_retry = || -> futures::future::BoxFuture<'_, bool> {
            Box::pin(async { limits.check_upstream().await.is_ok() })
        };
        let result = match self.client.send(&request, &may_retry).await {
            Ok(response) => {
                trace.status = Some(response.status);
                result::from_response(response, self.max_response)
            }
            Err(error) => ToolOutput::Built(result::from_error(&error)),
        };
        ApiCall {
            outcome: result.outcome(),
            result,
            upstream: Some(trace),
        }
    }
}

/// The MCP definition of an API tool: the one place the catalog's hints become MCP annotations.
pub fn definition(tool: &ApiTool) -> Tool {
    let mut definition = Tool::new(
        tool.name.clone(),
        tool.description.clone(),
        Arc::clone(&tool.input_schema),
    );
    let hints = &tool.annotations;
    let mut annotations = ToolAnnotations::new().read_only(hints.read_only);
    // `destructiveHint`/`idempotentHint` only mean something for tools that are not read-only, so
    // read-only tools omit them to keep the list small; write tools state both, because an absent
    // `destructiveHint` defaults to true.
    if !hints.read_only {
        annotations = annotations
            .destructive(hints.destructive)
            .idempotent(hints.idempotent);
    }
    definition.annotations = Some(annotations.open_world(hints.open_world));
    definition
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::CatalogOptions;
    use crate::openapi::test_fixtures::{petstore, write_enabled};
    use serde_json::json;

    fn listed(options: &CatalogOptions) -> Vec<Value> {
        let catalog = Catalog::build(&petstore(), options).unwrap();
        catalog
            .tools()
            .iter()
            .map(|tool| serde_json::to_value(definition(tool)).unwrap())
            .collect()
    }

    #[test]
    fn lists_a_read_only_tool_in_the_mcp_shape_without_write_hints() {
        let tools = listed(&CatalogOptions::default());

        let first = &tools[0];
        assert_eq!(first["name"], "pets_list");
        assert_eq!(first["inputSchema"]["type"], "object");
        assert_eq!(
            first["annotations"],
            json!({"readOnlyHint": true, "openWorldHint": true})
        );
    }

    #[test]
    fn states_both_write_hints_on_a_write_tool() {
        let tools = listed(&write_enabled());

        let create = tools.iter().find(|tool| tool["name"] == "pets_create");
        let delete = tools.iter().find(|tool| tool["name"] == "pets_delete");

        assert_eq!(
            create.unwrap()["annotations"],
            json!({"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": true})
        );
        assert_eq!(delete.unwrap()["annotations"]["destructiveHint"], true);
    }
}
