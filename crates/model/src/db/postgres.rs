//! The production gold database: PostgreSQL.
//!
//! A batch is loaded with binary `COPY` into session staging tables and merged into the gold
//! tables with set-based `INSERT … SELECT … ON CONFLICT`, all in one transaction with the
//! checkpoint — never row by row. What it writes is described in [`super::table`].

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio::sync::Mutex;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Transaction};

use super::dialect::{pg_cell, pg_type};
use super::table::{self, Cell, Col, FromCells, GoldWriter, Merge, Table};
use crate::ModelError;
use crate::db::Loaded;
use crate::rows::*;
use crate::schema::{Dialect, MIGRATIONS, statements};
use stocklake_storage::ErrorClass;

fn err(e: tokio_postgres::Error) -> ModelError {
    // the server's own message (with its detail) is the useful part
    let text = match e.as_db_error() {
        Some(db) => format!(
            "{}: {}{}",
            db.code().code(),
            db.message(),
            db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        None => e.to_string(),
    };
    match pg_class(e.code().map(|c| c.code())) {
        ErrorClass::Poison => ModelError::Rejected(text),
        class => ModelError::Database {
            message: text,
            class,
            source: Some(stocklake_storage::Source::new(e)),
        },
    }
}

/// The class of a PostgreSQL failure, by its SQLSTATE (none: the connection, not the server).
pub fn pg_class(code: Option<&str>) -> ErrorClass {
    let Some(code) = code else {
        return ErrorClass::Transient;
    };
    match code {
        // serialization failure, deadlock: another transaction got there first
        "40001" | "40P01" => ErrorClass::Conflict,
        // no such database, no such role, privileges missing: no retry mends these
        "3D000" | "42501" => ErrorClass::Fatal,
        // data exceptions (a numeric overflow, a string too long) and integrity violations
        // come from the data, and come again on every retry of it
        c if c.starts_with("22") || c.starts_with("23") => ErrorClass::Poison,
        // the credentials were refused
        c if c.starts_with("28") => ErrorClass::Fatal,
        _ => ErrorClass::Transient,
    }
}

/// Rows of `R`'s table (its columns, in order) that `tail` selects (`WHERE …`, `ORDER BY …`).
async fn select<R: FromCells>(
    c: &Client,
    tail: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<R>, ModelError> {
    let t = R::TABLE;
    let sql = format!(
        "SELECT {} FROM {} {tail}",
        table::select_list(t, ""),
        t.name
    );
    select_from(c, &sql, params).await
}

/// Rows of `R`'s table that `sql` reads (its columns, in order).
async fn select_from<R: FromCells>(
    c: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<R>, ModelError> {
    let rows = rows(c, sql, params, R::TABLE.columns).await?;
    table::decode(rows)
}

/// Runs `sql` and returns its rows as cells of `columns`' types.
pub async fn rows(
    c: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    columns: &[(&str, Col)],
) -> Result<Vec<Vec<Cell<'static>>>, ModelError> {
    let rows = c.query(sql, params).await.map_err(err)?;
    rows.iter()
        .map(|r| {
            columns
                .iter()
                .enumerate()
                .map(|(i, (_, col))| pg_cell(r, i, *col))
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)
        })
        .collect()
}

/// The PostgreSQL gold store (one connection; clone to share it).
#[derive(Clone)]
pub struct PgGold {
    client: Arc<Mutex<Client>>,
    url: String,
}

impl std::fmt::Debug for PgGold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgGold")
    }
}

impl PgGold {
    pub async fn connect(url: &str) -> Result<PgGold, ModelError> {
        let client = connect(url).await?;
        Ok(PgGold {
            client: Arc::new(Mutex::new(client)),
            url: url.to_string(),
        })
    }

    /// Reconnects after the server went away (a restart, a network cut).
    pub async fn reconnect_if_closed(&self) -> Result<(), ModelError> {
        let mut c = self.client.lock().await;
        if c.is_closed() {
            tracing::warn!("PostgreSQL connection lost; reconnecting");
            *c = connect(&self.url).await?;
        }
        Ok(())
    }

    /// Opens a fresh session (its staging tables follow the schema just migrated).
    pub async fn reconnect_after_migration(&self) -> Result<(), ModelError> {
        let mut c = self.client.lock().await;
        *c = connect(&self.url).await?;
        Ok(())
    }

