//! Alert rules and their lifecycle.
//!
//! Rules turn a store and SKU's figures into conditions; the lifecycle turns conditions into
//! changes of alerts: one open alert per store, SKU and type — opened once, updated while it
//! lasts, resolved when the condition is gone.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use serde::{Deserialize, Serialize};

use crate::demand::{Demand, Shape};
use crate::policy::{Params, Policy, Position};

/// The kinds of stock alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertType {
    BelowReorderPoint,
    BelowSafetyStock,
    ProjectedStockout,
    OutOfStock,
    NegativeStock,
    Overstock,
    SuspectedPhantomStock,
}

impl AlertType {
    pub const ALL: [AlertType; 7] = [
        AlertType::BelowReorderPoint,
        AlertType::BelowSafetyStock,
        AlertType::ProjectedStockout,
        AlertType::OutOfStock,
        AlertType::NegativeStock,
        AlertType::Overstock,
        AlertType::SuspectedPhantomStock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::BelowReorderPoint => "below_reorder_point",
            AlertType::BelowSafetyStock => "below_safety_stock",
            AlertType::ProjectedStockout => "projected_stockout",
            AlertType::OutOfStock => "out_of_stock",
            AlertType::NegativeStock => "negative_stock",
            AlertType::Overstock => "overstock",
            AlertType::SuspectedPhantomStock => "suspected_phantom_stock",
        }
    }

    pub fn parse(s: &str) -> Option<AlertType> {
        AlertType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for AlertType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A slow mover sells at most this many times a day.
pub const SLOW_MOVER_SALES_PER_DAY: f64 = 8.0;

/// Settings of the rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleConfig {
    /// More days of cover than this (and more than a case above need) is overstock.
    pub overstock_days: f64,
    /// Phantom stock is suspected when no sale in this long was this unlikely.
    pub phantom_probability: f64,
    /// Days of demand history before demand-based rules apply.
    pub min_history_days: u32,
    /// A "normally selling" item sells at least this many times a day.
    pub phantom_min_sales_per_day: f64,
    /// A slow mover's stock-out is warned of while an order can still prevent it once its
    /// chance before an order placed tomorrow could arrive (the lead time and a day) reaches this.
    pub order_risk: f64,
    /// A projected run-out this many hours ahead or less is warned of (a day and the evening
    /// after it).
    pub stockout_window_hours: u32,
    /// … and this many hours more while the warning is open, so that it does not flap.
    pub stockout_hold_hours: u32,
    /// With less than this share of a day's demand left, a delivery merely expected is no
    /// comfort: the run-out is warned of whatever is on the way …
    pub low_cover_share: f64,
    /// … and below this share while that warning is open.
    pub low_cover_share_held: f64,
    /// A slow mover's open warning holds until its chance falls below this share of
    /// `order_risk`.
    pub order_risk_hold_share: f64,
    /// An open below-safety-stock alert clears once stock is this multiple of safety stock.
    pub safety_stock_clear: f64,
    /// An open below-reorder-point alert clears once the stock position is this multiple of the
    /// reorder point.
    pub reorder_point_clear: f64,
    /// Phantom stock is judged at this share of the usual pace (days are busier and quieter
    /// than average).
    pub phantom_pace: f64,
    /// An open phantom-stock suspicion holds until the chance of the silence is this many times
    /// the line that raised it.
    pub phantom_hold: f64,
    /// Days of history — of the item and of the store's weekly rhythm — before phantom stock is
    /// judged.
    pub phantom_history_days: u32,
    /// … and at least this many sales' worth on the shelf (on record).
    pub phantom_min_shelf_sales: f64,
    /// A warning (`projected_stockout`, `below_safety_stock`) is raised only once it has held
    /// this long: a projection that flickers for a moment (a late afternoon lull, a big basket)
    /// is not worth a store manager's attention.
    pub warning_confirm_minutes: u32,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            overstock_days: 45.0,
            phantom_probability: 0.002,
            min_history_days: 3,
            phantom_min_sales_per_day: 2.0,
            order_risk: 0.3,
            stockout_window_hours: 27,
            stockout_hold_hours: 24,
            low_cover_share: 0.6,
            low_cover_share_held: 0.8,
            order_risk_hold_share: 0.6,
            safety_stock_clear: 1.1,
            reorder_point_clear: 1.05,
            phantom_pace: 0.75,
            phantom_hold: 10.0,
            phantom_history_days: 7,
            phantom_min_shelf_sales: 3.0,
            warning_confirm_minutes: 45,
        }
    }
}

/// What the messages call things.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    pub sku: &'a str,
    pub product: Option<&'a str>,
    pub unit: &'a str,
}

