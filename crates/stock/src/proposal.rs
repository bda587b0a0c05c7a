//! Order proposals: what a store should order of a product on its next order day, in whole
//! cases, at least the supplier's minimum, never more than sells within the shelf life, and
//! nothing when the stock position already covers it.
//!
//! The arithmetic of a periodic review with a supplier calendar: the order placed on the next
//! order day arrives on the first delivery day at least a lead time later, and must last until
//! the delivery of the order after it (the review period). So the quantity is the demand of the
//! review period plus safety stock, less the stock position the delivery finds: on hand, plus
//! what is on order, less what sells until it comes.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::demand::{Demand, Shape};
use crate::fill::{Exposure, late_chance, safety_for_fill};
use crate::policy::estimate;

/// Weekdays as bits, Monday lowest; every day is `0x7f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days(pub u8);

impl Days {
    pub const EVERY: Days = Days(0x7f);
    const NAMES: [&'static str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

    /// `Mon Thu` (any case); empty or absent: every day. `None` when a word is not a weekday.
    pub fn parse(s: Option<&str>) -> Option<Days> {
        let Some(s) = s else {
            return Some(Days::EVERY);
        };
        let mut bits = 0u8;
        for w in s.split([' ', ',', ';']).filter(|w| !w.is_empty()) {
            let i = Self::NAMES.iter().position(|n| n.eq_ignore_ascii_case(w))?;
            bits |= 1 << i;
        }
        Some(if bits == 0 { Days::EVERY } else { Days(bits) })
    }

    pub fn has(self, d: NaiveDate) -> bool {
        self.0 & (1 << d.weekday().num_days_from_monday()) != 0
    }

    /// The first day on or after `d` that is one of these (`d` itself when none is, which
    /// cannot happen for a parsed set).
    pub fn on_or_after(self, d: NaiveDate) -> NaiveDate {
        (0..7)
            .map(|i| d + Duration::days(i))
            .find(|x| self.has(*x))
            .unwrap_or(d)
    }
}

/// A supplier's rules as one store sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Supply<'a> {
    pub supplier_id: Option<&'a str>,
    pub order_days: Days,
    pub delivery_days: Days,
    /// Days from order to delivery (learnt, or from master data).
    pub lead_time_days: f64,
    /// Its deviation, in days (0 until learnt).
    pub lead_time_sd_days: f64,
    pub case_pack: Decimal,
    pub min_order_qty: Option<Decimal>,
    pub shelf_life_days: Option<u32>,
    pub service_level: f64,
}

/// The stock a proposal starts from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stock<'a> {
    pub now: DateTime<Utc>,
    pub tz: Tz,
    pub on_hand: Decimal,
    /// Open order lines: (promised delivery, quantity).
    pub on_order: &'a [(DateTime<Utc>, Decimal)],
    pub demand: &'a Demand,
    pub shape: &'a Shape,
    /// Expected demand of particular store-local days, in place of the level and the weekday's
    /// weight (a known promotion, a forecast); empty for none.
    pub days: &'a [(NaiveDate, f64)],
    pub unit: &'a str,
}

impl Stock<'_> {
    /// The expected demand of store-local day `d`.
    fn demand_on(&self, d: NaiveDate) -> f64 {
        match self.days.iter().find(|(x, _)| *x == d) {
            Some((_, v)) => *v,
            None => self.demand.level * self.shape.dow[d.weekday().num_days_from_monday() as usize],
        }
    }
}

/// What to order, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub order_date: NaiveDate,
    pub expected_delivery: DateTime<Utc>,
    /// Units (or kg), whole cases; zero when nothing is to be ordered.
    pub quantity: Decimal,
    pub cases: i32,
    pub on_order: Decimal,
    pub reason: String,
}

/// Expected demand from `from` (an instant) to the start of `until` (a store-local date).
fn demand_until(s: &Stock<'_>, until: NaiveDate) -> f64 {
    let local = s.now.with_timezone(&s.tz);
    let today = local.date_naive();
    if until <= today {
        return 0.0;
    }
    let hour = f64::from(local.hour()) + f64::from(local.minute()) / 60.0;
    let rest_of_today = s.demand_on(today) * s.shape.share_between(hour, 24.0);
    let whole: f64 = (1..(until - today).num_days())
        .map(|i| s.demand_on(today + Duration::days(i)))
        .sum();
    rest_of_today + whole
}

/// Expected demand on the `days` store-local days from `from`.
fn demand_of_days(s: &Stock<'_>, from: NaiveDate, days: i64) -> f64 {
    (0..days)
        .map(|i| s.demand_on(from + Duration::days(i)))
        .sum()
}

