//! The compile-once pipeline: an OpenAPI 3.0/3.1 document in, a [`Catalog`] of tools out.
//!
//! `source` reads the document (file, URL, or the last good copy) at start-up; `document` parses it and
//! resolves `$ref`s; `operation` walks its operations; `naming` names the tools; `schema` turns parameters and
//! bodies into one flat JSON Schema 2020-12 `inputSchema`; `description` writes the prose; `catalog` selects and
//! assembles the tools; `profile` holds the Polar defaults. Nothing here runs at request time or knows about MCP:
//! `tools` serves what this module compiled.

mod catalog;
mod description;
mod document;
mod naming;
mod operation;
mod profile;
mod schema;
mod source;
#[cfg(test)]
pub(crate) mod test_fixtures;
mod text;
mod tool;

use anyhow::Context;

pub use catalog::Catalog;
pub use catalog::CatalogOptions;
pub use document::{SpecError, parse_document, validate_document};
#[cfg(test)]
pub use naming::is_valid_tool_name;
pub use profile::ResolvedUpstream;
pub use schema::{BODY_ARGUMENT, compile_validator};
pub(crate) use text::tokenize;
pub use tool::{ApiTool, ParamBinding, ParamLocation, ParamStyle};

use crate::config::Settings;

/// What start-up compiled from the configured document. The parsed document itself is gone.
pub struct LoadedCatalog {
    pub catalog: Catalog,
    pub upstream: ResolvedUpstream,
    /// The document's first `servers` URL, the base URL when none is configured.
    pub first_server: Option<String>,
}

/// Loads the configured OpenAPI document (parsed once) and compiles its catalog; `None` when
/// no document is configured. The parsed document is dropped before this returns.
pub async fn load_catalog(settings: &Settings) -> anyhow::Result<Option<LoadedCatalog>> {
    let upstream = profile::resolve(settings)?;
    let Some(source) = upstream.spec.clone() else {
        return Ok(None);
    };
    let parse = |bytes: &[u8]| {
        let document = parse_document(bytes)?;
        validate_document(&document)?;
        Ok::<_, SpecError>(document)
    };
    let (parsed, origin) = source::load_document(&source, &settings.state_dir, parse).await?;
    let document = parsed.with_context(|| format!("upstream.spec ({origin})"))?;
    let catalog = Catalog::build(&document, &upstream.catalog)
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
    if catalog.is_empty() {
        tracing::warn!(source = %origin, "the selection serves no API tool; check tools.read_only, tools.include and tools.exclude");
    }
    for skipped in catalog.skipped() {
        tracing::warn!(tool = %skipped.name, method = %skipped.method, path = %skipped.path, reason = %skipped.reason, "operation not served");
    }
    Ok(Some(LoadedCatalog {
        catalog,
        upstream,
        first_server,
    }))
}
