#!/usr/bin/env bash
# The release binary's `healthcheck` (the container HEALTHCHECK) must exit 0 against a
# live, ready server and non-zero once that server is stopped. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${TUNNELGATE_RELEASE_BIN:-target/release/tunnelgate}
[ -x "$binary" ] || cargo build --release --locked --bin tunnelgate

work=$(mktemp -d)
info="$work/info.json"
"$binary" dev --bind 127.0.0.1:0 --admin-bind 127.0.0.1:0 --edge-bind 127.0.0.1:0 --info-file "$info" >"$work/dev.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 100); do
  [ -s "$info" ] && break
  sleep 0.1
done
[ -s "$info" ] || { echo "FAIL: dev server did not start"; cat "$work/dev.log"; exit 1; }
admin=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin_url"])' "$info")

if "$binary" healthcheck --url "$admin/readyz"; then
  echo "PASS: healthcheck exits 0 against a live server"
else
  echo "FAIL: healthcheck failed against a live server"; exit 1
fi

kill "$server"
wait "$server" 2>/dev/null || true

if "$binary" healthcheck --url "$admin/readyz"; then
  echo "FAIL: healthcheck exited 0 against a stopped server"; exit 1
else
  echo "PASS: healthcheck exits non-zero against a stopped server"
fi
