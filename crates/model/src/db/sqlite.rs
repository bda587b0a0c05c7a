//! The embedded gold database: SQLite, one file, WAL mode. How it holds each type of value is
//! in [`super::dialect`]; what it writes is described in [`super::table`].

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use rust_decimal::Decimal;

use crate::ModelError;
use crate::db::Loaded;
use crate::rows::*;
use crate::schema::{Dialect, MIGRATIONS, statements};
use stocklake_storage::ErrorClass;

use super::dialect::{Dec, sqlite_cell, sqlite_dec};
pub use super::dialect::{parse_ts, ts};
use super::table::{self, Cell, FromCells, GoldWriter, Merge, Table};

fn get_dec(row: &Row<'_>, i: usize, scale: u32) -> rusqlite::Result<Decimal> {
    Ok(sqlite_dec(row.get_ref(i)?, scale).unwrap_or_default())
}

/// Rows of `R`'s table (its columns, in order) that `tail` selects (`WHERE …`, `ORDER BY …`).
fn select<R: FromCells>(
    c: &Connection,
    tail: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<R>, ModelError> {
    let t = R::TABLE;
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {} FROM {} {tail}",
            table::select_list(t, ""),
            t.name
        ))
        .map_err(err)?;
    let rows = s
        .query_map(params, |r| {
            t.columns
                .iter()
                .enumerate()
                .map(|(i, (_, col))| sqlite_cell(r, i, *col))
                .collect::<rusqlite::Result<Vec<Cell<'static>>>>()
        })
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    table::decode(rows)
}

/// Runs `sql` and returns its rows as cells of `columns`' types.
pub fn rows(
    c: &Connection,
    sql: &str,
    args: &[rusqlite::types::Value],
    columns: &[(&str, table::Col)],
) -> Result<Vec<Vec<Cell<'static>>>, ModelError> {
    let mut s = c
        .prepare(sql)
        .map_err(|e| ModelError::database(format!("{e}: {sql}")))?;
    let rows = s
        .query_map(params_from_iter(args.iter()), |r| {
            columns
                .iter()
                .enumerate()
                .map(|(i, (_, col))| sqlite_cell(r, i, *col))
                .collect::<rusqlite::Result<Vec<Cell<'static>>>>()
        })
        .map_err(err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(err)
}

fn err(e: rusqlite::Error) -> ModelError {
    match sqlite_class(&e) {
        ErrorClass::Poison => ModelError::Rejected(e.to_string()),
        class => ModelError::Database {
            message: e.to_string(),
            class,
            source: Some(stocklake_storage::Source::new(e)),
        },
    }
}

