#!/usr/bin/env bash
# A/B: two builds on the same inputs, runs interleaved (A B, then B A, …) so that whatever else
# the machine does falls on both alike. Refine: RECORDS records (default 500,000) loaded into
# bronze once, refined by each build from an empty silver. End to end: bench/e2e.sh with each
# build (DAYS, default 2). A_BIN and B_BIN are the builds (B defaults to this checkout's);
# ROUNDS (default 2) pairs of runs each; A_LABEL and B_LABEL name them in the table.
#   A_BIN=/tmp/old/stocklake bench/ab.sh
source "$(dirname "$0")/lib.sh"
A="${A_BIN:?A_BIN=path of the build to compare against}"
B="${B_BIN:-$(stocklake_bin)}"
N="${RECORDS:-500000}"
ROUNDS="${ROUNDS:-2}"
export DAYS="${DAYS:-2}"
W="$(fresh_dir ab)"
SL="$B"

say "generating $N records"
set +o pipefail
"$B" simulate --seed 11 --stores 40 --skus 2000 --days 60 --bad-rate 0.015 --to stdout 2>/dev/null \
  | head -n "$N" > "$W/input.ndjson"
set -o pipefail
say "loading bronze through HTTP ingest"
to_bronze "$W/sl" "$W/input.ndjson"

A_LABEL="${A_LABEL:-$A}"
B_LABEL="${B_LABEL:-$B}"
table="$W/table.md"
{
  echo "A: $A_LABEL; B: $B_LABEL. Runs interleaved, $ROUNDS rounds."
  echo
  echo "| measure | round | A | B |"
  echo "| --- | ---: | ---: | ---: |"
} > "$table"

refine_once() {
  rm -rf "$W/sl/silver" "$W/sl/gold.db"*
  sync
  local t0 s
  t0=$(now)
  /usr/bin/time -v "$1" refine --once --data-dir "$W/sl" > "$W/refine.out" 2> "$W/refine.time"
  s=$(elapsed "$t0")
  echo "$s s, $(peak_rss_mib "$W/refine.time") MiB"
}

e2e_once() {
  BENCH_NO_RECORD=1 STOCKLAKE_BIN="$1" bash "$BENCH/e2e.sh" > /dev/null
  local total rss
  total=$(grep -o 'every line in gold after | [0-9.]* s' "$WORK/e2e/table.md" | grep -oE '[0-9.]+ s')
  rss=$(grep -o 'peak RSS of the process | [0-9]* MiB' "$WORK/e2e/table.md" | grep -oE '[0-9]+ MiB')
  echo "$total, $rss"
}

for round in $(seq 1 "$ROUNDS"); do
  for what in refine e2e; do
    if [ $((round % 2)) -eq 1 ]; then first=A; else first=B; fi
    declare -A got=()
    for who in $first $([ "$first" = A ] && echo B || echo A); do
      bin=$A; [ "$who" = B ] && bin=$B
      say "$what, round $round, $who"
      got[$who]="$(${what}_once "$bin")"
    done
    label="refine $N records: wall, peak RSS"
    [ "$what" = e2e ] && label="end to end, $DAYS days of 20 × 2,000: every line in gold after, peak RSS"
    echo "| $label | $round | ${got[A]} | ${got[B]} |" >> "$table"
    unset got
  done
done
record "A/B: refine and end to end" "$table"
