"""Turns one bench/run.sh output folder into a Markdown results table (medians of the runs)
and results.json. usage: report.py OUT_DIR > results.md"""

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

OUT = Path(sys.argv[1])
RAW = OUT / "raw"
RUNS = sorted(p for p in RAW.glob("run*") if p.is_dir())
# The fixed-rate runs' rate (bench/run.sh passes RATE through; 500 by default).
RATE = int(os.environ.get("RATE", "500"))


def load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def oha(run: Path, name: str):
    data = load(run / f"{name}.json")
    cpu = load(run / f"{name}.cpu.json")
    if data is None:
        return None
    codes = data.get("statusCodeDistribution", {})
    ok = codes.get("200", 0)
    total = sum(codes.values())
    pct = data["latencyPercentiles"]
    return {
        "rps": ok / data["summary"]["total"],
        "p50_ms": pct["p50"] * 1000,
        "p99_ms": pct["p99"] * 1000,
        "requests": ok,
        # oha counts the requests still in flight when the duration ends as "aborted due to
        # deadline"; they are not failures.
        "failed": total - ok + sum(v for k, v in data.get("errorDistribution", {}).items()
                                   if k != "aborted due to deadline"),
        "bytes_per_response": data["summary"].get("sizePerRequest"),
        "cpu": cpu,
    }


def sse(run: Path, name: str):
    data = load(run / f"{name}.json")
    cpu = load(run / f"{name}.cpu.json")
    if data is None:
        return None
    return {
        "rps": data["rps"],
        "p50_ms": data["p50_ms"],
        "p99_ms": data["p99_ms"],
        "requests": data["requests"],
        "failed": data["errors"],
        "cpu": cpu,
    }


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def series(kind, name, field):
    out = []
    for run in RUNS:
        row = kind(run, name)
        out.append(None if row is None else row[field])
    return out


def cpu_per_call_us(kind, name, process):
    out = []
    for run in RUNS:
        row = kind(run, name)
        key = process if process.endswith("_s") else f"{process}_cpu_s"
        if row and row["cpu"] and row["requests"] and key in row["cpu"]:
            out.append(row["cpu"][key] / row["requests"] * 1e6)
    return out


def paired_runs(kind_a, a, kind_b, b, field, op):
    """Per-run op(b, a): both sides come from the same run."""
    out = []
    for run in RUNS:
        ra, rb = kind_a(run, a), kind_b(run, b)
        if ra and rb:
            out.append(op(rb[field], ra[field]))
    return out


def paired(kind_a, a, kind_b, b, field, op):
    return med(paired_runs(kind_a, a, kind_b, b, field, op))


def spread(kind_a, a, kind_b, b, field):
    """The per-run range of an added latency, so a reader sees how much the machine moved it."""
    values = paired_runs(kind_a, a, kind_b, b, field, lambda y, x: y - x)
    if len(values) < 2:
        return ""
    return f" (runs: {min(values):+.3f} to {max(values):+.3f})"


def fmt(value, digits=2, unit=""):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


def verdict(ok):
    if ok is None:
        return "–"
    return "met" if ok else "**missed**"


results = {"runs": len(RUNS)}
lines = []
say = lines.append

