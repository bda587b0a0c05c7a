"""Events that create many live store × product keys cheaply: one stock count of SKUS lines per
store, then SALES one-line sales an hour later, over the same number of keys whatever the size
(1,000 keys picked at random in the first ten stores), so that batches against small and
large tables do the same work.

usage: python3 gen_keys.py STORES SKUS SALES COUNTS.ndjson SALES.ndjson
"""
import datetime
import json
import random
import sys

stores, skus, sales = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t0 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(hours=3)
iso = lambda t: t.isoformat().replace("+00:00", "Z")
with open(sys.argv[4], "w") as f:
    for s in range(stores):
        for first in range(0, skus, 1000):
            f.write(json.dumps({
                "schema_version": 1, "event_id": f"count-{s}-{first}", "event_type": "stock_count",
                "event_time": iso(t0), "store_id": f"ST-{s + 1:04d}",
                "lines": [{"sku": f"SKU-{k + 1:06d}", "quantity": 50}
                          for k in range(first, min(first + 1000, skus))],
            }, separators=(",", ":")) + "\n")
rng = random.Random(7)
pool = [(s, k) for s in range(min(stores, 10)) for k in range(skus)]
touched = rng.sample(pool, min(1000, len(pool)))
with open(sys.argv[5], "w") as f:
    for i in range(sales):
        t = t0 + datetime.timedelta(hours=1, milliseconds=i)
        s, k = touched[rng.randrange(len(touched))]
        f.write(json.dumps({
            "schema_version": 1, "event_id": f"sale-{i}", "event_type": "sale",
            "event_time": iso(t), "store_id": f"ST-{s + 1:04d}",
            "lines": [{"sku": f"SKU-{k + 1:06d}", "quantity": 1, "unit_price": 1.25}],
        }, separators=(",", ":")) + "\n")
