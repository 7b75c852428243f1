//! The error type every refgen library returns.
//!
//! Messages are written for the person running the command: one line, saying what
//! failed and what to fix. They never carry secrets (keys, tokens, signatures).

use std::path::PathBuf;

/// What kind of storage failure happened, so callers can react without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// No credentials could be found by the provider's standard chain.
    NoCredentials,
    /// Credentials were found but the server refused them (unknown key, bad signature, expired token).
    InvalidCredentials,
    /// The credentials are valid but lack permission for the operation.
    AccessDenied,
    /// The bucket (or container) does not exist.
    BucketNotFound,
    /// The endpoint could not be reached (connection refused, DNS, timeout).
    Unreachable,
    /// The provider was configured with values it cannot use.
    InvalidConfig,
    /// The server listed keys out of byte order, so a listing split into key
    /// ranges cannot be trusted (some S3-compatible servers walk folder by folder).
    ListingOrder,
    /// Anything else the server answered.
    Other,
}

/// Errors from refgen's libraries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source URL could not be understood.
    #[error("invalid source `{url}`: {reason}")]
    InvalidSource {
        /// The source as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A glob did not compile.
    #[error("invalid glob `{pattern}`: {reason}")]
    InvalidGlob {
        /// The glob as given.
        pattern: String,
        /// The parser's explanation.
        reason: String,
    },
    /// An expiry duration was malformed or out of range.
    #[error("invalid expiry `{input}`: {reason}")]
    InvalidExpiry {
        /// The value as given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// The output could not be opened, written or committed.
    #[error("cannot write `{}`: {source}", path.display())]
    Output {
        /// The output path (`-` for standard output).
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A storage provider failed.
    #[error("{provider}: {message}")]
    Storage {
        /// Short provider name (`S3`, `GCS`, `Azure`).
        provider: &'static str,
        /// The category of the failure.
        kind: StorageErrorKind,
        /// One line saying what failed and what to do.
        message: String,
    },
}

impl Error {
    /// Builds a storage error.
    pub fn storage(provider: &'static str, kind: StorageErrorKind, message: impl Into<String>) -> Self {
        Error::Storage {
            provider,
            kind,
            message: message.into(),
        }
    }

    /// True when the error is a closed pipe on standard output (`refgen … | head`),
    /// which the command line treats as a quiet, successful end.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The same error with `note` appended to its message (a storage error's, or
    /// the reason of the others that have one): "… (after 10 attempts over 12.0s)".
    pub fn with_note(self, note: &str) -> Self {
        if note.is_empty() {
            return self;
        }
        match self {
            Error::Storage {
                provider,
                kind,
                message,
            } => Error::Storage {
                provider,
                kind,
                message: format!("{message}{note}"),
            },
            other => other,
        }
    }

    /// The storage error category, if this is a storage error.
    pub fn storage_kind(&self) -> Option<StorageErrorKind> {
        match self {
            Error::Storage { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}
