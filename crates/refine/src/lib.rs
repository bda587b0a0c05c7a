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
//! The silver tables' schemas, their reading back and their care are `stocklake-silver`'s,
//! shared with the model. Here:
//! - `parse`: phase 1, per bronze object in parallel;
//! - `dedup`: the event-id index, rebuilt from silver;
//! - `refiner`: batches, commits and recovery;
//! - `quarantine`: quarantine rows;
//! - `master`: products.csv and stores.csv into versioned silver tables.

pub mod dedup;
pub mod master;
pub mod parse;
pub mod quarantine;
pub mod refiner;

pub use refiner::{APP_ID, BatchReport, Counts, Progress, RefineConfig, Refiner, latest_progress};

use stocklake_silver::SilverError;
use stocklake_storage::{ErrorClass, Source};

/// Refine failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RefineError {
    #[error("storage: {0}")]
    Storage(String),
    #[error("Delta table {table}: {message}")]
    Delta {
        table: String,
        message: String,
        class: ErrorClass,
        #[source]
        source: Source,
    },
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
        SilverError::delta(table, e).into()
    }

    /// How the failure is to be met.
    pub fn class(&self) -> ErrorClass {
        match self {
            RefineError::Delta { class, .. } => *class,
            RefineError::Storage(_) | RefineError::Internal(_) => ErrorClass::Transient,
            // an object that cannot be read as it is never will be
            RefineError::CorruptBronze { .. } => ErrorClass::Poison,
            RefineError::MasterData(_) | RefineError::Config(_) => ErrorClass::Fatal,
        }
    }
}

/// Silver's failures are refine's, variant for variant.
impl From<SilverError> for RefineError {
    fn from(e: SilverError) -> RefineError {
        match e {
            SilverError::Storage(m) => RefineError::Storage(m),
            SilverError::Delta {
                table,
                message,
                class,
                source,
            } => RefineError::Delta {
                table,
                message,
                class,
                source,
            },
            SilverError::Config(m) => RefineError::Config(m),
            SilverError::Internal(m) => RefineError::Internal(m),
        }
    }
}
