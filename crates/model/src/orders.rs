//! Purchase orders: what each store has ordered and what of it has come (docs/contract.md §2,
//! `on_order`). Plain data and rules, no I/O: the engine feeds it lines and writes the rows it
//! returns to `purchase_order_line`.
//!
//! The result never depends on the order events arrive in. An order's lines are those of its
//! latest `purchase_order` event (by event time, then event id); a SKU an earlier version named
//! and the latest does not is cancelled (quantity 0). Receipts naming the order add up per SKU
//! whenever they arrive, before or after the order itself. A line is open until a receipt
//! brings its SKU (a short delivery closes it too: the rest is not expected any more).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::rows::OrderLineRow;
use crate::state::{SkuIndex, StoreKey};

/// The state of an order line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStatus {
    /// Ordered, nothing received yet.
    Open,
    /// Received in full (or more).
    Received,
    /// Received in part: closed, the rest is not expected.
    Short,
    /// Quantity 0 in the latest version of the order, or left out of it.
    Cancelled,
    /// A receipt names the order, whose `purchase_order` event has not arrived.
    AwaitingOrder,
}

impl LineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LineStatus::Open => "open",
            LineStatus::Received => "received",
            LineStatus::Short => "short",
            LineStatus::Cancelled => "cancelled",
            LineStatus::AwaitingOrder => "awaiting_order",
        }
    }
}

/// One SKU of an order.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OrderLine {
    /// The line's place in the order's latest version that names it.
    pub line_no: i32,
    /// `None` until an order event names the SKU.
    pub quantity: Option<Decimal>,
    pub received: Decimal,
    /// The first and the last receipt that brought the SKU.
    pub first_received_at: Option<DateTime<Utc>>,
    pub last_received_at: Option<DateTime<Utc>>,
}

impl OrderLine {
    pub fn status(&self) -> LineStatus {
        match self.quantity {
            None => LineStatus::AwaitingOrder,
            Some(q) if q.is_zero() => LineStatus::Cancelled,
            Some(q) if self.received >= q => LineStatus::Received,
            Some(_) if self.received > Decimal::ZERO => LineStatus::Short,
            Some(_) => LineStatus::Open,
        }
    }

    /// The quantity still expected: the ordered quantity of an open line, else 0.
    pub fn open_quantity(&self) -> Decimal {
        match (self.status(), self.quantity) {
            (LineStatus::Open, Some(q)) => q,
            _ => Decimal::ZERO,
        }
    }
}

/// One purchase order of a store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Order {
    /// The event the lines are from: (event time, event id).
    pub version: Option<(DateTime<Utc>, String)>,
    /// The earliest order event's time: when the order was placed.
    pub ordered_at: Option<DateTime<Utc>>,
    /// The promised delivery, from the latest version.
    pub expected_at: Option<DateTime<Utc>>,
    pub lines: BTreeMap<SkuIndex, OrderLine>,
    /// Its lead time has been learnt from.
    pub lead_observed: bool,
}

impl Order {
    /// Applies one line of a `purchase_order` event; the SKUs whose line changed.
    pub fn apply_order_line(
        &mut self,
        at: DateTime<Utc>,
        event_id: &str,
        expected_at: DateTime<Utc>,
        sku: SkuIndex,
        line_no: i32,
        quantity: Decimal,
    ) -> Vec<SkuIndex> {
        self.ordered_at = Some(self.ordered_at.map_or(at, |o| o.min(at)));
        let newer = self
            .version
            .as_ref()
            .is_none_or(|(t, id)| (at, event_id) > (*t, id.as_str()));
        let same = self
            .version
            .as_ref()
            .is_some_and(|(t, id)| *t == at && id == event_id);
        let mut changed = Vec::new();
        if newer {
            // a new version: its lines replace the earlier ones
            for (s, l) in self.lines.iter_mut() {
                if l.quantity.is_some_and(|q| !q.is_zero()) {
                    l.quantity = Some(Decimal::ZERO);
                    changed.push(*s);
                }
            }
            self.version = Some((at, event_id.to_string()));
            self.expected_at = Some(expected_at);
        }
        let line = self.lines.entry(sku).or_default();
        if newer || same {
            line.line_no = line_no;
            line.quantity = Some(quantity);
        } else if line.quantity.is_none() {
            // an older version names a SKU the latest leaves out: it was cancelled
            line.line_no = line_no;
            line.quantity = Some(Decimal::ZERO);
        }
        changed.push(sku);
        changed.sort();
        changed.dedup();
        changed
    }

