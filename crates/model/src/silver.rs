//! Reading what silver gained since a version: the files each commit added with
//! `dataChange = true` (compactions add none), decoded into typed lines.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{Decimal128Type, Int32Type, TimestampMicrosecondType};
use rust_decimal::Decimal;
use stocklake_event::EventType;
use stocklake_silver::read::{added_files, read_files};

use crate::ModelError;

/// One silver event line.
#[derive(Debug, Clone, PartialEq)]
pub struct SilverLine {
    pub event_id: String,
    pub line_no: i32,
    pub event_type: EventType,
    pub event_time: DateTime<Utc>,
    pub store_id: String,
    pub register_id: Option<String>,
    pub transaction_id: Option<String>,
    pub sku: String,
    pub quantity: Decimal,
    pub unit_price: Option<Decimal>,
    pub discount: Option<Decimal>,
    pub product_name: Option<String>,
    pub category: Option<String>,
    pub payment_method: Option<String>,
    pub client_type: Option<String>,
    pub order_id: Option<String>,
    pub expected_at: Option<DateTime<Utc>>,
    pub arrived_at: DateTime<Utc>,
    pub refined_at: DateTime<Utc>,
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, ModelError> {
    b.column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| ModelError::silver(format!("silver lines lack column {name}")))
}

fn micros(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

/// Decodes a batch of `pos_event_lines`.
pub fn decode(b: &RecordBatch, out: &mut Vec<SilverLine>) -> Result<(), ModelError> {
    let s = |name: &str| -> Result<_, ModelError> {
        col(b, name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| ModelError::silver(format!("column {name} is not text")))
    };
    let event_id = s("event_id")?;
    let event_type = s("event_type")?;
    let store_id = s("store_id")?;
    let register_id = s("register_id")?;
    let transaction_id = s("transaction_id")?;
    let sku = s("sku")?;
    let product_name = s("product_name")?;
    let category = s("category")?;
    // columns added after the first release: a file written before them has none
    let later = |name: &str| {
        b.column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
    };
    let (payment_method, client_type) = (later("payment_method"), later("client_type"));
    let order_id = later("order_id");
    let expected_at = b
        .column_by_name("expected_at")
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>());
    let line_no = col(b, "line_no")?
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| ModelError::silver("line_no is not int32"))?;
    let ts = |name: &str| -> Result<_, ModelError> {
        col(b, name)?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| ModelError::silver(format!("{name} is not a timestamp")))
    };
    let event_time = ts("event_time")?;
    let arrived_at = ts("arrived_at")?;
    let refined_at = ts("refined_at")?;
    let dec = |name: &str| -> Result<_, ModelError> {
        col(b, name)?
            .as_primitive_opt::<Decimal128Type>()
            .ok_or_else(|| ModelError::silver(format!("{name} is not a decimal")))
    };
    let quantity = dec("quantity")?;
    let unit_price = dec("unit_price")?;
    let discount = dec("discount")?;
    let opt_s = |a: &deltalake::arrow::array::StringArray, i: usize| {
        (!a.is_null(i)).then(|| a.value(i).to_string())
    };
    let opt_d =
        |a: &deltalake::arrow::array::PrimitiveArray<Decimal128Type>, i: usize, scale: u32| {
            (!a.is_null(i)).then(|| Decimal::from_i128_with_scale(a.value(i), scale))
        };
    out.reserve(b.num_rows());
    for i in 0..b.num_rows() {
        let t = EventType::from_str(event_type.value(i)).map_err(|_| {
            ModelError::silver(format!("unknown event type {:?}", event_type.value(i)))
        })?;
        out.push(SilverLine {
            event_id: event_id.value(i).to_string(),
            line_no: line_no.value(i),
            event_type: t,
            event_time: micros(event_time.value(i)),
            store_id: store_id.value(i).to_string(),
            register_id: opt_s(register_id, i),
            transaction_id: opt_s(transaction_id, i),
            sku: sku.value(i).to_string(),
            quantity: Decimal::from_i128_with_scale(quantity.value(i), 3),
            unit_price: opt_d(unit_price, i, 4),
            discount: opt_d(discount, i, 4),
            product_name: opt_s(product_name, i),
            category: opt_s(category, i),
            payment_method: payment_method.and_then(|a| opt_s(a, i)),
            client_type: client_type.and_then(|a| opt_s(a, i)),
            order_id: order_id.and_then(|a| opt_s(a, i)),
            expected_at: expected_at.and_then(|a| (!a.is_null(i)).then(|| micros(a.value(i)))),
            arrived_at: micros(arrived_at.value(i)),
            refined_at: micros(refined_at.value(i)),
        });
    }
    Ok(())
}

/// The newest version of the table, found by listing its log from `known` on — a version
/// whose commit is known to exist (gold's checkpoint). Refreshing the table's state instead
/// would replay the log into the list of every active file, which grows with each small live
/// commit until compaction (with refine's own post-commit updates, 58% of a live pipeline's
/// CPU samples; bench/RESULTS.md). When the
/// listing cannot start at `known` (a new table, a log cleaned up behind it), the state is
/// refreshed as before.
pub async fn latest_version(table: &mut DeltaTable, known: u64) -> Result<u64, ModelError> {
    if table.version().is_some()
        && let Ok(v) = table.log_store().get_latest_version(known).await
    {
        return Ok(v);
    }
    table
        .update_state()
        .await
        .map_err(ModelError::silver_delta)?;
    Ok(table.version().unwrap_or(0))
}

/// The lines that versions `from ..= to` of the table added, stopping after the first version
/// that brings them to `max_rows` (by the row counts in the log; a file without them fills the
/// budget): a backlog is worked off in batches of about that size rather than all at once, so
/// gold and what reads it move on while a bulk load catches up. Always at least version `from`.
/// Returns the last version taken and its lines.
pub async fn lines_between(
    table: &DeltaTable,
    from: u64,
    to: u64,
    max_rows: u64,
) -> Result<(u64, Vec<SilverLine>), ModelError> {
    let mut files = Vec::new();
    let mut rows = 0u64;
    let mut last = from;
    for v in from..=to.max(from) {
        let Some(added) = added_files(table, v)
            .await
            .map_err(ModelError::silver_table)?
        else {
            return Err(ModelError::silver_fatal(format!(
                "silver version {v} is no longer in the Delta log (its history was cleaned up); rebuild gold with `stocklake replay --gold-only`"
            )));
        };
        rows = added
            .iter()
            .fold(rows, |n, f| n.saturating_add(f.rows.unwrap_or(max_rows)));
        files.extend(added);
        last = v;
        if rows >= max_rows {
            break;
        }
    }
    let mut out = Vec::new();
    for (_, batches) in read_files(table.object_store(), &files, None)
        .await
        .map_err(ModelError::silver_table)?
    {
        for b in &batches {
            decode(b, &mut out)?;
        }
    }
    Ok((last, out))
}
