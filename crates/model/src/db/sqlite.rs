//! The embedded gold database: SQLite, one file, WAL mode.
//!
//! Decimals are stored with `NUMERIC` affinity and read back rounded to their column's scale;
//! every value stocklake stores has at most 15 significant digits, so the round trip is exact.
//! Times are RFC 3339 text in UTC with microseconds, which sorts as time does.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;

use crate::ModelError;
use crate::db::Loaded;
use crate::rows::*;
use crate::schema::{Dialect, MIGRATIONS, statements};

/// A time as SQLite stores it.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn ots(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(ts)
}

pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

struct Dec(Decimal);

impl rusqlite::ToSql for Dec {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        // integral values as integers, others as their exact text (NUMERIC affinity converts)
        if self.0.fract().is_zero()
            && let Some(i) = rust_decimal::prelude::ToPrimitive::to_i64(&self.0)
        {
            return Ok(ToSqlOutput::Owned(Value::Integer(i)));
        }
        Ok(ToSqlOutput::Owned(Value::Text(
            self.0.normalize().to_string(),
        )))
    }
}

fn od(d: Option<Decimal>) -> Option<Dec> {
    d.map(Dec)
}

fn get_dec(row: &Row<'_>, i: usize, scale: u32) -> rusqlite::Result<Decimal> {
    Ok(get_odec(row, i, scale)?.unwrap_or_default())
}

pub(crate) fn get_odec(row: &Row<'_>, i: usize, scale: u32) -> rusqlite::Result<Option<Decimal>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(v) => Some(Decimal::from(v)),
        ValueRef::Real(v) => Decimal::from_f64(v).map(|d| d.round_dp(scale)),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| Decimal::from_str(s).ok()),
        ValueRef::Blob(_) => None,
    })
}

fn get_ts(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let s: Option<String> = row.get(i)?;
    Ok(s.as_deref().and_then(parse_ts))
}

fn err(e: rusqlite::Error) -> ModelError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        // the data, not the database: it fails the same way on every retry
        Some(C::ConstraintViolation | C::TooBig | C::TypeMismatch) => {
            ModelError::Rejected(e.to_string())
        }
        _ => ModelError::Database(e.to_string()),
    }
}

/// The SQLite gold store.
#[derive(Clone)]
pub struct SqliteGold {
    conn: Arc<Mutex<Connection>>,
    /// A second connection for the read side (API, dashboard, status): in WAL mode it reads
    /// the last committed state while a model batch holds the writer.
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteGold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteGold")
    }
}

impl SqliteGold {
    pub fn open(path: &Path) -> Result<SqliteGold, ModelError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ModelError::Database(format!("creating {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
        )
        .map_err(err)?;
        let conn = Arc::new(Mutex::new(conn));
        let reader = if path.as_os_str() == ":memory:" {
            // an in-memory database exists only in its own connection
            conn.clone()
        } else {
            let r = Connection::open(path).map_err(err)?;
            r.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 10000;")
                .map_err(err)?;
            Arc::new(Mutex::new(r))
        };
        Ok(SqliteGold { conn, reader })
    }

