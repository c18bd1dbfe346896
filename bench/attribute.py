"""Attributes a `perf record -g` profile of tunnelgate to the parts of a tool call.

usage: perf script -i perf.data -F ip,sym | python3 attribute.py
       (bench/profile.sh runs it for you)

Each sample's stack is read leaf first; the sample goes to the first bucket (in the order
below) whose marker occurs anywhere in the stack, so nested work is charged to the most
specific step that caused it. A second table charges the leaf to allocator / memcpy /
kernel / other, to show how much of each step is malloc and copying.
"""

import collections
import sys

# (bucket, markers): a sample goes to the first bucket one of whose markers is on its stack.
BUCKETS = [
    # The upstream's JSON answer, kept as bytes (tools/result.rs): checked, then compacted and
    # escaped in one pass when the answer is written.
    ("upstream answer: syntax check (serde_json, IgnoredAny)",
     ["tunnelgate::tools::result::from_response"], ["IgnoredAny", "serde_json::de::from"]),
    ("rest of tools::result::from_response", ["tunnelgate::tools::result::from_response"], None),
    ("upstream answer: the one pass that compacts and escapes (tools::result)", ["write_compacted_as_string"], None),
    ("rest of writing the result (ToolOutput::write_legacy_result)", ["write_legacy_result"], None),
    ("serde_json::to_writer (ids, errors; rmcp's answers)", ["serde_json::ser::to_vec", "ser::to_writer"], None),
    ("dropping rmcp results / Values", ["drop_in_place<rmcp::model::ServerResult", "drop_in_place<rmcp::model::CallToolResult",
                                        "drop_in_place<serde_json::value::Value"], None),
    ("audit trail (audit::Auditor)", ["tunnelgate::audit::"], None),
    ("metrics (admin::metrics)", ["tunnelgate::admin::metrics::"], None),
    ("rate limits (limits::)", ["tunnelgate::limits::"], None),
    ("policy (tools::policy)", ["tunnelgate::tools::policy::"], None),
    ("argument validation (jsonschema)", ["tunnelgate::tools::arguments::", "jsonschema::"], None),
    ("building the upstream request (tools::request)", ["tunnelgate::tools::request::"], None),
    ("upstream HTTP client (hyper; reqwest only through a proxy)",
     ["tunnelgate::upstream::", "reqwest::", "hyper::", "hyper_util::", "hyper_rustls::"], None),
    ("Access check (access::verifier / guard)", ["tunnelgate::access::verifier", "sha2::", "tunnelgate::access::token_cache"], None),
    ("JSON-RPC guard: the request's one parse (mcp::jsonrpc_guard)", ["tunnelgate::mcp::jsonrpc_guard::check_message"], None),
    ("fast lane: planning the request (mcp::fast_lane::plan)", ["tunnelgate::mcp::fast_lane::plan"], None),
    # Not `telemetry::assign_request_id` itself: the whole request runs inside its span.
    ("request id / tracing spans (telemetry)", ["tunnelgate::telemetry::short_id", "RequestInfo::new",
                                                "tracing_subscriber::", "tracing_core::", "sharded_slab::",
                                                "drop_in_place<tracing::span::Span>", "uuid::"], None),
    ("rmcp (methods other than the fast lane's)", ["rmcp::"], None),
    ("rmcp-actix-web bridge", ["rmcp_actix_web::"], None),
    ("actix-web / actix-http server, and fast-lane code without a step above",
     ["actix_http::", "actix_web::", "actix_server::", "actix_rt::", "actix_service::"], None),
    ("tokio runtime (scheduling, timers, I/O driver)", ["tokio::"], None),
]


def leaf_class(sym: str, kernel: bool) -> str:
    if kernel:
        return "kernel"
    if any(k in sym for k in ("malloc", "_int_free", "cfree", "unlink_chunk", "realloc", "free@", "__libc_free")):
        return "allocator"
    if "memmove" in sym or "memcpy" in sym or "memset" in sym:
        return "memcpy"
    return "other"


def classify(stack):
    text = "\n".join(stack)
    for name, markers, sub in BUCKETS:
        if any(marker in text for marker in markers):
            if sub is None or any(s in text for s in sub):
                return name
    return "other (threads' idle loops, syscalls not under a step)"


def main():
    buckets = collections.Counter()
    leaf = collections.defaultdict(collections.Counter)
    leaf_syms = collections.defaultdict(collections.Counter)
    total = 0
    stack, kernel_leaf, first = [], False, True
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            if stack:
                name = classify(stack)
                buckets[name] += 1
                leaf[name][leaf_class(stack[0], kernel_leaf)] += 1
                leaf_syms[name][stack[0][:120]] += 1
                total += 1
            stack, first = [], True
            continue
        if line[0] not in " \t":
            continue  # the sample header
        parts = line.strip().split(" ", 1)
        sym = parts[1] if len(parts) > 1 else parts[0]
        if first:
            # Kernel text lives at the top of the address space.
            kernel_leaf = parts[0].startswith("ffffffff") and len(parts[0]) == 16
            first = False
        stack.append(sym)
    if stack:
        name = classify(stack)
        buckets[name] += 1
        leaf[name][leaf_class(stack[0], kernel_leaf)] += 1
        total += 1
    if len(sys.argv) > 2 and sys.argv[1] == "--leaves":
        wanted = sys.argv[2]
        for name, counter in leaf_syms.items():
            if wanted in name:
                for sym, count in counter.most_common(25):
                    print(f"{100 * count / total:5.1f}%  {sym}")
        return
    print(f"{total} samples")
    print(f"{'share':>6}  {'alloc':>6} {'memcpy':>6} {'kernel':>6}  step")
    for name, count in buckets.most_common():
        l = leaf[name]
        print(f"{100 * count / total:5.1f}%  {100 * l['allocator'] / total:5.1f}% {100 * l['memcpy'] / total:5.1f}% "
              f"{100 * l['kernel'] / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
