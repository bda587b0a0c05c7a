//! # stocklake-serve
//!
//! The HTTP face of stocklake: the read API of docs/contract.md §4 (`/v1/stock`, `/v1/alerts`,
//! `/v1/pipeline`), the dashboard at `/` (plain HTML, CSS and JavaScript shipped in the binary —
//! no CDN, works offline), health and readiness, Prometheus metrics and the OpenAPI document.
//! HTTP ingest (`POST /v1/events`) comes from `stocklake-ingest` and is merged in by the binary.

pub mod actions;
pub mod api;
pub mod pipeline;

pub use api::{AppState, OPENAPI, router};
pub use pipeline::{Pipeline, RunInfo, StageState, StageStatus};
