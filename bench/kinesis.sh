#!/usr/bin/env bash
# The Kinesis path against moto: the simulator's producer (PutRecords in batches of 500,
# partition key = store) and `stocklake ingest --once` reading every shard into bronze.
# Uses STOCKLAKE_TEST_MOTO when set, otherwise starts moto_server on a free port.
source "$(dirname "$0")/lib.sh"
SL="$(stocklake_bin)"
W="$(fresh_dir kinesis)"
SHARDS="${SHARDS:-4}"
if [ -n "${STOCKLAKE_TEST_MOTO:-}" ]; then
  endpoint="$STOCKLAKE_TEST_MOTO"
else
  command -v moto_server >/dev/null || python3 -m pip install --quiet 'moto[server]'
  port=$(free_port)
  moto_server -H 127.0.0.1 -p "$port" > "$W/moto.log" 2>&1 &
  moto=$!
  trap 'kill $moto 2>/dev/null || true' EXIT
  endpoint="http://127.0.0.1:$port"
  wait_http "$endpoint/moto-api/"
fi
export AWS_ENDPOINT_URL="$endpoint"
stream="bench-$(date +%s)-$$"
DAYS="${DAYS:-3}"
"$SL" init --data-dir "$W/data" --stream "kinesis://$stream" --shards "$SHARDS" > /dev/null

say "producer: simulate $DAYS days of 20 stores to kinesis://$stream"
t0=$(now)
STOCKLAKE_LOG=info "$SL" simulate --seed 9 --stores 20 --skus 2000 --days "$DAYS" \
  --to "kinesis://$stream" 2> "$W/producer.log" > /dev/null
produce_s=$(elapsed "$t0")
produced=$(grep -oE 'records=[0-9]+' "$W/producer.log" | tail -1 | cut -d= -f2)
/usr/bin/time -f %e -o "$W/gen.time" "$SL" simulate --seed 9 --stores 20 --skus 2000 --days "$DAYS" \
  --to file:/dev/null > /dev/null 2>&1
generate_s=$(tail -1 "$W/gen.time")

say "consumer: ingest --once"
t0=$(now)
/usr/bin/time -v "$SL" ingest --once --data-dir "$W/data" --stream "kinesis://$stream" > "$W/ingest.out" 2> "$W/ingest.time"
ingest_s=$(elapsed "$t0")
ingested=$(grep -oE 'ingested [0-9]+' "$W/ingest.out" | cut -d' ' -f2)
in_bronze=$(find "$W/data/bronze" -name '*.gz' -print0 | xargs -0 -r zcat | wc -l)

table="$W/table.md"
{
  echo "moto_server $(python3 -c 'import moto; print(moto.__version__)') on the same 2 cores; stream of $SHARDS shards."
  echo
  echo "| path | records | wall s | records/s | note |"
  echo "| --- | ---: | ---: | ---: | --- |"
  echo "| producer: \`simulate --to kinesis://\` (PutRecords × 500) | ${produced:-?} | $produce_s | $(rate "${produced:-0}" "$produce_s") | of which simulating: $generate_s s |"
  echo "| consumer: \`ingest --once\` (all shards → bronze) | $ingested | $ingest_s | $(rate "$ingested" "$ingest_s") | bronze lines: $in_bronze; peak RSS $(peak_rss_mib "$W/ingest.time") MiB |"
} > "$table"
record "Kinesis against moto" "$table"
