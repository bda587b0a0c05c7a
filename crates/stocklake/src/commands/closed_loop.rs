//! `stocklake evaluate --policy …`: the closed loop.
//!
//! The simulated chain runs day by day; after each day's closing, every store orders by the
//! policy under test, and the orders go back into the simulation (and, for stocklake's policy,
//! into the pipeline as `purchase_order` events). Demand, theft, short deliveries and counts
//! are drawn the same for every policy, so what differs on the shelves is what the ordering
//! did: the share of demand that found stock, the units lost, the stock held, the waste.
//!
//! Only the `stocklake` policy reads gold, so only its chain is landed through bronze, silver
//! and gold (a day's records as one bronze object, the evening's orders as another); the other
//! policies decide from the store's own records or from the truth, which the pipeline cannot
//! change.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::Context;
use chrono::{Datelike, Duration, NaiveDate, Utc};
use indicatif::ProgressBar;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use stocklake_model::queries::proposal_lines;
use stocklake_simulate::{Milli, SimConfig, Simulator, Stats, UNIT};
use stocklake_stock::proposal::{Days, Stock, Supply, propose};
use stocklake_stock::{Demand, Shape};

use super::evaluate::Chain;
use crate::cli::{EvaluateArgs, Policy};
use crate::config::Settings;

/// The first week is learning time for every method: the shelves are judged from day 8.
const JUDGED_FROM_DAY: u32 = 7;

/// What the shelves did under one policy, from day 8 on.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Share of the demand (units) that found stock on the shelf.
    pub availability: f64,
    pub lost_units: f64,
    pub lost_sales_value: Decimal,
    /// Mean stock at closing, in days of the chain's mean demand.
    pub avg_inventory_days: f64,
    /// Mean stock at closing, at cost.
    pub avg_inventory_value: Decimal,
    pub waste_units: f64,
    pub waste_value: Decimal,
    pub orders_per_store_week: f64,
    pub deliveries_per_store_week: f64,
    /// Stock-outs that started on the shelves.
    pub stockout_episodes: u64,
    /// Units lost by kind of product (`perishable`, `weighed`, `other`), and, across those,
    /// while the records showed stock (`phantom`) and on a promotion's days (`promotion`):
    /// where the losses come from.
    pub lost_units_by: std::collections::BTreeMap<&'static str, f64>,
    pub events: u64,
    pub run_seconds: f64,
}

/// The counters a day's outcome is the difference of.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    wanted: Milli,
    lost: Milli,
    lost_value: Decimal,
    wasted: Milli,
    wasted_value: Decimal,
    stockouts: u64,
    orders: u64,
    deliveries: u64,
    lost_phantom: Milli,
    lost_promotion: Milli,
}

impl Counters {
    fn of(s: &Stats) -> Counters {
        Counters {
            wanted: s.units_wanted,
            lost: s.units_lost,
            lost_value: s.lost_value,
            wasted: s.units_wasted,
            wasted_value: s.wasted_value,
            stockouts: s.stockouts,
            orders: s.orders_placed,
            deliveries: s.deliveries,
            lost_phantom: s.units_lost_phantom,
            lost_promotion: s.units_lost_promotion,
        }
    }

    fn add_since(&mut self, before: &Counters, after: &Counters) {
        self.wanted += after.wanted - before.wanted;
        self.lost += after.lost - before.lost;
        self.lost_value += after.lost_value - before.lost_value;
        self.wasted += after.wasted - before.wasted;
        self.wasted_value += after.wasted_value - before.wasted_value;
        self.stockouts += after.stockouts - before.stockouts;
        self.orders += after.orders - before.orders;
        self.deliveries += after.deliveries - before.deliveries;
        self.lost_phantom += after.lost_phantom - before.lost_phantom;
        self.lost_promotion += after.lost_promotion - before.lost_promotion;
    }
}

/// The judged days of one policy's run, added up.
#[derive(Debug, Default)]
struct Tally {
    counters: Counters,
    days: u32,
    stock_days: f64,
    stock_value: Decimal,
    /// [store][key]: units lost before the first judged day.
    lost_before: Vec<Vec<Milli>>,
    lost_by: std::collections::BTreeMap<&'static str, f64>,
}

