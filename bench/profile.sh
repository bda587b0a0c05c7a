#!/usr/bin/env bash
# Where a stage's time goes: valgrind's callgrind counts the instructions of each function
# (stable on a busy machine, unlike a timer). STAGE = refine | model | simulate; RECORDS sets the
# input size (callgrind runs ~50× slower than native). The top functions, inclusive and
# exclusive, go to bench/profiles/STAGE.txt.
source "$(dirname "$0")/lib.sh"
STAGE="${1:-refine}"
RECORDS="${RECORDS:-100000}"
SL="$(stocklake_bin)"
W="$WORK/profile-$STAGE"
rm -rf "$W" && mkdir -p "$W" "$BENCH/profiles"
set +o pipefail
"$SL" simulate --seed 11 --stores 40 --skus 2000 --days 30 --bad-rate 0.015 --to stdout 2>/dev/null \
  | head -n "$RECORDS" > "$W/input.ndjson"
set -o pipefail

to_bronze() {
  local port pid
  port=$(free_port)
  "$SL" ingest --data-dir "$W/data" --listen "127.0.0.1:$port" 2> "$W/ingest.log" &
  pid=$!
  wait_http "http://127.0.0.1:$port/healthz"
  split -C 8M -d -a 4 "$W/input.ndjson" "$W/chunk."
  for f in "$W"/chunk.*; do
    curl -fsS -o /dev/null -H 'content-type: application/x-ndjson' --data-binary "@$f" \
      "http://127.0.0.1:$port/v1/events"
  done
  rm -f "$W"/chunk.*
  kill -TERM "$pid"; wait "$pid" || true
}

case "$STAGE" in
  simulate) cmd=("$SL" simulate --seed 11 --stores 5 --skus 2000 --days 2 --to file:/dev/null) ;;
  refine) to_bronze; cmd=("$SL" refine --once --data-dir "$W/data") ;;
  model) to_bronze; "$SL" refine --once --data-dir "$W/data" > /dev/null
         cmd=("$SL" model --once --data-dir "$W/data") ;;
  *) echo "STAGE must be simulate, refine or model" >&2; exit 2 ;;
esac
say "callgrind: ${cmd[*]}"
valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.out" "${cmd[@]}" > /dev/null 2> "$W/valgrind.log"
out="$BENCH/profiles/$STAGE.txt"
{
  echo "# callgrind, $STAGE, $RECORDS records, $(date -u +%Y-%m-%d), commit $(cd "$ROOT" && git rev-parse --short HEAD)"
  echo "## inclusive"
  callgrind_annotate --inclusive=yes --threshold=95 "$W/callgrind.out" 2>/dev/null | sed -n '1,60p'
  echo "## exclusive"
  callgrind_annotate --inclusive=no --threshold=90 "$W/callgrind.out" 2>/dev/null | sed -n '1,50p'
} > "$out"
say "written $out"
grep -A30 '^## exclusive' "$out" | head -40