    /// Applies a receipt line that names this order.
    pub fn apply_receipt(&mut self, at: DateTime<Utc>, sku: SkuIndex, quantity: Decimal) {
        let line = self.lines.entry(sku).or_default();
        line.received += quantity;
        line.first_received_at = Some(line.first_received_at.map_or(at, |f| f.min(at)));
        line.last_received_at = Some(line.last_received_at.map_or(at, |f| f.max(at)));
    }

    /// Days from placing the order to the first receipt of any of its lines, when both are known.
    pub fn lead_days(&self) -> Option<f64> {
        let first = self
            .lines
            .values()
            .filter_map(|l| l.first_received_at)
            .min()?;
        let ordered = self.ordered_at?;
        Some((first - ordered).num_minutes() as f64 / 1440.0)
    }

    /// Whether nothing more is expected of it.
    pub fn closed(&self) -> bool {
        self.lines
            .values()
            .all(|l| l.status() != LineStatus::Open && l.status() != LineStatus::AwaitingOrder)
    }
}

/// The orders of every store in memory: open ones, and closed ones for a while (late receipts
/// and amendments, lead times). Older ones are read back from gold when a line names them.
#[derive(Debug, Default)]
pub struct OrderBook {
    pub orders: HashMap<StoreKey, BTreeMap<String, Order>>,
}

impl OrderBook {
    pub fn get_mut(&mut self, store: StoreKey, order_id: &str) -> Option<&mut Order> {
        self.orders.get_mut(&store)?.get_mut(order_id)
    }

    pub fn contains(&self, store: StoreKey, order_id: &str) -> bool {
        self.orders
            .get(&store)
            .is_some_and(|o| o.contains_key(order_id))
    }

    pub fn entry(&mut self, store: StoreKey, order_id: &str) -> &mut Order {
        self.orders
            .entry(store)
            .or_default()
            .entry(order_id.to_string())
            .or_default()
    }

    /// The open lines of a store's SKU: (promised delivery, quantity), earliest first.
    pub fn open_for(&self, store: StoreKey, sku: SkuIndex) -> Vec<(DateTime<Utc>, Decimal)> {
        let mut v: Vec<(DateTime<Utc>, Decimal)> = self
            .orders
            .get(&store)
            .into_iter()
            .flat_map(|orders| orders.values())
            .filter_map(|o| {
                let q = o.lines.get(&sku)?.open_quantity();
                (q > Decimal::ZERO).then_some((o.expected_at?, q))
            })
            .collect();
        v.sort();
        v
    }

    /// Forgets a store's closed orders promised before `before` (gold keeps them).
    pub fn prune(&mut self, store: StoreKey, before: DateTime<Utc>) -> usize {
        let Some(orders) = self.orders.get_mut(&store) else {
            return 0;
        };
        let n = orders.len();
        orders.retain(|_, o| !o.closed() || o.expected_at.is_none_or(|e| e >= before));
        n - orders.len()
    }

    /// Rebuilds orders from their gold rows.
    pub fn load(&mut self, rows: Vec<(StoreKey, SkuIndex, OrderLineRow)>) {
        for (store, sku, r) in rows {
            let o = self.entry(store, &r.order_id);
            // a reloaded order whose receipts came has taught its lead time already
            o.lead_observed |= r.first_received_at.is_some() && r.ordered_at.is_some();
            if let (Some(t), Some(id)) = (r.version_time, r.version_event_id.as_ref())
                && o.version
                    .as_ref()
                    .is_none_or(|v| (t, id.as_str()) > (v.0, v.1.as_str()))
            {
                o.version = Some((t, id.clone()));
                o.expected_at = r.expected_at;
            }
            if let Some(at) = r.ordered_at {
                o.ordered_at = Some(o.ordered_at.map_or(at, |x| x.min(at)));
            }
            o.lines.insert(
                sku,
                OrderLine {
                    line_no: r.line_no,
                    quantity: (r.status != LineStatus::AwaitingOrder.as_str())
                        .then_some(r.quantity),
                    received: r.received_quantity,
                    first_received_at: r.first_received_at,
                    last_received_at: r.last_received_at,
                },
            );
        }
    }
}

