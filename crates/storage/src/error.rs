//! How a failure is to be met, whatever stage it comes from: every error type of stocklake says
//! its class, and the supervisor acts on it (see the `stocklake` crate's supervisor).

use std::sync::Arc;

/// How a failure is to be met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Worth retrying after a pause: a service that did not answer, a lost connection, a
    /// storage hiccup.
    Transient,
    /// Another writer got there first (a Delta commit conflict, a serialization failure):
    /// redo at once from the new state.
    Conflict,
    /// The data itself is refused, and would be on every retry: it is set aside (quarantine,
    /// dead letters), never retried as it is.
    Poison,
    /// Retrying cannot help — credentials refused, a database that is not there, a setting
    /// that is wrong, history that was deleted: stop, with the message.
    Fatal,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Poison => "poison",
            ErrorClass::Fatal => "fatal",
        }
    }
}

/// The error a failure came from, kept with its type and shared, so that errors stay `Clone`.
/// As an error's `#[source]` it is the cause itself in the chain (not a wrapper around it):
/// `std::error::Error::source` gives the original back, and a caller can downcast it.
#[derive(Clone)]
pub struct Source(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Source {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Source {
        Source(Arc::new(e))
    }
}

impl std::ops::Deref for Source {
    type Target = dyn std::error::Error + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

/// An error and its causes on one line, leaving out a cause whose words the text so far
/// already says (stocklake's errors keep their cause with its type, and most also quote it).
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// The class of an object store failure: a precondition or an existing object means another
/// writer got there first; everything else is worth retrying.
pub fn object_store_class(e: &object_store::Error) -> ErrorClass {
    match e {
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            ErrorClass::Conflict
        }
        _ => ErrorClass::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, thiserror::Error)]
    #[error("reading: {message}")]
    struct Outer {
        message: String,
        #[source]
        source: Option<Source>,
    }

    #[test]
    fn the_cause_is_the_next_in_the_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer");
        let e = Outer {
            message: io.to_string(),
            source: Some(Source::new(io)),
        }
        .clone();
        let cause = std::error::Error::source(&e).expect("a cause");
        let io = cause
            .downcast_ref::<std::io::Error>()
            .expect("the io::Error itself");
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    }

    #[test]
    fn a_cause_already_quoted_is_said_once() {
        let quoted = Outer {
            message: "connection refused".into(),
            source: Some(Source::new(std::io::Error::other("connection refused"))),
        };
        assert_eq!(describe(&quoted), "reading: connection refused");
        let unquoted = Outer {
            message: "bronze".into(),
            source: Some(Source::new(std::io::Error::other("disk full"))),
        };
        assert_eq!(describe(&unquoted), "reading: bronze: disk full");
    }
}