impl Tally {
    /// The stock at a judged day's closing.
    fn close_day(&mut self, sim: &Simulator) {
        let catalog = sim.catalog();
        let (mut on_hand, mut demand, mut value) = (0.0, 0.0, Decimal::ZERO);
        let weekly_mean = (0..7)
            .map(stocklake_simulate::store::weekday_traffic)
            .sum::<f64>()
            / 7.0;
        for store in 0..catalog.stores.len() {
            for shelf in sim.shelves(store) {
                let q = shelf.on_hand.max(0);
                on_hand += q as f64;
                demand += shelf.mean_demand * weekly_mean;
                value += Decimal::new(q, 3) * catalog.products[shelf.product as usize].unit_cost;
            }
        }
        if demand > 0.0 {
            self.stock_days += on_hand / demand;
        }
        self.stock_value += value;
        self.days += 1;
    }

    /// Each key's units lost so far: before the judging starts, the base; at the end, the
    /// losses of the judged days by kind of product.
    fn lost_by_kind(&mut self, sim: &Simulator, at_end: bool) {
        let catalog = sim.catalog();
        for store in 0..catalog.stores.len() {
            if !at_end {
                self.lost_before
                    .push(sim.shelves(store).map(|s| s.lost).collect());
                continue;
            }
            for (i, shelf) in sim.shelves(store).enumerate() {
                let p = &catalog.products[shelf.product as usize];
                let base = self
                    .lost_before
                    .get(store)
                    .and_then(|v| v.get(i))
                    .copied()
                    .unwrap_or(0);
                let kind = if p.shelf_life_days.is_some() {
                    "perishable"
                } else if p.weighed {
                    "weighed"
                } else {
                    "other"
                };
                *self.lost_by.entry(kind).or_default() += (shelf.lost - base) as f64 / UNIT as f64;
            }
        }
        self.lost_by
            .insert("phantom", self.counters.lost_phantom as f64 / UNIT as f64);
        self.lost_by.insert(
            "promotion",
            self.counters.lost_promotion as f64 / UNIT as f64,
        );
    }

    fn outcome(&self, stores: usize, events: u64, seconds: f64) -> Outcome {
        let c = &self.counters;
        let units = |m: Milli| m as f64 / UNIT as f64;
        let days = f64::from(self.days.max(1));
        let store_weeks = stores.max(1) as f64 * days / 7.0;
        Outcome {
            availability: if c.wanted > 0 {
                1.0 - c.lost as f64 / c.wanted as f64
            } else {
                1.0
            },
            lost_units: units(c.lost),
            lost_sales_value: c.lost_value.round_dp(2),
            avg_inventory_days: self.stock_days / days,
            avg_inventory_value: (self.stock_value / Decimal::from(self.days.max(1))).round_dp(2),
            waste_units: units(c.wasted),
            waste_value: c.wasted_value.round_dp(2),
            orders_per_store_week: c.orders as f64 / store_weeks,
            deliveries_per_store_week: c.deliveries as f64 / store_weeks,
            stockout_episodes: c.stockouts,
            lost_units_by: self.lost_by.clone(),
            events,
            run_seconds: seconds,
        }
    }
}

/// Each store's products' daily sales in the first week, as its tills saw them: the static
/// rules' levels.
#[derive(Debug, Default)]
struct FirstWeek {
    /// [store][key]: (sum, sum of squares, days) of daily sales, in thousandths.
    sales: Vec<Vec<(f64, f64, u32)>>,
}

impl FirstWeek {
    fn observe(&mut self, sim: &Simulator) {
        let stores = sim.catalog().stores.len();
        self.sales.resize_with(stores, Vec::new);
        for (store, keys) in self.sales.iter_mut().enumerate() {
            for (i, shelf) in sim.shelves(store).enumerate() {
                if keys.len() <= i {
                    keys.push((0.0, 0.0, 0));
                }
                let x = shelf.sold_today as f64;
                keys[i].0 += x;
                keys[i].1 += x * x;
                keys[i].2 += 1;
            }
        }
    }

    /// Mean and deviation of a key's daily sales.
    fn level(&self, store: usize, key: usize) -> (f64, f64) {
        let Some(&(s, ss, n)) = self.sales.get(store).and_then(|k| k.get(key)) else {
            return (0.0, 0.0);
        };
        let n = f64::from(n.max(1));
        let mean = s / n;
        (mean, (ss / n - mean * mean).max(0.0).sqrt())
    }
}

