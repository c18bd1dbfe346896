//! The audit trail: one JSON event per tool call and per denied request, to stdout and
//! optionally appended to a file, written in batches by one writer thread (`audit/writer.rs`),
//! at most a few milliseconds after the event. Tokens and the upstream credential never appear;
//! arguments appear as a SHA-256 digest unless configured otherwise.

mod denials;
mod writer;

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::AuditSettings;
use crate::outcome::CallOutcome;

pub const AUDIT_TARGET: &str = "tunnelgate::audit";

/// The upstream request a tool call made.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamTrace {
    pub method: String,
    /// The OpenAPI path template, never the filled-in path (which may hold argument values).
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

#[derive(Debug, Serialize)]
struct Event<'a> {
    time: String,
    target: &'static str,
    event: &'static str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cf_ray: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<&'a UpstreamTrace>,
    /// Tool calls not made over MCP: `"web_page"` for the page's try-a-tool form.
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<&'a str>,
    duration_ms: f64,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// Denials: the client address (`Cf-Connecting-IP`, else the peer) and the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    /// Denials folded into this event (identical ones within a second); absent means one.
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
}

/// One tool call, as the registry saw it.
pub struct ToolCallRecord<'a> {
    pub request_id: &'a str,
    pub cf_ray: Option<&'a str>,
    /// The caller as Access verified it: email or service-token name, and `sub`.
    pub principal: &'a str,
    pub sub: &'a str,
    pub tool: &'a str,
    pub arguments: Option<&'a Map<String, Value>>,
    pub upstream: Option<&'a UpstreamTrace>,
    /// `None` for MCP; else where the call came from (`"web_page"`).
    pub via: Option<&'a str>,
    pub duration: Duration,
    pub outcome: CallOutcome,
}

pub struct Auditor {
    /// `None` when the trail goes nowhere (`audit.stdout = false` and no file).
    writer: Option<writer::AuditWriter>,
    denials: denials::DenialFolder,
    include_arguments: bool,
    redact_keys: Vec<String>,
}

impl Auditor {
    pub fn from_settings(settings: &AuditSettings) -> std::io::Result<Self> {
        let file = match &settings.file {
            Some(path) => Some(open_append(path)?),
            None => None,
        };
        let writer = if settings.stdout || file.is_some() {
            Some(writer::AuditWriter::start(settings.stdout, file)?)
        } else {
            None
        };
        Ok(Self {
            writer,
            denials: denials::DenialFolder::default(),
            include_arguments: settings.include_arguments,
            redact_keys: settings
                .redact_keys
                .iter()
                .map(|key| key.to_ascii_lowercase())
                .collect(),
        })
    }

    /// Returns once every event recorded so far is written and flushed (SIGHUP, shutdown).
    pub async fn flush(&self) {
        if let Some(writer) = &self.writer {
            writer.flush().await;
        }
    }

    /// The event for one tool call, encoded; `None` when the trail goes nowhere.
    pub fn tool_call_line(&self, record: &ToolCallRecord<'_>) -> Option<Vec<u8>> {
        self.writer.as_ref()?;
        let arguments_sha256 = record.arguments.map(|arguments| {
            let canonical = serde_json::to_vec(arguments).unwrap_or_default();
            crate::hex::lower_hex(&Sha256::digest(&canonical))
        });
        let arguments = if self.include_arguments {
            record
                .arguments
                .map(|arguments| self.redact(&Value::Object(arguments.clone())))
        } else {
            None
        };
        encode(&Event {
            time: now(),
            target: AUDIT_TARGET,
            event: "tool_call",
            request_id: record.request_id,
            cf_ray: record.cf_ray,
            principal: Some(record.principal),
            sub: Some(record.sub),
            tool: Some(record.tool),
            arguments_sha256,
            arguments,
            upstream: record.upstream,
            via: record.via,
            duration_ms: record.duration.as_secs_f64() * 1000.0,
            outcome: record.outcome.as_str(),
            reason: None,
            source: None,
            path: None,
            count: None,
        })
    }

    /// Writes the encoded event in `slot`, waiting while the writer's queue is full; a
    /// caller dropped while it waits finds the event still in `slot`.
    pub async fn write_from(&self, slot: &mut Option<Vec<u8>>) {
        if let Some(writer) = &self.writer {
            writer.write_from(slot).await;
        }
    }

    /// Writes an encoded event without waiting (from `Drop`): a full queue hands it to a
    /// task that waits for room.
    pub fn write_detached(&self, line: Vec<u8>) {
        if let Some(writer) = &self.writer {
            writer.write_detached(line);
        }
    }

