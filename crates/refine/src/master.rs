//! Master data: `products.csv` and `stores.csv` (docs/contract.md §3) into the silver tables `products`
//! and `stores`.
//!
//! Each load is validated as a whole — a bad row fails the load with its file, line and column
//! named, and silver keeps the previous version. A load that changes nothing writes nothing; a
//! change replaces the table's content in one commit, so every earlier version stays readable by
//! Delta time travel (and the gold model turns the differences into type-2 history).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use deltalake::arrow::array::{
    ArrayRef, Decimal128Builder, Float64Builder, Int32Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Remove};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::TryStreamExt;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use stocklake_storage::{AwsOptions, Location};

use crate::RefineError;
use crate::refiner::META_KEY;
use stocklake_silver::read::active_files;
use stocklake_silver::tables::{
    MONEY, PRODUCTS, PRODUCTS_SCHEMA, QTY, STORES, STORES_SCHEMA, SUPPLIERS, SUPPLIERS_SCHEMA,
    open_or_create,
};

/// One product row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRow {
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
    pub service_level: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_order_qty: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shelf_life_days: Option<i32>,
}

/// One supplier row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplierRow {
    pub supplier_id: String,
    pub name: Option<String>,
    pub lead_time_days: Option<i32>,
    /// Weekdays, `Mon Thu` (normalised); `None` for every day.
    pub order_days: Option<String>,
    pub delivery_days: Option<String>,
}

/// One store row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRow {
    pub store_id: String,
    pub name: Option<String>,
    pub format: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub timezone: Option<String>,
}

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MasterReport {
    pub products: Option<usize>,
    pub stores: Option<usize>,
    pub suppliers: Option<usize>,
    /// Tables whose content changed (a new version).
    pub changed: Vec<&'static str>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MasterMeta {
    kind: String,
    hash: String,
    rows: usize,
}

struct Csv {
    file: String,
    headers: HashMap<String, usize>,
}

