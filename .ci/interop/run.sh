#!/usr/bin/env bash
# Interop check: drive `tunnelgate dev` with MCP clients nobody on this team wrote.
#
#   bash .ci/interop/run.sh             # against target/release/tunnelgate (cargo build --release first)
#   bash .ci/interop/run.sh --standin   # against a Python-SDK stand-in server (checks the harness itself)
#
# Installs everything it needs into .cache/interop/ (gitignored), pinned exactly:
#   - Python venv with the `mcp` SDK and its dependency set (.ci/interop/requirements.txt)
#   - Node 22 (the `node` npm package), @modelcontextprotocol/inspector, @modelcontextprotocol/sdk
#     and mcp-remote (.ci/interop/npm/package.json + package-lock.json, `npm ci`)
# Then starts the server on loopback, waits for its --info-file, starts the wiretap (a
# recording reverse proxy, wiretap.py) in front of it, and runs
#   .ci/interop/python_client.py    (Python SDK: Streamable HTTP legacy + auto, legacy SSE, negatives)
#   .ci/interop/ts_sdk_cases.mjs    (TypeScript SDK: StreamableHTTPClientTransport, SSEClientTransport, negatives)
#   .ci/interop/inspector_cases.py  (Inspector CLI via the wiretap: --transport http|sse, negatives)
#   .ci/interop/mcp_remote_cases.py (mcp-remote via the wiretap, driven over stdio by the Python SDK:
#                                    --header, --header-file, --transport sse-only, negatives, and
#                                    the flags docs/clients.md uses)
#   .ci/interop/readme_cases.py     (README.md's curl and Inspector recipes, as pasted; real server only)
# prints a table (case, client, transport, negotiated protocol, result) and a client x transport
# matrix, and exits non-zero if any case failed.
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
        && -e "$dir/node_modules/.bin/mcp-remote" && -d "$dir/node_modules/@modelcontextprotocol/sdk" \
        && "$(cat "$dir/.interop-stamp" 2>/dev/null)" == "$stamp" ]]; then
    return
  fi
  log "installing Node 22, MCP Inspector, TypeScript SDK, mcp-remote into $dir (npm ci, pinned lockfile)"
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
MCP_REMOTE="$CACHE/npm/node_modules/.bin/mcp-remote"
NODE_V="$(node --version)"
[[ "$NODE_V" =~ ^v(2[2-9]|[3-9][0-9]) ]] || die "node on PATH is $NODE_V, need >= 22"
INSTALL_SECS=$(( $(date +%s) - START_TS ))

# ---------------------------------------------------------------- server
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tunnelgate-interop.XXXXXX")"
INFO="$WORK/info.json"
SERVER_LOG="$WORK/server.log"
SERVER_PID=""
WIRETAP_PID=""

cleanup() {
  local rc=$?
  if [[ -n "$WIRETAP_PID" ]] && kill -0 "$WIRETAP_PID" 2>/dev/null; then
    # uvicorn waits for open streams on SIGTERM; give it a moment, then stop it.
    kill "$WIRETAP_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$WIRETAP_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$WIRETAP_PID" 2>/dev/null || true
    wait "$WIRETAP_PID" 2>/dev/null || true
  fi
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
  "$BIN" dev --bind 127.0.0.1:0 --admin-bind 127.0.0.1:0 --edge-bind 127.0.0.1:0 --info-file "$INFO" >"$SERVER_LOG" 2>&1 &
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

# ---------------------------------------------------------------- wiretap
# Clients that run as their own process (Inspector CLI, mcp-remote) go through it, so the
# table can show the revision they negotiated and that every request carried the header.
TARGET="$("$PY" -c 'import json,sys; u=json.load(open(sys.argv[1]))["mcp_url"]; print(u[:-len("/mcp")])' "$INFO")"
"$PY" "$HERE/wiretap.py" --target "$TARGET" --info-file "$WORK/wiretap.json" >"$WORK/wiretap.log" 2>&1 &
WIRETAP_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/wiretap.json" ]] && break; sleep 0.1; done
[[ -s "$WORK/wiretap.json" ]] || { cat "$WORK/wiretap.log" >&2; die "the wiretap did not start"; }
WIRETAP="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$WORK/wiretap.json")"
log "wiretap $WIRETAP -> $TARGET"

# ---------------------------------------------------------------- clients
RUN_START=$(date +%s)
set +e
log "Python SDK client"
PY_ARGS=(); [[ "${INTEROP_VERBOSE:-0}" == 1 ]] && PY_ARGS+=(--verbose)
"$PY" "$HERE/python_client.py" --info "$INFO" --results "$WORK/python.json" "${PY_ARGS[@]}"
PY_RC=$?
log "TypeScript SDK client"
# Node resolves the SDK from the script's own directory, so the script runs beside node_modules.
cp "$HERE/ts_sdk_cases.mjs" "$CACHE/npm/ts_sdk_cases.mjs"
node "$CACHE/npm/ts_sdk_cases.mjs" --info "$INFO" --results "$WORK/typescript.json"
TS_RC=$?
log "MCP Inspector CLI (through the wiretap)"
HOME="$CACHE/home" "$PY" "$HERE/inspector_cases.py" --info "$INFO" --inspector "$INSPECTOR" --wiretap "$WIRETAP" --results "$WORK/inspector.json"
INSP_RC=$?
log "mcp-remote over stdio (through the wiretap)"
"$PY" "$HERE/mcp_remote_cases.py" --info "$INFO" --mcp-remote "$MCP_REMOTE" --wiretap "$WIRETAP" \
  --docs "$ROOT/docs/clients.md" --home "$CACHE/home" --results "$WORK/mcp-remote.json"