    /// A request refused before reaching any tool (Access check, allowlist). Identical
    /// denials within a second are folded into one event with a count.
    pub fn denied(&self, denial: Denial<'_>) {
        let Some(writer) = &self.writer else {
            return;
        };
        let key = denials::DenialKey {
            reason: denial.reason.to_owned(),
            source: denial.source.to_owned(),
            path: denial.path.to_owned(),
        };
        let denials::Verdict::Record { closed } = self.denials.denial(key, Instant::now()) else {
            return;
        };
        for line in closed.iter().filter_map(folded_event) {
            writer.write_detached(line);
        }
        if let Some(line) = encode(&Event {
            time: now(),
            target: AUDIT_TARGET,
            event: "access_denied",
            request_id: denial.request_id,
            cf_ray: denial.cf_ray,
            principal: None,
            sub: None,
            tool: None,
            arguments_sha256: None,
            arguments: None,
            upstream: None,
            via: None,
            duration_ms: denial.duration.as_secs_f64() * 1000.0,
            outcome: "denied",
            reason: Some(denial.reason),
            source: Some(denial.source),
            path: Some(denial.path),
            count: None,
        }) {
            writer.write_detached(line);
        }
    }

    /// Records the folded denials of every window that has ended (all of them on shutdown).
    pub async fn close_denial_windows(&self, everything: bool) {
        let Some(writer) = &self.writer else {
            return;
        };
        for line in self
            .denials
            .close_windows(Instant::now(), everything)
            .iter()
            .filter_map(folded_event)
        {
            writer.write(line).await;
        }
    }

    /// Closes ended denial windows once a window's length, for as long as it runs.
    pub fn spawn_denial_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let auditor = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(denials::FOLD_WINDOW);
            loop {
                ticks.tick().await;
                auditor.close_denial_windows(false).await;
            }
        })
    }

    fn redact(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, inner)| {
                        let lowered = key.to_ascii_lowercase();
                        if self
                            .redact_keys
                            .iter()
                            .any(|redacted| lowered.contains(redacted.as_str()))
                        {
                            (key.clone(), Value::String("[redacted]".into()))
                        } else {
                            (key.clone(), self.redact(inner))
                        }
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|item| self.redact(item)).collect())
            }
            other => other.clone(),
        }
    }
}

/// One request refused before any tool.
pub struct Denial<'a> {
    pub request_id: &'a str,
    pub cf_ray: Option<&'a str>,
    pub reason: &'a str,
    pub source: &'a str,
    pub path: &'a str,
    pub duration: Duration,
}

/// The event for denials folded together.
fn folded_event(folded: &denials::Folded) -> Option<Vec<u8>> {
    encode(&Event {
        time: now(),
        target: AUDIT_TARGET,
        event: "access_denied",
        request_id: "-",
        cf_ray: None,
        principal: None,
        sub: None,
        tool: None,
        arguments_sha256: None,
        arguments: None,
        upstream: None,
        via: None,
        duration_ms: 0.0,
        outcome: "denied",
        reason: Some(&folded.key.reason),
        source: Some(&folded.key.source),
        path: Some(&folded.key.path),
        count: Some(folded.count),
    })
}

/// One event as a JSON line.
fn encode(event: &Event<'_>) -> Option<Vec<u8>> {
    match serde_json::to_vec(event) {
        Ok(mut line) => {
            line.push(b'\n');
            Some(line)
        }
        // Strings, numbers and JSON values always serialise; say so loudly if one did not.
        Err(error) => {
            tracing::error!(error = %error, "cannot encode an audit event");
            None
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Counts and audits a request refused before any tool (Access check, allowlist, the page's
/// cross-site check), from the code that refused it.
pub fn record_denied_request(request: &actix_web::HttpRequest, reason: &str) {
    use actix_web::HttpMessage;
    crate::admin::metrics::record_access_denial(request, reason);
    if let Some(auditor) = request.app_data::<actix_web::web::Data<Auditor>>() {
        let extensions = request.extensions();
        let info = extensions.get::<crate::telemetry::RequestInfo>();
        let source = client_address(request);
        auditor.denied(Denial {
            request_id: info.map_or("-", |info| &*info.request_id),
            cf_ray: info.and_then(|info| info.cf_ray.as_deref()),
            reason,
            source: &source,
            path: request.path(),
            duration: info.map_or(Duration::ZERO, |info| info.started.elapsed()),
        });
    }
}

/// The client as Cloudflare saw it (`Cf-Connecting-IP`, when it parses as an address), else
/// the connection's peer (cloudflared, on the LAN).
fn client_address(request: &actix_web::HttpRequest) -> String {
    request
        .headers()
        .get("cf-connecting-ip")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<std::net::IpAddr>().ok())
        .map(|address| address.to_string())
        .or_else(|| request.peer_addr().map(|peer| peer.ip().to_string()))
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn redacts_configured_keys_at_any_depth() {
        let auditor = Auditor {
            writer: None,
            denials: denials::DenialFolder::default(),
            include_arguments: true,
            redact_keys: vec!["token".into(), "password".into()],
        };

        let redacted = auditor.redact(
            &json!({"id": "p1", "body": {"api_token": "t", "nested": [{"Password": "x"}]}}),
        );

        assert_eq!(
            redacted,
            json!({"id": "p1", "body": {"api_token": "[redacted]", "nested": [{"Password": "[redacted]"}]}})
        );
    }
}