impl Csv {
    fn err(&self, line: u64, col: &str, msg: impl std::fmt::Display) -> RefineError {
        RefineError::MasterData(format!("{} line {line}, column {col}: {msg}", self.file))
    }
    fn get<'r>(&self, rec: &'r csv::StringRecord, col: &str) -> Option<&'r str> {
        self.headers
            .get(col)
            .and_then(|i| rec.get(*i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

fn open_csv(
    path: &Path,
    known: &[&str],
    required: &str,
) -> Result<(Csv, csv::Reader<std::fs::File>), RefineError> {
    let file = path.display().to_string();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| RefineError::MasterData(format!("{file}: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| RefineError::MasterData(format!("{file}: {e}")))?
        .clone();
    let mut map = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim().trim_start_matches('\u{feff}').to_string();
        if !known.contains(&h.as_str()) {
            return Err(RefineError::MasterData(format!(
                "{file}: unknown column {h:?} (columns: {})",
                known.join(",")
            )));
        }
        if map.insert(h.clone(), i).is_some() {
            return Err(RefineError::MasterData(format!(
                "{file}: column {h:?} appears twice"
            )));
        }
    }
    if !map.contains_key(required) {
        return Err(RefineError::MasterData(format!(
            "{file}: the required column {required:?} is missing"
        )));
    }
    Ok((Csv { file, headers: map }, reader))
}

fn money(csv: &Csv, line: u64, col: &str, v: Option<&str>) -> Result<Option<Decimal>, RefineError> {
    let Some(v) = v else { return Ok(None) };
    let d: Decimal = v
        .parse()
        .map_err(|_| csv.err(line, col, format!("{v:?} is not a decimal number")))?;
    if d.is_sign_negative() {
        return Err(csv.err(line, col, format!("{v} is negative")));
    }
    if d.normalize().scale() > 4 {
        return Err(csv.err(line, col, format!("{v} has more than 4 decimals")));
    }
    if d >= Decimal::from(stocklake_event::MONEY_LIMIT) {
        return Err(csv.err(
            line,
            col,
            format!("{v} is not below {}", stocklake_event::MONEY_LIMIT),
        ));
    }
    Ok(Some(d))
}

/// A text column: at most 256 characters of printable text (the same bound as the names a
/// legacy record carries); a key column (`sku`, `store_id`): at most 128, as in events.
fn text(csv: &Csv, line: u64, col: &str, v: Option<&str>) -> Result<Option<String>, RefineError> {
    let Some(v) = v else { return Ok(None) };
    let key = matches!(col, "sku" | "store_id" | "supplier_id");
    if key && v.chars().count() > stocklake_event::MAX_ID_CHARS {
        return Err(csv.err(
            line,
            col,
            format!("longer than {} characters", stocklake_event::MAX_ID_CHARS),
        ));
    }
    if let Some(why) = stocklake_event::text_problem(v) {
        return Err(csv.err(line, col, why));
    }
    Ok(Some(v.to_string()))
}

fn int(
    csv: &Csv,
    line: u64,
    col: &str,
    v: Option<&str>,
    min: i32,
) -> Result<Option<i32>, RefineError> {
    let Some(v) = v else { return Ok(None) };
    let n: i32 = v
        .parse()
        .map_err(|_| csv.err(line, col, format!("{v:?} is not a whole number")))?;
    if n < min {
        return Err(csv.err(line, col, format!("{n} is below {min}")));
    }
    Ok(Some(n))
}

/// Reads and validates `products.csv`.
pub fn read_products(path: &Path) -> Result<Vec<ProductRow>, RefineError> {
    let known = [
        "sku",
        "name",
        "category",
        "subcategory",
        "brand",
        "unit_of_measure",
        "case_pack",
        "unit_cost",
        "unit_price",
        "lead_time_days",
        "service_level",
        "supplier_id",
        "min_order_qty",
        "shelf_life_days",
    ];
    let (csv, mut reader) = open_csv(path, &known, "sku")?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| RefineError::MasterData(format!("{}: {e}", csv.file)))?;
        let line = rec.position().map_or(0, |p| p.line());
        let s = |c: &str| text(&csv, line, c, csv.get(&rec, c));
        let sku = s("sku")?.ok_or_else(|| csv.err(line, "sku", "is empty"))?;
        if !seen.insert(sku.clone()) {
            return Err(csv.err(line, "sku", format!("{sku:?} appears twice")));
        }
        let uom = s("unit_of_measure")?;
        if let Some(u) = &uom
            && u != "each"
            && u != "kg"
        {
            return Err(csv.err(line, "unit_of_measure", format!("{u:?} is not each or kg")));
        }
        let service_level = match csv.get(&rec, "service_level") {
            None => None,
            Some(v) => {
                let f: f64 = v.parse().map_err(|_| {
                    csv.err(line, "service_level", format!("{v:?} is not a number"))
                })?;
                if !(0.5..1.0).contains(&f) {
                    return Err(csv.err(
                        line,
                        "service_level",
                        format!("{f} is not a fraction in [0.5, 1)"),
                    ));
                }
                Some(f)
            }
        };
        out.push(ProductRow {
            name: s("name")?,
            category: s("category")?,
            subcategory: s("subcategory")?,
            brand: s("brand")?,
            unit_of_measure: uom,
            case_pack: int(&csv, line, "case_pack", csv.get(&rec, "case_pack"), 1)?,
            unit_cost: money(&csv, line, "unit_cost", csv.get(&rec, "unit_cost"))?,
            unit_price: money(&csv, line, "unit_price", csv.get(&rec, "unit_price"))?,
            lead_time_days: int(
                &csv,
                line,
                "lead_time_days",
                csv.get(&rec, "lead_time_days"),
                0,
            )?,
            service_level,
            supplier_id: s("supplier_id")?,
            min_order_qty: quantity(&csv, line, "min_order_qty", csv.get(&rec, "min_order_qty"))?,
            shelf_life_days: int(
                &csv,
                line,
                "shelf_life_days",
                csv.get(&rec, "shelf_life_days"),
                1,
            )?,
            sku,
        });
    }
    Ok(out)
}

/// A positive quantity with at most 3 decimals, as event quantities.
fn quantity(
    csv: &Csv,
    line: u64,
    col: &str,
    v: Option<&str>,
) -> Result<Option<Decimal>, RefineError> {
    let Some(v) = v else { return Ok(None) };
    let d: Decimal = v
        .parse()
        .map_err(|_| csv.err(line, col, format!("{v:?} is not a decimal number")))?;
    if d <= Decimal::ZERO {
        return Err(csv.err(line, col, format!("{v} is not above 0")));
    }
    if d.normalize().scale() > 3 {
        return Err(csv.err(line, col, format!("{v} has more than 3 decimals")));
    }
    if d >= Decimal::from(stocklake_event::QUANTITY_LIMIT) {
        return Err(csv.err(line, col, format!("{v} is too large")));
    }
    Ok(Some(d))
}

/// Weekdays as `Mon Thu` (any case, separated by spaces or commas), normalised to the week's
/// order; `None` when empty (every day).
pub fn weekdays(
    csv_file: &str,
    line: u64,
    col: &str,
    v: Option<&str>,
) -> Result<Option<String>, RefineError> {
    const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let Some(v) = v else { return Ok(None) };
    let mut bits = 0u8;
    for word in v.split([' ', ',', ';']).filter(|w| !w.is_empty()) {
        let i = NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(word))
            .ok_or_else(|| {
                RefineError::MasterData(format!(
                    "{csv_file} line {line}, column {col}: {word:?} is not a weekday (Mon Tue Wed Thu Fri Sat Sun)"
                ))
            })?;
        bits |= 1 << i;
    }
    if bits == 0 || bits == 0x7f {
        return Ok(None);
    }
    Ok(Some(
        (0..7)
            .filter(|i| bits & (1 << i) != 0)
            .map(|i| NAMES[i])
            .collect::<Vec<_>>()
            .join(" "),
    ))
}

