//! The tools a server offers — built-ins plus the internal API's catalog, statically or
//! through the dynamic trio — listed and called on behalf of a verified identity, under
//! its policy and rate limits, with every call audited and counted.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolResult, JsonObject, ListToolsResult, ServerResult, Tool};
use serde_json::Value;
use tracing::Instrument;

use super::api::{self, ApiCall, ApiToolRef, ApiTools};
use super::dynamic::{self, CALL_TOOL, DESCRIBE_TOOL, SEARCH_TOOLS};
use super::policy::Policy;
use super::result::{ToolOutput, tool_error};
use super::{search, whoami};
use crate::access::Identity;
use crate::admin::metrics::Metrics;
use crate::audit::{Auditor, ToolCallRecord, UpstreamTrace};
use crate::config::ToolsMode;
use crate::limits::RateLimits;
use crate::outcome::CallOutcome;
use crate::telemetry::RequestInfo;

/// A call that cannot be dispatched at all (as opposed to a tool that ran and failed,
/// which is a `CallToolResult` with `isError`). A tool the caller may not use answers
/// exactly like one that does not exist.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// `closest` is a visible tool's name a typo may have meant, never a hidden one.
    #[error("unknown tool: {name}")]
    UnknownTool {
        name: String,
        closest: Option<String>,
    },
}

const BUILTIN_NAMES: [&str; 4] = [whoami::WHOAMI, SEARCH_TOOLS, DESCRIBE_TOOL, CALL_TOOL];

/// The metric label of a tool that is not in the catalog: never the caller's made-up name.
const UNKNOWN_TOOL_LABEL: &str = "unknown";

/// What the registry needs besides the tools themselves.
pub struct RegistryServices {
    pub policy: Policy,
    pub limits: RateLimits,
    pub auditor: Arc<Auditor>,
    pub metrics: Arc<Metrics>,
}

/// Where a tool call came from; the audit event says so when it was not MCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallVia {
    Mcp,
    /// The try-a-tool form of the page at `/`.
    WebPage,
}

impl CallVia {
    fn audit_label(self) -> Option<&'static str> {
        match self {
            Self::Mcp => None,
            Self::WebPage => Some("web_page"),
        }
    }
}

/// The caller of one tool call.
pub struct Caller<'a> {
    pub identity: &'a Identity,
    pub request: &'a RequestInfo,
    pub via: CallVia,
}

/// The `tool_call` span's fields, formatted only if a line is logged inside the call.
struct ToolCallFields {
    request_id: Arc<str>,
    tool: Box<str>,
    principal: Box<str>,
}

impl crate::telemetry::DeferredFields for ToolCallFields {
    fn for_each(&self, visit: &mut dyn FnMut(&'static str, &dyn std::fmt::Display)) {
        visit("request_id", &self.request_id);
        visit("tool", &self.tool);
        visit("principal", &self.principal);
    }
}

/// What the page at `/` shows about the API tools for one identity.
pub struct ToolView {
    /// Built-in tools, always callable (`whoami`).
    pub builtin: Vec<Tool>,
    /// The API tools the policy lets this identity call, with their read-only flag, in
    /// catalog order (listed one by one even in dynamic mode).
    pub api: Vec<(Tool, bool)>,
    /// How many API tools the catalog holds in all.
    pub api_total: usize,
    /// Whether the catalog serves read-only tools only.
    pub catalog_read_only: bool,
    /// Why this identity has the access it has.
    pub access: super::policy::AccessExplanation,
}

pub struct ToolRegistry {
    mode: ToolsMode,
    api: Option<ApiTools>,
    /// The upstream API's name as the catalog calls it (`Polar`, the document's title).
    api_name: String,
    /// Built-ins, always listed.
    builtin: Vec<Tool>,
    /// API tool definitions with their read-only flag, in catalog order (static mode).
    api_listing: Vec<(Tool, bool)>,
    policy: RwLock<Arc<Policy>>,
    /// `tools/list` results already rendered, by the set of API tools a caller may see (one
    /// bit per `api_listing` entry); emptied whenever the policy changes.
    rendered_lists: RwLock<HashMap<Vec<u64>, Arc<[u8]>>>,
    limits: RateLimits,
    auditor: Arc<Auditor>,
    metrics: Arc<Metrics>,
}

/// Distinct policy views are few (one per group of people with the same tools); past this
/// many, the cache starts over rather than grow.
const MAX_RENDERED_LISTS: usize = 256;

/// One dispatched call, with what the audit trail and the metrics record about it.
struct Dispatched<'a> {
    result: Result<ToolOutput, CallError>,
    outcome: CallOutcome,
    /// The tool the call reached: `call_tool`'s target in dynamic mode, else the name called.
    tool: &'a str,
    arguments: Option<&'a JsonObject>,
    upstream: Option<UpstreamTrace>,
}