fn morning(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    crate::local_instant(
        d.and_time(NaiveTime::from_hms_opt(6, 0, 0).unwrap_or(NaiveTime::MIN)),
        tz,
    )
}

fn q(d: Decimal) -> String {
    d.normalize().to_string()
}

fn day(d: NaiveDate) -> String {
    d.format("%a %-d %b").to_string()
}

/// The delivery an order placed on `order_date` comes with.
fn delivery_for(supply: &Supply<'_>, order_date: NaiveDate) -> NaiveDate {
    let lead = supply.lead_time_days.max(0.0).ceil() as i64;
    supply
        .delivery_days
        .on_or_after(order_date + Duration::days(lead))
}

/// The start of the store-local day on which an order placed on the next order day arrives: no
/// order not yet placed can come earlier.
pub fn earliest_new_delivery(supply: &Supply<'_>, now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    let day = delivery_for(supply, supply.order_days.on_or_after(today));
    crate::local_instant(day.and_time(NaiveTime::MIN), tz)
}

/// `need` in whole cases, raised to the minimum order and capped at what sells within the shelf
/// life, with a note of each; or why nothing can be ordered.
fn whole_cases(
    supply: &Supply<'_>,
    s: &Stock<'_>,
    need: f64,
    at_delivery: f64,
    delivery: NaiveDate,
    case: Decimal,
) -> Result<(Decimal, Vec<String>), String> {
    let mut cases = (estimate(need, 3) / case).ceil();
    let mut notes = Vec::new();
    if let Some(moq) = supply.min_order_qty.filter(|m| *m > Decimal::ZERO) {
        let least = (moq / case).ceil();
        if cases < least {
            cases = least;
            notes.push(format!(
                "raised to the minimum order of {} {}",
                q(moq),
                s.unit
            ));
        }
    }
    if let Some(life) = supply.shelf_life_days {
        // what can sell between the delivery and the day the goods expire, less what is
        // still on the shelf then
        let sellable = demand_of_days(s, delivery, i64::from(life.max(1))) - at_delivery;
        // to the nearest case: up to half a case may be left to waste, rather than a shelf
        // left empty for want of a case that mostly sells
        let cap = (estimate(sellable.max(0.0), 3) / case + Decimal::new(5, 1)).floor();
        if cases > cap {
            cases = cap;
            notes.push(format!(
                "capped at what sells within its {life}-day shelf life"
            ));
        }
        if cases <= Decimal::ZERO {
            return Err(format!(
                "not even one case of {} would sell within its {life}-day shelf life",
                q(case)
            ));
        }
        if supply.min_order_qty.is_some_and(|m| cases * case < m) {
            return Err(format!(
                "the minimum order would not sell within its {life}-day shelf life"
            ));
        }
    }
    Ok((cases, notes))
}

/// Safety stock over the time until the next delivery for the service level read as a fill
/// rate (see [`crate::fill`]): `until_next` is the demand expected until the next delivery,
/// `cycle` that of the review period. A lead time that spreads is read as the chance of a
/// delivery a day late, and any spread beyond what that explains adds its demand's deviation.
fn safety_stock(
    supply: &Supply<'_>,
    s: &Stock<'_>,
    today: NaiveDate,
    delivery: NaiveDate,
    next_delivery: NaiveDate,
    until_next: f64,
    cycle: f64,
) -> f64 {
    let exposure =
        (delivery - today).num_days().max(0) as f64 + (next_delivery - delivery).num_days() as f64;
    let (d, sd) = (s.demand.level, s.demand.sd());
    let lead_sd = supply.lead_time_sd_days.max(0.0);
    let late = late_chance(lead_sd);
    let beyond = (lead_sd * lead_sd - late * (1.0 - late)).max(0.0) * d * d;
    let e = Exposure {
        mean: until_next,
        sd: (exposure * sd * sd + beyond).sqrt(),
        late,
        late_mean: s.demand_on(next_delivery),
        late_sd: ((exposure + 1.0) * sd * sd + beyond).sqrt(),
    };
    safety_for_fill(&e, cycle, supply.service_level)
}

