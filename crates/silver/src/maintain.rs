//! Table care: compaction of small files, checkpoints and vacuum — never breaking a reader.
//!
//! Real-time refine writes many small files (a batch every second or so). Compaction rewrites
//! the small files of a partition into one and commits `remove` + `add` with
//! `dataChange = false`, as the Delta protocol describes: readers of older versions keep their
//! files, streaming readers (like the gold model, which follows `dataChange = true` adds only)
//! see no new data. Vacuum then deletes files no version within the retention needs.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use deltalake::DeltaTable;
use deltalake::arrow::array::{ArrayRef, Date32Array, Int32Array, RecordBatch};
use deltalake::arrow::compute::concat_batches;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Remove};
use deltalake::protocol::DeltaOperation;
use deltalake::writer::DeltaWriter;
use stocklake_storage::{AwsOptions, Location};

use crate::SilverError;
use crate::parse_day;
use crate::read::{SilverFile, active_files, read_files};
use crate::tables::{
    POS_EVENT_LINES, PRODUCTS, QUARANTINE, STORES, open_or_create, table_spec, table_writer,
};

/// Settings of table care.
#[derive(Debug, Clone)]
pub struct MaintainConfig {
    /// A partition with more files than this smaller than `target_bytes` is compacted.
    pub min_files: usize,
    pub target_bytes: i64,
    /// Files no longer referenced are kept this long.
    pub retention_hours: u64,
}

impl Default for MaintainConfig {
    fn default() -> Self {
        MaintainConfig {
            min_files: 8,
            target_bytes: 128 << 20,
            retention_hours: 168,
        }
    }
}

/// What table care did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableCare {
    pub table: String,
    pub files_before: usize,
    pub files_after: usize,
    pub partitions_compacted: usize,
    pub checkpoint_version: Option<u64>,
    pub files_vacuumed: usize,
}

fn partition_key(f: &SilverFile) -> String {
    let mut parts: Vec<String> = f
        .partition
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("")))
        .collect();
    parts.sort();
    parts.join("/")
}

/// Puts the partition column back (Parquet files of a partitioned table do not hold it), and
/// the columns a file written before they were added lacks, as nulls.
fn with_partition_column(
    schema: &SchemaRef,
    batch: &RecordBatch,
    partition: &std::collections::HashMap<String, Option<String>>,
) -> Result<RecordBatch, SilverError> {
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        match batch.column_by_name(f.name()) {
            Some(c) => cols.push(c.clone()),
            None if f.is_nullable() && !partition.contains_key(f.name()) => cols.push(
                deltalake::arrow::array::new_null_array(f.data_type(), batch.num_rows()),
            ),
            None => {
                let raw = partition.get(f.name()).and_then(|v| v.as_deref());
                let missing =
                    || SilverError::Internal(format!("no value for partition column {}", f.name()));
                let n = batch.num_rows();
                // silver's dates, or the gold lake's integer keys (a date or a store)
                cols.push(match f.data_type() {
                    deltalake::arrow::datatypes::DataType::Int32 => {
                        Arc::new(Int32Array::from(vec![
                            raw.and_then(|v| v
                                .parse::<i32>()
                                .ok())
                                .ok_or_else(missing)?;
                            n
                        ])) as ArrayRef
                    }
                    _ => Arc::new(Date32Array::from(vec![
                        raw.and_then(parse_day)
                            .ok_or_else(missing)?;
                        n
                    ])),
                });
            }
        }
    }
    RecordBatch::try_new(schema.clone(), cols)
        .map_err(|e| SilverError::Internal(format!("rebuilding a partition: {e}")))
}

/// Compacts the small files of each partition of `table`.
pub async fn compact(
    table: &mut DeltaTable,
    name: &str,
    cfg: &MaintainConfig,
) -> Result<usize, SilverError> {
    let Some((schema, _)) = table_spec(name) else {
        return Ok(0);
    };
    compact_table(table, name, &schema, cfg).await
}

