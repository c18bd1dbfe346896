//! What became of a tool call, and which limit refused one: the one vocabulary that the tool
//! result, the audit trail and the metrics share, so a label or an audit field can only ever
//! take one of these values.

use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// The outcome of one `tools/call` (and of a `tools/list`, which is always `Ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// The tool ran and answered.
    Ok,
    /// The tool ran and failed: invalid arguments, an upstream error, an unreachable upstream.
    ToolError,
    /// A rate limit refused the call before it reached the upstream.
    RateLimited,
    /// No such tool, or one the caller may not see (the two answer alike).
    UnknownTool,
    /// The caller stopped waiting before the call ended: its connection closed, or it sent
    /// `notifications/cancelled`. Nobody is told a result; the upstream request, if one was
    /// under way, was abandoned.
    Cancelled,
}

impl CallOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ToolError => "tool_error",
            Self::RateLimited => "rate_limited",
            Self::UnknownTool => "unknown_tool",
            Self::Cancelled => "cancelled",
        }
    }
}

impl EncodeLabelValue for CallOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// Which rate limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The caller's own bucket (`limits.per_identity`).
    PerIdentity,
    /// The budget all callers share for the upstream API (`limits.upstream`).
    Upstream,
}

impl LimitKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PerIdentity => "per_identity",
            Self::Upstream => "upstream",
        }
    }
}

impl EncodeLabelValue for LimitKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}
