//! The model's core: the rules of one store × SKU as methods of [`KeyState`] over plain data —
//! apply a line (a movement or a count), record it in the day's snapshot, close a day,
//! evaluate — with no database and no I/O. The engine ([`crate::engine`]) is the driver: it
//! fetches what a rule needs from gold (what moved after a count that arrives late), calls
//! these, and writes what they return.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use stocklake_event::EventType;
use stocklake_stock::{
    AlertType, Change, Condition, Inputs, Names, OpenAlert, Params, Policy, Position, RuleConfig,
    Shape, Stock, Supply, conditions, lifecycle, policy, propose,
};

use crate::rows::{AlertRow, DailyRow, LevelRow, OutboxRow, ProductRow, ProposalRow};
use crate::state::{KeyState, OpenState, ProductState, level_print};

/// One line as its key sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyLine {
    pub event_type: EventType,
    pub time: DateTime<Utc>,
    pub quantity: Decimal,
}

/// What a key's store says of time: its daily rhythm, its zone and its current local day.
#[derive(Debug, Clone, Copy)]
pub struct Shelf<'a> {
    pub shape: &'a Shape,
    pub tz: Tz,
    pub today: Option<NaiveDate>,
}

/// What applying a line did to the key's stock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Applied {
    /// The change to stock on hand recorded for the line (a movement's own, even when an
    /// earlier-dated count already holds it; a count's, what it corrected).
    pub delta: Decimal,
    /// Stock on hand before the line.
    pub before: Decimal,
    /// The key had no stock level before the line.
    pub new_key: bool,
}

/// The keys a daily row is filed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayKeys {
    pub date_key: i32,
    pub store_key: i32,
    pub product_key: i32,
}

impl DayKeys {
    /// An empty row of the day, with the stock the key held as it began.
    fn row(self, on_hand: Decimal, was_out: bool) -> DailyRow {
        DailyRow {
            date_key: self.date_key,
            store_key: self.store_key,
            product_key: self.product_key,
            closing_on_hand: on_hand,
            was_out_of_stock: was_out,
            ..DailyRow::default()
        }
    }
}

/// What closing a day learns: the day's weight in the week, and how fast the key forgets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayClose {
    pub day: NaiveDate,
    /// The store sold anything at all that day (a day it sold nothing was a closed day or an
    /// outage: nothing is learnt from it).
    pub trading: bool,
    /// The weekday's share of a week's demand, relative to the mean day.
    pub dow: f64,
    /// The smoothing weight of one day of demand.
    pub alpha: f64,
}

/// What a look at a key needs besides the key.
#[derive(Debug, Clone, Copy)]
pub struct Look<'a> {
    /// The store's clock.
    pub now: DateTime<Utc>,
    pub tz: Tz,
    pub shape: &'a Shape,
    pub product: &'a ProductState,
    pub store_key: i32,
    pub lead_time_days: u32,
    /// The lead time's mean and deviation in days, once learnt from orders.
    pub learnt_lead: Option<(f64, f64)>,
    pub service_level: f64,
    /// The store sends its purchase orders: the key's open order lines are what is on order.
    pub orders_feed: bool,
    /// Who delivers the product and on which days, for the order proposal.
    pub supply: &'a Supply<'a>,
    pub rules: &'a RuleConfig,
    /// How long after a look a key time alone can change is looked at again.
    pub evaluate_every: Duration,
    /// The key moved in this batch: its level is written whatever changed.
    pub moved: bool,
}

/// How an alert changed in a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened(AlertType),
    Updated { severity_changed: bool },
    Resolved(AlertType),
}

impl Transition {
    /// The change a subscriber is told of (`None`: a figure moved, the alert did not).
    pub fn change(self) -> Option<&'static str> {
        match self {
            Transition::Opened(_) => Some("opened"),
            Transition::Updated {
                severity_changed: true,
            } => Some("updated"),
            Transition::Updated { .. } => None,
            Transition::Resolved(_) => Some("resolved"),
        }
    }
}

/// What a look at a key changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Looked {
    pub alerts: Vec<(AlertRow, Transition)>,
    /// The stock level, when it is to be written (it moved, or a figure changed).
    pub level: Option<LevelRow>,
    /// The order proposal, when it is to be written (it changed).
    pub proposal: Option<ProposalRow>,
    /// When the key was due for its next look, and when it is now.
    pub was_due: Option<DateTime<Utc>>,
    pub due: Option<DateTime<Utc>>,
}

/// What is on its way to a key, as the policy and the alert rules see it.
struct Coming {
    /// The next delivery.
    next: Option<DateTime<Utc>>,
    /// How uncertain its time is.
    slack: Duration,
    /// The usual (or next) delivery's size.
    typical: f64,
    /// Whether what comes is known (orders, or a receipt rhythm) at all.
    known: bool,
    /// Deliveries the stock projection counts.
    for_policy: Vec<(DateTime<Utc>, f64)>,
    /// Deliveries the alert rules count.
    for_alerts: Vec<(DateTime<Utc>, f64)>,
}

