#!/usr/bin/env bash
# What the dashboard's polled reads cost against a large gold on PostgreSQL. A gold database is
# made by `stocklake init` and filled with LINES sales lines and as many movements (30 days, 50
# stores × 2,000 products, 5 lines an event; loaded with the foreign-key triggers off), and
# with the hourly sales and row counts the batches keep, summed from those rows as migration 3
# does. `stocklake run` then serves it (no bronze or silver: its stages have nothing to do) and
# the reads the dashboard makes every two seconds are timed, REPEAT times each.
# OTHER_BIN=… times another binary against the same database (an A/B with an earlier commit).
# PG=postgres://… picks the server.
source "$(dirname "$0")/lib.sh"
SL="$(stocklake_bin)"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
LINES="${LINES:-10000000}"
REPEAT="${REPEAT:-5}"
W="$(fresh_dir dashboard_reads)"
throwaway_db bench_dashboard
gold="$PG/$db"
sql() { psql "$gold" -qAt -v ON_ERROR_STOP=1 "$@"; }

say "making gold and loading $LINES sales lines and $LINES movements"
"$SL" init --data-dir "$W/data" --gold "$gold" > /dev/null
sql <<SQL
SET session_replication_role = replica;
INSERT INTO dim_date SELECT to_char(d, 'YYYYMMDD')::int, d, extract(isodow FROM d), to_char(d, 'Day'),
  extract(week FROM d), extract(month FROM d), extract(quarter FROM d), extract(year FROM d), extract(isodow FROM d) >= 6
  FROM generate_series(date '2026-10-01', date '2026-10-31', interval '1 day') d;
INSERT INTO dim_store (store_key, store_id, name, timezone, is_inferred, updated_at)
  SELECT g, 'S' || lpad(g::text, 3, '0'), 'Store ' || g, 'UTC', false, now() FROM generate_series(0, 49) g;
INSERT INTO dim_product (product_key, sku, name, category, is_inferred, valid_from, is_current)
  SELECT g, 'SKU' || lpad(g::text, 5, '0'), 'Product ' || g, 'Category ' || (g % 12), false, now(), true
  FROM generate_series(0, 1999) g;
INSERT INTO fact_sales SELECT md5((g / 5)::text), g % 5, to_char(t, 'YYYYMMDD')::int, (g / 5) % 50, g % 2000,
  't' || (g / 5), 'r1', t, 1 + g % 3, 2.5, 0, 2.5 * (1 + g % 3)
  FROM generate_series(0, $LINES - 1) g, LATERAL (SELECT timestamptz '2026-10-01' + g * (interval '30 days' / $LINES) AS t) x;
INSERT INTO fact_inventory_movement SELECT md5((g / 5)::text), g % 5, to_char(t, 'YYYYMMDD')::int, (g / 5) % 50, g % 2000,
  'sale', 1 + g % 3, -(1 + g % 3), t
  FROM generate_series(0, $LINES - 1) g, LATERAL (SELECT timestamptz '2026-10-01' + g * (interval '30 days' / $LINES) AS t) x;
DELETE FROM fact_sales_hourly;
INSERT INTO fact_sales_hourly (store_key, hour, units, sales)
  SELECT store_key, date_trunc('hour', event_time), SUM(quantity), COUNT(DISTINCT event_id) FROM fact_sales GROUP BY 1, 2;
DELETE FROM gold_row_count;
INSERT INTO gold_row_count SELECT 'fact_sales', COUNT(*) FROM fact_sales;
INSERT INTO gold_row_count SELECT 'fact_inventory_movement', COUNT(*) FROM fact_inventory_movement;
SQL
sql -c "VACUUM ANALYZE" > /dev/null

# the reads of one dashboard refresh that touch sales or the fact tables
reads=("/v1/sales/velocity?hours=48" "/v1/sales/velocity?hours=48&store_id=S007" "/v1/pipeline")

# times each read REPEAT times with binary $1; prints a table row per read: median and slowest
time_reads() {
  local bin=$1 label=$2 port run
  port=$(free_port)
  "$bin" run --data-dir "$W/data-$label" --gold "$gold" --listen "127.0.0.1:$port" 2> "$W/run-$label.log" > /dev/null &
  run=$!
  wait_http "http://127.0.0.1:$port/readyz"
  for r in "${reads[@]}"; do
    curl -fsS -o /dev/null "http://127.0.0.1:$port$r" # warm
    for _ in $(seq "$REPEAT"); do
      curl -fsS -o "$W/body.json" -w '%{time_total}\n' "http://127.0.0.1:$port$r"
    done | sort -n | awk -v r="$r" -v l="$label" '{ t[NR] = $1 } END {
      printf "| %s | `%s` | %.1f | %.1f |\n", l, r, t[int((NR + 1) / 2)] * 1000, t[NR] * 1000 }'
    if [[ "$r" == /v1/pipeline ]]; then
      err=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gold"].get("error", ""))' "$W/body.json")
      if [ -n "$err" ]; then echo "| $label | \`$r\`, the last time: $err | | |"; fi
    fi
  done
  kill "$run"
  wait "$run" 2>/dev/null || true
}

table="$W/table.md"
{
  echo "PostgreSQL $(sql -c 'show server_version') on the same machine; $LINES sales lines and $LINES movements over 30 days, 50 stores; each read $REPEAT times after one to warm, by \`curl\` against \`stocklake run\`."
  echo
  echo "| binary | read | median ms | slowest ms |"
  echo "| --- | --- | ---: | ---: |"
  time_reads "$SL" this
  if [ -n "${OTHER_BIN:-}" ]; then
    time_reads "$OTHER_BIN" other
  fi
} > "$table"
record "Dashboard reads against a large gold on PostgreSQL" "$table"
