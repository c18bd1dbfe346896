//! Any bytes as an OpenAPI document (JSON when the first non-blank byte is `{`, YAML otherwise) → parse →
//! validation → catalog (every operation, writes included, each tool's argument schema compiled).
//!
//! Properties: an error or a catalog, never a panic, and memory bounded (run with `-rss_limit_mb=2048`: a
//! document that expands past the catalog's caps must be refused, not built); the caps hold for what is built.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tunnelgate::fuzzing;

/// `CatalogOptions::max_catalog_schema_bytes`' default.
const MAX_CATALOG_SCHEMA_BYTES: usize = 16 * 1024 * 1024;

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    if let Ok(summary) = fuzzing::openapi_catalog(data) {
        // The cap is checked before pagination notes are added to a tool's schema: allow for them.
        let allowance = summary.tools * 1024;
        assert!(
            summary.schema_bytes <= MAX_CATALOG_SCHEMA_BYTES + allowance,
            "{summary:?}"
        );
    }
}
