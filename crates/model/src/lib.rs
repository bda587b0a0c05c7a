//! # stocklake-model
//!
//! Silver → gold: the star schema of docs/contract.md §6 in PostgreSQL (binary COPY and set-based
//! merges) or SQLite (the embedded default), with stock levels and alerts computed in the same
//! transaction as the facts they depend on, and the checkpoint beside them.
//!
//! # Layout
//! - `schema`: versioned migrations for both databases;
//! - `db`: the two databases behind one type;
//! - `rows`: the rows and the write set of a batch;
//! - `silver`, `master`: reading silver increments and master data;
//! - `state`: what is kept in memory between batches;
//! - `engine`: the batch;
//! - `queries`: the read side (API, dashboard, `stocklake alerts`);
//! - `notify`: alert delivery (webhook with retries and idempotency keys, the log);
//! - `lake`: the gold lake, gold published as Delta tables.

pub mod db;
pub mod engine;
pub mod lake;
pub mod master;
pub mod notify;
pub mod queries;
pub mod rows;
pub mod schema;
pub mod silver;
pub mod state;

pub use db::Gold;
pub use engine::{Model, ModelConfig, ModelReport};

/// Model failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("gold database: {0}")]
    Database(String),
    /// Gold refused the batch's data itself — a value out of a column's range, a constraint —
    /// and will refuse it again however often it is retried (PostgreSQL SQLSTATE classes 22
    /// and 23, SQLite's constraint and size errors, the batch's own range checks). The model
    /// isolates the lines that cause it and sets them aside (`gold_dead_letter`).
    #[error("gold rejected the batch's data: {0}")]
    Rejected(String),
    #[error("reading silver: {0}")]
    Silver(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("gold lake: {0}")]
    Lake(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl ModelError {
    /// Whether retrying the same data can only fail the same way.
    pub fn is_rejected(&self) -> bool {
        matches!(self, ModelError::Rejected(_))
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
