//! The gold lake: gold's star schema published as Delta tables, one directory each under a
//! root (`--gold-lake`, `file://…` or `s3://bucket/prefix`), for Spark, Athena, Trino, DuckDB
//! and Polars to read without touching the database (decision 0022).
//!
//! Every published row carries `gold_batch`, the gold batch that last wrote it (migration 7).
//! A table's progress is its Delta application transaction (`stocklake-gold-lake`), whose
//! version is the gold batch the table holds everything up to; a publication commits its rows
//! and that version together, so it happens once or not at all:
//! - tables whose rows are only added (the facts, the date dimension) append the rows stamped
//!   after their version, up to gold's checkpoint, read page by page in key order;
//! - tables whose rows change in place (the daily snapshot, stock levels, alerts, the small
//!   dimensions) rewrite the partitions — of a date, of a store, or the whole table — that hold
//!   such rows: their files removed and the partition's current rows added, in one commit.
//!
//! A gold rebuilt from bronze (`stocklake replay`) starts its batches again, under a new epoch
//! (`gold_epoch`, drawn when gold is first written to after it was emptied): the application
//! transaction is named after the epoch, so a table holding another epoch's rows is emptied and
//! published again from the start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use deltalake::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Remove, StructField, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use rust_decimal::Decimal;
use stocklake_silver::read::active_files;
use stocklake_storage::{AwsOptions, Location};

use crate::ModelError;
use crate::db::Gold;

/// The application id of the lake's progress in each table's Delta log, followed by gold's
/// epoch.
pub const APP_ID: &str = "stocklake-gold-lake";

/// The application id of an epoch of gold.
pub fn app_id(epoch: i64) -> String {
    format!("{APP_ID}-{epoch}")
}

/// Rows read from gold per page.
const PAGE: i64 = 50_000;

pub use crate::db::Param;
pub use crate::db::table::Col;
use crate::db::table::{self, Cell, Table};
use Col::*;

/// A column's type as Arrow and Delta write it.
trait Arrow {
    fn arrow(self) -> DataType;
}

impl Arrow for Col {
    fn arrow(self) -> DataType {
        match self {
            Col::I16 => DataType::Int16,
            Col::I32 => DataType::Int32,
            Col::I64 => DataType::Int64,
            Col::Text => DataType::Utf8,
            Col::Dec(s) => DataType::Decimal128(18, s),
            Col::Ts => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Col::Date => DataType::Date32,
            Col::Bool => DataType::Boolean,
            Col::F64 => DataType::Float64,
            Col::Json => DataType::Utf8,
        }
    }
}

/// How a published table follows gold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Rows are only added: publications append the rows stamped since the last.
    Append,
    /// Rows change in place: publications rewrite the partitions holding changed rows (the
    /// whole table when it has no partition column).
    Rewrite,
}

/// A table of the gold lake: what it publishes of a gold table, and how.
#[derive(Debug)]
pub struct LakeTable {
    pub name: &'static str,
    /// The gold table, described once ([`crate::db::table`]).
    pub table: &'static Table,
    pub follow: Follow,
    /// The partition column, when the table has one.
    pub partition: Option<&'static str>,
    /// A unique key: rows are read in its order, page by page.
    pub key: &'static [&'static str],
}

const fn lake(
    table: &'static Table,
    follow: Follow,
    partition: Option<&'static str>,
    key: &'static [&'static str],
) -> LakeTable {
    LakeTable {
        name: table.name,
        table,
        follow,
        partition,
        key,
    }
}

/// Every table of the gold lake.
pub const TABLES: &[LakeTable] = &[
    lake(&table::DIM_DATE, Follow::Append, None, &["date_key"]),
    lake(&table::DIM_STORE, Follow::Rewrite, None, &["store_key"]),
    lake(&table::DIM_PRODUCT, Follow::Rewrite, None, &["product_key"]),
    lake(
        &table::DIM_PAYMENT_METHOD,
        Follow::Rewrite,
        None,
        &["payment_method_key"],
    ),
    lake(
        &table::DIM_CLIENT_TYPE,
        Follow::Rewrite,
        None,
        &["client_type_key"],
    ),
    lake(
        &table::FACT_SALES,
        Follow::Append,
        Some("date_key"),
        &["event_id", "line_no"],
    ),
    lake(
        &table::FACT_INVENTORY_MOVEMENT,
        Follow::Append,
        Some("date_key"),
        &["event_id", "line_no"],
    ),
    lake(
        &table::FACT_STOCK_DAILY,
        Follow::Rewrite,
        Some("date_key"),
        &["store_key", "product_key"],
    ),
    lake(
        &table::STOCK_LEVEL,
        Follow::Rewrite,
        Some("store_key"),
        &["product_key"],
    ),
    lake(
        &table::STOCK_ALERT,
        Follow::Rewrite,
        Some("store_key"),
        &["alert_id"],
    ),
];

