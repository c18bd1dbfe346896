//! Integration tests: each spawns the real application on loopback port 0.

// Tests and benchmarks may panic on a broken fixture; production code may not (Cargo.toml [lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod access;
mod api_tools;
#[path = "../support/browser.rs"]
mod browser_tools;
mod cancellation;
mod cluster;
mod doctor;
mod fake_upstream;
mod fast_lane;
mod governance;
mod helpers;
mod idle_cut;
mod issuer;
mod keys;
mod legacy_sse;
mod polar;
#[path = "../support/polar_document.rs"]
mod polar_document;
#[path = "../support/redis_server.rs"]
mod redis_server;
mod rmcp_client;
mod streamable;
mod tls_front;
mod web;
mod web_browser;
