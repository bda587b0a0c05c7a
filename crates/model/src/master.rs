//! Master data from silver (`products`, `stores`) as gold dimension rows.

use chrono::Utc;
use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::datatypes::{Decimal128Type, Float64Type, Int32Type};
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use stocklake_silver::read::{active_files, read_files};

use crate::ModelError;
use crate::rows::{ProductRow, StoreRow, SupplierRow};

async fn batches(
    table: &DeltaTable,
) -> Result<Vec<deltalake::arrow::array::RecordBatch>, ModelError> {
    if table.version().is_none() {
        return Ok(Vec::new());
    }
    let files = active_files(table)
        .await
        .map_err(ModelError::silver_table)?;
    Ok(read_files(table.object_store(), &files, None)
        .await
        .map_err(ModelError::silver_table)?
        .into_iter()
        .flat_map(|(_, b)| b)
        .collect())
}

fn missing(c: &str) -> ModelError {
    ModelError::silver(format!("master data lacks column {c}"))
}

/// The product master as dimension rows (keys and validity are set by the model).
pub async fn read_products(table: &DeltaTable) -> Result<Vec<ProductRow>, ModelError> {
    let mut out = Vec::new();
    for b in batches(table).await? {
        let s = |c: &str| {
            b.column_by_name(c)
                .and_then(|a| a.as_string_opt::<i32>())
                .ok_or_else(|| missing(c))
        };
        let i = |c: &str| {
            b.column_by_name(c)
                .and_then(|a| a.as_primitive_opt::<Int32Type>())
                .ok_or_else(|| missing(c))
        };
        let d = |c: &str| {
            b.column_by_name(c)
                .and_then(|a| a.as_primitive_opt::<Decimal128Type>())
                .ok_or_else(|| missing(c))
        };
        let (sku, name, category, subcategory, brand, uom) = (
            s("sku")?,
            s("name")?,
            s("category")?,
            s("subcategory")?,
            s("brand")?,
            s("unit_of_measure")?,
        );
        let (case_pack, lead) = (i("case_pack")?, i("lead_time_days")?);
        let (cost, price) = (d("unit_cost")?, d("unit_price")?);
        let sl = b
            .column_by_name("service_level")
            .and_then(|a| a.as_primitive_opt::<Float64Type>())
            .ok_or_else(|| missing("service_level"))?;
        let os = |a: &deltalake::arrow::array::StringArray, r: usize| {
            (!a.is_null(r)).then(|| a.value(r).to_string())
        };
        // columns added after the first release: a table loaded before them has none
        let supplier = b
            .column_by_name("supplier_id")
            .and_then(|a| a.as_string_opt::<i32>());
        let moq = b
            .column_by_name("min_order_qty")
            .and_then(|a| a.as_primitive_opt::<Decimal128Type>());
        let life = b
            .column_by_name("shelf_life_days")
            .and_then(|a| a.as_primitive_opt::<Int32Type>());
        for r in 0..b.num_rows() {
            out.push(ProductRow {
                product_key: 0,
                sku: sku.value(r).to_string(),
                name: os(name, r),
                category: os(category, r),
                subcategory: os(subcategory, r),
                brand: os(brand, r),
                unit_of_measure: os(uom, r),
                case_pack: (!case_pack.is_null(r)).then(|| case_pack.value(r)),
                // refine refuses money gold cannot hold; silver written before it did may hold
                // some: that attribute is left out rather than the product or the batch
                unit_cost: (!cost.is_null(r))
                    .then(|| Decimal::from_i128_with_scale(cost.value(r), 4))
                    .filter(in_money_range),
                unit_price: (!price.is_null(r))
                    .then(|| Decimal::from_i128_with_scale(price.value(r), 4))
                    .filter(in_money_range),
                lead_time_days: (!lead.is_null(r)).then(|| lead.value(r)),
                service_level: (!sl.is_null(r))
                    .then(|| Decimal::from_f64(sl.value(r)).map(|d| d.round_dp(4)))
                    .flatten(),
                supplier_id: supplier.and_then(|a| os(a, r)),
                min_order_qty: moq.and_then(|a| {
                    (!a.is_null(r)).then(|| Decimal::from_i128_with_scale(a.value(r), 3))
                }),
                shelf_life_days: life.and_then(|a| (!a.is_null(r)).then(|| a.value(r))),
                is_inferred: false,
                valid_from: Utc::now(),
                valid_to: None,
                is_current: true,
            });
        }
    }
    Ok(out)
}

fn in_money_range(d: &Decimal) -> bool {
    d.abs() < Decimal::from(crate::rows::MONEY_BOUND)
}

/// The store master as dimension rows.
pub async fn read_stores(table: &DeltaTable) -> Result<Vec<StoreRow>, ModelError> {
    let mut out = Vec::new();
    for b in batches(table).await? {
        let s = |c: &str| {
            b.column_by_name(c)
                .and_then(|a| a.as_string_opt::<i32>())
                .ok_or_else(|| missing(c))
        };
        let (id, name, format, city, region, country, tz) = (
            s("store_id")?,
            s("name")?,
            s("format")?,
            s("city")?,
            s("region")?,
            s("country")?,
            s("timezone")?,
        );
        let os = |a: &deltalake::arrow::array::StringArray, r: usize| {
            (!a.is_null(r)).then(|| a.value(r).to_string())
        };
        for r in 0..b.num_rows() {
            out.push(StoreRow {
                store_key: 0,
                store_id: id.value(r).to_string(),
                name: os(name, r),
                format: os(format, r),
                city: os(city, r),
                region: os(region, r),
                country: os(country, r),
                timezone: os(tz, r).unwrap_or_else(|| "UTC".into()),
                is_inferred: false,
                updated_at: Utc::now(),
            });
        }
    }
    Ok(out)
}

/// The supplier master as dimension rows.
pub async fn read_suppliers(table: &DeltaTable) -> Result<Vec<SupplierRow>, ModelError> {
    let mut out = Vec::new();
    for b in batches(table).await? {
        let s = |c: &str| {
            b.column_by_name(c)
                .and_then(|a| a.as_string_opt::<i32>())
                .ok_or_else(|| missing(c))
        };
        let (id, name, order, delivery) = (
            s("supplier_id")?,
            s("name")?,
            s("order_days")?,
            s("delivery_days")?,
        );
        let lead = b
            .column_by_name("lead_time_days")
            .and_then(|a| a.as_primitive_opt::<Int32Type>())
            .ok_or_else(|| missing("lead_time_days"))?;
        let os = |a: &deltalake::arrow::array::StringArray, r: usize| {
            (!a.is_null(r)).then(|| a.value(r).to_string())
        };
        for r in 0..b.num_rows() {
            out.push(SupplierRow {
                supplier_id: id.value(r).to_string(),
                name: os(name, r),
                lead_time_days: (!lead.is_null(r)).then(|| lead.value(r)),
                order_days: os(order, r),
                delivery_days: os(delivery, r),
                is_inferred: false,
                updated_at: Utc::now(),
            });
        }
    }
    Ok(out)
}