/// A condition that holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub alert_type: AlertType,
    pub severity: Severity,
    pub on_hand: Decimal,
    /// The line crossed: reorder point, safety stock, zero, overstock level …
    pub threshold: Decimal,
    pub suggested_order_qty: Decimal,
    pub message: String,
}

/// The chance of seeing no sale in the time since `since`, at the expected pace.
pub fn chance_of_no_sale(
    demand: &Demand,
    shape: &Shape,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    tz: Tz,
) -> f64 {
    if now <= since || demand.level <= 0.0 {
        return 1.0;
    }
    let per_sale = if demand.units_per_sale > 0.0 {
        demand.units_per_sale
    } else {
        1.0
    };
    let expected = crate::risk::expected_units(demand, shape, since, now, tz);
    (-(expected / per_sale)).exp()
}

/// Everything the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub params: &'a Params,
    pub demand: &'a Demand,
    pub shape: &'a Shape,
    pub policy: &'a Policy,
    pub position: &'a Position,
    /// The later of the last sale and the last time records went from empty to stocked.
    pub last_sale_or_restock: Option<DateTime<Utc>>,
    /// When the next delivery is expected from the receipt rhythm (not overdue), if known.
    pub next_delivery: Option<DateTime<Utc>>,
    /// How uncertain that time is: a run-out this close before it is too close to call.
    pub delivery_slack: Duration,
    /// The usual size of a delivery (0 when unknown).
    pub typical_delivery: f64,
    /// The deliveries expected on the way (time, quantity): the store's order once it is inferred
    /// placed, or the deliveries of the receipt rhythm.
    pub deliveries: &'a [(DateTime<Utc>, f64)],
    /// On how many of the last seven days the shelf ran empty on record.
    pub recent_stockout_days: u32,
    /// Whether any receipt has been seen: without one the store's own rhythm is unknown, and
    /// only imminent run-outs are warned of.
    pub rhythm_known: bool,
    /// The alert types open now (a condition holds a little longer than it takes to raise it,
    /// so that alerts do not flap).
    pub open: &'a [AlertType],
    pub tz: Tz,
}

fn q(d: Decimal) -> String {
    d.normalize().to_string()
}

/// A quantity expected on the way (inferred from the receipt rhythm, a forecast rather than a
/// count): whole units for products sold by the unit, grams for products sold by weight.
fn expected(d: Decimal, unit: &str) -> String {
    if unit == "units" {
        q(d.round())
    } else {
        q(d.round_dp(3))
    }
}

fn when(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%a %d %b %H:%M").to_string()
}

/// What a rule found, in its own terms: the text a store manager reads is rendered from it
/// apart from the rule (`Finding::message`).
#[derive(Debug, Clone, PartialEq)]
enum Finding {
    /// The records show less than nothing.
    Negative,
    /// Nothing on the shelf (on record).
    Out,
    /// A warning that stays open while the shelf is empty.
    RanOut,
    /// A slow mover's chance of an empty shelf before an order placed tomorrow could arrive.
    OrderRisk {
        risk: f64,
        until: DateTime<Utc>,
        /// Judged without the delivery expected on the way.
        held: bool,
    },
    /// The projected run-out.
    RunsOut {
        at: DateTime<Utc>,
        too_late: bool,
    },
    BelowSafetyStock,
    AtReorderPoint,
    Overstock {
        cover: Decimal,
    },
    Phantom {
        hours: f64,
        sales_per_day: f64,
    },
}

/// The facts of one store and SKU every rule and message reads.
struct Ctx<'i, 'n> {
    i: &'i Inputs<'i>,
    cfg: &'i RuleConfig,
    names: &'n Names<'n>,
    on_hand: Decimal,
    now: DateTime<Utc>,
    lead: i64,
}

impl Ctx<'_, '_> {
    fn is_open(&self, t: AlertType) -> bool {
        self.i.open.contains(&t)
    }

    fn on_hand_f64(&self) -> f64 {
        self.on_hand.to_f64().unwrap_or(0.0)
    }

    fn condition(
        &self,
        alert_type: AlertType,
        severity: Severity,
        threshold: Decimal,
        suggested: bool,
        finding: Finding,
    ) -> Condition {
        Condition {
            alert_type,
            severity,
            on_hand: self.on_hand,
            threshold,
            suggested_order_qty: if suggested {
                self.i.policy.suggested_order_qty
            } else {
                Decimal::ZERO
            },
            message: finding.message(self),
        }
    }

    /// "Milk (SKU-1)", or the SKU alone.
    fn what(&self) -> String {
        match self.names.product {
            Some(p) => format!("{p} ({})", self.names.sku),
            None => self.names.sku.to_string(),
        }
    }

