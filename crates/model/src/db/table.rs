//! Gold's tables described once: each table's columns and their types, its conflict key and
//! how a batch merges rows into it, and each row type's values in column order.
//!
//! Both databases write from these descriptions (PostgreSQL's staging tables, binary `COPY` and
//! set-based merges; SQLite's prepared upserts), the gold lake publishes from them, and rows are
//! read back through them. Adding a column to a gold table is an edit here (the column, and
//! the row's value in [`GoldRow::cells`] and [`FromCells`]) and a migration; the test below
//! holds the descriptions to what the migrations create.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::ModelError;
use crate::rows::*;

/// The type of a gold column, as each database keeps it and as Arrow and Delta write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    I16,
    I32,
    I64,
    Text,
    /// `NUMERIC(18, scale)`.
    Dec(i8),
    Ts,
    Date,
    Bool,
    F64,
    /// JSON (`JSONB` on PostgreSQL, text on SQLite); never published.
    Json,
}

/// One value of a row, in a column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    I16(i16),
    I32(i32),
    I64(i64),
    Text(Cow<'a, str>),
    Dec(Decimal),
    Ts(DateTime<Utc>),
    Date(NaiveDate),
    Bool(bool),
    F64(f64),
    Json(Cow<'a, serde_json::Value>),
}

/// A Rust value as a cell.
pub trait IntoCell<'a> {
    fn cell(self) -> Cell<'a>;
}

macro_rules! into_cell {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl<'a> IntoCell<'a> for $t {
            fn cell(self) -> Cell<'a> {
                Cell::$v(self)
            }
        }
    )*};
}

into_cell!(i16 => I16, i32 => I32, i64 => I64, Decimal => Dec, DateTime<Utc> => Ts,
    NaiveDate => Date, bool => Bool, f64 => F64);

impl<'a> IntoCell<'a> for &'a str {
    fn cell(self) -> Cell<'a> {
        Cell::Text(Cow::Borrowed(self))
    }
}

impl<'a> IntoCell<'a> for &'a String {
    fn cell(self) -> Cell<'a> {
        Cell::Text(Cow::Borrowed(self.as_str()))
    }
}

impl<'a> IntoCell<'a> for &'a serde_json::Value {
    fn cell(self) -> Cell<'a> {
        Cell::Json(Cow::Borrowed(self))
    }
}

impl<'a, T: IntoCell<'a>> IntoCell<'a> for Option<T> {
    fn cell(self) -> Cell<'a> {
        self.map_or(Cell::Null, IntoCell::cell)
    }
}

/// How a batch's rows meet the rows a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Appended: a row's key is new by construction.
    Insert,
    /// A row whose key the table holds already is left as it is (a line delivered again).
    Ignore,
    /// A row whose key the table holds replaces every other column of it.
    Upsert,
}

/// A gold table.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// The columns a batch writes, in order (`gold_batch` apart, see `stamped`).
    pub columns: &'static [(&'static str, Col)],
    /// The unique key rows are merged on.
    pub key: &'static [&'static str],
    pub merge: Merge,
    /// Its rows carry `gold_batch`, the batch that last wrote them (migration 7).
    pub stamped: bool,
    /// `gold_row_count` keeps its row count, moved by the rows each batch adds.
    pub counted: bool,
    /// The leading columns the gold lake publishes (the rest are the model's working state).
    pub published: usize,
}

impl Table {
    /// The column list, `a, b, c`.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The staging table PostgreSQL copies a batch's rows into.
    pub fn staging(&self) -> String {
        format!("stg_{}", self.name)
    }

    /// The columns an upsert replaces: every column outside the key, and the stamp.
    pub fn update_set(&self, excluded: &str) -> String {
        let mut set: Vec<String> = self
            .columns
            .iter()
            .filter(|(n, _)| !self.key.contains(n))
            .map(|(n, _)| format!("{n} = {excluded}.{n}"))
            .collect();
        if self.stamped {
            set.push(format!("gold_batch = {excluded}.gold_batch"));
        }
        set.join(", ")
    }

    /// The conflict clause of an insert, by the table's merge rule.
    pub fn on_conflict(&self, excluded: &str) -> String {
        match self.merge {
            Merge::Insert => String::new(),
            Merge::Ignore => format!(" ON CONFLICT ({}) DO NOTHING", self.key.join(", ")),
            Merge::Upsert => format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                self.key.join(", "),
                self.update_set(excluded)
            ),
        }
    }

    /// The index of a column.
    pub fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|(n, _)| *n == column)
    }
}

use Col::*;

pub const DIM_DATE: Table = Table {
    name: "dim_date",
    columns: &[
        ("date_key", I32),
        ("full_date", Date),
        ("day_of_week", I16),
        ("day_name", Text),
        ("week_of_year", I16),
        ("month", I16),
        ("quarter", I16),
        ("year", I16),
        ("is_weekend", Bool),
    ],
    key: &["date_key"],
    merge: Merge::Ignore,
    stamped: true,
    counted: false,
    published: 9,
};

pub const DIM_STORE: Table = Table {
    name: "dim_store",
    columns: &[
        ("store_key", I32),
        ("store_id", Text),
        ("name", Text),
        ("format", Text),
        ("city", Text),
        ("region", Text),
        ("country", Text),
        ("timezone", Text),
        ("is_inferred", Bool),
        ("updated_at", Ts),
    ],
    key: &["store_key"],
    merge: Merge::Upsert,
    stamped: true,
    counted: false,
    published: 10,
};