/// The gold row of one order line.
pub fn line_row(
    order_id: &str,
    order: &Order,
    line: &OrderLine,
    store_key: i32,
    product_key: i32,
    now: DateTime<Utc>,
) -> OrderLineRow {
    OrderLineRow {
        order_id: order_id.to_string(),
        line_no: line.line_no,
        store_key,
        product_key,
        ordered_at: order.ordered_at,
        expected_at: order.expected_at,
        quantity: line.quantity.unwrap_or_default(),
        received_quantity: line.received,
        status: line.status().as_str().to_string(),
        version_time: order.version.as_ref().map(|v| v.0),
        version_event_id: order.version.as_ref().map(|v| v.1.clone()),
        first_received_at: line.first_received_at,
        last_received_at: line.last_received_at,
        updated_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0)
            .single()
            .expect("time")
            + chrono::Duration::hours(h)
    }
    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }
    const A: SkuIndex = SkuIndex(1);
    const B: SkuIndex = SkuIndex(2);

    /// The steps of an order's life, applied in a given order.
    #[derive(Clone, Copy)]
    enum Step {
        Order(i64, &'static str, SkuIndex, &'static str),
        Receive(i64, SkuIndex, &'static str),
    }

    fn run(steps: &[Step]) -> Order {
        let mut o = Order::default();
        for s in steps {
            match *s {
                Step::Order(h, id, sku, q) => {
                    o.apply_order_line(t(h), id, t(h + 48), sku, 0, d(q));
                }
                Step::Receive(h, sku, q) => o.apply_receipt(t(h), sku, d(q)),
            }
        }
        o
    }

    fn summary(o: &Order) -> Vec<(SkuIndex, LineStatus, Decimal, Decimal)> {
        o.lines
            .iter()
            .map(|(s, l)| {
                (
                    *s,
                    l.status(),
                    l.quantity.unwrap_or_default(),
                    l.open_quantity(),
                )
            })
            .collect()
    }

    fn permutations(steps: &[Step]) -> Vec<Vec<Step>> {
        if steps.len() <= 1 {
            return vec![steps.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..steps.len() {
            let mut rest = steps.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first);
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn amendments_cancellations_and_receipts_give_one_answer_in_any_order() {
        use Step::*;
        let steps = [
            Order(0, "e1", A, "10"),
            Order(0, "e1", B, "5"),
            // the amendment: A down to 8, B left out (cancelled)
            Order(3, "e2", A, "8"),
            Receive(50, A, "6"),
        ];
        let want = run(&steps);
        assert_eq!(
            summary(&want),
            vec![
                (A, LineStatus::Short, d("8"), d("0")),
                (B, LineStatus::Cancelled, d("0"), d("0")),
            ]
        );
        assert_eq!(want.ordered_at, Some(t(0)));
        assert_eq!(want.expected_at, Some(t(51)));
        for p in permutations(&steps) {
            let got = run(&p);
            assert_eq!(summary(&got), summary(&want));
            assert_eq!(got.version, want.version);
            assert_eq!(got.expected_at, want.expected_at);
        }
    }

    #[test]
    fn a_line_is_open_until_a_receipt_brings_its_sku() {
        use Step::*;
        let o = run(&[Order(0, "e1", A, "12"), Order(0, "e1", B, "0")]);
        assert_eq!(o.lines[&A].status(), LineStatus::Open);
        assert_eq!(o.lines[&A].open_quantity(), d("12"));
        assert_eq!(o.lines[&B].status(), LineStatus::Cancelled);
        assert!(!o.closed());
        let o = run(&[Order(0, "e1", A, "12"), Receive(40, A, "12")]);
        assert_eq!(o.lines[&A].status(), LineStatus::Received);
        assert!(o.closed());
        assert_eq!(o.lead_days(), Some(40.0 / 24.0));
        // a receipt before its order is kept, and closes the line once the order arrives
        let o = run(&[Receive(40, A, "12")]);
        assert_eq!(o.lines[&A].status(), LineStatus::AwaitingOrder);
        assert_eq!(o.lines[&A].open_quantity(), Decimal::ZERO);
    }

    #[test]
    fn the_book_lists_open_lines_and_forgets_closed_orders() {
        let mut book = OrderBook::default();
        let s = StoreKey(1);
        book.entry(s, "PO-1")
            .apply_order_line(t(0), "e1", t(30), A, 0, d("6"));
        book.entry(s, "PO-2")
            .apply_order_line(t(1), "e2", t(20), A, 0, d("4"));
        assert_eq!(book.open_for(s, A), vec![(t(20), d("4")), (t(30), d("6"))]);
        assert!(book.open_for(s, B).is_empty());
        book.get_mut(s, "PO-2")
            .expect("order")
            .apply_receipt(t(21), A, d("4"));
        assert_eq!(book.open_for(s, A), vec![(t(30), d("6"))]);
        assert_eq!(book.prune(s, t(100)), 1);
        assert!(book.contains(s, "PO-1") && !book.contains(s, "PO-2"));
    }
}