pub fn decimal_f64(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

impl KeyState {
    /// Whether a count of `q` at `t` replaces the count on record: the later one wins, and at
    /// the same time the larger.
    pub fn count_supersedes(&self, t: DateTime<Utc>, q: Decimal) -> bool {
        match self.last_count_at {
            None => true,
            Some(c) => t > c || (t == c && Some(q) > self.last_count_qty),
        }
    }

    /// Whether the key moved after `t` in a batch before this one (a count at `t` arriving now
    /// must add what gold holds of those movements).
    pub fn moved_after(&self, t: DateTime<Utc>) -> bool {
        self.last_movement_at.is_some_and(|m| m > t)
    }

    /// Applies a line, whatever the order lines arrive in (docs/contract.md §2): a movement
    /// moves stock unless a later count already holds it; a count that supersedes the one on
    /// record sets stock to its quantity and `after_count`, what moved after it. Notes the
    /// key's times, its delivery rhythm (`lead_days` for a receipt) and its shelf running empty
    /// and filling again.
    pub fn apply(
        &mut self,
        line: &KeyLine,
        after_count: Decimal,
        new_key: bool,
        lead_days: f64,
        shelf: &Shelf<'_>,
    ) -> Applied {
        let before = self.on_hand;
        let (t, q) = (line.time, line.quantity);
        let delta = match line.event_type.stock_delta(q) {
            Some(delta) => {
                if self.last_count_at.is_none_or(|c| t > c) {
                    self.on_hand += delta;
                }
                delta
            }
            None if line.event_type == EventType::StockCount && self.count_supersedes(t, q) => {
                self.on_hand = q + after_count;
                self.last_count_at = Some(t);
                self.last_count_qty = Some(q);
                self.on_hand - before
            }
            None => Decimal::ZERO,
        };
        self.observe(line, before, lead_days);
        self.track_shelf(t, before, new_key, shelf);
        Applied {
            delta,
            before,
            new_key,
        }
    }

    fn observe(&mut self, line: &KeyLine, before: Decimal, lead_days: f64) {
        let t = line.time;
        self.last_movement_at = self.last_movement_at.max(Some(t));
        match line.event_type {
            EventType::Sale => self.last_sale_at = self.last_sale_at.max(Some(t)),
            EventType::Receipt => self.replenishment.observe_delivery(
                t,
                line.quantity,
                decimal_f64(before),
                self.demand.level,
                lead_days,
            ),
            _ => {}
        }
        if before <= Decimal::ZERO && self.on_hand > Decimal::ZERO {
            self.in_stock_since = Some(t);
        }
    }

    /// Time out of stock, as a share of the day's usual sales: from when the records showed
    /// an empty shelf to when it filled again.
    fn track_shelf(&mut self, t: DateTime<Utc>, before: Decimal, new_key: bool, shelf: &Shelf<'_>) {
        // a key seen for the first time was not "out" before it existed
        let was_out = !new_key && before <= Decimal::ZERO;
        let is_out = self.on_hand <= Decimal::ZERO;
        if !was_out && is_out {
            self.out_since = Some(t);
        } else if was_out
            && !is_out
            && let (Some(since), Some(day)) = (self.out_since.take(), shelf.today)
        {
            let share = out_share(shelf.shape, shelf.tz, since, t, day);
            if share > 0.0 {
                if let Some(row) = self.today.as_mut() {
                    row.out_of_stock_share = (row.out_of_stock_share + share).min(1.0);
                } else {
                    self.pending_out_share += share;
                }
            }
        }
    }

    /// Records a line of the store's current day in the key's row of the daily snapshot.
    pub fn record_today(&mut self, line: &KeyLine, applied: &Applied, keys: DayKeys) {
        let on_hand = self.on_hand;
        let last_count_at = self.last_count_at;
        let pending_share = std::mem::take(&mut self.pending_out_share);
        let was_out = !applied.new_key && applied.before <= Decimal::ZERO;
        let row = self
            .today
            .get_or_insert_with(|| Box::new(keys.row(applied.before, was_out)));
        row.out_of_stock_share = (row.out_of_stock_share + pending_share).min(1.0);
        row.product_key = keys.product_key;
        apply_to_row(
            row,
            line.event_type,
            line.time,
            line.quantity,
            applied.delta,
        );
        if line.event_type == EventType::StockCount
            && last_count_at == Some(line.time)
            && row.count_time == Some(line.time)
        {
            row.movement_after_count = on_hand - line.quantity;
        }
        row.closing_on_hand = on_hand;
        row.was_out_of_stock |= on_hand <= Decimal::ZERO;
    }

    /// Closes a day: the key's row of the snapshot (the day's, or one carried from the stock
    /// on hand when the key did not move), the rest of the day counted out of stock when the
    /// shelf is still empty, the day into the stock-out history, and demand learnt when the
    /// store traded.
    pub fn close_day(&mut self, keys: DayKeys, close: &DayClose, shelf: &Shelf<'_>) -> DailyRow {
        let mut row = match self.today.take() {
            Some(r) if r.date_key == keys.date_key => *r,
            _ => keys.row(self.on_hand, self.on_hand <= Decimal::ZERO),
        };
        row.out_of_stock_share =
            (row.out_of_stock_share + std::mem::take(&mut self.pending_out_share)).min(1.0);
        if let Some(since) = self.out_since {
            // still empty at closing: the rest of the day counts too
            let end = day_end_utc(close.day, shelf.tz);
            row.out_of_stock_share = (row.out_of_stock_share
                + out_share(shelf.shape, shelf.tz, since, end, close.day))
            .min(1.0);
        }
        self.stockout_days = (self.stockout_days << 1) & 0x3fff
            | u32::from(row.out_of_stock_share > 0.0 || row.closing_on_hand <= Decimal::ZERO);
        if close.trading {
            self.demand.observe_partial(
                decimal_f64(row.units_sold),
                row.sales_count.max(0) as u32,
                close.dow,
                row.out_of_stock_share,
                close.alpha,
            );
        }
        row
    }

    /// Looks at the key now: its replenishment figures, the alerts that hold (warnings once
    /// confirmed), what opens, changes and resolves (new alerts numbered from `next_alert_id`),
    /// its stock level, and when it is next due.
    pub fn evaluate(&mut self, look: &Look<'_>, next_alert_id: &mut i64) -> Looked {
        let (pol, conds) = self.judge(look);
        let open_types: Vec<AlertType> = self.alerts.iter().map(|a| a.alert.alert_type).collect();
        let confirm = Duration::minutes(i64::from(look.rules.warning_confirm_minutes));
        let conds = self.confirm(conds, look.now, confirm, &open_types);
        let alerts = self.settle(conds, look, next_alert_id);
        let has_history =
            self.demand.days >= look.rules.min_history_days && self.demand.level > 0.0;
        let level = self.level_row(look, &pol, has_history);
        let print = level_print(&level);
        let level = (look.moved || self.level_print != Some(print)).then(|| {
            self.level_print = Some(print);
            level
        });
        let proposal = self.proposal(look, has_history);
        let due = self
            .timed(look.rules.min_history_days)
            .then(|| look.now + look.evaluate_every);
        let was_due = std::mem::replace(&mut self.due, due);
        Looked {
            alerts,
            level,
            proposal,
            was_due,
            due,
        }
    }

    /// The order proposal for the next order day, when it changed since the last one written
    /// (none for a key without demand history).
    fn proposal(&mut self, look: &Look<'_>, has_history: bool) -> Option<ProposalRow> {
        if !has_history {
            return None;
        }
        let inferred;
        let on_order: &[(DateTime<Utc>, Decimal)] = if look.orders_feed {
            &self.orders
        } else {
            inferred = [(self.expected_delivery_at.unwrap_or(look.now), self.on_order)];
            if self.on_order > Decimal::ZERO {
                &inferred
            } else {
                &[]
            }
        };
        // while stocklake suspects the records show stock the shelf has not got, it orders as
        // for an empty shelf: an order in vain costs a little stock, none costs the sales
        let phantom = self
            .alerts
            .iter()
            .any(|a| a.alert.alert_type == AlertType::SuspectedPhantomStock);
        let stock = Stock {
            now: look.now,
            tz: look.tz,
            on_hand: if phantom { Decimal::ZERO } else { self.on_hand },
            on_order,
            demand: &self.demand,
            shape: look.shape,
            days: &[],
            unit: look.product.unit(),
        };
        let mut p = propose(look.supply, &stock)?;
        if phantom {
            p.reason = format!(
                "{} The shelf is taken as empty: the records show {} but nothing has sold (suspected phantom stock).",
                p.reason,
                self.on_hand.normalize()
            );
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(
            &(p.order_date, p.expected_delivery, p.quantity, &p.reason),
            &mut h,
        );
        let print = std::hash::Hasher::finish(&h);
        if self.proposal_print == Some(print) {
            return None;
        }
        self.proposal_print = Some(print);
        Some(ProposalRow {
            store_key: look.store_key,
            product_key: look.product.row.product_key,
            supplier_id: look.supply.supplier_id.map(str::to_string),
            order_date: p.order_date,
            expected_delivery: p.expected_delivery,
            quantity: p.quantity,
            cases: p.cases,
            on_hand: self.on_hand,
            on_order: p.on_order,
            reason: p.reason,
            created_at: look.now,
        })
    }

    /// The key's replenishment figures and the alert conditions that hold now.
    fn judge(&mut self, look: &Look<'_>) -> (Policy, Vec<Condition>) {
        let now = look.now;
        let lead = look.lead_time_days;
        let params = Params {
            lead_time_days: lead,
            lead_time_sd_days: look.learnt_lead.map_or(0.0, |l| l.1),
            service_level: look.service_level,
            case_pack: look.product.case_pack(),
        };
        let coming = if look.orders_feed {
            self.ordered(look)
        } else {
            self.inferred(now, lead)
        };
        let position = Position {
            on_hand: self.on_hand,
            on_order: self.on_order,
            now,
        };
        let pol = policy(
            &params,
            &self.demand,
            look.shape,
            &position,
            look.tz,
            &coming.for_policy,
        );
        let open_types: Vec<AlertType> = self.alerts.iter().map(|a| a.alert.alert_type).collect();
        let inputs = Inputs {
            params: &params,
            demand: &self.demand,
            shape: look.shape,
            policy: &pol,
            position: &position,
            last_sale_or_restock: self.last_sale_at.max(self.in_stock_since),
            next_delivery: coming.next,
            delivery_slack: coming.slack,
            typical_delivery: coming.typical,
            deliveries: &coming.for_alerts,
            recent_stockout_days: (self.stockout_days & 0x7f).count_ones(),
            rhythm_known: coming.known,
            open: &open_types,
            tz: look.tz,
        };
        let product = &look.product.row;
        let names = Names {
            sku: &product.sku,
            product: product.name.as_deref(),
            unit: look.product.unit(),
        };
        let conds = conditions(&inputs, look.rules, &names);
        (pol, conds)
    }

    /// What is on its way by the store's purchase orders: every open line, at its promised
    /// time (a late one any moment now); and after them, as the store goes on ordering, the
    /// deliveries of its receipt rhythm — from the first an order not yet placed could bring.
    fn ordered(&mut self, look: &Look<'_>) -> Coming {
        let now = look.now;
        let rhythm = self.inferred(now, look.lead_time_days);
        self.on_order = self.orders.iter().map(|(_, q)| *q).sum();
        self.expected_delivery_at = self.orders.first().map(|(t, _)| *t);
        let open: Vec<(DateTime<Utc>, f64)> = self
            .orders
            .iter()
            .map(|(t, q)| ((*t).max(now), decimal_f64(*q)))
            .collect();
        // the rhythm's next delivery after an open order is that order itself
        let interval = self
            .replenishment
            .interval(self.demand.level)
            .unwrap_or(1.0);
        let half = Duration::minutes((interval * 720.0) as i64);
        let earliest = stocklake_stock::proposal::earliest_new_delivery(look.supply, now, look.tz);
        let from = open
            .last()
            .map_or(earliest, |(t, _)| (*t + half).max(earliest));
        let mut list = open.clone();
        list.extend(rhythm.for_policy.iter().filter(|(t, _)| *t >= from));
        let lead_sd_days = look.learnt_lead.map_or(0.0, |l| l.1);
        Coming {
            next: list.first().map(|(t, _)| *t),
            typical: list.first().map_or(0.0, |(_, q)| *q),
            // a promise is kept within hours, or within the spread the supplier has shown
            slack: if open.is_empty() {
                rhythm.slack
            } else {
                Duration::hours(3).max(Duration::minutes((lead_sd_days * 1440.0) as i64))
            },
            known: true,
            for_policy: list.clone(),
            for_alerts: list,
        }
    }

    /// What is probably on its way, from the receipt rhythm (a store that sends no orders).
    fn inferred(&mut self, now: DateTime<Utc>, lead: u32) -> Coming {
        // a delivery expected within the lead time
        let level = self.demand.level;
        let lead_days = f64::from(lead);
        self.expected_delivery_at = self.replenishment.expected_next(now, level, lead_days);
        self.on_order = self.replenishment.in_transit(
            now,
            Duration::days(i64::from(lead)) + Duration::hours(12),
            level,
            lead_days,
        );
        let deliveries =
            self.replenishment
                .expected_deliveries(now, Duration::days(21), level, lead_days);
        // for the chance of running out before an order could come: a store that has one
        // order on its way at a time has ordered once its stock fell to its usual order level,
        // and that order comes a lead time later; nothing else is on its way
        self.replenishment
            .note_stock(now, decimal_f64(self.on_hand));
        // (one expected by now that has not come comes with the next round of deliveries)
        let r = &self.replenishment;
        let for_alerts: Vec<(DateTime<Utc>, f64)> = if r.orders_one_at_a_time(lead_days) {
            r.inferred_arrival(lead_days)
                .filter(|at| *at >= now - Duration::days(1))
                .map(|at| (r.next_round(at.max(now)), r.typical_qty))
                .into_iter()
                .collect()
        } else {
            deliveries
                .iter()
                .map(|(at, q)| (r.next_round(*at), *q))
                .collect()
        };
        Coming {
            next: self.expected_delivery_at,
            slack: r.slack(level),
            typical: r.typical_qty,
            known: r.receipts > 0,
            for_policy: deliveries,
            for_alerts,
        }
    }

    /// Keeps the conditions to raise now: a warning not open yet must have held for `hold`
    /// first (it waits in `pending` meanwhile); every other condition is raised at once.
    pub fn confirm(
        &mut self,
        mut conds: Vec<Condition>,
        now: DateTime<Utc>,
        hold: Duration,
        open: &[AlertType],
    ) -> Vec<Condition> {
        self.pending
            .retain(|(t, _)| conds.iter().any(|c| c.alert_type == *t));
        conds.retain(|c| {
            let warning = matches!(
                c.alert_type,
                AlertType::ProjectedStockout | AlertType::BelowSafetyStock
            );
            if !warning || open.contains(&c.alert_type) {
                return true;
            }
            match self.pending.iter().find(|(t, _)| *t == c.alert_type) {
                Some((_, since)) => now - *since >= hold,
                None => {
                    self.pending.push((c.alert_type, now));
                    false
                }
            }
        });
        self.pending
            .retain(|(t, _)| !conds.iter().any(|c| c.alert_type == *t));
        conds
    }

    /// Brings the open alerts to what holds: opens, updates and resolves them, and returns
    /// each change as the alert's row.
    fn settle(
        &mut self,
        conds: Vec<Condition>,
        look: &Look<'_>,
        next_alert_id: &mut i64,
    ) -> Vec<(AlertRow, Transition)> {
        let now = look.now;
        let row = |alert_id: i64, c: &Condition, opened_at: DateTime<Utc>| AlertRow {
            alert_id,
            store_key: look.store_key,
            product_key: look.product.row.product_key,
            alert_type: c.alert_type.as_str().into(),
            severity: c.severity.as_str().into(),
            opened_at,
            resolved_at: None,
            on_hand: c.on_hand,
            threshold: c.threshold,
            suggested_order_qty: c.suggested_order_qty,
            message: c.message.clone(),
            updated_at: now,
        };
        let open: Vec<OpenAlert> = self.alerts.iter().map(|a| a.alert.clone()).collect();
        let mut out = Vec::new();
        for change in lifecycle(&open, &conds) {
            match change {
                Change::Open(c) => {
                    let id = *next_alert_id;
                    *next_alert_id += 1;
                    self.alerts.push(OpenState {
                        alert: OpenAlert {
                            alert_id: id,
                            alert_type: c.alert_type,
                            severity: c.severity,
                            on_hand: c.on_hand,
                            threshold: c.threshold,
                            suggested_order_qty: c.suggested_order_qty,
                            message: c.message.clone(),
                        },
                        opened_at: now,
                    });
                    out.push((row(id, &c, now), Transition::Opened(c.alert_type)));
                }
                Change::Update {
                    alert_id,
                    condition: c,
                } => {
                    let Some(o) = self
                        .alerts
                        .iter_mut()
                        .find(|a| a.alert.alert_id == alert_id)
                    else {
                        continue;
                    };
                    let severity_changed = o.alert.severity != c.severity;
                    o.alert.severity = c.severity;
                    o.alert.on_hand = c.on_hand;
                    o.alert.threshold = c.threshold;
                    o.alert.suggested_order_qty = c.suggested_order_qty;
                    o.alert.message = c.message.clone();
                    out.push((
                        row(alert_id, &c, o.opened_at),
                        Transition::Updated { severity_changed },
                    ));
                }
                Change::Resolve {
                    alert_id,
                    alert_type,
                } => {
                    let Some(pos) = self
                        .alerts
                        .iter()
                        .position(|a| a.alert.alert_id == alert_id)
                    else {
                        continue;
                    };
                    let o = self.alerts.remove(pos);
                    let resolved = AlertRow {
                        alert_id,
                        store_key: look.store_key,
                        product_key: look.product.row.product_key,
                        alert_type: alert_type.as_str().into(),
                        severity: o.alert.severity.as_str().into(),
                        opened_at: o.opened_at,
                        resolved_at: Some(now),
                        on_hand: self.on_hand,
                        threshold: o.alert.threshold,
                        suggested_order_qty: Decimal::ZERO,
                        message: o.alert.message,
                        updated_at: now,
                    };
                    out.push((resolved, Transition::Resolved(alert_type)));
                }
            }
        }
        out
    }

    /// The key's stock level as gold keeps it.
    fn level_row(&self, look: &Look<'_>, pol: &Policy, has_history: bool) -> LevelRow {
        let status = if self.on_hand <= Decimal::ZERO {
            "out"
        } else if has_history && self.on_hand + self.on_order <= pol.reorder_point {
            "below_reorder_point"
        } else {
            "fine"
        };
        LevelRow {
            store_key: look.store_key,
            product_key: look.product.row.product_key,
            on_hand: self.on_hand,
            avg_daily_demand: pol.avg_daily_demand,
            safety_stock: pol.safety_stock,
            reorder_point: pol.reorder_point,
            days_of_cover: pol.days_of_cover,
            projected_stockout_at: pol.projected_stockout_at,
            updated_at: look.now,
            status,
            demand_sd: stocklake_stock::policy::estimate(self.demand.sd(), 3),
            order_up_to: pol.order_up_to,
            suggested_order_qty: pol.suggested_order_qty,
            on_order: self.on_order,
            expected_delivery_at: self.expected_delivery_at,
            last_count_at: self.last_count_at,
            last_count_quantity: self.last_count_qty,
            last_movement_at: self.last_movement_at,
            last_sale_at: self.last_sale_at,
            lead_time_days: Some(look.learnt_lead.map_or_else(
                || Decimal::from(look.lead_time_days),
                |l| stocklake_stock::policy::estimate(l.0, 2),
            )),
            lead_time_sd_days: look
                .learnt_lead
                .map(|l| stocklake_stock::policy::estimate(l.1, 2)),
            in_stock_since: self.in_stock_since,
            demand_level: self.demand.level,
            demand_var: self.demand.var,
            demand_days: self.demand.days as i32,
            units_per_sale: self.demand.units_per_sale,
            last_receipt_at: self.replenishment.last_receipt_at,
            receipt_interval_days: self.replenishment.interval_days,
            receipt_qty: self.replenishment.typical_qty,
            receipt_count: self.replenishment.receipts as i32,
            stockout_days: self.stockout_days as i32,
            order_level: self.replenishment.order_level,
            ordered_at: self.replenishment.ordered_at,
        }
    }
}

/// The message a webhook subscriber receives for an alert's change.
pub fn outbox_row(
    id: i64,
    alert: &AlertRow,
    change: &str,
    store_id: &str,
    product: &ProductRow,
    created_at: DateTime<Utc>,
) -> OutboxRow {
    let payload = serde_json::json!({
        "alert_id": alert.alert_id,
        "change": change,
        "store_id": store_id,
        "sku": product.sku,
        "product_name": product.name,
        "alert_type": alert.alert_type,
        "severity": alert.severity,
        "on_hand": alert.on_hand,
        "threshold": alert.threshold,
        "suggested_order_qty": alert.suggested_order_qty,
        "message": alert.message,
        "opened_at": alert.opened_at,
        "resolved_at": alert.resolved_at,
    });
    OutboxRow {
        id,
        alert_id: alert.alert_id,
        change: change.into(),
        payload: payload.to_string(),
        created_at,
    }
}

/// The end of a local day, in UTC.
pub fn day_end_utc(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    stocklake_stock::local_instant((day + Duration::days(1)).and_time(NaiveTime::MIN), tz)
}

/// The share of `day`'s usual sales that falls between `from` and `to` (clamped to the day).
pub fn out_share(
    shape: &Shape,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    day: NaiveDate,
) -> f64 {
    if to <= from {
        return 0.0;
    }
    let hour_of = |t: DateTime<Utc>| -> f64 {
        let l = t.with_timezone(&tz);
        let d = l.date_naive();
        if d < day {
            0.0
        } else if d > day {
            24.0
        } else {
            f64::from(l.hour()) + f64::from(l.minute()) / 60.0 + f64::from(l.second()) / 3600.0
        }
    };
    shape.share_between(hour_of(from), hour_of(to))
}

/// Adds one movement to a daily row (closing is chained separately).
pub fn apply_to_row(
    row: &mut DailyRow,
    t: EventType,
    time: DateTime<Utc>,
    q: Decimal,
    delta: Decimal,
) {
    match t {
        EventType::Sale => {
            row.units_sold += q;
            row.sales_count += 1;
        }
        EventType::Return => row.units_returned += q,
        EventType::Receipt => row.units_received += q,
        EventType::Waste => row.units_wasted += q,
        EventType::Adjustment => row.units_adjusted += q,
        EventType::StockCount => {
            let later = match (row.count_time, row.count_quantity) {
                (None, _) => true,
                (Some(ct), cq) => time > ct || (time == ct && Some(q) > cq),
            };
            if later {
                row.count_time = Some(time);
                row.count_quantity = Some(q);
                row.movement_after_count = Decimal::ZERO;
            }
            return;
        }
        // an order moves nothing on the shelf
        EventType::PurchaseOrder => return,
    }
    row.net_movement += delta;
    if row.count_time.is_some_and(|ct| time > ct) {
        row.movement_after_count += delta;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::ProductRow;
    use chrono::TimeZone;
    use stocklake_stock::Severity;

    fn t(h: i64) -> DateTime<Utc> {
        // Monday 2026-03-02 00:00 UTC, plus hours
        Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::hours(h)
    }

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    fn line(event_type: EventType, h: i64, q: &str) -> KeyLine {
        KeyLine {
            event_type,
            time: t(h),
            quantity: d(q),
        }
    }

    fn day() -> NaiveDate {
        t(0).date_naive()
    }

    fn keys() -> DayKeys {
        DayKeys {
            date_key: 20260302,
            store_key: 1,
            product_key: 7,
        }
    }

    /// Applies lines in the order given, as a batch would (what moved after a count from the
    /// key's own lines: the engine adds gold's).
    fn run(k: &mut KeyState, lines: &[KeyLine]) -> Vec<Applied> {
        let shape = Shape::default();
        let shelf = Shelf {
            shape: &shape,
            tz: chrono_tz::UTC,
            today: Some(day()),
        };
        let mut moves: Vec<(DateTime<Utc>, Decimal)> = Vec::new();
        let mut out = Vec::new();
        let mut new_key = k.last_movement_at.is_none();
        for l in lines {
            let after = if l.event_type == EventType::StockCount
                && k.count_supersedes(l.time, l.quantity)
            {
                moves
                    .iter()
                    .filter(|(mt, _)| *mt > l.time)
                    .map(|(_, d)| *d)
                    .sum()
            } else {
                Decimal::ZERO
            };
            let a = k.apply(l, after, new_key, 2.0, &shelf);
            if l.event_type.stock_delta(l.quantity).is_some() {
                moves.push((l.time, a.delta));
            }
            k.record_today(l, &a, keys());
            new_key = false;
            out.push(a);
        }
        out
    }

    #[test]
    fn daily_rows_count_each_kind_and_what_followed_the_count() {
        let t = |h: u32| {
            DateTime::<Utc>::from_timestamp(1_762_070_400 + i64::from(h) * 3600, 0).expect("time")
        };
        let d = |s: &str| s.parse::<Decimal>().expect("decimal");
        let mut row = DailyRow::default();
        apply_to_row(&mut row, EventType::Receipt, t(6), d("24"), d("24"));
        apply_to_row(&mut row, EventType::Sale, t(9), d("2"), d("-2"));
        apply_to_row(&mut row, EventType::StockCount, t(12), d("20"), d("-2"));
        apply_to_row(&mut row, EventType::Sale, t(15), d("1.5"), d("-1.5"));
        apply_to_row(&mut row, EventType::Waste, t(20), d("1"), d("-1"));
        // a count earlier than the one kept does not replace it
        apply_to_row(&mut row, EventType::StockCount, t(11), d("99"), d("0"));
        assert_eq!(row.units_received, d("24"));
        assert_eq!(row.units_sold, d("3.5"));
        assert_eq!(row.sales_count, 2);
        assert_eq!(row.units_wasted, d("1"));
        assert_eq!(row.net_movement, d("19.5"));
        assert_eq!(row.count_quantity, Some(d("20")));
        assert_eq!(row.movement_after_count, d("-2.5"));
    }

    #[test]
    fn stock_is_the_same_whatever_order_the_lines_arrive_in() {
        let lines = [
            line(EventType::Receipt, 7, "24"),
            line(EventType::Sale, 9, "2"),
            line(EventType::StockCount, 12, "20"),
            line(EventType::Sale, 15, "1.5"),
            line(EventType::Waste, 20, "1"),
        ];
        let mut in_order = KeyState::default();
        run(&mut in_order, &lines);
        assert_eq!(in_order.on_hand, d("17.5"));
        // every permutation a till and a late scanner can produce ends the same
        let orders: [[usize; 5]; 4] = [
            [4, 3, 2, 1, 0],
            [2, 0, 1, 3, 4],
            [3, 2, 4, 0, 1],
            [0, 3, 2, 4, 1],
        ];
        for order in orders {
            let mut k = KeyState::default();
            let shuffled: Vec<KeyLine> = order.iter().map(|i| lines[*i]).collect();
            run(&mut k, &shuffled);
            assert_eq!(k.on_hand, d("17.5"), "order {order:?}");
            assert_eq!(k.last_count_at, Some(t(12)));
            assert_eq!(k.last_movement_at, Some(t(20)));
            assert_eq!(k.last_sale_at, Some(t(15)));
        }
    }

    #[test]
    fn a_movement_before_the_count_on_record_is_recorded_but_moves_nothing() {
        let mut k = KeyState::default();
        let a = run(
            &mut k,
            &[
                line(EventType::StockCount, 12, "10"),
                line(EventType::Sale, 11, "3"),
            ],
        );
        assert_eq!(k.on_hand, d("10"), "the count already holds the sale");
        assert_eq!(
            a[1].delta,
            d("-3"),
            "the fact keeps the sale's own movement"
        );
        assert_eq!(a[0].delta, d("10"));
    }

    #[test]
    fn of_two_counts_at_the_same_time_the_larger_wins_and_an_older_one_is_ignored() {
        let mut k = KeyState::default();
        let a = run(
            &mut k,
            &[
                line(EventType::StockCount, 12, "10"),
                line(EventType::StockCount, 12, "8"),
                line(EventType::StockCount, 12, "11"),
                line(EventType::StockCount, 10, "50"),
            ],
        );
        assert_eq!(k.on_hand, d("11"));
        assert_eq!(k.last_count_qty, Some(d("11")));
        assert_eq!(
            a.iter().map(|a| a.delta).collect::<Vec<_>>(),
            vec![d("10"), d("0"), d("1"), d("0")]
        );
        let row = k.today.as_ref().expect("today");
        assert_eq!(row.count_quantity, Some(d("11")));
        assert_eq!(row.closing_on_hand, d("11"));
    }

    #[test]
    fn an_empty_shelf_is_timed_until_it_fills_again() {
        let mut k = KeyState::default();
        run(
            &mut k,
            &[
                line(EventType::Receipt, 6, "2"),
                line(EventType::Sale, 8, "2"),
            ],
        );
        assert_eq!(k.out_since, Some(t(8)));
        let row = k.today.as_ref().expect("today");
        assert!(row.was_out_of_stock);
        assert_eq!(row.out_of_stock_share, 0.0, "not back yet");
        run(&mut k, &[line(EventType::Receipt, 14, "12")]);
        assert_eq!(k.out_since, None);
        assert_eq!(k.in_stock_since, Some(t(14)));
        let share = k.today.as_ref().expect("today").out_of_stock_share;
        // six of the usual day's hours: a real share of its sales, never more than the day
        assert!(share > 0.0 && share < 1.0, "{share}");
        assert_eq!(k.replenishment.receipts, 2);
    }

    #[test]
    fn a_key_first_seen_empty_was_not_out_before_it_existed() {
        let mut k = KeyState::default();
        run(&mut k, &[line(EventType::Sale, 9, "1")]);
        assert_eq!(k.on_hand, d("-1"));
        assert_eq!(k.out_since, Some(t(9)));
        let row = k.today.as_ref().expect("today");
        assert!(row.was_out_of_stock, "it is out now");
        assert_eq!(row.closing_on_hand, d("-1"));
    }

    #[test]
    fn closing_a_day_carries_a_quiet_key_and_learns_only_from_trading_days() {
        let shape = Shape::default();
        let shelf = Shelf {
            shape: &shape,
            tz: chrono_tz::UTC,
            today: Some(day()),
        };
        let close = |trading| DayClose {
            day: day(),
            trading,
            dow: 1.0,
            alpha: 0.1,
        };
        // a key that did not move: its row is carried from stock on hand
        let mut quiet = KeyState {
            on_hand: d("5"),
            ..KeyState::default()
        };
        let row = quiet.close_day(keys(), &close(true), &shelf);
        assert_eq!(row.closing_on_hand, d("5"));
        assert_eq!(row.units_sold, Decimal::ZERO);
        assert!(!row.was_out_of_stock);
        assert_eq!(quiet.stockout_days, 0);
        assert_eq!(quiet.demand.days, 1, "a trading day of no sales is learnt");
        // a closed store's day teaches nothing
        let mut closed = KeyState {
            on_hand: d("5"),
            ..KeyState::default()
        };
        closed.close_day(keys(), &close(false), &shelf);
        assert_eq!(closed.demand.days, 0);
        // a shelf still empty at closing: the rest of the day counts, and the day is marked
        let mut empty = KeyState::default();
        run(
            &mut empty,
            &[
                line(EventType::Receipt, 6, "1"),
                line(EventType::Sale, 12, "1"),
            ],
        );
        let row = empty.close_day(keys(), &close(true), &shelf);
        assert!(row.out_of_stock_share > 0.0);
        assert_eq!(row.units_sold, d("1"));
        assert_eq!(empty.stockout_days & 1, 1);
        assert!(empty.today.is_none(), "the day's row is handed over");
        // the history keeps two weeks
        empty.stockout_days = 0x3fff;
        empty.close_day(keys(), &close(true), &shelf);
        assert_eq!(empty.stockout_days, 0x3fff);
    }

    fn condition(alert_type: AlertType) -> Condition {
        Condition {
            alert_type,
            severity: Severity::High,
            on_hand: d("3"),
            threshold: d("5"),
            suggested_order_qty: d("12"),
            message: format!("{alert_type:?}"),
        }
    }

    #[test]
    fn a_warning_is_raised_only_once_it_has_held() {
        let mut k = KeyState::default();
        let hold = Duration::minutes(45);
        let conds = || {
            vec![
                condition(AlertType::ProjectedStockout),
                condition(AlertType::OutOfStock),
            ]
        };
        let raised = k.confirm(conds(), t(10), hold, &[]);
        assert_eq!(
            raised.iter().map(|c| c.alert_type).collect::<Vec<_>>(),
            vec![AlertType::OutOfStock],
            "what is not a warning is raised at once"
        );
        assert_eq!(k.pending, vec![(AlertType::ProjectedStockout, t(10))]);
        let raised = k.confirm(conds(), t(10) + Duration::minutes(44), hold, &[]);
        assert_eq!(raised.len(), 1, "not yet");
        let raised = k.confirm(conds(), t(10) + Duration::minutes(45), hold, &[]);
        assert_eq!(raised.len(), 2, "held 45 minutes: raised");
        assert!(k.pending.is_empty());
        // a warning that lapses before it is confirmed starts again
        k.confirm(conds(), t(20), hold, &[]);
        k.confirm(vec![], t(20) + Duration::minutes(10), hold, &[]);
        assert!(k.pending.is_empty());
        // one already open is kept without waiting
        let raised = k.confirm(conds(), t(30), hold, &[AlertType::ProjectedStockout]);
        assert_eq!(raised.len(), 2);
    }

    fn product() -> ProductState {
        ProductState {
            row: ProductRow {
                product_key: 7,
                sku: "SKU-7".into(),
                name: Some("Milk 1l".into()),
                category: None,
                subcategory: None,
                brand: None,
                unit_of_measure: None,
                case_pack: Some(6),
                unit_cost: None,
                unit_price: None,
                lead_time_days: Some(2),
                service_level: None,
                supplier_id: None,
                min_order_qty: None,
                shelf_life_days: None,
                is_inferred: false,
                valid_from: t(0),
                valid_to: None,
                is_current: true,
            },
        }
    }

    fn every_day() -> Supply<'static> {
        Supply {
            supplier_id: None,
            order_days: stocklake_stock::Days::EVERY,
            delivery_days: stocklake_stock::Days::EVERY,
            lead_time_days: 2.0,
            lead_time_sd_days: 0.0,
            case_pack: Decimal::ONE,
            min_order_qty: None,
            shelf_life_days: None,
            service_level: 0.95,
        }
    }

    #[test]
    fn evaluating_opens_numbers_and_resolves_alerts_and_writes_levels_that_changed() {
        let (shape, product, rules) = (Shape::default(), product(), RuleConfig::default());
        let supply = every_day();
        let look = |now: DateTime<Utc>, moved: bool| Look {
            now,
            tz: chrono_tz::UTC,
            shape: &shape,
            product: &product,
            store_key: 1,
            lead_time_days: 2,
            learnt_lead: None,
            service_level: 0.95,
            orders_feed: false,
            supply: &supply,
            rules: &rules,
            evaluate_every: Duration::minutes(30),
            moved,
        };
        let mut k = KeyState::default();
        run(&mut k, &[line(EventType::StockCount, 8, "0")]);
        let mut next_id = 41;
        let looked = k.evaluate(&look(t(8), true), &mut next_id);
        assert_eq!(next_id, 42);
        let (row, transition) = &looked.alerts[0];
        assert_eq!(*transition, Transition::Opened(AlertType::OutOfStock));
        assert_eq!(transition.change(), Some("opened"));
        assert_eq!((row.alert_id, row.store_key, row.product_key), (41, 1, 7));
        assert_eq!(row.alert_type, "out_of_stock");
        assert_eq!(row.opened_at, t(8));
        let level = looked.level.expect("a moved key's level is written");
        assert_eq!(level.status, "out");
        assert_eq!(
            looked.due,
            Some(t(8) + Duration::minutes(30)),
            "open alerts are timed"
        );
        // nothing changed: no alert, no level
        let again = k.evaluate(&look(t(8), false), &mut next_id);
        assert!(again.alerts.is_empty());
        assert!(again.level.is_none());
        assert_eq!(again.was_due, looked.due);
        // restocked: resolved, with the stock it was resolved at
        run(&mut k, &[line(EventType::Receipt, 10, "12")]);
        let restocked = k.evaluate(&look(t(10), true), &mut next_id);
        let (row, transition) = &restocked.alerts[0];
        assert_eq!(*transition, Transition::Resolved(AlertType::OutOfStock));
        assert_eq!((row.alert_id, row.resolved_at), (41, Some(t(10))));
        assert_eq!(row.on_hand, d("12"));
        assert_eq!(row.opened_at, t(8));
        assert!(k.alerts.is_empty());
        assert_eq!(restocked.level.expect("level").status, "fine");
        let outbox = outbox_row(3, row, "resolved", "ST-1", &product.row, t(11));
        let payload: serde_json::Value = serde_json::from_str(&outbox.payload).expect("payload");
        assert_eq!(payload["change"], "resolved");
        assert_eq!(payload["store_id"], "ST-1");
        assert_eq!(payload["sku"], "SKU-7");
        assert_eq!(payload["product_name"], "Milk 1l");
        assert_eq!((outbox.id, outbox.alert_id), (3, 41));
    }

    #[test]
    fn negative_records_raise_their_own_alert() {
        let (shape, product, rules) = (Shape::default(), product(), RuleConfig::default());
        let supply = every_day();
        let mut k = KeyState::default();
        run(&mut k, &[line(EventType::Sale, 9, "2")]);
        let look = Look {
            now: t(9),
            tz: chrono_tz::UTC,
            shape: &shape,
            product: &product,
            store_key: 1,
            lead_time_days: 2,
            learnt_lead: None,
            service_level: 0.95,
            orders_feed: false,
            supply: &supply,
            rules: &rules,
            evaluate_every: Duration::minutes(30),
            moved: true,
        };
        let mut id = 1;
        let looked = k.evaluate(&look, &mut id);
        let types: Vec<&str> = looked
            .alerts
            .iter()
            .map(|(r, _)| r.alert_type.as_str())
            .collect();
        assert!(types.contains(&"negative_stock"), "{types:?}");
        assert!(types.contains(&"out_of_stock"), "{types:?}");
        assert_eq!(id, 3);
    }

    #[test]
    fn a_store_that_sends_its_orders_is_judged_by_them() {
        let (shape, product, rules) = (Shape::default(), product(), RuleConfig::default());
        let supply = every_day();
        let selling = || {
            let mut k = KeyState {
                on_hand: d("8"),
                demand: stocklake_stock::Demand {
                    level: 10.0,
                    var: 4.0,
                    days: 30,
                    units_per_sale: 1.0,
                },
                ..KeyState::default()
            };
            k.last_sale_at = Some(t(8));
            k
        };
        let look = |feed: bool| Look {
            now: t(9),
            tz: chrono_tz::UTC,
            shape: &shape,
            product: &product,
            store_key: 1,
            lead_time_days: 2,
            learnt_lead: None,
            service_level: 0.95,
            orders_feed: feed,
            supply: &supply,
            rules: &rules,
            evaluate_every: Duration::minutes(30),
            moved: true,
        };
        // an order of 40 promised this afternoon: on order, nothing to propose
        let mut k = selling();
        k.orders = vec![(t(15), d("40")), (t(60), d("12"))];
        let looked = k.evaluate(&look(true), &mut 1);
        let level = looked.level.expect("level");
        assert_eq!(level.on_order, d("52"));
        assert_eq!(level.expected_delivery_at, Some(t(15)));
        let proposal = looked.proposal.expect("proposal");
        assert_eq!(proposal.quantity, Decimal::ZERO, "{}", proposal.reason);
        assert_eq!(proposal.on_order, d("52"));
        // nothing open: nothing on order, and an order to place
        let mut k = selling();
        let looked = k.evaluate(&look(true), &mut 1);
        assert_eq!(looked.level.expect("level").on_order, Decimal::ZERO);
        let proposal = looked.proposal.expect("proposal");
        assert!(proposal.quantity > Decimal::ZERO, "{}", proposal.reason);
        // the same proposal is written once
        assert!(k.evaluate(&look(true), &mut 1).proposal.is_none());
        // without the feed, open lines are not what the store has on order
        let mut k = selling();
        k.orders = vec![(t(15), d("40"))];
        let looked = k.evaluate(&look(false), &mut 1);
        assert_eq!(looked.level.expect("level").on_order, Decimal::ZERO);
    }
}
