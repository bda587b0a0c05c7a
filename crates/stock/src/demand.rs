//! Demand: an exponentially weighted daily level and deviation per store and SKU, with a
//! store's weekly and daily shape. Days when the shelf was empty are not learnt from: a
//! stock-out hides demand, it does not show low demand.

use serde::{Deserialize, Serialize};

/// The smoothing weight of a half-life in observations.
pub fn alpha(half_life: f64) -> f64 {
    if half_life <= 0.0 {
        1.0
    } else {
        1.0 - 0.5f64.powf(1.0 / half_life)
    }
}

/// Daily demand of one store and SKU, deseasonalised by the store's weekday shape.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Demand {
    /// Mean units per day on an average weekday.
    pub level: f64,
    /// Exponentially weighted variance of deseasonalised daily units.
    pub var: f64,
    /// Days learnt from (not censored).
    pub days: u32,
    /// Mean units per sale line (for turning units into a count of sales).
    pub units_per_sale: f64,
}

impl Demand {
    /// A start from a prior (the same SKU in other stores), held as one observed day.
    pub fn with_prior(level: f64, sd: f64) -> Demand {
        Demand {
            level: level.max(0.0),
            var: (sd * sd).max(0.0),
            days: 0,
            units_per_sale: 1.0,
        }
    }

    /// Learns from one closed day: `units` sold in `sales` lines on a day whose weekday weighs
    /// `dow_factor`. A `censored` day (the shelf was empty for most of it) teaches nothing; for a
    /// day empty only part of the time, use [`Demand::observe_partial`].
    pub fn observe(&mut self, units: f64, sales: u32, dow_factor: f64, censored: bool, alpha: f64) {
        if censored || !units.is_finite() || units < 0.0 {
            return;
        }
        let f = if dow_factor.is_finite() && dow_factor > 0.05 {
            dow_factor
        } else {
            1.0
        };
        let x = units / f;
        if self.days == 0 && self.level == 0.0 && self.var == 0.0 {
            self.level = x;
            self.var = 0.0;
        } else {
            // a faster start while history is short, then the configured weight
            let a = alpha.max(1.0 / f64::from(self.days + 2));
            let diff = x - self.level;
            let incr = a * diff;
            self.level += incr;
            self.var = (1.0 - a) * (self.var + diff * incr);
        }
        self.days += 1;
        if sales > 0 {
            let ups = units / f64::from(sales);
            self.units_per_sale = if self.units_per_sale <= 0.0 {
                ups
            } else {
                0.9 * self.units_per_sale + 0.1 * ups
            };
        }
    }

    /// Learns from a day when the shelf was empty for `out_share` of the day's usual sales:
    /// what sold in the rest of the day is scaled up to a whole day. A shelf empty for most of
    /// the day (over 85 %) says too little and teaches nothing.
    pub fn observe_partial(
        &mut self,
        units: f64,
        sales: u32,
        dow_factor: f64,
        out_share: f64,
        alpha: f64,
    ) {
        let out = if out_share.is_finite() {
            out_share.clamp(0.0, 1.0)
        } else {
            1.0
        };
        if out > 0.85 {
            return;
        }
        let scaled_sales = (f64::from(sales) / (1.0 - out)).round() as u32;
        self.observe(
            units / (1.0 - out),
            scaled_sales.max(sales),
            dow_factor,
            false,
            alpha,
        );
    }

    /// Standard deviation of daily demand, with a Poisson floor: slow movers are not
    /// certain just because the few days seen happened to agree.
    pub fn sd(&self) -> f64 {
        self.var
            .max(0.0)
            .sqrt()
            .max(self.level.max(0.0).sqrt() * 0.5)
    }
}

/// A store's rhythm: sales by weekday (mean 1) and by local hour (sum 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    pub dow: [f64; 7],
    pub hours: [f64; 24],
    pub days: u32,
}

/// Typical supermarket hours (08:00–22:00 with a late-morning and an early-evening peak),
/// used until a store has its own history.
const DEFAULT_HOURS: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.01, 0.04, 0.06, 0.075, 0.09, 0.1, 0.085, 0.06, 0.055,
    0.065, 0.09, 0.1, 0.09, 0.06, 0.02, 0.0, 0.0,
];

impl Default for Shape {
    fn default() -> Self {
        let total: f64 = DEFAULT_HOURS.iter().sum();
        let mut hours = DEFAULT_HOURS;
        for h in &mut hours {
            *h /= total;
        }
        Shape {
            dow: [1.0; 7],
            hours,
            days: 0,
        }
    }
}

impl Shape {
    /// Learns from one closed day of the store: units sold per local hour, on `weekday`
    /// (0 = Monday). `store_level` is the store's mean daily units before this day.
    pub fn observe(&mut self, by_hour: &[f64; 24], weekday: usize, alpha: f64) {
        let total: f64 = by_hour.iter().sum();
        if total <= 0.0 || weekday > 6 {
            return;
        }
        let a = alpha.max(1.0 / f64::from(self.days + 2));
        for (h, v) in self.hours.iter_mut().zip(by_hour) {
            *h = (1.0 - a) * *h + a * (v / total);
        }
        let s: f64 = self.hours.iter().sum();
        if s > 0.0 {
            for h in &mut self.hours {
                *h /= s;
            }
        }
        self.days += 1;
    }

