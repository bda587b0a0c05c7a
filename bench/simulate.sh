#!/usr/bin/env bash
# Simulator speed: a week of 20 stores × 2,000 products, written to a file, to a pipe and to
# nowhere, so that the CPU's share and the disk's share can be told apart.
source "$(dirname "$0")/lib.sh"
SL="$(stocklake_bin)"
W="$(fresh_dir simulate)"
args=(--seed 1 --days 7 --stores 20 --skus 2000)
table="$W/table.md"
{
  echo "\`stocklake simulate ${args[*]}\`, canonical records."
  echo
  echo "| target | wall s | records | records/s | MB/s | peak RSS MiB |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
} > "$table"
for target in "file:$W/a.ndjson" "stdout" "file:/dev/null"; do
  say "simulate --to $target"
  t0=$(now)
  if [ "$target" = stdout ]; then
    /usr/bin/time -v "$SL" simulate "${args[@]}" --to stdout 2> "$W/time" | wc -lc > "$W/count"
  else
    /usr/bin/time -v "$SL" simulate "${args[@]}" --to "$target" 2> "$W/time" > /dev/null
  fi
  s=$(elapsed "$t0")
  if [ "$target" = stdout ]; then
    read -r records bytes < "$W/count"
    label="stdout, piped to wc"
  elif [ "$target" = "file:/dev/null" ]; then
    records=$(wc -l < "$W/a.ndjson"); bytes=$(stat -c %s "$W/a.ndjson")
    label="file:/dev/null (generation and encoding only)"
  else
    sync "$W/a.ndjson"
    s=$(elapsed "$t0")
    records=$(wc -l < "$W/a.ndjson"); bytes=$(stat -c %s "$W/a.ndjson")
    label="file on local disk (synced)"
  fi
  echo "| $label | $s | $records | $(rate "$records" "$s") | $(awk -v b="$bytes" -v s="$s" 'BEGIN {printf "%.0f", b/1048576/s}') | $(peak_rss_mib "$W/time") |" >> "$table"
done
say "the same seed twice gives the same bytes"
"$SL" simulate "${args[@]}" --to "file:$W/b.ndjson" 2>/dev/null
if cmp -s "$W/a.ndjson" "$W/b.ndjson"; then same=yes; else same=NO; fi
echo >> "$table"
echo "Two runs identical byte for byte: $same ($(sha256sum < "$W/a.ndjson" | cut -c1-16))." >> "$table"
rm -f "$W/b.ndjson"
say "four weeks: the start-up (catalog, opening stock) spread thin"
long=(--seed 1 --days 28 --stores 20 --skus 2000)
t0=$(now)
/usr/bin/time -v "$SL" simulate "${long[@]}" --to "file:$W/c.ndjson" 2> "$W/time" > /dev/null
sync "$W/c.ndjson"
s=$(elapsed "$t0")
records=$(wc -l < "$W/c.ndjson"); bytes=$(stat -c %s "$W/c.ndjson")
t0=$(now)
"$SL" simulate "${long[@]}" --to file:/dev/null 2> /dev/null
s0=$(elapsed "$t0")
mbs() { awk -v b="$bytes" -v s="$1" 'BEGIN {printf "%.0f", b/1048576/s}'; }
echo >> "$table"
echo "\`--days 28\`: to a synced file on local disk $s s ($(rate "$records" "$s") records/s, $(mbs "$s") MB/s); to /dev/null $s0 s ($(mbs "$s0") MB/s)." >> "$table"
say "the disk itself: the same four weeks copied by dd and synced, three times"
# the simulator's own bytes (cached in memory after it wrote them), so that the two times
# compare directly: zeros are a poor test, a virtual disk may store them for free
dd_times=()
for _ in 1 2 3; do
  sync
  t0=$(now)
  dd if="$W/c.ndjson" of="$W/dd" bs=4M conv=fsync 2> /dev/null
  dd_times+=("$(elapsed "$t0")")
  rm -f "$W/dd"
done
rm -f "$W/c.ndjson"
echo "The same disk takes ${dd_times[*]} s to write and sync the same bytes copied by dd ($(mbs "${dd_times[0]}"), $(mbs "${dd_times[1]}"), $(mbs "${dd_times[2]}") MB/s): the simulator's synced four weeks, $s s, against the disk's own time." >> "$table"
record "Simulator" "$table"
