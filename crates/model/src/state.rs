//! What the model keeps in memory between batches: dimensions, each store's clock and rhythm,
//! and each store × SKU's stock state. Gold is the truth; this is rebuilt from it at start and
//! after any failed batch, so that a batch's work grows with the keys it touches, not with the
//! size of the tables.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use stocklake_stock::{AlertType, Demand, OpenAlert, Replenishment, Severity, Shape};

use crate::rows::*;

/// A store's surrogate key in gold (`dim_store.store_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreKey(pub i32);

impl std::fmt::Display for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A product's place among the interned SKUs ([`Skus`]): a dense index, not its gold key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SkuIndex(pub u32);

/// A stock key: one product in one store. Ordered by store, then product — the order in
/// which a batch evaluates its keys, and so the order of the alerts it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub store: StoreKey,
    pub sku: SkuIndex,
}

impl Key {
    pub fn new(store: StoreKey, sku: SkuIndex) -> Key {
        Key { store, sku }
    }
}

/// A store's clock and learnt rhythm.
#[derive(Debug, Clone)]
pub struct StoreState {
    pub row: StoreRow,
    pub tz: Tz,
    /// The latest event time seen from this store: its "now".
    pub clock: Option<DateTime<Utc>>,
    /// The store-local date of the clock.
    pub local_date: Option<NaiveDate>,
    pub extra: StoreExtra,
    /// The SKUs with a stock level at this store.
    pub skus: Vec<SkuIndex>,
    pub dirty: bool,
    /// Evaluate every key of the store in this batch.
    pub evaluate_all: bool,
    /// When each SKU is next due for a look by time alone (see [`KeyState::due`]), earliest
    /// first.
    pub due: BTreeSet<(DateTime<Utc>, SkuIndex)>,
}

impl StoreState {
    pub fn new(row: StoreRow, tz: Tz, dirty: bool) -> StoreState {
        StoreState {
            row,
            tz,
            clock: None,
            local_date: None,
            extra: StoreExtra::default(),
            skus: Vec::new(),
            dirty,
            evaluate_all: false,
            due: BTreeSet::new(),
        }
    }

    /// Moves a SKU's due time in the store's queue.
    pub fn reschedule(
        &mut self,
        sku: SkuIndex,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) {
        if from == to {
            return;
        }
        if let Some(t) = from {
            self.due.remove(&(t, sku));
        }
        if let Some(t) = to {
            self.due.insert((t, sku));
        }
    }

    /// Closes a day for the store: when it traded (`units` sold in all), its hourly rhythm and
    /// the mean of the weekday are learnt; the day's hours start again.
    pub fn close_day(&mut self, weekday: usize, units: f64, alpha: f64) {
        if units > 0.0 {
            let hours = self.extra.today_hours;
            self.extra.shape.observe(&hours, weekday, alpha);
            let n = self.extra.weekday_days[weekday];
            let w = 1.0 / f64::from(n + 1).min(8.0);
            self.extra.weekday_units[weekday] =
                (1.0 - w) * self.extra.weekday_units[weekday] + w * units;
            self.extra.weekday_days[weekday] = n + 1;
            let means = self.extra.weekday_units;
            self.extra.shape.set_weekdays(&means);
        }
        self.extra.today_hours = [0.0; 24];
        self.dirty = true;
    }

    /// Takes the SKUs due at or before the store's clock.
    pub fn take_due(&mut self) -> Vec<SkuIndex> {
        let Some(clock) = self.clock else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while let Some(&(t, sku)) = self.due.first()
            && t <= clock
        {
            self.due.pop_first();
            out.push(sku);
        }
        out
    }
}

/// The part of a store's state kept as JSON in `gold_store_state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreExtra {
    pub shape: Shape,
    /// Units sold today per local hour.
    pub today_hours: [f64; 24],
    /// Mean daily units per weekday (Monday first), and how many days each mean holds.
    pub weekday_units: [f64; 7],
    pub weekday_days: [u32; 7],
    /// The store sends its purchase orders: what is on order is known, not inferred.
    #[serde(default)]
    pub orders_feed: bool,
    /// Lead times learnt from the store's orders and their receipts: by supplier, or by
    /// `sku:` and the SKU for products no supplier is known for.
    #[serde(default)]
    pub lead: std::collections::BTreeMap<String, LeadTime>,
}

