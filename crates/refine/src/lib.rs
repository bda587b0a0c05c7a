//! # stocklake-refine
//!
//! Bronze → silver. Every bronze record is parsed and validated by `stocklake-event`; valid
//! events become rows of the Delta table `pos_event_lines` (one per line, partitioned by
//! `event_date`), bad records rows of `quarantine` with every reason they broke, exact repeats
//! are dropped and counted. Each batch reconciles: records = events + quarantined + duplicates.
//!
//! Exactly once: a batch's Delta commits carry the application transaction `stocklake-refine`
//! and what the batch consumed (see `refiner.rs`), so a crash before, between or after them
//! neither loses nor repeats a batch.
//!
//! # Layout
//! - `tables`: the silver schemas, creating and opening tables;
//! - `parse`: phase 1, per bronze object in parallel;
//! - `dedup`: the event-id index, rebuilt from silver;
//! - `refiner`: batches, commits and recovery;
//! - `quarantine`: quarantine rows;
//! - `master`: products.csv and stores.csv into versioned silver tables;
//! - `maintain`: compaction, checkpoints, vacuum;
//! - `read`: reading silver back (also used by the gold model).

pub mod dedup;
pub mod maintain;
pub mod master;
pub mod parse;
pub mod quarantine;
pub mod read;
pub mod refiner;
pub mod tables;

pub use refiner::{APP_ID, BatchReport, Counts, Progress, RefineConfig, Refiner, latest_progress};

/// Refine failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RefineError {
    #[error("storage: {0}")]
    Storage(String),
    #[error("Delta table {table}: {message}")]
    Delta { table: String, message: String },
    #[error("bronze object {object} line {line} is corrupt: {message}")]
    CorruptBronze {
        object: String,
        line: u32,
        message: String,
    },
    #[error("master data: {0}")]
    MasterData(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl RefineError {
    pub fn delta(table: &str, e: deltalake::DeltaTableError) -> RefineError {
        RefineError::Delta {
            table: table.to_string(),
            message: e.to_string(),
        }
    }
}