/// Reads and validates `suppliers.csv`.
pub fn read_suppliers(path: &Path) -> Result<Vec<SupplierRow>, RefineError> {
    let known = [
        "supplier_id",
        "name",
        "lead_time_days",
        "order_days",
        "delivery_days",
    ];
    let (csv, mut reader) = open_csv(path, &known, "supplier_id")?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| RefineError::MasterData(format!("{}: {e}", csv.file)))?;
        let line = rec.position().map_or(0, |p| p.line());
        let s = |c: &str| text(&csv, line, c, csv.get(&rec, c));
        let supplier_id =
            s("supplier_id")?.ok_or_else(|| csv.err(line, "supplier_id", "is empty"))?;
        if !seen.insert(supplier_id.clone()) {
            return Err(csv.err(
                line,
                "supplier_id",
                format!("{supplier_id:?} appears twice"),
            ));
        }
        out.push(SupplierRow {
            name: s("name")?,
            lead_time_days: int(
                &csv,
                line,
                "lead_time_days",
                csv.get(&rec, "lead_time_days"),
                0,
            )?,
            order_days: weekdays(&csv.file, line, "order_days", csv.get(&rec, "order_days"))?,
            delivery_days: weekdays(
                &csv.file,
                line,
                "delivery_days",
                csv.get(&rec, "delivery_days"),
            )?,
            supplier_id,
        });
    }
    Ok(out)
}

