//! # stocklake-storage
//!
//! Where data lives: storage URLs (`file://…`, `s3://bucket/prefix`), the object stores behind
//! them, AWS SDK clients, and the bronze layout — one place builds every path, so every stage
//! agrees on it.

pub mod aws;
mod backoff;
pub mod bronze;
mod error;
mod gzip;
mod listing;
mod location;

pub use backoff::Backoff;
pub use error::{ErrorClass, Source, describe, object_store_class};
pub use gzip::gunzip;
pub use listing::{BronzeObject, high_water_marks, list_bronze, read_bronze};
pub use location::{AwsOptions, Location, LocationError, s3_builder};

/// A crash hook for reliability tests: when the environment variable `STOCKLAKE_FAILPOINT`
/// names this point, the process aborts here, as a power cut would stop it. Used to prove
/// that every stage recovers from a crash between any two of its writes.
pub fn failpoint(name: &str) {
    if std::env::var("STOCKLAKE_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