    /// Runs `f` with the connection, off the async runtime.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, ModelError> + Send + 'static,
    ) -> Result<T, ModelError> {
        Self::on(self.conn.clone(), f).await
    }

    /// Runs a read-only `f` on the reader connection, which does not wait for a batch in
    /// progress.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, ModelError> + Send + 'static,
    ) -> Result<T, ModelError> {
        Self::on(self.reader.clone(), f).await
    }

    async fn on<T: Send + 'static>(
        conn: Arc<Mutex<Connection>>,
        f: impl FnOnce(&mut Connection) -> Result<T, ModelError> + Send + 'static,
    ) -> Result<T, ModelError> {
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| ModelError::Database("the SQLite connection was poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| ModelError::Internal(e.to_string()))?
    }

    pub async fn migrate(&self) -> Result<Vec<i64>, ModelError> {
        self.with(|c| {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS stocklake_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
            )
            .map_err(err)?;
            let mut applied = Vec::new();
            for m in MIGRATIONS {
                let done: Option<i64> = c
                    .query_row(
                        "SELECT version FROM stocklake_migrations WHERE version = ?1",
                        [m.version],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(err)?;
                if done.is_some() {
                    continue;
                }
                let tx = c.transaction().map_err(err)?;
                for stmt in statements(&m.sql(Dialect::Sqlite)) {
                    tx.execute_batch(&stmt)
                        .map_err(|e| ModelError::Database(format!("migration {}: {e}: {stmt}", m.version)))?;
                }
                tx.execute(
                    "INSERT INTO stocklake_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                    params![m.version, m.name, ts(Utc::now())],
                )
                .map_err(err)?;
                tx.commit().map_err(err)?;
                applied.push(m.version);
            }
            Ok(applied)
        })
        .await
    }

    pub async fn load(&self) -> Result<Loaded, ModelError> {
        self.with(|c| {
            let mut l = Loaded::default();
            let mut s = c.prepare("SELECT store_key, store_id, name, format, city, region, country, timezone, is_inferred, updated_at FROM dim_store").map_err(err)?;
            l.stores = s
                .query_map([], |r| {
                    Ok(StoreRow {
                        store_key: r.get(0)?,
                        store_id: r.get(1)?,
                        name: r.get(2)?,
                        format: r.get(3)?,
                        city: r.get(4)?,
                        region: r.get(5)?,
                        country: r.get(6)?,
                        timezone: r.get(7)?,
                        is_inferred: r.get(8)?,
                        updated_at: get_ts(r, 9)?.unwrap_or_default(),
                    })
                })
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let mut s = c.prepare("SELECT product_key, sku, name, category, subcategory, brand, unit_of_measure, case_pack, unit_cost, unit_price, lead_time_days, service_level, is_inferred, valid_from, valid_to, is_current FROM dim_product WHERE is_current").map_err(err)?;
            l.products = s
                .query_map([], product_row)
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let mut s = c.prepare(&format!("SELECT {ALERT_COLUMNS} FROM stock_alert WHERE resolved_at IS NULL")).map_err(err)?;
            l.open_alerts = s
                .query_map([], alert_row)
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let mut s = c.prepare("SELECT store_key, clock, local_date, state FROM gold_store_state").map_err(err)?;
            l.store_states = s
                .query_map([], |r| {
                    let state: String = r.get(3)?;
                    Ok(StoreStateRow {
                        store_key: r.get(0)?,
                        clock: get_ts(r, 1)?,
                        local_date: r.get(2)?,
                        state: serde_json::from_str(&state).unwrap_or(serde_json::Value::Null),
                    })
                })
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let mut s = c.prepare("SELECT name, silver_version, batch, lines FROM gold_checkpoint").map_err(err)?;
            l.checkpoints = s
                .query_map([], |r| {
                    Ok(CheckpointRow {
                        name: r.get(0)?,
                        silver_version: r.get(1)?,
                        batch: r.get(2)?,
                        lines: r.get(3)?,
                    })
                })
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let mut s = c.prepare("SELECT date_key FROM dim_date").map_err(err)?;
            l.date_keys = s
                .query_map([], |r| r.get(0))
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let max = |sql: &str| -> Result<i64, ModelError> {
                c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                    .map(|v| v.unwrap_or(0))
                    .map_err(err)
            };
            l.max_alert_id = max("SELECT MAX(alert_id) FROM stock_alert")?;
            l.max_outbox_id = max("SELECT MAX(id) FROM alert_outbox")?;
            l.max_product_key = max("SELECT MAX(product_key) FROM dim_product")? as i32;
            l.max_store_key = max("SELECT MAX(store_key) FROM dim_store")? as i32;
            for (sql, into) in [
                ("SELECT payment_method_key, payment_method FROM dim_payment_method", &mut l.payment_methods),
                ("SELECT client_type_key, client_type FROM dim_client_type", &mut l.client_types),
            ] {
                let mut s = c.prepare(sql).map_err(err)?;
                *into = s
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(err)?
                    .collect::<Result<_, _>>()
                    .map_err(err)?;
            }
            Ok(l)
        })
        .await
    }

    /// Daily rows of the given keys from `from_date_key` on.
    pub async fn daily_rows(
        &self,
        keys: Vec<(i32, i32)>,
        from_date_key: i32,
    ) -> Result<Vec<DailyRow>, ModelError> {
        self.with(move |c| {
            let mut s = c
                .prepare_cached(&format!(
                    "SELECT {DAILY_COLUMNS} FROM fact_stock_daily WHERE store_key = ?1 AND product_key = ?2 AND date_key >= ?3 ORDER BY date_key"
                ))
                .map_err(err)?;
            let mut out = Vec::new();
            for (sk, pk) in keys {
                let rows = s
                    .query_map(params![sk, pk, from_date_key], daily_row)
                    .map_err(err)?;
                for r in rows {
                    out.push(r.map_err(err)?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Daily rows of every key of a store on one day.
    /// Up to `limit` stock levels after the key `after`, in key order.
    pub async fn levels_after(
        &self,
        after: (i32, i32),
        limit: i64,
    ) -> Result<Vec<LevelRow>, ModelError> {
        self.with(move |c| {
            let mut s = c
                .prepare_cached(&format!(
                    "SELECT {LEVEL_COLUMNS} FROM stock_level WHERE (store_key, product_key) > (?1, ?2) ORDER BY store_key, product_key LIMIT ?3"
                ))
                .map_err(err)?;
            let rows = s
                .query_map(params![after.0, after.1, limit], level_row)
                .map_err(err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(err)
        })
        .await
    }

    pub async fn daily_rows_of_day(
        &self,
        store_key: i32,
        date_key: i32,
    ) -> Result<Vec<DailyRow>, ModelError> {
        self.with(move |c| {
            let mut s = c
                .prepare_cached(&format!(
                    "SELECT {DAILY_COLUMNS} FROM fact_stock_daily WHERE store_key = ?1 AND date_key = ?2"
                ))
                .map_err(err)?;
            let rows = s.query_map(params![store_key, date_key], daily_row).map_err(err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(err)
        })
        .await
    }

    /// Signed movements of one key after `after` (counts excluded).
    pub async fn movements_after(
        &self,
        store_key: i32,
        product_key: i32,
        after: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Decimal)>, ModelError> {
        self.with(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT m.event_time, m.quantity_delta FROM fact_inventory_movement m
                     JOIN dim_product p ON p.product_key = m.product_key
                     WHERE m.store_key = ?1 AND p.sku = (SELECT sku FROM dim_product WHERE product_key = ?2)
                       AND m.event_time > ?3 AND m.event_type <> 'stock_count'",
                )
                .map_err(err)?;
            let rows = s
                .query_map(params![store_key, product_key, ts(after)], |r| {
                    Ok((get_ts(r, 0)?.unwrap_or_default(), get_dec(r, 1, 3)?))
                })
                .map_err(err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(err)
        })
        .await
    }

    /// Writes one batch in one transaction.
    pub async fn apply(&self, ws: WriteSet) -> Result<(), ModelError> {
        self.with(move |c| {
            let tx = c.transaction().map_err(err)?;
            apply_sqlite(&tx, &ws)?;
            stocklake_storage::failpoint("model_before_commit");
            tx.commit().map_err(err)
        })
        .await
    }

    /// Writes a batch in a transaction that is rolled back: whether gold takes it.
    pub async fn trial(&self, ws: WriteSet) -> Result<(), ModelError> {
        self.with(move |c| {
            let tx = c.transaction().map_err(err)?;
            let r = apply_sqlite(&tx, &ws);
            tx.rollback().map_err(err)?;
            r
        })
        .await
    }

    /// Empties every gold table (for a rebuild).
    pub async fn truncate(&self) -> Result<(), ModelError> {
        self.with(|c| {
            let tx = c.transaction().map_err(err)?;
            for t in crate::schema::TABLES.iter().rev() {
                tx.execute(&format!("DELETE FROM {t}"), []).map_err(err)?;
            }
            tx.commit().map_err(err)
        })
        .await
    }
}

pub const LEVEL_COLUMNS: &str = "store_key, product_key, on_hand, avg_daily_demand, safety_stock, reorder_point, days_of_cover, projected_stockout_at, updated_at, status, demand_sd, order_up_to, suggested_order_qty, on_order, expected_delivery_at, last_count_at, last_count_quantity, last_movement_at, last_sale_at, in_stock_since, demand_level, demand_var, demand_days, units_per_sale, last_receipt_at, receipt_interval_days, receipt_qty, receipt_count, stockout_days, order_level, ordered_at";
pub const ALERT_COLUMNS: &str = "alert_id, store_key, product_key, alert_type, severity, opened_at, resolved_at, on_hand, threshold, suggested_order_qty, message, updated_at";
pub const DAILY_COLUMNS: &str = "date_key, store_key, product_key, units_sold, units_received, units_wasted, units_returned, units_adjusted, net_movement, sales_count, count_time, count_quantity, movement_after_count, closing_on_hand, was_out_of_stock, out_of_stock_share";

fn product_row(r: &Row<'_>) -> rusqlite::Result<ProductRow> {
    Ok(ProductRow {
        product_key: r.get(0)?,
        sku: r.get(1)?,
        name: r.get(2)?,
        category: r.get(3)?,
        subcategory: r.get(4)?,
        brand: r.get(5)?,
        unit_of_measure: r.get(6)?,
        case_pack: r.get(7)?,
        unit_cost: get_odec(r, 8, 4)?,
        unit_price: get_odec(r, 9, 4)?,
        lead_time_days: r.get(10)?,
        service_level: get_odec(r, 11, 4)?,
        is_inferred: r.get(12)?,
        valid_from: get_ts(r, 13)?.unwrap_or_default(),
        valid_to: get_ts(r, 14)?,
        is_current: r.get(15)?,
    })
}

fn status(s: &str) -> &'static str {
    match s {
        "out" => "out",
        "below_reorder_point" => "below_reorder_point",
        _ => "fine",
    }
}

fn level_row(r: &Row<'_>) -> rusqlite::Result<LevelRow> {
    let st: String = r.get(9)?;
    Ok(LevelRow {
        store_key: r.get(0)?,
        product_key: r.get(1)?,
        on_hand: get_dec(r, 2, 3)?,
        avg_daily_demand: get_dec(r, 3, 3)?,
        safety_stock: get_dec(r, 4, 3)?,
        reorder_point: get_dec(r, 5, 3)?,
        days_of_cover: get_odec(r, 6, 2)?,
        projected_stockout_at: get_ts(r, 7)?,
        updated_at: get_ts(r, 8)?.unwrap_or_default(),
        status: status(&st),
        demand_sd: get_dec(r, 10, 3)?,
        order_up_to: get_dec(r, 11, 3)?,
        suggested_order_qty: get_dec(r, 12, 3)?,
        on_order: get_dec(r, 13, 3)?,
        expected_delivery_at: get_ts(r, 14)?,
        last_count_at: get_ts(r, 15)?,
        last_count_quantity: get_odec(r, 16, 3)?,
        last_movement_at: get_ts(r, 17)?,
        last_sale_at: get_ts(r, 18)?,
        in_stock_since: get_ts(r, 19)?,
        demand_level: r.get(20)?,
        demand_var: r.get(21)?,
        demand_days: r.get(22)?,
        units_per_sale: r.get(23)?,
        last_receipt_at: get_ts(r, 24)?,
        receipt_interval_days: r.get(25)?,
        receipt_qty: r.get(26)?,
        receipt_count: r.get(27)?,
        stockout_days: r.get(28)?,
        order_level: r.get(29)?,
        ordered_at: r.get(30)?,
    })
}

fn alert_row(r: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        alert_id: r.get(0)?,
        store_key: r.get(1)?,
        product_key: r.get(2)?,
        alert_type: r.get(3)?,
        severity: r.get(4)?,
        opened_at: get_ts(r, 5)?.unwrap_or_default(),
        resolved_at: get_ts(r, 6)?,
        on_hand: get_dec(r, 7, 3)?,
        threshold: get_dec(r, 8, 3)?,
        suggested_order_qty: get_dec(r, 9, 3)?,
        message: r.get(10)?,
        updated_at: get_ts(r, 11)?.unwrap_or_default(),
    })
}

fn daily_row(r: &Row<'_>) -> rusqlite::Result<DailyRow> {
    Ok(DailyRow {
        date_key: r.get(0)?,
        store_key: r.get(1)?,
        product_key: r.get(2)?,
        units_sold: get_dec(r, 3, 3)?,
        units_received: get_dec(r, 4, 3)?,
        units_wasted: get_dec(r, 5, 3)?,
        units_returned: get_dec(r, 6, 3)?,
        units_adjusted: get_dec(r, 7, 3)?,
        net_movement: get_dec(r, 8, 3)?,
        sales_count: r.get(9)?,
        count_time: get_ts(r, 10)?,
        count_quantity: get_odec(r, 11, 3)?,
        movement_after_count: get_dec(r, 12, 3)?,
        closing_on_hand: get_dec(r, 13, 3)?,
        was_out_of_stock: r.get(14)?,
        out_of_stock_share: r.get(15)?,
    })
}

fn date_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Adds the rows a batch inserted into `table` to its count in `gold_row_count`, in the batch's
/// transaction: the count moves exactly when the rows do.
fn add_rows(tx: &rusqlite::Transaction<'_>, table: &str, rows: usize) -> Result<(), ModelError> {
    if rows > 0 {
        tx.prepare_cached("INSERT INTO gold_row_count (table_name, row_count) VALUES (?1, ?2) ON CONFLICT (table_name) DO UPDATE SET row_count = gold_row_count.row_count + excluded.row_count")
            .map_err(err)?
            .execute(params![table, rows as i64])
            .map_err(err)?;
    }
    Ok(())
}

fn apply_sqlite(tx: &rusqlite::Transaction<'_>, ws: &WriteSet) -> Result<(), ModelError> {
    {
        let mut s = tx.prepare_cached("INSERT INTO dim_date (date_key, full_date, day_of_week, day_name, week_of_year, month, quarter, year, is_weekend, gold_batch) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) ON CONFLICT (date_key) DO NOTHING").map_err(err)?;
        for d in &ws.dates {
            s.execute(params![
                d.date_key,
                date_str(d.date),
                d.day_of_week(),
                d.day_name(),
                d.week_of_year(),
                d.month(),
                d.quarter(),
                d.year(),
                d.is_weekend(),
                ws.stamp
            ])
            .map_err(err)?;
        }
        let mut s = tx.prepare_cached("INSERT INTO dim_store (store_key, store_id, name, format, city, region, country, timezone, is_inferred, updated_at, gold_batch) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11) ON CONFLICT (store_key) DO UPDATE SET name = excluded.name, format = excluded.format, city = excluded.city, region = excluded.region, country = excluded.country, timezone = excluded.timezone, is_inferred = excluded.is_inferred, updated_at = excluded.updated_at, gold_batch = excluded.gold_batch").map_err(err)?;
        for r in &ws.stores {
            s.execute(params![
                r.store_key,
                r.store_id,
                r.name,
                r.format,
                r.city,
                r.region,
                r.country,
                r.timezone,
                r.is_inferred,
                ts(r.updated_at),
                ws.stamp
            ])
            .map_err(err)?;
        }
        // close versions before inserting their successors (one current row per SKU)
        let mut s = tx.prepare_cached("UPDATE dim_product SET name = ?2, category = ?3, subcategory = ?4, brand = ?5, unit_of_measure = ?6, case_pack = ?7, unit_cost = ?8, unit_price = ?9, lead_time_days = ?10, service_level = ?11, is_inferred = ?12, valid_from = ?13, valid_to = ?14, is_current = ?15, gold_batch = ?16 WHERE product_key = ?1").map_err(err)?;
        for p in &ws.products_update {
            s.execute(params![
                p.product_key,
                p.name,
                p.category,
                p.subcategory,
                p.brand,
                p.unit_of_measure,
                p.case_pack,
                od(p.unit_cost),
                od(p.unit_price),
                p.lead_time_days,
                od(p.service_level),
                p.is_inferred,
                ts(p.valid_from),
                ots(p.valid_to),
                p.is_current,
                ws.stamp
            ])
            .map_err(err)?;
        }
        let mut s = tx.prepare_cached("INSERT INTO dim_product (product_key, sku, name, category, subcategory, brand, unit_of_measure, case_pack, unit_cost, unit_price, lead_time_days, service_level, is_inferred, valid_from, valid_to, is_current, gold_batch) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)").map_err(err)?;
        for p in &ws.products_insert {
            s.execute(params![
                p.product_key,
                p.sku,
                p.name,
                p.category,
                p.subcategory,
                p.brand,
                p.unit_of_measure,
                p.case_pack,
                od(p.unit_cost),
                od(p.unit_price),
                p.lead_time_days,
                od(p.service_level),
                p.is_inferred,
                ts(p.valid_from),
                ots(p.valid_to),
                p.is_current,
                ws.stamp
            ])
            .map_err(err)?;
        }
        for (old, new) in &ws.repoint {
            for t in ["stock_level", "fact_stock_daily"] {
                tx.execute(
                    &format!(
                        "UPDATE {t} SET product_key = ?2, gold_batch = ?3 WHERE product_key = ?1"
                    ),
                    params![old, new, ws.stamp],
                )
                .map_err(err)?;
            }
            tx.execute("UPDATE stock_alert SET product_key = ?2, gold_batch = ?3 WHERE product_key = ?1 AND resolved_at IS NULL", params![old, new, ws.stamp]).map_err(err)?;
        }
        let mut s = tx.prepare_cached("INSERT INTO fact_inventory_movement (event_id, line_no, date_key, store_key, product_key, event_type, quantity, quantity_delta, event_time, gold_batch) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) ON CONFLICT (event_id, line_no) DO NOTHING").map_err(err)?;
        let mut moved = 0;
        for m in &ws.movements {
            moved += s
                .execute(params![
                    m.event_id,
                    m.line_no,
                    m.date_key,
                    m.store_key,
                    m.product_key,
                    m.event_type,
                    Dec(m.quantity),
                    Dec(m.quantity_delta),
                    ts(m.event_time),
                    ws.stamp
                ])
                .map_err(err)?;
        }
        // the members the sales name: the "unknown" ones (a rebuild empties every table), and
        // the new ones
        for (table, key, name, rows) in [
            (
                "dim_payment_method",
                "payment_method_key",
                "payment_method",
                &ws.payment_methods,
            ),
            (
                "dim_client_type",
                "client_type_key",
                "client_type",
                &ws.client_types,
            ),
        ] {
            if ws.sales.is_empty() && rows.is_empty() {
                continue;
            }
            let mut s = tx
                .prepare_cached(&format!(
                    "INSERT INTO {table} ({key}, {name}, gold_batch) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"
                ))
                .map_err(err)?;
            s.execute(params![0, crate::rows::UNKNOWN_MEMBER, ws.stamp])
                .map_err(err)?;
            for (k, n) in rows {
                s.execute(params![k, n, ws.stamp]).map_err(err)?;
            }
        }
        let mut s = tx.prepare_cached("INSERT INTO fact_sales (event_id, line_no, date_key, store_key, product_key, transaction_id, register_id, event_time, quantity, unit_price, discount, net_amount, payment_method_key, client_type_key, gold_batch) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15) ON CONFLICT (event_id, line_no) DO NOTHING").map_err(err)?;
        let mut sold = 0;
        // the sales lines this batch adds, by store and hour: units, and the events among them
        let mut hourly: BTreeMap<(i32, String), (Decimal, HashSet<&str>)> = BTreeMap::new();
        for r in &ws.sales {
            let added = s
                .execute(params![
                    r.event_id,
                    r.line_no,
                    r.date_key,
                    r.store_key,
                    r.product_key,
                    r.transaction_id,
                    r.register_id,
                    ts(r.event_time),
                    Dec(r.quantity),
                    od(r.unit_price),
                    od(r.discount),
                    od(r.net_amount),
                    r.payment_method_key,
                    r.client_type_key,
                    ws.stamp
                ])
                .map_err(err)?;
            if added > 0 {
                sold += added;
                let hour = r
                    .event_time
                    .duration_trunc(TimeDelta::hours(1))
                    .map_err(|e| {
                        ModelError::Database(format!("the hour of {}: {e}", r.event_time))
                    })?;
                let h = hourly.entry((r.store_key, ts(hour))).or_default();
                h.0 += r.quantity;
                h.1.insert(&r.event_id);
            }
        }
        // the hour's new total in decimals, not in the database's doubles: exact however often
        // it is added to
        let mut read = tx
            .prepare_cached(
                "SELECT units, sales FROM fact_sales_hourly WHERE store_key = ?1 AND hour = ?2",
            )
            .map_err(err)?;
        let mut write = tx.prepare_cached("INSERT INTO fact_sales_hourly (store_key, hour, units, sales) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (store_key, hour) DO UPDATE SET units = excluded.units, sales = excluded.sales").map_err(err)?;
        for ((store_key, hour), (units, events)) in &hourly {
            let (before, sales): (Decimal, i64) = read
                .query_row(params![store_key, hour], |r| {
                    Ok((get_dec(r, 0, 3)?, r.get(1)?))
                })
                .optional()
                .map_err(err)?
                .unwrap_or_default();
            let total = before + *units;
            if total.abs() >= Decimal::from(crate::rows::QUANTITY_BOUND) {
                return Err(ModelError::Rejected(format!(
                    "fact_sales_hourly.units = {} for store {store_key} at {hour} is out of range: gold holds recorded values below {} exactly",
                    total.normalize(),
                    crate::rows::QUANTITY_BOUND
                )));
            }
            write
                .execute(params![
                    store_key,
                    hour,
                    Dec(total),
                    sales + events.len() as i64
                ])
                .map_err(err)?;
        }
        add_rows(tx, "fact_inventory_movement", moved)?;
        add_rows(tx, "fact_sales", sold)?;
        let mut s = tx.prepare_cached(&format!("INSERT INTO fact_stock_daily ({DAILY_COLUMNS}, gold_batch) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17) ON CONFLICT (store_key, product_key, date_key) DO UPDATE SET gold_batch = excluded.gold_batch, units_sold = excluded.units_sold, units_received = excluded.units_received, units_wasted = excluded.units_wasted, units_returned = excluded.units_returned, units_adjusted = excluded.units_adjusted, net_movement = excluded.net_movement, sales_count = excluded.sales_count, count_time = excluded.count_time, count_quantity = excluded.count_quantity, movement_after_count = excluded.movement_after_count, closing_on_hand = excluded.closing_on_hand, was_out_of_stock = excluded.was_out_of_stock, out_of_stock_share = excluded.out_of_stock_share")).map_err(err)?;
        for d in &ws.daily {
            s.execute(params![
                d.date_key,
                d.store_key,
                d.product_key,
                Dec(d.units_sold),
                Dec(d.units_received),
                Dec(d.units_wasted),
                Dec(d.units_returned),
                Dec(d.units_adjusted),
                Dec(d.net_movement),
                d.sales_count,
                ots(d.count_time),
                od(d.count_quantity),
                Dec(d.movement_after_count),
                Dec(d.closing_on_hand),
                d.was_out_of_stock,
                d.out_of_stock_share,
                ws.stamp
            ])
            .map_err(err)?;
        }
        let mut s = tx.prepare_cached(&format!("INSERT INTO stock_level ({LEVEL_COLUMNS}, gold_batch) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,?28,?29,?30,?31,?32) ON CONFLICT (store_key, product_key) DO UPDATE SET gold_batch = excluded.gold_batch, on_hand = excluded.on_hand, avg_daily_demand = excluded.avg_daily_demand, safety_stock = excluded.safety_stock, reorder_point = excluded.reorder_point, days_of_cover = excluded.days_of_cover, projected_stockout_at = excluded.projected_stockout_at, updated_at = excluded.updated_at, status = excluded.status, demand_sd = excluded.demand_sd, order_up_to = excluded.order_up_to, suggested_order_qty = excluded.suggested_order_qty, on_order = excluded.on_order, expected_delivery_at = excluded.expected_delivery_at, last_count_at = excluded.last_count_at, last_count_quantity = excluded.last_count_quantity, last_movement_at = excluded.last_movement_at, last_sale_at = excluded.last_sale_at, in_stock_since = excluded.in_stock_since, demand_level = excluded.demand_level, demand_var = excluded.demand_var, demand_days = excluded.demand_days, units_per_sale = excluded.units_per_sale, last_receipt_at = excluded.last_receipt_at, receipt_interval_days = excluded.receipt_interval_days, receipt_qty = excluded.receipt_qty, receipt_count = excluded.receipt_count, stockout_days = excluded.stockout_days, order_level = excluded.order_level, ordered_at = excluded.ordered_at")).map_err(err)?;
        for l in &ws.levels {
            s.execute(params![
                l.store_key,
                l.product_key,
                Dec(l.on_hand),
                Dec(l.avg_daily_demand),
                Dec(l.safety_stock),
                Dec(l.reorder_point),
                od(l.days_of_cover),
                ots(l.projected_stockout_at),
                ts(l.updated_at),
                l.status,
                Dec(l.demand_sd),
                Dec(l.order_up_to),
                Dec(l.suggested_order_qty),
                Dec(l.on_order),
                ots(l.expected_delivery_at),
                ots(l.last_count_at),
                od(l.last_count_quantity),
                ots(l.last_movement_at),
                ots(l.last_sale_at),
                ots(l.in_stock_since),
                l.demand_level,
                l.demand_var,
                l.demand_days,
                l.units_per_sale,
                ots(l.last_receipt_at),
                l.receipt_interval_days,
                l.receipt_qty,
                l.receipt_count,
                l.stockout_days,
                l.order_level,
                l.ordered_at,
                ws.stamp
            ])
            .map_err(err)?;
        }
        let mut s = tx.prepare_cached(&format!("INSERT INTO stock_alert ({ALERT_COLUMNS}, gold_batch) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13) ON CONFLICT (alert_id) DO UPDATE SET gold_batch = excluded.gold_batch, product_key = excluded.product_key, severity = excluded.severity, resolved_at = excluded.resolved_at, on_hand = excluded.on_hand, threshold = excluded.threshold, suggested_order_qty = excluded.suggested_order_qty, message = excluded.message, updated_at = excluded.updated_at")).map_err(err)?;
        // resolutions first, so that a reopened alert never meets its predecessor open
        let mut alerts: Vec<&AlertRow> = ws.alerts.iter().collect();
        alerts.sort_by_key(|a| a.resolved_at.is_none());
        let mut known = tx
            .prepare_cached("SELECT 1 FROM stock_alert WHERE alert_id = ?1")
            .map_err(err)?;
        let mut opened = 0;
        for a in alerts {
            if !known.exists([a.alert_id]).map_err(err)? {
                opened += 1;
            }
            s.execute(params![
                a.alert_id,
                a.store_key,
                a.product_key,
                a.alert_type,
                a.severity,
                ts(a.opened_at),
                ots(a.resolved_at),
                Dec(a.on_hand),
                Dec(a.threshold),
                Dec(a.suggested_order_qty),
                a.message,
                ts(a.updated_at),
                ws.stamp
            ])
            .map_err(err)?;
        }
        add_rows(tx, "stock_alert", opened)?;
        let mut s = tx.prepare_cached("INSERT INTO alert_outbox (id, alert_id, change, payload, created_at, delivered_at, attempts, last_error) VALUES (?1,?2,?3,?4,?5,NULL,0,NULL)").map_err(err)?;
        for o in &ws.outbox {
            s.execute(params![
                o.id,
                o.alert_id,
                o.change,
                o.payload,
                ts(o.created_at)
            ])
            .map_err(err)?;
        }
        let mut s = tx.prepare_cached("INSERT INTO gold_store_state (store_key, clock, local_date, state) VALUES (?1,?2,?3,?4) ON CONFLICT (store_key) DO UPDATE SET clock = excluded.clock, local_date = excluded.local_date, state = excluded.state").map_err(err)?;
        for st in &ws.store_states {
            s.execute(params![
                st.store_key,
                ots(st.clock),
                st.local_date,
                st.state.to_string()
            ])
            .map_err(err)?;
        }
        let mut s = tx.prepare_cached("INSERT INTO gold_dead_letter (event_id, line_no, event_type, event_time, store_id, sku, quantity, unit_price, discount, silver_version, error, dead_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12) ON CONFLICT (event_id, line_no) DO NOTHING").map_err(err)?;
        let mut dead = 0;
        for d in &ws.dead_letters {
            dead += s
                .execute(params![
                    d.event_id,
                    d.line_no,
                    d.event_type,
                    ts(d.event_time),
                    d.store_id,
                    d.sku,
                    d.quantity,
                    d.unit_price,
                    d.discount,
                    d.silver_version,
                    d.error,
                    ts(d.dead_at)
                ])
                .map_err(err)?;
        }
        add_rows(tx, "gold_dead_letter", dead)?;
        let mut s = tx.prepare_cached("INSERT INTO gold_checkpoint (name, silver_version, batch, lines, updated_at) VALUES (?1,?2,?3,?4,?5) ON CONFLICT (name) DO UPDATE SET silver_version = excluded.silver_version, batch = excluded.batch, lines = excluded.lines, updated_at = excluded.updated_at").map_err(err)?;
        for cp in &ws.checkpoints {
            s.execute(params![
                cp.name,
                cp.silver_version,
                cp.batch,
                cp.lines,
                ts(Utc::now())
            ])
            .map_err(err)?;
        }
    }
    Ok(())
}

/// Runs a read query and returns rows as JSON objects (the API's read side).
pub fn query_json(
    c: &Connection,
    sql: &str,
    args: &[rusqlite::types::Value],
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, ModelError> {
    let mut s = c.prepare(sql).map_err(err)?;
    let names: Vec<String> = s.column_names().map(|s| s.to_string()).collect();
    let rows = s
        .query_map(params_from_iter(args.iter()), |r| {
            let mut m = serde_json::Map::new();
            for (i, n) in names.iter().enumerate() {
                let v = match r.get_ref(i)? {
                    ValueRef::Null => serde_json::Value::Null,
                    ValueRef::Integer(v) => serde_json::Value::from(v),
                    ValueRef::Real(v) => serde_json::Number::from_f64(v)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null),
                    ValueRef::Text(t) => {
                        serde_json::Value::from(String::from_utf8_lossy(t).into_owned())
                    }
                    ValueRef::Blob(_) => serde_json::Value::Null,
                };
                m.insert(n.clone(), v);
            }
            Ok(m)
        })
        .map_err(err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(err)
}
