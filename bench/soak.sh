#!/usr/bin/env bash
# The soak: tunnelgate (release build) under steady mixed load with faults, key rotations
# and policy reloads, checked for lost audit events, unexpected errors, leaks and stuck
# workers. docs/operations.md (*Soak test*) explains what it runs, checks and found.
#
#   bench/soak.sh            10 minutes
#   bench/soak.sh --short    60 seconds, the same load with faster rotations and reloads
#                            (what .ci/run runs)
#
# Environment (defaults for the full run; --short changes the ones marked *):
#   SOAK_SECONDS=600*  SSE_SESSIONS=500  SSE_INTERVAL=4 (s between calls of one session)
#   SSE_WARMUP=64 (pings per SSE session before the clock starts)
#   HTTP_RATE=200 (Streamable HTTP calls/s)  IDENTITIES=20  ROTATE_EVERY=120*  WITHDRAW_AFTER=60*
#   SIGHUP_EVERY=30*  SAMPLE_EVERY=10  BASELINE_AT=60* (the "after the first minute" sample)
#   RSS_TOLERANCE_KB=5120  READYZ_MAX_MS=50  FD_TOLERANCE=32
#   TG_BIN (use this tunnelgate binary instead of building one), CARGO_TARGET_DIR.
#
# Everything runs inside a network namespace of its own (`unshare -rn`) that has nothing but
# loopback: the fixed ports below clash with nothing, and no traffic can leave the machine.
# Every process it starts is bounded in time and stopped at the end. Results go to
# .cache/soak/<stamp>/ (summary.md, driver.json, calls.tsv, samples.tsv, audit.jsonl, logs/).
# Exit status: 0 when every check passes, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$ROOT/.cache
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

SHORT=0
for argument in "$@"; do
  case $argument in
    --short) SHORT=1 ;;
    *) log "unknown argument $argument (usage: bench/soak.sh [--short])"; exit 2 ;;
  esac
done
if [[ $SHORT == 1 ]]; then
  : "${SOAK_SECONDS:=60}" "${ROTATE_EVERY:=20}" "${WITHDRAW_AFTER:=10}" "${SIGHUP_EVERY:=15}" "${BASELINE_AT:=20}"
fi
export SOAK_SECONDS=${SOAK_SECONDS:-600} SSE_SESSIONS=${SSE_SESSIONS:-500} SSE_INTERVAL=${SSE_INTERVAL:-4}
export SSE_WARMUP=${SSE_WARMUP:-64} HTTP_RATE=${HTTP_RATE:-200} IDENTITIES=${IDENTITIES:-20} ROTATE_EVERY=${ROTATE_EVERY:-120}
export WITHDRAW_AFTER=${WITHDRAW_AFTER:-60} SIGHUP_EVERY=${SIGHUP_EVERY:-30} SAMPLE_EVERY=${SAMPLE_EVERY:-10}
export BASELINE_AT=${BASELINE_AT:-60} RSS_TOLERANCE_KB=${RSS_TOLERANCE_KB:-5120}
export READYZ_MAX_MS=${READYZ_MAX_MS:-50} FD_TOLERANCE=${FD_TOLERANCE:-32}

if [[ -z ${SOAK_IN_NETNS:-} ]]; then
  # --- outside: build, then re-enter this script in a private network namespace ----------
  if ! command -v ip >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing iproute2 (ip)"
    apt-get install -y -qq iproute2 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq iproute2; }
  fi
  for tool in unshare ip timeout; do
    command -v "$tool" >/dev/null || { log "missing: $tool"; exit 1; }
  done
  if [[ -n ${TG_BIN:-} ]]; then
    log "using the given tunnelgate binary $TG_BIN"
  else
    log "building tunnelgate (release)"
    (cd "$ROOT" && cargo build --release --locked --quiet --bin tunnelgate)
    TG_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/tunnelgate
  fi
  [[ -x $TG_BIN ]] || { log "no tunnelgate binary at $TG_BIN"; exit 1; }
  log "building bench/tools (soak-upstream, soak-issuer, soak-driver)"
  (cd "$ROOT/bench/tools" && CARGO_TARGET_DIR=$CACHE/bench-tools-target \
    cargo build --release --locked --quiet --bin soak-upstream --bin soak-issuer --bin soak-driver)
  TOOLS_BIN=$CACHE/bench-tools-target/release
  OUT=$CACHE/soak/$(date +%Y%m%d-%H%M%S)
  if [[ $SHORT == 1 ]]; then OUT=$OUT-short; fi
  mkdir -p "$OUT"
  ln -sfn "$OUT" "$CACHE/soak/latest"
  if ! unshare -rn true 2>/dev/null; then
    log "cannot create a network namespace (unshare -rn); the soak runs only inside one"
    exit 1
  fi
  export TG_BIN TOOLS_BIN OUT SOAK_IN_NETNS=1
  exec unshare -rn bash "$0" "$@"
fi

# --- inside the namespace: nothing but loopback --------------------------------------------
ip link set lo up
ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT/logs" "$OUT/state"

UPSTREAM_PORT=18180
TG_PORT=18181
ADMIN_PORT=18191
ISSUER_PORT=18192
UPSTREAM=http://127.0.0.1:$UPSTREAM_PORT
ISSUER=http://127.0.0.1:$ISSUER_PORT
LIFETIME=$((SOAK_SECONDS + 300)) # the helpers stop by themselves even if this script dies

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait "${PIDS[@]}" 2>/dev/null || true
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "nothing listens on port $1"; return 1
}

