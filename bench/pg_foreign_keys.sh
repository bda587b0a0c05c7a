#!/usr/bin/env bash
# What gold's foreign keys cost PostgreSQL: ROWS rows of the shape of fact_inventory_movement
# (three foreign keys: date, store, product) merged from a staging table with the statement the
# model uses (`INSERT … SELECT … ON CONFLICT DO NOTHING`), into a table with the foreign keys
# and into the same table without them. PG=postgres://… picks the server.
source "$(dirname "$0")/lib.sh"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
ROWS="${ROWS:-300000}"
W="$(fresh_dir pg_foreign_keys)"
throwaway_db bench_fk
sql() { psql "$PG/$db" -qAt -v ON_ERROR_STOP=1 "$@"; }
sql <<SQL
create table d_date (date_key int primary key);
create table d_store (store_key int primary key);
create table d_product (product_key int primary key);
insert into d_date select g from generate_series(1, 10) g;
insert into d_store select g from generate_series(1, $ROWS / 1000 + 1) g;
insert into d_product select g from generate_series(1, 1000) g;
create table with_fk (event_id text, line_no int, date_key int references d_date,
  store_key int references d_store, product_key int references d_product, event_type text,
  quantity numeric, quantity_delta numeric, event_time timestamptz, primary key (event_id, line_no));
create table without_fk (like with_fk including indexes);
create table stg as select 'count-' || (g / 1000) || '-x' as event_id, g % 1000 as line_no,
  1 + g % 10 as date_key, 1 + g / 1000 as store_key, 1 + g % 1000 as product_key,
  'stock_count'::text as event_type, 50::numeric as quantity, 50::numeric as quantity_delta,
  now() as event_time from generate_series(0, $ROWS - 1) g;
SQL
# merge ROWS rows into TABLE, in one transaction; prints the seconds
merge() {
  local t0
  t0=$(now)
  sql -c "insert into $1 select * from stg on conflict (event_id, line_no) do nothing" > /dev/null
  elapsed "$t0"
}
table="$W/table.md"
{
  echo "PostgreSQL $(sql -c 'show server_version') on the same machine. $ROWS rows merged from a staging table with \`INSERT … SELECT … ON CONFLICT DO NOTHING\`, as gold merges \`fact_inventory_movement\`."
  echo
  echo "| target table | seconds | rows/s |"
  echo "| --- | ---: | ---: |"
  s=$(merge without_fk); echo "| primary key only | $s | $(rate "$ROWS" "$s") |"
  s=$(merge with_fk); echo "| primary key and three foreign keys | $s | $(rate "$ROWS" "$s") |"
} > "$table"
record "Gold on PostgreSQL: what the foreign keys cost" "$table"