pub const DIM_PRODUCT: Table = Table {
    name: "dim_product",
    columns: &[
        ("product_key", I32),
        ("sku", Text),
        ("name", Text),
        ("category", Text),
        ("subcategory", Text),
        ("brand", Text),
        ("unit_of_measure", Text),
        ("case_pack", I32),
        ("unit_cost", Dec(4)),
        ("unit_price", Dec(4)),
        ("lead_time_days", I32),
        ("service_level", Dec(4)),
        ("is_inferred", Bool),
        ("valid_from", Ts),
        ("valid_to", Ts),
        ("is_current", Bool),
        ("supplier_id", Text),
        ("min_order_qty", Dec(3)),
        ("shelf_life_days", I32),
    ],
    key: &["product_key"],
    merge: Merge::Upsert,
    stamped: true,
    counted: false,
    published: 19,
};

pub const DIM_PAYMENT_METHOD: Table = Table {
    name: "dim_payment_method",
    columns: &[("payment_method_key", I32), ("payment_method", Text)],
    key: &["payment_method_key"],
    merge: Merge::Ignore,
    stamped: true,
    counted: false,
    published: 2,
};

pub const DIM_CLIENT_TYPE: Table = Table {
    name: "dim_client_type",
    columns: &[("client_type_key", I32), ("client_type", Text)],
    key: &["client_type_key"],
    merge: Merge::Ignore,
    stamped: true,
    counted: false,
    published: 2,
};

pub const FACT_SALES: Table = Table {
    name: "fact_sales",
    columns: &[
        ("event_id", Text),
        ("line_no", I32),
        ("date_key", I32),
        ("store_key", I32),
        ("product_key", I32),
        ("transaction_id", Text),
        ("register_id", Text),
        ("event_time", Ts),
        ("quantity", Dec(3)),
        ("unit_price", Dec(4)),
        ("discount", Dec(4)),
        ("net_amount", Dec(4)),
        ("payment_method_key", I32),
        ("client_type_key", I32),
    ],
    key: &["event_id", "line_no"],
    merge: Merge::Ignore,
    stamped: true,
    counted: true,
    published: 14,
};

pub const FACT_INVENTORY_MOVEMENT: Table = Table {
    name: "fact_inventory_movement",
    columns: &[
        ("event_id", Text),
        ("line_no", I32),
        ("date_key", I32),
        ("store_key", I32),
        ("product_key", I32),
        ("event_type", Text),
        ("quantity", Dec(3)),
        ("quantity_delta", Dec(3)),
        ("event_time", Ts),
    ],
    key: &["event_id", "line_no"],
    merge: Merge::Ignore,
    stamped: true,
    counted: true,
    published: 9,
};

pub const FACT_STOCK_DAILY: Table = Table {
    name: "fact_stock_daily",
    columns: &[
        ("date_key", I32),
        ("store_key", I32),
        ("product_key", I32),
        ("units_sold", Dec(3)),
        ("units_received", Dec(3)),
        ("units_wasted", Dec(3)),
        ("units_returned", Dec(3)),
        ("units_adjusted", Dec(3)),
        ("net_movement", Dec(3)),
        ("sales_count", I32),
        ("count_time", Ts),
        ("count_quantity", Dec(3)),
        ("movement_after_count", Dec(3)),
        ("closing_on_hand", Dec(3)),
        ("was_out_of_stock", Bool),
        ("out_of_stock_share", F64),
    ],
    key: &["store_key", "product_key", "date_key"],
    merge: Merge::Upsert,
    stamped: true,
    counted: false,
    published: 16,
};

pub const STOCK_LEVEL: Table = Table {
    name: "stock_level",
    columns: &[
        ("store_key", I32),
        ("product_key", I32),
        ("on_hand", Dec(3)),
        ("avg_daily_demand", Dec(3)),
        ("safety_stock", Dec(3)),
        ("reorder_point", Dec(3)),
        ("days_of_cover", Dec(2)),
        ("projected_stockout_at", Ts),
        ("updated_at", Ts),
        ("status", Text),
        ("demand_sd", Dec(3)),
        ("order_up_to", Dec(3)),
        ("suggested_order_qty", Dec(3)),
        ("on_order", Dec(3)),
        ("expected_delivery_at", Ts),
        ("last_count_at", Ts),
        ("last_count_quantity", Dec(3)),
        ("last_movement_at", Ts),
        ("last_sale_at", Ts),
        ("lead_time_days", Dec(2)),
        ("lead_time_sd_days", Dec(2)),
        // the model's working state from here on
        ("in_stock_since", Ts),
        ("demand_level", F64),
        ("demand_var", F64),
        ("demand_days", I32),
        ("units_per_sale", F64),
        ("last_receipt_at", Ts),
        ("receipt_interval_days", F64),
        ("receipt_qty", F64),
        ("receipt_count", I32),
        ("stockout_days", I32),
        ("order_level", F64),
        ("ordered_at", Ts),
    ],
    key: &["store_key", "product_key"],
    merge: Merge::Upsert,
    stamped: true,
    counted: false,
    published: 21,
};

pub const PURCHASE_ORDER_LINE: Table = Table {
    name: "purchase_order_line",
    columns: &[
        ("order_id", Text),
        ("line_no", I32),
        ("store_key", I32),
        ("product_key", I32),
        ("ordered_at", Ts),
        ("expected_at", Ts),
        ("quantity", Dec(3)),
        ("received_quantity", Dec(3)),
        ("status", Text),
        ("updated_at", Ts),
        // the model's working state from here on
        ("version_time", Ts),
        ("version_event_id", Text),
        ("first_received_at", Ts),
        ("last_received_at", Ts),
    ],
    key: &["store_key", "order_id", "product_key"],
    merge: Merge::Upsert,
    stamped: true,
    counted: false,
    published: 10,
};

