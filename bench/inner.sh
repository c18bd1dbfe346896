#!/usr/bin/env bash
# The measuring half of bench/run.sh. It runs inside a network namespace of its own
# (`unshare -rn`) where nothing but loopback exists, so the fixed ports below cannot clash
# with anything on the machine and Polar's server, which binds 0.0.0.0, reaches no network.
#
# usage: inner.sh OUT_DIR   (environment: see bench/run.sh; run it through run.sh, which
# sets TG_BIN, TOOLS_BIN, OHA_BIN, POLAR_MCP and POLAR_SPEC)
set -euo pipefail

OUT=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$ROOT/.cache
TG=${TG_BIN:?}
TOOLS=${TOOLS_BIN:?}
OHA=${OHA_BIN:?}
POLAR_MCP=${POLAR_MCP:?}
SPEC=${POLAR_SPEC:?}
RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
RATE=${RATE:-500}
MODERATE_CONNS=${MODERATE_CONNS:-8}
SAT_CONNS=${SAT_CONNS:-32}
SSE_STREAMS=${SSE_STREAMS:-1000}
SKIP_POLAR=${SKIP_POLAR:-0}

UPSTREAM_PORT=18080
TG_PORT=18081
TG_ADMIN=18091
POLAR_PORT=2718
UPSTREAM=http://127.0.0.1:$UPSTREAM_PORT
TG_URL=http://127.0.0.1:$TG_PORT
UPSTREAM_TOKEN=polar_oat_bench_0000000000000000

ip link set lo up
ulimit -n "$(ulimit -Hn)"

mkdir -p "$OUT"/{fixtures,logs,raw,state}
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- fixtures: signing key, certs document, token, upstream body -------------------------
"$CACHE/venv/bin/python" "$ROOT/bench/issuer.py" "$OUT/fixtures" bench bench-aud
TOKEN=$(cat "$OUT/fixtures/token")

# --- the fast upstream (also serves the certs document) ----------------------------------
"$TOOLS/fast-upstream" --listen 127.0.0.1:$UPSTREAM_PORT \
  --route /v1/products="$OUT/fixtures/products.json" \
  --route /cdn-cgi/access/certs="$OUT/fixtures/certs.json" \
  2>"$OUT/logs/upstream.log" &
UPSTREAM_PID=$!
PIDS+=("$UPSTREAM_PID")

wait_port() {
  local port=$1
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "nothing listens on port $port"; return 1
}
wait_port $UPSTREAM_PORT

