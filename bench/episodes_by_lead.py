"""Per lead time, the share of stock-outs each method warned of in time, from the episodes.csv
that `stocklake evaluate --workdir DIR` leaves in DIR.

usage: python3 episodes_by_lead.py DIR/episodes.csv
"""
import collections
import csv
import statistics
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
by_lead = collections.defaultdict(list)
for r in rows:
    by_lead[int(r["lead_time_days"])].append(r)


def share(rs, col, hours):
    hit = sum(1 for r in rs if r[col] != "" and float(r[col]) >= hours)
    return 100 * hit / len(rs)


print("| lead time (days) | stock-outs | stocklake in time | stocklake at all | median warning h | one case in time |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
for lead, rs in sorted(by_lead.items()):
    ours = [float(r["stocklake_hours"]) for r in rs if r["stocklake_hours"] != ""]
    median = f"{statistics.median(ours):.1f}" if ours else "–"
    print(f"| {lead} | {len(rs)} | {share(rs, 'stocklake_hours', 24 * lead):.1f}% | "
          f"{share(rs, 'stocklake_hours', 0):.1f}% | {median} | {share(rs, 'case_hours', 24 * lead):.1f}% |")