pub const DIM_SUPPLIER: Table = Table {
    name: "dim_supplier",
    columns: &[
        ("supplier_id", Text),
        ("name", Text),
        ("lead_time_days", I32),
        ("order_days", Text),
        ("delivery_days", Text),
        ("is_inferred", Bool),
        ("updated_at", Ts),
    ],
    key: &["supplier_id"],
    merge: Merge::Upsert,
    stamped: true,
    counted: false,
    published: 7,
};

pub const ORDER_PROPOSAL: Table = Table {
    name: "order_proposal",
    columns: &[
        ("store_key", I32),
        ("product_key", I32),
        ("supplier_id", Text),
        ("order_date", Date),
        ("expected_delivery", Ts),
        ("quantity", Dec(3)),
        ("cases", I32),
        ("on_hand", Dec(3)),
        ("on_order", Dec(3)),
        ("reason", Text),
        ("created_at", Ts),
    ],
    key: &["store_key", "product_key"],
    merge: Merge::Upsert,
    stamped: true,
    counted: false,
    published: 11,
};

pub const STOCK_ALERT: Table = Table {
    name: "stock_alert",
    columns: &[
        ("alert_id", I64),
        ("store_key", I32),
        ("product_key", I32),
        ("alert_type", Text),
        ("severity", Text),
        ("opened_at", Ts),
        ("resolved_at", Ts),
        ("on_hand", Dec(3)),
        ("threshold", Dec(3)),
        ("suggested_order_qty", Dec(3)),
        ("message", Text),
        ("updated_at", Ts),
    ],
    key: &["alert_id"],
    merge: Merge::Upsert,
    stamped: true,
    counted: true,
    published: 12,
};

pub const ALERT_OUTBOX: Table = Table {
    name: "alert_outbox",
    // delivered_at and last_error are the notifier's, left null
    columns: &[
        ("id", I64),
        ("alert_id", I64),
        ("change", Text),
        ("payload", Text),
        ("created_at", Ts),
        ("attempts", I32),
    ],
    key: &["id"],
    merge: Merge::Insert,
    stamped: false,
    counted: false,
    published: 0,
};

pub const GOLD_STORE_STATE: Table = Table {
    name: "gold_store_state",
    columns: &[
        ("store_key", I32),
        ("clock", Ts),
        ("local_date", I32),
        ("state", Json),
    ],
    key: &["store_key"],
    merge: Merge::Upsert,
    stamped: false,
    counted: false,
    published: 0,
};

pub const GOLD_DEAD_LETTER: Table = Table {
    name: "gold_dead_letter",
    columns: &[
        ("event_id", Text),
        ("line_no", I32),
        ("event_type", Text),
        ("event_time", Ts),
        ("store_id", Text),
        ("sku", Text),
        ("quantity", Text),
        ("unit_price", Text),
        ("discount", Text),
        ("silver_version", I64),
        ("error", Text),
        ("dead_at", Ts),
    ],
    key: &["event_id", "line_no"],
    merge: Merge::Ignore,
    stamped: false,
    counted: true,
    published: 0,
};

pub const GOLD_CHECKPOINT: Table = Table {
    name: "gold_checkpoint",
    columns: &[
        ("name", Text),
        ("silver_version", I64),
        ("batch", I64),
        ("lines", I64),
        ("updated_at", Ts),
    ],
    key: &["name"],
    merge: Merge::Upsert,
    stamped: false,
    counted: false,
    published: 0,
};

/// Every table a batch writes, in the order it writes them (dimensions before the facts that
/// name them).
pub const WRITTEN: &[&Table] = &[
    &DIM_DATE,
    &DIM_STORE,
    &DIM_PRODUCT,
    &FACT_INVENTORY_MOVEMENT,
    &DIM_PAYMENT_METHOD,
    &DIM_CLIENT_TYPE,
    &FACT_SALES,
    &FACT_STOCK_DAILY,
    &DIM_SUPPLIER,
    &PURCHASE_ORDER_LINE,
    &STOCK_LEVEL,
    &STOCK_ALERT,
    &ORDER_PROPOSAL,
    &ALERT_OUTBOX,
    &GOLD_STORE_STATE,
    &GOLD_DEAD_LETTER,
    &GOLD_CHECKPOINT,
];

/// A row of a gold table.
pub trait GoldRow {
    const TABLE: &'static Table;
    /// Its values, in the table's column order.
    fn cells(&self) -> Vec<Cell<'_>>;
}

/// A row read back: its values taken in the table's column order.
pub trait FromCells: Sized {
    const TABLE: &'static Table;
    fn from_cells(r: &mut Cells) -> Result<Self, ModelError>;
}

/// The values of a row read back, taken one after the other.
#[derive(Debug)]
pub struct Cells {
    values: std::vec::IntoIter<Cell<'static>>,
    table: &'static str,
    at: usize,
}

impl Cells {
    pub fn new(table: &'static str, values: Vec<Cell<'static>>) -> Cells {
        Cells {
            values: values.into_iter(),
            table,
            at: 0,
        }
    }

