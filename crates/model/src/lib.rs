//! # stocklake-model
//!
//! Silver → gold: the star schema of CONTRACT §6 in PostgreSQL (binary COPY and set-based
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
//! - `notify`: alert delivery (webhook with retries and idempotency keys, the log).

pub mod db;
pub mod engine;
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
    #[error("reading silver: {0}")]
    Silver(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal: {0}")]
    Internal(String),
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
