//! The tools a server offers — built-ins plus the internal API's catalog, statically or
//! through the dynamic trio — listed and called on behalf of a verified identity, under
//! its policy and rate limits, with every call audited and counted.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::Value;

use super::api::{self, ApiCallOutcome, ApiTools};
use super::catalog::ApiTool;
use super::dynamic::{self, CALL_TOOL, DESCRIBE_TOOL, SEARCH_TOOLS};
use super::outcome::tool_error;
use super::policy::Policy;
use super::whoami;
use crate::access::Identity;
use crate::admin::metrics::Metrics;
use crate::audit::{Auditor, ToolCallRecord, UpstreamTrace};
use crate::config::{AccessClass, ToolsMode};
use crate::limits::RateLimits;
use crate::telemetry::RequestInfo;

/// A call that cannot be dispatched at all (as opposed to a tool that ran and failed,
/// which is a `CallToolResult` with `isError`). A tool the caller may not use answers
/// exactly like one that does not exist.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("unknown tool: {0}")]
    UnknownTool(String),
}

const BUILTIN_NAMES: [&str; 4] = [whoami::WHOAMI, SEARCH_TOOLS, DESCRIBE_TOOL, CALL_TOOL];

/// What the registry needs besides the tools themselves.
pub struct RegistryServices {
    pub policy: Policy,
    pub limits: RateLimits,
    pub auditor: Arc<Auditor>,
    pub metrics: Arc<Metrics>,
}

impl RegistryServices {
    /// Everyone may read, nothing is limited or audited (tests and tools listing).
    pub fn permissive() -> Self {
        Self {
            policy: Policy::allow_all(AccessClass::Write),
            limits: RateLimits::unlimited(),
            auditor: Arc::new(Auditor::disabled()),
            metrics: Arc::new(Metrics::new()),
        }
    }
}

/// The caller of one tool call.
pub struct Caller<'a> {
    pub identity: &'a Identity,
    pub request: &'a RequestInfo,
}

pub struct ToolRegistry {
    mode: ToolsMode,
    api: Option<ApiTools>,
    /// Built-ins, always listed.
    builtin: Vec<Tool>,
    /// API tool definitions with their read-only flag, in catalog order (static mode).
    api_listing: Vec<(Tool, bool)>,
    policy: RwLock<Arc<Policy>>,
    limits: RateLimits,
    auditor: Arc<Auditor>,
    metrics: Arc<Metrics>,
}

impl ToolRegistry {
    pub fn builtin_only(services: RegistryServices) -> Self {
        Self::new(None, ToolsMode::Static, "internal API", services)
    }

    pub fn new(
        api: Option<ApiTools>,
        mode: ToolsMode,
        api_name: &str,
        services: RegistryServices,
    ) -> Self {
        let mut builtin = vec![whoami::definition()];
        let mut api_listing = Vec::new();
        if let Some(api) = &api {
            match mode {
                ToolsMode::Static => {
                    for tool in api.catalog.tools() {
                        if BUILTIN_NAMES.contains(&tool.name.as_str()) {
                            tracing::warn!(tool = %tool.name, "an API operation shares a built-in tool's name; the built-in wins");
                            continue;
                        }
                        api_listing.push((api::definition(tool), tool.read_only));
                    }
                }
                ToolsMode::Dynamic => builtin.extend(dynamic::definitions(api_name)),
            }
        }
        Self {
            mode,
            api,
            builtin,
            api_listing,
            policy: RwLock::new(Arc::new(services.policy)),
            limits: services.limits,
            auditor: services.auditor,
            metrics: services.metrics,
        }
    }

    fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Swaps the policy; calls in flight finish under the old one.
    pub fn replace_policy(&self, policy: Policy) {
        let mut guard = match self.policy.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(policy);
    }