    fn next(&mut self) -> Cell<'static> {
        self.at += 1;
        self.values.next().unwrap_or(Cell::Null)
    }

    fn wrong(&self, what: &str, got: &Cell<'_>) -> ModelError {
        ModelError::database(format!(
            "{}: column {} holds {got:?} where {what} was expected",
            self.table, self.at
        ))
    }

    pub fn opt_i32(&mut self) -> Result<Option<i32>, ModelError> {
        match self.next() {
            Cell::Null => Ok(None),
            Cell::I16(v) => Ok(Some(i32::from(v))),
            Cell::I32(v) => Ok(Some(v)),
            Cell::I64(v) => i32::try_from(v)
                .map(Some)
                .map_err(|_| self.wrong("a 32-bit integer", &Cell::I64(v))),
            c => Err(self.wrong("an integer", &c)),
        }
    }

    pub fn i32(&mut self) -> Result<i32, ModelError> {
        Ok(self.opt_i32()?.unwrap_or_default())
    }

    pub fn opt_i64(&mut self) -> Result<Option<i64>, ModelError> {
        match self.next() {
            Cell::Null => Ok(None),
            Cell::I16(v) => Ok(Some(i64::from(v))),
            Cell::I32(v) => Ok(Some(i64::from(v))),
            Cell::I64(v) => Ok(Some(v)),
            c => Err(self.wrong("an integer", &c)),
        }
    }

    pub fn i64(&mut self) -> Result<i64, ModelError> {
        Ok(self.opt_i64()?.unwrap_or_default())
    }

    pub fn opt_text(&mut self) -> Result<Option<String>, ModelError> {
        match self.next() {
            Cell::Null => Ok(None),
            Cell::Text(t) => Ok(Some(t.into_owned())),
            c => Err(self.wrong("text", &c)),
        }
    }

    pub fn text(&mut self) -> Result<String, ModelError> {
        Ok(self.opt_text()?.unwrap_or_default())
    }

    pub fn opt_dec(&mut self) -> Result<Option<Decimal>, ModelError> {
        match self.next() {
            Cell::Null => Ok(None),
            Cell::Dec(d) => Ok(Some(d)),
            c => Err(self.wrong("a decimal", &c)),
        }
    }

    pub fn dec(&mut self) -> Result<Decimal, ModelError> {
        Ok(self.opt_dec()?.unwrap_or_default())
    }

    pub fn opt_ts(&mut self) -> Result<Option<DateTime<Utc>>, ModelError> {
        match self.next() {
            Cell::Null => Ok(None),
            Cell::Ts(t) => Ok(Some(t)),
            c => Err(self.wrong("a time", &c)),
        }
    }

    pub fn ts(&mut self) -> Result<DateTime<Utc>, ModelError> {
        Ok(self.opt_ts()?.unwrap_or_default())
    }

    pub fn bool(&mut self) -> Result<bool, ModelError> {
        match self.next() {
            Cell::Null => Ok(false),
            Cell::Bool(b) => Ok(b),
            Cell::I32(v) => Ok(v != 0),
            Cell::I64(v) => Ok(v != 0),
            c => Err(self.wrong("a boolean", &c)),
        }
    }

    pub fn f64(&mut self) -> Result<f64, ModelError> {
        match self.next() {
            Cell::Null => Ok(0.0),
            Cell::F64(v) => Ok(v),
            Cell::I64(v) => Ok(v as f64),
            Cell::I32(v) => Ok(f64::from(v)),
            c => Err(self.wrong("a number", &c)),
        }
    }

    pub fn json(&mut self) -> Result<serde_json::Value, ModelError> {
        match self.next() {
            Cell::Null => Ok(serde_json::Value::Null),
            Cell::Json(v) => Ok(v.into_owned()),
            c => Err(self.wrong("JSON", &c)),
        }
    }
}

impl GoldRow for DateRow {
    const TABLE: &'static Table = &DIM_DATE;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.date_key.cell(),
            self.date.cell(),
            self.day_of_week().cell(),
            self.day_name().cell(),
            self.week_of_year().cell(),
            self.month().cell(),
            self.quarter().cell(),
            self.year().cell(),
            self.is_weekend().cell(),
        ]
    }
}

impl GoldRow for StoreRow {
    const TABLE: &'static Table = &DIM_STORE;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.store_key.cell(),
            self.store_id.as_str().cell(),
            self.name.as_deref().cell(),
            self.format.as_deref().cell(),
            self.city.as_deref().cell(),
            self.region.as_deref().cell(),
            self.country.as_deref().cell(),
            self.timezone.as_str().cell(),
            self.is_inferred.cell(),
            self.updated_at.cell(),
        ]
    }
}

impl FromCells for StoreRow {
    const TABLE: &'static Table = &DIM_STORE;
    fn from_cells(r: &mut Cells) -> Result<Self, ModelError> {
        Ok(StoreRow {
            store_key: r.i32()?,
            store_id: r.text()?,
            name: r.opt_text()?,
            format: r.opt_text()?,
            city: r.opt_text()?,
            region: r.opt_text()?,
            country: r.opt_text()?,
            timezone: r.text()?,
            is_inferred: r.bool()?,
            updated_at: r.ts()?,
        })
    }
}

impl GoldRow for ProductRow {
    const TABLE: &'static Table = &DIM_PRODUCT;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.product_key.cell(),
            self.sku.as_str().cell(),
            self.name.as_deref().cell(),
            self.category.as_deref().cell(),
            self.subcategory.as_deref().cell(),
            self.brand.as_deref().cell(),
            self.unit_of_measure.as_deref().cell(),
            self.case_pack.cell(),
            self.unit_cost.cell(),
            self.unit_price.cell(),
            self.lead_time_days.cell(),
            self.service_level.cell(),
            self.is_inferred.cell(),
            self.valid_from.cell(),
            self.valid_to.cell(),
            self.is_current.cell(),
            self.supplier_id.as_deref().cell(),
            self.min_order_qty.cell(),
            self.shelf_life_days.cell(),
        ]
    }
}

