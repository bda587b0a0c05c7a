//! The production gold database: PostgreSQL.
//!
//! A batch is loaded with binary `COPY` into session staging tables and merged into the gold
//! tables with set-based `INSERT … SELECT … ON CONFLICT`, all in one transaction with the
//! checkpoint — never row by row.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio::sync::Mutex;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Row, Transaction};

use crate::ModelError;
use crate::db::Loaded;
use crate::rows::*;
use crate::schema::{Dialect, MIGRATIONS, statements};

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
    // data exceptions (22: a numeric overflow, a string too long) and integrity violations
    // (23) come from the data, and come again on every retry of it
    match e.code().map(|c| c.code()) {
        Some(code) if code.starts_with("22") || code.starts_with("23") => {
            ModelError::Rejected(text)
        }
        _ => ModelError::Database(text),
    }
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

const STAGING: &[(&str, &str)] = &[
    ("stg_dim_date", "dim_date"),
    ("stg_dim_store", "dim_store"),
    ("stg_dim_product", "dim_product"),
    ("stg_fact_sales", "fact_sales"),
    ("stg_fact_inventory_movement", "fact_inventory_movement"),
    ("stg_fact_stock_daily", "fact_stock_daily"),
    ("stg_stock_level", "stock_level"),
    ("stg_stock_alert", "stock_alert"),
    ("stg_alert_outbox", "alert_outbox"),
];

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
                        .map_err(|e| ModelError::Database(format!("migration {}: {}", m.version, err(e))))?;
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
        let mut l = Loaded::default();
        for r in c.query("SELECT store_key, store_id, name, format, city, region, country, timezone, is_inferred, updated_at FROM dim_store", &[]).await.map_err(err)? {
            l.stores.push(StoreRow {
                store_key: r.get(0),
                store_id: r.get(1),
                name: r.get(2),
                format: r.get(3),
                city: r.get(4),
                region: r.get(5),
                country: r.get(6),
                timezone: r.get(7),
                is_inferred: r.get(8),
                updated_at: r.get(9),
            });
        }
        for r in c.query("SELECT product_key, sku, name, category, subcategory, brand, unit_of_measure, case_pack, unit_cost, unit_price, lead_time_days, service_level, is_inferred, valid_from, valid_to, is_current FROM dim_product WHERE is_current", &[]).await.map_err(err)? {
            l.products.push(ProductRow {
                product_key: r.get(0),
                sku: r.get(1),
                name: r.get(2),
                category: r.get(3),
                subcategory: r.get(4),
                brand: r.get(5),
                unit_of_measure: r.get(6),
                case_pack: r.get(7),
                unit_cost: r.get(8),
                unit_price: r.get(9),
                lead_time_days: r.get(10),
                service_level: r.get(11),
                is_inferred: r.get(12),
                valid_from: r.get(13),
                valid_to: r.get(14),
                is_current: r.get(15),
            });
        }
        for r in c
            .query(
                &format!(
                    "SELECT {} FROM stock_alert WHERE resolved_at IS NULL",
                    super::sqlite::ALERT_COLUMNS
                ),
                &[],
            )
            .await
            .map_err(err)?
        {
            l.open_alerts.push(alert_row(&r));
        }
        for r in c
            .query(
                "SELECT store_key, clock, local_date, state FROM gold_store_state",
                &[],
            )
            .await
            .map_err(err)?
        {
            l.store_states.push(StoreStateRow {
                store_key: r.get(0),
                clock: r.get(1),
                local_date: r.get(2),
                state: r.get(3),
            });
        }
        for r in c
            .query(
                "SELECT name, silver_version, batch, lines FROM gold_checkpoint",
                &[],
            )
            .await
            .map_err(err)?
        {
            l.checkpoints.push(CheckpointRow {
                name: r.get(0),
                silver_version: r.get(1),
                batch: r.get(2),
                lines: r.get(3),
            });
        }
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
        let rows = c
            .query(
                &format!(
                    "SELECT {} FROM fact_stock_daily d JOIN unnest($1::int4[], $2::int4[]) AS k(s, p) ON d.store_key = k.s AND d.product_key = k.p WHERE d.date_key >= $3 ORDER BY d.store_key, d.product_key, d.date_key",
                    super::sqlite::DAILY_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ")
                ),
                &[&stores, &products, &from_date_key],
            )
            .await
            .map_err(err)?;
        Ok(rows.iter().map(daily_row).collect())
    }

    /// Up to `limit` stock levels after the key `after`, in key order.
    pub async fn levels_after(
        &self,
        after: (i32, i32),
        limit: i64,
    ) -> Result<Vec<LevelRow>, ModelError> {
        let c = self.client.lock().await;
        let rows = c
            .query(
                &format!(
                    "SELECT {} FROM stock_level WHERE (store_key, product_key) > ($1, $2) ORDER BY store_key, product_key LIMIT $3",
                    super::sqlite::LEVEL_COLUMNS
                ),
                &[&after.0, &after.1, &limit],
            )
            .await
            .map_err(err)?;
        Ok(rows.iter().map(level_row).collect())
    }

    pub async fn daily_rows_of_day(
        &self,
        store_key: i32,
        date_key: i32,
    ) -> Result<Vec<DailyRow>, ModelError> {
        let c = self.client.lock().await;
        let rows = c
            .query(
                &format!(
                    "SELECT {} FROM fact_stock_daily WHERE store_key = $1 AND date_key = $2",
                    super::sqlite::DAILY_COLUMNS
                ),
                &[&store_key, &date_key],
            )
            .await
            .map_err(err)?;
        Ok(rows.iter().map(daily_row).collect())
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
        apply_pg(&tx, &ws).await?;
        stocklake_storage::failpoint("model_before_commit");
        tx.commit().await.map_err(err)
    }

    /// Writes a batch in a transaction that is rolled back: whether gold takes it.
    pub async fn trial(&self, ws: WriteSet) -> Result<(), ModelError> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await.map_err(err)?;
        let r = apply_pg(&tx, &ws).await;
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
        ModelError::Database(format!("cannot connect to {}: {e}", crate::redact(url)))
    })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    let mut sql = String::from("SET TIME ZONE 'UTC';");
    for (stg, table) in STAGING {
        sql.push_str(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {stg} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;"
        ));
        // every row a batch stages carries its batch (set with SET LOCAL by `apply_pg`), at no
        // cost to the COPY: the column is filled by its default
        if crate::schema::STAMPED.contains(table) {
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

fn level_row(r: &Row) -> LevelRow {
    let status: String = r.get(9);
    LevelRow {
        store_key: r.get(0),
        product_key: r.get(1),
        on_hand: r.get(2),
        avg_daily_demand: r.get(3),
        safety_stock: r.get(4),
        reorder_point: r.get(5),
        days_of_cover: r.get(6),
        projected_stockout_at: r.get(7),
        updated_at: r.get(8),
        status: match status.as_str() {
            "out" => "out",
            "below_reorder_point" => "below_reorder_point",
            _ => "fine",
        },
        demand_sd: r.get(10),
        order_up_to: r.get(11),
        suggested_order_qty: r.get(12),
        on_order: r.get(13),
        expected_delivery_at: r.get(14),
        last_count_at: r.get(15),
        last_count_quantity: r.get(16),
        last_movement_at: r.get(17),
        last_sale_at: r.get(18),
        in_stock_since: r.get(19),
        demand_level: r.get(20),
        demand_var: r.get(21),
        demand_days: r.get(22),
        units_per_sale: r.get(23),
        last_receipt_at: r.get(24),
        receipt_interval_days: r.get(25),
        receipt_qty: r.get(26),
        receipt_count: r.get(27),
        stockout_days: r.get(28),
        order_level: r.get(29),
        ordered_at: r.get(30),
    }
}

fn alert_row(r: &Row) -> AlertRow {
    AlertRow {
        alert_id: r.get(0),
        store_key: r.get(1),
        product_key: r.get(2),
        alert_type: r.get(3),
        severity: r.get(4),
        opened_at: r.get(5),
        resolved_at: r.get(6),
        on_hand: r.get(7),
        threshold: r.get(8),
        suggested_order_qty: r.get(9),
        message: r.get(10),
        updated_at: r.get(11),
    }
}

fn daily_row(r: &Row) -> DailyRow {
    DailyRow {
        date_key: r.get(0),
        store_key: r.get(1),
        product_key: r.get(2),
        units_sold: r.get(3),
        units_received: r.get(4),
        units_wasted: r.get(5),
        units_returned: r.get(6),
        units_adjusted: r.get(7),
        net_movement: r.get(8),
        sales_count: r.get(9),
        count_time: r.get(10),
        count_quantity: r.get(11),
        movement_after_count: r.get(12),
        closing_on_hand: r.get(13),
        was_out_of_stock: r.get(14),
        out_of_stock_share: r.get(15),
    }
}

type Value = Box<dyn ToSql + Sync + Send>;

/// Binary COPY of `rows` into a staging table.
async fn copy(
    tx: &Transaction<'_>,
    table: &str,
    columns: &[(&str, Type)],
    rows: Vec<Vec<Value>>,
) -> Result<(), ModelError> {
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let types: Vec<Type> = columns.iter().map(|c| c.1.clone()).collect();
    let sink = tx
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN BINARY",
            names.join(", ")
        ))
        .await
        .map_err(err)?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    for row in &rows {
        let refs: Vec<&(dyn ToSql + Sync)> = row
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect();
        writer.as_mut().write(&refs).await.map_err(err)?;
    }
    writer.finish().await.map_err(err)?;
    Ok(())
}

