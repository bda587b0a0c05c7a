//! The rows of the gold tables as Rust values, and the write set of one gold transaction.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq)]
pub struct DateRow {
    pub date_key: i32,
    pub date: NaiveDate,
}

impl DateRow {
    pub fn new(date: NaiveDate) -> DateRow {
        DateRow {
            date_key: date_key(date),
            date,
        }
    }
    pub fn day_of_week(&self) -> i16 {
        self.date.weekday().number_from_monday() as i16
    }
    pub fn day_name(&self) -> &'static str {
        [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ][self.date.weekday().num_days_from_monday() as usize]
    }
    pub fn week_of_year(&self) -> i16 {
        self.date.iso_week().week() as i16
    }
    pub fn month(&self) -> i16 {
        self.date.month() as i16
    }
    pub fn quarter(&self) -> i16 {
        self.date.month0() as i16 / 3 + 1
    }
    pub fn year(&self) -> i16 {
        self.date.year() as i16
    }
    pub fn is_weekend(&self) -> bool {
        self.date.weekday().num_days_from_monday() >= 5
    }
}

/// `YYYYMMDD` of a date.
pub fn date_key(d: NaiveDate) -> i32 {
    d.year() * 10_000 + d.month() as i32 * 100 + d.day() as i32
}

/// The date of a `YYYYMMDD` key.
pub fn key_date(k: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(k / 10_000, (k / 100 % 100) as u32, (k % 100) as u32)
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreRow {
    pub store_key: i32,
    pub store_id: String,
    pub name: Option<String>,
    pub format: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub timezone: String,
    pub is_inferred: bool,
    pub updated_at: DateTime<Utc>,
}

impl StoreRow {
    /// An inferred member: a store that events name and master data does not (yet).
    pub fn inferred(store_key: i32, store_id: &str, updated_at: DateTime<Utc>) -> StoreRow {
        StoreRow {
            store_key,
            store_id: store_id.to_string(),
            name: None,
            format: None,
            city: None,
            region: None,
            country: None,
            timezone: "UTC".into(),
            is_inferred: true,
            updated_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProductRow {
    pub product_key: i32,
    pub sku: String,
    pub name: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub brand: Option<String>,
    pub unit_of_measure: Option<String>,
    pub case_pack: Option<i32>,
    pub unit_cost: Option<Decimal>,
    pub unit_price: Option<Decimal>,
    pub lead_time_days: Option<i32>,
    pub service_level: Option<Decimal>,
    /// Who delivers it (`dim_supplier`), its least order and how many days it keeps.
    pub supplier_id: Option<String>,
    pub min_order_qty: Option<Decimal>,
    pub shelf_life_days: Option<i32>,
    pub is_inferred: bool,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
    pub is_current: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SaleRow {
    pub event_id: String,
    pub line_no: i32,
    pub date_key: i32,
    pub store_key: i32,
    pub product_key: i32,
    pub transaction_id: Option<String>,
    pub register_id: Option<String>,
    pub event_time: DateTime<Utc>,
    pub quantity: Decimal,
    pub unit_price: Option<Decimal>,
    pub discount: Option<Decimal>,
    pub net_amount: Option<Decimal>,
    /// `dim_payment_method`; 0 is the "unknown" member.
    pub payment_method_key: i32,
    /// `dim_client_type`; 0 is the "unknown" member.
    pub client_type_key: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MovementRow {
    pub event_id: String,
    pub line_no: i32,
    pub date_key: i32,
    pub store_key: i32,
    pub product_key: i32,
    pub event_type: &'static str,
    pub quantity: Decimal,
    pub quantity_delta: Decimal,
    pub event_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DailyRow {
    pub date_key: i32,
    pub store_key: i32,
    pub product_key: i32,
    pub units_sold: Decimal,
    pub units_received: Decimal,
    pub units_wasted: Decimal,
    pub units_returned: Decimal,
    pub units_adjusted: Decimal,
    pub net_movement: Decimal,
    pub sales_count: i32,
    pub count_time: Option<DateTime<Utc>>,
    pub count_quantity: Option<Decimal>,
    pub movement_after_count: Decimal,
    pub closing_on_hand: Decimal,
    pub was_out_of_stock: bool,
    /// The share of the day's usual sales that fell while the shelf was empty on record.
    pub out_of_stock_share: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LevelRow {
    pub store_key: i32,
    pub product_key: i32,
    pub on_hand: Decimal,
    pub avg_daily_demand: Decimal,
    pub safety_stock: Decimal,
    pub reorder_point: Decimal,
    pub days_of_cover: Option<Decimal>,
    pub projected_stockout_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub status: &'static str,
    pub demand_sd: Decimal,
    pub order_up_to: Decimal,
    pub suggested_order_qty: Decimal,
    pub on_order: Decimal,
    pub expected_delivery_at: Option<DateTime<Utc>>,
    pub last_count_at: Option<DateTime<Utc>>,
    pub last_count_quantity: Option<Decimal>,
    pub last_movement_at: Option<DateTime<Utc>>,
    pub last_sale_at: Option<DateTime<Utc>>,
    /// The lead time in days and its deviation, learnt from purchase orders and their receipts
    /// (or, until learnt, the master data's, with no deviation).
    pub lead_time_days: Option<Decimal>,
    pub lead_time_sd_days: Option<Decimal>,
    pub in_stock_since: Option<DateTime<Utc>>,
    pub demand_level: f64,
    pub demand_var: f64,
    pub demand_days: i32,
    pub units_per_sale: f64,
    pub last_receipt_at: Option<DateTime<Utc>>,
    pub receipt_interval_days: f64,
    pub receipt_qty: f64,
    pub receipt_count: i32,
    /// One bit per closed day, newest lowest: the shelf ran empty on record that day.
    pub stockout_days: i32,
    /// The stock on hand at which the store orders, learnt from its deliveries (0 = unknown).
    pub order_level: f64,
    /// When stock last fell to that level since the last delivery: the store's order, inferred.
    pub ordered_at: Option<DateTime<Utc>>,
}

/// A line of a purchase order (`purchase_order_line`).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLineRow {
    pub order_id: String,
    pub line_no: i32,
    pub store_key: i32,
    pub product_key: i32,
    pub ordered_at: Option<DateTime<Utc>>,
    pub expected_at: Option<DateTime<Utc>>,
    pub quantity: Decimal,
    pub received_quantity: Decimal,
    pub status: String,
    pub version_time: Option<DateTime<Utc>>,
    pub version_event_id: Option<String>,
    pub first_received_at: Option<DateTime<Utc>>,
    pub last_received_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A supplier (`dim_supplier`), from `suppliers.csv` or inferred from a product that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplierRow {
    pub supplier_id: String,
    pub name: Option<String>,
    pub lead_time_days: Option<i32>,
    /// Weekdays as `suppliers.csv` writes them (`Mon Thu`), empty for every day.
    pub order_days: Option<String>,
    pub delivery_days: Option<String>,
    pub is_inferred: bool,
    pub updated_at: DateTime<Utc>,
}

/// An order proposal (`order_proposal`): what a store should order of a product on its next
/// order day, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalRow {
    pub store_key: i32,
    pub product_key: i32,
    pub supplier_id: Option<String>,
    pub order_date: NaiveDate,
    pub expected_delivery: DateTime<Utc>,
    pub quantity: Decimal,
    pub cases: i32,
    pub on_hand: Decimal,
    pub on_order: Decimal,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub alert_id: i64,
    pub store_key: i32,
    pub product_key: i32,
    pub alert_type: String,
    pub severity: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub on_hand: Decimal,
    pub threshold: Decimal,
    pub suggested_order_qty: Decimal,
    pub message: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub alert_id: i64,
    pub change: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreStateRow {
    pub store_key: i32,
    pub clock: Option<DateTime<Utc>>,
    pub local_date: Option<i32>,
    pub state: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRow {
    pub name: String,
    pub silver_version: i64,
    pub batch: i64,
    pub lines: i64,
}

/// A silver line gold could not take (its values do not fit gold's columns, or gold refused it
/// for another reason of its own data), set aside in `gold_dead_letter` with the error, in the
/// same transaction as the rest of its batch.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterRow {
    pub event_id: String,
    pub line_no: i32,
    pub event_type: String,
    pub event_time: DateTime<Utc>,
    pub store_id: String,
    pub sku: String,
    /// The line's numbers as text: exact, whatever their size.
    pub quantity: String,
    pub unit_price: Option<String>,
    pub discount: Option<String>,
    /// The silver version the line came with.
    pub silver_version: i64,
    pub error: String,
    pub dead_at: DateTime<Utc>,
}

/// Recorded quantities (3 decimals) in gold stay below this in magnitude, money (4 decimals)
/// below [`MONEY_BOUND`]: 15 significant digits, which every column holds exactly, SQLite's
/// numbers included (decision 0004). Refine keeps single values within them; these bounds
/// also hold what lines add up to (a key's stock, a day's units).
pub const QUANTITY_BOUND: i64 = stocklake_event::QUANTITY_LIMIT;
pub const MONEY_BOUND: i64 = stocklake_event::MONEY_LIMIT;

/// Checks values against a bound, naming the first that breaks it.
struct Bounds(Option<String>);

impl Bounds {
    fn check(
        &mut self,
        table: &str,
        column: &str,
        key: &dyn std::fmt::Display,
        v: Decimal,
        bound: i64,
    ) {
        if self.0.is_none() && v.abs() >= Decimal::from(bound) {
            self.0 = Some(format!(
                "{table}.{column} = {} for {key} is out of range: gold holds recorded values below {bound} exactly",
                v.normalize()
            ));
        }
    }
    fn qty(&mut self, table: &str, column: &str, key: &dyn std::fmt::Display, v: Decimal) {
        self.check(table, column, key, v, QUANTITY_BOUND);
    }
    fn money(
        &mut self,
        table: &str,
        column: &str,
        key: &dyn std::fmt::Display,
        v: Option<Decimal>,
    ) {
        if let Some(v) = v {
            self.check(table, column, key, v, MONEY_BOUND);
        }
    }
}

/// The name of the member of `dim_payment_method` and `dim_client_type` (key 0) a sale that
/// says nothing of them is attached to.
pub const UNKNOWN_MEMBER: &str = "unknown";

/// Everything one gold transaction writes, together with its checkpoint.
#[derive(Debug, Clone, Default)]
pub struct WriteSet {
    pub dates: Vec<DateRow>,
    /// Inserted or updated by `store_key`.
    pub stores: Vec<StoreRow>,
    /// New product rows (new SKUs, inferred members, new type-2 versions).
    pub products_insert: Vec<ProductRow>,
    /// Rows changed in place (type-1 fields, filling inferred members, closing a version).
    pub products_update: Vec<ProductRow>,
    /// A SKU's current version changed: snapshot rows follow it (old key, new key).
    pub repoint: Vec<(i32, i32)>,
    /// New members of `dim_payment_method` and `dim_client_type`: (key, name).
    pub payment_methods: Vec<(i32, String)>,
    pub client_types: Vec<(i32, String)>,
    pub sales: Vec<SaleRow>,
    pub movements: Vec<MovementRow>,
    /// Upserted by (store, order, product).
    pub order_lines: Vec<OrderLineRow>,
    /// Upserted by supplier id.
    pub suppliers: Vec<SupplierRow>,
    /// Upserted by (store, product): a key's proposal for its next order day (quantity 0 once
    /// nothing is to be ordered).
    pub proposals: Vec<ProposalRow>,
    /// Upserted by (store, product, date).
    pub daily: Vec<DailyRow>,
    /// Upserted by (store, product).
    pub levels: Vec<LevelRow>,
    /// Upserted by `alert_id`.
    pub alerts: Vec<AlertRow>,
    pub outbox: Vec<OutboxRow>,
    pub store_states: Vec<StoreStateRow>,
    pub checkpoints: Vec<CheckpointRow>,
    /// Lines set aside: inserted once by (event_id, line_no).
    pub dead_letters: Vec<DeadLetterRow>,
    /// The gold batch every row this write set inserts or changes is stamped with
    /// (`gold_batch`, migration 7): the batch of the checkpoint it writes, or, when it moves
    /// no checkpoint (master data alone), the batch that comes next. The gold lake publishes
    /// by it.
    pub stamp: i64,
}

impl WriteSet {
    /// The first recorded value of the batch that gold cannot hold (see [`QUANTITY_BOUND`]):
    /// a fact's quantity or amount, or what the lines add up to in a key's stock or a day's
    /// snapshot. Estimates (demand, safety stock, reorder point, cover) are not recorded values:
    /// the policy keeps them within the bounds itself.
    pub fn out_of_range(&self) -> Option<String> {
        let mut b = Bounds(None);
        for r in &self.sales {
            let k = format!("line {}#{}", r.event_id, r.line_no);
            b.qty("fact_sales", "quantity", &k, r.quantity);
            b.money("fact_sales", "unit_price", &k, r.unit_price);
            b.money("fact_sales", "discount", &k, r.discount);
            b.money("fact_sales", "net_amount", &k, r.net_amount);
        }
        for r in &self.movements {
            let k = format!("line {}#{}", r.event_id, r.line_no);
            b.qty("fact_inventory_movement", "quantity", &k, r.quantity);
            b.qty(
                "fact_inventory_movement",
                "quantity_delta",
                &k,
                r.quantity_delta,
            );
        }
        for r in &self.daily {
            let k = format!(
                "store {} product {} day {}",
                r.store_key, r.product_key, r.date_key
            );
            for (column, v) in [
                ("units_sold", r.units_sold),
                ("units_received", r.units_received),
                ("units_wasted", r.units_wasted),
                ("units_returned", r.units_returned),
                ("units_adjusted", r.units_adjusted),
                ("net_movement", r.net_movement),
                ("movement_after_count", r.movement_after_count),
                ("closing_on_hand", r.closing_on_hand),
            ] {
                b.qty("fact_stock_daily", column, &k, v);
            }
            if let Some(c) = r.count_quantity {
                b.qty("fact_stock_daily", "count_quantity", &k, c);
            }
        }
        for r in &self.levels {
            let k = format!("store {} product {}", r.store_key, r.product_key);
            b.qty("stock_level", "on_hand", &k, r.on_hand);
            if let Some(c) = r.last_count_quantity {
                b.qty("stock_level", "last_count_quantity", &k, c);
            }
        }
        for r in &self.alerts {
            b.qty(
                "stock_alert",
                "on_hand",
                &format!("alert {}", r.alert_id),
                r.on_hand,
            );
        }
        b.0
    }

    pub fn is_empty(&self) -> bool {
        self.dates.is_empty()
            && self.stores.is_empty()
            && self.products_insert.is_empty()
            && self.products_update.is_empty()
            && self.sales.is_empty()
            && self.movements.is_empty()
            && self.daily.is_empty()
            && self.levels.is_empty()
            && self.alerts.is_empty()
            && self.checkpoints.is_empty()
            && self.dead_letters.is_empty()
    }
}

/// A stock level as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StockView {
    pub store_id: String,
    pub store_name: Option<String>,
    pub sku: String,
    pub product_name: Option<String>,
    pub category: Option<String>,
    pub unit_of_measure: Option<String>,
    pub on_hand: Decimal,
    pub avg_daily_demand: Decimal,
    pub safety_stock: Decimal,
    pub reorder_point: Decimal,
    pub days_of_cover: Option<Decimal>,
    pub projected_stockout_at: Option<DateTime<Utc>>,
    pub suggested_order_qty: Decimal,
    pub on_order: Decimal,
    pub status: String,
    pub updated_at: DateTime<Utc>,
}

/// An alert as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertView {
    pub alert_id: i64,
    pub store_id: String,
    pub store_name: Option<String>,
    pub sku: String,
    pub product_name: Option<String>,
    pub category: Option<String>,
    pub alert_type: String,
    pub severity: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub on_hand: Decimal,
    pub threshold: Decimal,
    pub suggested_order_qty: Decimal,
    pub message: String,
    /// Whom a person assigned the alert to (`POST /v1/alerts/{id}/actions`).
    pub assignee: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub snoozed_until: Option<DateTime<Utc>>,
    /// The outcome a person resolved the alert with, while the model still sees it open.
    pub outcome: Option<String>,
}

/// An order proposal as the API, the CLI and the dashboard show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OrderView {
    pub store_id: String,
    pub sku: String,
    pub product_name: Option<String>,
    pub supplier_id: Option<String>,
    pub order_date: NaiveDate,
    pub expected_delivery: DateTime<Utc>,
    pub quantity: Decimal,
    pub cases: i64,
    pub case_pack: Option<i64>,
    pub on_hand: Decimal,
    pub on_order: Decimal,
    pub reason: String,
}

impl OrderView {
    /// The CSV columns, in order (docs/contract.md §4, `GET /v1/orders?format=csv`).
    pub const CSV_HEADER: [&'static str; 11] = [
        "store_id",
        "sku",
        "product_name",
        "supplier_id",
        "order_date",
        "expected_delivery",
        "quantity",
        "cases",
        "on_hand",
        "on_order",
        "reason",
    ];

    /// Proposals as CSV with a header row, for upload into an ordering system.
    pub fn to_csv(rows: &[OrderView]) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(Self::CSV_HEADER);
        for r in rows {
            let _ = w.write_record([
                r.store_id.as_str(),
                r.sku.as_str(),
                r.product_name.as_deref().unwrap_or(""),
                r.supplier_id.as_deref().unwrap_or(""),
                &r.order_date.to_string(),
                &r.expected_delivery
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                &r.quantity.normalize().to_string(),
                &r.cases.to_string(),
                &r.on_hand.normalize().to_string(),
                &r.on_order.normalize().to_string(),
                r.reason.as_str(),
            ]);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_beyond_fifteen_digits_are_named() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let sale = |q: i64, price: Option<Decimal>| SaleRow {
            event_id: "e".into(),
            line_no: 1,
            date_key: 20261201,
            store_key: 1,
            product_key: 2,
            transaction_id: None,
            register_id: None,
            event_time: t,
            quantity: Decimal::new(q, 3),
            unit_price: price,
            discount: None,
            net_amount: price.map(|p| p * Decimal::new(q, 3)),
            payment_method_key: 0,
            client_type_key: 0,
        };
        let mut ws = WriteSet::default();
        ws.sales.push(sale(999_999_999_999_999, None));
        assert_eq!(ws.out_of_range(), None, "999999999999.999 fits");
        ws.sales.push(sale(1_000_000_000_000_000, None));
        assert!(
            ws.out_of_range()
                .is_some_and(|e| e.contains("fact_sales.quantity") && e.contains("line e#1")),
            "{:?}",
            ws.out_of_range()
        );
        let mut ws = WriteSet::default();
        ws.sales
            .push(sale(1_000, Some(Decimal::new(999_999_999_999_999, 4))));
        assert_eq!(ws.out_of_range(), None);
        ws.sales
            .push(sale(2_000, Some(Decimal::new(999_999_999_999_999, 4))));
        assert!(ws.out_of_range().is_some_and(|e| e.contains("net_amount")));
        let mut ws = WriteSet::default();
        ws.daily.push(DailyRow {
            units_sold: Decimal::from(QUANTITY_BOUND),
            ..DailyRow::default()
        });
        assert!(
            ws.out_of_range()
                .is_some_and(|e| e.contains("fact_stock_daily.units_sold"))
        );
    }

    #[test]
    fn date_attributes() {
        let d = DateRow::new(NaiveDate::from_ymd_opt(2026, 11, 29).expect("date"));
        assert_eq!(d.date_key, 20261129);
        assert_eq!(d.day_of_week(), 7);
        assert_eq!(d.day_name(), "Sunday");
        assert!(d.is_weekend());
        assert_eq!(d.quarter(), 4);
        assert_eq!(d.week_of_year(), 48);
        assert_eq!(key_date(20261129), Some(d.date));
        assert_eq!(key_date(20261340), None);
    }
}
