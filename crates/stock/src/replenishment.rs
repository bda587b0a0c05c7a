//! What is on its way: deliveries inferred from a store and SKU's receipt history.
//!
//! POS streams carry receipts, not purchase orders. A product that has been delivered every
//! two or three days will most likely be delivered again on that rhythm, with about the usual
//! quantity; a reorder alert that ignored it would fire in every ordinary cycle. So the next
//! delivery is expected one usual interval after the last one — and written off once it is
//! clearly overdue.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

/// Receipt rhythm of one store and SKU.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Replenishment {
    pub last_receipt_at: Option<DateTime<Utc>>,
    /// Exponentially weighted days between receipts.
    pub interval_days: f64,
    /// Exponentially weighted quantity of a receipt.
    pub typical_qty: f64,
    pub receipts: u32,
    /// The stock on hand at which the store orders, learnt from receipts: what was on hand
    /// just before a delivery plus what sold over the lead time it took (0 until learnt).
    #[serde(default)]
    pub order_level: f64,
    /// When the stock last fell to the order level since the last delivery: the store's
    /// order, inferred.
    #[serde(default)]
    pub ordered_at: Option<DateTime<Utc>>,
}

impl Replenishment {
    /// Learns from a receipt (ignored when older than the last one).
    pub fn observe(&mut self, at: DateTime<Utc>, qty: Decimal) {
        let q = qty.to_f64().unwrap_or(0.0);
        match self.last_receipt_at {
            Some(last) if at <= last => return,
            Some(last) => {
                let gap = (at - last).num_minutes() as f64 / 1440.0;
                // same-day top-ups are one delivery
                if gap >= 0.25 {
                    self.interval_days = if self.receipts <= 1 {
                        gap
                    } else {
                        0.7 * self.interval_days + 0.3 * gap
                    };
                }
            }
            None => {}
        }
        self.typical_qty = if self.receipts == 0 {
            q
        } else {
            0.7 * self.typical_qty + 0.3 * q
        };
        self.receipts += 1;
        self.last_receipt_at = Some(at);
    }

    /// Learns from a delivery of `qty` with `on_hand_before` on the shelf (on record) just
    /// before it: the store ordered it a lead time earlier, when about `daily_demand` times
    /// the lead time more was on hand. Same-day top-ups teach nothing about the order level.
    pub fn observe_delivery(
        &mut self,
        at: DateTime<Utc>,
        qty: Decimal,
        on_hand_before: f64,
        daily_demand: f64,
        lead_days: f64,
    ) {
        let new_delivery = self
            .last_receipt_at
            .is_none_or(|last| (at - last).num_minutes() as f64 / 1440.0 >= 0.25);
        if new_delivery && self.last_receipt_at.is_some_and(|last| at > last) {
            let level = on_hand_before.max(0.0) + daily_demand.max(0.0) * lead_days.max(0.0);
            self.order_level = if self.order_level <= 0.0 {
                level
            } else {
                0.7 * self.order_level + 0.3 * level
            };
        }
        self.observe(at, qty);
        if new_delivery {
            self.ordered_at = None;
        }
    }

    /// Whether the store has one order on its way at a time: deliveries further apart than
    /// the lead time, so an order is placed only after the last one came.
    pub fn orders_one_at_a_time(&self, lead_days: f64) -> bool {
        self.receipts >= 3 && self.order_level > 0.0 && self.interval_days > lead_days.max(1.0)
    }

    /// Notes the stock on hand at `now`: falling to the order level means the store orders.
    pub fn note_stock(&mut self, now: DateTime<Utc>, on_hand: f64) {
        if self.ordered_at.is_none()
            && self.order_level > 0.0
            && on_hand <= self.order_level
            && self.last_receipt_at.is_some_and(|last| now > last)
        {
            self.ordered_at = Some(now);
        }
    }

    /// When the order inferred by [`Replenishment::note_stock`] arrives: a lead time after the
    /// store's evening review of the day it was placed, at the usual time of day of its
    /// deliveries. `None` when no order is inferred.
    pub fn inferred_arrival(&self, lead_days: f64) -> Option<DateTime<Utc>> {
        let ordered = self.ordered_at?;
        // reviewed in the evening, delivered in a morning: a lead time less most of a day
        let earliest =
            ordered + Duration::minutes((lead_days.max(1.0) * 1440.0) as i64) - Duration::hours(17);
        self.last_receipt_at?;
        Some(self.next_round(earliest))
    }

    /// The first time at or after `t` at the usual time of day of this key's deliveries (`t`
    /// itself when there has been none): a delivery expected by now that has not come yet most
    /// likely comes with the next round.
    pub fn next_round(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let Some(last) = self.last_receipt_at else {
            return t;
        };
        let mut at = t.date_naive().and_time(last.time()).and_utc();
        if at < t {
            at += Duration::days(1);
        }
        at
    }

    /// Days between deliveries: as observed, or — after a single receipt — how long a usual
    /// delivery lasts at `daily_demand` (in steady state a store orders about what it sells).
    pub fn interval(&self, daily_demand: f64) -> Option<f64> {
        if self.receipts >= 2 && self.interval_days > 0.0 {
            Some(self.interval_days)
        } else if self.receipts >= 1 && daily_demand > 0.0 && self.typical_qty > 0.0 {
            Some((self.typical_qty / daily_demand).clamp(0.5, 30.0))
        } else {
            None
        }
    }

    /// How far off an expected delivery time may be: a quarter of the interval, at least half a day.
    pub fn slack(&self, daily_demand: f64) -> Duration {
        let days = self.interval(daily_demand).unwrap_or(1.0);
        Duration::minutes(((days * 0.25).max(0.5) * 1440.0) as i64)
    }

