//! # stocklake-storage
//!
//! Where data lives: storage URLs (`file://…`, `s3://bucket/prefix`), the object stores behind
//! them, AWS SDK clients, and the bronze layout — one place builds every path, so every stage
//! agrees on it.

pub mod aws;
pub mod bronze;
mod listing;
mod location;

pub use listing::{BronzeObject, gunzip, high_water_marks, list_bronze, read_bronze};
pub use location::{AwsOptions, Location, LocationError, s3_builder};
