//! tunnelgate: an on-prem MCP server that turns an internal REST API into MCP tools and
//! admits only callers with a verified Cloudflare Access identity.

pub mod access;
pub mod admin;
pub mod audit;
pub mod cli;
pub mod config;
pub mod dev;
pub mod limits;
pub mod mcp;
pub mod startup;
pub mod telemetry;
pub mod tools;
pub mod upstream;

pub use startup::Application;
