//! Prometheus metrics, served as text on the admin listener's `/metrics`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::outcome::{CallOutcome, LimitKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct McpRequestLabels {
    pub method: String,
    pub tool: String,
    pub outcome: CallOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusClassLabels {
    pub status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub limit: LimitKind,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~8 s: tool calls through a fast LAN upstream sit at the low end.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Every metric family tunnelgate exports.
pub struct Metrics {
    registry: Registry,
    pub mcp_requests: Family<McpRequestLabels, Counter>,
    pub mcp_request_duration: Family<MethodLabels, Histogram, fn() -> Histogram>,
    pub access_denials: Family<ReasonLabels, Counter>,
    pub key_fetches: Family<ResultLabels, Counter>,
    pub signing_keys: Gauge,
    pub key_fetch_last_success: Gauge,
    pub upstream_requests: Family<StatusClassLabels, Counter>,
    pub upstream_duration: Family<StatusClassLabels, Histogram, fn() -> Histogram>,
    pub rate_limited: Family<LimitLabels, Counter>,
    pub sse_streams_open: Gauge<i64, AtomicI64>,
    pub fast_lane_answers: Counter,
    /// `[cluster]` only (registered when a Redis is configured): 1 while Redis answers.
    pub cluster_redis_up: Gauge,
    /// Limit decisions taken by the local fallback bucket because Redis was down.
    pub cluster_limit_fallbacks: Family<LimitLabels, Counter>,
    /// Legacy SSE messages relayed to the replica holding their session, by result.
    pub cluster_relayed_messages: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::build(false)
    }

    /// With the `tunnelgate_cluster_*` families too (a Redis is configured).
    pub fn with_cluster() -> Self {
        Self::build(true)
    }

    fn build(cluster: bool) -> Self {
        let mut registry = Registry::with_prefix("tunnelgate");
        let mcp_requests = Family::<McpRequestLabels, Counter>::default();
        registry.register(
            "mcp_requests",
            "MCP requests by JSON-RPC method, tool and outcome",
            mcp_requests.clone(),
        );
        let mcp_request_duration =
            Family::<MethodLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "mcp_request_duration_seconds",
            "Time to answer an MCP request, by method",
            mcp_request_duration.clone(),
        );
        let access_denials = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "access_denials",
            "Requests refused before reaching a tool (Access check, Host/Origin allowlist), by reason",
            access_denials.clone(),
        );
        let key_fetches = Family::<ResultLabels, Counter>::default();
        registry.register(
            "access_key_fetches",
            "Fetches of the Access signing keys, by result",
            key_fetches.clone(),
        );
        let signing_keys = Gauge::default();
        registry.register(
            "access_signing_keys",
            "Signing keys currently cached",
            signing_keys.clone(),
        );
        let key_fetch_last_success = Gauge::default();
        registry.register(
            "access_key_fetch_last_success_timestamp_seconds",
            "Unix time of the last successful signing-key fetch (0 = never); alert on its age",
            key_fetch_last_success.clone(),
        );
        let upstream_requests = Family::<StatusClassLabels, Counter>::default();
        registry.register(
            "upstream_requests",
            "Requests to the internal API, by status class (2xx, 4xx, 429, 5xx, error)",
            upstream_requests.clone(),
        );
        let upstream_duration =
            Family::<StatusClassLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "upstream_request_duration_seconds",
            "Duration of requests to the internal API, by status class",
            upstream_duration.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited_calls",
            "Tool calls refused by a rate limit, by limit",
            rate_limited.clone(),
        );
        let sse_streams_open = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "sse_streams_open",
            "Open legacy SSE streams",
            sse_streams_open.clone(),
        );
        let fast_lane_answers = Counter::default();
        registry.register(
            "fast_lane_answers",
            "tools/call and tools/list requests answered without rmcp's per-request service",
            fast_lane_answers.clone(),
        );
        let cluster_redis_up = Gauge::default();
        let cluster_limit_fallbacks = Family::<LimitLabels, Counter>::default();
        let cluster_relayed_messages = Family::<ResultLabels, Counter>::default();
        if cluster {
            registry.register(
                "cluster_redis_up",
                "1 while the shared Redis answers, 0 while this replica runs on its fallback",
                cluster_redis_up.clone(),
            );
            registry.register(
                "cluster_limit_fallbacks",
                "Rate-limit decisions taken locally (budget / cluster.expected_replicas) because Redis was down, by limit",
                cluster_limit_fallbacks.clone(),
            );
            registry.register(
                "cluster_relayed_messages",
                "Legacy SSE messages relayed to the replica holding their session, by result",
                cluster_relayed_messages.clone(),
            );
        }
        Self {
            registry,
            fast_lane_answers,
            cluster_redis_up,
            cluster_limit_fallbacks,
            cluster_relayed_messages,
            mcp_requests,
            mcp_request_duration,
            access_denials,
            key_fetches,
            signing_keys,
            key_fetch_last_success,
            upstream_requests,
            upstream_duration,
            rate_limited,
            sse_streams_open,
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }

    pub fn record_access_denial(&self, reason: &str) {
        self.access_denials
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn record_key_fetch(&self, succeeded: bool, key_count: usize, unix_now: u64) {
        let result = if succeeded { "success" } else { "failure" };
        self.key_fetches
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
        if succeeded {
            self.signing_keys.set(key_count as i64);
            self.key_fetch_last_success.set(unix_now as i64);
        }
    }

    /// `tool` must be a catalog name, a built-in's name, `unknown` or empty: never a name a
    /// caller made up, or every made-up name would add a series.
    pub fn record_mcp_request(
        &self,
        method: &str,
        tool: &str,
        outcome: CallOutcome,
        elapsed: Duration,
    ) {
        self.mcp_requests
            .get_or_create(&McpRequestLabels {
                method: method.to_string(),
                tool: tool.to_string(),
                outcome,
            })
            .inc();
        self.mcp_request_duration
            .get_or_create(&MethodLabels {
                method: method.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn record_upstream(&self, status_class: &str, elapsed: Duration) {
        let labels = StatusClassLabels {
            status_class: status_class.to_string(),
        };
        self.upstream_requests.get_or_create(&labels).inc();
        self.upstream_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn record_rate_limited(&self, limit: LimitKind) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    pub fn record_limit_fallback(&self, limit: LimitKind) {
        self.cluster_limit_fallbacks
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    pub fn record_relay(&self, result: &str) {
        self.cluster_relayed_messages
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    pub fn sse_stream_opened(&self) {
        self.sse_streams_open.inc();
    }

    pub fn sse_stream_closed(&self) {
        self.sse_streams_open.dec();
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// The request-scoped form used by middleware, which reach metrics through app data.
pub fn record_access_denial(request: &actix_web::HttpRequest, reason: &str) {
    if let Some(metrics) = request.app_data::<actix_web::web::Data<Metrics>>() {
        metrics.record_access_denial(reason);
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Metrics>();
    let _ = Ordering::Relaxed;
}