/// Reads and validates `stores.csv`.
pub fn read_stores(path: &Path) -> Result<Vec<StoreRow>, RefineError> {
    let known = [
        "store_id", "name", "format", "city", "region", "country", "timezone",
    ];
    let (csv, mut reader) = open_csv(path, &known, "store_id")?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| RefineError::MasterData(format!("{}: {e}", csv.file)))?;
        let line = rec.position().map_or(0, |p| p.line());
        let s = |c: &str| text(&csv, line, c, csv.get(&rec, c));
        let store_id = s("store_id")?.ok_or_else(|| csv.err(line, "store_id", "is empty"))?;
        if !seen.insert(store_id.clone()) {
            return Err(csv.err(line, "store_id", format!("{store_id:?} appears twice")));
        }
        let timezone = s("timezone")?;
        if let Some(tz) = &timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(csv.err(line, "timezone", format!("{tz:?} is not an IANA time zone")));
        }
        out.push(StoreRow {
            name: s("name")?,
            format: s("format")?,
            city: s("city")?,
            region: s("region")?,
            country: s("country")?,
            timezone,
            store_id,
        });
    }
    Ok(out)
}

fn hash_of<T: Serialize>(rows: &[T]) -> String {
    let bytes = serde_json::to_vec(rows).unwrap_or_default();
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))
}

fn products_batch(rows: &[ProductRow], at: DateTime<Utc>) -> Result<RecordBatch, RefineError> {
    let n = rows.len();
    let mut sku = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut category = StringBuilder::new();
    let mut subcategory = StringBuilder::new();
    let mut brand = StringBuilder::new();
    let mut uom = StringBuilder::new();
    let mut case_pack = Int32Builder::with_capacity(n);
    let dec = || {
        Decimal128Builder::with_capacity(n)
            .with_precision_and_scale(MONEY.0, MONEY.1)
            .unwrap_or_else(|_| Decimal128Builder::with_capacity(n))
    };
    let mut cost = dec();
    let mut price = dec();
    let mut lead = Int32Builder::with_capacity(n);
    let mut sl = Float64Builder::with_capacity(n);
    let mut supplier = StringBuilder::new();
    let mut moq = Decimal128Builder::with_capacity(n)
        .with_precision_and_scale(QTY.0, QTY.1)
        .unwrap_or_else(|_| Decimal128Builder::with_capacity(n));
    let mut life = Int32Builder::with_capacity(n);
    let mut loaded = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let scaled = |d: Decimal| {
        let mut d = d;
        d.rescale(MONEY.1 as u32);
        d.mantissa()
    };
    for r in rows {
        sku.append_value(&r.sku);
        name.append_option(r.name.as_deref());
        category.append_option(r.category.as_deref());
        subcategory.append_option(r.subcategory.as_deref());
        brand.append_option(r.brand.as_deref());
        uom.append_option(r.unit_of_measure.as_deref());
        case_pack.append_option(r.case_pack);
        cost.append_option(r.unit_cost.map(scaled));
        price.append_option(r.unit_price.map(scaled));
        lead.append_option(r.lead_time_days);
        sl.append_option(r.service_level);
        supplier.append_option(r.supplier_id.as_deref());
        moq.append_option(r.min_order_qty.map(|d| {
            let mut d = d;
            d.rescale(QTY.1 as u32);
            d.mantissa()
        }));
        life.append_option(r.shelf_life_days);
        loaded.append_value(at.timestamp_micros());
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(sku.finish()),
        Arc::new(name.finish()),
        Arc::new(category.finish()),
        Arc::new(subcategory.finish()),
        Arc::new(brand.finish()),
        Arc::new(uom.finish()),
        Arc::new(case_pack.finish()),
        Arc::new(cost.finish()),
        Arc::new(price.finish()),
        Arc::new(lead.finish()),
        Arc::new(sl.finish()),
        Arc::new(loaded.finish()),
        Arc::new(supplier.finish()),
        Arc::new(moq.finish()),
        Arc::new(life.finish()),
    ];
    RecordBatch::try_new(PRODUCTS_SCHEMA.clone(), cols)
        .map_err(|e| RefineError::Internal(format!("products batch: {e}")))
}