/// The proposal for the next order day, or `None` when demand is unknown.
pub fn propose(supply: &Supply<'_>, s: &Stock<'_>) -> Option<Proposal> {
    if s.demand.level <= 0.0 {
        return None;
    }
    let today = s.now.with_timezone(&s.tz).date_naive();
    let order_date = supply.order_days.on_or_after(today);
    let delivery = delivery_for(supply, order_date);
    let next_order = supply
        .order_days
        .on_or_after(order_date + Duration::days(1));
    let next_delivery = delivery_for(supply, next_order).max(delivery + Duration::days(1));
    let review = (next_delivery - delivery).num_days().max(1);

    let on_order: Decimal = s.on_order.iter().map(|(_, q)| *q).sum();
    let sells_before = demand_until(s, delivery);
    let sells_during = demand_of_days(s, delivery, review);
    let ss = safety_stock(
        supply,
        s,
        today,
        delivery,
        next_delivery,
        sells_before + sells_during,
        sells_during,
    );
    let position = s.on_hand.to_f64().unwrap_or(0.0) + on_order.to_f64().unwrap_or(0.0);
    // what the shelf still holds when the delivery comes (demand the shelf cannot serve
    // before then is lost, not owed)
    let at_delivery = (position - sells_before).max(0.0);
    let need = sells_during + ss - at_delivery;

    let case = if supply.case_pack > Decimal::ZERO {
        supply.case_pack
    } else {
        Decimal::ONE
    };
    let unit = s.unit;
    let from = supply
        .supplier_id
        .map(|id| format!(" from {id}"))
        .unwrap_or_default();
    let when = if order_date == today {
        "today".to_string()
    } else {
        format!("on {}", day(order_date))
    };
    let standing = format!(
        "{} {unit} on hand and {} on order, about {} to sell before {}",
        q(s.on_hand),
        q(on_order),
        q(estimate(sells_before, 1)),
        day(delivery)
    );
    let target = format!(
        "{} to cover until the next delivery ({}) with {} safety stock",
        q(estimate(sells_during + ss, 1)),
        day(next_delivery),
        q(estimate(ss, 1))
    );
    let nothing = |why: String| Proposal {
        order_date,
        expected_delivery: morning(delivery, s.tz),
        quantity: Decimal::ZERO,
        cases: 0,
        on_order,
        reason: why,
    };
    if need <= 0.0 {
        return Some(nothing(format!(
            "Nothing to order{from} {when}: {standing}; {target}, and the position covers it."
        )));
    }
    let cases = match whole_cases(supply, s, need, at_delivery, delivery, case) {
        Ok(c) => c,
        Err(why) => {
            return Some(nothing(format!(
                "Nothing to order{from} {when}: {standing}; {target}, but {why}."
            )));
        }
    };
    let (cases, notes) = cases;
    let quantity = cases * case;
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    Some(Proposal {
        order_date,
        expected_delivery: morning(delivery, s.tz),
        quantity,
        cases: cases.to_i32().unwrap_or(i32::MAX),
        on_order,
        reason: format!(
            "Order {} {unit} ({} × {}){from} {when} for delivery {}{notes}: {standing}; {target}.",
            q(quantity),
            cases,
            q(case),
            day(delivery)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    /// Monday 7 December 2026, 20:00 in Madrid.
    fn now() -> DateTime<Utc> {
        crate::t("2026-12-07T19:00:00Z")
    }

    fn flat(level: f64) -> (Demand, Shape) {
        (
            Demand {
                level,
                var: 0.0,
                days: 30,
                units_per_sale: 1.0,
            },
            Shape::default(),
        )
    }

    fn supply() -> Supply<'static> {
        Supply {
            supplier_id: Some("SUP-1"),
            order_days: Days::EVERY,
            delivery_days: Days::EVERY,
            lead_time_days: 2.0,
            lead_time_sd_days: 0.0,
            case_pack: d("6"),
            min_order_qty: None,
            shelf_life_days: None,
            service_level: 0.5,
        }
    }

    fn stock<'a>(
        on_hand: &str,
        on_order: &'a [(DateTime<Utc>, Decimal)],
        dm: &'a (Demand, Shape),
    ) -> Stock<'a> {
        Stock {
            now: now(),
            tz: chrono_tz::Europe::Madrid,
            on_hand: d(on_hand),
            on_order,
            demand: &dm.0,
            shape: &dm.1,
            days: &[],
            unit: "units",
        }
    }

    #[test]
    fn whole_cases_up_to_the_review_periods_demand() {
        let dm = flat(10.0);
        // ordered today (Monday), delivered Wednesday, the next delivery Thursday: one day of
        // demand (10) to cover; 12 on hand, about 2×10 (a little of today, Tuesday) sell first
        let p = propose(&supply(), &stock("12", &[], &dm)).expect("proposal");
        assert_eq!(
            p.order_date,
            NaiveDate::from_ymd_opt(2026, 12, 7).expect("date")
        );
        assert_eq!(p.expected_delivery, crate::t("2026-12-09T05:00:00Z"));
        assert_eq!(p.quantity.to_i64().unwrap_or(0) % 6, 0, "{p:?}");
        assert!(p.quantity >= d("12") && p.quantity <= d("24"), "{p:?}");
        assert!(p.reason.starts_with("Order "), "{}", p.reason);
        assert!(
            p.reason.contains("SUP-1") && p.reason.contains("Wed 9 Dec"),
            "{}",
            p.reason
        );
    }

    #[test]
    fn nothing_when_the_position_covers_it() {
        let dm = flat(10.0);
        let coming = [(crate::t("2026-12-08T05:00:00Z"), d("60"))];
        let p = propose(&supply(), &stock("5", &coming, &dm)).expect("proposal");
        assert_eq!(p.quantity, Decimal::ZERO);
        assert_eq!(p.on_order, d("60"));
        assert!(p.reason.starts_with("Nothing to order"), "{}", p.reason);
        // the same stock without the order on its way needs one
        let p = propose(&supply(), &stock("5", &[], &dm)).expect("proposal");
        assert!(p.quantity > Decimal::ZERO);
    }

    #[test]
    fn at_least_the_minimum_order() {
        let dm = flat(10.0);
        let s = Supply {
            min_order_qty: Some(d("40")),
            ..supply()
        };
        let p = propose(&s, &stock("12", &[], &dm)).expect("proposal");
        assert_eq!(p.quantity, d("42"), "{p:?}");
        assert!(p.reason.contains("minimum order"), "{}", p.reason);
    }

    #[test]
    fn never_more_than_sells_within_the_shelf_life() {
        let dm = flat(10.0);
        let s = Supply {
            shelf_life_days: Some(2),
            min_order_qty: None,
            ..supply()
        };
        // the review period is a week (orders on Mondays only): 70 needed, 20 sell in 2 days
        let s = Supply {
            order_days: Days::parse(Some("Mon")).expect("days"),
            ..s
        };
        let p = propose(&s, &stock("0", &[], &dm)).expect("proposal");
        assert_eq!(p.quantity, d("18"), "{p:?}");
        assert!(p.reason.contains("shelf life"), "{}", p.reason);
        // not one case sells in time: nothing
        let s = Supply {
            case_pack: d("48"),
            ..s
        };
        let p = propose(&s, &stock("0", &[], &dm)).expect("proposal");
        assert_eq!(p.quantity, Decimal::ZERO);
        assert!(p.reason.contains("shelf life"), "{}", p.reason);
    }

    #[test]
    fn calendars_choose_the_order_day_and_the_delivery() {
        let dm = flat(10.0);
        // orders on Tuesday and Friday, deliveries on Thursday and Monday, two days' lead
        let s = Supply {
            order_days: Days::parse(Some("Tue Fri")).expect("days"),
            delivery_days: Days::parse(Some("thu, mon")).expect("days"),
            ..supply()
        };
        let p = propose(&s, &stock("0", &[], &dm)).expect("proposal");
        assert_eq!(
            p.order_date,
            NaiveDate::from_ymd_opt(2026, 12, 8).expect("date")
        );
        // Tuesday + 2 = Thursday; the next order (Friday) arrives Monday: 4 days to cover
        assert_eq!(p.expected_delivery, crate::t("2026-12-10T05:00:00Z"));
        assert!(p.reason.contains("Mon 14 Dec"), "{}", p.reason);
        // 4 days × 10 after the delivery, stock runs out before it: 40 → 42
        assert_eq!(p.quantity, d("42"), "{p:?}");
        assert_eq!(p.cases, 7);
        assert!(Days::parse(Some("Mon Funday")).is_none());
        assert_eq!(Days::parse(Some("")), Some(Days::EVERY));
    }

    #[test]
    fn lead_time_spread_raises_safety_stock() {
        let dm = (
            Demand {
                level: 10.0,
                var: 4.0,
                days: 30,
                units_per_sale: 1.0,
            },
            Shape::default(),
        );
        let steady = Supply {
            service_level: 0.95,
            ..supply()
        };
        let spread = Supply {
            lead_time_sd_days: 1.0,
            ..steady.clone()
        };
        let a = propose(&steady, &stock("0", &[], &dm)).expect("proposal");
        let b = propose(&spread, &stock("0", &[], &dm)).expect("proposal");
        assert!(b.quantity > a.quantity, "{a:?} {b:?}");
    }
}
