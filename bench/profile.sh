#!/usr/bin/env bash
# Profiles tunnelgate's tools/call hot path: a release build with symbols and line tables
# (same optimisation settings, not stripped), the fast upstream, oha at saturation, and
# `perf record` (software cpu-clock, DWARF call graphs) on the tunnelgate process. Runs in
# a private network namespace like bench/run.sh, after bench/run.sh has installed its tools.
#
#   bench/profile.sh            # reports under .cache/bench/profile-<stamp>/
#
# Environment: DURATION=10 SAT_CONNS=32 PROF_TARGET_DIR=<.cache/target-prof>
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$ROOT/.cache
if [[ ${1:-} != --inner ]]; then
  command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
  export PROF_TARGET_DIR=${PROF_TARGET_DIR:-$CACHE/target-prof}
  echo "building tunnelgate with symbols into $PROF_TARGET_DIR" >&2
  (cd "$ROOT" && CARGO_TARGET_DIR=$PROF_TARGET_DIR CARGO_PROFILE_RELEASE_STRIP=none \
    CARGO_PROFILE_RELEASE_DEBUG=limited cargo build --release --quiet)
  (cd "$ROOT/bench/tools" && CARGO_TARGET_DIR=$CACHE/bench-tools-target cargo build --release --quiet --locked)
  OUT=$CACHE/bench/profile-$(date +%Y%m%d-%H%M%S)
  mkdir -p "$OUT"
  export OUT
  # As real root, a plain network namespace keeps the right to sample the kernel too;
  # otherwise a user namespace (user-space samples only).
  if [[ $EUID == 0 ]] && unshare -n true 2>/dev/null; then
    exec unshare -n bash "$0" --inner
  fi
  exec unshare -rn bash "$0" --inner
fi

TG=$PROF_TARGET_DIR/release/tunnelgate
TOOLS=$CACHE/bench-tools-target/release
OHA=$CACHE/oha/bin/oha
DURATION=${DURATION:-10}
SAT_CONNS=${SAT_CONNS:-32}
SPEC=${POLAR_SPEC:-$ROOT/../shared/polar/openapi-2026-04.json}
[[ -f $SPEC ]] || SPEC=/work/shared/polar/openapi-2026-04.json
ip link set lo up
ulimit -n "$(ulimit -Hn)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT

"$CACHE/venv/bin/python" "$ROOT/bench/issuer.py" "$OUT/fixtures" bench bench-aud
TOKEN=$(cat "$OUT/fixtures/token")
"$TOOLS/fast-upstream" --listen 127.0.0.1:18080 \
  --route /v1/products="$OUT/fixtures/products.json" \
  --route /cdn-cgi/access/certs="$OUT/fixtures/certs.json" 2>/dev/null &
PIDS+=($!)
sleep 0.3
cat >"$OUT/tunnelgate.toml" <<EOF
state_dir = "$OUT/state"
[server]
bind = "127.0.0.1:18081"
[admin]
bind = "127.0.0.1:18091"
[access]
team_domain = "bench"
audiences = ["bench-aud"]
certs_url = "http://127.0.0.1:18080/cdn-cgi/access/certs"
[upstream]
profile = "polar"
spec = "$SPEC"
base_url = "http://127.0.0.1:18080"
token = "polar_oat_bench_0000000000000000"
[limits]
upstream = "off"
EOF
"$TG" serve --config "$OUT/tunnelgate.toml" >/dev/null 2>"$OUT/tunnelgate.log" &
TG_PID=$!
PIDS+=("$TG_PID")
for _ in $(seq 1 300); do curl -sf http://127.0.0.1:18091/readyz >/dev/null && break; sleep 0.1; done

load() { # SECONDS
  "$OHA" --no-tui --output-format json -z "${1}s" -c "$SAT_CONNS" -m POST \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2025-06-18' -H "Cf-Access-Jwt-Assertion: $TOKEN" \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list","arguments":{"limit":10}}}' \
    http://127.0.0.1:18081/mcp
}
load 3 >/dev/null
load "$DURATION" >"$OUT/oha.json" &
LOAD=$!
sleep 1
perf record -e cpu-clock -F 999 --call-graph dwarf,32768 -p "$TG_PID" -o "$OUT/perf.data" \
  -- sleep $((DURATION - 2)) 2>"$OUT/perf-record.log"
wait "$LOAD"
perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio -g none --percent-limit 0.3 \
  >"$OUT/self.txt" 2>/dev/null
perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none --percent-limit 1 \
  >"$OUT/children.txt" 2>/dev/null
grep -E 'tunnelgate::' "$OUT/children.txt" | head -60 >"$OUT/tunnelgate-children.txt" || true
perf script -i "$OUT/perf.data" -F ip,sym 2>/dev/null | python3 "$ROOT/bench/attribute.py" >"$OUT/attribution.txt"
cat "$OUT/attribution.txt"
echo "calls/s under perf: $(jq '.summary.requestsPerSec' "$OUT/oha.json")"
echo "profile: $OUT (attribution.txt, self.txt, children.txt, tunnelgate-children.txt, perf.data)"