fn stores_batch(rows: &[StoreRow], at: DateTime<Utc>) -> Result<RecordBatch, RefineError> {
    let mut cols: Vec<StringBuilder> = (0..7).map(|_| StringBuilder::new()).collect();
    let mut loaded = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    for r in rows {
        cols[0].append_value(&r.store_id);
        for (i, v) in [
            &r.name,
            &r.format,
            &r.city,
            &r.region,
            &r.country,
            &r.timezone,
        ]
        .into_iter()
        .enumerate()
        {
            cols[i + 1].append_option(v.as_deref());
        }
        loaded.append_value(at.timestamp_micros());
    }
    let mut arrays: Vec<ArrayRef> = cols
        .into_iter()
        .map(|mut c| Arc::new(c.finish()) as ArrayRef)
        .collect();
    arrays.push(Arc::new(loaded.finish()));
    RecordBatch::try_new(STORES_SCHEMA.clone(), arrays)
        .map_err(|e| RefineError::Internal(format!("stores batch: {e}")))
}

fn suppliers_batch(rows: &[SupplierRow], at: DateTime<Utc>) -> Result<RecordBatch, RefineError> {
    let n = rows.len();
    let (mut id, mut name) = (StringBuilder::new(), StringBuilder::new());
    let (mut order, mut delivery) = (StringBuilder::new(), StringBuilder::new());
    let mut lead = Int32Builder::with_capacity(n);
    let mut loaded = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    for r in rows {
        id.append_value(&r.supplier_id);
        name.append_option(r.name.as_deref());
        lead.append_option(r.lead_time_days);
        order.append_option(r.order_days.as_deref());
        delivery.append_option(r.delivery_days.as_deref());
        loaded.append_value(at.timestamp_micros());
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(name.finish()),
        Arc::new(lead.finish()),
        Arc::new(order.finish()),
        Arc::new(delivery.finish()),
        Arc::new(loaded.finish()),
    ];
    RecordBatch::try_new(SUPPLIERS_SCHEMA.clone(), cols)
        .map_err(|e| RefineError::Internal(format!("suppliers batch: {e}")))
}

async fn last_hash(table: &DeltaTable) -> Result<Option<String>, RefineError> {
    if table.version().is_none() {
        return Ok(None);
    }
    let infos: Vec<_> = table
        .history(Some(20))
        .try_collect()
        .await
        .map_err(|e| RefineError::delta("history", e))?;
    Ok(infos.into_iter().find_map(|i| {
        i.info
            .get(META_KEY)
            .and_then(|v| serde_json::from_value::<MasterMeta>(v.clone()).ok())
            .filter(|m| m.kind == "master")
            .map(|m| m.hash)
    }))
}

/// Replaces a table's content with `batch` in one commit.
async fn replace(
    table: &mut DeltaTable,
    name: &str,
    batch: RecordBatch,
    meta: MasterMeta,
) -> Result<(), RefineError> {
    let now_ms = Utc::now().timestamp_millis();
    let mut actions: Vec<Action> = active_files(table)
        .await?
        .into_iter()
        .map(|f| {
            Action::Remove(Remove {
                path: f.path,
                data_change: true,
                deletion_timestamp: Some(now_ms),
                extended_file_metadata: Some(true),
                partition_values: Some(f.partition),
                size: Some(f.size),
                ..Remove::default()
            })
        })
        .collect();
    let mut writer =
        RecordBatchWriter::for_table(table).map_err(|e| RefineError::delta(name, e))?;
    writer
        .write(batch)
        .await
        .map_err(|e| RefineError::delta(name, e))?;
    actions.extend(
        writer
            .flush()
            .await
            .map_err(|e| RefineError::delta(name, e))?
            .into_iter()
            .map(Action::Add),
    );
    let meta = serde_json::to_value(&meta).map_err(|e| RefineError::Internal(e.to_string()))?;
    let snapshot = table.snapshot().map_err(|e| RefineError::delta(name, e))?;
    CommitBuilder::from(CommitProperties::default().with_metadata([(META_KEY.to_string(), meta)]))
        .with_actions(actions)
        .build(
            Some(snapshot),
            table.log_store(),
            DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: None,
                predicate: None,
            },
        )
        .await
        .map_err(|e| RefineError::delta(name, e))?;
    table
        .update_state()
        .await
        .map_err(|e| RefineError::delta(name, e))?;
    Ok(())
}

