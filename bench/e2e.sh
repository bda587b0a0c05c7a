#!/usr/bin/env bash
# End to end on PostgreSQL: HTTP ingest → bronze → silver → gold with `stocklake run`. The
# simulated chain's records are posted as fast as 3 concurrent clients can (closed loop); the
# run is timed until every line is in gold. The rate gold keeps up with is the highest offered
# rate at which lag stays bounded; above it, lag grows. DAYS=… changes the size.
source "$(dirname "$0")/lib.sh"
SL="$(stocklake_bin)"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
DAYS="${DAYS:-7}"
W="$(fresh_dir e2e)"
throwaway_db bench_e2e
gold="$PG/$db"

say "simulating $DAYS days of 20 stores × 2,000 products"
"$SL" simulate --seed 21 --stores 20 --skus 2000 --days "$DAYS" --catalog-out "$W/master" --to "file:$W/input.ndjson" 2>/dev/null
records=$(wc -l < "$W/input.ndjson")
lines=$(python3 -c 'import json,sys; print(sum(len(json.loads(l)["lines"]) for l in open(sys.argv[1])))' "$W/input.ndjson")
split -C 2M -d -a 5 "$W/input.ndjson" "$W/chunk."

"$SL" init --data-dir "$W/data" --gold "$gold" --master-data "$W/master" > /dev/null
port=$(free_port)
/usr/bin/time -v "$SL" run --data-dir "$W/data" --gold "$gold" --master-data "$W/master" \
  --listen "127.0.0.1:$port" 2> "$W/run.log" > /dev/null &
run=$!
wait_http "http://127.0.0.1:$port/readyz"

# lag, sampled every second
(
  while kill -0 "$run" 2>/dev/null; do
    curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null \
      | awk '/^stocklake_stage_lag_seconds/ {if ($2 > m) m = $2} END {print m + 0}'
    sleep 1
  done
) > "$W/lag" &
sampler=$!

say "posting $records records ($lines lines)"
t0=$(now)
ls "$W"/chunk.* | xargs -P 3 -I{} curl -fsS -o /dev/null -H 'content-type: application/x-ndjson' \
  --data-binary @{} "http://127.0.0.1:$port/v1/events"
ingest_s=$(elapsed "$t0")
say "waiting for gold"
while [ "$(psql "$gold" -Atc 'select count(*) from fact_inventory_movement')" -lt "$lines" ]; do sleep 0.2; done
total_s=$(elapsed "$t0")
# /usr/bin/time reports when its child exits: signal the child
pkill -TERM -P "$run" || true; wait "$run" || true
kill "$sampler" 2>/dev/null || true
max_lag=$(sort -g "$W/lag" | tail -1)
rss=$(peak_rss_mib "$W/run.log")

table="$W/table.md"
{
  echo "\`stocklake run\`, bronze and silver on local files, gold on PostgreSQL; $DAYS simulated days of 20 stores × 2,000 products: $records records, $lines line events; 3 clients posting 2 MB NDJSON bodies."
  echo
  echo "| measure | value |"
  echo "| --- | ---: |"
  echo "| all records acknowledged (durable in bronze) after | $ingest_s s |"
  echo "| ingest rate | $(rate "$lines" "$ingest_s") line events/s ($(rate "$records" "$ingest_s") records/s) |"
  echo "| every line in gold after | $total_s s |"
  echo "| end-to-end rate (bronze, silver, gold, stock levels, alerts) | **$(rate "$lines" "$total_s") line events/s** |"
  echo "| largest stage lag seen | $max_lag s |"
  echo "| peak RSS of the process | $rss MiB |"
} > "$table"
record "End to end on PostgreSQL" "$table"
