#!/usr/bin/env bash
# Compares two tunnelgate binaries on this machine, alternated so that drift in the machine's
# speed falls on both: CPU per tools/call, calls/s and context switches per call at saturation
# (oha, 32 connections, the fast upstream, Polar's read-only catalog) and CPU per tools/list
# (8 connections, the same catalog's 67 KB list), then idle VmRSS for the
# read-only and write-enabled catalogs and VmRSS with 1,000 initialized legacy SSE sessions
# after a burst of load. Each tunnelgate start follows a dropped page cache, so VmRSS counts
# the same share of the binary's pages every time (needs real root; otherwise it says so).
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [PAIRS]      # PAIRS=4 by default, 4 s of load each
#
# Runs after bench/run.sh has installed its tools (.cache/oha, .cache/venv, bench/tools),
# inside a private network namespace with nothing but loopback, like bench/run.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$ROOT/.cache
if [[ ${1:-} != --inner ]]; then
  [[ $# -ge 2 ]] || { sed -n 2,12p "$0" >&2; exit 2; }
  for tool in "$CACHE/oha/bin/oha" "$CACHE/venv/bin/python" "$CACHE/bench-tools-target/release/sse-bench"; do
    [[ -x $tool ]] || { echo "missing $tool: run bench/run.sh once first" >&2; exit 1; }
  done
  OLD=$(realpath "$1") NEW=$(realpath "$2") PAIRS=${3:-4}
  OUT=$CACHE/bench/ab-$(date +%Y%m%d-%H%M%S)
  mkdir -p "$OUT"
  export OLD NEW PAIRS OUT
  if [[ $EUID == 0 ]] && unshare -n true 2>/dev/null; then
    exec unshare -n bash "$0" --inner
  fi
  exec unshare -rn bash "$0" --inner
fi

TOOLS=$CACHE/bench-tools-target/release
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

for read_only in true false; do
  cat >"$OUT/read_only_$read_only.toml" <<EOF
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
[tools]
read_only = $read_only
[policy]
default_access = "$( [[ $read_only == false ]] && echo write || echo read )"
[limits]
upstream = "off"
EOF
done

DROPPED=yes
TG_PID=
start() { # BINARY READ_ONLY
  sync
  echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || DROPPED=no
  "$1" serve --config "$OUT/read_only_$2.toml" >/dev/null 2>>"$OUT/tunnelgate.log" &
  TG_PID=$!
  for _ in $(seq 1 300); do curl -sf http://127.0.0.1:18091/readyz >/dev/null && return 0; sleep 0.1; done
  echo "tunnelgate did not become ready" >&2; exit 1
}
stop() { kill "$TG_PID"; wait "$TG_PID" 2>/dev/null || true; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$TG_PID/status"; }
anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$TG_PID/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$TG_PID/stat"; }
switches() { cat /proc/"$TG_PID"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
CALL='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list","arguments":{"limit":10}}}'
LIST='{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
load() { # SECONDS OUTPUT [BODY [CONNECTIONS]]
  "$CACHE/oha/bin/oha" --no-tui --output-format json -z "${1}s" -c "${4:-32}" -m POST \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2025-06-18' -H "Cf-Access-Jwt-Assertion: $TOKEN" \
    -d "${3:-$CALL}" http://127.0.0.1:18081/mcp >"$2"
}

echo "pair binary calls/s cpu_us_per_call switches_per_call tools_list/s cpu_us_per_tools_list"
for pair in $(seq 1 "$PAIRS"); do
  for which in old new; do
    binary=$OLD; [[ $which == new ]] && binary=$NEW
    start "$binary" true
    load 2 /dev/null
    ticks=$(cpu_ticks) switched=$(switches)
    load 4 "$OUT/oha-$pair-$which.json"
    ticks=$(( $(cpu_ticks) - ticks )) switched=$(( $(switches) - switched ))
    # tools/list for the Polar read-only catalog (67 KB per answer), 8 connections.
    list_ticks=$(cpu_ticks)
    load 3 "$OUT/oha-list-$pair-$which.json" "$LIST" 8
    list_ticks=$(( $(cpu_ticks) - list_ticks ))
    stop
    calls=$(jq '[.statusCodeDistribution[]] | add' "$OUT/oha-$pair-$which.json")
    rate=$(jq '.summary.requestsPerSec | floor' "$OUT/oha-$pair-$which.json")
    lists=$(jq '.statusCodeDistribution."200"' "$OUT/oha-list-$pair-$which.json")
    list_rate=$(jq '.summary.requestsPerSec | floor' "$OUT/oha-list-$pair-$which.json")
    echo "$pair $which $rate $(( ticks * 1000000 / $(getconf CLK_TCK) / calls )) $(echo "scale=2; $switched / $calls" | bc)" \
      "$list_rate $(( list_ticks * 1000000 / $(getconf CLK_TCK) / lists ))"
  done
done

echo
echo "binary catalog idle_rss_kb anon_kb   (3 s after start)"
for which in old new; do
  binary=$OLD; [[ $which == new ]] && binary=$NEW
  for read_only in true false; do
    start "$binary" "$read_only"
    sleep 3
    echo "$which $([[ $read_only == true ]] && echo read-only || echo write-enabled) $(rss_kb) $(anon_kb)"
    stop
  done
done

echo
echo "binary after_load_kb with_1000_sse_sessions_kb"
for which in old new; do
  binary=$OLD; [[ $which == new ]] && binary=$NEW
  start "$binary" true
  load 4 /dev/null
  sleep 2
  before=$(rss_kb)
  rm -f "$OUT/streams.ready"
  "$TOOLS/sse-bench" hold --url http://127.0.0.1:18081 --header "Cf-Access-Jwt-Assertion: $TOKEN" \
    --streams 1000 --initialize --ready-file "$OUT/streams.ready" --hold 60 2>"$OUT/sse-hold.log" &
  HOLD=$!
  for _ in $(seq 1 600); do [[ -f $OUT/streams.ready ]] && break; sleep 0.1; done
  sleep 2
  echo "$which $before $(rss_kb)"
  kill "$HOLD" 2>/dev/null || true; wait "$HOLD" 2>/dev/null || true
  stop
done
echo
echo "page cache dropped before each start: $DROPPED; raw output in $OUT"
