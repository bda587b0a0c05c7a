//! Replenishment arithmetic: safety stock, reorder point, days of cover, projected stock-out
//! time and the suggested order.
//!
//! - lead-time demand `D_L` = the expected sales of the next `L` days (weekday-aware);
//! - safety stock `SS = z · σ_d · √L`, `z` from the product's service level;
//! - reorder point `ROP = D_L + SS` (equal to `d̄ · L + SS` on an average week);
//! - order-up-to level `S = ROP + d̄` (one day of review);
//! - days of cover = on hand / d̄;
//! - projected stock-out: on hand consumed hour by hour along the store's daily and weekly
//!   shape;
//! - suggested order = `S − (on hand + on order)`, rounded up to whole cases.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};

use crate::demand::{Demand, Shape};

/// The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
pub fn inverse_normal(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// A product's replenishment parameters at one store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub lead_time_days: u32,
    /// The lead time's deviation in days (0 when it is not known to vary).
    pub lead_time_sd_days: f64,
    /// Target chance of not running out during a replenishment cycle.
    pub service_level: f64,
    /// Units (or kg) per case; orders are whole cases.
    pub case_pack: Decimal,
}

/// Where a store and SKU stand now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub on_hand: Decimal,
    /// Assumed on its way (see the model's notes on open orders).
    pub on_order: Decimal,
    /// The store's event clock.
    pub now: DateTime<Utc>,
}

/// The replenishment figures of one store and SKU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Mean daily demand (d̄), in units.
    pub avg_daily_demand: Decimal,
    pub lead_time_demand: Decimal,
    pub safety_stock: Decimal,
    pub reorder_point: Decimal,
    pub order_up_to: Decimal,
    /// `None` when nothing sells (cover is unlimited).
    pub days_of_cover: Option<Decimal>,
    /// `None` when it does not run out within the horizon (60 days).
    pub projected_stockout_at: Option<DateTime<Utc>>,
    /// Cases to order now, in units; zero when the position is above the reorder point.
    pub suggested_order_qty: Decimal,
}

fn dec(x: f64, scale: u32) -> Decimal {
    estimate(x, scale)
}

/// The largest magnitude of an estimate (demand, safety stock, a suggested order…) as gold
/// keeps it: just below 10^12, so that with 3 decimals it has 15 significant digits, like
/// every recorded quantity (absurd inputs give absurd estimates; they are capped, never a
/// value gold cannot hold).
pub const ESTIMATE_MAX: f64 = 999_999_999_999.0;

/// An estimate as a decimal of `scale` decimals: finite, and within ±[`ESTIMATE_MAX`].
pub fn estimate(x: f64, scale: u32) -> Decimal {
    let x = if x.is_finite() {
        x.clamp(-ESTIMATE_MAX, ESTIMATE_MAX)
    } else {
        0.0
    };
    Decimal::from_f64(x).unwrap_or_default().round_dp(scale)
}

/// Rounds a quantity up to whole cases (at least one case when positive).
pub fn round_up_to_cases(qty: Decimal, case_pack: Decimal) -> Decimal {
    if qty <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let case = if case_pack > Decimal::ZERO {
        case_pack
    } else {
        Decimal::ONE
    };
    (qty / case).ceil() * case
}