impl Default for StoreExtra {
    fn default() -> Self {
        StoreExtra {
            shape: Shape::default(),
            today_hours: [0.0; 24],
            weekday_units: [0.0; 7],
            weekday_days: [0; 7],
            orders_feed: false,
            lead: Default::default(),
        }
    }
}

/// A lead time learnt from orders: mean and variance in days, the first observations averaged,
/// later ones weighted so that a supplier that changes is followed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LeadTime {
    pub n: u32,
    pub mean: f64,
    pub var: f64,
}

impl LeadTime {
    /// Observations before the learnt figures are used.
    pub const ENOUGH: u32 = 3;

    pub fn observe(&mut self, days: f64) {
        if !days.is_finite() || days < 0.0 {
            return;
        }
        self.n += 1;
        let a = (1.0 / f64::from(self.n)).max(0.1);
        let diff = days - self.mean;
        self.mean += a * diff;
        self.var = (1.0 - a) * (self.var + a * diff * diff);
    }

    pub fn sd(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }

    /// (mean, deviation) once learnt.
    pub fn learnt(&self) -> Option<(f64, f64)> {
        (self.n >= Self::ENOUGH).then(|| (self.mean, self.sd()))
    }
}

pub fn parse_tz(s: &str) -> Tz {
    s.parse().unwrap_or(chrono_tz::UTC)
}

/// A product's current version and replenishment parameters.
#[derive(Debug, Clone)]
pub struct ProductState {
    pub row: ProductRow,
}

impl ProductState {
    pub fn case_pack(&self) -> Decimal {
        self.row
            .case_pack
            .filter(|c| *c > 0)
            .map(Decimal::from)
            .unwrap_or(Decimal::ONE)
    }
    pub fn unit(&self) -> &'static str {
        if self.row.unit_of_measure.as_deref() == Some("kg") {
            "kg"
        } else {
            "units"
        }
    }
}

/// An open alert with when it opened.
#[derive(Debug, Clone)]
pub struct OpenState {
    pub alert: OpenAlert,
    pub opened_at: DateTime<Utc>,
}

/// One store × SKU.
#[derive(Debug, Clone, Default)]
pub struct KeyState {
    pub on_hand: Decimal,
    pub last_count_at: Option<DateTime<Utc>>,
    pub last_count_qty: Option<Decimal>,
    pub demand: Demand,
    /// What is probably on its way (from the receipt rhythm).
    pub on_order: Decimal,
    pub expected_delivery_at: Option<DateTime<Utc>>,
    pub replenishment: Replenishment,
    pub last_movement_at: Option<DateTime<Utc>>,
    pub last_sale_at: Option<DateTime<Utc>>,
    pub in_stock_since: Option<DateTime<Utc>>,
    /// Since when the records show an empty shelf (for the share of a day out of stock).
    pub out_since: Option<DateTime<Utc>>,
    /// Out-of-stock share measured before today's row exists.
    pub pending_out_share: f64,
    /// The daily row of the store's current local day, once the key moved that day (boxed:
    /// most keys of a large store do not move on a given day).
    pub today: Option<Box<DailyRow>>,
    pub alerts: Vec<OpenState>,
    /// A fingerprint of the stock level last written (to write only what changed).
    pub level_print: Option<u64>,
    /// When time alone, with no event, could next change this key's alerts: keys with demand
    /// history, open alerts or warnings waiting for confirmation are looked at again then;
    /// the others only when they move or their store closes a day.
    pub due: Option<DateTime<Utc>>,
    /// Warnings seen but not yet raised, and since when they hold.
    pub pending: Vec<(AlertType, DateTime<Utc>)>,
    /// One bit per closed day (newest lowest): the shelf ran empty on record that day.
    pub stockout_days: u32,
    /// The open lines of the store's purchase orders for this SKU: (promised delivery,
    /// quantity), earliest first.
    pub orders: Vec<(DateTime<Utc>, Decimal)>,
    /// A fingerprint of the order proposal last written.
    pub proposal_print: Option<u64>,
}

impl KeyState {
    /// Whether time alone, with no event, can change this key's alerts: it has the demand
    /// history the time-driven rules need (projected stock-out, phantom stock), a delivery
    /// rhythm (the expected delivery moves on), open alerts, or warnings waiting for
    /// confirmation.
    pub fn timed(&self, min_history_days: u32) -> bool {
        (self.demand.days >= min_history_days && self.demand.level > 0.0)
            || self.replenishment.receipts > 0
            || !self.alerts.is_empty()
            || !self.pending.is_empty()
    }