impl LakeTable {
    /// The columns published: the gold table's (but the model's own working state of a
    /// stock level), and `gold_batch`.
    pub fn columns(&self) -> Vec<(&'static str, Col)> {
        let mut c = self.table.columns[..self.table.published].to_vec();
        c.push(("gold_batch", Col::I64));
        c
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns()
                .iter()
                .map(|(n, c)| {
                    let nullable =
                        !self.key.contains(n) && Some(*n) != self.partition && *n != "gold_batch";
                    Field::new(*n, c.arrow(), nullable)
                })
                .collect::<Vec<_>>(),
        ))
    }

    fn select(&self) -> String {
        self.columns()
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A lake table beside its gold table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableState {
    pub table: String,
    /// The gold batch it holds everything up to (`None`: nothing of gold's epoch yet).
    pub published: Option<i64>,
    /// The newest gold batch among gold's rows of the table (-1: none).
    pub newest: i64,
    pub up_to_date: bool,
}

/// What one publication did to one table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Published {
    pub table: String,
    /// The gold batch the table now holds everything up to.
    pub batch: i64,
    pub rows: u64,
    pub partitions: u64,
    /// The table was emptied first (gold was rebuilt).
    pub reset: bool,
}

/// The Delta tables of the gold lake under one root.
pub struct GoldLake {
    root: Location,
    aws: AwsOptions,
    tables: HashMap<&'static str, DeltaTable>,
}

impl std::fmt::Debug for GoldLake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoldLake")
            .field("root", &self.root)
            .finish()
    }
}

fn lake_err(table: &str, e: DeltaTableError) -> ModelError {
    ModelError::lake_delta(table, e)
}

impl GoldLake {
    /// Opens (creating what is missing) every table under `root`.
    pub async fn open(root: Location, aws: AwsOptions) -> Result<GoldLake, ModelError> {
        let mut tables = HashMap::new();
        for t in TABLES {
            tables.insert(t.name, open_or_create(&root, &aws, t).await?);
        }
        Ok(GoldLake { root, aws, tables })
    }

    pub fn root(&self) -> &Location {
        &self.root
    }

    /// Per table, the gold batch it holds everything up to, of gold's epoch (`None`: nothing
    /// of it published yet).
    pub async fn versions(
        &mut self,
        gold: &Gold,
    ) -> Result<BTreeMap<String, Option<i64>>, ModelError> {
        Ok(self
            .state(gold)
            .await?
            .into_iter()
            .map(|s| (s.table, s.published))
            .collect())
    }

    /// Per table, what it holds and what gold holds: a table is up to date when no row of gold
    /// is stamped after its version (its version moves only when it has rows to publish).
    pub async fn state(&mut self, gold: &Gold) -> Result<Vec<TableState>, ModelError> {
        let app = gold.epoch().await?.map(app_id);
        let mut out = Vec::new();
        for t in TABLES {
            let table = self.table(t.name)?;
            table
                .update_state()
                .await
                .map_err(|e| lake_err(t.name, e))?;
            let published = match &app {
                Some(app) => published(table, app).await?,
                None => None,
            };
            let newest = read(
                gold,
                &format!("SELECT COALESCE(MAX(gold_batch), -1) FROM {}", t.name),
                Vec::new(),
                &[("newest", I64)],
            )
            .await?;
            let newest = newest
                .column(0)
                .as_any()
                .downcast_ref::<deltalake::arrow::array::Int64Array>()
                .and_then(|a| a.values().first().copied())
                .unwrap_or(-1);
            out.push(TableState {
                table: t.name.to_string(),
                published,
                newest,
                up_to_date: published.unwrap_or(-1) >= newest,
            });
        }
        Ok(out)
    }

    fn table(&mut self, name: &str) -> Result<&mut DeltaTable, ModelError> {
        self.tables
            .get_mut(name)
            .ok_or_else(|| ModelError::Internal(format!("no lake table {name}")))
    }