upstream_count() { curl -sf "$UPSTREAM/__stats" | jq '."/v1/products"'; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cpu_split() { awk '{print $14, $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# --- tunnelgate -----------------------------------------------------------------------
write_config() { # FILE READ_ONLY MODE
  cat >"$1" <<EOF
state_dir = "$OUT/state"

[server]
bind = "127.0.0.1:$TG_PORT"

[admin]
bind = "127.0.0.1:$TG_ADMIN"

[access]
team_domain = "bench"
audiences = ["bench-aud"]
certs_url = "$UPSTREAM/cdn-cgi/access/certs"

[upstream]
profile = "polar"
spec = "$SPEC"
base_url = "$UPSTREAM"
token = "$UPSTREAM_TOKEN"

[tools]
read_only = $2
mode = "$3"

[policy]
# The write-enabled catalog is only listed to identities with write access.
default_access = "$( [[ $2 == false ]] && echo write || echo read )"

[limits]
# The Polar profile caps upstream calls at 450/min to respect Polar's quota; the fast
# local upstream has none, and a cap would measure the limiter instead of the proxy.
upstream = "off"
EOF
}

# VmRSS counts the binary's file pages that fault-around maps, and how many it maps depends on
# how much of the binary the page cache holds when tunnelgate starts: ±2 MB between otherwise
# identical runs. Each start therefore begins with a dropped page cache where that is allowed
# (real root); results.json records whether it was.
drop_page_cache() {
  sync
  if echo 1 >/proc/sys/vm/drop_caches 2>/dev/null; then PAGE_CACHE_DROPPED=true; else PAGE_CACHE_DROPPED=false; fi
}
PAGE_CACHE_DROPPED=false

TG_PID=
start_tunnelgate() { # NAME READ_ONLY MODE
  write_config "$OUT/$1.toml" "$2" "$3"
  drop_page_cache
  # stdout carries the audit trail (one JSON line per call, on by default): it is kept on,
  # as in production, and discarded; logs (stderr) go to a file.
  # TG_ENV: extra environment for tunnelgate only, e.g. TG_ENV="LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"
  # to try another allocator without rebuilding.
  env ${TG_ENV:-} "$TG" serve --config "$OUT/$1.toml" >/dev/null 2>"$OUT/logs/$1.log" &
  TG_PID=$!
  PIDS+=("$TG_PID")
  for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$TG_ADMIN/readyz" >/dev/null; then return 0; fi
    sleep 0.1
  done
  log "tunnelgate ($1) did not become ready"; cat "$OUT/logs/$1.log" >&2; return 1
}
stop_tunnelgate() {
  kill "$TG_PID"; wait "$TG_PID" 2>/dev/null || true
}

mcp_post() { # BODY -> response body on stdout
  curl -sS -X POST "$TG_URL/mcp" \
    -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2025-06-18' \
    -H "Cf-Access-Jwt-Assertion: $TOKEN" \
    --data "$1"
}

CALL_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list","arguments":{"limit":10}}}'
LIST_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'

# Idle memory and tools/list size, for each catalog shape.
measure_catalog() { # NAME READ_ONLY MODE
  start_tunnelgate "$1" "$2" "$3"
  sleep 2
  local idle; idle=$(rss_kb "$TG_PID")
  mcp_post "$LIST_BODY" >"$OUT/raw/tools_list_$1.json"
  local bytes tools
  bytes=$(wc -c <"$OUT/raw/tools_list_$1.json")
  tools=$(jq '.result.tools | length' "$OUT/raw/tools_list_$1.json")
  jq -n --arg name "$1" --argjson idle "$idle" --argjson bytes "$bytes" --argjson tools "$tools" \
    '{catalog: $name, rss_idle_kb: $idle, tools_list_bytes: $bytes, tools: $tools}' \
    >"$OUT/raw/catalog_$1.json"
  log "catalog $1: $tools tools, tools/list $bytes bytes, idle RSS $idle kB"
  stop_tunnelgate
}
measure_catalog static_write false static
measure_catalog dynamic true dynamic
# Three idle samples of the read-only catalog (fresh process each), for a median.
for i in 1 2 3; do
  measure_catalog "static_read_only_$i" true static
done

# The instance under load: Polar's read-only catalog, static mode.
start_tunnelgate tunnelgate true static
sleep 1
RSS_START=$(rss_kb "$TG_PID")

# Correctness first: one call must reach the upstream once and carry its body back.
before=$(upstream_count)
answer=$(mcp_post "$CALL_BODY")
after=$(upstream_count)
if [[ $((after - before)) -ne 1 ]] || ! grep -q 'Pro plan 9' <<<"$answer" \
  || [[ $(jq '.result.isError // false' <<<"$answer") != false ]]; then
  log "tools/call through tunnelgate is not working:"; echo "$answer" | head -c 2000 >&2; exit 1
fi
echo "$answer" >"$OUT/raw/tunnelgate_call_answer.json"
log "tools/call OK: $(wc -c <<<"$answer") bytes answered, upstream hit once"

# --- Polar's former MCP server ------------------------------------------------------------
POLAR_PID=
if [[ $SKIP_POLAR != 1 ]]; then
  node "$POLAR_MCP" start --transport sse --port $POLAR_PORT \
    --server-url "$UPSTREAM" --access-token "$UPSTREAM_TOKEN" --log-level error \
    >"$OUT/logs/polar.log" 2>&1 &
  POLAR_PID=$!
  PIDS+=("$POLAR_PID")
  wait_port $POLAR_PORT
  sleep 1
  POLAR_RSS_START=$(rss_kb "$POLAR_PID")
fi

# --- the load runs --------------------------------------------------------------------------
# Runs COMMAND and records, next to its output, the CPU seconds tunnelgate, the upstream,
# Polar's server and the load generator spent meanwhile, and what the rest of the machine
# spent (other processes: the machine is shared), plus steal time.
cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $9}' /proc/stat; }
with_cpu() { # OUTFILE_PREFIX COMMAND...
  local prefix=$1; shift
  local tg0 up0 po0=0 tg1 up1 po1=0 t0 t1 busy0 steal0 busy1 steal1 gen tgu0 tgs0 tgu1 tgs1
  tg0=$(cpu_ticks "$TG_PID"); up0=$(cpu_ticks "$UPSTREAM_PID")
  [[ -n $POLAR_PID ]] && po0=$(cpu_ticks "$POLAR_PID")
  read -r busy0 steal0 < <(cpu_busy)
  read -r tgu0 tgs0 < <(cpu_split "$TG_PID")
  t0=$(date +%s.%N)
  local TIMEFORMAT='%U %S'
  { time "$@" 2>>"$OUT/logs/load.log"; } 2>"$prefix.time"
  t1=$(date +%s.%N)
  read -r busy1 steal1 < <(cpu_busy)
  tg1=$(cpu_ticks "$TG_PID"); up1=$(cpu_ticks "$UPSTREAM_PID")
  [[ -n $POLAR_PID ]] && po1=$(cpu_ticks "$POLAR_PID")
  read -r tgu1 tgs1 < <(cpu_split "$TG_PID")
  gen=$(awk '{print $1 + $2}' "$prefix.time")
  jq -n --argjson tg "$((tg1 - tg0))" --argjson up "$((up1 - up0))" --argjson po "$((po1 - po0))" \
    --argjson tgu "$((tgu1 - tgu0))" --argjson tgs "$((tgs1 - tgs0))" \
    --argjson busy "$((busy1 - busy0))" --argjson steal "$((steal1 - steal0))" --argjson gen "$gen" \
    --argjson hz "$CLK_TCK" --argjson t0 "$t0" --argjson t1 "$t1" \
    '{tunnelgate_cpu_s: ($tg / $hz), tunnelgate_user_s: ($tgu / $hz), tunnelgate_system_s: ($tgs / $hz),
      upstream_cpu_s: ($up / $hz), polar_cpu_s: ($po / $hz),
      loadgen_cpu_s: $gen, machine_busy_s: ($busy / $hz), steal_s: ($steal / $hz),
      others_cpu_s: ([($busy / $hz) - ($tg + $up + $po) / $hz - $gen, 0] | max),
      wall_s: ($t1 - $t0)}' \
    >"$prefix.cpu.json"
}