    pub fn from_level(l: &LevelRow) -> KeyState {
        KeyState {
            on_hand: l.on_hand,
            last_count_at: l.last_count_at,
            last_count_qty: l.last_count_quantity,
            demand: Demand {
                level: l.demand_level,
                var: l.demand_var,
                days: l.demand_days.max(0) as u32,
                units_per_sale: l.units_per_sale,
            },
            on_order: l.on_order,
            expected_delivery_at: l.expected_delivery_at,
            replenishment: Replenishment {
                last_receipt_at: l.last_receipt_at,
                interval_days: l.receipt_interval_days,
                typical_qty: l.receipt_qty,
                receipts: l.receipt_count.max(0) as u32,
                order_level: l.order_level,
                ordered_at: l.ordered_at,
            },
            last_movement_at: l.last_movement_at,
            last_sale_at: l.last_sale_at,
            in_stock_since: l.in_stock_since,
            out_since: (l.on_hand <= Decimal::ZERO)
                .then_some(l.last_movement_at)
                .flatten(),
            pending_out_share: 0.0,
            today: None,
            alerts: Vec::new(),
            level_print: Some(level_print(l)),
            due: None,
            pending: Vec::new(),
            stockout_days: l.stockout_days.max(0) as u32,
            orders: Vec::new(),
            proposal_print: None,
        }
    }
}

/// A fingerprint of everything in a stock level but the time it was written.
pub fn level_print(l: &LevelRow) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (l.store_key, l.product_key, l.on_hand, l.avg_daily_demand).hash(&mut h);
    (l.safety_stock, l.reorder_point, l.days_of_cover).hash(&mut h);
    (
        l.projected_stockout_at,
        l.status,
        l.demand_sd,
        l.order_up_to,
    )
        .hash(&mut h);
    (l.suggested_order_qty, l.on_order, l.expected_delivery_at).hash(&mut h);
    (l.last_count_at, l.last_count_quantity, l.last_movement_at).hash(&mut h);
    (
        l.last_sale_at,
        l.in_stock_since,
        l.demand_days,
        l.last_receipt_at,
    )
        .hash(&mut h);
    (l.receipt_count, l.stockout_days).hash(&mut h);
    (l.order_level.to_bits(), l.ordered_at).hash(&mut h);
    (l.lead_time_days, l.lead_time_sd_days).hash(&mut h);
    for f in [
        l.demand_level,
        l.demand_var,
        l.units_per_sale,
        l.receipt_interval_days,
        l.receipt_qty,
    ] {
        f.to_bits().hash(&mut h);
    }
    h.finish()
}

/// Reads an open alert row back.
pub fn open_state(a: &AlertRow) -> Option<OpenState> {
    Some(OpenState {
        alert: OpenAlert {
            alert_id: a.alert_id,
            alert_type: AlertType::parse(&a.alert_type)?,
            severity: Severity::parse(&a.severity)?,
            on_hand: a.on_hand,
            threshold: a.threshold,
            suggested_order_qty: a.suggested_order_qty,
            message: a.message.clone(),
        },
        opened_at: a.opened_at,
    })
}

/// Interned SKUs: an index per SKU, so keys are two small integers.
#[derive(Debug, Default)]
pub struct Skus {
    pub index: HashMap<String, SkuIndex>,
    pub products: Vec<ProductState>,
    /// By gold's `product_key`.
    pub by_key: HashMap<i32, SkuIndex>,
}

impl Skus {
    pub fn get(&self, sku: &str) -> Option<SkuIndex> {
        self.index.get(sku).copied()
    }

    /// The index of a product's gold key.
    pub fn of_key(&self, product_key: i32) -> Option<SkuIndex> {
        self.by_key.get(&product_key).copied()
    }

    pub fn insert(&mut self, row: ProductRow) -> SkuIndex {
        let i = SkuIndex(self.products.len() as u32);
        self.index.insert(row.sku.clone(), i);
        self.by_key.insert(row.product_key, i);
        self.products.push(ProductState { row });
        i
    }

    pub fn replace(&mut self, i: SkuIndex, row: ProductRow) {
        self.by_key.insert(row.product_key, i);
        if let Some(p) = self.products.get_mut(i.0 as usize) {
            p.row = row;
        }
    }

