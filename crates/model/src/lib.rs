//! # stocklake-model
//!
//! Silver → gold: the star schema of docs/contract.md §6 in PostgreSQL (binary COPY and set-based
//! merges) or SQLite (the embedded default), with stock levels and alerts computed in the same
//! transaction as the facts they depend on, and the checkpoint beside them.
//!
//! # Layout
//! - `schema`: versioned migrations for both databases;
//! - `db`: the two databases behind one type, gold's tables described once (`db::table`) and
//!   each database's values (`db::dialect`);
//! - `rows`: the rows and the write set of a batch;
//! - `silver`, `master`: reading silver increments and master data;
//! - `state`: what is kept in memory between batches;
//! - `orders`: purchase orders, what each store has on order (no database);
//! - `key`: the core, one store × SKU's rules over plain data (no database);
//! - `engine`: the batch, driving the core: what it reads from silver and gold, what it writes;
//! - `queries`: the read side (API, dashboard, `stocklake alerts`);
//! - `notify`: alert delivery (webhook with retries and idempotency keys, the log);
//! - `lake`: the gold lake, gold published as Delta tables.

pub mod db;
pub mod engine;
pub mod key;
pub mod lake;
pub mod master;
pub mod notify;
pub mod orders;
pub mod queries;
pub mod rows;
pub mod schema;
pub mod silver;
pub mod state;

pub use db::Gold;
pub use engine::{Model, ModelConfig, ModelReport};
use stocklake_storage::{ErrorClass, Source};

/// Model failures. Each keeps what it came from (the PostgreSQL, SQLite, Delta or refine
/// error, as its `source`) and says how it is to be met ([`ModelError::class`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("gold database: {message}")]
    Database {
        message: String,
        class: ErrorClass,
        #[source]
        source: Option<Source>,
    },
    /// Gold refused the batch's data itself — a value out of a column's range, a constraint —
    /// and will refuse it again however often it is retried (PostgreSQL SQLSTATE classes 22
    /// and 23, SQLite's constraint and size errors, the batch's own range checks). The model
    /// isolates the lines that cause it and sets them aside (`gold_dead_letter`).
    #[error("gold rejected the batch's data: {0}")]
    Rejected(String),
    #[error("reading silver: {message}")]
    Silver {
        message: String,
        class: ErrorClass,
        #[source]
        source: Option<Source>,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("gold lake: {message}")]
    Lake {
        message: String,
        class: ErrorClass,
        #[source]
        source: Option<Source>,
    },
    #[error("internal: {0}")]
    Internal(String),
}

impl ModelError {
    /// Whether retrying the same data can only fail the same way.
    pub fn is_rejected(&self) -> bool {
        matches!(self, ModelError::Rejected(_))
    }

    /// How the failure is to be met.
    pub fn class(&self) -> ErrorClass {
        match self {
            ModelError::Database { class, .. }
            | ModelError::Silver { class, .. }
            | ModelError::Lake { class, .. } => *class,
            ModelError::Rejected(_) => ErrorClass::Poison,
            ModelError::Config(_) => ErrorClass::Fatal,
            // the state is rebuilt from gold before the batch is tried again
            ModelError::Internal(_) => ErrorClass::Transient,
        }
    }

    /// A failure of the gold database, worth retrying.
    pub fn database(message: impl Into<String>) -> ModelError {
        ModelError::Database {
            message: message.into(),
            class: ErrorClass::Transient,
            source: None,
        }
    }

    /// A failure reading silver, worth retrying.
    pub fn silver(message: impl Into<String>) -> ModelError {
        ModelError::Silver {
            message: message.into(),
            class: ErrorClass::Transient,
            source: None,
        }
    }

    /// Silver that can never be read as it is (a schema gold does not know, history deleted).
    pub fn silver_fatal(message: impl Into<String>) -> ModelError {
        ModelError::Silver {
            message: message.into(),
            class: ErrorClass::Fatal,
            source: None,
        }
    }

    /// A Delta failure reading silver.
    pub fn silver_delta(e: deltalake::DeltaTableError) -> ModelError {
        ModelError::Silver {
            message: e.to_string(),
            class: stocklake_silver::delta_class(&e),
            source: Some(stocklake_storage::Source::new(e)),
        }
    }

    /// A failure of silver's readers or tables.
    pub fn silver_table(e: stocklake_silver::SilverError) -> ModelError {
        ModelError::Silver {
            message: e.to_string(),
            class: e.class(),
            source: Some(stocklake_storage::Source::new(e)),
        }
    }

    /// A failure of the gold lake, worth retrying.
    pub fn lake(message: impl Into<String>) -> ModelError {
        ModelError::Lake {
            message: message.into(),
            class: ErrorClass::Transient,
            source: None,
        }
    }

    /// A Delta failure of the gold lake, in `context`.
    pub fn lake_delta(context: &str, e: deltalake::DeltaTableError) -> ModelError {
        ModelError::Lake {
            message: format!("{context}: {e}"),
            class: stocklake_silver::delta_class(&e),
            source: Some(stocklake_storage::Source::new(e)),
        }
    }
}

/// A database URL with its password hidden, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}