impl FromCells for ProductRow {
    const TABLE: &'static Table = &DIM_PRODUCT;
    fn from_cells(r: &mut Cells) -> Result<Self, ModelError> {
        Ok(ProductRow {
            product_key: r.i32()?,
            sku: r.text()?,
            name: r.opt_text()?,
            category: r.opt_text()?,
            subcategory: r.opt_text()?,
            brand: r.opt_text()?,
            unit_of_measure: r.opt_text()?,
            case_pack: r.opt_i32()?,
            unit_cost: r.opt_dec()?,
            unit_price: r.opt_dec()?,
            lead_time_days: r.opt_i32()?,
            service_level: r.opt_dec()?,
            is_inferred: r.bool()?,
            valid_from: r.ts()?,
            valid_to: r.opt_ts()?,
            is_current: r.bool()?,
            supplier_id: r.opt_text()?,
            min_order_qty: r.opt_dec()?,
            shelf_life_days: r.opt_i32()?,
        })
    }
}

impl GoldRow for SaleRow {
    const TABLE: &'static Table = &FACT_SALES;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.event_id.as_str().cell(),
            self.line_no.cell(),
            self.date_key.cell(),
            self.store_key.cell(),
            self.product_key.cell(),
            self.transaction_id.as_deref().cell(),
            self.register_id.as_deref().cell(),
            self.event_time.cell(),
            self.quantity.cell(),
            self.unit_price.cell(),
            self.discount.cell(),
            self.net_amount.cell(),
            self.payment_method_key.cell(),
            self.client_type_key.cell(),
        ]
    }
}

impl GoldRow for MovementRow {
    const TABLE: &'static Table = &FACT_INVENTORY_MOVEMENT;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.event_id.as_str().cell(),
            self.line_no.cell(),
            self.date_key.cell(),
            self.store_key.cell(),
            self.product_key.cell(),
            self.event_type.cell(),
            self.quantity.cell(),
            self.quantity_delta.cell(),
            self.event_time.cell(),
        ]
    }
}

impl GoldRow for DailyRow {
    const TABLE: &'static Table = &FACT_STOCK_DAILY;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.date_key.cell(),
            self.store_key.cell(),
            self.product_key.cell(),
            self.units_sold.cell(),
            self.units_received.cell(),
            self.units_wasted.cell(),
            self.units_returned.cell(),
            self.units_adjusted.cell(),
            self.net_movement.cell(),
            self.sales_count.cell(),
            self.count_time.cell(),
            self.count_quantity.cell(),
            self.movement_after_count.cell(),
            self.closing_on_hand.cell(),
            self.was_out_of_stock.cell(),
            self.out_of_stock_share.cell(),
        ]
    }
}

impl FromCells for DailyRow {
    const TABLE: &'static Table = &FACT_STOCK_DAILY;
    fn from_cells(r: &mut Cells) -> Result<Self, ModelError> {
        Ok(DailyRow {
            date_key: r.i32()?,
            store_key: r.i32()?,
            product_key: r.i32()?,
            units_sold: r.dec()?,
            units_received: r.dec()?,
            units_wasted: r.dec()?,
            units_returned: r.dec()?,
            units_adjusted: r.dec()?,
            net_movement: r.dec()?,
            sales_count: r.i32()?,
            count_time: r.opt_ts()?,
            count_quantity: r.opt_dec()?,
            movement_after_count: r.dec()?,
            closing_on_hand: r.dec()?,
            was_out_of_stock: r.bool()?,
            out_of_stock_share: r.f64()?,
        })
    }
}

impl GoldRow for LevelRow {
    const TABLE: &'static Table = &STOCK_LEVEL;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.store_key.cell(),
            self.product_key.cell(),
            self.on_hand.cell(),
            self.avg_daily_demand.cell(),
            self.safety_stock.cell(),
            self.reorder_point.cell(),
            self.days_of_cover.cell(),
            self.projected_stockout_at.cell(),
            self.updated_at.cell(),
            self.status.cell(),
            self.demand_sd.cell(),
            self.order_up_to.cell(),
            self.suggested_order_qty.cell(),
            self.on_order.cell(),
            self.expected_delivery_at.cell(),
            self.last_count_at.cell(),
            self.last_count_quantity.cell(),
            self.last_movement_at.cell(),
            self.last_sale_at.cell(),
            self.lead_time_days.cell(),
            self.lead_time_sd_days.cell(),
            self.in_stock_since.cell(),
            self.demand_level.cell(),
            self.demand_var.cell(),
            self.demand_days.cell(),
            self.units_per_sale.cell(),
            self.last_receipt_at.cell(),
            self.receipt_interval_days.cell(),
            self.receipt_qty.cell(),
            self.receipt_count.cell(),
            self.stockout_days.cell(),
            self.order_level.cell(),
            self.ordered_at.cell(),
        ]
    }
}

/// A stock level's status as the model writes it.
fn status(s: &str) -> &'static str {
    match s {
        "out" => "out",
        "below_reorder_point" => "below_reorder_point",
        _ => "fine",
    }
}

