#!/usr/bin/env bash
# Interop check: drive `tunnelgate dev` with MCP clients nobody on this team wrote.
#
#   bash .ci/interop/run.sh             # against target/release/tunnelgate (cargo build --release first)
#   bash .ci/interop/run.sh --standin   # against a Python-SDK stand-in server (checks the harness itself)
#
# Installs everything it needs into .cache/interop/ (gitignored), pinned exactly:
#   - Python venv with the `mcp` SDK and its dependency set (.ci/interop/requirements.txt)
#   - Node 22 (the `node` npm package) and @modelcontextprotocol/inspector (.ci/interop/npm/)
# Then starts the server on loopback, waits for its --info-file, runs
#   .ci/interop/python_client.py   (Python SDK: Streamable HTTP legacy + auto, legacy SSE, negatives)
#   .ci/interop/inspector_cases.py (Inspector CLI: --transport http|sse, tools/list|tools/call, negatives)
# prints a summary table and exits non-zero if any case failed.
#
# Environment knobs: TUNNELGATE_BIN (use this binary, skip the build), INTEROP_NO_BUILD=1
# (do not run cargo; fail if the binary is missing), INTEROP_KEEP=1 (keep the work dir with
# the server log), INTEROP_VERBOSE=1 (print every Python case's HTTP exchanges).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$ROOT/.cache/interop"
MODE=real
[[ "${1:-}" == "--standin" ]] && MODE=standin

log() { printf '[interop] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

mkdir -p "$CACHE"
START_TS=$(date +%s)

# ---------------------------------------------------------------- installs (idempotent)
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

install_python() {
  local py="" cand stamp venv="$CACHE/venv"
  for cand in python3 python3.13 python3.12 python3.11 python3.10; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      py="$(command -v "$cand")"; break
    fi
  done
  [[ -n "$py" ]] || die "need Python >= 3.10 (mcp 2.x requires it)"
  stamp="$(hash_of "$HERE/requirements.txt")-$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  if [[ -x "$venv/bin/python" && "$(cat "$venv/.interop-stamp" 2>/dev/null)" == "$stamp" ]]; then
    return
  fi
  log "installing Python clients into $venv (python: $py)"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$stamp" > "$venv/.interop-stamp"
}

install_npm() {
  local dir="$CACHE/npm" stamp
  command -v npm >/dev/null 2>&1 || die "npm is needed to install Node 22 and the Inspector"
  stamp="$(hash_of "$HERE/npm/package.json" "$HERE/npm/package-lock.json")"
  if [[ -x "$dir/node_modules/.bin/node" && -e "$dir/node_modules/.bin/inspector" \
        && "$(cat "$dir/.interop-stamp" 2>/dev/null)" == "$stamp" ]]; then
    return
  fi
  log "installing Node 22 + MCP Inspector into $dir (npm ci, pinned lockfile)"
  rm -rf "$dir"; mkdir -p "$dir"
  cp "$HERE/npm/package.json" "$HERE/npm/package-lock.json" "$dir/"
  # The install runs under whatever node npm itself uses; the Inspector's engine
  # warnings about Node < 22 are expected there and silenced with --loglevel=error.
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  "$dir/node_modules/.bin/node" --version >/dev/null || die "the node npm package did not provide a working binary"
  echo "$stamp" > "$dir/.interop-stamp"
}

install_python
install_npm
PY="$CACHE/venv/bin/python"
# Always use the pinned Node 22 from the cache (the Inspector needs >= 22.19; the
# system node may be older, and pinning keeps runs reproducible either way).
export PATH="$CACHE/npm/node_modules/.bin:$PATH"
INSPECTOR="$CACHE/npm/node_modules/.bin/inspector"
NODE_V="$(node --version)"
[[ "$NODE_V" =~ ^v(2[2-9]|[3-9][0-9]) ]] || die "node on PATH is $NODE_V, need >= 22"
INSTALL_SECS=$(( $(date +%s) - START_TS ))

# ---------------------------------------------------------------- server
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tunnelgate-interop.XXXXXX")"
INFO="$WORK/info.json"
SERVER_LOG="$WORK/server.log"
SERVER_PID=""

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "${INTEROP_KEEP:-0}" == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ "$MODE" == standin ]]; then
  SERVER_DESC="stand-in (Python mcp SDK server, $HERE/standin_server.py)"
  "$PY" "$HERE/standin_server.py" --bind 127.0.0.1:0 --info-file "$INFO" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
else
  BIN="${TUNNELGATE_BIN:-$ROOT/target/release/tunnelgate}"
  if [[ -z "${TUNNELGATE_BIN:-}" && "${INTEROP_NO_BUILD:-0}" != 1 ]]; then
    # A no-op when the binary is up to date; rebuilds it when sources changed, so a stale
    # binary is never the thing under test.
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet --bin tunnelgate) || die "cargo build --release failed"
  fi
  [[ -x "$BIN" ]] || die "no server binary at $BIN"
  SERVER_DESC="$BIN dev"
  "$BIN" dev --bind 127.0.0.1:0 --admin-bind 127.0.0.1:0 --info-file "$INFO" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