    /// " Order 24 units (2 cases of 12).", what is on the way, or nothing.
    fn order_text(&self) -> String {
        let (i, unit) = (self.i, self.names.unit);
        let suggested = i.policy.suggested_order_qty;
        if suggested > Decimal::ZERO {
            let cases = (suggested / i.params.case_pack.max(Decimal::ONE)).round();
            format!(
                " Order {} {unit} ({} case{} of {}).",
                q(suggested),
                cases,
                if cases == Decimal::ONE { "" } else { "s" },
                q(i.params.case_pack)
            )
        } else if i.position.on_order > Decimal::ZERO {
            format!(
                " About {} {unit} are expected on the way.",
                expected(i.position.on_order, unit)
            )
        } else {
            String::new()
        }
    }

    fn days(&self) -> &'static str {
        if self.lead == 1 { "" } else { "s" }
    }
}

impl Finding {
    /// The text a store manager acts on.
    fn message(&self, c: &Ctx<'_, '_>) -> String {
        let (what, unit, order) = (c.what(), c.names.unit, c.order_text());
        let (i, on_hand) = (c.i, q(c.on_hand));
        match self {
            Finding::Negative => format!(
                "{what}: the records show {on_hand} {unit}, below zero. Sales or waste were recorded that never came in as deliveries; count the shelf."
            ),
            Finding::Out => format!("{what} is out of stock.{order}"),
            Finding::RanOut => format!("{what} ran out before it was restocked.{order}"),
            Finding::OrderRisk { risk, until, held } => format!(
                "{what} may run out unless it is ordered today: {on_hand} {unit} left, about {} a day, a delivery takes {} day{} — a {:.0}% chance of an empty shelf by {}{}.{order}",
                q(i.policy.avg_daily_demand.round_dp(1)),
                c.lead,
                c.days(),
                risk * 100.0,
                when(*until, i.tz),
                if *held {
                    " if the delivery expected on the way does not come"
                } else {
                    ""
                },
            ),
            Finding::RunsOut { at, too_late } => {
                let deliveries = match i.next_delivery {
                    Some(d) => format!(" The next delivery is expected around {}.", when(d, i.tz)),
                    None => String::new(),
                };
                format!(
                    "{what} will run out around {}: {on_hand} {unit} left, a delivery takes {} day{}.{deliveries}{}{order}",
                    when(*at, i.tz),
                    c.lead,
                    c.days(),
                    if *too_late {
                        " Too late for a normal order: expedite or move stock."
                    } else {
                        ""
                    }
                )
            }
            Finding::BelowSafetyStock => format!(
                "{what} is below its safety stock: {on_hand} {unit} left, {} kept for a {:.0}% service level.{order}",
                q(i.policy.safety_stock.round_dp(1)),
                i.params.service_level * 100.0
            ),
            Finding::AtReorderPoint => {
                let cover = i
                    .policy
                    .days_of_cover
                    .map(|d| format!("{} days of cover", q(d.round_dp(1))))
                    .unwrap_or_default();
                let transit = if i.position.on_order > Decimal::ZERO {
                    format!(
                        ", about {} {unit} expected on the way",
                        expected(i.position.on_order, unit)
                    )
                } else {
                    String::new()
                };
                format!(
                    "{what} is at its reorder point: {on_hand} {unit} ({cover}{transit}), reorder at {}.{order}",
                    q(i.policy.reorder_point.round_dp(1))
                )
            }
            Finding::Overstock { cover } => format!(
                "{what} is overstocked: {on_hand} {unit} is {} days of sales; hold further orders or move stock.",
                q(cover.round_dp(0))
            ),
            Finding::Phantom {
                hours,
                sales_per_day,
            } => format!(
                "{what}: the records show {on_hand} {unit} but nothing has sold for {hours:.1} hours, where it usually sells {sales_per_day:.0} times a day. Check the shelf and count it."
            ),
        }
    }
}

/// A multiple of a line as a decimal factor (`1.1` × safety stock …).
fn factor(x: f64) -> Decimal {
    Decimal::from_f64(x).unwrap_or(Decimal::ONE)
}

