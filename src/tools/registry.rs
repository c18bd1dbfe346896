//! The tools a server offers: built-ins plus the internal API's catalog, listed and called
//! on behalf of a verified identity.

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject, Tool};

use super::whoami;
use crate::access::Identity;

/// A call that cannot be dispatched at all (as opposed to a tool that ran and failed,
/// which is a `CallToolResult` with `isError`).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("unknown tool: {0}")]
    UnknownTool(String),
}

pub struct ToolRegistry {
    listing: Arc<[Tool]>,
}

impl ToolRegistry {
    pub fn builtin_only() -> Self {
        Self {
            listing: Arc::from(vec![whoami::definition()]),
        }
    }

    /// The tools `identity` may see.
    pub fn list(&self, _identity: &Identity) -> Vec<Tool> {
        self.listing.to_vec()
    }

    pub fn len(&self) -> usize {
        self.listing.len()
    }

    pub fn is_empty(&self) -> bool {
        self.listing.is_empty()
    }

    pub async fn call(
        &self,
        identity: &Identity,
        name: &str,
        _arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, CallError> {
        match name {
            whoami::WHOAMI => Ok(whoami::call(identity)),
            other => Err(CallError::UnknownTool(other.to_string())),
        }
    }
}