impl FromCells for LevelRow {
    const TABLE: &'static Table = &STOCK_LEVEL;
    fn from_cells(r: &mut Cells) -> Result<Self, ModelError> {
        Ok(LevelRow {
            store_key: r.i32()?,
            product_key: r.i32()?,
            on_hand: r.dec()?,
            avg_daily_demand: r.dec()?,
            safety_stock: r.dec()?,
            reorder_point: r.dec()?,
            days_of_cover: r.opt_dec()?,
            projected_stockout_at: r.opt_ts()?,
            updated_at: r.ts()?,
            status: status(&r.text()?),
            demand_sd: r.dec()?,
            order_up_to: r.dec()?,
            suggested_order_qty: r.dec()?,
            on_order: r.dec()?,
            expected_delivery_at: r.opt_ts()?,
            last_count_at: r.opt_ts()?,
            last_count_quantity: r.opt_dec()?,
            last_movement_at: r.opt_ts()?,
            last_sale_at: r.opt_ts()?,
            lead_time_days: r.opt_dec()?,
            lead_time_sd_days: r.opt_dec()?,
            in_stock_since: r.opt_ts()?,
            demand_level: r.f64()?,
            demand_var: r.f64()?,
            demand_days: r.i32()?,
            units_per_sale: r.f64()?,
            last_receipt_at: r.opt_ts()?,
            receipt_interval_days: r.f64()?,
            receipt_qty: r.f64()?,
            receipt_count: r.i32()?,
            stockout_days: r.i32()?,
            order_level: r.f64()?,
            ordered_at: r.opt_ts()?,
        })
    }
}

impl GoldRow for OrderLineRow {
    const TABLE: &'static Table = &PURCHASE_ORDER_LINE;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.order_id.as_str().cell(),
            self.line_no.cell(),
            self.store_key.cell(),
            self.product_key.cell(),
            self.ordered_at.cell(),
            self.expected_at.cell(),
            self.quantity.cell(),
            self.received_quantity.cell(),
            self.status.as_str().cell(),
            self.updated_at.cell(),
            self.version_time.cell(),
            self.version_event_id.as_deref().cell(),
            self.first_received_at.cell(),
            self.last_received_at.cell(),
        ]
    }
}

impl FromCells for OrderLineRow {
    const TABLE: &'static Table = &PURCHASE_ORDER_LINE;
    fn from_cells(r: &mut Cells) -> Result<Self, ModelError> {
        Ok(OrderLineRow {
            order_id: r.text()?,
            line_no: r.i32()?,
            store_key: r.i32()?,
            product_key: r.i32()?,
            ordered_at: r.opt_ts()?,
            expected_at: r.opt_ts()?,
            quantity: r.dec()?,
            received_quantity: r.dec()?,
            status: r.text()?,
            updated_at: r.ts()?,
            version_time: r.opt_ts()?,
            version_event_id: r.opt_text()?,
            first_received_at: r.opt_ts()?,
            last_received_at: r.opt_ts()?,
        })
    }
}

impl GoldRow for SupplierRow {
    const TABLE: &'static Table = &DIM_SUPPLIER;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.supplier_id.as_str().cell(),
            self.name.as_deref().cell(),
            self.lead_time_days.cell(),
            self.order_days.as_deref().cell(),
            self.delivery_days.as_deref().cell(),
            self.is_inferred.cell(),
            self.updated_at.cell(),
        ]
    }
}

impl FromCells for SupplierRow {
    const TABLE: &'static Table = &DIM_SUPPLIER;
    fn from_cells(r: &mut Cells) -> Result<Self, ModelError> {
        Ok(SupplierRow {
            supplier_id: r.text()?,
            name: r.opt_text()?,
            lead_time_days: r.opt_i32()?,
            order_days: r.opt_text()?,
            delivery_days: r.opt_text()?,
            is_inferred: r.bool()?,
            updated_at: r.ts()?,
        })
    }
}

impl GoldRow for ProposalRow {
    const TABLE: &'static Table = &ORDER_PROPOSAL;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.store_key.cell(),
            self.product_key.cell(),
            self.supplier_id.as_deref().cell(),
            self.order_date.cell(),
            self.expected_delivery.cell(),
            self.quantity.cell(),
            self.cases.cell(),
            self.on_hand.cell(),
            self.on_order.cell(),
            self.reason.as_str().cell(),
            self.created_at.cell(),
        ]
    }
}

impl GoldRow for AlertRow {
    const TABLE: &'static Table = &STOCK_ALERT;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.alert_id.cell(),
            self.store_key.cell(),
            self.product_key.cell(),
            self.alert_type.as_str().cell(),
            self.severity.as_str().cell(),
            self.opened_at.cell(),
            self.resolved_at.cell(),
            self.on_hand.cell(),
            self.threshold.cell(),
            self.suggested_order_qty.cell(),
            self.message.as_str().cell(),
            self.updated_at.cell(),
        ]
    }
}

impl FromCells for AlertRow {
    const TABLE: &'static Table = &STOCK_ALERT;
    fn from_cells(r: &mut Cells) -> Result<Self, ModelError> {
        Ok(AlertRow {
            alert_id: r.i64()?,
            store_key: r.i32()?,
            product_key: r.i32()?,
            alert_type: r.text()?,
            severity: r.text()?,
            opened_at: r.ts()?,
            resolved_at: r.opt_ts()?,
            on_hand: r.dec()?,
            threshold: r.dec()?,
            suggested_order_qty: r.dec()?,
            message: r.text()?,
            updated_at: r.ts()?,
        })
    }
}

impl GoldRow for OutboxRow {
    const TABLE: &'static Table = &ALERT_OUTBOX;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.id.cell(),
            self.alert_id.cell(),
            self.change.as_str().cell(),
            self.payload.as_str().cell(),
            self.created_at.cell(),
            0i32.cell(),
        ]
    }
}

impl GoldRow for StoreStateRow {
    const TABLE: &'static Table = &GOLD_STORE_STATE;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.store_key.cell(),
            self.clock.cell(),
            self.local_date.cell(),
            (&self.state).cell(),
        ]
    }
}

