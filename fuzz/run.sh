#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while from its corpus (the committed seeds plus whatever
# earlier runs added), one process each, and fails on the first crash, timeout or out-of-memory.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 30 s, every target)
#
# .ci/run uses it with 30 s per target; docs/security.md ("Fuzzing") has the longer runs and
# their figures. Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(access_header jsonrpc tool_request openapi_catalog upstream_answer)
fi

# One sanitizer build serves every target.
cargo +nightly fuzz build

for target in "${targets[@]}"; do
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  case "$target" in
    # Documents are big; memory, not length, is the property under test. A 1 MB document of
    # 20,000 operations takes about 5 s under AddressSanitizer: allow 30 s before calling it hung.
    openapi_catalog) options+=(-max_len=1048576 -timeout=30) ;;
    # Past the verifier's 16 KiB token limit.
    access_header) options+=(-max_len=32768) ;;
  esac
  mkdir -p "fuzz/corpus/$target"
  echo "--> $target for ${seconds}s"
  cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- "${options[@]}"
done