/// Whole cases of `need` (thousandths), at least the minimum order; zero for no need.
fn in_cases(p: &stocklake_simulate::Product, need: f64) -> Milli {
    if need <= 0.0 {
        return 0;
    }
    let case = Milli::from(p.case_pack.max(1)) * UNIT;
    let least = p
        .min_order_qty
        .map_or(1, |m| Milli::from(m.div_ceil(p.case_pack.max(1))));
    ((need / case as f64).ceil() as Milli).max(least).max(1) * case
}

/// The days from an order day to the next (1 to 7) and the lead time, of a product.
fn cycle(sim: &Simulator, p: &stocklake_simulate::Product, date: NaiveDate) -> Option<(f64, f64)> {
    let supplier = sim.catalog().suppliers.get(p.supplier as usize)?;
    let weekday = date.weekday().num_days_from_monday();
    supplier.orders_on(weekday).then(|| {
        (
            f64::from(supplier.review_days(weekday)),
            f64::from(p.lead_time_days.max(1)),
        )
    })
}

/// The static rules: `static-ss` orders up to the reorder point plus a review period's demand
/// when the recorded position falls to the reorder point `d·L + z·σ·√L`; `min-max` orders up to
/// `max = min + a week's demand` when it falls under `min = d·(L + R)`. `d` and `σ` are the first
/// week's daily sales, fixed from then on.
fn static_rule(
    sim: &Simulator,
    week: &FirstWeek,
    policy: Policy,
    store: usize,
) -> Vec<(u32, Milli)> {
    let (_, date) = sim.last_day();
    let catalog = sim.catalog();
    let mut lines = Vec::new();
    for (i, shelf) in sim.shelves(store).enumerate() {
        let p = &catalog.products[shelf.product as usize];
        let Some((review, lead)) = cycle(sim, p, date) else {
            continue;
        };
        let (d, sd) = week.level(store, i);
        let position =
            (shelf.recorded + shelf.on_order.iter().map(|(_, q)| q).sum::<Milli>()) as f64;
        let (trigger, up_to) = match policy {
            Policy::MinMax => {
                let min = d * (lead + review);
                (min, min + 7.0 * d)
            }
            _ => {
                let z = stocklake_stock::policy::inverse_normal(p.service_level.clamp(0.5, 0.9999));
                let rop = d * lead + z * sd * lead.sqrt();
                (rop, rop + d * review)
            }
        };
        if d > 0.0 && position <= trigger {
            let q = in_cases(p, up_to - position);
            if q > 0 {
                lines.push((shelf.product, q));
            }
        }
    }
    lines
}

