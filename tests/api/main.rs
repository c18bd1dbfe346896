//! Integration tests: each spawns the real application on loopback port 0.

mod access;
mod api_tools;
mod fake_upstream;
mod governance;
mod helpers;
mod issuer;
mod keys;
mod legacy_sse;
mod polar;
#[path = "../support/polar_document.rs"]
mod polar_document;
mod streamable;
