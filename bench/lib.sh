# Shared by the bench scripts: the release binary, a scratch directory, the peers' venv, and
# appending a result table to bench/RESULTS.md with the machine and the date.
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/stocklake/target}"
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export STOCKLAKE_LOG="${STOCKLAKE_LOG:-warn}"
WORK="${BENCH_WORK:-/var/tmp/stocklake-bench}"
VENV="${BENCH_VENV:-/var/cache/stocklake/bench-venv}"
mkdir -p "$WORK"

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

# the release binary, built if needed
# the release binary, built from this checkout; STOCKLAKE_BIN=… measures another one (an A/B
# against an earlier commit's build)
stocklake_bin() {
  if [ -n "${STOCKLAKE_BIN:-}" ]; then
    echo "$STOCKLAKE_BIN"
    return
  fi
  (cd "$ROOT" && cargo build --release --quiet -p stocklake) >&2
  echo "$CARGO_TARGET_DIR/release/stocklake"
}

machine() {
  local cpu
  cpu="$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
  echo "$(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -r)"
}

# the peers (DuckDB, Polars, PySpark), from PyPI into a venv of their own
peers_venv() {
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import duckdb, polars, pyspark" 2>/dev/null; then
    say "installing duckdb, polars, pyspark into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check duckdb polars pyarrow 'pyspark==3.5.*' requests
  fi
  echo "$VENV/bin/python"
}

# record TITLE FILE: print the table and append it to RESULTS.md
record() {
  local title="$1" table="$2" git
  # a run inside another script's measure (bench/ab.sh) leaves the recording to it
  if [ -n "${BENCH_NO_RECORD:-}" ]; then cat "$table"; return; fi
  git="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  {
    printf '\n### %s\n\n' "$title"
    printf '%s, commit %s, on %s.\n\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$git" "$(machine)"
    cat "$table"
  } >> "$BENCH/RESULTS.md"
  cat "$table"
}

# seconds since the epoch, with fractions
# An empty work directory $WORK/NAME, printed.
fresh_dir() { rm -rf "${WORK:?}/$1" && mkdir -p "$WORK/$1" && echo "$WORK/$1"; }

# A PostgreSQL database for this run on $PG, dropped when the script exits (it takes the EXIT
# trap). Sets $db to its name.
throwaway_db() {
  db="$1_$$"
  psql "$PG/test" -qc "create database $db"
  trap 'psql "$PG/test" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true' EXIT
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }

# wait until URL answers 2xx
wait_http() {
  for _ in $(seq 1 200); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# peak RSS in MiB of a command, via /usr/bin/time -v (GNU time) or bash's own children usage
peak_rss_mib() { awk '/Maximum resident set size/ {printf "%.0f", $NF/1024}' "$1"; }

# to_bronze DATA_DIR FILE: loads an NDJSON file into DATA_DIR's bronze the way tills would,
# through `stocklake ingest` over HTTP in 8 MB bodies (each durable before its 202)
to_bronze() {
  local data="$1" file="$2" port pid chunks
  port=$(free_port)
  "$SL" ingest --data-dir "$data" --listen "127.0.0.1:$port" 2>> "$WORK/ingest.log" &
  pid=$!
  wait_http "http://127.0.0.1:$port/healthz"
  chunks="$(mktemp -d "$WORK/chunks.XXXXXX")"
  split -C 8M -d -a 4 "$file" "$chunks/c."
  for f in "$chunks"/c.*; do
    curl -fsS -o /dev/null -H 'content-type: application/x-ndjson' --data-binary "@$f" \
      "http://127.0.0.1:$port/v1/events"
  done
  rm -rf "$chunks"
  kill -TERM "$pid"; wait "$pid" || true
}
