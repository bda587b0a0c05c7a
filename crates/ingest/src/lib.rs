//! # stocklake-ingest
//!
//! Stream → bronze. Sources (a Kinesis stream's shards, HTTP bodies) hand records to the
//! [`BronzeWriter`], which keeps each one byte for byte in gzip NDJSON objects named after the
//! records they hold (docs/contract.md §5). Those names are the checkpoint: nothing is acknowledged
//! before it is durable, and nothing durable is read twice.
//!
//! # Layout
//! - `bronze`: the writer and the in-process hand-off of new objects ([`BronzeFeed`]);
//! - `http`: `POST /v1/events` with group commit and bounded queueing;
//! - `body`: the pure splitter of HTTP bodies into records;
//! - `kinesis`: the shard readers, resharding, throttling and lag.

pub mod body;
pub mod bronze;
pub mod http;
pub mod kinesis;
pub mod ratelimit;

pub use bronze::{BronzeFeed, BronzeWriter, PendingRecord, WrittenObject};
pub use http::{HttpIngest, HttpIngestConfig, SubmitError};
pub use kinesis::{KinesisConfig, KinesisSource, ShardStatus, ensure_stream};

/// Ingest failures. `Storage` and `BronzeWrite` are worth retrying; `Kinesis` names the call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("bronze storage: {0}")]
    Storage(String),
    #[error("writing bronze object {path}: {message}")]
    BronzeWrite { path: String, message: String },
    #[error("Kinesis: {0}")]
    Kinesis(String),
    #[error("internal: {0}")]
    Internal(String),
}
