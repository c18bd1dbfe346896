//! `[server]` and `[admin]`: the MCP listener and its limits, and the admin listener.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::values::{BindAddress, ByteSize, Origin, as_text, as_text_list, string_or_list};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address of the MCP listener (the one cloudflared forwards to).
    #[serde(with = "as_text")]
    pub bind: BindAddress,
    /// Zero Trust hostnames clients use; with loopback names they form the Host allowlist.
    #[serde(deserialize_with = "string_or_list")]
    pub public_hostnames: Vec<String>,
    pub mode: ServerMode,
    /// In stateless mode, answer `tools/call` and `tools/list` without rmcp's per-request
    /// service (same answers, a fraction of the CPU); `false` sends everything through rmcp.
    #[serde(deserialize_with = "super::values::strict_bool")]
    pub fast_lane: bool,
    /// Idle keep-alive for client connections; longer than cloudflared's 90 s pool so the
    /// connector closes idle connections first and never sends into a closing socket.
    #[serde(with = "super::values::duration_text")]
    pub keep_alive: Duration,
    /// Interval of SSE keep-alive comments; must stay well under Cloudflare's ~100 s idle cut.
    #[serde(with = "super::values::duration_text")]
    pub sse_keep_alive: Duration,
    /// Largest accepted request body; larger bodies get 413.
    pub max_body: ByteSize,
    /// Extra browser origins allowed besides the https origins of the hostnames, e.g.
    /// `http://localhost:6274` for a local MCP Inspector web UI.
    #[serde(with = "as_text_list")]
    pub allowed_origins: Vec<Origin>,
    /// Most legacy SSE sessions open at once.
    pub max_sse_sessions: usize,
    /// A legacy SSE session with no client message for this long is closed.
    #[serde(with = "super::values::duration_text")]
    pub sse_idle_timeout: Duration,
    /// Most stateful Streamable HTTP sessions at once (`mode = "stateful"`); one more
    /// answers 503 with `Retry-After`. Legacy SSE has its own cap, `max_sse_sessions`.
    pub max_sessions: usize,
    /// A stateful Streamable HTTP session with no request for this long is closed.
    #[serde(with = "super::values::duration_text")]
    pub session_idle_timeout: Duration,
    /// On SIGTERM or SIGINT, how long calls in flight may take to finish before the
    /// listener closes them.
    #[serde(with = "super::values::duration_text")]
    pub shutdown_grace: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: BindAddress(([0, 0, 0, 0], 8080).into()),
            public_hostnames: Vec::new(),
            mode: ServerMode::Stateless,
            fast_lane: true,
            allowed_origins: Vec::new(),
            keep_alive: Duration::from_secs(120),
            sse_keep_alive: Duration::from_secs(15),
            max_body: ByteSize(4 * 1024 * 1024),
            max_sse_sessions: 1_000,
            sse_idle_timeout: Duration::from_secs(30 * 60),
            max_sessions: 1_000,
            session_idle_timeout: Duration::from_secs(30 * 60),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ServerSettings {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        for hostname in &self.public_hostnames {
            if hostname.is_empty()
                || hostname.contains("://")
                || hostname.contains('/')
                || hostname.contains(':')
                || hostname.chars().any(char::is_whitespace)
            {
                problems.push(format!(
                    "server.public_hostnames: \"{hostname}\" must be a bare hostname such as mcp.example.com (no scheme, port or path)"
                ));
            }
        }
        if self.sse_keep_alive < Duration::from_secs(1) || self.sse_keep_alive.as_secs() >= 90 {
            problems.push(format!(
                "server.sse_keep_alive: {} must be between 1s and 89s (Cloudflare cuts streams idle for ~100 s)",
                humantime::format_duration(self.sse_keep_alive)
            ));
        }
        if self.max_body.0 == 0 {
            problems.push("server.max_body: must be greater than zero".into());
        }
        if self.shutdown_grace > Duration::from_secs(600) {
            problems.push("server.shutdown_grace: must be at most 10m".into());
        }
        if self.max_sessions == 0 {
            problems.push("server.max_sessions: must be at least 1".into());
        }
        if self.session_idle_timeout < Duration::from_secs(1) {
            problems.push("server.session_idle_timeout: must be at least 1s".into());
        }
        if self.max_sse_sessions == 0 {
            problems.push("server.max_sse_sessions: must be at least 1".into());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerMode {
    /// Any replica can serve any request; no `Mcp-Session-Id` is issued.
    Stateless,
    /// Sessions are kept in this process for clients that negotiate them.
    Stateful,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Address of the admin listener (`/healthz`, `/readyz`, `/metrics`); never tunnelled.
    #[serde(with = "as_text")]
    pub bind: BindAddress,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            bind: BindAddress(([0, 0, 0, 0], 9090).into()),
        }
    }
}
