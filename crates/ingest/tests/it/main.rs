//! Ingest integration tests: HTTP against a real server, Kinesis against the emulator.

mod common;
mod http;
mod kinesis;