impl<'a> Dispatched<'a> {
    fn answered(tool: &'a str, arguments: Option<&'a JsonObject>, result: CallToolResult) -> Self {
        let result = ToolOutput::Built(result);
        Self {
            outcome: result.outcome(),
            result: Ok(result),
            tool,
            arguments,
            upstream: None,
        }
    }

    fn refused(
        tool: &'a str,
        arguments: Option<&'a JsonObject>,
        result: CallToolResult,
        outcome: CallOutcome,
    ) -> Self {
        Self {
            outcome,
            ..Self::answered(tool, arguments, result)
        }
    }

    fn unknown(tool: &'a str, arguments: Option<&'a JsonObject>, closest: Option<String>) -> Self {
        Self {
            result: Err(CallError::UnknownTool {
                name: tool.to_owned(),
                closest,
            }),
            outcome: CallOutcome::UnknownTool,
            tool,
            arguments,
            upstream: None,
        }
    }

    fn from_api(tool: &'a str, arguments: Option<&'a JsonObject>, call: ApiCall) -> Self {
        Self {
            result: Ok(call.result),
            outcome: call.outcome,
            tool,
            arguments,
            upstream: call.upstream,
        }
    }
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
                    for tool in api.catalog().tools() {
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
            api_name: api_name.to_owned(),
            builtin,
            api_listing,
            policy: RwLock::new(Arc::new(services.policy)),
            rendered_lists: RwLock::new(HashMap::new()),
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
        {
            let mut guard = match self.policy.write() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            *guard = Arc::new(policy);
        }
        match self.rendered_lists.write() {
            Ok(mut lists) => lists.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
        self.warn_about_unmatched_policy_globs();
    }

    /// Logs each policy tool glob that matches no tool in the catalog (a typo, or a tool
    /// the selection dropped).
    pub fn warn_about_unmatched_policy_globs(&self) {
        let Some(api) = &self.api else {
            return;
        };
        let names = api.catalog().tools().iter().map(|tool| tool.name.as_str());
        for unmatched in self.policy().unmatched_tool_globs(names) {
            tracing::warn!(rule = %unmatched, "a policy tool glob matches no tool in the catalog");
        }
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

    /// The `result` of a `tools/list` answer for `identity`, as rmcp serialises it for a peer
    /// on a protocol version before 2026-07-28. Rendered once per policy view and reused
    /// until the policy changes.
    pub fn legacy_list_result(&self, identity: &Identity) -> serde_json::Result<Arc<[u8]>> {
        let policy = self.policy();
        let mut view = vec![0_u64; self.api_listing.len().div_ceil(64)];
        for (index, (tool, read_only)) in self.api_listing.iter().enumerate() {
            if policy.permits(identity, &tool.name, *read_only)
                && let Some(word) = view.get_mut(index / 64)
            {
                *word |= 1 << (index % 64);
            }
        }
        let cached = match self.rendered_lists.read() {
            Ok(lists) => lists.get(&view).cloned(),
            Err(poisoned) => poisoned.into_inner().get(&view).cloned(),
        };
        if let Some(rendered) = cached {
            return Ok(rendered);
        }
        // Rendered from the view itself, so a cached list always matches its key even when
        // the policy changes meanwhile.
        let mut tools = self.builtin.clone();
        tools.extend(
            self.api_listing
                .iter()
                .enumerate()
                .filter(|(index, _)| {
                    view.get(index / 64)
                        .is_some_and(|word| word & (1 << (index % 64)) != 0)
                })
                .map(|(_, (tool, _))| tool.clone()),
        );
        let mut result = ServerResult::ListToolsResult(ListToolsResult::with_all_items(tools));
        result.strip_result_type_for_legacy_peer();
        let rendered: Arc<[u8]> = serde_json::to_vec(&result)?.into();
        let mut lists = match self.rendered_lists.write() {
            Ok(lists) => lists,
            Err(poisoned) => poisoned.into_inner(),
        };
        if lists.len() >= MAX_RENDERED_LISTS {
            lists.clear();
        }
        lists.insert(view, Arc::clone(&rendered));
        Ok(rendered)
    }

    /// The upstream API's name, or `None` when no API is configured.
    pub fn api_name(&self) -> Option<&str> {
        self.api.as_ref().map(|_| self.api_name.as_str())
    }

    /// Whether API tools are reached through the dynamic-mode trio.
    pub fn is_dynamic(&self) -> bool {
        self.mode == ToolsMode::Dynamic && self.api.is_some()
    }

    /// The page's view of the tools `identity` may call: `whoami` and each permitted API tool
    /// (in dynamic mode too, where `tools/list` shows the trio instead).
    pub fn tool_view(&self, identity: &Identity) -> ToolView {
        let policy = self.policy();
        let api = match (&self.api, self.mode) {
            (None, _) => Vec::new(),
            (Some(_), ToolsMode::Static) => self
                .api_listing
                .iter()
                .filter(|(tool, read_only)| policy.permits(identity, &tool.name, *read_only))
                .cloned()
                .collect(),
            (Some(api), ToolsMode::Dynamic) => api
                .catalog()
                .tools()
                .iter()
                .filter(|tool| policy.permits(identity, &tool.name, tool.read_only))
                .map(|tool| (api::definition(tool), tool.read_only))
                .collect(),
        };
        let (api_total, catalog_read_only) = match &self.api {
            Some(api) => {
                let tools = api.catalog().tools();
                (tools.len(), tools.iter().all(|tool| tool.read_only))
            }
            None => (0, true),
        };
        ToolView {
            builtin: self
                .builtin
                .iter()
                .filter(|tool| tool.name == whoami::WHOAMI)
                .cloned()
                .collect(),
            api,
            api_total,
            catalog_read_only,
            access: policy.explain(identity),
        }
    }

    /// How many tools the server offers in all (before policy).
    pub fn tool_count(&self) -> usize {
        self.builtin.len() + self.api_listing.len()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Calls the tool `name` for `caller`, then writes the call's one audit event and counts it.
    /// A call whose future is dropped before it ends (the client went away, or cancelled it)
    /// is audited and counted as `cancelled`.
    pub async fn call(
        &self,
        caller: Caller<'_>,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<ToolOutput, CallError> {
        let span = tracing::info_span!("tool_call");
        crate::telemetry::attach_deferred_fields(&span, || ToolCallFields {
            request_id: Arc::clone(&caller.request.request_id),
            tool: name.into(),
            principal: caller.identity.principal().into(),
        });
        async {
            let mut audit = AuditOnDrop {
                registry: self,
                caller: &caller,
                tool: name,
                arguments: arguments.as_ref(),
                started: Instant::now(),
                running: true,
                unwritten: None,
            };
            let dispatched = self
                .dispatch(caller.identity, name, arguments.as_ref())
                .await;
            audit.running = false;
            audit.unwritten = self.record(&caller, &dispatched, audit.started.elapsed());
            self.auditor.write_from(&mut audit.unwritten).await;
            dispatched.result
        }
        .instrument(span)
        .await
    }

    async fn dispatch<'a>(
        &self,
        identity: &Identity,
        name: &'a str,
        arguments: Option<&'a JsonObject>,
    ) -> Dispatched<'a> {
        if let Err(limited) = self.limits.check_identity(&identity_key(identity)).await {
            self.metrics.record_rate_limited(limited.limit);
            let refusal = tool_error(limited.message());
            return Dispatched::refused(name, arguments, refusal, CallOutcome::RateLimited);
        }
        if name == whoami::WHOAMI {
            return Dispatched::answered(name, arguments, whoami::call(identity));
        }
        let Some(api) = &self.api else {
            let closest = self.closest_visible(identity, name);
            return Dispatched::unknown(name, arguments, closest);
        };
        let policy = self.policy();
        let permitted = |name: &str| {
            api.get(name)
                .filter(|target| policy.permits(identity, &target.tool.name, target.tool.read_only))
        };
        match (self.mode, name) {
            (ToolsMode::Static, _) => match permitted(name) {
                Some(target) => self.call_api(api, target, name, arguments).await,
                None => {
                    let closest = self.closest_visible(identity, name);
                    Dispatched::unknown(name, arguments, closest)
                }
            },
            (ToolsMode::Dynamic, SEARCH_TOOLS) => {
                let empty = JsonObject::new();
                let given = arguments.unwrap_or(&empty);
                let visible = api
                    .catalog()
                    .tools()
                    .iter()
                    .filter(|tool| policy.permits(identity, &tool.name, tool.read_only));
                let found = search::search(visible, string_argument(given, "query"), usize::MAX);
                let answer = dynamic::search(found.into_iter(), dynamic::requested_limit(given));
                Dispatched::answered(name, arguments, answer)
            }
            (ToolsMode::Dynamic, DESCRIBE_TOOL) => {
                let target_name =
                    arguments.map_or("", |arguments| string_argument(arguments, "name"));
                match permitted(target_name) {
                    Some(target) => {
                        Dispatched::answered(name, arguments, dynamic::describe(target.tool))
                    }
                    None => {
                        let refusal = no_such_tool(target_name);
                        Dispatched::refused(name, arguments, refusal, CallOutcome::UnknownTool)
                    }
                }
            }
            (ToolsMode::Dynamic, CALL_TOOL) => {
                let target_name =
                    arguments.map_or("", |arguments| string_argument(arguments, "name"));
                let inner = match arguments.and_then(|arguments| arguments.get("arguments")) {
                    None | Some(Value::Null) => None,
                    Some(Value::Object(map)) => Some(map),
                    Some(_) => {
                        let refusal = tool_error("call_tool: \"arguments\" must be an object");
                        return Dispatched::refused(
                            target_name,
                            arguments,
                            refusal,
                            CallOutcome::ToolError,
                        );
                    }
                };
                match permitted(target_name) {
                    Some(target) => self.call_api(api, target, target_name, inner).await,
                    None => {
                        let refusal = no_such_tool(target_name);
                        Dispatched::refused(target_name, inner, refusal, CallOutcome::UnknownTool)
                    }
                }
            }
            (ToolsMode::Dynamic, _) => {
                let closest = self.closest_visible(identity, name);
                Dispatched::unknown(name, arguments, closest)
            }
        }
    }

    async fn call_api<'a>(
        &self,
        api: &ApiTools,
        target: ApiToolRef<'_>,
        name: &'a str,
        arguments: Option<&'a JsonObject>,
    ) -> Dispatched<'a> {
        let call = api
            .call(target, arguments, &self.limits, &self.metrics)
            .await;
        Dispatched::from_api(name, arguments, call)
    }

    /// Counts the call (and logs a refusal); returns its audit event, encoded, to be written.
    fn record(
        &self,
        caller: &Caller<'_>,
        dispatched: &Dispatched<'_>,
        elapsed: Duration,
    ) -> Option<Vec<u8>> {
        self.record_outcome(
            caller,
            dispatched.tool,
            dispatched.arguments,
            dispatched.upstream.as_ref(),
            dispatched.outcome,
            elapsed,
        )
    }

    fn record_outcome(
        &self,
        caller: &Caller<'_>,
        tool: &str,
        arguments: Option<&JsonObject>,
        upstream: Option<&UpstreamTrace>,
        outcome: CallOutcome,
        elapsed: Duration,
    ) -> Option<Vec<u8>> {
        let line = self.auditor.tool_call_line(&ToolCallRecord {
            request_id: &caller.request.request_id,
            cf_ray: caller.request.cf_ray.as_deref(),
            principal: caller.identity.principal(),
            sub: &caller.identity.sub,
            tool,
            arguments,
            upstream,
            via: caller.via.audit_label(),
            duration: elapsed,
            outcome,
        });
        self.metrics
            .record_mcp_request("tools/call", self.metric_label(tool), outcome, elapsed);
        match outcome {
            CallOutcome::UnknownTool | CallOutcome::RateLimited => {
                tracing::info!(outcome = outcome.as_str(), "tool call refused");
            }
            CallOutcome::Cancelled => tracing::info!("tool call cancelled by its caller"),
            CallOutcome::Ok | CallOutcome::ToolError => {}
        }
        line
    }

    /// The listed tool (for this identity) whose name `name` most likely misspells: within a
    /// few edits, so `itms_list` finds `items_list` but `delete` finds nothing.
    fn closest_visible(&self, identity: &Identity, name: &str) -> Option<String> {
        let policy = self.policy();
        let visible = self.builtin.iter().map(|tool| &tool.name).chain(
            self.api_listing
                .iter()
                .filter(|(tool, read_only)| policy.permits(identity, &tool.name, *read_only))
                .map(|(tool, _)| &tool.name),
        );
        let allowed = (name.chars().count() / 4).clamp(1, 3);
        visible
            .map(|candidate| (edit_distance(name, candidate), candidate))
            .filter(|(distance, _)| *distance <= allowed)
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, candidate)| candidate.to_string())
    }

    /// A built-in's or a catalog tool's name, else [`UNKNOWN_TOOL_LABEL`].
    fn metric_label<'a>(&self, tool: &'a str) -> &'a str {
        let known = BUILTIN_NAMES.contains(&tool)
            || self
                .api
                .as_ref()
                .is_some_and(|api| api.catalog().index_of(tool).is_some());
        if known { tool } else { UNKNOWN_TOOL_LABEL }
    }
}

