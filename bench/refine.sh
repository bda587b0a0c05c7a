#!/usr/bin/env bash
# Refine: the same 1M-record NDJSON (about 1% malformed, some repeats) through stocklake's
# bronze → silver and through DuckDB, Polars and PySpark local[2] doing clean → dedup →
# partitioned Parquet. RECORDS=… changes the size; PEERS="duckdb polars" skips PySpark (PEERS=""
# all peers); BATCH_OBJECTS="32 8" refines with each `refine.batch_max_objects`, RUNS times each,
# and BATCH_MB with `refine.batch_max_mb` (default: the configuration's 64).
source "$(dirname "$0")/lib.sh"
N="${RECORDS:-1000000}"
PEERS="${PEERS-duckdb polars pyspark}"
BATCH_OBJECTS="${BATCH_OBJECTS:-32}"
BATCH_MB="${BATCH_MB:-64}"
RUNS="${RUNS:-3}"
SL="$(stocklake_bin)"
PY="$(peers_venv)"
W="$(fresh_dir refine)"

say "generating $N records"
set +o pipefail
"$SL" simulate --seed 11 --stores 40 --skus 2000 --days 60 --bad-rate 0.015 --to stdout 2>/dev/null \
  | head -n "$N" > "$W/input.ndjson"
set -o pipefail
size_mb=$(du -m "$W/input.ndjson" | cut -f1)

say "loading bronze through HTTP ingest"
t0=$(now)
to_bronze "$W/sl" "$W/input.ndjson"
load_s=$(elapsed "$t0")

table="$W/table.md"
{
  echo "Input: $N records, $size_mb MB of NDJSON (simulated, --bad-rate 0.015). Loading it into bronze over HTTP (one curl after another, 8 MB bodies, fsync'd): ${load_s} s."
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
  echo "| stocklake, batches of up to $bo objects and $BATCH_MB MB (bronze gzip → Delta, quarantine, reason codes) | $run | $s | – | $(rate "$N" "$s") | ${events:-?} | ${lines:-?} | $(peak_rss_mib "$W/refine.time") |" >> "$table"
done
done
cat "$W/refine.out" >&2

for engine in $PEERS; do
  say "$engine"
  sync
  /usr/bin/time -v "$PY" "$BENCH/refine_peers.py" "$W/input.ndjson" "$W/out-$engine" "$engine" \
    > "$W/$engine.json" 2> "$W/$engine.time" || { tail -20 "$W/$engine.time" >&2; continue; }
  read -r s start events lines < <("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["seconds"], d["startup_seconds"], d["events"], d["lines"])' "$W/$engine.json")
  echo "| $engine (plain NDJSON → Parquet) | 1 | $s | $start | $(rate "$N" "$s") | $events | $lines | $(peak_rss_mib "$W/$engine.time") |" >> "$table"
done

record "Refine, $N records" "$table"