    /// Table care for the lake, as for silver: the small files of each partition (a file per
    /// publication) compacted, a checkpoint, and files no version within the retention needs
    /// deleted. What it did, per table.
    pub async fn care(
        &mut self,
        cfg: &stocklake_silver::maintain::MaintainConfig,
    ) -> Result<Vec<stocklake_silver::maintain::TableCare>, ModelError> {
        let mut out = Vec::new();
        for t in TABLES {
            let table = self
                .tables
                .remove(t.name)
                .ok_or_else(|| ModelError::Internal(format!("no lake table {}", t.name)))?;
            let result =
                stocklake_silver::maintain::care_for(table, t.name, &t.schema(), cfg).await;
            // the table as storage now holds it, whatever care did
            self.tables
                .insert(t.name, open_or_create(&self.root, &self.aws, t).await?);
            out.push(result.map_err(|e| ModelError::lake(format!("{}: {e}", t.name)))?);
        }
        Ok(out)
    }

    /// Brings every table up to gold's checkpoint; what each did (nothing while gold has
    /// never been written to).
    pub async fn publish(&mut self, gold: &Gold) -> Result<Vec<Published>, ModelError> {
        let Some(epoch) = gold.epoch().await? else {
            return Ok(Vec::new());
        };
        let app = app_id(epoch);
        let upto = gold_batch(gold).await?;
        let mut out = Vec::with_capacity(TABLES.len());
        for t in TABLES {
            let table = self
                .tables
                .remove(t.name)
                .ok_or_else(|| ModelError::Internal(format!("no lake table {}", t.name)))?;
            let (table, done) = match publish_table(table, t, gold, &app, upto).await {
                Ok(x) => x,
                Err(e) => {
                    // the table as it stands in storage, for the next attempt
                    self.tables
                        .insert(t.name, open_or_create(&self.root, &self.aws, t).await?);
                    return Err(e);
                }
            };
            self.tables.insert(t.name, table);
            out.push(done);
        }
        Ok(out)
    }
}

/// The gold batch of the checkpoint: what gold has committed.
async fn gold_batch(gold: &Gold) -> Result<i64, ModelError> {
    Ok(crate::queries::checkpoints(gold)
        .await?
        .iter()
        .find(|c| c["name"] == "pos_event_lines")
        .and_then(|c| c["batch"].as_i64())
        .unwrap_or(0))
}

/// The gold batch a table holds everything up to, of the epoch of `app`.
async fn published(table: &DeltaTable, app: &str) -> Result<Option<i64>, ModelError> {
    if table.version().is_none() {
        return Ok(None);
    }
    let snapshot = table.snapshot().map_err(|e| lake_err("snapshot", e))?;
    snapshot
        .transaction_version(table.log_store().as_ref(), app)
        .await
        .map_err(|e| lake_err("transaction version", e))
}

