//! Tools: the built-in `whoami`, the internal API's operations turned into MCP tools
//! (OpenAPI → catalog → validated, safely encoded upstream calls), the dynamic-mode trio,
//! and the registry that lists and calls them for an identity.

pub mod api;
pub mod arguments;
pub mod catalog;
pub mod dynamic;
pub mod errors;
pub mod naming;
pub mod operation;
pub mod outcome;
pub mod policy;
pub mod profile;
mod registry;
pub mod request;
pub mod schema;
pub mod spec;
pub mod text;
mod whoami;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod polar_tests;

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context;
use http::{HeaderName, HeaderValue};

pub use arguments::{
    ArgumentError, ArgumentValidator, MAX_REPORTED_VIOLATIONS, Violation, validate,
};
pub use catalog::{
    ApiTool, BodyBinding, Catalog, CatalogOptions, ParamBinding, ParamLocation, ParamStyle,
    SkippedOperation, ToolHints,
};
pub use errors::{
    MAX_SUMMARY_CHARS, summarize_upstream_error, summarize_upstream_error_with_challenge,
};
pub use naming::{MAX_TOOL_NAME_LEN, is_valid_tool_name};
pub use policy::{Policy, PolicyError};
pub use registry::{CallError, Caller, RegistryServices, ToolRegistry};
pub use request::{
    MAX_HEADER_VALUE_BYTES, MAX_PATH_AND_QUERY_BYTES, UpstreamRequest, build_request,
};
pub use schema::{BODY_ARGUMENT, SchemaOptions};
pub use spec::{OpenApiVersion, Problem, SpecError, parse_document, validate_document};
pub use whoami::WHOAMI;

use crate::config::Settings;
use crate::upstream::client_options;
use crate::upstream::{UpstreamClient, load_spec};

/// Loads the OpenAPI document and builds the catalog it describes (the parsed document is
/// dropped afterwards; only the catalog stays in memory).
pub async fn load_catalog(
    settings: &Settings,
) -> anyhow::Result<Option<(Catalog, profile::ResolvedUpstream, Option<String>)>> {
    let resolved = profile::resolve(settings);
    let Some(source) = resolved.spec.clone() else {
        return Ok(None);
    };
    let (bytes, origin) = load_spec(&source, &settings.state_dir, |bytes| {
        parse_document(bytes)
            .ok()
            .is_some_and(|document| validate_document(&document).is_ok())
    })
    .await?;
    let document = parse_document(&bytes).with_context(|| format!("upstream.spec ({origin})"))?;
    drop(bytes);
    let catalog = Catalog::build(&document, &resolved.catalog)
        .with_context(|| format!("upstream.spec ({origin})"))?;
    let first_server = document
        .pointer("/servers/0/url")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    drop(document);
    tracing::info!(
        source = %origin,
        tools = catalog.len(),
        skipped = catalog.skipped().len(),
        "OpenAPI catalog loaded"
    );
    for skipped in catalog.skipped() {
        tracing::warn!(tool = %skipped.name, method = %skipped.method, path = %skipped.path, reason = %skipped.reason, "operation not served");
    }
    Ok(Some((catalog, resolved, first_server)))
}

/// Builds the registry the server will serve: built-ins plus the configured API catalog.
pub async fn build_registry(
    settings: &Settings,
    services: RegistryServices,
) -> anyhow::Result<ToolRegistry> {
    let metrics = Arc::clone(&services.metrics);
    let Some((catalog, resolved, first_server)) = load_catalog(settings).await? else {
        tracing::info!("no upstream.spec configured; serving built-in tools only");
        return Ok(ToolRegistry::builtin_only(services));
    };
    let base_url = resolved
        .base_url
        .clone()
        .or(first_server)
        .context("upstream.base_url: not set and the document has no servers entry")?;
    let options = client_options(settings, base_url, &resolved.headers)?;
    let max_response = options.max_response;
    let client = UpstreamClient::new(options, metrics)?;
    let api = api::ApiTools {
        catalog,
        client,
        max_response,
    };
    let registry = ToolRegistry::new(Some(api), settings.tools.mode, &resolved.api_name, services);
    let names = registry.api_tool_names();
    let policy = Policy::from_settings(&settings.policy)?;
    for unmatched in policy.unmatched_tool_globs(names.iter().map(String::as_str)) {
        tracing::warn!(rule = %unmatched, "a policy tool glob matches no tool in the catalog");
    }
    Ok(registry)
}

/// The catalog as `tunnelgate tools` prints it.
pub async fn describe_catalog(settings: &Settings) -> anyhow::Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} {:<5} {:<7} PATH / DESCRIPTION",
        "NAME", "ACCESS", "METHOD"
    );
    let _ = writeln!(
        out,
        "{WHOAMI:<44} {:<5} {:<7} (built-in) the caller's verified Access identity",
        "read", "-"
    );
    let Some((catalog, _, _)) = load_catalog(settings).await? else {
        let _ = writeln!(
            out,
            "\n(no upstream.spec configured: only built-in tools are served)"
        );
        return Ok(out);
    };
    for tool in catalog.tools() {
        let access = if tool.read_only { "read" } else { "write" };
        let _ = writeln!(
            out,
            "{:<44} {:<5} {:<7} {}",
            tool.name,
            access,
            tool.method.as_str(),
            tool.path_template
        );
        let _ = writeln!(
            out,
            "{:<44} {:<5} {:<7}   {}",
            "",
            "",
            "",
            tool.summary_line()
        );
    }
    let _ = writeln!(
        out,
        "\n{} API tools ({} read, {} write), mode {:?}; {} operations not served",
        catalog.len(),
        catalog.tools().iter().filter(|t| t.read_only).count(),
        catalog.tools().iter().filter(|t| !t.read_only).count(),
        settings.tools.mode,
        catalog.skipped().len()
    );
    for skipped in catalog.skipped() {
        let _ = writeln!(
            out,
            "  not served: {} {} {} ({})",
            skipped.name, skipped.method, skipped.path, skipped.reason
        );
    }
    Ok(out)
}

/// The upstream credential and headers as the client sends them.
pub(crate) fn credential_header(
    settings: &Settings,
) -> anyhow::Result<Option<(HeaderName, HeaderValue)>> {
    let token = match (&settings.upstream.token, &settings.upstream.token_file) {
        (Some(token), _) => Some(token.expose().trim().to_string()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("upstream.token_file: cannot read {}", path.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let Some(token) = token.filter(|token| !token.is_empty()) else {
        return Ok(None);
    };
    let name = HeaderName::from_bytes(settings.upstream.token_header.as_bytes())
        .context("upstream.token_header")?;
    let value = if name == http::header::AUTHORIZATION {
        format!("Bearer {token}")
    } else {
        token
    };
    let value = HeaderValue::from_str(&value)
        .map_err(|_| anyhow::anyhow!("upstream.token: holds characters a header cannot carry"))?;
    Ok(Some((name, value)))
}
