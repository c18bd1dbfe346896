//! Where the browser tests find Debian's `chromium`, `chromedriver` (package `chromium-driver`)
//! and axe-core (npm, installed by `.ci/run` under `.cache/browser`).
//!
//! Absent, a test skips with one line that names it, so `cargo test` stays green on a bare
//! machine; with `TUNNELGATE_REQUIRE_BROWSER=1` (set by `.ci/run`) an absent tool fails the test
//! instead. `TUNNELGATE_CHROMIUM`, `TUNNELGATE_CHROMEDRIVER` and `TUNNELGATE_AXE_JS` override the
//! paths.

use std::path::{Path, PathBuf};

pub struct BrowserTools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    pub axe_js: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
}

fn program(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    names.iter().find_map(|name| on_path(name))
}

/// The three tools, or `None` (after saying so on stderr) when one is absent.
pub fn browser_tools() -> Option<BrowserTools> {
    let axe_js = std::env::var_os("TUNNELGATE_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(".cache/browser/node_modules/axe-core/axe.min.js")
        });
    let chromium = program("TUNNELGATE_CHROMIUM", &["chromium", "chromium-browser"]);
    let chromedriver = program("TUNNELGATE_CHROMEDRIVER", &["chromedriver"]);
    let missing: Vec<String> = [
        chromium
            .is_none()
            .then(|| "chromium (apt-get install chromium)".to_string()),
        chromedriver
            .is_none()
            .then(|| "chromedriver (apt-get install chromium-driver)".to_string()),
        (!axe_js.is_file()).then(|| {
            format!(
                "axe-core at {} (npm, .ci/browser/package.json)",
                axe_js.display()
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let (Some(chromium), Some(chromedriver), true) = (chromium, chromedriver, missing.is_empty())
    {
        return Some(BrowserTools {
            chromium,
            chromedriver,
            axe_js,
        });
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a browser test")
        .to_owned();
    let message = format!("{test} needs {}", missing.join(", "));
    assert!(
        std::env::var_os("TUNNELGATE_REQUIRE_BROWSER").is_none_or(|value| value != "1"),
        "{message}"
    );
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
    None
}
