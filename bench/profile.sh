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


case "$STAGE" in
  simulate) cmd=("$SL" simulate --seed 11 --stores 5 --skus 2000 --days 2 --to file:/dev/null) ;;
  refine) to_bronze "$W/data" "$W/input.ndjson"; cmd=("$SL" refine --once --data-dir "$W/data") ;;
  model) to_bronze "$W/data" "$W/input.ndjson"; "$SL" refine --once --data-dir "$W/data" > /dev/null
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