fi

log "started $SERVER_DESC (pid $SERVER_PID); waiting for $INFO"
for i in $(seq 1 300); do  # up to 30 s
  [[ -s "$INFO" ]] && "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$INFO" 2>/dev/null && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "server exited before writing the info file; its log:"; sed 's/^/  | /' "$SERVER_LOG" >&2
    die "server did not start"
  fi
  sleep 0.1
done
[[ -s "$INFO" ]] || { sed 's/^/  | /' "$SERVER_LOG" >&2; die "no info file after 30 s"; }

"$PY" - "$INFO" <<'EOF' || die "info file is missing fields"
import json, sys
info = json.load(open(sys.argv[1]))
need = ["mcp_url", "sse_url", "admin_url", "issuer_url", "audience", "token", "token_url"]
missing = [k for k in need if not isinstance(info.get(k), str) or not info[k]]
if missing:
    print(f"[interop] info file lacks {missing}: {sorted(info)}", file=sys.stderr); sys.exit(1)
for k in ("mcp_url", "sse_url", "admin_url", "issuer_url", "token_url"):
    host = info[k].split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        print(f"[interop] {k} is not loopback: {info[k]}", file=sys.stderr); sys.exit(1)
print(f"[interop] mcp {info['mcp_url']}  sse {info['sse_url']}  audience {info['audience']}", file=sys.stderr)
EOF

# ---------------------------------------------------------------- clients
RUN_START=$(date +%s)
set +e
log "Python SDK client"
PY_ARGS=(); [[ "${INTEROP_VERBOSE:-0}" == 1 ]] && PY_ARGS+=(--verbose)
"$PY" "$HERE/python_client.py" --info "$INFO" --results "$WORK/python.json" "${PY_ARGS[@]}"
PY_RC=$?
log "MCP Inspector CLI"
HOME="$CACHE/home" "$PY" "$HERE/inspector_cases.py" --info "$INFO" --inspector "$INSPECTOR" --results "$WORK/inspector.json"
INSP_RC=$?
set -e
RUN_SECS=$(( $(date +%s) - RUN_START ))

SERVER_ALIVE=yes
kill -0 "$SERVER_PID" 2>/dev/null || SERVER_ALIVE=no

# ---------------------------------------------------------------- summary
set +e
"$PY" - "$WORK/python.json" "$WORK/inspector.json" "$PY_RC" "$INSP_RC" "$SERVER_ALIVE" <<'EOF'
import json, os, sys
files, py_rc, insp_rc, alive = sys.argv[1:3], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
EXPECTED = {
    "python": ["py-http-legacy", "py-http-auto", "py-sse", "py-http-legacy-wrong-aud", "py-http-auto-wrong-aud", "py-sse-wrong-aud"],
    "inspector": ["insp-http-list", "insp-http-call", "insp-sse-list", "insp-sse-call", "insp-http-modern-call", "insp-http-wrong-aud", "insp-sse-wrong-aud"],
}
rows = []
for f, (runner, names) in zip(files, EXPECTED.items()):
    got = json.load(open(f)) if os.path.exists(f) else []
    seen = {r["case"] for r in got}
    rows += got
    for n in names:
        if n not in seen:
            rows.append({"case": n, "client": runner, "ok": False, "seconds": 0, "detail": "did not run (runner crashed?)"})
if alive != "yes":
    rows.append({"case": "server-survived", "client": "-", "ok": False, "seconds": 0, "detail": "the server process died during the run"})
w = max(len(r["case"]) for r in rows)
cw = max(len(r["client"]) for r in rows)
print()
print(f"{'case':<{w}}  {'client':<{cw}}  result  {'secs':>5}  detail")
print(f"{'-'*w}  {'-'*cw}  ------  {'-'*5}  {'-'*40}")
for r in rows:
    d = r["detail"].replace("\n", " ")
    d = d if len(d) <= 160 else d[:157] + "..."
    print(f"{r['case']:<{w}}  {r['client']:<{cw}}  {'PASS' if r['ok'] else 'FAIL':<6}  {r['seconds']:>5.1f}  {d}")
passed = sum(r["ok"] for r in rows)
failed = len(rows) - passed
print()
print(f"interop: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 and py_rc == 0 and insp_rc == 0 else 1)
EOF
RC=$?
set -e
log "installs ${INSTALL_SECS}s, client runs ${RUN_SECS}s, node $NODE_V, server: $SERVER_DESC"
if [[ $RC -ne 0 ]]; then
  log "server log (last 60 lines):"; tail -n 60 "$SERVER_LOG" | sed 's/^/  | /' >&2
fi
exit $RC