    pub async fn client(&self) -> tokio::sync::MutexGuard<'_, Client> {
        self.client.lock().await
    }

    pub async fn migrate(&self) -> Result<Vec<i64>, ModelError> {
        let mut c = self.client.lock().await;
        c.batch_execute("SELECT pg_advisory_lock(7726150); CREATE TABLE IF NOT EXISTS stocklake_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)").await.map_err(err)?;
        let mut applied = Vec::new();
        let result: Result<(), ModelError> = async {
            for m in MIGRATIONS {
                let done = c
                    .query_opt("SELECT version FROM stocklake_migrations WHERE version = $1", &[&m.version])
                    .await
                    .map_err(err)?;
                if done.is_some() {
                    continue;
                }
                let tx = c.transaction().await.map_err(err)?;
                for stmt in statements(&m.sql(Dialect::Postgres)) {
                    tx.batch_execute(&stmt)
                        .await
                        .map_err(|e| ModelError::database(format!("migration {}: {}", m.version, err(e))))?;
                }
                tx.execute(
                    "INSERT INTO stocklake_migrations (version, name, applied_at) VALUES ($1, $2, now())",
                    &[&m.version, &m.name],
                )
                .await
                .map_err(err)?;
                tx.commit().await.map_err(err)?;
                applied.push(m.version);
            }
            Ok(())
        }
        .await;
        c.batch_execute("SELECT pg_advisory_unlock(7726150)")
            .await
            .map_err(err)?;
        result.map(|_| applied)
    }

    pub async fn load(&self) -> Result<Loaded, ModelError> {
        let c = self.client.lock().await;
        let mut l = Loaded {
            stores: select(&c, "", &[]).await?,
            products: select(&c, "WHERE is_current", &[]).await?,
            open_alerts: select(&c, "WHERE resolved_at IS NULL", &[]).await?,
            store_states: select(&c, "", &[]).await?,
            checkpoints: select(&c, "", &[]).await?,
            suppliers: select(&c, "", &[]).await?,
            order_lines: select(&c, super::OPEN_ORDERS, &[]).await?,
            ..Loaded::default()
        };
        for r in c
            .query("SELECT date_key FROM dim_date", &[])
            .await
            .map_err(err)?
        {
            l.date_keys.push(r.get(0));
        }
        let r = c
            .query_one(
                "SELECT (SELECT COALESCE(MAX(alert_id), 0) FROM stock_alert), (SELECT COALESCE(MAX(id), 0) FROM alert_outbox), (SELECT COALESCE(MAX(product_key), 0) FROM dim_product), (SELECT COALESCE(MAX(store_key), 0) FROM dim_store)",
                &[],
            )
            .await
            .map_err(err)?;
        l.max_alert_id = r.get(0);
        l.max_outbox_id = r.get(1);
        l.max_product_key = r.get(2);
        l.max_store_key = r.get(3);
        for r in c
            .query(
                "SELECT payment_method_key, payment_method FROM dim_payment_method",
                &[],
            )
            .await
            .map_err(err)?
        {
            l.payment_methods.push((r.get(0), r.get(1)));
        }
        for r in c
            .query(
                "SELECT client_type_key, client_type FROM dim_client_type",
                &[],
            )
            .await
            .map_err(err)?
        {
            l.client_types.push((r.get(0), r.get(1)));
        }
        Ok(l)
    }

    pub async fn daily_rows(
        &self,
        keys: Vec<(i32, i32)>,
        from_date_key: i32,
    ) -> Result<Vec<DailyRow>, ModelError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let stores: Vec<i32> = keys.iter().map(|k| k.0).collect();
        let products: Vec<i32> = keys.iter().map(|k| k.1).collect();
        let c = self.client.lock().await;
        select_from(
            &c,
            &format!(
                "SELECT {} FROM fact_stock_daily d JOIN unnest($1::int4[], $2::int4[]) AS k(s, p) ON d.store_key = k.s AND d.product_key = k.p WHERE d.date_key >= $3 ORDER BY d.store_key, d.product_key, d.date_key",
                table::select_list(&table::FACT_STOCK_DAILY, "d.")
            ),
            &[&stores, &products, &from_date_key],
        )
        .await
    }

    /// Up to `limit` stock levels after the key `after`, in key order.
    pub async fn levels_after(
        &self,
        after: (i32, i32),
        limit: i64,
    ) -> Result<Vec<LevelRow>, ModelError> {
        let c = self.client.lock().await;
        select(
            &c,
            "WHERE (store_key, product_key) > ($1, $2) ORDER BY store_key, product_key LIMIT $3",
            &[&after.0, &after.1, &limit],
        )
        .await
    }

    pub async fn order_lines(
        &self,
        store_key: i32,
        order_id: &str,
    ) -> Result<Vec<OrderLineRow>, ModelError> {
        let c = self.client.lock().await;
        select(
            &c,
            "WHERE store_key = $1 AND order_id = $2",
            &[&store_key, &order_id],
        )
        .await
    }

    pub async fn daily_rows_of_day(
        &self,
        store_key: i32,
        date_key: i32,
    ) -> Result<Vec<DailyRow>, ModelError> {
        let c = self.client.lock().await;
        select(
            &c,
            "WHERE store_key = $1 AND date_key = $2",
            &[&store_key, &date_key],
        )
        .await
    }

    pub async fn movements_after(
        &self,
        store_key: i32,
        product_key: i32,
        after: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Decimal)>, ModelError> {
        let c = self.client.lock().await;
        let rows = c
            .query(
                "SELECT m.event_time, m.quantity_delta FROM fact_inventory_movement m
                 JOIN dim_product p ON p.product_key = m.product_key
                 WHERE m.store_key = $1 AND p.sku = (SELECT sku FROM dim_product WHERE product_key = $2)
                   AND m.event_time > $3 AND m.event_type <> 'stock_count'",
                &[&store_key, &product_key, &after],
            )
            .await
            .map_err(err)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn apply(&self, ws: WriteSet) -> Result<(), ModelError> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await.map_err(err)?;
        write(&tx, &ws).await?;
        stocklake_storage::failpoint("model_before_commit");
        tx.commit().await.map_err(err)
    }

    /// Writes a batch in a transaction that is rolled back: whether gold takes it.
    pub async fn trial(&self, ws: WriteSet) -> Result<(), ModelError> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await.map_err(err)?;
        let r = write(&tx, &ws).await;
        tx.rollback().await.map_err(err)?;
        r
    }

    pub async fn truncate(&self) -> Result<(), ModelError> {
        let c = self.client.lock().await;
        c.batch_execute(&format!(
            "TRUNCATE {} CASCADE",
            crate::schema::TABLES.join(", ")
        ))
        .await
        .map_err(err)
    }
}