    /// Learns the weekday factors from mean units per weekday (index 0 = Monday).
    pub fn set_weekdays(&mut self, mean_by_weekday: &[f64; 7]) {
        let known: Vec<f64> = mean_by_weekday
            .iter()
            .copied()
            .filter(|v| *v > 0.0)
            .collect();
        if known.len() < 7 {
            return;
        }
        let mean = known.iter().sum::<f64>() / 7.0;
        if mean > 0.0 {
            for (d, v) in self.dow.iter_mut().zip(mean_by_weekday) {
                *d = (v / mean).clamp(0.2, 5.0);
            }
        }
    }

    /// The share of a day's sales expected between two local times of the same day
    /// (`from` and `to` in hours since midnight, fractional).
    pub fn share_between(&self, from: f64, to: f64) -> f64 {
        let (from, to) = (from.clamp(0.0, 24.0), to.clamp(0.0, 24.0));
        let mut sum = 0.0;
        let mut h = from;
        while h < to {
            let hour = h.floor() as usize;
            let next = (h.floor() + 1.0).min(to);
            sum += self.hours[hour.min(23)] * (next - h);
            h = next;
        }
        sum
    }

    /// The share of a day's sales expected in the rest of local hour `hour` from `minute`.
    pub fn rest_of_hour(&self, hour: usize, minute: u32) -> f64 {
        self.hours[hour.min(23)] * (60.0 - f64::from(minute.min(60))) / 60.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_steady_rate_and_ignores_censored_days() {
        let mut d = Demand::default();
        let a = alpha(14.0);
        for _ in 0..30 {
            d.observe(10.0, 8, 1.0, false, a);
        }
        assert!((d.level - 10.0).abs() < 1e-9);
        // a stock-out day with 2 sales must not drag the level down
        d.observe(2.0, 2, 1.0, true, a);
        assert!((d.level - 10.0).abs() < 1e-9);
        assert_eq!(d.days, 30);
        assert!((d.units_per_sale - 1.25).abs() < 1e-6);
    }

    #[test]
    fn a_day_out_of_stock_from_mid_afternoon_is_scaled_up() {
        let mut d = Demand::default();
        // 6 units sold while in stock for 60 % of the day's usual sales: a 10-unit day
        d.observe_partial(6.0, 6, 1.0, 0.4, alpha(14.0));
        assert!((d.level - 10.0).abs() < 1e-9);
        // out nearly all day: nothing learnt
        d.observe_partial(1.0, 1, 1.0, 0.9, alpha(14.0));
        assert!((d.level - 10.0).abs() < 1e-9);
        assert_eq!(d.days, 1);
        let s = Shape::default();
        assert!((s.share_between(0.0, 24.0) - 1.0).abs() < 1e-9);
        assert!(s.share_between(0.0, 7.0) < 1e-9);
    }

    #[test]
    fn weekday_shape_deseasonalises() {
        let mut d = Demand::default();
        // a Saturday (factor 1.5) with 15 units is an average day of 10
        d.observe(15.0, 15, 1.5, false, alpha(14.0));
        assert!((d.level - 10.0).abs() < 1e-9);
    }

    #[test]
    fn variance_tracks_noise_with_a_poisson_floor() {
        let mut d = Demand::default();
        let a = alpha(7.0);
        for i in 0..200 {
            d.observe(if i % 2 == 0 { 6.0 } else { 14.0 }, 5, 1.0, false, a);
        }
        assert!((d.level - 10.0).abs() < 1.0, "{}", d.level);
        assert!(d.sd() > 3.0 && d.sd() < 5.0, "{}", d.sd());
        let slow = Demand {
            level: 0.25,
            var: 0.0,
            days: 10,
            units_per_sale: 1.0,
        };
        assert!((slow.sd() - 0.25).abs() < 1e-9, "sqrt(level)/2 floor");
    }

    #[test]
    fn shape_learns_hours_and_weekdays() {
        let mut s = Shape::default();
        let mut day = [0.0; 24];
        day[9] = 50.0;
        day[18] = 50.0;
        for _ in 0..60 {
            s.observe(&day, 0, alpha(7.0));
        }
        assert!((s.hours[9] - 0.5).abs() < 0.01);
        assert!(s.hours[3] < 1e-3);
        s.set_weekdays(&[90.0, 90.0, 90.0, 90.0, 110.0, 140.0, 90.0]);
        let mean: f64 = s.dow.iter().sum::<f64>() / 7.0;
        assert!((mean - 1.0).abs() < 1e-9);
        assert!(s.dow[5] > 1.3);
        assert!((s.hours.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
}
