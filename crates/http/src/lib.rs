//! # stocklake-http
//!
//! The HTTP edge every stocklake listener shares (`run`, `demo`, `ingest`): what stands between
//! the network and the handlers, so that no client can hold the process open, exhaust it or read
//! what it should not (docs/security.md).
//!
//! # Layout
//! - `server`: the accept loop — a connection limit, header-read timeouts, graceful shutdown;
//! - `auth`: bearer tokens — the scheme read case-insensitively, compared in constant time,
//!   never taken from a query string;
//! - `guard`: security headers on every answer and the optional host allow-list.

pub mod auth;
pub mod guard;
pub mod server;

pub use auth::{TokenSet, bearer};
pub use guard::{Guard, guard};
pub use server::{ServerLimits, serve};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The JSON error every stocklake endpoint answers with: `{"error": code, "message": …}`.
pub fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "message": message.into()})),
    )
        .into_response()
}
