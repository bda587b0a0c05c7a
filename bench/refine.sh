#!/usr/bin/env bash
# Refine: the same 1M-record NDJSON (about 1% malformed, some repeats) through stocklake's
# bronze → silver and through DuckDB, Polars and PySpark local[2] doing clean → dedup →
# partitioned Parquet. RECORDS=… changes the size; PEERS="duckdb polars" skips PySpark (PEERS=""
# all peers); BATCH_OBJECTS="32 8" refines with each `refine.batch_max_objects`, RUNS times each,
# and BATCH_MB with `refine.batch_max_mb` (default: the configuration's 64).
#
# --shape S (or SHAPES="…", several) measures input written the way other producers write it
# (bench/shapes.py): basket (the simulator's own events, the default), legacy (one flat sale
# line per record), small (1–3 lines, keys in another order in every record), mixed (small with
# legacy, repeats, malformed and late records). A table per shape.
source "$(dirname "$0")/lib.sh"
while [ $# -gt 0 ]; do
  case "$1" in
    --shape) SHAPES="${SHAPES:+$SHAPES }$2"; shift 2 ;;
    *) echo "usage: bench/refine.sh [--shape basket|legacy|small|mixed]…" >&2; exit 2 ;;
  esac
done
SHAPES="${SHAPES:-basket}"
N="${RECORDS:-1000000}"
PEERS="${PEERS-duckdb polars pyspark}"
BATCH_OBJECTS="${BATCH_OBJECTS:-32}"
BATCH_MB="${BATCH_MB:-64}"
RUNS="${RUNS:-3}"
SL="$(stocklake_bin)"
PY="$(peers_venv)"
W="$(fresh_dir refine)"

sim() { "$SL" simulate --seed 11 --stores 40 --skus 2000 --days 60 "$@" --to stdout 2>/dev/null; }

for SHAPE in $SHAPES; do
say "shape $SHAPE: generating $N records"
set +o pipefail
if [ "$SHAPE" = basket ]; then
  sim --bad-rate 0.015 | head -n "$N" > "$W/input.ndjson"
  shape_note="the simulator's canonical events (about 8 lines each), --bad-rate 0.015"
else
  sim | head -n "$N" > "$W/canonical.ndjson"
  sim --format legacy | head -n "$N" > "$W/legacy.ndjson"
  python3 "$BENCH/shapes.py" "$SHAPE" "$N" "$W/canonical.ndjson" "$W/legacy.ndjson" "$W/input.ndjson" > "$W/shape.json"
  rm -f "$W/canonical.ndjson" "$W/legacy.ndjson"
  shape_note="shape \`$SHAPE\` (bench/shapes.py): $(cat "$W/shape.json")"
fi
set -o pipefail
N_SHAPE=$(wc -l < "$W/input.ndjson")
size_mb=$(du -m "$W/input.ndjson" | cut -f1)
rm -rf "$W/sl"

say "loading bronze through HTTP ingest"
t0=$(now)
to_bronze "$W/sl" "$W/input.ndjson"
load_s=$(elapsed "$t0")

table="$W/table.md"
{
  echo "Input: $N_SHAPE records, $size_mb MB of NDJSON, $shape_note. Loading it into bronze over HTTP (one curl after another, 8 MB bodies, fsync'd): ${load_s} s."
  echo
  echo "| engine | run | wall s | of which start-up s | records/s | events kept | lines written | peak RSS MiB |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
} > "$table"

for bo in $BATCH_OBJECTS; do
for run in $(seq 1 "$RUNS"); do
  say "stocklake refine, batches of up to $bo objects and $BATCH_MB MB, run $run"
  rm -rf "$W/sl/silver" "$W/sl/gold.db"*
  # written back before the clock starts: the input file and the previous run's output are
  # otherwise flushed during the next run, on its time
  sync
  t0=$(now)
  STOCKLAKE_REFINE_BATCH_MAX_OBJECTS="$bo" STOCKLAKE_REFINE_BATCH_MAX_MB="$BATCH_MB" /usr/bin/time -v "$SL" refine --once --data-dir "$W/sl" > "$W/refine.out" 2> "$W/refine.time"
  s=$(elapsed "$t0")
  events=$(grep -oE '[0-9]+ events' "$W/refine.out" | head -1 | cut -d' ' -f1 || true)
  lines=$(grep -oE '[0-9]+ lines' "$W/refine.out" | head -1 | cut -d' ' -f1 || true)
  echo "| stocklake, batches of up to $bo objects and $BATCH_MB MB (bronze gzip → Delta, quarantine, reason codes) | $run | $s | – | $(rate "$N_SHAPE" "$s") | ${events:-?} | ${lines:-?} | $(peak_rss_mib "$W/refine.time") |" >> "$table"
done
done
cat "$W/refine.out" >&2

for engine in $PEERS; do
  say "$engine"
  sync
  /usr/bin/time -v "$PY" "$BENCH/refine_peers.py" "$W/input.ndjson" "$W/out-$engine" "$engine" \
    > "$W/$engine.json" 2> "$W/$engine.time" || { tail -20 "$W/$engine.time" >&2; continue; }
  read -r s start events lines < <("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["seconds"], d["startup_seconds"], d["events"], d["lines"])' "$W/$engine.json")
  echo "| $engine (plain NDJSON → Parquet) | 1 | $s | $start | $(rate "$N_SHAPE" "$s") | $events | $lines | $(peak_rss_mib "$W/$engine.time") |" >> "$table"
done

record "Refine, $N_SHAPE records, shape $SHAPE" "$table"
done
