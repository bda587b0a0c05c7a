"""How often a lead-time warning was followed by a stock-out, by the chance its message states,
from the work directory `stocklake evaluate --workdir DIR` leaves (gold.db, truth.ndjson).

usage: python3 warning_calibration.py DIR

A warning is judged as `stocklake evaluate` judges it: followed when a stock-out that turned
customers away started within the product's lead time plus two days (or was going on). The
chance is the one in the alert's last message (a held warning's chance leaves out the delivery
expected on the way). Warnings opened from day 8 to day 20 of a run starting 2026-11-02.
"""
import collections
import datetime as dt
import json
import re
import sqlite3
import sys

d = sys.argv[1]
db = sqlite3.connect(f"{d}/gold.db")
skus = {r[0]: (r[1], r[2]) for r in db.execute("select product_key, sku, lead_time_days from dim_product")}
stores = {r[0]: r[1] for r in db.execute("select store_key, store_id from dim_store")}
P = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
eps = collections.defaultdict(list)
for line in open(f"{d}/truth.ndjson"):
    j = json.loads(line)
    if j["kind"] == "stockout" and j.get("lost_units", "0") != "0.000":
        eps[(j["store_id"], j["sku"])].append((P(j["start"]), P(j["end"]) if j.get("end") else None))
b = collections.defaultdict(lambda: [0, 0])
for sk, pk, op, msg in db.execute(
    "select store_key, product_key, opened_at, message from stock_alert where alert_type = 'projected_stockout'"
):
    m = re.search(r"a (\d+)% chance", msg)
    if not m:
        continue
    sku, lead = skus[pk]
    o = P(op)
    if not P("2026-11-09T00:00:00Z") <= o <= P("2026-11-21T00:00:00Z"):
        continue
    hit = any(
        (o - dt.timedelta(hours=1) <= s <= o + dt.timedelta(days=lead + 2)) or (s <= o and (e is None or e > o))
        for s, e in eps[(stores[sk], sku)]
    )
    k = (min(int(m.group(1)) // 20 * 20, 80), "1 day" if lead == 1 else "2+ days")
    b[k][0] += 1
    b[k][1] += hit
print("| stated chance | lead time | warnings | followed by a stock-out |")
print("| ---: | --- | ---: | ---: |")
for k in sorted(b):
    n, h = b[k]
    print(f"| {k[0]}–{k[0] + 19}% | {k[1]} | {n} | {100 * h / n:.0f}% |")
