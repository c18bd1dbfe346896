//! `tunnelgate tools`: the catalog that would be served, as a table a person reads.

use std::fmt::Write as _;

use crate::config::Settings;
use crate::openapi::load_catalog;
use crate::tools::WHOAMI;

/// The catalog as `tunnelgate tools` prints it.
pub async fn describe_catalog(settings: &Settings) -> anyhow::Result<String> {
    let mut out = String::new();
    // Writing to a String cannot fail.
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
    let Some(loaded) = load_catalog(settings).await? else {
        let _ = writeln!(
            out,
            "\n(no upstream.spec configured: only built-in tools are served)"
        );
        return Ok(out);
    };
    let catalog = &loaded.catalog;
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
    let left_out = catalog.left_out();
    let _ = writeln!(
        out,
        "\n{} API tools ({} read, {} write), tools.mode = \"{}\"",
        catalog.len(),
        catalog.tools().iter().filter(|t| t.read_only).count(),
        catalog.tools().iter().filter(|t| !t.read_only).count(),
        match settings.tools.mode {
            crate::config::ToolsMode::Static => "static",
            crate::config::ToolsMode::Dynamic => "dynamic",
        },
    );
    let _ = writeln!(
        out,
        "{} operations in the document are not served:",
        left_out.total() + catalog.skipped().len()
    );
    for (count, why) in [
        (
            left_out.writes_while_read_only,
            "write operations (tools.read_only = true)",
        ),
        (
            left_out.other_security,
            "not callable with the upstream token (they require another security scheme)",
        ),
        (
            left_out.by_include_exclude,
            "left out by tools.include / tools.exclude",
        ),
        (left_out.trace, "TRACE operations (never served)"),
        (
            catalog.skipped().len(),
            "selected but cannot be served (listed below)",
        ),
    ] {
        let _ = writeln!(out, "  {count:>4}  {why}");
    }
    let scopes: std::collections::BTreeSet<&str> = catalog
        .tools()
        .iter()
        .flat_map(|tool| tool.scopes.iter().map(String::as_str))
        .collect();
    if !scopes.is_empty() {
        let scopes: Vec<&str> = scopes.into_iter().collect();
        let _ = writeln!(
            out,
            "the upstream token needs these scopes for them: {}",
            scopes.join(", ")
        );
    }
    for skipped in catalog.skipped() {
        let _ = writeln!(
            out,
            "  not served: {} {} {} ({})",
            skipped.name, skipped.method, skipped.path, skipped.reason
        );
    }
    Ok(out)
}
