#!/usr/bin/env bash
# One command for everything in docs/performance.md:
#
#   bench/run.sh
#
# 1. builds tunnelgate (release) and the helpers in bench/tools, installs oha (crates.io),
#    PyJWT + cryptography (PyPI) and @polar-sh/sdk@0.36.2 (npm) under .cache/;
# 2. runs benches/access_verification.rs (cached and uncached Access verification);
# 3. inside a network namespace that has nothing but loopback (bench/inner.sh): a fast
#    fixed-response upstream, tunnelgate and Polar's former MCP server, measured with oha
#    and bench/tools' SSE client; memory, CPU per call and tools/list sizes;
# 4. writes the medians to .cache/bench/<stamp>/results.md (and results.json).
#
# Environment (defaults): RUNS=5 DURATION=10 (seconds per measurement) RATE=500 (calls/s
# for the fixed-rate runs) MODERATE_CONNS=8 SAT_CONNS=32 SSE_STREAMS=1000 SKIP_POLAR=0
# SKIP_VERIFY_BENCH=0 POLAR_SPEC=<shared/polar/openapi-2026-04.json> CARGO_TARGET_DIR,
# TG_BIN (measure this binary instead of building one), TG_ENV (extra environment for
# tunnelgate only, e.g. LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2).
# Nothing it starts listens beyond loopback, and every load run is bounded in time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$ROOT/.cache
mkdir -p "$CACHE/bench"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$CACHE/bench/$STAMP
mkdir -p "$OUT/raw"
ln -sfn "$OUT" "$CACHE/bench/latest"

OHA_VERSION=1.16.0
POLAR_SDK_VERSION=0.36.2
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

find_spec() {
  for candidate in "${POLAR_SPEC:-}" "$ROOT/../shared/polar/openapi-2026-04.json" \
    /work/shared/polar/openapi-2026-04.json; do
    [[ -n $candidate && -f $candidate ]] && { echo "$candidate"; return; }
  done
  log "Polar's OpenAPI document not found; set POLAR_SPEC"; exit 1
}
POLAR_SPEC=$(find_spec)

for tool in jq curl node npm python3 unshare ip; do
  command -v "$tool" >/dev/null || { log "missing: $tool (apt-get install $tool)"; exit 1; }
done

if [[ -n ${TG_BIN:-} ]]; then
  log "measuring the given binary $TG_BIN (no build)"
else
  log "building tunnelgate (release) into $CARGO_TARGET_DIR"
  (cd "$ROOT" && cargo build --release --quiet)
  TG_BIN=$CARGO_TARGET_DIR/release/tunnelgate
fi

log "building bench/tools"
(cd "$ROOT/bench/tools" && CARGO_TARGET_DIR=$CACHE/bench-tools-target cargo build --release --quiet --locked)
TOOLS_BIN=$CACHE/bench-tools-target/release

if [[ ! -x $CACHE/oha/bin/oha ]] || ! "$CACHE/oha/bin/oha" --version | grep -q "$OHA_VERSION"; then
  log "installing oha $OHA_VERSION"
  cargo install oha --version "$OHA_VERSION" --locked --root "$CACHE/oha" --quiet
fi
OHA_BIN=$CACHE/oha/bin/oha

if [[ ! -x $CACHE/venv/bin/python ]] || ! "$CACHE/venv/bin/python" -c 'import jwt, cryptography' 2>/dev/null; then
  log "installing PyJWT and cryptography"
  python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install --quiet 'PyJWT==2.*' 'cryptography>=42'
fi

POLAR_MCP=$CACHE/polar/node_modules/@polar-sh/sdk/bin/mcp-server.js
if [[ ${SKIP_POLAR:-0} != 1 ]] && ! grep -q "\"version\": \"$POLAR_SDK_VERSION\"" \
  "$CACHE/polar/node_modules/@polar-sh/sdk/package.json" 2>/dev/null; then
  log "installing @polar-sh/sdk@$POLAR_SDK_VERSION"
  mkdir -p "$CACHE/polar"
  [[ -f $CACHE/polar/package.json ]] || echo '{"name":"polar-bench","private":true}' >"$CACHE/polar/package.json"
  (cd "$CACHE/polar" && npm install --silent --no-audit --no-fund "@polar-sh/sdk@$POLAR_SDK_VERSION")
fi

# --- Access verification (in-process; needs the [[bench]] entry with harness = false) ----------
if [[ ${SKIP_VERIFY_BENCH:-0} != 1 ]]; then
  BENCH_DIR=$ROOT
  if ! grep -q 'name = "access_verification"' "$ROOT/Cargo.toml"; then
    # Until Cargo.toml declares the bench, run it from a copy that does.
    BENCH_DIR=$CACHE/verify-copy
    rm -rf "$BENCH_DIR"; mkdir -p "$BENCH_DIR"
    cp -r "$ROOT/src" "$ROOT/benches" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" "$BENCH_DIR/"
    printf '\n[[bench]]\nname = "access_verification"\nharness = false\n' >>"$BENCH_DIR/Cargo.toml"
  fi
  log "Access verification benchmark (from $BENCH_DIR)"
  (cd "$BENCH_DIR" && cargo bench --quiet --bench access_verification -- --json "$OUT/raw/access.json") \
    | tee "$OUT/access.txt"
fi

# --- everything over the network, in a namespace with nothing but loopback ------------------
log "starting the network benchmark in a private network namespace (results in $OUT)"
export TG_BIN TOOLS_BIN OHA_BIN POLAR_MCP POLAR_SPEC
if ! unshare -rn true 2>/dev/null; then
  log "cannot create a network namespace (unshare -rn); Polar's server binds 0.0.0.0 and must not run outside one"
  exit 1
fi
# As real root, a plain network namespace keeps the right to drop the page cache before each
# tunnelgate start (steadier VmRSS, see bench/inner.sh); otherwise a user namespace.
if [[ $EUID == 0 ]] && unshare -n true 2>/dev/null; then
  unshare -n bash "$ROOT/bench/inner.sh" "$OUT"
else
  unshare -rn bash "$ROOT/bench/inner.sh" "$OUT"
fi

"$CACHE/venv/bin/python" "$ROOT/bench/report.py" "$OUT" >"$OUT/results.md"
cat "$OUT/results.md"
log "results: $OUT/results.md"