async fn connect(url: &str) -> Result<Client, ModelError> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.map_err(|e| {
        ModelError::database(format!("cannot connect to {}: {e}", crate::redact(url)))
    })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    let mut sql = String::from("SET TIME ZONE 'UTC';");
    for t in table::WRITTEN {
        let (stg, table) = (t.staging(), t.name);
        sql.push_str(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {stg} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;"
        ));
        // every row a batch stages carries its batch (set with SET LOCAL by `write`), at no
        // cost to the COPY: the column is filled by its default
        if t.stamped {
            sql.push_str(&format!(
                "ALTER TABLE {stg} ALTER COLUMN gold_batch SET DEFAULT current_setting('stocklake.gold_batch', true)::bigint;"
            ));
        }
    }
    // the staging tables exist once the schema does; before migration this fails harmlessly
    if client.batch_execute(&sql).await.is_err() {
        client
            .batch_execute("SET TIME ZONE 'UTC'")
            .await
            .map_err(err)?;
    }
    Ok(client)
}

/// Binary COPY of `rows` (cells of `columns`) into a staging table.
async fn copy(
    tx: &Transaction<'_>,
    table: &str,
    columns: &[(&str, Col)],
    rows: &[Vec<Cell<'_>>],
) -> Result<(), ModelError> {
    let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let types: Vec<Type> = columns.iter().map(|c| pg_type(c.1)).collect();
    let sink = tx
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN BINARY",
            names.join(", ")
        ))
        .await
        .map_err(err)?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    for row in rows {
        let refs: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await.map_err(err)?;
    }
    writer.finish().await.map_err(err)?;
    Ok(())
}

/// Adds the rows a batch inserted into `table` to its count in `gold_row_count`, in the batch's
/// transaction: the count moves exactly when the rows do.
async fn add_rows(tx: &Transaction<'_>, table: &str, rows: i64) -> Result<(), ModelError> {
    if rows <= 0 {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO gold_row_count (table_name, row_count) VALUES ($1, $2) ON CONFLICT (table_name) DO UPDATE SET row_count = gold_row_count.row_count + EXCLUDED.row_count",
        &[&table, &rows],
    )
    .await
    .map_err(err)?;
    Ok(())
}