    /// The product at an index [`Skus::insert`] gave out (indices are never taken back).
    pub fn product(&self, i: SkuIndex) -> &ProductState {
        &self.products[i.0 as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn store() -> StoreState {
        StoreState::new(StoreRow::inferred(1, "ST-1", at(0)), chrono_tz::UTC, false)
    }

    #[test]
    fn only_the_keys_whose_time_has_come_are_taken() {
        let mut s = store();
        s.reschedule(SkuIndex(7), None, Some(at(9)));
        s.reschedule(SkuIndex(8), None, Some(at(11)));
        s.reschedule(SkuIndex(9), None, Some(at(10)));
        // moved later: its old time no longer counts
        s.reschedule(SkuIndex(7), Some(at(9)), Some(at(12)));
        assert!(s.take_due().is_empty(), "no clock, nothing is due");
        s.clock = Some(at(10));
        assert_eq!(s.take_due(), vec![SkuIndex(9)]);
        assert_eq!(s.take_due(), Vec::<SkuIndex>::new());
        s.clock = Some(at(12));
        assert_eq!(s.take_due(), vec![SkuIndex(8), SkuIndex(7)]);
        // dropped: never due again
        s.reschedule(SkuIndex(5), None, Some(at(13)));
        s.reschedule(SkuIndex(5), Some(at(13)), None);
        s.clock = Some(at(20));
        assert!(s.take_due().is_empty());
    }

    #[test]
    fn time_matters_only_to_keys_with_history_rhythm_or_alerts() {
        let mut k = KeyState::default();
        assert!(
            !k.timed(3),
            "a counted key that never sold waits for events"
        );
        k.demand.days = 2;
        k.demand.level = 4.0;
        assert!(!k.timed(3));
        k.demand.days = 3;
        assert!(k.timed(3));
        let mut k = KeyState::default();
        k.pending.push((AlertType::ProjectedStockout, at(8)));
        assert!(k.timed(3));
        let mut k = KeyState::default();
        k.replenishment.receipts = 1;
        assert!(k.timed(3));
    }

    #[test]
    fn a_key_stays_small() {
        // a million keys must fit in well under a gigabyte with the map around them
        assert!(
            std::mem::size_of::<KeyState>() <= 512,
            "KeyState is {} bytes",
            std::mem::size_of::<KeyState>()
        );
    }

    #[test]
    fn the_fingerprint_ignores_only_the_write_time() {
        let l = LevelRow {
            store_key: 1,
            product_key: 2,
            on_hand: Decimal::new(50, 0),
            avg_daily_demand: Decimal::new(25, 1),
            safety_stock: Decimal::ONE,
            reorder_point: Decimal::TWO,
            days_of_cover: Some(Decimal::new(20, 0)),
            projected_stockout_at: None,
            updated_at: at(8),
            status: "fine",
            demand_sd: Decimal::ONE,
            order_up_to: Decimal::TEN,
            suggested_order_qty: Decimal::ZERO,
            on_order: Decimal::ZERO,
            expected_delivery_at: None,
            last_count_at: Some(at(7)),
            last_count_quantity: Some(Decimal::new(50, 0)),
            last_movement_at: Some(at(7)),
            last_sale_at: None,
            lead_time_days: None,
            lead_time_sd_days: None,
            in_stock_since: None,
            demand_level: 2.5,
            demand_var: 1.0,
            demand_days: 4,
            units_per_sale: 1.0,
            last_receipt_at: None,
            receipt_interval_days: 0.0,
            receipt_qty: 0.0,
            receipt_count: 0,
            stockout_days: 0,
            order_level: 0.0,
            ordered_at: None,
        };
        let later = LevelRow {
            updated_at: at(9),
            // the same quantity read back from NUMERIC(18,3)
            on_hand: Decimal::new(50_000, 3),
            ..l.clone()
        };
        assert_eq!(level_print(&l), level_print(&later));
        let sold = LevelRow {
            on_hand: Decimal::new(49, 0),
            ..l.clone()
        };
        assert_ne!(level_print(&l), level_print(&sold));
        let learnt = LevelRow {
            demand_var: 1.5,
            ..l.clone()
        };
        assert_ne!(level_print(&l), level_print(&learnt));
        // the order level and the inferred order are written, and read back after a restart
        let ordered = LevelRow {
            order_level: 8.0,
            ordered_at: Some(at(7)),
            ..l.clone()
        };
        assert_ne!(level_print(&l), level_print(&ordered));
        let k = KeyState::from_level(&ordered);
        assert_eq!(k.replenishment.order_level, 8.0);
        assert_eq!(k.replenishment.ordered_at, Some(at(7)));
    }
}
