//! `[tools]`: which of the document's operations are served, and how.

use serde::{Deserialize, Serialize};

use super::values::{NameGlob, as_text_list};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolsMode {
    /// Every selected operation is its own tool.
    Static,
    /// Three tools (`search_tools`, `describe_tool`, `call_tool`) front the whole catalog.
    Dynamic,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsSettings {
    /// Serve only GET/HEAD operations unless switched off.
    #[serde(deserialize_with = "super::values::strict_bool")]
    pub read_only: bool,
    /// Globs over tool names and tags; when any are given, only matching operations are served.
    #[serde(with = "as_text_list")]
    pub include: Vec<NameGlob>,
    /// Globs over tool names and tags; matching operations are never served.
    #[serde(with = "as_text_list")]
    pub exclude: Vec<NameGlob>,
    pub mode: ToolsMode,
    /// Longest tool description, in characters.
    pub description_max: usize,
}

impl Default for ToolsSettings {
    fn default() -> Self {
        Self {
            read_only: true,
            include: Vec::new(),
            exclude: Vec::new(),
            mode: ToolsMode::Static,
            description_max: 300,
        }
    }
}

impl ToolsSettings {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        if self.description_max < 40 {
            problems.push("tools.description_max: must be at least 40".into());
        }
    }
}