async fn publish_table(
    mut table: DeltaTable,
    t: &LakeTable,
    gold: &Gold,
    app: &str,
    upto: i64,
) -> Result<(DeltaTable, Published), ModelError> {
    table
        .update_state()
        .await
        .map_err(|e| lake_err(t.name, e))?;
    let mut done = Published {
        table: t.name.to_string(),
        ..Published::default()
    };
    let mut since = published(&table, app).await?.unwrap_or(-1);
    let mut removes: Vec<Action> = Vec::new();
    if since < 0 || since > upto {
        // nothing of this epoch yet: whatever the table holds is of a gold since rebuilt
        removes = remove_files(&table, None).await?;
        since = -1;
        done.reset = !removes.is_empty();
        if done.reset {
            tracing::info!(
                table = t.name,
                "the lake holds rows of a gold since rebuilt: the table is published again from the start"
            );
        }
    }
    done.batch = since.max(0);
    if since == upto && !done.reset {
        return Ok((table, done));
    }
    let mut writer = RecordBatchWriter::for_table(&table).map_err(|e| lake_err(t.name, e))?;
    let mut adds: Vec<Action> = Vec::new();
    match t.follow {
        Follow::Append => {
            let range = format!("gold_batch > {since} AND gold_batch <= {upto}");
            done.rows = copy_rows(gold, t, &range, &mut writer, &mut adds).await?;
        }
        Follow::Rewrite => {
            let parts = changed_partitions(gold, t, since, upto).await?;
            if let Some(column) = t.partition {
                for p in &parts {
                    let range = format!("{column} = {p}");
                    done.rows += copy_rows(gold, t, &range, &mut writer, &mut adds).await?;
                }
                if !done.reset {
                    let values: BTreeSet<String> = parts.iter().map(|p| p.to_string()).collect();
                    removes = remove_files(&table, Some((column, &values))).await?;
                }
            } else if !parts.is_empty() || done.reset {
                done.rows = copy_rows(gold, t, "1 = 1", &mut writer, &mut adds).await?;
                if !done.reset {
                    removes = remove_files(&table, None).await?;
                }
            }
            done.partitions = parts.len() as u64;
        }
    }
    adds.extend(
        writer
            .flush()
            .await
            .map_err(|e| lake_err(t.name, e))?
            .into_iter()
            .map(Action::Add),
    );
    if adds.is_empty() && removes.is_empty() {
        // nothing stamped since: the table is as it should be, and its version stays (a
        // commit holding only a version would grow the log for nothing)
        return Ok((table, done));
    }
    let mut actions = removes;
    actions.extend(adds);
    let snapshot = table.snapshot().map_err(|e| lake_err(t.name, e))?;
    CommitBuilder::from(
        CommitProperties::default().with_application_transaction(Transaction::new(app, upto)),
    )
    .with_actions(actions)
    .build(
        Some(snapshot),
        table.log_store(),
        DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: t.partition.map(|p| vec![p.to_string()]),
            predicate: None,
        },
    )
    .await
    .map_err(|e| lake_err(t.name, e))?;
    table
        .update_state()
        .await
        .map_err(|e| lake_err(t.name, e))?;
    if table.version().is_some_and(|v| v > 0 && v % 50 == 0) {
        deltalake::checkpoints::create_checkpoint(&table, None)
            .await
            .map_err(|e| lake_err(t.name, e))?;
    }
    done.batch = upto;
    Ok((table, done))
}

/// Removes of the table's files: all of them, or those of the given partition values.
async fn remove_files(
    table: &DeltaTable,
    only: Option<(&str, &BTreeSet<String>)>,
) -> Result<Vec<Action>, ModelError> {
    if table.version().is_none() {
        return Ok(Vec::new());
    }
    let now = Utc::now().timestamp_millis();
    let files = active_files(table)
        .await
        .map_err(|e| ModelError::lake(e.to_string()))?;
    Ok(files
        .into_iter()
        .filter(|f| match only {
            None => true,
            Some((column, values)) => f
                .partition
                .get(column)
                .and_then(|v| v.as_ref())
                .is_some_and(|v| values.contains(v)),
        })
        .map(|f| {
            Action::Remove(Remove {
                path: f.path,
                data_change: true,
                deletion_timestamp: Some(now),
                extended_file_metadata: Some(true),
                partition_values: Some(f.partition),
                size: Some(f.size),
                ..Remove::default()
            })
        })
        .collect())
}

/// The partition values holding rows stamped in `(since, upto]` (for a table without a
/// partition column, `[0]` when it holds any).
async fn changed_partitions(
    gold: &Gold,
    t: &LakeTable,
    since: i64,
    upto: i64,
) -> Result<Vec<i64>, ModelError> {
    let range = format!("gold_batch > {since} AND gold_batch <= {upto}");
    let sql = match t.partition {
        Some(c) => format!(
            "SELECT DISTINCT {c} FROM {} WHERE {range} ORDER BY 1",
            t.name
        ),
        None => format!("SELECT 0 FROM {} WHERE {range} LIMIT 1", t.name),
    };
    let b = read(gold, &sql, Vec::new(), &[("p", I64)]).await?;
    let col = b
        .column(0)
        .as_any()
        .downcast_ref::<deltalake::arrow::array::Int64Array>()
        .ok_or_else(|| ModelError::Internal("partition values".into()))?;
    Ok(col.values().iter().copied().collect())
}