/// The ordering arithmetic of stocklake's proposals, fed the truth: the shelf's real stock,
/// the deliveries really on their way, and the simulator's expected demand (promotions known
/// by then included).
fn oracle(sim: &Simulator, store: usize) -> Vec<(u32, Milli)> {
    let (day, date) = sim.last_day();
    let catalog = sim.catalog();
    let st = &catalog.stores[store];
    let tz = st.timezone;
    let at = |d: NaiveDate, h: u32| {
        stocklake_stock::local_instant(d.and_hms_opt(h, 0, 0).unwrap_or_default(), tz)
    };
    let now = at(date, 23);
    let weekdays: Vec<f64> = (0..7)
        .map(stocklake_simulate::store::weekday_traffic)
        .collect();
    let mean_traffic = weekdays.iter().sum::<f64>() / 7.0;
    let mut shape = Shape::default();
    for (i, w) in weekdays.iter().enumerate() {
        shape.dow[i] = w / mean_traffic;
    }
    let mut lines = Vec::new();
    for shelf in sim.shelves(store) {
        let p = &catalog.products[shelf.product as usize];
        let Some(supplier) = catalog.suppliers.get(p.supplier as usize) else {
            continue;
        };
        let units = |m: f64| m / UNIT as f64;
        let level = units(shelf.mean_demand * mean_traffic);
        // picks of a Poisson count, each of a few units (or a fraction of a kilogram), and the
        // day's traffic drawn 7% either way
        let var = level * if p.weighed { 0.75 } else { 2.0 } + (0.07 * level).powi(2);
        let demand = Demand {
            level,
            var,
            days: 28,
            units_per_sale: 1.0,
        };
        let days: Vec<(NaiveDate, f64)> = (0..21)
            .map(|i| {
                let d = date + Duration::days(i);
                (d, units(sim.expected_demand(&shelf, d)))
            })
            .collect();
        let on_order: Vec<(chrono::DateTime<Utc>, Decimal)> = shelf
            .on_order
            .iter()
            .map(|&(arrives, q)| {
                let d = date + Duration::days(i64::from(arrives) - i64::from(day));
                (at(d, 6), Decimal::new(q, 3))
            })
            .collect();
        let supply = Supply {
            supplier_id: Some(&supplier.supplier_id),
            order_days: Days(supplier.order_days),
            delivery_days: Days(supplier.delivery_days()),
            lead_time_days: f64::from(p.lead_time_days.max(1)),
            // one order in sixteen a day late
            lead_time_sd_days: (1.0f64 / 16.0 * 15.0 / 16.0).sqrt(),
            case_pack: Decimal::from(p.case_pack.max(1)),
            min_order_qty: p.min_order_qty.map(Decimal::from),
            shelf_life_days: p.shelf_life_days,
            service_level: p.service_level,
        };
        let stock = Stock {
            now,
            tz,
            on_hand: Decimal::new(shelf.on_hand.max(0), 3),
            on_order: &on_order,
            demand: &demand,
            shape: &shape,
            days: &days,
            unit: if p.weighed { "kg" } else { "units" },
        };
        if let Some(proposal) = propose(&supply, &stock).filter(|x| x.order_date == date) {
            let q = (proposal.quantity * Decimal::from(UNIT))
                .to_i64()
                .unwrap_or(0);
            if q > 0 {
                lines.push((shelf.product, q));
            }
        }
    }
    lines
}

/// What stocklake proposes in gold for today, as a store that follows it orders: the
/// proposals for today's order day; for a product stocklake has no proposal for yet (too little
/// history), the store's own rule.
async fn stocklake_orders(
    sim: &Simulator,
    chain: &Chain,
) -> anyhow::Result<Vec<Vec<(u32, Milli)>>> {
    let (_, date) = sim.last_day();
    let catalog = sim.catalog();
    let store_of: HashMap<&str, usize> = catalog
        .stores
        .iter()
        .enumerate()
        .map(|(i, s)| (s.store_id.as_str(), i))
        .collect();
    let product_of: HashMap<&str, u32> = catalog
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| (p.sku.as_str(), i as u32))
        .collect();
    let mut orders = vec![Vec::new(); catalog.stores.len()];
    let mut known = vec![std::collections::HashSet::new(); catalog.stores.len()];
    for line in proposal_lines(&chain.gold).await? {
        let (Some(&s), Some(&p)) = (
            store_of.get(line.store_id.as_str()),
            product_of.get(line.sku.as_str()),
        ) else {
            continue;
        };
        known[s].insert(p);
        let q = (line.quantity * Decimal::from(UNIT)).to_i64().unwrap_or(0);
        if line.order_date == date && q > 0 {
            orders[s].push((p, q));
        }
    }
    for (s, lines) in orders.iter_mut().enumerate() {
        lines.extend(
            sim.store_rule(s)
                .into_iter()
                .filter(|(p, _)| !known[s].contains(p)),
        );
    }
    Ok(orders)
}

