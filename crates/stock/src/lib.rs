//! # stocklake-stock
//!
//! Stock intelligence as pure functions, tested without any service:
//!
//! - `demand`: exponentially weighted daily demand per store and SKU with the store's weekly
//!   and daily shape, never learning from days when the shelf was empty;
//! - `policy`: safety stock `z·σ·√L`, reorder point, days of cover, projected stock-out time
//!   along the intraday profile, and the suggested order in whole cases, net of what is on order;
//! - `alerts`: the rules (below reorder point, below safety stock, projected stock-out, out of
//!   stock, negative stock, overstock, suspected phantom stock) and the alert lifecycle.
//!
//! Quantities and money are decimals; statistics (rates, deviations) are floating point.

pub mod alerts;
pub mod demand;
pub mod fill;
pub mod policy;
pub mod proposal;
pub mod replenishment;
pub mod risk;

/// The instant of a store-local wall-clock time: the earlier one when a clock change repeats
/// it, the same wall time an hour later when a clock change skips it.
pub fn local_instant(t: chrono::NaiveDateTime, tz: chrono_tz::Tz) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    match tz.from_local_datetime(&t).earliest() {
        Some(x) => x.with_timezone(&chrono::Utc),
        None => tz
            .from_local_datetime(&(t + chrono::Duration::hours(1)))
            .earliest()
            .map_or_else(
                || chrono::Utc.from_utc_datetime(&t),
                |x| x.with_timezone(&chrono::Utc),
            ),
    }
}

/// A time from its RFC 3339 text, for the tests.
#[cfg(test)]
pub(crate) fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&chrono::Utc)
}

pub use alerts::{
    AlertType, Change, Condition, Inputs, Names, OpenAlert, RuleConfig, Severity,
    chance_of_no_sale, conditions, lifecycle,
};
pub use demand::{Demand, Shape, alpha};
pub use policy::{
    Params, Policy, Position, inverse_normal, policy, projected_stockout, round_up_to_cases,
};
pub use proposal::{Days, Proposal, Stock, Supply, propose};
pub use replenishment::Replenishment;
pub use risk::{chance_demand_exceeds, expected_units, stockout_risk};

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::{local_instant, t};

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> chrono::NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .expect("a date")
    }

    #[test]
    fn a_local_time_is_its_instant_across_clock_changes() {
        let london = chrono_tz::Europe::London;
        // an ordinary summer morning: UTC + 1
        assert_eq!(
            local_instant(local(2026, 6, 1, 6, 0), london),
            t("2026-06-01T05:00:00Z")
        );
        // 01:30 is skipped on 29 March: the same wall time an hour later, 02:30 BST
        assert_eq!(
            local_instant(local(2026, 3, 29, 1, 30), london),
            t("2026-03-29T01:30:00Z")
        );
        // 01:30 happens twice on 25 October: the first, still in summer time
        assert_eq!(
            local_instant(local(2026, 10, 25, 1, 30), london),
            t("2026-10-25T00:30:00Z")
        );
    }
}