/// Keeps a call's promise of exactly one audit event when its future is dropped early: while
/// the call runs, a drop records it as cancelled; once its event is encoded, a drop hands the
/// event still waiting for room in the writer's queue to the writer without waiting.
struct AuditOnDrop<'a> {
    registry: &'a ToolRegistry,
    caller: &'a Caller<'a>,
    tool: &'a str,
    arguments: Option<&'a JsonObject>,
    started: Instant,
    running: bool,
    unwritten: Option<Vec<u8>>,
}

impl Drop for AuditOnDrop<'_> {
    fn drop(&mut self) {
        if self.running {
            self.unwritten = self.registry.record_outcome(
                self.caller,
                self.tool,
                self.arguments,
                None,
                CallOutcome::Cancelled,
                self.started.elapsed(),
            );
        }
        if let Some(line) = self.unwritten.take() {
            self.registry.auditor.write_detached(line);
        }
    }
}

/// Rate-limit key: users by email or sub, services by client id.
fn identity_key(identity: &Identity) -> String {
    format!("{:?}:{}", identity.kind, identity.principal())
}

/// Levenshtein distance over characters, ignoring ASCII case.
fn edit_distance(first: &str, second: &str) -> usize {
    let second: Vec<char> = second.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut previous: Vec<usize> = (0..=second.len()).collect();
    for (row, left) in first.chars().map(|c| c.to_ascii_lowercase()).enumerate() {
        let mut current = Vec::with_capacity(previous.len());
        current.push(row + 1);
        for (column, right) in second.iter().enumerate() {
            let substitution =
                previous.get(column).copied().unwrap_or(usize::MAX) + usize::from(left != *right);
            let deletion = previous.get(column + 1).copied().unwrap_or(usize::MAX) + 1;
            let insertion = current.last().copied().unwrap_or(usize::MAX) + 1;
            current.push(substitution.min(deletion).min(insertion));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or_default()
}

fn string_argument<'a>(arguments: &'a JsonObject, key: &str) -> &'a str {
    arguments
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn no_such_tool(name: &str) -> CallToolResult {
    tool_error(format!(
        "no tool named {name:?}; use search_tools to find the right name"
    ))
}
