#!/usr/bin/env bash
# Latency from a sale's 202 to its stock_level row and to its alert, p50/p99, on the embedded
# default under a steady background load (a simulated chain of 10 stores at SPEED× real time).
source "$(dirname "$0")/lib.sh"
SL="$(stocklake_bin)"
PROBES="${PROBES:-200}"
SPEED="${SPEED:-600}"
W="$WORK/latency"
say "latency: $PROBES probes, background chain at ${SPEED}x"
python3 "$BENCH/latency.py" "$SL" "$W" --probes "$PROBES" --speed "$SPEED" > "$W.json"
table="$WORK/latency.md"
python3 - "$W.json" > "$table" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"`stocklake run`, embedded default (local files, SQLite); {d['probes']} probes "
      f"({d['failures']} failed), background load {d['background_records_per_s']} records/s "
      "over HTTP; the API polled every 10 ms (so times are up to 10 ms late).")
print()
print("| from the sale's 202 to | p50 ms | p99 ms | max ms | mean ms |")
print("| --- | ---: | ---: | ---: | ---: |")
for k, label in (("stock_ms", "`stock_level` shows it"), ("alert_ms", "its `out_of_stock` alert is open")):
    x = d[k]
    print(f"| {label} | {x['p50']} | {x['p99']} | {x['max']} | {x['mean']} |")
PY
record "Latency, sale to stock level and alert" "$table"
