//! What the model keeps in memory between batches: dimensions, each store's clock and rhythm,
//! and each store × SKU's stock state. Gold is the truth; this is rebuilt from it at start and
//! after any failed batch, so that a batch's work grows with the keys it touches, not with the
//! size of the tables.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use stocklake_stock::{AlertType, Demand, OpenAlert, Replenishment, Severity, Shape};

use crate::rows::*;

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
    pub skus: Vec<u32>,
    pub dirty: bool,
    /// Evaluate every key of the store in this batch.
    pub evaluate_all: bool,
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
    pub next_eval: Option<DateTime<Utc>>,
}

impl Default for StoreExtra {
    fn default() -> Self {
        StoreExtra {
            shape: Shape::default(),
            today_hours: [0.0; 24],
            weekday_units: [0.0; 7],
            weekday_days: [0; 7],
            next_eval: None,
        }
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
    /// The daily row of the store's current local day, once the key moved that day.
    pub today: Option<DailyRow>,
    pub alerts: Vec<OpenState>,
    /// The stock level last written (to write only what changed).
    pub level: Option<LevelRow>,
    /// Warnings seen but not yet raised, and since when they hold.
    pub pending: Vec<(AlertType, DateTime<Utc>)>,
    /// One bit per closed day (newest lowest): the shelf ran empty on record that day.
    pub stockout_days: u32,
}

impl KeyState {
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
            level: Some(l.clone()),
            pending: Vec::new(),
            stockout_days: l.stockout_days.max(0) as u32,
        }
    }
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
    pub index: HashMap<String, u32>,
    pub products: Vec<ProductState>,
    pub by_key: HashMap<i32, u32>,
}

impl Skus {
    pub fn get(&self, sku: &str) -> Option<u32> {
        self.index.get(sku).copied()
    }

    pub fn insert(&mut self, row: ProductRow) -> u32 {
        let i = self.products.len() as u32;
        self.index.insert(row.sku.clone(), i);
        self.by_key.insert(row.product_key, i);
        self.products.push(ProductState { row });
        i
    }

    pub fn replace(&mut self, i: u32, row: ProductRow) {
        self.by_key.insert(row.product_key, i);
        if let Some(p) = self.products.get_mut(i as usize) {
            p.row = row;
        }
    }

    pub fn product(&self, i: u32) -> &ProductState {
        &self.products[i as usize]
    }
}