/// A store's hourly units, summed in the database, must stay within what gold holds exactly.
fn check_hourly(largest: Decimal) -> Result<(), ModelError> {
    if largest >= Decimal::from(crate::rows::QUANTITY_BOUND) {
        return Err(ModelError::Rejected(format!(
            "fact_sales_hourly.units = {} for a store's hour is out of range: gold holds recorded values below {} exactly",
            largest.normalize(),
            crate::rows::QUANTITY_BOUND
        )));
    }
    Ok(())
}

/// Writes a batch in `tx`.
async fn write(tx: &Transaction<'_>, ws: &WriteSet) -> Result<(), ModelError> {
    tx.batch_execute(&format!("SET LOCAL stocklake.gold_batch = '{}'", ws.stamp))
        .await
        .map_err(err)?;
    let mut w = PgWriter {
        tx,
        stamp: ws.stamp,
        staged: HashSet::new(),
    };
    table::write_batch(&mut w, ws).await
}

/// Gold's writer on PostgreSQL: a table's rows copied (binary `COPY`) into its session staging
/// table, merged from there in one statement.
struct PgWriter<'a> {
    tx: &'a Transaction<'a>,
    stamp: i64,
    /// Staging tables holding rows already in this transaction.
    staged: HashSet<&'static str>,
}

impl GoldWriter for PgWriter<'_> {
    async fn rows(
        &mut self,
        t: &'static Table,
        rows: Vec<Vec<Cell<'_>>>,
    ) -> Result<(), ModelError> {
        if rows.is_empty() {
            return Ok(());
        }
        let tx = self.tx;
        let stg = t.staging();
        if !self.staged.insert(t.name) {
            tx.batch_execute(&format!("DELETE FROM {stg}"))
                .await
                .map_err(err)?;
        }
        copy(tx, &stg, t.columns, &rows).await?;
        let mut columns = t.column_list();
        if t.stamped {
            columns.push_str(", gold_batch");
        }
        let merge = format!(
            "INSERT INTO {} ({columns}) SELECT {columns} FROM {stg}{}",
            t.name,
            t.on_conflict("EXCLUDED")
        );
        let added = if t.name == table::FACT_SALES.name {
            // the sales lines this batch adds (a line delivered again adds nothing), summed
            // into their store's hour in the same statement
            let row = tx
                .query_one(
                    &format!("WITH new AS (
                        {merge} RETURNING store_key, event_time, quantity, event_id
                     ), hourly AS (
                        INSERT INTO fact_sales_hourly (store_key, hour, units, sales)
                        SELECT store_key, {}, SUM(quantity), COUNT(DISTINCT event_id) FROM new GROUP BY 1, 2
                        ON CONFLICT (store_key, hour) DO UPDATE SET units = fact_sales_hourly.units + EXCLUDED.units, sales = fact_sales_hourly.sales + EXCLUDED.sales
                        RETURNING units
                     )
                     SELECT (SELECT COUNT(*) FROM new), (SELECT COALESCE(MAX(ABS(units)), 0) FROM hourly)", crate::schema::event_hour(Dialect::Postgres)),
                    &[],
                )
                .await
                .map_err(err)?;
            check_hourly(row.get(1))?;
            row.get(0)
        } else if t.counted && t.merge == Merge::Upsert {
            // an upsert changes a row either way: whether it adds one is asked first
            let on: Vec<String> = t.key.iter().map(|k| format!("a.{k} = s.{k}")).collect();
            let added: i64 = tx
                .query_one(
                    &format!(
                        "SELECT COUNT(*) FROM {stg} s WHERE NOT EXISTS (SELECT 1 FROM {} a WHERE {})",
                        t.name,
                        on.join(" AND ")
                    ),
                    &[],
                )
                .await
                .map_err(err)?
                .get(0);
            tx.execute(&merge, &[]).await.map_err(err)?;
            added
        } else {
            let n = tx.execute(&merge, &[]).await.map_err(err)?;
            i64::try_from(n).map_err(|_| ModelError::database(format!("{n} rows")))?
        };
        if t.counted {
            add_rows(tx, t.name, added).await?;
        }
        Ok(())
    }

    async fn repoint(&mut self, old: i32, new: i32) -> Result<(), ModelError> {
        for sql in table::repoint_sql(["$1", "$2", "$3"]) {
            self.tx
                .execute(&sql, &[&old, &new, &self.stamp])
                .await
                .map_err(err)?;
        }
        Ok(())
    }
}
