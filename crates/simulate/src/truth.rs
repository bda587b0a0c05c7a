//! The simulator's ground truth: what was really on the shelf, and every stock-out.
//!
//! The records a store sends drift from its shelves (theft, mis-keyed deliveries), so the truth
//! is the only way to measure whether alerts caught real stock-outs. It is written as NDJSON,
//! one object a line, each with a `kind`:
//!
//! - `stock`: `date`, `store_id`, `sku`, `on_hand` (true, at closing) and `recorded` (what the
//!   store's own events add up to, which is what stocklake should compute);
//! - `stockout`: `store_id`, `sku`, `start`, `end` (null while it lasts), `lost_units`;
//! - `phantom`: `store_id`, `sku`, `start`, `end`: the shelf was empty while the records said
//!   there was stock;
//! - `promotion`: `sku`, `first_date`, `last_date`, `lift`, `discount`;
//! - `order`: every order a store placed: `store_id`, `order_id`, `supplier_id`, `ordered_at`,
//!   `expected_at` (the supplier's promise), `arrives` (the morning it really comes: now and
//!   then a day late) and its `lines` (SKU and quantity) — whether or not the store sends its
//!   orders as events.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::store::Milli;

/// A store × product's true and recorded stock at the end of a day.
#[derive(Debug, Clone, Copy)]
pub struct TruthStock {
    pub store: u32,
    pub product: u32,
    pub on_hand: Milli,
    pub recorded: Milli,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeKind {
    StockOut,
    Phantom,
}

/// A stretch of time when a shelf was empty (or empty while records said otherwise).
#[derive(Debug, Clone)]
pub struct Episode {
    pub kind: EpisodeKind,
    pub store: u32,
    pub product: u32,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    /// Demand that could not be served, thousandths.
    pub lost: Milli,
}

/// One line of the truth file, as read back by the evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TruthRecord {
    Stock {
        date: NaiveDate,
        store_id: String,
        sku: String,
        on_hand: Decimal,
        recorded: Decimal,
    },
    Stockout {
        store_id: String,
        sku: String,
        start: String,
        end: Option<String>,
        lost_units: Decimal,
    },
    Phantom {
        store_id: String,
        sku: String,
        start: String,
        end: Option<String>,
    },
    Promotion {
        sku: String,
        first_date: NaiveDate,
        last_date: NaiveDate,
        lift: f64,
        discount: f64,
    },
    Order {
        store_id: String,
        order_id: String,
        supplier_id: String,
        ordered_at: String,
        expected_at: String,
        arrives: String,
        lines: Vec<(String, Decimal)>,
    },
}

/// An order a store placed, for the truth.
#[derive(Debug, Clone)]
pub struct TruthOrder {
    pub store: u32,
    pub supplier: u32,
    pub order_id: String,
    pub ordered_at: DateTime<Utc>,
    pub expected_at: DateTime<Utc>,
    pub arrives: DateTime<Utc>,
    /// (product, quantity in thousandths)
    pub lines: Vec<(u32, Milli)>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl TruthRecord {
    pub fn stock(catalog: &Catalog, date: NaiveDate, s: &TruthStock) -> TruthRecord {
        TruthRecord::Stock {
            date,
            store_id: catalog.stores[s.store as usize].store_id.clone(),
            sku: catalog.products[s.product as usize].sku.clone(),
            on_hand: Decimal::new(s.on_hand, 3),
            recorded: Decimal::new(s.recorded, 3),
        }
    }

    pub fn episode(catalog: &Catalog, e: &Episode) -> TruthRecord {
        let store_id = catalog.stores[e.store as usize].store_id.clone();
        let sku = catalog.products[e.product as usize].sku.clone();
        match e.kind {
            EpisodeKind::StockOut => TruthRecord::Stockout {
                store_id,
                sku,
                start: ts(e.start),
                end: e.end.map(ts),
                lost_units: Decimal::new(e.lost, 3),
            },
            EpisodeKind::Phantom => TruthRecord::Phantom {
                store_id,
                sku,
                start: ts(e.start),
                end: e.end.map(ts),
            },
        }
    }

    pub fn order(catalog: &Catalog, o: &TruthOrder) -> TruthRecord {
        TruthRecord::Order {
            store_id: catalog.stores[o.store as usize].store_id.clone(),
            order_id: o.order_id.clone(),
            supplier_id: catalog.suppliers[o.supplier as usize].supplier_id.clone(),
            ordered_at: ts(o.ordered_at),
            expected_at: ts(o.expected_at),
            arrives: ts(o.arrives),
            lines: o
                .lines
                .iter()
                .map(|(p, q)| {
                    (
                        catalog.products[*p as usize].sku.clone(),
                        Decimal::new(*q, 3),
                    )
                })
                .collect(),
        }
    }

    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = TruthRecord::Stockout {
            store_id: "ST-0001".into(),
            sku: "SKU-000001".into(),
            start: "2026-11-02T10:00:00.000Z".into(),
            end: None,
            lost_units: Decimal::new(3000, 3),
        };
        let line = r.to_line();
        assert!(line.starts_with("{\"kind\":\"stockout\""));
        let back: TruthRecord = serde_json::from_str(&line).expect("parse");
        assert_eq!(back, r);
    }
}