/// One policy's run: the chain simulated day by day, the stores ordering by `policy` after each
/// closing.
async fn run_policy(
    settings: &Settings,
    args: &EvaluateArgs,
    policy: Policy,
    dir: &std::path::Path,
    bar: &ProgressBar,
) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    let mut sim = Simulator::new(SimConfig {
        seed: args.seed,
        stores: args.stores,
        skus: args.skus,
        days: args.days,
        truth: false,
        purchase_orders: true,
        external_orders: true,
        ..SimConfig::default()
    });
    // the service level a store that orders by stocklake's proposals sets; the static rules
    // keep the catalog's, as they are
    if let Some(level) = args
        .service_level
        .filter(|_| matches!(policy, Policy::Stocklake | Policy::Oracle))
    {
        sim.set_service_level(level);
    }
    let mut chain = match policy {
        Policy::Stocklake => Some(Chain::open(settings, dir, &sim).await?),
        _ => None,
    };
    let stores = sim.catalog().stores.len();
    let (mut tally, mut week) = (Tally::default(), FirstWeek::default());
    bar.set_length(u64::from(args.days));
    bar.set_position(0);
    bar.set_prefix(policy.as_str());
    loop {
        let before = Counters::of(sim.stats());
        let Some(day) = sim.next_day() else { break };
        if let Some(chain) = chain.as_mut() {
            chain.land(&day.records).await?;
        }
        if day.day < JUDGED_FROM_DAY {
            week.observe(&sim);
        }
        if day.day + 1 == JUDGED_FROM_DAY {
            tally.lost_by_kind(&sim, false);
        }
        let orders: Vec<Vec<(u32, Milli)>> = match (policy, chain.as_ref()) {
            (Policy::Stocklake, Some(chain)) => stocklake_orders(&sim, chain).await?,
            (Policy::Oracle, _) => (0..stores).map(|s| oracle(&sim, s)).collect(),
            (Policy::StaticSs | Policy::MinMax, _) if day.day >= JUDGED_FROM_DAY - 1 => (0..stores)
                .map(|s| static_rule(&sim, &week, policy, s))
                .collect(),
            _ => (0..stores).map(|s| sim.store_rule(s)).collect(),
        };
        let (records, _) = sim.place_orders(&orders);
        if let Some(chain) = chain.as_mut() {
            chain.land(&records).await?;
        }
        if day.day >= JUDGED_FROM_DAY {
            tally
                .counters
                .add_since(&before, &Counters::of(sim.stats()));
            tally.close_day(&sim);
        }
        bar.inc(1);
        bar.set_message(format!("{} events", sim.stats().events()));
    }
    tally.lost_by_kind(&sim, true);
    Ok(tally.outcome(
        stores,
        sim.stats().events(),
        started.elapsed().as_secs_f64(),
    ))
}

/// Runs every policy asked for, in `dir`; the outcomes by policy.
pub async fn closed_loop(
    settings: &Settings,
    args: &EvaluateArgs,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<(Policy, Outcome)>> {
    let mut policies = args.policy.clone();
    policies.sort();
    policies.dedup();
    let bar = super::progress_bar(
        u64::from(args.days),
        "{prefix:>9}",
        "day {pos}/{len} {msg} ({elapsed})",
    );
    let mut out = Vec::new();
    for policy in policies {
        let sub = dir.join(policy.as_str());
        std::fs::create_dir_all(&sub).with_context(|| format!("creating {}", sub.display()))?;
        let outcome = run_policy(settings, args, policy, &sub, &bar).await?;
        let line = format!(
            "{:>9}: {:.2}% available, {:.0} units lost, {:.2} days of stock ({:.0} s)",
            policy.as_str(),
            outcome.availability * 100.0,
            outcome.lost_units,
            outcome.avg_inventory_days,
            outcome.run_seconds
        );
        if bar.is_hidden() {
            tracing::info!("{line}");
        } else {
            bar.println(line);
        }
        out.push((policy, outcome));
    }
    bar.finish_and_clear();
    Ok(out)
}

/// The outcomes as one JSON object: `{"policies": {"stocklake": {…}, …}, …}`.
pub fn to_json(args: &EvaluateArgs, outcomes: &[(Policy, Outcome)]) -> serde_json::Value {
    let policies: serde_json::Map<String, serde_json::Value> = outcomes
        .iter()
        .map(|(p, o)| {
            (
                p.as_str().to_string(),
                serde_json::to_value(o).unwrap_or_default(),
            )
        })
        .collect();
    serde_json::json!({
        "stores": args.stores,
        "skus": args.skus,
        "days": args.days,
        "seed": args.seed,
        "judged_from_day": JUDGED_FROM_DAY + 1,
        "service_level": args.service_level,
        "policies": policies,
        "goal": goal(outcomes).map(|g| g.json()),
    })
}

/// stocklake's policy against the best static rule (fewest units lost) and the oracle.
struct Goal {
    best: Policy,
    reduction: f64,
    gap_closed: Option<f64>,
    inventory_ok: bool,
    waste_ok: bool,
}

impl Goal {
    fn met(&self) -> bool {
        (self.reduction >= 0.5 || self.gap_closed.is_some_and(|g| g >= 0.7))
            && self.inventory_ok
            && self.waste_ok
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "best_rule": self.best.as_str(),
            "lost_units_reduction": self.reduction,
            "oracle_gap_closed": self.gap_closed,
            "inventory_not_higher": self.inventory_ok,
            "waste_not_higher": self.waste_ok,
            "met": self.met(),
        })
    }
}

