//! Whole-binary tests: the `stocklake` command as users run it, against real services.

mod common;
mod deploy;
mod ingest;
mod refine;
mod run;