/// The class of a SQLite failure.
pub fn sqlite_class(e: &rusqlite::Error) -> ErrorClass {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        // the data, not the database: it fails the same way on every retry
        Some(C::ConstraintViolation | C::TooBig | C::TypeMismatch) => ErrorClass::Poison,
        // the file is not a database, or no longer one
        Some(C::NotADatabase | C::DatabaseCorrupt) => ErrorClass::Fatal,
        _ => ErrorClass::Transient,
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
                .map_err(|e| ModelError::database(format!("creating {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            // a page cache of 64 MiB (the default is 2): the writer walks the fact tables'
            // indexes for every batch, and a gold database of a few GiB thrashes a small one
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA cache_size = -65536;",
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
                .map_err(|_| ModelError::database("the SQLite connection was poisoned"))?;
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
                        .map_err(|e| ModelError::database(format!("migration {}: {e}: {stmt}", m.version)))?;
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
            let mut l = Loaded {
                stores: select(c, "", [])?,
                products: select(c, "WHERE is_current", [])?,
                open_alerts: select(c, "WHERE resolved_at IS NULL", [])?,
                store_states: select(c, "", [])?,
                checkpoints: select(c, "", [])?,
                suppliers: select(c, "", [])?,
                order_lines: select(c, super::OPEN_ORDERS, [])?,
                ..Loaded::default()
            };
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
                (
                    "SELECT payment_method_key, payment_method FROM dim_payment_method",
                    &mut l.payment_methods,
                ),
                (
                    "SELECT client_type_key, client_type FROM dim_client_type",
                    &mut l.client_types,
                ),
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
            let mut out = Vec::new();
            for (sk, pk) in keys {
                out.extend(select::<DailyRow>(
                    c,
                    "WHERE store_key = ?1 AND product_key = ?2 AND date_key >= ?3 ORDER BY date_key",
                    params![sk, pk, from_date_key],
                )?);
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
            select(
                c,
                "WHERE (store_key, product_key) > (?1, ?2) ORDER BY store_key, product_key LIMIT ?3",
                params![after.0, after.1, limit],
            )
        })
        .await
    }

    pub async fn order_lines(
        &self,
        store_key: i32,
        order_id: String,
    ) -> Result<Vec<OrderLineRow>, ModelError> {
        self.with(move |c| {
            select(
                c,
                "WHERE store_key = ?1 AND order_id = ?2",
                params![store_key, order_id],
            )
        })
        .await
    }

    pub async fn daily_rows_of_day(
        &self,
        store_key: i32,
        date_key: i32,
    ) -> Result<Vec<DailyRow>, ModelError> {
        self.with(move |c| {
            select(
                c,
                "WHERE store_key = ?1 AND date_key = ?2",
                params![store_key, date_key],
            )
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
                    let t: String = r.get(0)?;
                    Ok((parse_ts(&t).unwrap_or_default(), get_dec(r, 1, 3)?))
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
            write(&tx, &ws)?;
            stocklake_storage::failpoint("model_before_commit");
            tx.commit().map_err(err)
        })
        .await
    }

    /// Writes a batch in a transaction that is rolled back: whether gold takes it.
    pub async fn trial(&self, ws: WriteSet) -> Result<(), ModelError> {
        self.with(move |c| {
            let tx = c.transaction().map_err(err)?;
            let r = write(&tx, &ws);
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

/// Writes a batch in `tx`.
fn write(tx: &rusqlite::Transaction<'_>, ws: &WriteSet) -> Result<(), ModelError> {
    let mut w = SqliteWriter {
        tx,
        stamp: ws.stamp,
    };
    // nothing in SQLite's writer waits: the future completes as it is polled
    futures::executor::block_on(table::write_batch(&mut w, ws))
}

/// Gold's writer on SQLite: a prepared upsert per table, row by row in the transaction.
struct SqliteWriter<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    stamp: i64,
}

impl GoldWriter for SqliteWriter<'_> {
    async fn rows(
        &mut self,
        t: &'static Table,
        rows: Vec<Vec<Cell<'_>>>,
    ) -> Result<(), ModelError> {
        if rows.is_empty() {
            return Ok(());
        }
        let added = self.insert(t, &rows)?;
        if t.name == table::FACT_SALES.name {
            sales_hourly(self.tx, t, &rows, &added)?;
        }
        if t.counted {
            add_rows(self.tx, t.name, added.iter().filter(|a| **a).count())?;
        }
        Ok(())
    }

    async fn repoint(&mut self, old: i32, new: i32) -> Result<(), ModelError> {
        for sql in table::repoint_sql(["?1", "?2", "?3"]) {
            self.tx
                .execute(&sql, params![old, new, self.stamp])
                .map_err(err)?;
        }
        Ok(())
    }
}

impl SqliteWriter<'_> {
    /// Inserts `rows` by the table's merge rule; per row, whether it was added (not there
    /// before).
    fn insert(&self, t: &Table, rows: &[Vec<Cell<'_>>]) -> Result<Vec<bool>, ModelError> {
        let mut columns = t.column_list();
        let mut n = t.columns.len();
        if t.stamped {
            columns.push_str(", gold_batch");
            n += 1;
        }
        let marks: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
        let mut insert = self
            .tx
            .prepare_cached(&format!(
                "INSERT INTO {} ({columns}) VALUES ({}){}",
                t.name,
                marks.join(", "),
                t.on_conflict("excluded")
            ))
            .map_err(err)?;
        // an upsert changes a row either way: whether it adds one is asked first
        let key: Vec<usize> = t.key.iter().filter_map(|k| t.index(k)).collect();
        let mut known = match (t.merge, t.counted) {
            (Merge::Upsert, true) => {
                let cond: Vec<String> = t
                    .key
                    .iter()
                    .enumerate()
                    .map(|(i, k)| format!("{k} = ?{}", i + 1))
                    .collect();
                Some(
                    self.tx
                        .prepare_cached(&format!(
                            "SELECT 1 FROM {} WHERE {}",
                            t.name,
                            cond.join(" AND ")
                        ))
                        .map_err(err)?,
                )
            }
            _ => None,
        };
        let stamp = Cell::I64(self.stamp);
        let mut added = Vec::with_capacity(rows.len());
        for row in rows {
            let new = match known.as_mut() {
                Some(k) => !k
                    .exists(params_from_iter(key.iter().map(|i| &row[*i])))
                    .map_err(err)?,
                None => true,
            };
            let values = row.iter().chain(t.stamped.then_some(&stamp));
            let changed = insert.execute(params_from_iter(values)).map_err(err)?;
            added.push(match t.merge {
                Merge::Upsert => new,
                Merge::Insert | Merge::Ignore => changed > 0,
            });
        }
        Ok(added)
    }
}

/// Adds the sales lines a batch inserted to their store's hour in `fact_sales_hourly`: units,
/// and the events among them. The hour's new total is reckoned in decimals, not in the
/// database's doubles: exact however often it is added to.
fn sales_hourly(
    tx: &rusqlite::Transaction<'_>,
    t: &Table,
    rows: &[Vec<Cell<'_>>],
    added: &[bool],
) -> Result<(), ModelError> {
    let at = |c: &str| {
        t.index(c)
            .ok_or_else(|| ModelError::Internal(format!("{} has no {c}", t.name)))
    };
    let (store, time, quantity, event) = (
        at("store_key")?,
        at("event_time")?,
        at("quantity")?,
        at("event_id")?,
    );
    let mut hourly: BTreeMap<(i32, String), (Decimal, HashSet<&str>)> = BTreeMap::new();
    for (row, _) in rows.iter().zip(added).filter(|(_, a)| **a) {
        let (Cell::I32(store_key), Cell::Ts(event_time), Cell::Dec(q), Cell::Text(event_id)) =
            (&row[store], &row[time], &row[quantity], &row[event])
        else {
            return Err(ModelError::Internal(
                "a sales line without its store, time, quantity or event".into(),
            ));
        };
        let hour = event_time
            .duration_trunc(TimeDelta::hours(1))
            .map_err(|e| ModelError::database(format!("the hour of {event_time}: {e}")))?;
        let h = hourly.entry((*store_key, ts(hour))).or_default();
        h.0 += *q;
        h.1.insert(event_id.as_ref());
    }
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