# The configuration: everything but [policy] in base.toml; the driver appends policy-a.toml or
# policy-b.toml, writes the file named with --config and sends SIGHUP. Both policies let every
# soak identity call the tool, so a healthy soak has no denial at all.
cat >"$OUT/base.toml" <<EOF
state_dir = "$OUT/state"

[server]
bind = "127.0.0.1:$TG_PORT"
shutdown_grace = "10s"

[admin]
bind = "127.0.0.1:$ADMIN_PORT"

[access]
team_domain = "soak"
audiences = ["soak-aud"]
certs_url = "$ISSUER/cdn-cgi/access/certs"
# The soak rotates every few minutes (Cloudflare: weeks). The shortest refresh, and a cooldown
# shorter than the rotation period so each new key is fetched on its first token.
jwks_refresh = "10s"
unknown_kid_cooldown = "10s"

[upstream]
spec = "$UPSTREAM/openapi.json"
base_url = "$UPSTREAM"
token = "soak-upstream-credential"
timeout = "10s"

[audit]
stdout = false
file = "$OUT/audit.jsonl"
# The call number is the tool's only argument: the report matches events to calls by it.
include_arguments = true

[log]
format = "json"
EOF
cat >"$OUT/policy-a.toml" <<'EOF'
[policy]
default_access = "read"
EOF
cat >"$OUT/policy-b.toml" <<'EOF'
[policy]
default_access = "none"

[[policy.rules]]
email = "outsider@example.com"
access = "none"

[[policy.rules]]
email = "*@soak.example"
tools = ["items_*"]
access = "read"
EOF
cat "$OUT/base.toml" "$OUT/policy-a.toml" >"$OUT/tunnelgate.toml"

log "soak: ${SOAK_SECONDS}s, $SSE_SESSIONS SSE sessions (a call each every ${SSE_INTERVAL}s), $HTTP_RATE Streamable HTTP calls/s, $IDENTITIES identities, rotation every ${ROTATE_EVERY}s, SIGHUP every ${SIGHUP_EVERY}s; results in $OUT"

"$TOOLS_BIN/soak-issuer" --listen "127.0.0.1:$ISSUER_PORT" --team soak --audience soak-aud \
  --identities "$IDENTITIES" --rotate-every "$ROTATE_EVERY" --withdraw-after "$WITHDRAW_AFTER" \
  --lifetime "$LIFETIME" 2>"$OUT/logs/issuer.log" &
PIDS+=($!)
"$TOOLS_BIN/soak-upstream" --listen "127.0.0.1:$UPSTREAM_PORT" --token soak-upstream-credential \
  --lifetime "$LIFETIME" 2>"$OUT/logs/upstream.log" &
PIDS+=($!)
wait_port $ISSUER_PORT
wait_port $UPSTREAM_PORT

"$TG_BIN" serve --config "$OUT/tunnelgate.toml" >"$OUT/logs/tunnelgate.stdout" 2>"$OUT/logs/tunnelgate.log" &
TG_PID=$!
PIDS+=("$TG_PID")
ready=0
for _ in $(seq 1 300); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$ADMIN_PORT") 2>/dev/null \
    && "$TG_BIN" healthcheck --url "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1; then
    ready=1; break
  fi
  sleep 0.1
done
if [[ $ready != 1 ]]; then
  log "tunnelgate did not become ready"; tail -n 20 "$OUT/logs/tunnelgate.log" >&2; exit 1
fi
log "tunnelgate ready (pid $TG_PID); starting the driver"

driver_rc=0
timeout --signal=TERM --kill-after=10 $((SOAK_SECONDS + 240)) \
  "$TOOLS_BIN/soak-driver" run --out "$OUT" \
  --mcp "http://127.0.0.1:$TG_PORT" --admin "http://127.0.0.1:$ADMIN_PORT" \
  --issuer "$ISSUER" --upstream "$UPSTREAM" --tg-pid "$TG_PID" \
  --config "$OUT/tunnelgate.toml" --config-base "$OUT/base.toml" \
  --policy-a "$OUT/policy-a.toml" --policy-b "$OUT/policy-b.toml" \
  --duration "$SOAK_SECONDS" --sse-sessions "$SSE_SESSIONS" --sse-interval "$SSE_INTERVAL" --sse-warmup "$SSE_WARMUP" \
  --http-rate "$HTTP_RATE" --identities "$IDENTITIES" --sighup-every "$SIGHUP_EVERY" \
  --sample-every "$SAMPLE_EVERY" --baseline-at "$BASELINE_AT" 2> >(tee "$OUT/logs/driver.log" >&2) \
  || driver_rc=$?
[[ $driver_rc == 0 ]] || log "the driver exited $driver_rc"

# The driver sent SIGTERM after its last call (unless it failed); collect the exit status.
[[ $driver_rc == 0 ]] || kill -TERM "$TG_PID" 2>/dev/null || true
(sleep 30; kill -KILL "$TG_PID" 2>/dev/null) &
watchdog=$!
tg_rc=0
wait "$TG_PID" || tg_rc=$?
kill "$watchdog" 2>/dev/null || true
log "tunnelgate exited $tg_rc"

report_rc=0
"$TOOLS_BIN/soak-driver" report --out "$OUT" --tg-exit "$tg_rc" --tg-log "$OUT/logs/tunnelgate.log" \
  --audit "$OUT/audit.jsonl" --rss-tolerance-kb "$RSS_TOLERANCE_KB" --readyz-max-ms "$READYZ_MAX_MS" \
  --fd-tolerance "$FD_TOLERANCE" || report_rc=$?
log "summary: $OUT/summary.md"
if [[ $driver_rc != 0 || $report_rc != 0 ]]; then exit 1; fi