/// Writes `batch` as the new content of master table `name` when `hash` (of its rows) differs
/// from the last load's; whether it did.
async fn put(
    silver: &Location,
    aws: &AwsOptions,
    name: &'static str,
    hash: String,
    rows: usize,
    batch: RecordBatch,
) -> Result<bool, RefineError> {
    let mut table = open_or_create(silver, aws, name).await?;
    if last_hash(&table).await?.as_deref() == Some(hash.as_str()) {
        return Ok(false);
    }
    let meta = MasterMeta {
        kind: "master".into(),
        hash,
        rows,
    };
    replace(&mut table, name, batch, meta).await?;
    Ok(true)
}

/// Loads `products.csv`, `stores.csv` and `suppliers.csv` from `dir` (any may be absent, not
/// all) into silver. Every file is validated before any is written.
pub async fn load_master_data(
    silver: &Location,
    aws: &AwsOptions,
    dir: &Path,
) -> Result<MasterReport, RefineError> {
    let mut report = MasterReport::default();
    let now = Utc::now();
    let [products, stores, suppliers] =
        ["products.csv", "stores.csv", "suppliers.csv"].map(|f| dir.join(f));
    if !products.exists() && !stores.exists() && !suppliers.exists() {
        return Err(RefineError::MasterData(format!(
            "{} holds none of products.csv, stores.csv, suppliers.csv",
            dir.display()
        )));
    }
    let product_rows = products
        .exists()
        .then(|| read_products(&products))
        .transpose()?;
    let store_rows = stores.exists().then(|| read_stores(&stores)).transpose()?;
    let supplier_rows = suppliers
        .exists()
        .then(|| read_suppliers(&suppliers))
        .transpose()?;
    if let Some(rows) = product_rows {
        report.products = Some(rows.len());
        let batch = products_batch(&rows, now)?;
        if put(silver, aws, PRODUCTS, hash_of(&rows), rows.len(), batch).await? {
            report.changed.push(PRODUCTS);
        }
    }
    if let Some(rows) = store_rows {
        report.stores = Some(rows.len());
        let batch = stores_batch(&rows, now)?;
        if put(silver, aws, STORES, hash_of(&rows), rows.len(), batch).await? {
            report.changed.push(STORES);
        }
    }
    if let Some(rows) = supplier_rows {
        report.suppliers = Some(rows.len());
        let batch = suppliers_batch(&rows, now)?;
        if put(silver, aws, SUPPLIERS, hash_of(&rows), rows.len(), batch).await? {
            report.changed.push(SUPPLIERS);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write");
    }

    #[test]
    fn bad_rows_name_file_line_and_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        for (text, needle) in [
            ("sku,case_pack\nA,6\nB,abc\n", "line 3, column case_pack"),
            (
                "sku,unit_price\nA,-1\n",
                "column unit_price: -1 is negative",
            ),
            ("sku,unit_price\nA,1.23456\n", "more than 4 decimals"),
            (
                "sku,unit_cost\nA,100000000000\n",
                "column unit_cost: 100000000000 is not below",
            ),
            (
                &format!("sku,name\nA,{}\n", "n".repeat(257)),
                "column name: 257 characters, the limit is 256",
            ),
            (
                "sku,category\nA,\"Dairy\nINFO forged\"\n",
                "column category: holds a control character",
            ),
            ("sku,service_level\nA,95\n", "column service_level"),
            ("sku,unit_of_measure\nA,litre\n", "not each or kg"),
            ("sku\nA\nA\n", "\"A\" appears twice"),
            ("name\nMilk\n", "required column \"sku\""),
            ("sku,colour\nA,red\n", "unknown column \"colour\""),
            ("sku,name\nA\n", "products.csv"),
            (
                "sku,min_order_qty\nA,0\n",
                "column min_order_qty: 0 is not above 0",
            ),
            ("sku,min_order_qty\nA,1.2345\n", "more than 3 decimals"),
            (
                "sku,shelf_life_days\nA,0\n",
                "column shelf_life_days: 0 is below 1",
            ),
        ] {
            write(p, "products.csv", text);
            let err = read_products(&p.join("products.csv"))
                .expect_err(text)
                .to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(err.contains("products.csv"), "{err}");
        }
        write(p, "stores.csv", "store_id,timezone\nS1,Mars/Olympus\n");
        let err = read_stores(&p.join("stores.csv"))
            .expect_err("tz")
            .to_string();
        assert!(err.contains("line 2, column timezone"), "{err}");
        for (text, needle) in [
            (
                "supplier_id,order_days\nS1,Mon Funday\n",
                "line 2, column order_days: \"Funday\" is not a weekday",
            ),
            (
                "supplier_id,lead_time_days\nS1,-2\n",
                "column lead_time_days",
            ),
            ("supplier_id\nS1\nS1\n", "\"S1\" appears twice"),
            ("name\nAcme\n", "required column \"supplier_id\""),
        ] {
            write(p, "suppliers.csv", text);
            let err = read_suppliers(&p.join("suppliers.csv"))
                .expect_err(text)
                .to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn suppliers_and_the_products_supplier_rules_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "suppliers.csv",
            "supplier_id,name,lead_time_days,order_days,delivery_days\nSUP-1,Dairy Co,2,thu mon,\"Mon, Wed\"\nSUP-2,,,,\n",
        );
        let rows = read_suppliers(&dir.path().join("suppliers.csv")).expect("read");
        assert_eq!(rows[0].order_days.as_deref(), Some("Mon Thu"));
        assert_eq!(rows[0].delivery_days.as_deref(), Some("Mon Wed"));
        assert_eq!(rows[0].lead_time_days, Some(2));
        assert_eq!(rows[1].order_days, None);
        write(
            dir.path(),
            "products.csv",
            "sku,case_pack,supplier_id,min_order_qty,shelf_life_days\nSKU-1,12,SUP-1,24,5\nSKU-2,,,,\n",
        );
        let rows = read_products(&dir.path().join("products.csv")).expect("read");
        assert_eq!(rows[0].supplier_id.as_deref(), Some("SUP-1"));
        assert_eq!(rows[0].min_order_qty, Some(Decimal::from(24)));
        assert_eq!(rows[0].shelf_life_days, Some(5));
        assert_eq!(rows[1].supplier_id, None);
        // a file without the new columns hashes as it did: its silver version is kept
        let old = ProductRow {
            supplier_id: None,
            min_order_qty: None,
            shelf_life_days: None,
            ..rows[1].clone()
        };
        assert!(
            !serde_json::to_string(&old)
                .expect("json")
                .contains("supplier_id")
        );
    }

    #[test]
    fn contract_columns_read_with_only_the_key_required() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "products.csv",
            "sku,name,category,subcategory,brand,unit_of_measure,case_pack,unit_cost,unit_price,lead_time_days,service_level\nSKU-1,Milk,Dairy,Milk,Lakeside,each,12,0.61,0.99,2,0.98\nSKU-2,,,,,kg,,,,,\n",
        );
        let rows = read_products(&dir.path().join("products.csv")).expect("read");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].unit_price, Some(Decimal::new(99, 2)));
        assert_eq!(rows[0].case_pack, Some(12));
        assert_eq!(rows[1].name, None);
        assert_eq!(rows[1].unit_of_measure.as_deref(), Some("kg"));
    }
}