    /// When the next delivery is expected, unless the rhythm is unknown or it is overdue. A
    /// delivery is overdue once late by more than a lead time (`lead_days`, at least a day): a
    /// store that ordered a little later than its rhythm still gets its delivery.
    pub fn expected_next(
        &self,
        now: DateTime<Utc>,
        daily_demand: f64,
        lead_days: f64,
    ) -> Option<DateTime<Utc>> {
        let days = self.interval(daily_demand)?;
        let last = self.last_receipt_at?;
        let next = last + Duration::minutes((days * 1440.0) as i64);
        let grace = Duration::minutes((lead_days.max(1.0) * 1440.0) as i64);
        (now <= next + grace).then_some(next.max(now))
    }

    /// The deliveries expected within `horizon` from `now` at the usual rhythm and quantity.
    pub fn expected_deliveries(
        &self,
        now: DateTime<Utc>,
        horizon: Duration,
        daily_demand: f64,
        lead_days: f64,
    ) -> Vec<(DateTime<Utc>, f64)> {
        let (Some(first), Some(days)) = (
            self.expected_next(now, daily_demand, lead_days),
            self.interval(daily_demand),
        ) else {
            return Vec::new();
        };
        let step = Duration::minutes((days.max(0.25) * 1440.0) as i64);
        let mut out = Vec::new();
        let mut t = first;
        while t <= now + horizon && out.len() < 64 {
            out.push((t, self.typical_qty));
            t += step;
        }
        out
    }

    /// What is probably on its way within `horizon` from `now`.
    pub fn in_transit(
        &self,
        now: DateTime<Utc>,
        horizon: Duration,
        daily_demand: f64,
        lead_days: f64,
    ) -> Decimal {
        let total: f64 = self
            .expected_deliveries(now, horizon, daily_demand, lead_days)
            .iter()
            .map(|(_, q)| q)
            .sum();
        crate::policy::estimate(total, 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_762_070_400 + h * 3600, 0).expect("time")
    }

    #[test]
    fn learns_a_rhythm_and_expects_the_next_delivery() {
        let mut r = Replenishment::default();
        assert_eq!(r.expected_next(t(0), 10.0, 1.0), None);
        r.observe(t(6), Decimal::from(24));
        // after one receipt: it lasts 24 / 12 a day = 2 days
        assert_eq!(r.expected_next(t(7), 12.0, 1.0), Some(t(54)));
        r.observe(t(54), Decimal::from(36));
        r.observe(t(102), Decimal::from(24));
        assert!((r.interval_days - 2.0).abs() < 1e-9);
        // two days after the last one
        assert_eq!(r.expected_next(t(110), 10.0, 1.0), Some(t(150)));
        assert!(r.in_transit(t(110), Duration::days(2), 10.0, 1.0) > Decimal::ZERO);
        assert_eq!(
            r.in_transit(t(110), Duration::hours(12), 10.0, 1.0),
            Decimal::ZERO
        );
        assert_eq!(
            r.expected_deliveries(t(110), Duration::days(5), 10.0, 1.0)
                .len(),
            2
        );
        // a day late is still expected; later than a lead time it is written off
        assert_eq!(r.expected_next(t(170), 10.0, 1.0), Some(t(170)));
        assert_eq!(r.expected_next(t(200), 10.0, 1.0), None);
        // an older receipt arriving late changes nothing
        let before = r;
        r.observe(t(20), Decimal::from(99));
        assert_eq!(r, before);
    }

    #[test]
    fn learns_the_order_level_and_infers_the_order_on_its_way() {
        let mut r = Replenishment::default();
        // deliveries at 05:30 every six days; 3 a day sell, lead time 2 days: each came when
        // 2 were left, so the store ordered when 2 + 3 × 2 = 8 were on hand
        let day = |d: i64| t(5 + 24 * d) + Duration::minutes(30);
        r.observe_delivery(day(0), Decimal::from(18), 2.0, 3.0, 2.0);
        assert_eq!(
            r.order_level, 0.0,
            "the first delivery says nothing of an order level"
        );
        r.observe_delivery(day(6), Decimal::from(18), 2.0, 3.0, 2.0);
        r.observe_delivery(day(12), Decimal::from(18), 2.0, 3.0, 2.0);
        assert!((r.order_level - 8.0).abs() < 1e-9, "{}", r.order_level);
        assert!(r.orders_one_at_a_time(2.0));
        assert!(
            !r.orders_one_at_a_time(7.0),
            "deliveries closer than the lead time overlap"
        );
        // above the level: no order yet
        r.note_stock(day(13), 12.0);
        assert_eq!(r.inferred_arrival(2.0), None);
        // at 15:00 on day 14 the stock falls to 8: ordered that evening, here two mornings on
        let fell = t(15 + 24 * 14);
        r.note_stock(fell, 8.0);
        assert_eq!(r.ordered_at, Some(fell));
        assert_eq!(r.inferred_arrival(2.0), Some(day(16)));
        // later looks do not move the order
        r.note_stock(fell + Duration::hours(3), 6.0);
        assert_eq!(r.inferred_arrival(2.0), Some(day(16)));
        // the delivery comes: nothing is on order any more
        r.observe_delivery(day(16), Decimal::from(18), 2.0, 3.0, 2.0);
        assert_eq!(r.ordered_at, None);
        assert_eq!(r.inferred_arrival(2.0), None);
        // a same-day top-up neither teaches the level nor ends an order
        r.note_stock(day(16) + Duration::hours(1), 5.0);
        let level = r.order_level;
        r.observe_delivery(
            day(16) + Duration::hours(2),
            Decimal::from(6),
            5.0,
            3.0,
            2.0,
        );
        assert_eq!(r.order_level, level);
        assert!(r.ordered_at.is_some());
    }
}