oha_direct() { # OUT SECONDS EXTRA_ARGS...
  local out=$1 seconds=$2; shift 2
  "$OHA" --no-tui --output-format json -z "${seconds}s" "$@" \
    -H "Authorization: Bearer $UPSTREAM_TOKEN" -H 'Polar-Version: 2026-04' \
    "$UPSTREAM/v1/products/?limit=10" >"$out"
}
oha_tunnelgate() { # OUT SECONDS EXTRA_ARGS...
  local out=$1 seconds=$2; shift 2
  "$OHA" --no-tui --output-format json -z "${seconds}s" "$@" -m POST \
    -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2025-06-18' \
    -H "Cf-Access-Jwt-Assertion: $TOKEN" \
    -d "$CALL_BODY" "$TG_URL/mcp" >"$out"
}
sse_calls() { # OUT URL CLIENTS [HEADER]
  local out=$1 url=$2 clients=$3; shift 3
  local headers=()
  for header in "$@"; do headers+=(--header "$header"); done
  "$TOOLS/sse-bench" calls --url "$url" "${headers[@]}" --clients "$clients" \
    --duration "$DURATION" --warmup 1 --expect 'Pro plan 9' \
    "${SSE_TOOL_ARGS[@]}" --out "$out"
}

# Warm-up: connections, allocator, token cache, branch predictors.
log "warming up"
oha_direct /dev/null 3 -c "$SAT_CONNS"
oha_tunnelgate /dev/null 3 -c "$SAT_CONNS"