fn goal(outcomes: &[(Policy, Outcome)]) -> Option<Goal> {
    let of = |p: Policy| outcomes.iter().find(|(x, _)| *x == p).map(|(_, o)| o);
    let ours = of(Policy::Stocklake)?;
    let (best, b) = outcomes
        .iter()
        .filter(|(p, _)| matches!(p, Policy::Store | Policy::StaticSs | Policy::MinMax))
        .min_by(|a, b| a.1.lost_units.total_cmp(&b.1.lost_units))?;
    let reduction = if b.lost_units > 0.0 {
        1.0 - ours.lost_units / b.lost_units
    } else {
        0.0
    };
    let gap_closed = of(Policy::Oracle)
        .map(|o| b.lost_units - o.lost_units)
        .filter(|gap| *gap > 0.0)
        .map(|gap| (b.lost_units - ours.lost_units) / gap);
    Some(Goal {
        best: *best,
        reduction,
        gap_closed,
        inventory_ok: ours.avg_inventory_days <= b.avg_inventory_days,
        waste_ok: ours.waste_units <= b.waste_units,
    })
}

/// The outcomes, in markdown.
pub fn render(args: &EvaluateArgs, outcomes: &[(Policy, Outcome)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Closed loop: {} stores × {} SKUs × {} days (seed {}), judged from day {}; service level {}\n",
        args.stores,
        args.skus,
        args.days,
        args.seed,
        JUDGED_FROM_DAY + 1,
        args.service_level
            .map_or_else(|| "from the catalog".to_string(), |l| l.to_string())
    );
    let _ = writeln!(
        out,
        "| policy | availability | lost units | lost sales | stock (days) | stock (cost) | waste units | waste (cost) | orders / store-week | deliveries / store-week | stock-outs | run |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (p, o) in outcomes {
        let _ = writeln!(
            out,
            "| {} | {:.2}% | {:.0} | {} | {:.2} | {} | {:.0} | {} | {:.1} | {:.1} | {} | {:.0} s |",
            p.as_str(),
            o.availability * 100.0,
            o.lost_units,
            o.lost_sales_value,
            o.avg_inventory_days,
            o.avg_inventory_value,
            o.waste_units,
            o.waste_value,
            o.orders_per_store_week,
            o.deliveries_per_store_week,
            o.stockout_episodes,
            o.run_seconds
        );
    }
    let _ = writeln!(
        out,
        "\nUnits lost by kind of product; across those, while the records showed stock (phantom) and on the days of a promotion the stores had not been told of (promotion):\n"
    );
    for (p, o) in outcomes {
        let parts: Vec<String> = o
            .lost_units_by
            .iter()
            .map(|(k, v)| format!("{k} {v:.0}"))
            .collect();
        let _ = writeln!(out, "- {}: {}", p.as_str(), parts.join(", "));
    }
    if let Some(g) = goal(outcomes) {
        let _ = writeln!(
            out,
            "\nstocklake against the best rule (`{}`): {}{}; stock {} and waste {} than it. Goal (≥ 50% fewer, or ≥ 70% of the gap to the oracle, at no more stock and waste): {}.",
            g.best.as_str(),
            if g.reduction >= 0.0 {
                format!("{:.1}% fewer units lost", g.reduction * 100.0)
            } else {
                format!("{:.1}% more units lost", -g.reduction * 100.0)
            },
            g.gap_closed
                .map(|x| format!(", {:.1}% of the gap to the oracle closed", x * 100.0))
                .unwrap_or_default(),
            if g.inventory_ok {
                "no higher"
            } else {
                "higher"
            },
            if g.waste_ok { "no higher" } else { "higher" },
            if g.met() { "met" } else { "not met" }
        );
    }
    out
}
