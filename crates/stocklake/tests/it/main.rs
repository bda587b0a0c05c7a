//! Whole-binary tests: the `stocklake` command as users run it, against real services.

mod common;
mod crash;
mod deploy;
mod evaluate;
mod faults;
mod hostile;
mod ingest;
mod lake;
mod ops;
mod refine;
mod run;