/// The local time of `t` in `tz`.
fn local(t: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

/// Expected units sold from `from` to `from + days` (whole days, weekday-aware).
pub fn demand_over_days(demand: &Demand, shape: &Shape, from: NaiveDateTime, days: u32) -> f64 {
    (1..=days)
        .map(|i| {
            let d = from.date() + Duration::days(i64::from(i));
            demand.level * shape.dow[d.weekday().num_days_from_monday() as usize]
        })
        .sum()
}

/// When `on_hand` runs out at the expected pace, along the store's hours from `now`, counting
/// the `deliveries` expected on the way: whole days without a delivery are skipped at once, the
/// others walked hour by hour.
pub fn projected_stockout(
    demand: &Demand,
    shape: &Shape,
    on_hand: f64,
    now: DateTime<Utc>,
    tz: Tz,
    horizon_days: u32,
    deliveries: &[(DateTime<Utc>, f64)],
) -> Option<DateTime<Utc>> {
    if on_hand <= 0.0 {
        return Some(now);
    }
    if demand.level <= 0.0 {
        return None;
    }
    let start = local(now, tz);
    let mut left = on_hand;
    let mut pending: Vec<(NaiveDateTime, f64)> = deliveries
        .iter()
        .filter(|(t, _)| *t >= now)
        .map(|(t, q)| (local(*t, tz), *q))
        .collect();
    pending.sort_by_key(|(t, _)| *t);
    let mut next = 0;
    for day in 0..=i64::from(horizon_days) {
        let date = start.date() + Duration::days(day);
        let per_day = demand.level * shape.dow[date.weekday().num_days_from_monday() as usize];
        let first = if day == 0 {
            start
        } else {
            date.and_hms_opt(0, 0, 0).unwrap_or(start)
        };
        let first_hour = first.hour() as usize;
        let slot = |h: usize| -> (NaiveDateTime, f64, u32) {
            if h == first_hour {
                (
                    first,
                    shape.rest_of_hour(h, first.minute()),
                    60 - first.minute().min(60),
                )
            } else {
                (
                    date.and_hms_opt(h as u32, 0, 0).unwrap_or(first),
                    shape.hours[h],
                    60,
                )
            }
        };
        let delivery_today = pending.get(next).is_some_and(|(t, _)| t.date() == date);
        let ahead: f64 = (first_hour..24).map(|h| slot(h).1).sum();
        if !delivery_today && per_day * ahead < left {
            left -= per_day * ahead;
            continue;
        }
        for h in first_hour..24 {
            let (begin, share, minutes) = slot(h);
            while let Some((t, q)) = pending.get(next) {
                if t.date() == date && t.hour() as usize <= h {
                    left += q;
                    next += 1;
                } else {
                    break;
                }
            }
            let use_now = per_day * share;
            if use_now >= left && use_now > 0.0 {
                let at =
                    begin + Duration::seconds((left / use_now * f64::from(minutes) * 60.0) as i64);
                // never before now, also in the hour a clock change repeats
                return Some(crate::local_instant(at, tz).max(now));
            }
            left -= use_now;
        }
    }
    None
}

/// Computes the replenishment figures; `deliveries` are those expected on the way.
pub fn policy(
    params: &Params,
    demand: &Demand,
    shape: &Shape,
    pos: &Position,
    tz: Tz,
    deliveries: &[(DateTime<Utc>, f64)],
) -> Policy {
    let now_local = local(pos.now, tz);
    let lead = params.lead_time_days;
    let d_l = demand_over_days(demand, shape, now_local, lead);
    let z = inverse_normal(params.service_level.clamp(0.5, 0.9999));
    // SS = z · sqrt(L · σ_d² + d² · σ_L²): demand's spread over the lead time, and the lead
    // time's own spread at the mean demand
    let (sd, sl) = (demand.sd(), params.lead_time_sd_days.max(0.0));
    let ss =
        (z * (f64::from(lead) * sd * sd + demand.level * demand.level * sl * sl).sqrt()).max(0.0);
    let rop = d_l + ss;
    let s = rop + demand.level;
    let on_hand = pos.on_hand.to_f64().unwrap_or(0.0);
    let position = on_hand + pos.on_order.to_f64().unwrap_or(0.0);

    let suggested = if position <= rop && demand.level > 0.0 {
        round_up_to_cases(dec(s - position, 3), params.case_pack)
            .min(Decimal::from(ESTIMATE_MAX as i64))
    } else {
        Decimal::ZERO
    };
    Policy {
        avg_daily_demand: dec(demand.level, 3),
        lead_time_demand: dec(d_l, 3),
        safety_stock: dec(ss, 3),
        reorder_point: dec(rop, 3),
        order_up_to: dec(s, 3),
        days_of_cover: (demand.level > 0.0).then(|| dec(on_hand.max(0.0) / demand.level, 2)),
        projected_stockout_at: projected_stockout(
            demand, shape, on_hand, pos.now, tz, 60, deliveries,
        ),
        suggested_order_qty: suggested,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Madrid;

    use crate::t;

    #[test]
    fn normal_quantiles() {
        for (p, z) in [
            (0.5, 0.0),
            (0.95, 1.644854),
            (0.98, 2.053749),
            (0.99, 2.326348),
            (0.025, -1.959964),
        ] {
            assert!((inverse_normal(p) - z).abs() < 1e-5, "{p}");
        }
        assert!(inverse_normal(0.0).is_finite());
        assert!(inverse_normal(1.0).is_finite());
    }

    #[test]
    fn cases_round_up() {
        let d = |s: &str| s.parse::<Decimal>().expect("decimal");
        assert_eq!(round_up_to_cases(d("13"), d("12")), d("24"));
        assert_eq!(round_up_to_cases(d("12"), d("12")), d("12"));
        assert_eq!(round_up_to_cases(d("0.1"), d("6")), d("6"));
        assert_eq!(round_up_to_cases(d("0"), d("6")), d("0"));
        assert_eq!(round_up_to_cases(d("-3"), d("6")), d("0"));
        // weighed goods: crates of 5 kg
        assert_eq!(round_up_to_cases(d("7.250"), d("5")), d("10"));
        // no case pack known: whole units
        assert_eq!(round_up_to_cases(d("2.5"), d("0")), d("3"));
    }

    fn demand(level: f64, sd: f64) -> Demand {
        Demand {
            level,
            var: sd * sd,
            days: 30,
            units_per_sale: 1.0,
        }
    }

    #[test]
    fn safety_stock_reorder_point_and_order() {
        let p = Params {
            lead_time_days: 4,
            lead_time_sd_days: 0.0,
            service_level: 0.95,
            case_pack: Decimal::from(12),
        };
        let pos = Position {
            on_hand: Decimal::from(30),
            on_order: Decimal::ZERO,
            now: t("2026-11-04T09:00:00Z"),
        };
        let pol = policy(&p, &demand(10.0, 3.0), &Shape::default(), &pos, Madrid, &[]);
        // SS = 1.6449 * 3 * 2 = 9.869
        assert_eq!(pol.safety_stock, "9.869".parse::<Decimal>().expect("d"));
        assert_eq!(pol.lead_time_demand, Decimal::from(40));
        assert_eq!(pol.reorder_point, "49.869".parse::<Decimal>().expect("d"));
        assert_eq!(pol.days_of_cover, Some(Decimal::from(3)));
        // S = 59.869, position 30 -> 29.869 -> 3 cases
        assert_eq!(pol.suggested_order_qty, Decimal::from(36));
        // what is on order counts
        let pol = policy(
            &p,
            &demand(10.0, 3.0),
            &Shape::default(),
            &Position {
                on_order: Decimal::from(36),
                ..pos
            },
            Madrid,
            &[],
        );
        assert_eq!(pol.suggested_order_qty, Decimal::ZERO);
    }

    #[test]
    fn zero_lead_time_needs_no_safety_stock() {
        let p = Params {
            lead_time_days: 0,
            lead_time_sd_days: 0.0,
            service_level: 0.99,
            case_pack: Decimal::ONE,
        };
        let pos = Position {
            on_hand: Decimal::ZERO,
            on_order: Decimal::ZERO,
            now: t("2026-11-04T09:00:00Z"),
        };
        let pol = policy(&p, &demand(5.0, 2.0), &Shape::default(), &pos, Madrid, &[]);
        assert_eq!(pol.safety_stock, Decimal::ZERO);
        assert_eq!(pol.reorder_point, Decimal::ZERO);
        assert_eq!(pol.suggested_order_qty, Decimal::from(5));
        assert_eq!(pol.projected_stockout_at, Some(pos.now));
    }

    #[test]
    fn a_new_product_without_history_orders_nothing_and_never_runs_out_on_paper() {
        let p = Params {
            lead_time_days: 2,
            lead_time_sd_days: 0.0,
            service_level: 0.95,
            case_pack: Decimal::from(6),
        };
        let pos = Position {
            on_hand: Decimal::from(3),
            on_order: Decimal::ZERO,
            now: t("2026-11-04T09:00:00Z"),
        };
        let pol = policy(&p, &Demand::default(), &Shape::default(), &pos, Madrid, &[]);
        assert_eq!(pol.avg_daily_demand, Decimal::ZERO);
        assert_eq!(pol.days_of_cover, None);
        assert_eq!(pol.projected_stockout_at, None);
        assert_eq!(pol.suggested_order_qty, Decimal::ZERO);
    }

    #[test]
    fn projected_stockout_follows_the_hours() {
        // 14 units a day, all between 09:00 and 10:00 local and 18:00 and 19:00 local
        let mut shape = Shape {
            hours: [0.0; 24],
            ..Default::default()
        };
        shape.hours[9] = 0.5;
        shape.hours[18] = 0.5;
        let d = demand(14.0, 0.0);
        // 08:00 local Madrid (07:00 UTC), 10 units: 7 go at 09:xx, 3 more by 18:~26
        let now = t("2026-11-04T07:00:00Z");
        let at = projected_stockout(&d, &shape, 10.0, now, Madrid, 60, &[]).expect("runs out");
        let local = at.with_timezone(&Madrid);
        assert_eq!(local.format("%Y-%m-%d %H").to_string(), "2026-11-04 18");
        assert!(local.minute() >= 25 && local.minute() <= 26, "{local}");
        // negative stock is out now
        assert_eq!(
            projected_stockout(&d, &shape, -1.0, now, Madrid, 60, &[]),
            Some(now)
        );
        // a lot of stock runs past the horizon
        assert_eq!(
            projected_stockout(&d, &shape, 10_000.0, now, Madrid, 60, &[]),
            None
        );
        // a delivery of 10 at 12:00 local pushes the run-out to the next morning
        let delivery = [(t("2026-11-04T11:00:00Z"), 10.0)];
        let at =
            projected_stockout(&d, &shape, 10.0, now, Madrid, 60, &delivery).expect("runs out");
        assert_eq!(
            at.with_timezone(&Madrid).format("%Y-%m-%d %H").to_string(),
            "2026-11-05 09"
        );
    }

    #[test]
    fn weighed_goods_use_kilograms_and_crates() {
        let p = Params {
            lead_time_days: 1,
            lead_time_sd_days: 0.0,
            service_level: 0.97,
            case_pack: Decimal::from(5),
        };
        let pos = Position {
            on_hand: "1.250".parse().expect("d"),
            on_order: Decimal::ZERO,
            now: t("2026-11-04T09:00:00Z"),
        };
        let pol = policy(&p, &demand(3.4, 1.1), &Shape::default(), &pos, Madrid, &[]);
        assert!(pol.suggested_order_qty > Decimal::ZERO);
        assert_eq!(pol.suggested_order_qty % Decimal::from(5), Decimal::ZERO);
        assert_eq!(pol.avg_daily_demand, "3.4".parse::<Decimal>().expect("d"));
    }
}
