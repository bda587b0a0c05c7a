//! # stocklake-ingest
//!
//! Stream → bronze. Sources (a Kinesis stream's shards, HTTP bodies) hand records to the
//! [`BronzeWriter`], which keeps each one byte for byte in gzip NDJSON objects named after the
//! records they hold (docs/contract.md §5). Those names are the checkpoint: nothing is acknowledged
//! before it is durable, and nothing durable is read twice.
//!
//! # Layout
//! - `bronze`: the writer and the in-process hand-off of new objects ([`BronzeFeed`]);
//! - `http`: `POST /v1/events` with group commit and bounded queueing;
//! - `body`: the pure splitter of HTTP bodies into records;
//! - `kinesis`: the shard readers, resharding, throttling and lag.

pub mod body;
pub mod bronze;
pub mod http;
pub mod kinesis;
pub mod ratelimit;

pub use bronze::{BronzeFeed, BronzeWriter, PendingRecord, WrittenObject};
pub use http::{HttpIngest, HttpIngestConfig, SubmitError};
pub use kinesis::{KinesisConfig, KinesisSource, ShardStatus, ensure_stream};

use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use stocklake_storage::{ErrorClass, Source};

/// Ingest failures, each with the error it came from where there was one. Storage and bronze
/// writes are retried (the records stay unacknowledged, or in the stream, meanwhile); a Kinesis
/// failure is retried unless the service refused who is asking (credentials, permissions) or
/// what is asked for (a stream that is not there).
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("bronze storage: {message}")]
    Storage {
        message: String,
        #[source]
        source: Option<Source>,
    },
    #[error("writing bronze object {path}: {message}")]
    BronzeWrite {
        path: String,
        message: String,
        #[source]
        source: Option<Source>,
    },
    #[error("Kinesis: {message}")]
    Kinesis {
        message: String,
        class: ErrorClass,
        #[source]
        source: Option<Source>,
    },
    #[error("internal: {0}")]
    Internal(String),
}

impl IngestError {
    /// A failure of bronze's object store.
    pub fn storage(e: impl std::error::Error + Send + Sync + 'static) -> IngestError {
        IngestError::Storage {
            message: e.to_string(),
            source: Some(Source::new(e)),
        }
    }

    /// A failed write of the bronze object at `path`.
    pub fn bronze_write(
        path: String,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> IngestError {
        IngestError::BronzeWrite {
            path,
            message: e.to_string(),
            source: Some(Source::new(e)),
        }
    }

    /// A failed Kinesis call, `context` naming it; classed by the service's error code.
    pub fn kinesis<E, R>(context: &str, e: SdkError<E, R>) -> IngestError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let class = kinesis_class(e.code());
        // the service's own words when it answered; what went wrong on the way when it did
        // not (never the raw response: it is in the source for whoever wants it)
        let what = match (e.code(), e.message()) {
            (Some(code), Some(text)) => format!("{code}: {text}"),
            (Some(code), None) => code.to_string(),
            _ => stocklake_storage::describe(&e),
        };
        // the operation's own error when the service answered, the SDK's otherwise
        let source = match e {
            SdkError::ServiceError(s) => Source::new(s.into_err()),
            other => Source::new(other),
        };
        IngestError::Kinesis {
            message: format!("{context}: {what}"),
            class,
            source: Some(source),
        }
    }

    /// A Kinesis failure that is no single call's (a stream that never became active).
    pub fn kinesis_message(message: String) -> IngestError {
        IngestError::Kinesis {
            message,
            class: ErrorClass::Transient,
            source: None,
        }
    }

    /// The same failure, its message prefixed with where it happened.
    pub fn context(self, what: &str) -> IngestError {
        match self {
            IngestError::Storage { message, source } => IngestError::Storage {
                message: format!("{what}: {message}"),
                source,
            },
            IngestError::Kinesis {
                message,
                class,
                source,
            } => IngestError::Kinesis {
                message: format!("{what}: {message}"),
                class,
                source,
            },
            IngestError::BronzeWrite {
                path,
                message,
                source,
            } => IngestError::BronzeWrite {
                path,
                message: format!("{what}: {message}"),
                source,
            },
            IngestError::Internal(m) => IngestError::Internal(format!("{what}: {m}")),
        }
    }

    /// How the failure is to be met.
    pub fn class(&self) -> ErrorClass {
        match self {
            IngestError::Kinesis { class, .. } => *class,
            IngestError::Storage { .. }
            | IngestError::BronzeWrite { .. }
            | IngestError::Internal(_) => ErrorClass::Transient,
        }
    }
}

/// The class of a Kinesis error code: credentials or permissions refused, or a stream that is
/// not there, cannot be mended by asking again; anything else (throttling, a service or a
/// network failure, an expired iterator) can.
pub fn kinesis_class(code: Option<&str>) -> ErrorClass {
    match code {
        Some(
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "MissingAuthenticationToken"
            | "IncompleteSignature"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "ResourceNotFoundException"
            | "InvalidArgumentException"
            | "ValidationException",
        ) => ErrorClass::Fatal,
        _ => ErrorClass::Transient,
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn refusals_are_fatal_and_the_rest_retried() {
        for code in [
            "AccessDeniedException",
            "UnrecognizedClientException",
            "ResourceNotFoundException",
        ] {
            assert_eq!(kinesis_class(Some(code)), ErrorClass::Fatal, "{code}");
        }
        for code in [
            Some("ProvisionedThroughputExceededException"),
            Some("ExpiredIteratorException"),
            Some("InternalFailure"),
            None,
        ] {
            assert_eq!(kinesis_class(code), ErrorClass::Transient, "{code:?}");
        }
    }

    #[test]
    fn the_cause_is_kept_through_context() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer");
        let e = IngestError::storage(io).context("listing bronze");
        assert_eq!(e.to_string(), "bronze storage: listing bronze: no answer");
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        assert_eq!(e.class(), ErrorClass::Transient);
    }
}
