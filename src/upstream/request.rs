//! One request to the internal API, as the runtime built it from a tool call.

use http::Method;
use serde_json::Value;

/// The upstream call for one tool invocation. `path_and_query` starts with `/` and is appended to the configured
/// base URL as-is (string concatenation, so a base path such as `/api` is kept).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    pub method: Method,
    pub path_and_query: String,
    /// Header parameters, plus `content-type` when there is a body. Configured headers (credentials) must be
    /// applied after these and replace, not add to, any header of the same name.
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}
