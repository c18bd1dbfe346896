//! tunnelgate: an on-prem MCP server that turns an internal REST API into MCP tools and
//! admits only callers with a verified Cloudflare Access identity.
//!
//! Two flows, each one way (docs/architecture.md has the map):
//! - start-up, once: [`config`] → `openapi` (document → catalog) → `tools` (registry, policy)
//!   → `startup` (listeners);
//! - per request: `mcp` (allowlist) → `access` (the Access JWT) → `mcp` (transport, handler)
//!   → `tools` (policy, limits, tool) → `upstream` → result.
//!
//! Modules are private; what the binary, the integration tests and the benches use is
//! re-exported here.

mod access;
mod admin;
mod audit;
mod cli;
mod cluster;
pub mod config;
mod dev;
mod error_chain;
#[doc(hidden)]
pub mod fuzzing;
mod hex;
mod json;
mod limits;
mod mcp;
mod memory;
mod openapi;
mod outcome;
mod startup;
mod telemetry;
mod tools;
mod upstream;
mod web;

pub use cli::main;
pub use startup::Application;
pub use telemetry::init as init_tracing;

// The Access verification benchmark drives the verifier directly.
pub use access::{AccessVerifier, KeyCache};
pub use admin::metrics::Metrics;
pub use config::issuer_for_team_domain;
// The Redis cost benchmark drives the shared limiter directly.
pub use cluster::{Gcra, SharedLimiter, Store};

// Test and benchmark surface: the dev issuer with its test hooks (shared keys, rotation,
// failing certs, fetch counter, signing of any header and claims) and the key-source seam
// it plugs into, so the integration tests and the bench use the issuer `tunnelgate dev`
// runs instead of keeping their own.
pub use access::{FetchError, KeySource, SigningKeys};
pub use dev::issuer::{DevIssuer, IssuerError, JsonObject, SHARED_KIDS, SignatureKind, SigningKey};
// The browser tests open the page through the same local edge `tunnelgate dev` runs, against
// the demo API's document.
pub use dev::demo_api::openapi_document as demo_api_document;
pub use dev::edge::{EdgeIdentity, origins as edge_origins, serve as serve_edge};