impl FromCells for StoreStateRow {
    const TABLE: &'static Table = &GOLD_STORE_STATE;
    fn from_cells(r: &mut Cells) -> Result<Self, ModelError> {
        Ok(StoreStateRow {
            store_key: r.i32()?,
            clock: r.opt_ts()?,
            local_date: r.opt_i32()?,
            state: r.json()?,
        })
    }
}

impl GoldRow for DeadLetterRow {
    const TABLE: &'static Table = &GOLD_DEAD_LETTER;
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.event_id.as_str().cell(),
            self.line_no.cell(),
            self.event_type.as_str().cell(),
            self.event_time.cell(),
            self.store_id.as_str().cell(),
            self.sku.as_str().cell(),
            self.quantity.as_str().cell(),
            self.unit_price.as_deref().cell(),
            self.discount.as_deref().cell(),
            self.silver_version.cell(),
            self.error.as_str().cell(),
            self.dead_at.cell(),
        ]
    }
}

/// A checkpoint as a batch writes it: with the time it is written.
pub struct CheckpointWrite<'a>(pub &'a CheckpointRow, pub DateTime<Utc>);

impl CheckpointWrite<'_> {
    pub fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            self.0.name.as_str().cell(),
            self.0.silver_version.cell(),
            self.0.batch.cell(),
            self.0.lines.cell(),
            self.1.cell(),
        ]
    }
}

impl FromCells for CheckpointRow {
    const TABLE: &'static Table = &GOLD_CHECKPOINT;
    fn from_cells(r: &mut Cells) -> Result<Self, ModelError> {
        Ok(CheckpointRow {
            name: r.text()?,
            silver_version: r.i64()?,
            batch: r.i64()?,
            lines: r.i64()?,
        })
    }
}

