//! Where tests find Polar's public OpenAPI document (2026-04, 186 operations). It is never copied
//! into the repository: tests read `$TUNNELGATE_POLAR_SPEC`, else `../shared/polar/openapi-2026-04.json`
//! beside the checkout (get it from https://api.polar.sh/2026-04/openapi.json).
//!
//! Absent, a test skips with one line that names it, so `cargo test` stays green on a bare
//! machine; with `TUNNELGATE_REQUIRE_POLAR_SPEC=1` (set by `.ci/run`) an absent document fails
//! the test instead. Shared by the unit tests and the integration tests through `#[path]`.

use std::path::PathBuf;

/// The document's path, or `None` (after saying so on stderr) when it is absent.
pub fn polar_document_path() -> Option<PathBuf> {
    let path = std::env::var_os("TUNNELGATE_POLAR_SPEC")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/polar/openapi-2026-04.json")
        });
    if path.is_file() {
        return Some(path);
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a Polar test")
        .to_owned();
    let message = format!(
        "Polar OpenAPI document absent at {}: {test} needs it (set TUNNELGATE_POLAR_SPEC)",
        path.display()
    );
    assert!(
        std::env::var_os("TUNNELGATE_REQUIRE_POLAR_SPEC").is_none_or(|value| value != "1"),
        "{message}"
    );
    // Straight to stderr: libtest captures `eprintln!`, and a silent skip looks like a pass.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
    None
}