/// The conditions that hold now for one store and SKU: each rule in turn.
pub fn conditions(i: &Inputs<'_>, cfg: &RuleConfig, names: &Names<'_>) -> Vec<Condition> {
    let c = Ctx {
        i,
        cfg,
        names,
        on_hand: i.position.on_hand,
        now: i.position.now,
        lead: i64::from(i.params.lead_time_days),
    };
    let mut out = Vec::new();
    out.extend(negative_stock(&c));
    if c.on_hand <= Decimal::ZERO {
        out.extend(out_of_stock(&c));
        return out;
    }
    if !(i.demand.days >= cfg.min_history_days && i.demand.level > 0.0) {
        return out;
    }
    let runs_out = run_out(&c);
    out.extend(order_risk(&c, runs_out));
    out.extend(projected_stockout(&c, runs_out));
    out.extend(below_safety_stock(&c, runs_out));
    out.extend(below_reorder_point(&c));
    out.extend(overstock(&c));
    out.extend(phantom_stock(&c));
    out
}

/// Records below zero: sales or waste that never came in.
fn negative_stock(c: &Ctx<'_, '_>) -> Option<Condition> {
    (c.on_hand < Decimal::ZERO).then(|| {
        c.condition(
            AlertType::NegativeStock,
            Severity::High,
            Decimal::ZERO,
            false,
            Finding::Negative,
        )
    })
}

/// Nothing on the shelf. While it is out no new warning says anything new; one already open
/// stays open, so that an item running short day after day keeps its warning across restocks.
fn out_of_stock(c: &Ctx<'_, '_>) -> Vec<Condition> {
    let mut out = vec![c.condition(
        AlertType::OutOfStock,
        Severity::Critical,
        Decimal::ZERO,
        true,
        Finding::Out,
    )];
    for t in [AlertType::ProjectedStockout, AlertType::BelowSafetyStock] {
        if c.is_open(t) {
            let threshold = match t {
                AlertType::BelowSafetyStock => c.i.policy.safety_stock,
                _ => c.i.policy.lead_time_demand,
            };
            out.push(c.condition(t, Severity::High, threshold, true, Finding::RanOut));
        }
    }
    out
}

/// When the shelf runs empty soon enough to warn of: counting the deliveries expected on the way,
/// within a day and the evening after it (a day more while the warning is open, so it does not
/// flap) — or, with less than a share of a day's demand left, whatever is expected, unless the
/// next delivery comes first and usually carries the day.
fn run_out(c: &Ctx<'_, '_>) -> Option<DateTime<Utc>> {
    let (i, cfg) = (c.i, c.cfg);
    let held = c.is_open(AlertType::ProjectedStockout);
    let window = c.now
        + Duration::hours(i64::from(cfg.stockout_window_hours))
        + if held {
            Duration::hours(i64::from(cfg.stockout_hold_hours))
        } else {
            Duration::zero()
        };
    let bare_run_out =
        crate::policy::projected_stockout(i.demand, i.shape, c.on_hand_f64(), c.now, i.tz, 3, &[]);
    let delivery_carries_the_day = i.next_delivery.is_some_and(|d| {
        bare_run_out.is_none_or(|r| d <= r) && i.typical_delivery >= i.demand.level
    });
    let low_cover = !delivery_carries_the_day && {
        let share = if held {
            cfg.low_cover_share_held
        } else {
            cfg.low_cover_share
        };
        c.on_hand_f64() < share * i.demand.level
    };
    let too_close_to_call = |at: &DateTime<Utc>| {
        i.next_delivery
            .is_some_and(|d| *at < d && *at >= d - i.delivery_slack)
    };
    let imminent = |at: &DateTime<Utc>| *at <= c.now + Duration::days(1);
    i.policy
        .projected_stockout_at
        .filter(|at| *at <= window)
        .filter(|at| !too_close_to_call(at))
        .filter(|at| i.rhythm_known || imminent(at))
        .or(if low_cover { bare_run_out } else { None })
}

/// Further out, for a slow mover: the chance of an empty shelf before an order placed tomorrow
/// could arrive. A fast mover's projection at the expected pace is reliable within its day, and
/// days ahead its stock depends on the sizes of the orders on their way more than on chance —
/// sizes the store corrects as it goes, unseen here.
fn order_risk(c: &Ctx<'_, '_>, runs_out: Option<DateTime<Utc>>) -> Option<Condition> {
    let (i, cfg) = (c.i, c.cfg);
    let until = c.now + Duration::days(c.lead + 1);
    let slow = i.demand.level / i.demand.units_per_sale.max(1e-9) <= SLOW_MOVER_SALES_PER_DAY;
    if runs_out.is_some() || c.lead <= 0 || !slow {
        return None;
    }
    // once raised, it holds until stock recovers: deliveries merely expected drift into the
    // window as time passes and would end and raise it again and again
    let held = c.is_open(AlertType::ProjectedStockout);
    let expected: &[(DateTime<Utc>, f64)] = if held { &[] } else { i.deliveries };
    let risk = crate::risk::stockout_risk(
        i.demand,
        i.shape,
        c.on_hand_f64(),
        c.now,
        until,
        i.tz,
        expected,
    );
    let line = if held {
        cfg.order_risk * cfg.order_risk_hold_share
    } else {
        cfg.order_risk
    };
    // a held warning judged without a delivery on the way says so
    let without_delivery =
        expected.is_empty() && i.deliveries.iter().any(|(t, _)| *t > c.now && *t < until);
    (risk >= line).then(|| {
        c.condition(
            AlertType::ProjectedStockout,
            Severity::Medium,
            i.policy.lead_time_demand,
            true,
            Finding::OrderRisk {
                risk,
                until,
                held: without_delivery,
            },
        )
    })
}

