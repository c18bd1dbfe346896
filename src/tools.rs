//! The runtime that serves the compiled catalog: the registry that lists and calls tools for a
//! verified identity under policy and rate limits, the API tools (argument validation, request
//! building, result shaping), the dynamic-mode trio and `whoami`. Every call leaves one audit event.

mod api;
mod arguments;
mod dynamic;
mod json_pass;
mod policy;
mod registry;
mod request;
mod result;
mod search;
mod upstream_errors;
mod whoami;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod polar_tests;

use std::sync::Arc;

use anyhow::Context;

pub(crate) use arguments::ArgumentValidator;
pub use dynamic::CALL_TOOL;
pub(crate) use json_pass::write_compacted_as_string;
pub use policy::{AccessExplanation, Policy};
pub use registry::{CallError, CallVia, Caller, RegistryServices, ToolRegistry, ToolView};
pub(crate) use request::build_request;
pub use result::ToolOutput;
pub(crate) use result::from_response;
pub use whoami::WHOAMI;

use crate::config::Settings;
use crate::openapi::load_catalog;
use crate::upstream::{UpstreamClient, client_options};

/// Builds the registry the server will serve: built-ins plus the configured API catalog.
pub async fn build_registry(
    settings: &Settings,
    services: RegistryServices,
) -> anyhow::Result<ToolRegistry> {
    let metrics = Arc::clone(&services.metrics);
    let Some(loaded) = load_catalog(settings).await? else {
        tracing::info!("no upstream.spec configured; serving built-in tools only");
        return Ok(ToolRegistry::builtin_only(services));
    };
    let base_url = loaded
        .upstream
        .base_url
        .clone()
        .or(loaded.first_server)
        .context("upstream.base_url: not set and the document has no servers entry")?;
    let options = client_options(settings, base_url, loaded.upstream.headers)?;
    let max_response = options.max_response;
    let client = UpstreamClient::new(options, metrics)?;
    let api = api::ApiTools::new(loaded.catalog, client, max_response);
    let registry = ToolRegistry::new(
        Some(api),
        settings.tools.mode,
        &loaded.upstream.api_name,
        services,
    );
    registry.warn_about_unmatched_policy_globs();
    Ok(registry)
}
