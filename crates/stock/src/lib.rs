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