/// Compacts the small files of each partition of `table`, whose rows are `schema`'s (any Delta
/// table: silver's, or the gold lake's).
pub async fn compact_table(
    table: &mut DeltaTable,
    name: &str,
    schema: &SchemaRef,
    cfg: &MaintainConfig,
) -> Result<usize, SilverError> {
    if table.version().is_none() {
        return Ok(0);
    }
    let files = active_files(table).await?;
    let mut by_partition: BTreeMap<String, Vec<SilverFile>> = BTreeMap::new();
    for f in files.into_iter().filter(|f| f.size < cfg.target_bytes) {
        by_partition.entry(partition_key(&f)).or_default().push(f);
    }
    let mut compacted = 0;
    for (_, group) in by_partition {
        if group.len() < cfg.min_files.max(2) {
            continue;
        }
        let mut batches = Vec::new();
        for (f, bs) in read_files(table.object_store(), &group, None).await? {
            for b in bs {
                batches.push(with_partition_column(schema, &b, &f.partition)?);
            }
        }
        let merged = concat_batches(schema, &batches)
            .map_err(|e| SilverError::Internal(format!("compacting {name}: {e}")))?;
        let mut writer = table_writer(table, name)?;
        writer
            .write(merged)
            .await
            .map_err(|e| SilverError::delta(name, e))?;
        let adds = writer
            .flush()
            .await
            .map_err(|e| SilverError::delta(name, e))?;
        let now_ms = Utc::now().timestamp_millis();
        let mut actions: Vec<Action> = adds
            .into_iter()
            .map(|mut a| {
                a.data_change = false;
                Action::Add(a)
            })
            .collect();
        actions.extend(group.iter().map(|f| {
            Action::Remove(Remove {
                path: f.path.clone(),
                data_change: false,
                deletion_timestamp: Some(now_ms),
                extended_file_metadata: Some(true),
                partition_values: Some(f.partition.clone()),
                size: Some(f.size),
                ..Remove::default()
            })
        }));
        let snapshot = table.snapshot().map_err(|e| SilverError::delta(name, e))?;
        CommitBuilder::from(CommitProperties::default())
            .with_actions(actions)
            .build(
                Some(snapshot),
                table.log_store(),
                DeltaOperation::Optimize {
                    predicate: None,
                    target_size: cfg.target_bytes,
                },
            )
            .await
            .map_err(|e| SilverError::delta(name, e))?;
        table
            .update_state()
            .await
            .map_err(|e| SilverError::delta(name, e))?;
        compacted += 1;
    }
    Ok(compacted)
}

/// Compaction, a checkpoint and vacuum on one table; what it did.
pub async fn care_for(
    mut table: DeltaTable,
    name: &str,
    schema: &SchemaRef,
    cfg: &MaintainConfig,
) -> Result<TableCare, SilverError> {
    let files_before = active_files(&table).await?.len();
    let partitions_compacted = compact_table(&mut table, name, schema, cfg).await?;
    deltalake::checkpoints::create_checkpoint(&table, None)
        .await
        .map_err(|e| SilverError::delta(name, e))?;
    let checkpoint_version = table.version();
    let retention = chrono::Duration::hours(cfg.retention_hours as i64);
    let (table, metrics) = table
        .vacuum()
        .with_retention_period(retention)
        .with_enforce_retention_duration(false)
        .await
        .map_err(|e| SilverError::delta(name, e))?;
    let files_after = active_files(&table).await?.len();
    Ok(TableCare {
        table: name.to_string(),
        files_before,
        files_after,
        partitions_compacted,
        checkpoint_version,
        files_vacuumed: metrics.files_deleted.len(),
    })
}

/// Compaction, a checkpoint and vacuum on every silver table.
pub async fn maintain(
    silver: &Location,
    aws: &AwsOptions,
    cfg: &MaintainConfig,
) -> Result<Vec<TableCare>, SilverError> {
    let mut out = Vec::new();
    for name in [POS_EVENT_LINES, QUARANTINE, PRODUCTS, STORES] {
        let table = open_or_create(silver, aws, name).await?;
        let Some((schema, _)) = table_spec(name) else {
            continue;
        };
        if table.version().is_none() {
            continue;
        }
        out.push(care_for(table, name, &schema, cfg).await?);
    }
    Ok(out)
}
