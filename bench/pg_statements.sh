#!/usr/bin/env bash
# Where gold's time goes in PostgreSQL: one load of KEYS live keys (stock counts) and one batch
# of SALES sales, with log_min_duration_statement on the database; the statements of 30 ms and
# more are read back from the server log. Needs to read the server's log file (LOG=…).
source "$(dirname "$0")/lib.sh"
SL="$(stocklake_bin)"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
KEYS="${KEYS:-300000}"
SALES="${SALES:-10000}"
LOG="${LOG:-$(ls /var/log/postgresql/*.log | head -1)}"
W="$(fresh_dir pg_statements)"
throwaway_db bench_stmt
psql "$PG/test" -qc "alter database $db set log_min_duration_statement = 30"
python3 "$BENCH/gen_keys.py" "$((KEYS / 1000))" 1000 "$SALES" "$W/counts.ndjson" "$W/sales.ndjson"
"$SL" init --data-dir "$W/data" --gold "$PG/$db" > /dev/null
table="$W/table.md"
{
  echo "PostgreSQL statements of 30 ms or more in \`stocklake model --once\`, $KEYS live keys (log_min_duration_statement)."
  echo
  echo "| step | statement | ms | rows | rows/s |"
  echo "| --- | --- | ---: | ---: | ---: |"
} > "$table"
for step in counts sales; do
  to_bronze "$W/data" "$W/$step.ndjson"
  "$SL" refine --once --data-dir "$W/data" > /dev/null
  rows=$(wc -l < "$W/$step.ndjson"); [ "$step" = counts ] && rows=$KEYS
  from=$(wc -l < "$LOG")
  "$SL" model --once --data-dir "$W/data" --gold "$PG/$db" > /dev/null
  tail -n +"$((from + 1))" "$LOG" | grep "$db" | grep -oE 'duration: [0-9.]+ ms +(statement|execute [^:]+): .{0,70}' \
    | while read -r _ ms _ kind rest; do
        stmt="$(echo "$rest" | sed -E 's/^[^:]*: //; s/\|/\\|/g')"
        case "$stmt" in
          # reads (the start-up's pages of stock levels) move no rows of the step
          SELECT*) echo "| $step (start) | \`$stmt…\` | $ms | – | – |" ;;
          *) echo "| $step | \`$stmt…\` | $ms | $rows | $(rate "$rows" "$(awk -v m="$ms" 'BEGIN {print m / 1000}')") |" ;;
        esac
      done >> "$table"
done
record "Gold on PostgreSQL: statement times" "$table"
