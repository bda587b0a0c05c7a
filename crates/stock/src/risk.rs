//! The chance of running out: how likely demand empties the shelf before a given time.
//!
//! A projection at the expected pace says *when* stock runs out if every day is average; a
//! slow mover with three units left and a delivery four days away runs out on one day in three
//! even when its average says it lasts. Demand over a stretch of time is counted in sales
//! (units per sale apart): Poisson when the days vary no more than chance makes them, negative
//! binomial when they vary more, normal when the stretch holds hundreds of sales.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use chrono_tz::Tz;

use crate::demand::{Demand, Shape};

/// Expected units sold from `since` to `until` along the store's weekly and daily shape:
/// partial first and last hours, whole hours of the first and last day, whole days between.
pub fn expected_units(
    demand: &Demand,
    shape: &Shape,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    tz: Tz,
) -> f64 {
    if until <= since || demand.level <= 0.0 {
        return 0.0;
    }
    let start = since.with_timezone(&tz).naive_local();
    let end = until.with_timezone(&tz).naive_local();
    let per_day = |d: chrono::NaiveDate| {
        demand.level * shape.dow[d.weekday().num_days_from_monday() as usize]
    };
    // hours [from, to) of day d, fractional hours allowed
    let day_part =
        |d: chrono::NaiveDate, from: f64, to: f64| shape.share_between(from, to) * per_day(d);
    let hour_of = |t: chrono::NaiveDateTime| {
        f64::from(t.hour()) + f64::from(t.minute()) / 60.0 + f64::from(t.second()) / 3600.0
    };
    if start.date() == end.date() {
        return day_part(start.date(), hour_of(start), hour_of(end));
    }
    let mut expected = day_part(start.date(), hour_of(start), 24.0);
    let mut d = start.date() + Duration::days(1);
    let mut days = 0;
    while d < end.date() && days < 3660 {
        expected += per_day(d);
        d += Duration::days(1);
        days += 1;
    }
    expected + day_part(end.date(), 0.0, hour_of(end))
}

/// The chance that demand with `mean` units and daily deviation `sd_day` (over `days` of
/// average demand) sells more than `available` units, counted in sales of `units_per_sale`.
pub fn chance_demand_exceeds(
    mean: f64,
    sd_day: f64,
    days: f64,
    units_per_sale: f64,
    available: f64,
) -> f64 {
    if available < 0.0 {
        return 1.0;
    }
    if mean.is_nan() || mean <= 0.0 || !available.is_finite() {
        return 0.0;
    }
    let ups = if units_per_sale > 0.0 {
        units_per_sale
    } else {
        1.0
    };
    // in sales: more than `available` units means at least this many sales
    let need = (available / ups).floor() + 1.0;
    let m = mean / ups;
    let v = (sd_day * sd_day * days.max(0.0) / (ups * ups)).max(m);
    if m > 400.0 {
        // many sales: normal, with a continuity correction
        let z = (need - 0.5 - m) / v.sqrt();
        return 0.5 * erfc(z / std::f64::consts::SQRT_2);
    }
    // far out in the tail (ten deviations): nothing worth a warning, and no long sum
    if need > m + 10.0 * v.sqrt() + 10.0 {
        return 0.0;
    }
    let need = need as u64;
    // P(N < need), summed from the probability mass function's recurrence
    let below = if v <= m * 1.0001 {
        let mut p = (-m).exp();
        let mut sum = 0.0;
        for k in 0..need {
            sum += p;
            p *= m / (k + 1) as f64;
        }
        sum
    } else {
        // negative binomial with r successes of chance q: mean r(1−q)/q = m, variance m/q = v
        let q = m / v;
        let r = m * q / (1.0 - q);
        let mut p = q.powf(r);
        let mut sum = 0.0;
        for k in 0..need {
            sum += p;
            p *= (k as f64 + r) / (k + 1) as f64 * (1.0 - q);
        }
        sum
    };
    (1.0 - below).clamp(0.0, 1.0)
}

