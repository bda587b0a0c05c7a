//! The gold database behind one type: SQLite (embedded default) or PostgreSQL.

pub mod dialect;
pub mod postgres;
pub mod sqlite;
pub mod table;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::ModelError;
use crate::rows::*;
use crate::schema::Dialect;
use table::{Cell, Col};

/// A value a query is given.
#[derive(Debug, Clone)]
pub enum Param {
    Int(i64),
    Text(String),
}

/// What the model keeps in memory, read at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub stores: Vec<StoreRow>,
    pub products: Vec<ProductRow>,
    pub open_alerts: Vec<AlertRow>,
    pub store_states: Vec<StoreStateRow>,
    pub checkpoints: Vec<CheckpointRow>,
    pub date_keys: Vec<i32>,
    pub max_alert_id: i64,
    pub max_outbox_id: i64,
    pub max_product_key: i32,
    pub max_store_key: i32,
    /// `dim_payment_method` and `dim_client_type`: (key, name), the "unknown" members included.
    pub payment_methods: Vec<(i32, String)>,
    pub client_types: Vec<(i32, String)>,
    pub suppliers: Vec<SupplierRow>,
    /// The lines of every order with a line still open or awaiting its order.
    pub order_lines: Vec<OrderLineRow>,
}

/// The orders `load` reads back: those with a line still expected.
pub const OPEN_ORDERS: &str = "WHERE (store_key, order_id) IN (SELECT store_key, order_id FROM purchase_order_line WHERE status IN ('open', 'awaiting_order'))";

/// A gold database.
#[derive(Debug, Clone)]
pub enum Gold {
    Sqlite(sqlite::SqliteGold),
    Postgres(postgres::PgGold),
}

