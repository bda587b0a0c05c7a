#!/usr/bin/env python3
"""stocklake's warnings in an evaluation's work directory, by the rule that raised them and the
product's lead time, each with the share that no stock-out followed (the same judgement as
`stocklake evaluate`: an alert from day 8 on, false when no stock-out that turned customers away
started within the lead time plus two days, or was under way when it opened).

    stocklake evaluate ... --workdir eval/
    python3 bench/alerts_by_kind.py eval/

An alert is counted by itself, not merged with overlapping ones of its product; its kind is read
from its last message (an order-risk alert's stated chance is the last look's, not the one it
was raised with)."""
import sqlite3, json, csv, re, sys, collections
from datetime import datetime, timedelta, timezone
d = sys.argv[1]
def ts(s):
    if s is None: return None
    s = s.replace('Z','+00:00')
    return datetime.fromisoformat(s)
lead = {r['sku']: int(r['lead_time_days'] or 2) for r in csv.DictReader(open(f'{d}/master/products.csv'))}
eps = collections.defaultdict(list)
first = None
for line in open(f'{d}/truth.ndjson'):
    t = json.loads(line)
    if t['kind'] == 'stock':
        first = first or t['date']
    if t['kind'] == 'stockout' and float(t['lost_units']) > 0:
        eps[(t['store_id'], t['sku'])].append((ts(t['start']), ts(t['end'])))
db = sqlite3.connect(f'{d}/gold.db')
rows = db.execute("""select s.store_id, p.sku, a.alert_type, a.opened_at, a.resolved_at, a.message
 from stock_alert a join dim_store s on s.store_key=a.store_key join dim_product p on p.product_key=a.product_key
 where a.alert_type in ('projected_stockout','below_safety_stock')""").fetchall()
opened_all = [ts(r[3]) for r in rows]
start = min(opened_all).replace(hour=0, minute=0, second=0, microsecond=0)
horizon_end = max(opened_all)
frm = start + timedelta(days=7)
stats = collections.defaultdict(lambda: [0,0])
for store, sku, typ, op, rs, msg in rows:
    op = ts(op)
    if op < frm: continue
    l = timedelta(days=lead.get(sku, 2))
    if op + l + timedelta(days=2) > horizon_end: continue
    followed = any((e >= op - timedelta(hours=1) and e <= op + l + timedelta(days=2)) or (e <= op and (end is None or end > op)) for e, end in eps.get((store, sku), []))
    if typ == 'below_safety_stock': kind = 'safety'
    elif 'may run out unless' in msg:
        m = re.search(r'a (\d+)% chance', msg); r = int(m.group(1)) if m else -1
        kind = 'risk %d-%d' % (r//10*10, r//10*10+9)
    elif 'will run out around' in msg: kind = 'runs_out' + (' late' if 'Too late' in msg else '')
    elif 'ran out before' in msg: kind = 'ran_out'
    else: kind = 'other'
    kind += ' L%d' % min(lead.get(sku,2), 3) if kind.startswith(('risk','runs')) else ''
    stats[kind][0] += 1
    stats[kind][1] += 0 if followed else 1
for k in sorted(stats):
    n, f = stats[k]
    print(f'{k:24s} {n:7d} alerts  {100*f/n:5.1f}% false')