/// The standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The chance that the shelf runs dry before `until`: `on_hand` now, the `deliveries`
/// expected on the way adding to it when they come. The shelf is judged just before each
/// delivery and at the end; the largest of those chances is the risk (a lower bound of the
/// chance of running dry at some point, and close to it when one stretch dominates).
pub fn stockout_risk(
    demand: &Demand,
    shape: &Shape,
    on_hand: f64,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    tz: Tz,
    deliveries: &[(DateTime<Utc>, f64)],
) -> f64 {
    if on_hand <= 0.0 {
        return 1.0;
    }
    if demand.level <= 0.0 || until <= now {
        return 0.0;
    }
    let mut arrivals: Vec<(DateTime<Utc>, f64)> = deliveries
        .iter()
        .filter(|(t, q)| *t > now && *t < until && *q > 0.0)
        .copied()
        .collect();
    arrivals.sort_by_key(|(t, _)| *t);
    let sd = demand.sd();
    let mut available = on_hand;
    let mut worst: f64 = 0.0;
    for at in arrivals
        .iter()
        .map(|(t, _)| *t)
        .chain(std::iter::once(until))
    {
        let mean = expected_units(demand, shape, now, at, tz);
        let days = mean / demand.level;
        worst = worst.max(chance_demand_exceeds(
            mean,
            sd,
            days,
            demand.units_per_sale,
            available,
        ));
        available += arrivals
            .iter()
            .filter(|(t, _)| *t == at)
            .map(|(_, q)| q)
            .sum::<f64>();
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Madrid;

    use crate::t;

    fn flat() -> Shape {
        Shape {
            dow: [1.0; 7],
            hours: [1.0 / 24.0; 24],
            days: 7,
        }
    }

    fn demand(level: f64, var: f64) -> Demand {
        Demand {
            level,
            var,
            days: 14,
            units_per_sale: 1.0,
        }
    }

    #[test]
    fn poisson_tail() {
        // mean 2 sales: P(N > 3) = 1 − e⁻²(1 + 2 + 2 + 4/3) = 0.142877
        let p = chance_demand_exceeds(2.0, 0.0, 4.0, 1.0, 3.0);
        assert!((p - 0.142_877).abs() < 1e-5, "{p}");
        // nothing on the shelf: any sale empties it
        assert!(
            (chance_demand_exceeds(2.0, 0.0, 4.0, 1.0, 0.0) - (1.0 - (-2.0f64).exp())).abs() < 1e-9
        );
        // below zero already
        assert_eq!(chance_demand_exceeds(2.0, 0.0, 4.0, 1.0, -1.0), 1.0);
        // no demand, no risk; a shelf far beyond any likely demand, none worth counting
        assert_eq!(chance_demand_exceeds(0.0, 0.0, 4.0, 1.0, 3.0), 0.0);
        assert_eq!(chance_demand_exceeds(2.0, 0.0, 4.0, 1.0, 1e9), 0.0);
        assert!(chance_demand_exceeds(2.0, 0.0, 4.0, 1.0, 12.0) < 1e-4);
    }

    #[test]
    fn overdispersed_demand_has_a_fatter_tail() {
        let poisson = chance_demand_exceeds(2.0, 0.0, 4.0, 1.0, 6.0);
        // days varying four times as much as chance makes them (variance 2 a day over 4 days)
        let wide = chance_demand_exceeds(2.0, 2.0f64.sqrt(), 4.0, 1.0, 6.0);
        assert!(wide > poisson * 2.0, "{wide} vs {poisson}");
        // negative binomial mean 2, variance 8: P(N ≥ 7) = 0.0732 (r = 2/3, q = 1/4)
        assert!((wide - 0.073_2).abs() < 5e-4, "{wide}");
    }

    #[test]
    fn many_sales_are_normal() {
        // mean 1000, sd √1000 a sale at a time: 1000 on the shelf runs out half the time
        let p = chance_demand_exceeds(1000.0, 1000f64.sqrt(), 1.0, 1.0, 1000.0);
        assert!((p - 0.5).abs() < 0.02, "{p}");
        let p = chance_demand_exceeds(1000.0, 1000f64.sqrt(), 1.0, 1.0, 1100.0);
        assert!(p < 0.002, "{p}");
    }

    #[test]
    fn bigger_sales_empty_the_shelf_in_fewer_steps() {
        // 4 units a day in sales of 2: a shelf of 3 goes at the second sale, P(N ≥ 2) with
        // mean 2 = 0.594; one at a time it takes four, P(N ≥ 4) with mean 4 = 0.567
        let by_two = chance_demand_exceeds(4.0, 0.0, 1.0, 2.0, 3.0);
        let by_one = chance_demand_exceeds(4.0, 0.0, 1.0, 1.0, 3.0);
        assert!((by_two - 0.594).abs() < 1e-3, "{by_two}");
        assert!((by_one - 0.567).abs() < 1e-3, "{by_one}");
        // weighed goods: 0.35 kg a sale
        let kg = chance_demand_exceeds(2.1, 0.0, 1.0, 0.35, 1.0);
        assert!(kg > 0.9, "{kg}");
    }

    #[test]
    fn expected_units_follow_the_shape() {
        let d = demand(24.0, 0.0);
        let now = t("2026-11-02T09:00:00Z");
        let e = expected_units(&d, &flat(), now, now + Duration::days(3), Madrid);
        assert!((e - 72.0).abs() < 1e-6, "{e}");
        let e = expected_units(&d, &flat(), now, now + Duration::hours(5), Madrid);
        assert!((e - 5.0).abs() < 1e-6, "{e}");
        assert_eq!(expected_units(&d, &flat(), now, now, Madrid), 0.0);
    }

    #[test]
    fn deliveries_on_the_way_lower_the_risk() {
        let d = demand(1.0, 1.0);
        let now = t("2026-11-02T09:00:00Z");
        let until = now + Duration::days(5);
        let alone = stockout_risk(&d, &flat(), 3.0, now, until, Madrid, &[]);
        // 5 units expected over 5 days with 3 on the shelf: more likely than not
        assert!(alone > 0.7, "{alone}");
        let helped = stockout_risk(
            &d,
            &flat(),
            3.0,
            now,
            until,
            Madrid,
            &[(now + Duration::days(2), 6.0)],
        );
        // only the two days before the delivery are at risk: P(N > 3) with mean 2
        assert!(helped < 0.2, "{helped}");
        assert!(helped > 0.1, "{helped}");
        // an empty shelf is certain, no demand is none
        assert_eq!(
            stockout_risk(&d, &flat(), 0.0, now, until, Madrid, &[]),
            1.0
        );
        assert_eq!(
            stockout_risk(&demand(0.0, 0.0), &flat(), 3.0, now, until, Madrid, &[]),
            0.0
        );
    }
}
