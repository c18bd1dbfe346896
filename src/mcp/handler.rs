//! The rmcp server handler both transports feed: it resolves the caller's identity and
//! hands `tools/list` and `tools/call` to the tool registry.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CustomRequest, CustomResult, ErrorCode,
    Implementation, ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use rmcp_actix_web::transport::on_request_extensions;

use crate::access::Identity;
use crate::outcome::CallOutcome;
use crate::telemetry::RequestInfo;
use crate::tools::{CallError, CallVia, Caller, ToolRegistry};

/// Every protocol revision tunnelgate serves: 2024-11-05 over legacy SSE, the rest over
/// Streamable HTTP.
pub const SUPPORTED_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2024_11_05,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// The JSON-RPC error for a tool that does not exist or that the caller may not see, with
/// the visible tool a typo most likely meant.
pub fn unknown_tool_error(name: &str, closest: Option<&str>) -> ErrorData {
    let message = match closest {
        Some(closest) => format!("unknown tool: {name} (did you mean {closest}?)"),
        None => format!("unknown tool: {name}"),
    };
    ErrorData::invalid_params(message, None)
}

/// Every message carries the identity the Access guard verified for the HTTP request that
/// delivered it, and its request id: Streamable HTTP in the request parts rmcp-actix-web
/// keeps, legacy SSE directly in the message's extensions (each `POST /message`, so a
/// session never outlives a change of the caller's groups).
#[derive(Clone)]
pub struct McpHandler {
    registry: Arc<ToolRegistry>,
}

impl McpHandler {
    pub fn new(registry: Arc<ToolRegistry>) -> Self {
        Self { registry }
    }

    /// What `initialize` answers, before the version is settled; legacy SSE answers it
    /// without building a handler.
    pub fn server_info() -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tunnelgate", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools of an internal API, called with the server's own credential on behalf \
                 of your verified Cloudflare Access identity. `whoami` shows that identity.",
            )
    }

    fn from_request<T: Clone + Send + Sync + 'static>(
        context: &RequestContext<RoleServer>,
    ) -> Option<T> {
        context.extensions.get::<T>().cloned().or_else(|| {
            on_request_extensions(&context.extensions)
                .and_then(|extensions| extensions.get::<T>())
                .cloned()
        })
    }

    fn request_info(&self, context: &RequestContext<RoleServer>) -> RequestInfo {
        Self::from_request::<RequestInfo>(context).unwrap_or_else(|| RequestInfo::new(None))
    }

    fn identity(&self, context: &RequestContext<RoleServer>) -> Result<Arc<Identity>, ErrorData> {
        Self::from_request::<Arc<Identity>>(context)
            // Unreachable behind the access guard; refuse rather than run anonymously.
            .ok_or_else(|| ErrorData::internal_error("request carries no verified identity", None))
    }
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        Self::server_info()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(SUPPORTED_VERSIONS)
    }

    /// A method no revision defines: say that it is unknown, not just its name.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!(
                "Method not found: {} (this server offers tools: tools/list, tools/call)",
                request.method
            ),
            None,
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let started = std::time::Instant::now();
        let identity = self.identity(&context)?;
        let tools = self.registry.list(&identity);
        self.registry.metrics().record_mcp_request(
            "tools/list",
            "",
            CallOutcome::Ok,
            started.elapsed(),
        );
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let identity = self.identity(&context)?;
        let request_info = self.request_info(&context);
        let caller = Caller {
            identity: &identity,
            request: &request_info,
            via: CallVia::Mcp,
        };
        // In a stateful session rmcp cancels `context.ct` on `notifications/cancelled`;
        // dropping the call abandons it, and the registry audits it as cancelled.
        let called = tokio::select! {
            called = self.registry.call(caller, &request.name, request.arguments) => called,
            () = context.ct.cancelled() => {
                return Err(ErrorData::internal_error("the request was cancelled", None));
            }
        };
        match called {
            Ok(output) => Ok(output.into_call_tool_result().into()),
            Err(CallError::UnknownTool { name, closest }) => {
                Err(unknown_tool_error(&name, closest.as_deref()))
            }
        }
    }
}