# --- the machine ---
cpu_model = next(
    (l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")),
    platform.processor(),
)
mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
say(f"Machine: {cores} cores ({cpu_model}), {mem_gib:.0f} GiB, Linux {platform.release()}; "
    f"{len(RUNS)} runs, medians shown. Output folder: `{OUT.name}`.")
say("")

# --- latency and throughput ---
say("### Tool calls (`products_list`, limit 10, 8.6 KB upstream body)")
say("")
say("| Scenario | Direct to upstream (floor) | tunnelgate | tunnelgate − floor / ratio | Polar's former server |")
say("|---|---|---|---|---|")


def latency_row(label, direct, tg, polar=None, kind_tg=oha):
    d50, d99 = med(series(oha, direct, "p50_ms")), med(series(oha, direct, "p99_ms"))
    t50, t99 = med(series(kind_tg, tg, "p50_ms")), med(series(kind_tg, tg, "p99_ms"))
    add50 = paired(oha, direct, kind_tg, tg, "p50_ms", lambda b, a: b - a)
    add99 = paired(oha, direct, kind_tg, tg, "p99_ms", lambda b, a: b - a)
    polar_cell = "–"
    if polar:
        p50, p99 = med(series(sse, polar, "p50_ms")), med(series(sse, polar, "p99_ms"))
        if p50 is not None:
            polar_cell = f"{fmt(p50, 3)} / {fmt(p99, 3)} ms"
    say(f"| {label}: p50 / p99 | {fmt(d50, 3)} / {fmt(d99, 3)} ms | {fmt(t50, 3)} / {fmt(t99, 3)} ms "
        f"| +{fmt(add50, 3)} / +{fmt(add99, 3)} ms | {polar_cell} |")
    return add50, add99


def rps_row(label, direct, tg, polar=None, kind_tg=oha):
    d, t = med(series(oha, direct, "rps")), med(series(kind_tg, tg, "rps"))
    ratio = paired(oha, direct, kind_tg, tg, "rps", lambda b, a: b / a)
    polar_cell = "–"
    if polar:
        p = med(series(sse, polar, "rps"))
        polar_cell = f"{fmt(p, 0)} /s" if p is not None else "–"
    say(f"| {label}: calls/s | {fmt(d, 0)} /s | {fmt(t, 0)} /s | ×{fmt(ratio, 2)} | {polar_cell} |")
    return ratio


rate_add50, rate_add99 = latency_row("Fixed rate", "direct_rate", "tunnelgate_rate")
rps_row("Fixed rate", "direct_rate", "tunnelgate_rate")
sat_add50, sat_add99 = latency_row("Saturation", "direct_sat", "tunnelgate_sat")
sat_ratio = rps_row("Saturation", "direct_sat", "tunnelgate_sat")
c1_add50, c1_add99 = latency_row("One client, Streamable HTTP", "direct_c1", "tunnelgate_c1")
rps_row("One client, Streamable HTTP", "direct_c1", "tunnelgate_c1")
latency_row("One client, legacy SSE", "direct_c1", "tunnelgate_sse_c1", "polar_sse_c1", kind_tg=sse)
rps_row("One client, legacy SSE", "direct_c1", "tunnelgate_sse_c1", "polar_sse_c1", kind_tg=sse)
latency_row("16 clients, legacy SSE", "direct_sat", "tunnelgate_sse_c16", kind_tg=sse)
rps_row("16 clients, legacy SSE", "direct_sat", "tunnelgate_sse_c16", kind_tg=sse)
say("")

tg_sse50 = med(series(sse, "tunnelgate_sse_c1", "p50_ms"))
polar50 = med(series(sse, "polar_sse_c1", "p50_ms"))
polar99 = med(series(sse, "polar_sse_c1", "p99_ms"))
tg_sse99 = med(series(sse, "tunnelgate_sse_c1", "p99_ms"))
if polar50 and tg_sse50:
    say(f"One SSE client, one call at a time: Polar's former server takes ×{polar50 / tg_sse50:.1f} tunnelgate's "
        f"p50 and ×{polar99 / tg_sse99:.1f} its p99; it serves ×{med(series(sse, 'polar_sse_c1', 'rps')) / med(series(sse, 'tunnelgate_sse_c1', 'rps')):.2f} "
        f"the calls per second.")
    say("")

# --- CPU ---
say("### CPU time per tool call (utime + stime from /proc/PID/stat over the run ÷ calls)")
say("")
say("| Scenario | tunnelgate (of which kernel) | upstream | load generator | Polar's former server |")
say("|---|---|---|---|---|")
cpu = {}
for label, kind, name in [
    ("Fixed rate", oha, "tunnelgate_rate"),
    ("Saturation", oha, "tunnelgate_sat"),
    ("One client, Streamable HTTP", oha, "tunnelgate_c1"),
    ("One client, legacy SSE", sse, "tunnelgate_sse_c1"),
    ("16 clients, legacy SSE", sse, "tunnelgate_sse_c16"),
]:
    tg = med(cpu_per_call_us(kind, name, "tunnelgate"))
    tg_sys = med(cpu_per_call_us(kind, name, "tunnelgate_system_s"))
    up = med(cpu_per_call_us(kind, name, "upstream"))
    gen = med(cpu_per_call_us(kind, name, "loadgen"))
    cpu[name] = tg
    say(f"| {label} | {fmt(tg, 0)} µs ({fmt(tg_sys, 0)} µs) | {fmt(up, 0)} µs | {fmt(gen, 0)} µs | – |")
polar_cpu = med(cpu_per_call_us(sse, "polar_sse_c1", "polar"))
polar_up = med(cpu_per_call_us(sse, "polar_sse_c1", "upstream"))
polar_gen = med(cpu_per_call_us(sse, "polar_sse_c1", "loadgen"))
say(f"| One client, legacy SSE (Polar) | – | {fmt(polar_up, 0)} µs | {fmt(polar_gen, 0)} µs | {fmt(polar_cpu, 0)} µs |")
for label, name in [("Direct to upstream, fixed rate", "direct_rate"), ("Direct to upstream, saturation", "direct_sat"),
                    ("Direct to upstream, one client", "direct_c1")]:
    up = med(cpu_per_call_us(oha, name, "upstream"))
    gen = med(cpu_per_call_us(oha, name, "loadgen"))
    say(f"| {label} | – | {fmt(up, 0)} µs | {fmt(gen, 0)} µs | – |")
say("")

# --- memory and tools/list ---
memory = load(RAW / "memory.json") or {}
catalogs = {p.stem.removeprefix("catalog_"): load(p) for p in RAW.glob("catalog_*.json")}
ro = [c for name, c in catalogs.items() if name.startswith("static_read_only")]
ro_idle = med([c["rss_idle_kb"] for c in ro]) if ro else None
ro_bytes = ro[0]["tools_list_bytes"] if ro else None
ro_tools = ro[0]["tools"] if ro else None
write = catalogs.get("static_write")
dynamic = catalogs.get("dynamic")


def mb(kb):
    return None if kb is None else kb / 1024


say("### Resident memory (VmRSS)")
say("")
say("| State | tunnelgate | target |")
say("|---|---|---|")
say(f"| Idle, Polar read-only catalog ({ro_tools} tools; median of {len(ro)} starts) | {fmt(mb(ro_idle), 1)} MB | ≤ 20 MB: {verdict(ro_idle and mb(ro_idle) <= 20)} |")
if write:
    say(f"| Idle, Polar write-enabled catalog ({write['tools']} tools) | {fmt(mb(write['rss_idle_kb']), 1)} MB | ≤ 20 MB: {verdict(mb(write['rss_idle_kb']) <= 20)} |")
if dynamic:
    say(f"| Idle, dynamic mode ({dynamic['tools']} tools) | {fmt(mb(dynamic['rss_idle_kb']), 1)} MB | – |")
say(f"| After all load runs (read-only catalog) | {fmt(mb(memory.get('tunnelgate_rss_after_load_kb')), 1)} MB | – |")
streams = memory.get("tunnelgate_rss_streams_kb")
say(f"| {memory.get('streams_open')} open legacy SSE streams (initialized sessions) | {fmt(mb(streams), 1)} MB | ≤ 40 MB: {verdict(streams and mb(streams) <= 40)} |")
say(f"| After those streams closed | {fmt(mb(memory.get('tunnelgate_rss_after_streams_kb')), 1)} MB | – |")
if memory.get("polar_rss_start_kb"):
    say(f"| Polar's former server: idle / after its load runs | {fmt(mb(memory['polar_rss_start_kb']), 1)} / {fmt(mb(memory.get('polar_rss_after_load_kb')), 1)} MB | – |")
say("")

say("### `tools/list` response size")
say("")
say("| Catalog | tools | bytes | bytes per tool | target |")
say("|---|---|---|---|---|")
if ro:
    per = ro_bytes / ro_tools
    say(f"| Polar, static, read-only | {ro_tools} | {ro_bytes:,} | {per:,.0f} | ≤ 1.2 KB per tool: {verdict(per <= 1200)} |")
if write:
    per_w = write["tools_list_bytes"] / write["tools"]
    say(f"| Polar, static, write-enabled | {write['tools']} | {write['tools_list_bytes']:,} | {per_w:,.0f} | – |")
if dynamic:
    say(f"| Polar, dynamic mode | {dynamic['tools']} | {dynamic['tools_list_bytes']:,} | {dynamic['tools_list_bytes'] / dynamic['tools']:,.0f} | ≤ 3 KB in all: {verdict(dynamic['tools_list_bytes'] <= 3000)} |")
say("")

access = load(RAW / "access.json")
if access:
    say("### Access verification (benches/access_verification.rs, median of 5 rounds)")
    say("")
    say("| Case | per verification | target |")
    say("|---|---|---|")
    say(f"| Token seen before (cache hit) | {access['cached_ns'] / 1000:.2f} µs | ≤ 2 µs: {verdict(access['cached_ns'] <= 2000)} |")
    say(f"| Token seen before, 2 threads at once | {access['cached_two_threads_ns'] / 1000:.2f} µs | – |")
    say(f"| New token (RS256 check) | {access['uncached_ns'] / 1000:.1f} µs | ≤ 60 µs: {verdict(access['uncached_ns'] <= 60000)} |")
    say(f"| of which jsonwebtoken's RS256 decode alone | {access['uncached_signature_only_ns'] / 1000:.1f} µs | – |")
    say("")

say("### Targets")
say("")
say("| Target | measured | verdict |")
say("|---|---|---|")
sat_cpu = cpu.get("tunnelgate_sat")
say(f"| CPU per tools/call at saturation ≤ 100 µs | {fmt(sat_cpu, 0)} µs | {verdict(sat_cpu is not None and sat_cpu <= 100)} |")
say(f"| tools/call adds ≤ 0.20 ms p50 / ≤ 0.40 ms p99 (one client) | +{fmt(c1_add50, 3)} / +{fmt(c1_add99, 3)} ms{spread(oha, 'direct_c1', oha, 'tunnelgate_c1', 'p99_ms')} | {verdict(c1_add50 is not None and c1_add50 <= 0.20 and c1_add99 <= 0.40)} |")
say(f"| tools/call adds ≤ 0.25 ms p50 / ≤ 0.60 ms p99 (fixed rate, {RATE}/s) | +{fmt(rate_add50, 3)} / +{fmt(rate_add99, 3)} ms{spread(oha, 'direct_rate', oha, 'tunnelgate_rate', 'p99_ms')} | {verdict(rate_add50 is not None and rate_add50 <= 0.25 and rate_add99 <= 0.60) if RATE == 500 else '– (the target is for 500 calls/s)'} |")
if access:
    say(f"| Access verification, seen token ≤ 2 µs | {access['cached_ns'] / 1000:.2f} µs | {verdict(access['cached_ns'] <= 2000)} |")
    say(f"| Access verification, new token ≤ 60 µs | {access['uncached_ns'] / 1000:.1f} µs | {verdict(access['uncached_ns'] <= 60000)} |")
say(f"| RSS idle, full Polar catalog ≤ 20 MB | {fmt(mb(ro_idle), 1)} MB (write-enabled {fmt(mb(write['rss_idle_kb']) if write else None, 1)} MB) | {verdict(ro_idle and mb(ro_idle) <= 20 and (not write or mb(write['rss_idle_kb']) <= 20))} |")
say(f"| RSS with 1,000 SSE sessions ≤ 40 MB | {fmt(mb(streams), 1)} MB | {verdict(streams and mb(streams) <= 40)} |")
if ro:
    say(f"| tools/list read-only ≤ 1.2 KB per tool | {ro_bytes / ro_tools:,.0f} B | {verdict(ro_bytes / ro_tools <= 1200)} |")
if dynamic:
    say(f"| tools/list dynamic ≤ 3 KB | {dynamic['tools_list_bytes']:,} B | {verdict(dynamic['tools_list_bytes'] <= 3000)} |")

# --- how quiet the machine was ---
others, steals, names = [], [], []
for run in RUNS:
    for path in sorted(run.glob("*.cpu.json")):
        data = load(path)
        if data and data.get("wall_s"):
            others.append(data.get("others_cpu_s", 0) / data["wall_s"])
            steals.append(data.get("steal_s", 0) / data["wall_s"])
            names.append(f"{run.name}/{path.name.removesuffix('.cpu.json')}")
if others:
    worst = max(range(len(others)), key=lambda i: others[i])
    say("")
    say(f"Noise: other processes used a median {statistics.median(others):.2f} cores during the measurements "
        f"(worst {others[worst]:.2f} in {names[worst]}); steal time median {statistics.median(steals):.3f} cores.")
    results["noise"] = {"others_cores_median": statistics.median(others), "others_cores_max": others[worst],
                        "steal_cores_median": statistics.median(steals)}

failed = []
# Every tunnelgate response must be the full answer checked at start-up (same size), or the
# load runs measured something else (an error answer is much smaller).
answer = OUT / "raw" / "tunnelgate_call_answer.json"
if answer.exists():
    expected = len(answer.read_text().strip().encode())
    for run in RUNS:
        for name in ("tunnelgate_rate", "tunnelgate_sat", "tunnelgate_c1"):
            row = oha(run, name)
            if row and row["bytes_per_response"] and abs(row["bytes_per_response"] - expected) > 2:
                failed.append(f"{run.name}/{name}: {row['bytes_per_response']} bytes per response, expected {expected}")
for run in RUNS:
    for path in run.glob("*.json"):
        if path.name.endswith(".cpu.json"):
            continue
        name = path.stem
        row = sse(run, name) if "sse" in name else oha(run, name)
        if row and row["failed"]:
            failed.append(f"{run.name}/{name}: {row['failed']}")
if failed:
    say("")
    say("Failed requests (non-200 or tool errors): " + ", ".join(failed))

print("\n".join(lines))

summary = {
    "rate_added_p50_ms": rate_add50, "rate_added_p99_ms": rate_add99,
    "c1_added_p50_ms": c1_add50, "c1_added_p99_ms": c1_add99,
    "saturation_ratio": sat_ratio, "cpu_per_call_us": cpu, "polar_cpu_per_call_us": polar_cpu,
    "memory": memory, "catalogs": catalogs, "access": access, "failed": failed,
}
(OUT / "results.json").write_text(json.dumps(summary, indent=2))
