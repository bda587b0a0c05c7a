//! Safety stock for a fill rate: enough that the units a cycle is expected to fall short are at
//! most the share of its demand the service level gives up.
//!
//! A store's customers see availability — the share of what they wanted that was on the shelf
//! — not the chance that a cycle ends without a stock-out. So the service level of a proposal
//! is read as a fill rate: the expected shortage over the time until the next delivery (normal
//! demand, the standard loss function) is held at `(1 − level) ×` the demand of the cycle. A
//! delivery that may come a day late is a second case, weighted by its chance, with a day more
//! of demand to cover.

use crate::risk::normal_cdf;

/// The standard normal loss function: the expected amount by which a standard normal draw
/// exceeds `k`.
pub fn normal_loss(k: f64) -> f64 {
    let pdf = (-0.5 * k * k).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (pdf - k * (1.0 - normal_cdf(k))).max(0.0)
}

/// Expected units short of `level` when demand is normal with `mean` and `sd`.
pub fn expected_short(level: f64, mean: f64, sd: f64) -> f64 {
    if sd <= 0.0 {
        return (mean - level).max(0.0);
    }
    sd * normal_loss((level - mean) / sd)
}

/// The chance that a delivery comes a day late, read from the lead time's spread: a lead time
/// that is a day longer with chance `p` has the deviation `√(p(1 − p))`. A spread of half a day
/// or more reads as even odds.
pub fn late_chance(lead_time_sd_days: f64) -> f64 {
    let var = lead_time_sd_days.max(0.0).powi(2);
    if var >= 0.25 {
        return 0.5;
    }
    (1.0 - (1.0 - 4.0 * var).sqrt()) / 2.0
}

/// Demand until the next delivery, on time and a day late.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exposure {
    /// Expected demand until the next delivery.
    pub mean: f64,
    /// Its deviation.
    pub sd: f64,
    /// The chance the delivery comes a day late.
    pub late: f64,
    /// The extra day's expected demand, and the deviation of the whole when late.
    pub late_mean: f64,
    pub late_sd: f64,
}

impl Exposure {
    fn short(&self, level: f64) -> f64 {
        (1.0 - self.late) * expected_short(level, self.mean, self.sd)
            + self.late * expected_short(level, self.mean + self.late_mean, self.late_sd)
    }
}

/// The least safety stock (above the expected demand) at which the expected shortage is at
/// most `(1 − fill) × cycle_demand`.
pub fn safety_for_fill(e: &Exposure, cycle_demand: f64, fill: f64) -> f64 {
    let allowed = (1.0 - fill.clamp(0.0, 0.9999)) * cycle_demand.max(0.0);
    if e.short(e.mean) <= allowed {
        return 0.0;
    }
    let (mut lo, mut hi) = (
        0.0,
        e.late_mean.max(0.0) + 8.0 * e.sd.max(e.late_sd).max(1e-9),
    );
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if e.short(e.mean + mid) > allowed {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_function_at_known_points() {
        // tables: G(0) = 0.3989, G(1) = 0.0833, G(2) = 0.0085
        assert!((normal_loss(0.0) - 0.3989).abs() < 1e-3);
        assert!((normal_loss(1.0) - 0.0833).abs() < 1e-3);
        assert!((normal_loss(2.0) - 0.0085).abs() < 1e-3);
        assert!((normal_loss(-3.0) - 3.0).abs() < 1e-2);
    }

    #[test]
    fn a_delivery_late_one_time_in_sixteen_is_read_back() {
        let p: f64 = 1.0 / 16.0;
        assert!((late_chance((p * (1.0 - p)).sqrt()) - p).abs() < 1e-9);
        assert_eq!(late_chance(0.0), 0.0);
        assert_eq!(late_chance(2.0), 0.5);
    }

    #[test]
    fn a_higher_fill_rate_or_a_late_delivery_needs_more() {
        let on_time = Exposure {
            mean: 100.0,
            sd: 10.0,
            late: 0.0,
            late_mean: 50.0,
            late_sd: 12.0,
        };
        let a = safety_for_fill(&on_time, 50.0, 0.95);
        let b = safety_for_fill(&on_time, 50.0, 0.99);
        assert!(a > 0.0 && b > a, "{a} {b}");
        // the shortage at the safety stock found is the one allowed
        assert!((expected_short(100.0 + b, 100.0, 10.0) - 0.5).abs() < 1e-6);
        let late = Exposure {
            late: 1.0 / 16.0,
            ..on_time
        };
        let c = safety_for_fill(&late, 50.0, 0.99);
        assert!(c > b, "{b} {c}");
        // nothing uncertain: nothing held beyond the expected demand
        let sure = Exposure {
            sd: 0.0,
            late_sd: 0.0,
            ..on_time
        };
        assert_eq!(safety_for_fill(&sure, 50.0, 0.99), 0.0);
    }
}
