//! The one error type of `ember-bench`: a message meant for a human.
//!
//! A benchmark that fails has nothing to recover; it stops and says why. So
//! the error is just the text `main` prints as `ember-bench: <message>` before
//! exiting with status 1, built with enough context (what was being done, with
//! which child, on which address) to act on it.

use std::fmt;

/// A benchmark failure, carrying a message that names what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BenchError {
    /// What went wrong, already including its context.
    message: String,
}

impl BenchError {
    /// An error with the given message.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// An I/O error together with what was being attempted, e.g.
    /// `BenchError::io("connecting to 127.0.0.1:4000", err)`.
    pub(crate) fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        Self::new(format!("{context}: {err}"))
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BenchError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_keeps_context_and_cause() {
        let err = BenchError::io(
            "reading frame",
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "early eof"),
        );
        assert_eq!(err.to_string(), "reading frame: early eof");
    }
}
