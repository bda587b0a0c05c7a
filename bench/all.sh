#!/usr/bin/env bash
# Every benchmark, one after another (about half an hour on two cores).
set -euo pipefail
cd "$(dirname "$0")"
for b in simulate http_ingest kinesis refine gold e2e latency; do
  echo "=== $b ($(date -u +%H:%M:%S))"
  bash "./$b.sh"
done
