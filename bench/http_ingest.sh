#!/usr/bin/env bash
# HTTP ingest into bronze on local files, durable (fsync) before each 202: wrk posts the same
# NDJSON body over and over from 2 threads and 32 connections for 20 s per body size; then the
# lines in bronze are counted against the records acknowledged.
source "$(dirname "$0")/lib.sh"
command -v wrk >/dev/null || { say "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
SL="$(stocklake_bin)"
W="$(fresh_dir http)"
DURATION="${DURATION:-20s}"
set +o pipefail
# till traffic: sale records (the day's opening counts are a few huge records, not typical)
"$SL" simulate --seed 5 --stores 20 --skus 2000 --days 2 --to stdout 2>/dev/null \
  | grep '"event_type":"sale"' | head -n 1000 > "$W/pool.ndjson"
set -o pipefail
table="$W/table.md"
{
  echo "\`stocklake ingest\` (HTTP only), bronze on the local disk; wrk -t2 -c32 -d$DURATION on the same 2 cores; bodies of simulated sale records ($(awk '{n += length($0) + 1} END {printf "%.0f", n / NR}' "$W/pool.ndjson") bytes on average)."
  echo
  echo "| records per request | requests/s | records/s | MB/s in | p50 ms | p99 ms | non-202 | records in bronze = acknowledged |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
} > "$table"
for per in 100 1000; do
  head -n "$per" "$W/pool.ndjson" > "$W/body.ndjson"
  cat > "$W/post.lua" <<LUA
local f = io.open("$W/body.ndjson", "rb")
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "application/x-ndjson"
local accepted = 0
local other = 0
response = function(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.3f %.3f\n", summary.requests,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
  port=$(free_port)
  rm -rf "$W/data"
  "$SL" ingest --data-dir "$W/data" --listen "127.0.0.1:$port" 2> "$W/ingest.log" &
  pid=$!
  wait_http "http://127.0.0.1:$port/healthz"
  say "$per records per request"
  wrk -t2 -c32 -d"$DURATION" --latency -s "$W/post.lua" "http://127.0.0.1:$port/v1/events" > "$W/wrk.out"
  kill -TERM "$pid"; wait "$pid" || true
  read -r _ reqs errs p50 p99 < <(grep '^RESULT' "$W/wrk.out")
  secs=$(awk '/requests in/ {gsub(/s,/, "", $4); print $4}' "$W/wrk.out")
  ok=$((reqs - errs))
  bytes=$(stat -c %s "$W/body.ndjson")
  in_bronze=$(find "$W/data/bronze" -name '*.gz' -print0 | xargs -0 -r zcat | wc -l)
  acked=$((ok * per))
  verdict=$([ "$in_bronze" -ge "$acked" ] && echo "yes ($in_bronze ≥ $acked)" || echo "NO ($in_bronze < $acked)")
  echo "| $per | $(rate "$reqs" "$secs") | $(rate "$acked" "$secs") | $(awk -v r="$reqs" -v b="$bytes" -v s="$secs" 'BEGIN {printf "%.0f", r*b/1048576/s}') | $p50 | $p99 | $errs | $verdict |" >> "$table"
done
record "HTTP ingest" "$table"