fn b<T: ToSql + Sync + Send + 'static>(v: T) -> Value {
    Box::new(v)
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

async fn apply_pg(tx: &Transaction<'_>, ws: &WriteSet) -> Result<(), ModelError> {
    use Type as T;
    tx.batch_execute(&format!("SET LOCAL stocklake.gold_batch = '{}'", ws.stamp))
        .await
        .map_err(err)?;
    copy(
        tx,
        "stg_dim_date",
        &[
            ("date_key", T::INT4),
            ("full_date", T::DATE),
            ("day_of_week", T::INT2),
            ("day_name", T::TEXT),
            ("week_of_year", T::INT2),
            ("month", T::INT2),
            ("quarter", T::INT2),
            ("year", T::INT2),
            ("is_weekend", T::BOOL),
        ],
        ws.dates
            .iter()
            .map(|d| {
                vec![
                    b(d.date_key),
                    b(d.date),
                    b(d.day_of_week()),
                    b(d.day_name().to_string()),
                    b(d.week_of_year()),
                    b(d.month()),
                    b(d.quarter()),
                    b(d.year()),
                    b(d.is_weekend()),
                ]
            })
            .collect(),
    )
    .await?;
    tx.batch_execute(
        "INSERT INTO dim_date SELECT * FROM stg_dim_date ON CONFLICT (date_key) DO NOTHING",
    )
    .await
    .map_err(err)?;

    copy(
        tx,
        "stg_dim_store",
        &[
            ("store_key", T::INT4),
            ("store_id", T::TEXT),
            ("name", T::TEXT),
            ("format", T::TEXT),
            ("city", T::TEXT),
            ("region", T::TEXT),
            ("country", T::TEXT),
            ("timezone", T::TEXT),
            ("is_inferred", T::BOOL),
            ("updated_at", T::TIMESTAMPTZ),
        ],
        ws.stores
            .iter()
            .map(|r| {
                vec![
                    b(r.store_key),
                    b(r.store_id.clone()),
                    b(r.name.clone()),
                    b(r.format.clone()),
                    b(r.city.clone()),
                    b(r.region.clone()),
                    b(r.country.clone()),
                    b(r.timezone.clone()),
                    b(r.is_inferred),
                    b(r.updated_at),
                ]
            })
            .collect(),
    )
    .await?;
    tx.batch_execute("INSERT INTO dim_store SELECT * FROM stg_dim_store ON CONFLICT (store_key) DO UPDATE SET name = EXCLUDED.name, format = EXCLUDED.format, city = EXCLUDED.city, region = EXCLUDED.region, country = EXCLUDED.country, timezone = EXCLUDED.timezone, is_inferred = EXCLUDED.is_inferred, updated_at = EXCLUDED.updated_at, gold_batch = EXCLUDED.gold_batch").await.map_err(err)?;

    let product_cols = [
        ("product_key", T::INT4),
        ("sku", T::TEXT),
        ("name", T::TEXT),
        ("category", T::TEXT),
        ("subcategory", T::TEXT),
        ("brand", T::TEXT),
        ("unit_of_measure", T::TEXT),
        ("case_pack", T::INT4),
        ("unit_cost", T::NUMERIC),
        ("unit_price", T::NUMERIC),
        ("lead_time_days", T::INT4),
        ("service_level", T::NUMERIC),
        ("is_inferred", T::BOOL),
        ("valid_from", T::TIMESTAMPTZ),
        ("valid_to", T::TIMESTAMPTZ),
        ("is_current", T::BOOL),
    ];
    let product_values = |p: &ProductRow| {
        vec![
            b(p.product_key),
            b(p.sku.clone()),
            b(p.name.clone()),
            b(p.category.clone()),
            b(p.subcategory.clone()),
            b(p.brand.clone()),
            b(p.unit_of_measure.clone()),
            b(p.case_pack),
            b(p.unit_cost),
            b(p.unit_price),
            b(p.lead_time_days),
            b(p.service_level),
            b(p.is_inferred),
            b(p.valid_from),
            b(p.valid_to),
            b(p.is_current),
        ]
    };
    copy(
        tx,
        "stg_dim_product",
        &product_cols,
        ws.products_update.iter().map(product_values).collect(),
    )
    .await?;
    tx.batch_execute("UPDATE dim_product d SET name = s.name, category = s.category, subcategory = s.subcategory, brand = s.brand, unit_of_measure = s.unit_of_measure, case_pack = s.case_pack, unit_cost = s.unit_cost, unit_price = s.unit_price, lead_time_days = s.lead_time_days, service_level = s.service_level, is_inferred = s.is_inferred, valid_from = s.valid_from, valid_to = s.valid_to, is_current = s.is_current, gold_batch = s.gold_batch FROM stg_dim_product s WHERE d.product_key = s.product_key; DELETE FROM stg_dim_product").await.map_err(err)?;
    copy(
        tx,
        "stg_dim_product",
        &product_cols,
        ws.products_insert.iter().map(product_values).collect(),
    )
    .await?;
    tx.batch_execute("INSERT INTO dim_product SELECT * FROM stg_dim_product")
        .await
        .map_err(err)?;
    for (old, new) in &ws.repoint {
        tx.execute(
            "UPDATE stock_level SET product_key = $2, gold_batch = current_setting('stocklake.gold_batch')::bigint WHERE product_key = $1",
            &[old, new],
        )
        .await
        .map_err(err)?;
        tx.execute(
            "UPDATE fact_stock_daily SET product_key = $2, gold_batch = current_setting('stocklake.gold_batch')::bigint WHERE product_key = $1",
            &[old, new],
        )
        .await
        .map_err(err)?;
        tx.execute("UPDATE stock_alert SET product_key = $2, gold_batch = current_setting('stocklake.gold_batch')::bigint WHERE product_key = $1 AND resolved_at IS NULL", &[old, new]).await.map_err(err)?;
    }

    copy(
        tx,
        "stg_fact_inventory_movement",
        &[
            ("event_id", T::TEXT),
            ("line_no", T::INT4),
            ("date_key", T::INT4),
            ("store_key", T::INT4),
            ("product_key", T::INT4),
            ("event_type", T::TEXT),
            ("quantity", T::NUMERIC),
            ("quantity_delta", T::NUMERIC),
            ("event_time", T::TIMESTAMPTZ),
        ],
        ws.movements
            .iter()
            .map(|m| {
                vec![
                    b(m.event_id.clone()),
                    b(m.line_no),
                    b(m.date_key),
                    b(m.store_key),
                    b(m.product_key),
                    b(m.event_type.to_string()),
                    b(m.quantity),
                    b(m.quantity_delta),
                    b(m.event_time),
                ]
            })
            .collect(),
    )
    .await?;
    let moved = tx.execute("INSERT INTO fact_inventory_movement SELECT * FROM stg_fact_inventory_movement ON CONFLICT (event_id, line_no) DO NOTHING", &[]).await.map_err(err)?;
    let moved = i64::try_from(moved).map_err(|_| ModelError::Database(format!("{moved} rows")))?;
    add_rows(tx, "fact_inventory_movement", moved).await?;

    // the members the sales name: the "unknown" ones (a rebuild empties every table), and the
    // new ones
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
        let (mut keys, mut names): (Vec<i32>, Vec<String>) = rows.iter().cloned().unzip();
        keys.push(0);
        names.push(crate::rows::UNKNOWN_MEMBER.to_string());
        tx.execute(
            &format!("INSERT INTO {table} ({key}, {name}, gold_batch) SELECT k, n, current_setting('stocklake.gold_batch')::bigint FROM UNNEST($1::int4[], $2::text[]) AS m (k, n) ON CONFLICT DO NOTHING"),
            &[&keys, &names],
        )
        .await
        .map_err(err)?;
    }
    copy(
        tx,
        "stg_fact_sales",
        &[
            ("event_id", T::TEXT),
            ("line_no", T::INT4),
            ("date_key", T::INT4),
            ("store_key", T::INT4),
            ("product_key", T::INT4),
            ("transaction_id", T::TEXT),
            ("register_id", T::TEXT),
            ("event_time", T::TIMESTAMPTZ),
            ("quantity", T::NUMERIC),
            ("unit_price", T::NUMERIC),
            ("discount", T::NUMERIC),
            ("net_amount", T::NUMERIC),
            ("payment_method_key", T::INT4),
            ("client_type_key", T::INT4),
        ],
        ws.sales
            .iter()
            .map(|r| {
                vec![
                    b(r.event_id.clone()),
                    b(r.line_no),
                    b(r.date_key),
                    b(r.store_key),
                    b(r.product_key),
                    b(r.transaction_id.clone()),
                    b(r.register_id.clone()),
                    b(r.event_time),
                    b(r.quantity),
                    b(r.unit_price),
                    b(r.discount),
                    b(r.net_amount),
                    b(r.payment_method_key),
                    b(r.client_type_key),
                ]
            })
            .collect(),
    )
    .await?;
    // the sales lines this batch adds (a line delivered again adds nothing), summed into their
    // store's hour in the same statement
    let row = tx
        .query_one(
            &format!("WITH new AS (
                INSERT INTO fact_sales SELECT * FROM stg_fact_sales ON CONFLICT (event_id, line_no) DO NOTHING
                RETURNING store_key, event_time, quantity, event_id
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
    let sold: i64 = row.get(0);
    check_hourly(row.get(1))?;
    add_rows(tx, "fact_sales", sold).await?;

    copy(
        tx,
        "stg_fact_stock_daily",
        &[
            ("date_key", T::INT4),
            ("store_key", T::INT4),
            ("product_key", T::INT4),
            ("units_sold", T::NUMERIC),
            ("units_received", T::NUMERIC),
            ("units_wasted", T::NUMERIC),
            ("units_returned", T::NUMERIC),
            ("units_adjusted", T::NUMERIC),
            ("net_movement", T::NUMERIC),
            ("sales_count", T::INT4),
            ("count_time", T::TIMESTAMPTZ),
            ("count_quantity", T::NUMERIC),
            ("movement_after_count", T::NUMERIC),
            ("closing_on_hand", T::NUMERIC),
            ("was_out_of_stock", T::BOOL),
            ("out_of_stock_share", T::FLOAT8),
        ],
        ws.daily
            .iter()
            .map(|d| {
                vec![
                    b(d.date_key),
                    b(d.store_key),
                    b(d.product_key),
                    b(d.units_sold),
                    b(d.units_received),
                    b(d.units_wasted),
                    b(d.units_returned),
                    b(d.units_adjusted),
                    b(d.net_movement),
                    b(d.sales_count),
                    b(d.count_time),
                    b(d.count_quantity),
                    b(d.movement_after_count),
                    b(d.closing_on_hand),
                    b(d.was_out_of_stock),
                    b(d.out_of_stock_share),
                ]
            })
            .collect(),
    )
    .await?;
    tx.batch_execute("INSERT INTO fact_stock_daily SELECT * FROM stg_fact_stock_daily ON CONFLICT (store_key, product_key, date_key) DO UPDATE SET units_sold = EXCLUDED.units_sold, units_received = EXCLUDED.units_received, units_wasted = EXCLUDED.units_wasted, units_returned = EXCLUDED.units_returned, units_adjusted = EXCLUDED.units_adjusted, net_movement = EXCLUDED.net_movement, sales_count = EXCLUDED.sales_count, count_time = EXCLUDED.count_time, count_quantity = EXCLUDED.count_quantity, movement_after_count = EXCLUDED.movement_after_count, closing_on_hand = EXCLUDED.closing_on_hand, was_out_of_stock = EXCLUDED.was_out_of_stock, out_of_stock_share = EXCLUDED.out_of_stock_share, gold_batch = EXCLUDED.gold_batch").await.map_err(err)?;

    copy(
        tx,
        "stg_stock_level",
        &[
            ("store_key", T::INT4),
            ("product_key", T::INT4),
            ("on_hand", T::NUMERIC),
            ("avg_daily_demand", T::NUMERIC),
            ("safety_stock", T::NUMERIC),
            ("reorder_point", T::NUMERIC),
            ("days_of_cover", T::NUMERIC),
            ("projected_stockout_at", T::TIMESTAMPTZ),
            ("updated_at", T::TIMESTAMPTZ),
            ("status", T::TEXT),
            ("demand_sd", T::NUMERIC),
            ("order_up_to", T::NUMERIC),
            ("suggested_order_qty", T::NUMERIC),
            ("on_order", T::NUMERIC),
            ("expected_delivery_at", T::TIMESTAMPTZ),
            ("last_count_at", T::TIMESTAMPTZ),
            ("last_count_quantity", T::NUMERIC),
            ("last_movement_at", T::TIMESTAMPTZ),
            ("last_sale_at", T::TIMESTAMPTZ),
            ("in_stock_since", T::TIMESTAMPTZ),
            ("demand_level", T::FLOAT8),
            ("demand_var", T::FLOAT8),
            ("demand_days", T::INT4),
            ("units_per_sale", T::FLOAT8),
            ("last_receipt_at", T::TIMESTAMPTZ),
            ("receipt_interval_days", T::FLOAT8),
            ("receipt_qty", T::FLOAT8),
            ("receipt_count", T::INT4),
            ("stockout_days", T::INT4),
            ("order_level", T::FLOAT8),
            ("ordered_at", T::TIMESTAMPTZ),
        ],
        ws.levels
            .iter()
            .map(|l| {
                vec![
                    b(l.store_key),
                    b(l.product_key),
                    b(l.on_hand),
                    b(l.avg_daily_demand),
                    b(l.safety_stock),
                    b(l.reorder_point),
                    b(l.days_of_cover),
                    b(l.projected_stockout_at),
                    b(l.updated_at),
                    b(l.status.to_string()),
                    b(l.demand_sd),
                    b(l.order_up_to),
                    b(l.suggested_order_qty),
                    b(l.on_order),
                    b(l.expected_delivery_at),
                    b(l.last_count_at),
                    b(l.last_count_quantity),
                    b(l.last_movement_at),
                    b(l.last_sale_at),
                    b(l.in_stock_since),
                    b(l.demand_level),
                    b(l.demand_var),
                    b(l.demand_days),
                    b(l.units_per_sale),
                    b(l.last_receipt_at),
                    b(l.receipt_interval_days),
                    b(l.receipt_qty),
                    b(l.receipt_count),
                    b(l.stockout_days),
                    b(l.order_level),
                    b(l.ordered_at),
                ]
            })
            .collect(),
    )
    .await?;
    tx.batch_execute("INSERT INTO stock_level SELECT * FROM stg_stock_level ON CONFLICT (store_key, product_key) DO UPDATE SET on_hand = EXCLUDED.on_hand, avg_daily_demand = EXCLUDED.avg_daily_demand, safety_stock = EXCLUDED.safety_stock, reorder_point = EXCLUDED.reorder_point, days_of_cover = EXCLUDED.days_of_cover, projected_stockout_at = EXCLUDED.projected_stockout_at, updated_at = EXCLUDED.updated_at, status = EXCLUDED.status, demand_sd = EXCLUDED.demand_sd, order_up_to = EXCLUDED.order_up_to, suggested_order_qty = EXCLUDED.suggested_order_qty, on_order = EXCLUDED.on_order, expected_delivery_at = EXCLUDED.expected_delivery_at, last_count_at = EXCLUDED.last_count_at, last_count_quantity = EXCLUDED.last_count_quantity, last_movement_at = EXCLUDED.last_movement_at, last_sale_at = EXCLUDED.last_sale_at, in_stock_since = EXCLUDED.in_stock_since, demand_level = EXCLUDED.demand_level, demand_var = EXCLUDED.demand_var, demand_days = EXCLUDED.demand_days, units_per_sale = EXCLUDED.units_per_sale, last_receipt_at = EXCLUDED.last_receipt_at, receipt_interval_days = EXCLUDED.receipt_interval_days, receipt_qty = EXCLUDED.receipt_qty, receipt_count = EXCLUDED.receipt_count, stockout_days = EXCLUDED.stockout_days, order_level = EXCLUDED.order_level, ordered_at = EXCLUDED.ordered_at, gold_batch = EXCLUDED.gold_batch").await.map_err(err)?;

    copy(
        tx,
        "stg_stock_alert",
        &[
            ("alert_id", T::INT8),
            ("store_key", T::INT4),
            ("product_key", T::INT4),
            ("alert_type", T::TEXT),
            ("severity", T::TEXT),
            ("opened_at", T::TIMESTAMPTZ),
            ("resolved_at", T::TIMESTAMPTZ),
            ("on_hand", T::NUMERIC),
            ("threshold", T::NUMERIC),
            ("suggested_order_qty", T::NUMERIC),
            ("message", T::TEXT),
            ("updated_at", T::TIMESTAMPTZ),
        ],
        ws.alerts
            .iter()
            .map(|a| {
                vec![
                    b(a.alert_id),
                    b(a.store_key),
                    b(a.product_key),
                    b(a.alert_type.clone()),
                    b(a.severity.clone()),
                    b(a.opened_at),
                    b(a.resolved_at),
                    b(a.on_hand),
                    b(a.threshold),
                    b(a.suggested_order_qty),
                    b(a.message.clone()),
                    b(a.updated_at),
                ]
            })
            .collect(),
    )
    .await?;
    let opened: i64 = tx
        .query_one("SELECT COUNT(*) FROM stg_stock_alert s WHERE NOT EXISTS (SELECT 1 FROM stock_alert a WHERE a.alert_id = s.alert_id)", &[])
        .await
        .map_err(err)?
        .get(0);
    add_rows(tx, "stock_alert", opened).await?;
    // resolutions first, so that a reopened alert never meets its predecessor still open
    tx.batch_execute("UPDATE stock_alert a SET severity = s.severity, resolved_at = s.resolved_at, on_hand = s.on_hand, threshold = s.threshold, suggested_order_qty = s.suggested_order_qty, message = s.message, updated_at = s.updated_at, product_key = s.product_key, gold_batch = s.gold_batch FROM stg_stock_alert s WHERE a.alert_id = s.alert_id AND s.resolved_at IS NOT NULL;
        INSERT INTO stock_alert SELECT * FROM stg_stock_alert WHERE resolved_at IS NULL ON CONFLICT (alert_id) DO UPDATE SET severity = EXCLUDED.severity, on_hand = EXCLUDED.on_hand, threshold = EXCLUDED.threshold, suggested_order_qty = EXCLUDED.suggested_order_qty, message = EXCLUDED.message, updated_at = EXCLUDED.updated_at, product_key = EXCLUDED.product_key, gold_batch = EXCLUDED.gold_batch;
        INSERT INTO stock_alert SELECT * FROM stg_stock_alert s WHERE s.resolved_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM stock_alert a WHERE a.alert_id = s.alert_id)").await.map_err(err)?;

    copy(
        tx,
        "stg_alert_outbox",
        &[
            ("id", T::INT8),
            ("alert_id", T::INT8),
            ("change", T::TEXT),
            ("payload", T::TEXT),
            ("created_at", T::TIMESTAMPTZ),
            ("attempts", T::INT4),
        ],
        ws.outbox
            .iter()
            .map(|o| {
                vec![
                    b(o.id),
                    b(o.alert_id),
                    b(o.change.clone()),
                    b(o.payload.clone()),
                    b(o.created_at),
                    b(0i32),
                ]
            })
            .collect(),
    )
    .await?;
    tx.batch_execute("INSERT INTO alert_outbox SELECT * FROM stg_alert_outbox")
        .await
        .map_err(err)?;

    for st in &ws.store_states {
        tx.execute("INSERT INTO gold_store_state (store_key, clock, local_date, state) VALUES ($1, $2, $3, $4) ON CONFLICT (store_key) DO UPDATE SET clock = EXCLUDED.clock, local_date = EXCLUDED.local_date, state = EXCLUDED.state", &[&st.store_key, &st.clock, &st.local_date, &st.state]).await.map_err(err)?;
    }
    let mut dead = 0i64;
    for d in &ws.dead_letters {
        dead += tx.execute("INSERT INTO gold_dead_letter (event_id, line_no, event_type, event_time, store_id, sku, quantity, unit_price, discount, silver_version, error, dead_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (event_id, line_no) DO NOTHING",
            &[&d.event_id, &d.line_no, &d.event_type, &d.event_time, &d.store_id, &d.sku, &d.quantity, &d.unit_price, &d.discount, &d.silver_version, &d.error, &d.dead_at]).await.map_err(err)? as i64;
    }
    add_rows(tx, "gold_dead_letter", dead).await?;
    for cp in &ws.checkpoints {
        tx.execute("INSERT INTO gold_checkpoint (name, silver_version, batch, lines, updated_at) VALUES ($1, $2, $3, $4, now()) ON CONFLICT (name) DO UPDATE SET silver_version = EXCLUDED.silver_version, batch = EXCLUDED.batch, lines = EXCLUDED.lines, updated_at = EXCLUDED.updated_at", &[&cp.name, &cp.silver_version, &cp.batch, &cp.lines]).await.map_err(err)?;
    }
    Ok(())
}