/// The shelf runs empty within the warning window; too late for a normal order when before a
/// lead time from now.
fn projected_stockout(c: &Ctx<'_, '_>, runs_out: Option<DateTime<Utc>>) -> Option<Condition> {
    let at = runs_out?;
    let too_late = at < c.now + Duration::days(c.lead.max(1));
    Some(c.condition(
        AlertType::ProjectedStockout,
        if too_late {
            Severity::High
        } else {
            Severity::Medium
        },
        c.i.policy.lead_time_demand,
        true,
        Finding::RunsOut { at, too_late },
    ))
}

/// Below safety stock, with a run-out ahead (cleared a margin above it).
fn below_safety_stock(c: &Ctx<'_, '_>, runs_out: Option<DateTime<Utc>>) -> Option<Condition> {
    let ss = c.i.policy.safety_stock;
    let line = if c.is_open(AlertType::BelowSafetyStock) {
        ss * factor(c.cfg.safety_stock_clear)
    } else {
        ss
    };
    (c.on_hand < line && runs_out.is_some()).then(|| {
        c.condition(
            AlertType::BelowSafetyStock,
            Severity::High,
            ss,
            true,
            Finding::BelowSafetyStock,
        )
    })
}

/// The stock position (on hand and on order) at or below the reorder point (cleared a margin
/// above it).
fn below_reorder_point(c: &Ctx<'_, '_>) -> Option<Condition> {
    let rop = c.i.policy.reorder_point;
    let position = c.on_hand + c.i.position.on_order;
    let line = if c.is_open(AlertType::BelowReorderPoint) {
        rop * factor(c.cfg.reorder_point_clear)
    } else {
        rop
    };
    (position <= line).then(|| {
        c.condition(
            AlertType::BelowReorderPoint,
            Severity::Medium,
            rop,
            true,
            Finding::AtReorderPoint,
        )
    })
}

/// More days of cover than `overstock_days`, and more than a case above the order-up-to level.
fn overstock(c: &Ctx<'_, '_>) -> Option<Condition> {
    let over_level = c.i.policy.order_up_to + c.i.params.case_pack;
    let cover = c.i.policy.days_of_cover?;
    (cover.to_f64().unwrap_or(0.0) > c.cfg.overstock_days && c.on_hand > over_level).then(|| {
        c.condition(
            AlertType::Overstock,
            Severity::Low,
            over_level,
            false,
            Finding::Overstock { cover },
        )
    })
}

/// Stock on record and a normally selling item that has sold nothing for far longer than its
/// pace makes likely.
fn phantom_stock(c: &Ctx<'_, '_>) -> Option<Condition> {
    let (i, cfg) = (c.i, c.cfg);
    let sales_per_day = i.demand.level / i.demand.units_per_sale.max(1e-9);
    // a rate worth trusting: enough days of this item and of the store's weekly rhythm, and
    // enough on the shelf (on record) for a few sales
    let trusted =
        i.demand.days >= cfg.phantom_history_days && i.shape.days >= cfg.phantom_history_days;
    let enough = c.on_hand_f64() >= cfg.phantom_min_shelf_sales * i.demand.units_per_sale.max(1.0);
    if !(trusted && enough && sales_per_day >= cfg.phantom_min_sales_per_day) {
        return None;
    }
    let since = i.last_sale_or_restock?;
    // judged at a cautious share of the usual pace: days are busier and quieter than average
    let cautious = Demand {
        level: i.demand.level * cfg.phantom_pace,
        ..*i.demand
    };
    let p = chance_of_no_sale(&cautious, i.shape, since, c.now, i.tz);
    // an item selling n times a day has about n gaps a day: the chance is judged per day, not
    // per look, or the busiest items would cry wolf every afternoon
    let threshold = cfg.phantom_probability / sales_per_day.max(1.0);
    let held = c.is_open(AlertType::SuspectedPhantomStock) && p < threshold * cfg.phantom_hold;
    (p < threshold || held).then(|| {
        c.condition(
            AlertType::SuspectedPhantomStock,
            Severity::High,
            Decimal::ZERO,
            false,
            Finding::Phantom {
                hours: (c.now - since).num_minutes() as f64 / 60.0,
                sales_per_day,
            },
        )
    })
}