/// The SELECT list of a row type read back (its table's columns, each behind `prefix`).
pub fn select_list(t: &Table, prefix: &str) -> String {
    t.columns
        .iter()
        .map(|(n, _)| format!("{prefix}{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decodes rows read with [`select_list`] of `R`'s table.
pub fn decode<R: FromCells>(rows: Vec<Vec<Cell<'static>>>) -> Result<Vec<R>, ModelError> {
    rows.into_iter()
        .map(|values| R::from_cells(&mut Cells::new(R::TABLE.name, values)))
        .collect()
}

/// The cells of rows of a table.
pub fn cells_of<R: GoldRow>(rows: &[R]) -> Vec<Vec<Cell<'_>>> {
    rows.iter().map(GoldRow::cells).collect()
}

/// One gold transaction's writes, whatever the database: rows merged into a table by its
/// rule, and the one statement that is not a merge.
#[allow(async_fn_in_trait)]
pub trait GoldWriter {
    /// Writes `rows` of `table` by its merge rule (stamped with the batch when the table is
    /// stamped), keeps its row count when it is counted, and, for `fact_sales`, adds the
    /// lines it inserted to their store's hour in `fact_sales_hourly`.
    async fn rows(
        &mut self,
        table: &'static Table,
        rows: Vec<Vec<Cell<'_>>>,
    ) -> Result<(), ModelError>;

    /// Points the snapshot rows and open alerts of a product at its new version.
    async fn repoint(&mut self, old: i32, new: i32) -> Result<(), ModelError>;
}

/// Writes a batch through `w`, table by table in the order gold's keys need.
pub async fn write_batch<W: GoldWriter>(w: &mut W, ws: &WriteSet) -> Result<(), ModelError> {
    w.rows(&DIM_DATE, cells_of(&ws.dates)).await?;
    w.rows(&DIM_STORE, cells_of(&ws.stores)).await?;
    // close versions before inserting their successors (one current row per SKU)
    w.rows(&DIM_PRODUCT, cells_of(&ws.products_update)).await?;
    w.rows(&DIM_PRODUCT, cells_of(&ws.products_insert)).await?;
    for (old, new) in &ws.repoint {
        w.repoint(*old, *new).await?;
    }
    w.rows(&FACT_INVENTORY_MOVEMENT, cells_of(&ws.movements))
        .await?;
    // the members the sales name: the "unknown" ones (a rebuild empties every table), and the
    // new ones
    for (table, members) in [
        (&DIM_PAYMENT_METHOD, &ws.payment_methods),
        (&DIM_CLIENT_TYPE, &ws.client_types),
    ] {
        if ws.sales.is_empty() && members.is_empty() {
            continue;
        }
        let mut rows: Vec<Vec<Cell<'_>>> = members
            .iter()
            .map(|(k, n)| vec![(*k).cell(), n.cell()])
            .collect();
        rows.push(vec![0i32.cell(), UNKNOWN_MEMBER.cell()]);
        w.rows(table, rows).await?;
    }
    w.rows(&FACT_SALES, cells_of(&ws.sales)).await?;
    w.rows(&FACT_STOCK_DAILY, cells_of(&ws.daily)).await?;
    w.rows(&DIM_SUPPLIER, cells_of(&ws.suppliers)).await?;
    w.rows(&PURCHASE_ORDER_LINE, cells_of(&ws.order_lines))
        .await?;
    w.rows(&STOCK_LEVEL, cells_of(&ws.levels)).await?;
    w.rows(&ORDER_PROPOSAL, cells_of(&ws.proposals)).await?;
    // resolutions first, so that a reopened alert never meets its predecessor still open
    let (resolved, open): (Vec<&AlertRow>, Vec<&AlertRow>) =
        ws.alerts.iter().partition(|a| a.resolved_at.is_some());
    w.rows(&STOCK_ALERT, resolved.iter().map(|a| a.cells()).collect())
        .await?;
    w.rows(&STOCK_ALERT, open.iter().map(|a| a.cells()).collect())
        .await?;
    w.rows(&ALERT_OUTBOX, cells_of(&ws.outbox)).await?;
    w.rows(&GOLD_STORE_STATE, cells_of(&ws.store_states))
        .await?;
    w.rows(&GOLD_DEAD_LETTER, cells_of(&ws.dead_letters))
        .await?;
    let now = Utc::now();
    let checkpoints: Vec<CheckpointWrite<'_>> = ws
        .checkpoints
        .iter()
        .map(|c| CheckpointWrite(c, now))
        .collect();
    w.rows(
        &GOLD_CHECKPOINT,
        checkpoints.iter().map(CheckpointWrite::cells).collect(),
    )
    .await
}

/// The statement that points a product's snapshot rows and open alerts at its new version,
/// with the dialect's parameter marks for (old, new, batch).
pub fn repoint_sql(marks: [&str; 3]) -> [String; 5] {
    let [old, new, batch] = marks;
    [
        format!(
            "UPDATE stock_level SET product_key = {new}, gold_batch = {batch} WHERE product_key = {old}"
        ),
        format!(
            "UPDATE fact_stock_daily SET product_key = {new}, gold_batch = {batch} WHERE product_key = {old}"
        ),
        format!(
            "UPDATE stock_alert SET product_key = {new}, gold_batch = {batch} WHERE product_key = {old} AND resolved_at IS NULL"
        ),
        format!(
            "UPDATE purchase_order_line SET product_key = {new}, gold_batch = {batch} WHERE product_key = {old}"
        ),
        format!(
            "UPDATE order_proposal SET product_key = {new}, gold_batch = {batch} WHERE product_key = {old}"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_type_gives_a_value_per_column() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let level = LevelRow {
            store_key: 1,
            product_key: 2,
            on_hand: Decimal::ONE,
            avg_daily_demand: Decimal::ONE,
            safety_stock: Decimal::ONE,
            reorder_point: Decimal::ONE,
            days_of_cover: None,
            projected_stockout_at: None,
            updated_at: t,
            status: "fine",
            demand_sd: Decimal::ONE,
            order_up_to: Decimal::ONE,
            suggested_order_qty: Decimal::ONE,
            on_order: Decimal::ONE,
            expected_delivery_at: None,
            last_count_at: None,
            last_count_quantity: None,
            last_movement_at: None,
            last_sale_at: None,
            lead_time_days: None,
            lead_time_sd_days: None,
            in_stock_since: None,
            demand_level: 1.0,
            demand_var: 1.0,
            demand_days: 1,
            units_per_sale: 1.0,
            last_receipt_at: None,
            receipt_interval_days: 1.0,
            receipt_qty: 1.0,
            receipt_count: 1,
            stockout_days: 1,
            order_level: 1.0,
            ordered_at: Some(t),
        };
        assert_eq!(level.cells().len(), STOCK_LEVEL.columns.len());
        let back = LevelRow::from_cells(&mut Cells::new("stock_level", owned(level.cells())))
            .expect("decoded");
        assert_eq!(back, level);
        let daily = DailyRow::default();
        assert_eq!(daily.cells().len(), FACT_STOCK_DAILY.columns.len());
        assert_eq!(
            DailyRow::from_cells(&mut Cells::new("d", owned(daily.cells()))).expect("decoded"),
            daily
        );
        let date = DateRow::new(NaiveDate::from_ymd_opt(2026, 12, 7).unwrap_or_default());
        assert_eq!(date.cells().len(), DIM_DATE.columns.len());
        let store = StoreRow::inferred(3, "S", t);
        assert_eq!(store.cells().len(), DIM_STORE.columns.len());
        assert_eq!(
            StoreRow::from_cells(&mut Cells::new("s", owned(store.cells()))).expect("decoded"),
            store
        );
    }

    fn owned(cells: Vec<Cell<'_>>) -> Vec<Cell<'static>> {
        cells
            .into_iter()
            .map(|c| match c {
                Cell::Text(t) => Cell::Text(Cow::Owned(t.into_owned())),
                Cell::Json(j) => Cell::Json(Cow::Owned(j.into_owned())),
                Cell::Null => Cell::Null,
                Cell::I16(v) => Cell::I16(v),
                Cell::I32(v) => Cell::I32(v),
                Cell::I64(v) => Cell::I64(v),
                Cell::Dec(v) => Cell::Dec(v),
                Cell::Ts(v) => Cell::Ts(v),
                Cell::Date(v) => Cell::Date(v),
                Cell::Bool(v) => Cell::Bool(v),
                Cell::F64(v) => Cell::F64(v),
            })
            .collect()
    }

    #[test]
    fn merges_are_generated_from_the_description() {
        assert_eq!(
            FACT_SALES.on_conflict("EXCLUDED"),
            " ON CONFLICT (event_id, line_no) DO NOTHING"
        );
        let up = GOLD_CHECKPOINT.on_conflict("excluded");
        assert_eq!(
            up,
            " ON CONFLICT (name) DO UPDATE SET silver_version = excluded.silver_version, batch = excluded.batch, lines = excluded.lines, updated_at = excluded.updated_at"
        );
        assert!(
            STOCK_ALERT
                .update_set("e")
                .ends_with("gold_batch = e.gold_batch")
        );
        assert_eq!(ALERT_OUTBOX.on_conflict("e"), "");
    }
}