    /// Names of every API tool in the catalog (for checking policy globs).
    pub fn api_tool_names(&self) -> Vec<String> {
        self.api
            .as_ref()
            .map(|api| {
                api.catalog
                    .tools()
                    .iter()
                    .map(|tool| tool.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The tools `identity` may see.
    pub fn list(&self, identity: &Identity) -> Vec<Tool> {
        let policy = self.policy();
        let mut tools = self.builtin.clone();
        tools.extend(
            self.api_listing
                .iter()
                .filter(|(tool, read_only)| policy.permits(identity, &tool.name, *read_only))
                .map(|(tool, _)| tool.clone()),
        );
        tools
    }

    /// How many tools the catalog offers in all (before policy).
    pub fn len(&self) -> usize {
        self.builtin.len() + self.api_listing.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn api(&self) -> Option<&ApiTools> {
        self.api.as_ref()
    }

    pub async fn call(
        &self,
        caller: Caller<'_>,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, CallError> {
        let started = Instant::now();
        let policy = self.policy();
        let permitted =
            |tool: &ApiTool| policy.permits(caller.identity, &tool.name, tool.read_only);
        let mut audited_tool = name.to_string();
        let mut audited_arguments = arguments.clone();
        let mut upstream: Option<UpstreamTrace> = None;

        let dispatched: Result<(CallToolResult, &'static str), CallError> = async {
            if let Err(limited) = self.limits.check_identity(&identity_key(caller.identity)) {
                self.metrics.record_rate_limited(limited.limit);
                return Ok((tool_error(limited.message()), "rate_limited"));
            }
            if name == whoami::WHOAMI {
                return Ok((whoami::call(caller.identity), "ok"));
            }
            let unknown = || CallError::UnknownTool(name.to_string());
            let api = self.api.as_ref().ok_or_else(unknown)?;
            let run = |outcome: ApiCallOutcome, upstream: &mut Option<UpstreamTrace>| {
                *upstream = outcome.upstream;
                let class = if outcome.rate_limited {
                    "rate_limited"
                } else {
                    classify(&outcome.result)
                };
                (outcome.result, class)
            };
            match self.mode {
                ToolsMode::Static => {
                    let tool = api
                        .catalog
                        .get(name)
                        .filter(|tool| permitted(tool))
                        .ok_or_else(unknown)?;
                    let outcome = api
                        .call(tool, arguments.as_ref(), &self.limits, &self.metrics)
                        .await;
                    Ok(run(outcome, &mut upstream))
                }
                ToolsMode::Dynamic => {
                    let arguments = arguments.clone().unwrap_or_default();
                    let target = arguments
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    match name {
                        SEARCH_TOOLS => {
                            let query = arguments
                                .get("query")
                                .and_then(Value::as_str)
                                .unwrap_or_default();
                            let matches = api
                                .catalog
                                .search(query, usize::MAX)
                                .into_iter()
                                .filter(|(tool, _)| permitted(tool));
                            Ok((
                                dynamic::search(matches, dynamic::requested_limit(&arguments)),
                                "ok",
                            ))
                        }
                        DESCRIBE_TOOL => Ok(
                            match api.catalog.get(target).filter(|tool| permitted(tool)) {
                                Some(tool) => (dynamic::describe(tool), "ok"),
                                None => (no_such_tool(target), "unknown_tool"),
                            },
                        ),
                        CALL_TOOL => {
                            audited_tool = target.to_string();
                            let inner = match arguments.get("arguments") {
                                None | Some(Value::Null) => None,
                                Some(Value::Object(map)) => Some(map.clone()),
                                Some(_) => {
                                    return Ok((
                                        tool_error("call_tool: \"arguments\" must be an object"),
                                        "tool_error",
                                    ));
                                }
                            };
                            audited_arguments = inner.clone();
                            match api.catalog.get(target).filter(|tool| permitted(tool)) {
                                Some(tool) => {
                                    let outcome = api
                                        .call(tool, inner.as_ref(), &self.limits, &self.metrics)
                                        .await;
                                    Ok(run(outcome, &mut upstream))
                                }
                                None => Ok((no_such_tool(target), "unknown_tool")),
                            }
                        }
                        _ => Err(unknown()),
                    }
                }
            }
        }
        .await;

        let outcome = match &dispatched {
            Ok((_, outcome)) => *outcome,
            Err(CallError::UnknownTool(_)) => "unknown_tool",
        };
        let elapsed = started.elapsed();
        self.auditor.tool_call(ToolCallRecord {
            request_id: &caller.request.request_id,
            cf_ray: caller.request.cf_ray.as_deref(),
            identity: caller.identity,
            tool: &audited_tool,
            arguments: audited_arguments.as_ref(),
            upstream: upstream.as_ref(),
            duration: elapsed,
            outcome,
        });
        let tool_label = if outcome == "unknown_tool" {
            "unknown"
        } else {
            audited_tool.as_str()
        };
        self.metrics
            .record_mcp_request("tools/call", tool_label, outcome, elapsed);
        if outcome == "unknown_tool" || outcome == "rate_limited" {
            tracing::info!(principal = caller.identity.principal(), tool = %audited_tool, outcome, "tool call refused");
        }
        dispatched.map(|(result, _)| result)
    }
}

/// Rate-limit key: users by email or sub, services by client id.
fn identity_key(identity: &Identity) -> String {
    format!("{:?}:{}", identity.kind, identity.principal())
}

fn classify(result: &CallToolResult) -> &'static str {
    if result.is_error == Some(true) {
        "tool_error"
    } else {
        "ok"
    }
}

fn no_such_tool(name: &str) -> CallToolResult {
    tool_error(format!(
        "no tool named {name:?}; use search_tools to find the right name"
    ))
}