/// An alert that is open now.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAlert {
    pub alert_id: i64,
    pub alert_type: AlertType,
    pub severity: Severity,
    pub on_hand: Decimal,
    pub threshold: Decimal,
    pub suggested_order_qty: Decimal,
    pub message: String,
}

/// A change to the alerts of one store and SKU.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Open(Condition),
    Update {
        alert_id: i64,
        condition: Condition,
    },
    Resolve {
        alert_id: i64,
        alert_type: AlertType,
    },
}

/// Compares what is open with what holds now.
pub fn lifecycle(open: &[OpenAlert], now: &[Condition]) -> Vec<Change> {
    let mut out = Vec::new();
    for c in now {
        match open.iter().find(|o| o.alert_type == c.alert_type) {
            None => out.push(Change::Open(c.clone())),
            Some(o) => {
                let changed = o.severity != c.severity
                    || o.on_hand != c.on_hand
                    || o.threshold != c.threshold
                    || o.suggested_order_qty != c.suggested_order_qty;
                if changed {
                    out.push(Change::Update {
                        alert_id: o.alert_id,
                        condition: c.clone(),
                    });
                }
            }
        }
    }
    for o in open {
        if !now.iter().any(|c| c.alert_type == o.alert_type) {
            out.push(Change::Resolve {
                alert_id: o.alert_id,
                alert_type: o.alert_type,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::policy;
    use chrono_tz::Europe::Madrid;

    use crate::t;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[derive(Clone)]
    struct Case {
        params: Params,
        demand: Demand,
        shape: Shape,
        position: Position,
        last: Option<DateTime<Utc>>,
        next: Option<DateTime<Utc>>,
        deliveries: Vec<(DateTime<Utc>, f64)>,
        open: Vec<AlertType>,
    }

    impl Case {
        fn new(on_hand: &str) -> Case {
            Case {
                params: Params {
                    lead_time_days: 2,
                    lead_time_sd_days: 0.0,
                    service_level: 0.95,
                    case_pack: Decimal::from(12),
                },
                demand: Demand {
                    level: 10.0,
                    var: 4.0,
                    days: 20,
                    units_per_sale: 1.0,
                },
                shape: Shape::default(),
                position: Position {
                    on_hand: d(on_hand),
                    on_order: Decimal::ZERO,
                    now: t("2026-11-04T10:00:00Z"),
                },
                last: Some(t("2026-11-04T09:55:00Z")),
                next: None,
                deliveries: Vec::new(),
                open: Vec::new(),
            }
        }
        fn types(&self) -> Vec<AlertType> {
            self.conditions()
                .into_iter()
                .map(|c| c.alert_type)
                .collect()
        }
        fn conditions(&self) -> Vec<Condition> {
            let pol = policy(
                &self.params,
                &self.demand,
                &self.shape,
                &self.position,
                Madrid,
                &self.deliveries,
            );
            let i = Inputs {
                params: &self.params,
                demand: &self.demand,
                shape: &self.shape,
                policy: &pol,
                position: &self.position,
                last_sale_or_restock: self.last,
                next_delivery: self.next,
                delivery_slack: Duration::hours(12),
                typical_delivery: 0.0,
                deliveries: &self.deliveries,
                recent_stockout_days: 3,
                rhythm_known: true,
                open: &self.open,
                tz: Madrid,
            };
            let names = Names {
                sku: "SKU-1",
                product: Some("Milk"),
                unit: "units",
            };
            let mut v = conditions(&i, &RuleConfig::default(), &names);
            v.sort_by_key(|c| c.alert_type);
            v
        }
    }

    #[test]
    fn quantities_on_the_way_are_whole_units_or_grams() {
        assert_eq!(expected(Decimal::new(198_468, 3), "units"), "198");
        assert_eq!(expected(Decimal::new(198_568, 3), "units"), "199");
        assert_eq!(expected(Decimal::new(24, 0), "units"), "24");
        assert_eq!(expected(Decimal::new(123_456, 4), "kg"), "12.346");
        assert_eq!(expected(Decimal::new(2_500, 3), "kg"), "2.5");
    }

    #[test]
    fn healthy_stock_raises_nothing() {
        assert!(Case::new("60").types().is_empty());
    }

    #[test]
    fn each_rule() {
        use AlertType::*;
        // ROP = 20 + 1.645*2*sqrt2 = 24.65; SS = 4.65
        assert_eq!(Case::new("34").types(), Vec::<AlertType>::new());
        assert_eq!(Case::new("24").types(), vec![BelowReorderPoint]);
        assert_eq!(Case::new("18").types(), vec![BelowReorderPoint]);
        assert_eq!(
            Case::new("8").types(),
            vec![BelowReorderPoint, ProjectedStockout]
        );
        let low = Case::new("4");
        assert_eq!(
            low.types(),
            vec![BelowReorderPoint, BelowSafetyStock, ProjectedStockout]
        );
        assert_eq!(Case::new("0").types(), vec![OutOfStock]);
        assert_eq!(Case::new("-2").types(), vec![OutOfStock, NegativeStock]);
        assert_eq!(Case::new("900").types(), vec![Overstock]);
        let mut phantom = Case::new("60");
        phantom.last = Some(t("2026-11-02T08:00:00Z"));
        // not before the store's weekly rhythm is known
        assert!(phantom.types().is_empty());
        phantom.shape.days = 7;
        assert_eq!(phantom.types(), vec![SuspectedPhantomStock]);
    }

    #[test]
    fn an_expected_delivery_before_the_stock_out_silences_the_warnings() {
        use AlertType::*;
        let mut c = Case::new("8");
        c.next = Some(t("2026-11-04T11:00:00Z"));
        c.deliveries = vec![
            (t("2026-11-04T11:00:00Z"), 60.0),
            (t("2026-11-06T11:00:00Z"), 60.0),
        ];
        // below the reorder point still says "order", but nothing says it will run out
        assert_eq!(c.types(), vec![BelowReorderPoint]);
        c.next = Some(t("2026-11-08T11:00:00Z"));
        c.deliveries = vec![(t("2026-11-08T11:00:00Z"), 60.0)];
        assert_eq!(c.types(), vec![BelowReorderPoint, ProjectedStockout]);
        // under half a day of sales left, a delivery on its way is no comfort
        let mut c = Case::new("4");
        c.next = Some(t("2026-11-04T11:00:00Z"));
        c.deliveries = vec![(t("2026-11-04T11:00:00Z"), 60.0)];
        assert_eq!(
            c.types(),
            vec![BelowReorderPoint, BelowSafetyStock, ProjectedStockout]
        );
    }

    #[test]
    fn no_demand_rules_without_history() {
        let mut c = Case::new("1");
        c.demand.days = 1;
        assert!(c.types().is_empty());
        c.position.on_hand = Decimal::ZERO;
        assert_eq!(c.types(), vec![AlertType::OutOfStock]);
    }

    #[test]
    fn phantom_needs_a_normally_selling_item() {
        let mut c = Case::new("60");
        c.last = Some(t("2026-11-03T08:00:00Z"));
        c.demand.level = 0.5; // sells every other day: a day without a sale is normal
        assert!(!c.types().contains(&AlertType::SuspectedPhantomStock));
    }

    #[test]
    fn no_sale_probability_is_poisson_along_the_shape() {
        let demand = Demand {
            level: 24.0,
            var: 0.0,
            days: 10,
            units_per_sale: 1.0,
        };
        let shape = Shape {
            hours: [1.0 / 24.0; 24],
            ..Default::default()
        };
        let since = t("2026-11-04T10:00:00Z");
        // one expected sale per hour: two hours without one has chance e^-2
        let p = chance_of_no_sale(&demand, &shape, since, since + Duration::hours(2), Madrid);
        assert!((p - (-2.0f64).exp()).abs() < 1e-9, "{p}");
        // hours when the store is shut do not count
        let mut hours = [0.0; 24];
        hours[12] = 1.0;
        let shape = Shape {
            hours,
            ..Default::default()
        };
        let night = t("2026-11-04T20:00:00Z");
        let p = chance_of_no_sale(&demand, &shape, night, night + Duration::hours(6), Madrid);
        assert!((p - 1.0).abs() < 1e-12);
    }

    #[test]
    fn lifecycle_opens_updates_and_resolves() {
        let cond = |t: AlertType, on_hand: &str| Condition {
            alert_type: t,
            severity: Severity::Medium,
            on_hand: d(on_hand),
            threshold: d("10"),
            suggested_order_qty: d("12"),
            message: "m".into(),
        };
        let open = vec![OpenAlert {
            alert_id: 7,
            alert_type: AlertType::BelowReorderPoint,
            severity: Severity::Medium,
            on_hand: d("8"),
            threshold: d("10"),
            suggested_order_qty: d("12"),
            message: "m".into(),
        }];
        // the same condition: nothing to do
        assert!(lifecycle(&open, &[cond(AlertType::BelowReorderPoint, "8")]).is_empty());
        // it got worse: updated, and a new kind opens
        let ch = lifecycle(
            &open,
            &[
                cond(AlertType::BelowReorderPoint, "5"),
                cond(AlertType::BelowSafetyStock, "5"),
            ],
        );
        assert_eq!(ch.len(), 2);
        assert!(matches!(ch[0], Change::Update { alert_id: 7, .. }));
        assert!(matches!(&ch[1], Change::Open(c) if c.alert_type == AlertType::BelowSafetyStock));
        // stock recovered: resolved
        assert_eq!(
            lifecycle(&open, &[]),
            vec![Change::Resolve {
                alert_id: 7,
                alert_type: AlertType::BelowReorderPoint
            }]
        );
    }

    #[test]
    fn messages_tell_a_store_manager_what_to_do() {
        let c = Case::new("4");
        let pol = policy(&c.params, &c.demand, &c.shape, &c.position, Madrid, &[]);
        let i = Inputs {
            params: &c.params,
            demand: &c.demand,
            shape: &c.shape,
            policy: &pol,
            position: &c.position,
            last_sale_or_restock: c.last,
            next_delivery: None,
            delivery_slack: Duration::hours(12),
            typical_delivery: 0.0,
            deliveries: &[],
            recent_stockout_days: 3,
            rhythm_known: true,
            open: &[],
            tz: Madrid,
        };
        let names = Names {
            sku: "SKU-000123",
            product: Some("Lakeside Whole Milk 1 l"),
            unit: "units",
        };
        let conds = conditions(&i, &RuleConfig::default(), &names);
        let rop = conds
            .iter()
            .find(|c| c.alert_type == AlertType::BelowReorderPoint)
            .expect("rop");
        assert!(
            rop.message.starts_with(
                "Lakeside Whole Milk 1 l (SKU-000123) is at its reorder point: 4 units"
            ),
            "{}",
            rop.message
        );
        assert!(
            rop.message.contains("Order 36 units (3 cases of 12)."),
            "{}",
            rop.message
        );
        let proj = conds
            .iter()
            .find(|c| c.alert_type == AlertType::ProjectedStockout)
            .expect("projected");
        assert!(
            proj.message.contains("will run out around Wed 04 Nov"),
            "{}",
            proj.message
        );
    }

    #[test]
    fn a_slow_mover_is_warned_of_while_an_order_can_still_come_in_time() {
        use AlertType::*;
        // one a day, a delivery takes four days: with 4 left, more than 4 sell in the next
        // five days with a chance of 56% — order today
        let mut c = Case::new("4");
        c.params.lead_time_days = 4;
        c.params.case_pack = Decimal::from(6);
        c.demand = Demand {
            level: 1.0,
            var: 1.0,
            days: 20,
            units_per_sale: 1.0,
        };
        let conds = c.conditions();
        let warning = conds
            .iter()
            .find(|c| c.alert_type == ProjectedStockout)
            .expect("warned");
        assert_eq!(warning.severity, Severity::Medium);
        assert!(
            warning
                .message
                .contains("may run out unless it is ordered today")
                && warning
                    .message
                    .contains("a 56% chance of an empty shelf by Mon 09 Nov"),
            "{}",
            warning.message
        );
        // with 8 left the chance is 7%: no warning
        let mut plenty = c.clone();
        plenty.position.on_hand = d("8");
        assert!(!plenty.types().contains(&ProjectedStockout));
        // a delivery of 6 on its way tomorrow: no warning either
        let mut coming = c.clone();
        coming.deliveries = vec![(t("2026-11-05T06:00:00Z"), 6.0)];
        assert!(!coming.types().contains(&ProjectedStockout));
        // once raised, it holds until stock recovers: a delivery merely expected does not end it
        coming.open = vec![ProjectedStockout];
        let held = coming.conditions();
        let held = held
            .iter()
            .find(|c| c.alert_type == ProjectedStockout)
            .expect("held");
        assert!(
            held.message
                .contains("if the delivery expected on the way does not come"),
            "{}",
            held.message
        );
        // a fast mover in the same position (30 a day, 120 left, 150 expected before an order
        // could come) is left to the projection, which sees it last four days
        let mut fast = c.clone();
        fast.demand.level = 30.0;
        fast.demand.var = 30.0;
        fast.position.on_hand = d("120");
        assert!(!fast.types().contains(&ProjectedStockout));
        // zero lead time: nothing to order ahead of
        let mut now = c.clone();
        now.params.lead_time_days = 0;
        assert!(!now.types().contains(&ProjectedStockout));
        // no history yet: no demand-based warning
        let mut new = c.clone();
        new.demand.days = 1;
        assert!(!new.types().contains(&ProjectedStockout));
    }
}
