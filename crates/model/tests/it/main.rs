//! Gold integration tests: the simulator's chain through bronze, silver and gold, on SQLite and
//! on a real PostgreSQL.

mod common;
mod dims;
mod gold;
mod lake;
mod notify;
mod orders;
mod poison;
mod tables;
