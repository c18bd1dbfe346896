//! Integration tests: each spawns the real application on loopback port 0.

mod access;
mod helpers;
mod issuer;
mod keys;
mod legacy_sse;
mod streamable;