REMOTE_RC=$?
if [[ "$MODE" == real ]]; then
  # Last: the write recipe adds a book to the demo shelf.
  log "README.md recipes (curl, the pinned Inspector through npx)"
  command -v curl >/dev/null 2>&1 || die "curl is needed for README.md's recipes"
  "$PY" "$HERE/readme_cases.py" --info "$INFO" --readme "$ROOT/README.md" --npm-dir "$CACHE/npm" --results "$WORK/readme.json"
  README_RC=$?
else
  # The stand-in has no demo API behind it; README's recipes need `tunnelgate dev`.
  echo '[]' > "$WORK/readme.json"; README_RC=0
fi
set -e
RUN_SECS=$(( $(date +%s) - RUN_START ))

SERVER_ALIVE=yes
kill -0 "$SERVER_PID" 2>/dev/null || SERVER_ALIVE=no

# ---------------------------------------------------------------- summary
set +e
"$PY" - "$WORK" "$MODE" "$PY_RC" "$TS_RC" "$INSP_RC" "$REMOTE_RC" "$README_RC" "$SERVER_ALIVE" <<'EOF'
import json, os, sys
work, mode, rcs, alive = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3:8]], sys.argv[8]
EXPECTED = {
    "python.json": ["py-http-legacy", "py-http-auto", "py-sse", "py-http-legacy-wrong-aud", "py-http-auto-wrong-aud", "py-sse-wrong-aud"],
    "typescript.json": ["ts-http", "ts-sse", "ts-http-wrong-aud", "ts-sse-wrong-aud"],
    "inspector.json": ["insp-http-list", "insp-http-call", "insp-http-api-call", "insp-sse-list", "insp-sse-call", "insp-http-modern-call", "insp-http-wrong-aud", "insp-sse-wrong-aud"],
    "mcp-remote.json": ["remote-flags", "remote-http-header", "remote-http-header-file", "remote-sse-only",
                        "remote-http-header-wrong-aud", "remote-http-header-file-wrong-aud", "remote-sse-only-wrong-aud"],
    "readme.json": ["readme-inspector", "readme-curl-whoami", "readme-curl-write", "readme-curl-sse"] if mode == "real" else [],
}
rows = []
for f, names in EXPECTED.items():
    path = os.path.join(work, f)
    got = json.load(open(path)) if os.path.exists(path) else []
    seen = {r["case"] for r in got}
    rows += got
    for n in names:
        if n not in seen:
            rows.append({"case": n, "client": f, "transport": "?", "protocol": "-", "ok": False, "seconds": 0, "detail": "did not run (runner crashed?)"})
if alive != "yes":
    rows.append({"case": "server-survived", "client": "-", "transport": "-", "protocol": "-", "ok": False, "seconds": 0, "detail": "the server process died during the run"})
for r in rows:
    r.setdefault("transport", "?")
    r.setdefault("protocol", "-")
w = max(len(r["case"]) for r in rows)
cw = max(len(r["client"]) for r in rows)
tw = max(len("transport"), max(len(r["transport"]) for r in rows))
pw = max(len("protocol"), max(len(r["protocol"]) for r in rows))
print()
print(f"{'case':<{w}}  {'client':<{cw}}  {'transport':<{tw}}  {'protocol':<{pw}}  result  {'secs':>5}  detail")
print(f"{'-'*w}  {'-'*cw}  {'-'*tw}  {'-'*pw}  ------  {'-'*5}  {'-'*40}")
for r in rows:
    d = r["detail"].replace("\n", " ")
    d = d if len(d) <= 160 else d[:157] + "..."
    print(f"{r['case']:<{w}}  {r['client']:<{cw}}  {r['transport']:<{tw}}  {r['protocol']:<{pw}}  {'PASS' if r['ok'] else 'FAIL':<6}  {r['seconds']:>5.1f}  {d}")

# The matrix: one line per client and transport, with the revisions negotiated and the verdicts
# of its positive and negative (wrong-audience) cases.
print()
print("matrix: client x transport -> protocol negotiated; positive / wrong-audience cases")
cells = {}
for r in rows:
    if r["transport"] in ("-", "?"):
        continue
    cell = cells.setdefault((r["client"], r["transport"]), {"protocols": [], "pos": [0, 0], "neg": [0, 0]})
    kind = "neg" if r["case"].endswith("wrong-aud") else "pos"
    cell[kind][0] += r["ok"]
    cell[kind][1] += 1
    if kind == "pos" and r["protocol"] not in ("-", "?") and r["protocol"] not in cell["protocols"]:
        cell["protocols"].append(r["protocol"])
mw = max(len(c) for c, _ in cells) if cells else 6
for (client, transport), cell in cells.items():
    pos = f"{cell['pos'][0]}/{cell['pos'][1]} pass" if cell["pos"][1] else "-"
    neg = f"{cell['neg'][0]}/{cell['neg'][1]} refused with 403" if cell["neg"][1] else "-"
    print(f"  {client:<{mw}}  {transport:<{tw}}  {', '.join(cell['protocols']) or '-':<22}  {pos:<10}  {neg}")

passed = sum(r["ok"] for r in rows)
failed = len(rows) - passed
print()
print(f"interop: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 and all(rc == 0 for rc in rcs) else 1)
EOF
RC=$?
set -e
log "installs ${INSTALL_SECS}s, client runs ${RUN_SECS}s, node $NODE_V, server: $SERVER_DESC"
if [[ $RC -ne 0 ]]; then
  log "wiretap log (last 20 lines):"; tail -n 20 "$WORK/wiretap.log" | sed 's/^/  | /' >&2
fi
if [[ $RC -ne 0 ]]; then
  log "server log (last 60 lines):"; tail -n 60 "$SERVER_LOG" | sed 's/^/  | /' >&2
fi
exit $RC
