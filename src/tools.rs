//! Tools: the built-in `whoami`, the internal API's operations turned into MCP tools, and
//! the registry that lists and calls them for an identity.

mod registry;
mod whoami;

pub use registry::{CallError, ToolRegistry};
pub use whoami::WHOAMI;

use std::sync::Arc;

use crate::admin::metrics::Metrics;
use crate::config::Settings;

/// Builds the registry the server will serve: built-ins plus the configured API catalog.
pub async fn build_registry(
    settings: &Settings,
    _metrics: Arc<Metrics>,
) -> anyhow::Result<ToolRegistry> {
    if settings.upstream.spec.is_some() {
        tracing::warn!(
            "upstream.spec is set but API tools are not wired in yet; serving built-ins"
        );
    }
    Ok(ToolRegistry::builtin_only())
}

/// The catalog as `tunnelgate tools` prints it.
pub async fn describe_catalog(_settings: &Settings) -> anyhow::Result<String> {
    Ok(format!("{:<40} {:<6} {}\n", WHOAMI, "read", "(built-in)"))
}
