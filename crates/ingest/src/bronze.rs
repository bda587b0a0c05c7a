//! The bronze writer: one gzip NDJSON object per batch of one source partition, written
//! atomically (and fsynced on local disks) before anything is acknowledged.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use stocklake_storage::bronze::{ObjectName, Source, write_line};
use stocklake_storage::{AwsOptions, Location};
use tokio::sync::Notify;

use crate::IngestError;
use stocklake_telemetry as metrics;

/// One record on its way to bronze.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    /// Decimal sequence number within its partition.
    pub sequence: String,
    pub arrived_at: DateTime<Utc>,
    /// The record exactly as received.
    pub payload: Bytes,
}

/// A bronze object that has been written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenObject {
    pub name: ObjectName,
    pub records: usize,
    pub bytes: usize,
}

/// New bronze objects, handed to whoever consumes them next (refine, in `stocklake run`), the
/// moment they are durable.
#[derive(Debug, Default)]
pub struct BronzeFeed {
    queue: Mutex<VecDeque<ObjectName>>,
    /// Set when the queue was dropped for being too long: the consumer must list bronze before
    /// it consumes anything newer, or the dropped objects would look consumed.
    overflowed: std::sync::atomic::AtomicBool,
    notify: Notify,
}

impl BronzeFeed {
    pub fn new() -> Arc<BronzeFeed> {
        Arc::new(BronzeFeed::default())
    }

    fn push(&self, name: ObjectName) {
        if let Ok(mut q) = self.queue.lock() {
            // a consumer that falls far behind lists bronze instead; keep the hand-off bounded
            if q.len() >= 100_000 {
                q.clear();
                self.overflowed
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            q.push_back(name);
        }
        self.notify.notify_one();
    }

    /// Takes every object written since the last call, and whether some were dropped since
    /// (then bronze must be listed before anything newer is consumed).
    pub fn drain(&self) -> (Vec<ObjectName>, bool) {
        let names = self
            .queue
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default();
        let dropped = self
            .overflowed
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        (names, dropped)
    }

    /// Waits until something new is written.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

/// Writes bronze objects.
#[derive(Debug, Clone)]
pub struct BronzeWriter {
    store: Arc<dyn ObjectStore>,
    location: Location,
    local_root: Option<PathBuf>,
    feed: Option<Arc<BronzeFeed>>,
}

impl BronzeWriter {
    pub fn open(location: &Location, aws: &AwsOptions) -> Result<BronzeWriter, IngestError> {
        let store = location.object_store(aws).map_err(IngestError::storage)?;
        Ok(BronzeWriter {
            store,
            location: location.clone(),
            local_root: location.local_path().map(|p| p.to_path_buf()),
            feed: None,
        })
    }

    /// Announces every written object on `feed`.
    pub fn with_feed(mut self, feed: Arc<BronzeFeed>) -> BronzeWriter {
        self.feed = Some(feed);
        self
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Writes `records` (consecutive, ascending sequence numbers) of one partition as one object.
    /// Returns only once the object is durable.
    pub async fn write(
        &self,
        source: &Source,
        partition: &str,
        records: &[PendingRecord],
    ) -> Result<WrittenObject, IngestError> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Err(IngestError::Internal("empty bronze batch".into()));
        };
        let started = Instant::now();
        let name = ObjectName {
            ingest_date: first.arrived_at.date_naive(),
            source: source.clone(),
            partition: partition.to_string(),
            first_seq: first.sequence.clone(),
            last_seq: last.sequence.clone(),
        };
        let label = source.label();
        let part = partition.to_string();
        let batch: Vec<PendingRecord> = records.to_vec();
        let raw_bytes: usize = batch.iter().map(|r| r.payload.len()).sum();
        let encoded = tokio::task::spawn_blocking(move || encode(&label, &part, &batch))
            .await
            .map_err(|e| IngestError::Internal(e.to_string()))??;
        let size = encoded.len();
        let path = Path::from(name.path());
        self.store
            .put(&path, PutPayload::from(encoded))
            .await
            .map_err(|e| IngestError::bronze_write(name.path(), e))?;
        if let Some(root) = &self.local_root {
            // object_store renames a finished temporary file into place; make both the file and
            // the rename survive a power cut before anything is acknowledged
            let file = root.join(name.path());
            tokio::task::spawn_blocking(move || fsync_file_and_dir(&file))
                .await
                .map_err(|e| IngestError::Internal(e.to_string()))?
                .map_err(|e| IngestError::bronze_write(name.path(), e).context("fsync"))?;
        }
        let source_label = source.kind();
        metrics::BRONZE_OBJECTS
            .with_label_values(&[source_label])
            .inc();
        metrics::INGEST_RECORDS
            .with_label_values(&[source_label])
            .inc_by(records.len() as u64);
        metrics::INGEST_BYTES
            .with_label_values(&[source_label])
            .inc_by(raw_bytes as u64);
        metrics::BRONZE_WRITE_SECONDS.observe(started.elapsed().as_secs_f64());
        if let Some(feed) = &self.feed {
            feed.push(name.clone());
        }
        Ok(WrittenObject {
            name,
            records: records.len(),
            bytes: size,
        })
    }
}

trait SourceKind {
    fn kind(&self) -> &'static str;
}

impl SourceKind for Source {
    fn kind(&self) -> &'static str {
        match self {
            Source::Kinesis { .. } => "kinesis",
            Source::Http => "http",
        }
    }
}

fn encode(
    source: &str,
    partition: &str,
    records: &[PendingRecord],
) -> Result<Vec<u8>, IngestError> {
    let mut lines = Vec::with_capacity(records.iter().map(|r| r.payload.len() + 160).sum());
    for r in records {
        write_line(
            &mut lines,
            source,
            partition,
            &r.sequence,
            r.arrived_at,
            &r.payload,
        );
    }
    let mut gz = GzEncoder::new(Vec::with_capacity(lines.len() / 4), Compression::fast());
    gz.write_all(&lines)
        .and_then(|_| gz.finish())
        .map_err(|e| IngestError::Internal(format!("gzip: {e}")))
}

fn fsync_file_and_dir(file: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stocklake_storage::bronze::parse_line;

    #[tokio::test]
    async fn writes_a_durable_object_named_after_its_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loc = Location::parse(dir.path().to_str().expect("utf8")).expect("location");
        let feed = BronzeFeed::new();
        let w = BronzeWriter::open(&loc, &AwsOptions::default())
            .expect("open")
            .with_feed(feed.clone());
        let now = Utc::now();
        let records: Vec<PendingRecord> = (1..=3)
            .map(|i| PendingRecord {
                sequence: i.to_string(),
                arrived_at: now,
                payload: Bytes::from(format!("{{\"n\":{i}}}")),
            })
            .collect();
        let o = w.write(&Source::Http, "h1", &records).await.expect("write");
        assert_eq!(o.name.first_seq, "1");
        assert_eq!(o.name.last_seq, "3");
        assert_eq!(feed.drain(), (vec![o.name.clone()], false));
        let raw = std::fs::read(dir.path().join(o.name.path())).expect("file exists");
        let text = stocklake_storage::gunzip(&raw).expect("gunzip");
        let lines: Vec<_> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 3);
        let l = parse_line(lines[2]).expect("line");
        assert_eq!(l.payload_bytes().expect("payload").as_ref(), b"{\"n\":3}");
        assert_eq!(l.source, "http");
        assert_eq!(l.partition, "h1");
    }
}