impl Gold {
    /// Opens `sqlite://PATH` or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Gold, ModelError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let p = PathBuf::from(path);
            Ok(Gold::Sqlite(sqlite::SqliteGold::open(&p)?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Gold::Postgres(postgres::PgGold::connect(url).await?))
        } else {
            Err(ModelError::Config(format!(
                "{} is not a gold database: use sqlite://PATH or postgres://user@host:port/db",
                crate::redact(url)
            )))
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Gold::Sqlite(_) => Dialect::Sqlite,
            Gold::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Applies pending migrations; returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i64>, ModelError> {
        match self {
            Gold::Sqlite(g) => g.migrate().await,
            Gold::Postgres(g) => {
                let v = g.migrate().await?;
                if !v.is_empty() {
                    // the session's staging tables need the new schema
                    g.reconnect_after_migration().await?;
                }
                Ok(v)
            }
        }
    }

    pub async fn load(&self) -> Result<Loaded, ModelError> {
        match self {
            Gold::Sqlite(g) => g.load().await,
            Gold::Postgres(g) => {
                g.reconnect_if_closed().await?;
                g.load().await
            }
        }
    }

    /// Up to `limit` stock levels after the key `after` (store key, product key), in key
    /// order: the model reads them page by page, never all at once.
    pub async fn levels_after(
        &self,
        after: (i32, i32),
        limit: i64,
    ) -> Result<Vec<LevelRow>, ModelError> {
        match self {
            Gold::Sqlite(g) => g.levels_after(after, limit).await,
            Gold::Postgres(g) => {
                g.reconnect_if_closed().await?;
                g.levels_after(after, limit).await
            }
        }
    }

    pub async fn daily_rows(
        &self,
        keys: Vec<(i32, i32)>,
        from_date_key: i32,
    ) -> Result<Vec<DailyRow>, ModelError> {
        match self {
            Gold::Sqlite(g) => g.daily_rows(keys, from_date_key).await,
            Gold::Postgres(g) => g.daily_rows(keys, from_date_key).await,
        }
    }

    pub async fn daily_rows_of_day(
        &self,
        store_key: i32,
        date_key: i32,
    ) -> Result<Vec<DailyRow>, ModelError> {
        match self {
            Gold::Sqlite(g) => g.daily_rows_of_day(store_key, date_key).await,
            Gold::Postgres(g) => g.daily_rows_of_day(store_key, date_key).await,
        }
    }

    /// The lines of one order of a store.
    pub async fn order_lines(
        &self,
        store_key: i32,
        order_id: &str,
    ) -> Result<Vec<OrderLineRow>, ModelError> {
        match self {
            Gold::Sqlite(g) => g.order_lines(store_key, order_id.to_string()).await,
            Gold::Postgres(g) => g.order_lines(store_key, order_id).await,
        }
    }

    pub async fn movements_after(
        &self,
        store_key: i32,
        product_key: i32,
        after: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Decimal)>, ModelError> {
        match self {
            Gold::Sqlite(g) => g.movements_after(store_key, product_key, after).await,
            Gold::Postgres(g) => g.movements_after(store_key, product_key, after).await,
        }
    }

    /// Writes a batch and its checkpoint in one transaction.
    pub async fn apply(&self, ws: WriteSet) -> Result<(), ModelError> {
        match self {
            Gold::Sqlite(g) => g.apply(ws).await,
            Gold::Postgres(g) => {
                g.reconnect_if_closed().await?;
                g.apply(ws).await
            }
        }
    }

    /// Writes a batch in a transaction that is rolled back: `Ok` when gold would take it.
    pub async fn trial(&self, ws: WriteSet) -> Result<(), ModelError> {
        match self {
            Gold::Sqlite(g) => g.trial(ws).await,
            Gold::Postgres(g) => {
                g.reconnect_if_closed().await?;
                g.trial(ws).await
            }
        }
    }

    /// Gold's epoch: drawn when gold is first written to, and again after it was emptied (a
    /// rebuild), so that what follows gold (the gold lake) can tell a rebuilt gold from one
    /// that went on. `None` before the first.
    pub async fn epoch(&self) -> Result<Option<i64>, ModelError> {
        let rows = self
            .rows(
                "SELECT epoch FROM gold_epoch",
                Vec::new(),
                &[("epoch", Col::I64)],
            )
            .await?;
        Ok(rows.first().and_then(|r| match r.first() {
            Some(Cell::I64(e)) => Some(*e),
            _ => None,
        }))
    }

    /// Runs `sql` (`?` placeholders) on the reader side of gold and returns its rows as cells
    /// of `columns`' types.
    pub async fn rows(
        &self,
        sql: &str,
        params: Vec<Param>,
        columns: &[(&'static str, Col)],
    ) -> Result<Vec<Vec<Cell<'static>>>, ModelError> {
        let columns = columns.to_vec();
        match self {
            Gold::Sqlite(g) => {
                let sql = sql.to_string();
                g.read(move |c| {
                    let args: Vec<rusqlite::types::Value> = params
                        .into_iter()
                        .map(|p| match p {
                            Param::Int(i) => rusqlite::types::Value::Integer(i),
                            Param::Text(t) => rusqlite::types::Value::Text(t),
                        })
                        .collect();
                    sqlite::rows(c, &sql, &args, &columns)
                })
                .await
            }
            Gold::Postgres(g) => {
                g.reconnect_if_closed().await?;
                let mut n = 0;
                let sql: String = sql
                    .chars()
                    .map(|c| {
                        if c == '?' {
                            n += 1;
                            format!("${n}")
                        } else {
                            c.to_string()
                        }
                    })
                    .collect();
                let boxed: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = params
                    .into_iter()
                    .map(|p| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
                        match p {
                            Param::Int(i) => Box::new(i),
                            Param::Text(t) => Box::new(t),
                        }
                    })
                    .collect();
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = boxed
                    .iter()
                    .map(|b| b.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let c = g.client().await;
                postgres::rows(&c, &sql, &refs, &columns)
                    .await
                    .map_err(|e| ModelError::database(format!("{e}: {sql}")))
            }
        }
    }

    /// The epoch, drawn now when there is none.
    pub async fn ensure_epoch(&self) -> Result<i64, ModelError> {
        if let Some(e) = self.epoch().await? {
            return Ok(e);
        }
        let epoch = chrono::Utc::now().timestamp_micros();
        match self {
            Gold::Sqlite(g) => {
                g.with(move |c| {
                    c.execute("INSERT INTO gold_epoch (epoch) SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM gold_epoch)", [epoch])
                        .map_err(|e| ModelError::database(e.to_string()))
                })
                .await?;
            }
            Gold::Postgres(g) => {
                g.reconnect_if_closed().await?;
                g.client()
                    .await
                    .execute("INSERT INTO gold_epoch (epoch) SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM gold_epoch)", &[&epoch])
                    .await
                    .map_err(|e| ModelError::database(e.to_string()))?;
            }
        }
        Ok(self.epoch().await?.unwrap_or(epoch))
    }

    /// Empties every gold table.
    pub async fn truncate(&self) -> Result<(), ModelError> {
        match self {
            Gold::Sqlite(g) => g.truncate().await,
            Gold::Postgres(g) => g.truncate().await,
        }
    }
}
