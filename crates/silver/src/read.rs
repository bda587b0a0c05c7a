//! Reading silver tables without a query engine: list a snapshot's files, read their Parquet
//! with projection, and follow the commit log for what changed since a version.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::Action;
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;

use crate::SilverError;

/// A data file of a table snapshot.
#[derive(Debug, Clone)]
pub struct SilverFile {
    /// Relative to the table root.
    pub path: String,
    pub size: i64,
    pub partition: HashMap<String, Option<String>>,
    /// Its rows, as its statistics in the log say (`numRecords`), when they do.
    pub rows: Option<u64>,
}

/// The row count in an `add` action's statistics, when it has them.
fn rows_in(stats: Option<&str>) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Stats {
        #[serde(rename = "numRecords")]
        num_records: Option<u64>,
    }
    serde_json::from_str::<Stats>(stats?).ok()?.num_records
}

/// The files of the table's current snapshot.
pub async fn active_files(table: &DeltaTable) -> Result<Vec<SilverFile>, SilverError> {
    let views: Vec<_> = table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await
        .map_err(|e| SilverError::delta("snapshot", e))?;
    Ok(views
        .into_iter()
        .map(|v| SilverFile {
            path: v.path().to_string(),
            size: v.size(),
            partition: v.partition_values_map(),
            rows: v.num_records().map(|n| n as u64),
        })
        .collect())
}

/// Reads one Parquet file of a table, with only `columns` when given. The file is fetched
/// whole (silver files are at most a batch or a compaction target) and decoded off the runtime.
pub async fn read_file(
    store: Arc<dyn ObjectStore>,
    path: &str,
    _size: Option<u64>,
    columns: Option<&[&str]>,
) -> Result<Vec<RecordBatch>, SilverError> {
    use object_store::ObjectStoreExt;
    let p = Path::from(path);
    let bytes = store
        .get(&p)
        .await
        .map_err(|e| SilverError::Storage(format!("reading {path}: {e}")))?
        .bytes()
        .await
        .map_err(|e| SilverError::Storage(format!("reading {path}: {e}")))?;
    let columns: Option<Vec<String>> = columns.map(|c| c.iter().map(|s| s.to_string()).collect());
    let path = path.to_string();
    tokio::task::spawn_blocking(move || decode_parquet(bytes, columns.as_deref(), &path))
        .await
        .map_err(|e| SilverError::Internal(e.to_string()))?
}

/// Decodes a Parquet file held in memory.
pub fn decode_parquet(
    bytes: bytes::Bytes,
    columns: Option<&[String]>,
    path: &str,
) -> Result<Vec<RecordBatch>, SilverError> {
    let err = |e: deltalake::parquet::errors::ParquetError| {
        SilverError::Storage(format!("decoding {path}: {e}"))
    };
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(err)?
        .with_batch_size(65_536);
    if let Some(cols) = columns {
        let schema = builder.parquet_schema();
        let indices: Vec<usize> = cols
            .iter()
            .filter_map(|c| {
                schema
                    .root_schema()
                    .get_fields()
                    .iter()
                    .position(|f| f.name() == c.as_str())
            })
            .collect();
        let mask = ProjectionMask::roots(schema, indices);
        builder = builder.with_projection(mask);
    }
    builder
        .build()
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SilverError::Storage(format!("decoding {path}: {e}")))
}

/// Reads several files concurrently, in the given order.
pub async fn read_files(
    store: Arc<dyn ObjectStore>,
    files: &[SilverFile],
    columns: Option<&[&str]>,
) -> Result<Vec<(SilverFile, Vec<RecordBatch>)>, SilverError> {
    futures::stream::iter(files.iter().cloned().map(|f| {
        let store = store.clone();
        async move {
            let batches = read_file(store, &f.path, Some(f.size as u64), columns).await?;
            Ok::<_, SilverError>((f, batches))
        }
    }))
    .buffered(8)
    .try_collect()
    .await
}

/// The data files a commit added with `dataChange = true` (new data, not a compaction).
pub async fn added_files(
    table: &DeltaTable,
    version: u64,
) -> Result<Option<Vec<SilverFile>>, SilverError> {
    let log_store = table.log_store();
    let Some(bytes) = log_store
        .read_commit_entry(version)
        .await
        .map_err(|e| SilverError::delta("commit log", e))?
    else {
        return Ok(None);
    };
    let actions = deltalake::logstore::get_actions(version, &bytes)
        .map_err(|e| SilverError::delta("commit log", e))?;
    Ok(Some(
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Add(add) if add.data_change => Some(SilverFile {
                    // serde already decoded the log's URL-encoded path
                    path: add.path,
                    size: add.size,
                    rows: rows_in(add.stats.as_deref()),
                    partition: add.partition_values,
                }),
                _ => None,
            })
            .collect(),
    ))
}
