#!/usr/bin/env bash
# Gold on PostgreSQL at scale: for 1k, 100k and 1M live store × product keys, the load (one
# stock count per store → fact_inventory_movement and stock_level rows) and then one batch of
# 10,000 sales against those keys (always over 1,000 keys in at most ten stores, so that only the
# size of the tables differs): wall time, rows/s and peak RSS of `stocklake model --once`.
# KEYS="1000 100000" limits the sizes; PG=postgres://… picks the server.
source "$(dirname "$0")/lib.sh"
SL="$(stocklake_bin)"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
KEYS="${KEYS:-1000 100000 1000000}"
SALES="${SALES:-10000}"
W="$(fresh_dir gold)"
table="$W/table.md"
{
  echo "PostgreSQL $(psql "$PG/test" -Atc 'show server_version' 2>/dev/null || echo '?') on the same machine; silver on local files. \`stocklake model --once\`: the process (start, loading the state of every key from gold, the batch) and the batch alone (its transaction included). Rows inserted: facts and snapshot rows; the batch of sales also updates the \`stock_level\` row of each of the 1,000 keys it touches, at every size."
  echo
  echo "| live keys | step | lines | process wall s | stocklake CPU s | of which the batch s | rows inserted | rows/s in the batch | peak RSS MiB |"
  echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} > "$table"

# put NDJSON into bronze over HTTP ingest, then refine it
load() {
  to_bronze "$1" "$2"
  "$SL" refine --once --data-dir "$1" > /dev/null
}

# the seconds the model's batches took, from its summary line ("… batches (1.234 s; …")
batch_s() { grep -oE 'batches \([0-9.]+ s' "$W/model.out" | grep -oE '[0-9.]+' | head -1; }

# user + system CPU seconds of the stocklake process: the rest of the wall time is waiting,
# mostly on PostgreSQL
cpu_s() { awk -F': ' '/User time|System time/ {t += $2} END {printf "%.2f", t}' "$W/model.time"; }

count() { psql "$1" -Atc "select (select count(*) from fact_inventory_movement) + (select count(*) from fact_sales) + (select count(*) from stock_level) + (select count(*) from fact_stock_daily)"; }

# measure KEYS STEP LINES: one timed `model --once`, as a table row
measure() {
  local before s rows b
  before=$(count "$gold")
  t0=$(now)
  /usr/bin/time -v "$SL" model --once --data-dir "$data" --gold "$gold" > "$W/model.out" 2> "$W/model.time"
  s=$(elapsed "$t0"); rows=$(( $(count "$gold") - before )); b=$(batch_s)
  echo "| $1 | $2 | $3 | $s | $(cpu_s) | $b | $rows | $(rate "$rows" "$b") | $(peak_rss_mib "$W/model.time") |" >> "$table"
}

for keys in $KEYS; do
  skus=1000; stores=$((keys / skus)); [ "$stores" -ge 1 ] || stores=1
  db="bench_gold_$$_$keys"
  psql "$PG/test" -qc "drop database if exists $db" && psql "$PG/test" -qc "create database $db"
  gold="$PG/$db"
  data="$W/k$keys"
  say "$keys keys: $stores stores × $skus products"
  python3 "$BENCH/gen_keys.py" "$stores" "$skus" "$SALES" "$W/counts.ndjson" "$W/sales.ndjson"
  "$SL" init --data-dir "$data" --gold "$gold" > /dev/null
  load "$data" "$W/counts.ndjson"
  measure "$keys" "load: stock counts" "$keys"
  load "$data" "$W/sales.ndjson"
  measure "$keys" "batch: $SALES sales" "$SALES"
  psql "$PG/test" -qc "drop database if exists $db with (force)"
done
record "Gold on PostgreSQL: load and batch time against 1k … 1M live keys" "$table"
