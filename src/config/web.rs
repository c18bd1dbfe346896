//! `[web]`: the page at `/` (who you are, your tools, try a tool, how to connect).

use serde::{Deserialize, Serialize};

/// Longest accepted page title, in characters.
const MAX_TITLE_CHARS: usize = 80;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Serve the page at `/` (and its assets under `/assets/`), behind the same allowlist and
    /// Access guard as `/mcp`. `false` leaves `/` answering 404 and every 403 in JSON.
    pub enabled: bool,
    /// The page's heading and `<title>`.
    pub title: String,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            title: "tunnelgate".into(),
        }
    }
}

impl WebSettings {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        let title = self.title.trim();
        if title.is_empty() {
            problems.push("web.title: must not be empty".into());
        } else if title.chars().count() > MAX_TITLE_CHARS {
            problems.push(format!(
                "web.title: \"{title}\" is longer than {MAX_TITLE_CHARS} characters"
            ));
        } else if title.chars().any(char::is_control) {
            problems.push(format!("web.title: {title:?} contains a control character"));
        }
    }
}