/// Writes the rows of `t` that `filter` selects, read page by page in key order, into
/// `writer`, each page flushed to a file of its own; returns how many.
async fn copy_rows(
    gold: &Gold,
    t: &LakeTable,
    filter: &str,
    writer: &mut RecordBatchWriter,
    adds: &mut Vec<Action>,
) -> Result<u64, ModelError> {
    let key = t.key.join(", ");
    let mut after: Option<Vec<Param>> = None;
    let mut total = 0u64;
    loop {
        let (cond, params) = match &after {
            None => (String::new(), Vec::new()),
            Some(last) => {
                // PostgreSQL types a parameter by what it is compared with: a bigint is sent
                let marks: Vec<&str> = last
                    .iter()
                    .map(|p| match (p, gold.dialect()) {
                        (Param::Int(_), crate::schema::Dialect::Postgres) => "?::bigint",
                        _ => "?",
                    })
                    .collect();
                (
                    format!(" AND ({key}) > ({})", marks.join(", ")),
                    last.clone(),
                )
            }
        };
        let sql = format!(
            "SELECT {} FROM {} WHERE {filter}{cond} ORDER BY {key} LIMIT {PAGE}",
            t.select(),
            t.name
        );
        let b = read(gold, &sql, params, &t.columns()).await?;
        let n = b.num_rows();
        if n == 0 {
            break;
        }
        total += n as u64;
        after = Some(last_key(&b, t)?);
        let b = RecordBatch::try_new(t.schema(), b.columns().to_vec())
            .map_err(|e| ModelError::lake(format!("{}: {e}", t.name)))?;
        writer.write(b).await.map_err(|e| lake_err(t.name, e))?;
        // a page at a time to storage: memory holds one page, not the whole range
        adds.extend(
            writer
                .flush()
                .await
                .map_err(|e| lake_err(t.name, e))?
                .into_iter()
                .map(Action::Add),
        );
        if (n as i64) < PAGE {
            break;
        }
    }
    Ok(total)
}

/// The key of a page's last row, to read the next page after it.
fn last_key(b: &RecordBatch, t: &LakeTable) -> Result<Vec<Param>, ModelError> {
    use deltalake::arrow::array::{Array, AsArray};
    use deltalake::arrow::datatypes::{Int32Type, Int64Type};
    let i = b.num_rows() - 1;
    t.key
        .iter()
        .map(|k| {
            let c = b
                .column_by_name(k)
                .ok_or_else(|| ModelError::Internal(format!("no key column {k}")))?;
            Ok(match c.data_type() {
                DataType::Int32 => Param::Int(i64::from(c.as_primitive::<Int32Type>().value(i))),
                DataType::Int64 => Param::Int(c.as_primitive::<Int64Type>().value(i)),
                _ if !c.is_null(i) => Param::Text(c.as_string::<i32>().value(i).to_string()),
                _ => Param::Text(String::new()),
            })
        })
        .collect()
}

/// One column being filled.
enum Builder {
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    Text(StringBuilder),
    Dec(Decimal128Builder, u32),
    Ts(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Bool(BooleanBuilder),
    F64(Float64Builder),
}

impl Builder {
    fn new(c: Col) -> Builder {
        match c {
            I16 => Builder::I16(Int16Builder::new()),
            I32 => Builder::I32(Int32Builder::new()),
            I64 => Builder::I64(Int64Builder::new()),
            Text | Json => Builder::Text(StringBuilder::new()),
            Dec(s) => Builder::Dec(
                Decimal128Builder::new()
                    .with_precision_and_scale(18, s)
                    .unwrap_or_else(|_| Decimal128Builder::new()),
                s as u32,
            ),
            Ts => Builder::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            Date => Builder::Date(Date32Builder::new()),
            Bool => Builder::Bool(BooleanBuilder::new()),
            F64 => Builder::F64(Float64Builder::new()),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Builder::I16(mut b) => Arc::new(b.finish()),
            Builder::I32(mut b) => Arc::new(b.finish()),
            Builder::I64(mut b) => Arc::new(b.finish()),
            Builder::Text(mut b) => Arc::new(b.finish()),
            Builder::Dec(mut b, _) => Arc::new(b.finish()),
            Builder::Ts(mut b) => Arc::new(b.finish()),
            Builder::Date(mut b) => Arc::new(b.finish()),
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::F64(mut b) => Arc::new(b.finish()),
        }
    }