for run in $(seq 1 "$RUNS"); do
  dir=$OUT/raw/run$run
  mkdir -p "$dir"
  log "run $run/$RUNS: fixed rate $RATE/s"
  with_cpu "$dir/direct_rate" oha_direct "$dir/direct_rate.json" "$DURATION" -c "$MODERATE_CONNS" -q "$RATE"
  with_cpu "$dir/tunnelgate_rate" oha_tunnelgate "$dir/tunnelgate_rate.json" "$DURATION" -c "$MODERATE_CONNS" -q "$RATE"
  log "run $run/$RUNS: saturation ($SAT_CONNS connections)"
  with_cpu "$dir/direct_sat" oha_direct "$dir/direct_sat.json" "$DURATION" -c "$SAT_CONNS"
  with_cpu "$dir/tunnelgate_sat" oha_tunnelgate "$dir/tunnelgate_sat.json" "$DURATION" -c "$SAT_CONNS"
  log "run $run/$RUNS: one client, one call at a time"
  with_cpu "$dir/direct_c1" oha_direct "$dir/direct_c1.json" "$DURATION" -c 1
  with_cpu "$dir/tunnelgate_c1" oha_tunnelgate "$dir/tunnelgate_c1.json" "$DURATION" -c 1
  SSE_TOOL_ARGS=(--tool products_list --args '{"limit":10}')
  with_cpu "$dir/tunnelgate_sse_c1" sse_calls "$dir/tunnelgate_sse_c1.json" "$TG_URL" 1 \
    "Cf-Access-Jwt-Assertion: $TOKEN"
  with_cpu "$dir/tunnelgate_sse_c16" sse_calls "$dir/tunnelgate_sse_c16.json" "$TG_URL" 16 \
    "Cf-Access-Jwt-Assertion: $TOKEN"
  if [[ -n $POLAR_PID ]]; then
    SSE_TOOL_ARGS=(--tool products-list --args '{"request":{"limit":10}}')
    with_cpu "$dir/polar_sse_c1" sse_calls "$dir/polar_sse_c1.json" "http://127.0.0.1:$POLAR_PORT" 1
  fi
done

RSS_AFTER_LOAD=$(rss_kb "$TG_PID")
POLAR_RSS_AFTER=null
[[ -n $POLAR_PID ]] && POLAR_RSS_AFTER=$(rss_kb "$POLAR_PID")

# --- 1,000 open legacy SSE streams ----------------------------------------------------------
# Sessions of the SSE load runs end when the server notices their closed connections, at
# the next keep-alive (15 s); start from none open.
log "waiting for the SSE sessions of the load runs to close"
sse_open() { curl -sf "http://127.0.0.1:$TG_ADMIN/metrics" | awk '/^tunnelgate_sse_streams_open / {print $2}'; }
for _ in $(seq 1 40); do [[ $(sse_open) == 0 ]] && break; sleep 1; done
OPEN_BEFORE=$(sse_open)
log "opening $SSE_STREAMS SSE streams ($OPEN_BEFORE open before)"
RSS_BEFORE_STREAMS=$(rss_kb "$TG_PID")
rm -f "$OUT/streams.ready"
exec 7> >("$TOOLS/sse-bench" hold --url "$TG_URL" --header "Cf-Access-Jwt-Assertion: $TOKEN" \
  --streams "$SSE_STREAMS" --initialize --ready-file "$OUT/streams.ready" --hold 300 \
  2>"$OUT/logs/sse-hold.log")
for _ in $(seq 1 1200); do [[ -f $OUT/streams.ready ]] && break; sleep 0.1; done
[[ -f $OUT/streams.ready ]] || { log "streams did not open"; cat "$OUT/logs/sse-hold.log" >&2; exit 1; }
sleep 2
RSS_STREAMS=$(rss_kb "$TG_PID")
OPEN=$(sse_open)
exec 7>&-
# The server notices closed streams at their next keep-alive.
for _ in $(seq 1 40); do [[ $(sse_open) == 0 ]] && break; sleep 1; done
RSS_AFTER_STREAMS=$(rss_kb "$TG_PID")
log "RSS with $OPEN streams: $RSS_STREAMS kB (before $RSS_BEFORE_STREAMS, after closing $RSS_AFTER_STREAMS)"

jq -n --argjson start "$RSS_START" --argjson after_load "$RSS_AFTER_LOAD" \
  --argjson before_streams "$RSS_BEFORE_STREAMS" --argjson streams "$RSS_STREAMS" \
  --argjson open "${OPEN:-0}" --argjson after_streams "$RSS_AFTER_STREAMS" \
  --argjson polar_start "${POLAR_RSS_START:-null}" --argjson polar_after "$POLAR_RSS_AFTER" \
  --argjson dropped "$PAGE_CACHE_DROPPED" \
  '{tunnelgate_rss_start_kb: $start, tunnelgate_rss_after_load_kb: $after_load,
    tunnelgate_rss_before_streams_kb: $before_streams, tunnelgate_rss_streams_kb: $streams,
    streams_open: $open, tunnelgate_rss_after_streams_kb: $after_streams,
    polar_rss_start_kb: $polar_start, polar_rss_after_load_kb: $polar_after,
    page_cache_dropped_before_each_start: $dropped}' \
  >"$OUT/raw/memory.json"
log "done"
