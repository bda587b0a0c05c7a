//! # stocklake-silver
//!
//! The silver layer as both its writer (refine) and its readers (the gold model, status,
//! replay) see it: the Delta tables' schemas and how their files are encoded (`tables`),
//! opening or creating a table and evolving one made by an earlier release, reading the
//! active or newly added files back (`read`), and table care — compaction, checkpoints,
//! vacuum (`maintain`), which serves the gold lake's tables too.
//!
//! What goes into silver — parsing, quality rules, quarantine, dedup, exactly-once batches —
//! is refine's; what comes out of it is the model's. This crate holds only what both share.

pub mod maintain;
pub mod read;
pub mod tables;

use stocklake_storage::{ErrorClass, Source};

/// Failures reading, writing or caring for a silver table.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SilverError {
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
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl SilverError {
    pub fn delta(table: &str, e: deltalake::DeltaTableError) -> SilverError {
        SilverError::Delta {
            table: table.to_string(),
            message: e.to_string(),
            class: delta_class(&e),
            source: stocklake_storage::Source::new(e),
        }
    }

    /// How the failure is to be met.
    pub fn class(&self) -> ErrorClass {
        match self {
            SilverError::Delta { class, .. } => *class,
            SilverError::Storage(_) | SilverError::Internal(_) => ErrorClass::Transient,
            SilverError::Config(_) => ErrorClass::Fatal,
        }
    }
}

/// The class of a Delta failure: another writer's commit got there first, or worth retrying.
pub fn delta_class(e: &deltalake::DeltaTableError) -> ErrorClass {
    use deltalake::DeltaTableError as D;
    use deltalake::kernel::transaction::TransactionError as T;
    match e {
        D::VersionAlreadyExists(_)
        | D::Transaction {
            source: T::VersionAlreadyExists(_) | T::CommitConflict(_) | T::MaxCommitAttempts(_),
        } => ErrorClass::Conflict,
        D::ObjectStore { source } => stocklake_storage::object_store_class(source),
        _ => ErrorClass::Transient,
    }
}

/// Days from 0001-01-01 to 1970-01-01: silver's `event_date` is a Delta `date`, days since
/// the Unix epoch.
pub const UNIX_EPOCH_DAYS_CE: i32 = 719_163;

/// The day number of a `YYYY-MM-DD` partition value.
pub fn parse_day(s: &str) -> Option<i32> {
    use chrono::Datelike;
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.num_days_from_ce() - UNIX_EPOCH_DAYS_CE)
}

/// `YYYY-MM-DD` of a day number.
pub fn day_string(day: i32) -> String {
    chrono::NaiveDate::from_num_days_from_ce_opt(day + UNIX_EPOCH_DAYS_CE)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(
            parse_day("2026-12-07").map(day_string).as_deref(),
            Some("2026-12-07")
        );
        assert_eq!(parse_day("1969-12-31"), Some(-1));
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(parse_day("event_date=2026-12-07"), None);
    }
}