    /// Appends a cell (null when it is not of the column's type).
    fn append(&mut self, cell: &Cell<'_>) {
        let int = match cell {
            Cell::I16(v) => Some(i64::from(*v)),
            Cell::I32(v) => Some(i64::from(*v)),
            Cell::I64(v) => Some(*v),
            _ => None,
        };
        match self {
            Builder::I16(b) => b.append_option(int.map(|x| x as i16)),
            Builder::I32(b) => b.append_option(int.map(|x| x as i32)),
            Builder::I64(b) => b.append_option(int),
            Builder::Text(b) => match cell {
                Cell::Text(t) => b.append_value(t),
                Cell::Json(j) => b.append_value(j.to_string()),
                _ => b.append_null(),
            },
            Builder::Dec(b, s) => {
                let s = *s;
                Builder::dec(
                    b,
                    s,
                    match cell {
                        Cell::Dec(d) => Some(*d),
                        _ => None,
                    },
                )
            }
            Builder::Ts(b) => b.append_option(match cell {
                Cell::Ts(t) => Some(t.timestamp_micros()),
                _ => None,
            }),
            Builder::Date(b) => b.append_option(match cell {
                Cell::Date(d) => Some(days(*d)),
                _ => None,
            }),
            Builder::Bool(b) => b.append_option(match cell {
                Cell::Bool(v) => Some(*v),
                _ => None,
            }),
            Builder::F64(b) => b.append_option(match cell {
                Cell::F64(v) => Some(*v),
                _ => int.map(|x| x as f64),
            }),
        }
    }

    fn dec(b: &mut Decimal128Builder, scale: u32, v: Option<Decimal>) {
        match v {
            Some(mut d) => {
                d.rescale(scale);
                b.append_value(d.mantissa());
            }
            None => b.append_null(),
        }
    }
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

/// Runs `sql` (`?` placeholders) on gold and returns its rows as a batch of `columns`' types
/// (named as `columns` name them, in the query's order).
pub async fn read(
    gold: &Gold,
    sql: &str,
    params: Vec<Param>,
    columns: &[(&'static str, Col)],
) -> Result<RecordBatch, ModelError> {
    let rows = gold.rows(sql, params, columns).await?;
    let mut builders: Vec<Builder> = columns.iter().map(|(_, c)| Builder::new(*c)).collect();
    for row in &rows {
        for (b, cell) in builders.iter_mut().zip(row) {
            b.append(cell);
        }
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, c)| Field::new(*n, c.arrow(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        builders.into_iter().map(Builder::finish).collect(),
    )
    .map_err(|e| ModelError::Internal(format!("reading gold: {e}")))
}

/// Opens the table of `t` under `root`, creating it when missing.
async fn open_or_create(
    root: &Location,
    aws: &AwsOptions,
    t: &LakeTable,
) -> Result<DeltaTable, ModelError> {
    let loc = root.join(t.name);
    if let Location::Local(p) = &loc {
        std::fs::create_dir_all(p)
            .map_err(|e| ModelError::lake(format!("creating {}: {e}", p.display())))?;
    }
    let url = match &loc {
        Location::Local(p) => format!("file://{}/", p.display()),
        Location::S3 { .. } => format!("{}/", loc.url()),
    };
    let url = url::Url::parse(&url).map_err(|e| ModelError::lake(format!("{url}: {e}")))?;
    let options: HashMap<String, String> = if loc.is_local() {
        HashMap::new()
    } else {
        aws.storage_options()
    };
    let builder = DeltaTableBuilder::from_url(url.clone())
        .map_err(|e| lake_err(t.name, e))?
        .with_storage_options(options.clone());
    match builder.load().await {
        Ok(table) => return Ok(table),
        Err(DeltaTableError::NotATable(_)) => {}
        Err(e) => return Err(lake_err(t.name, e)),
    }
    let columns: Vec<StructField> = t
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().try_into_kernel())
        .collect::<Result<_, _>>()
        .map_err(|e| ModelError::lake(format!("schema of {}: {e}", t.name)))?;
    let table = DeltaTableBuilder::from_url(url.clone())
        .map_err(|e| lake_err(t.name, e))?
        .with_storage_options(options.clone())
        .build()
        .map_err(|e| lake_err(t.name, e))?;
    let mut create = table
        .create()
        .with_table_name(t.name)
        .with_columns(columns)
        .with_comment("stocklake gold, published from the gold database (docs/decisions/0022)");
    if let Some(p) = t.partition {
        create = create.with_partition_columns([p]);
    }
    match create.await {
        Ok(table) => Ok(table),
        Err(e) if e.to_string().contains("already exists") => DeltaTableBuilder::from_url(url)
            .map_err(|e| lake_err(t.name, e))?
            .with_storage_options(options)
            .load()
            .await
            .map_err(|e| lake_err(t.name, e)),
        Err(e) => Err(lake_err(t.name, e)),
    }
}
