//! Refine integration tests: bronze written by the real writer, silver read back.

mod common;
mod interop;
mod refine;
mod tables;
