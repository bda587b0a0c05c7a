#!/usr/bin/env bash
# Fuzz every target for FUZZ_SECONDS (default 60) from the committed seeds; the long run is
# FUZZ_SECONDS=3600 bash .ci/fuzz.sh. Needs a nightly toolchain and cargo-fuzz (installed here
# when missing). A crash fails the run and leaves its input in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/cache/stocklake/fuzz-target}"
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzzing needs a nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
for target in parse_event split_body gunzip event_bounds; do
  mkdir -p "corpus/$target"
  rm -rf "artifacts/$target"
  echo "fuzzing $target for ${SECONDS_EACH}s"
  log="$CARGO_TARGET_DIR/fuzz-$target.log"
  mkdir -p "$CARGO_TARGET_DIR"
  rc=0
  cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    > "$log" 2>&1 || rc=$?
  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  if [ "$rc" -ne 0 ] || compgen -G "artifacts/$target/*" >/dev/null; then
    tail -40 "$log" >&2
    echo "fuzz target $target failed (exit $rc); crashing inputs, if any, in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
