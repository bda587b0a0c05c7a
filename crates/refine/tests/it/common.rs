use std::path::Path;

use bytes::Bytes;
use chrono::Utc;
use deltalake::arrow::array::RecordBatch;
use stocklake_ingest::{BronzeWriter, PendingRecord};
use stocklake_refine::{RefineConfig, Refiner};
use stocklake_silver::read::{active_files, read_files};
use stocklake_silver::tables::{POS_EVENT_LINES, QUARANTINE, open_or_create};
use stocklake_storage::bronze::Source;
use stocklake_storage::{AwsOptions, Location};

pub struct Lake {
    pub dir: tempfile::TempDir,
    pub bronze: Location,
    pub silver: Location,
    pub writer: BronzeWriter,
    pub aws: AwsOptions,
    next_seq: u64,
}

impl Lake {
    pub fn local() -> Lake {
        let dir = tempfile::tempdir().expect("tempdir");
        Lake::at(dir, None, AwsOptions::default())
    }

    pub fn at(dir: tempfile::TempDir, base: Option<Location>, aws: AwsOptions) -> Lake {
        let base = base.unwrap_or_else(|| Location::Local(dir.path().to_path_buf()));
        let bronze = base.join("bronze");
        let silver = base.join("silver");
        let writer = BronzeWriter::open(&bronze, &aws).expect("writer");
        Lake {
            dir,
            bronze,
            silver,
            writer,
            aws,
            next_seq: 1,
        }
    }

    pub fn config(&self) -> RefineConfig {
        RefineConfig::new(self.bronze.clone(), self.silver.clone(), self.aws.clone())
    }

    pub async fn refiner(&self) -> Refiner {
        let mut r = Refiner::open(self.config()).await.expect("open refiner");
        r.scan().await.expect("scan");
        r
    }

    /// Writes records as one bronze object of HTTP partition `partition`.
    pub async fn put(&mut self, partition: &str, records: &[Vec<u8>]) {
        let now = Utc::now();
        let pending: Vec<PendingRecord> = records
            .iter()
            .map(|r| {
                let seq = self.next_seq;
                self.next_seq += 1;
                PendingRecord {
                    sequence: seq.to_string(),
                    arrived_at: now,
                    payload: Bytes::from(r.clone()),
                }
            })
            .collect();
        self.writer
            .write(&Source::Http, partition, &pending)
            .await
            .expect("bronze write");
    }

    /// Writes `n` bronze objects of HTTP partition `h1`, each of two events: `{a}{i}` (SKU X,
    /// quantity 1) and `{b}{i}` (SKU Y, quantity 2).
    pub async fn put_pairs(&mut self, n: usize, a: &str, b: &str) {
        for i in 0..n {
            self.put(
                "h1",
                &[
                    event(&format!("{a}{i}"), "S", "X", "1"),
                    event(&format!("{b}{i}"), "S", "Y", "2"),
                ],
            )
            .await;
        }
    }

    pub async fn table_rows(&self, name: &str) -> Vec<RecordBatch> {
        let t = open_or_create(&self.silver, &self.aws, name)
            .await
            .expect("open");
        let files = active_files(&t).await.expect("files");
        read_files(t.object_store(), &files, None)
            .await
            .expect("read")
            .into_iter()
            .flat_map(|(_, b)| b)
            .collect()
    }

    pub async fn line_count(&self) -> usize {
        self.table_rows(POS_EVENT_LINES)
            .await
            .iter()
            .map(|b| b.num_rows())
            .sum()
    }

    pub async fn quarantine_count(&self) -> usize {
        self.table_rows(QUARANTINE)
            .await
            .iter()
            .map(|b| b.num_rows())
            .sum()
    }

    #[allow(dead_code)]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub fn event(id: &str, store: &str, sku: &str, qty: &str) -> Vec<u8> {
    format!(
        r#"{{"schema_version":1,"event_id":"{id}","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"{store}","lines":[{{"sku":"{sku}","quantity":{qty},"unit_price":1.99}}]}}"#
    )
    .into_bytes()
}
