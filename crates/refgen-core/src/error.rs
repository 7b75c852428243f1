//! The error type every refgen library returns.
//!
//! Messages are written for the person running the command: one line, saying what
//! failed. What to do about it is a [`Hint`], which names no flag: the command
//! line turns it into its own option names, a library user into theirs. The
//! error beneath a storage failure is kept as its `source()` where it can carry
//! no secret (the HTTP client's error without its URL, a task's join error); the
//! SDKs' errors are not kept, as their `Debug` can echo what was signed. Messages
//! never carry secrets (keys, tokens, signatures).

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

/// What the person running refgen can do about an error, in words that name no
/// command-line flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hint {
    /// List one request at a time (a concurrency of 1): the server does not list
    /// in byte order.
    ListSequentially,
    /// Split the work by a hash of the key rather than by a plan's key ranges.
    ShardByHash,
    /// Name the bucket's region.
    SetRegion,
    /// Give S3 credentials, or name the profile that has them.
    GiveS3Credentials,
    /// Give both halves of a GCS HMAC key.
    GiveBothHmacKeys,
    /// Name a service account to sign through IAM signBlob, or give a key file
    /// or HMAC keys.
    GiveGcsSigner,
    /// Give an Azure SAS token, account key or connection string.
    GiveAzureCredentials,
    /// Give a Roboflow API key.
    GiveApiKey,
    /// Say whether the references are images or videos (a batch holds one kind).
    ChooseMediaKind,
    /// Accept a run that selects no object (an empty references file).
    AllowEmpty,
    /// Run without resuming: a resumable run needs a listing in byte order.
    RunWithoutResume,
    /// Say that the requester pays (an S3 bucket refused the listing, which a
    /// requester-pays bucket does when the request does not say so).
    PayAsRequester,
    /// Name the project to bill (a requester-pays GCS bucket).
    GiveUserProject,
    /// Sign for the time the credentials have, ask for a shorter expiry, or
    /// sign with longer-lived credentials.
    AllowShortExpiry,
}

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hint::ListSequentially => "list sequentially (a concurrency of 1)",
            Hint::ShardByHash => "split the work by a hash of the key instead of a plan's key ranges",
            Hint::SetRegion => "name the bucket's region",
            Hint::GiveS3Credentials => "give S3 credentials or name a profile that has them",
            Hint::GiveBothHmacKeys => "give both the HMAC access id and its secret",
            Hint::GiveGcsSigner => "name a service account, or give a key file or HMAC keys",
            Hint::GiveAzureCredentials => "give a SAS token, an account key or a connection string",
            Hint::GiveApiKey => "give a Roboflow API key",
            Hint::ChooseMediaKind => "say whether the references are images or videos (a batch holds one kind)",
            Hint::AllowEmpty => "allow an empty result to accept no references",
            Hint::RunWithoutResume => "run without resuming: the run works, but cannot be resumed on this server",
            Hint::PayAsRequester => "if the bucket is requester pays, say that the requester pays",
            Hint::GiveUserProject => "the bucket is requester pays: name the project to bill",
            Hint::AllowShortExpiry => {
                "accept URLs that expire with the credentials, ask for a shorter expiry, or sign with longer-lived credentials"
            }
        })
    }
}

/// The error beneath a storage failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// The signing credentials expire before the URLs would.
    #[error(
        "the signing credentials expire at {credentials_expire}, before URLs valid for {expires_in} would \
         (at {urls_expire}): the URLs would stop working then"
    )]
    ShortCredentials {
        /// When the credentials expire (RFC 3339).
        credentials_expire: String,
        /// The expiry asked for.
        expires_in: String,
        /// When the URLs would expire (RFC 3339).
        urls_expire: String,
    },
    /// A size was malformed or out of range.
    #[error("invalid size `{input}`: {reason}")]
    InvalidSize {
        /// The value as given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// A shard was malformed, or the scheduler's environment did not give one.
    #[error("invalid shard `{input}`: {reason}")]
    InvalidShard {
        /// The value as given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// A setting read from the environment or a configuration file cannot be
    /// used (refused before any library that would misread it sees it).
    #[error("{setting} is `{value}`: {reason}")]
    InvalidSetting {
        /// Where the value came from: the variable, or the key and its file.
        setting: String,
        /// The value as found (settings of this kind hold no secret).
        value: String,
        /// Why it was refused, and what is accepted.
        reason: String,
    },
    /// An inventory report or one of its files could not be used.
    #[error("inventory {file}: {reason}")]
    Inventory {
        /// The manifest or data file.
        file: String,
        /// What is wrong with it.
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
        /// One line saying what failed.
        message: String,
        /// What to do about it, if refgen knows.
        hint: Option<Hint>,
        /// The error beneath, when there is one worth keeping.
        #[source]
        source: Option<BoxError>,
    },
    /// The server listed keys out of byte order, so a listing split into key
    /// ranges cannot be trusted (some S3-compatible servers walk folder by folder).
    #[error(
        "the server listed `{key}` after `{previous}`, out of byte order, so the listing cannot be split into ranges"
    )]
    ListingOrder {
        /// The key that came out of order.
        key: String,
        /// The key listed before it.
        previous: String,
    },
    /// A plan's key range met keys out of byte order: its ranges start after and
    /// stop at keys, so they rely on that order, which this server does not keep.
    #[error(
        "the server listed `{key}` after `{previous}`, out of byte order: a plan's key ranges need a listing in byte order"
    )]
    RangeOrder {
        /// The key that came out of order.
        key: String,
        /// The key listed before it (or the range's start).
        previous: String,
    },
    /// A resumable run met keys out of byte order: it continues after its last
    /// key, so it relies on that order, which this server does not keep.
    #[error(
        "the server listed `{key}` after `{previous}`, out of byte order: a resumable run needs a listing in byte order"
    )]
    ResumeOrder {
        /// The key that came out of order.
        key: String,
        /// The key written before it.
        previous: String,
    },
    /// A task of the pipeline stopped without an answer (it panicked or was cancelled).
    #[error("{doing} stopped unexpectedly")]
    Task {
        /// What the task was doing.
        doing: &'static str,
        /// Why it stopped.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Error {
    /// Builds a storage error.
    pub fn storage(provider: &'static str, kind: StorageErrorKind, message: impl Into<String>) -> Self {
        Error::Storage {
            provider,
            kind,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// The same error with what to do about it (storage errors only).
    pub fn with_hint(mut self, new: Hint) -> Self {
        if let Error::Storage { hint, .. } = &mut self {
            *hint = Some(new);
        }
        self
    }

    /// The same error keeping `cause` as its source (storage errors only).
    pub fn with_source(mut self, cause: impl Into<BoxError>) -> Self {
        if let Error::Storage { source, .. } = &mut self {
            *source = Some(cause.into());
        }
        self
    }

    /// What to do about this error, if refgen knows.
    pub fn hint(&self) -> Option<Hint> {
        match self {
            Error::Storage { hint, .. } => *hint,
            Error::ListingOrder { .. } => Some(Hint::ListSequentially),
            Error::ResumeOrder { .. } => Some(Hint::RunWithoutResume),
            Error::RangeOrder { .. } => Some(Hint::ShardByHash),
            Error::ShortCredentials { .. } => Some(Hint::AllowShortExpiry),
            _ => None,
        }
    }

    /// True when the error is about what was given rather than what happened: a
    /// malformed source, glob, duration or setting (a command line exits with 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::InvalidSource { .. }
                | Error::InvalidGlob { .. }
                | Error::InvalidExpiry { .. }
                | Error::ShortCredentials { .. }
                | Error::InvalidSetting { .. }
        )
    }

    /// A setting that cannot be used.
    pub fn setting(setting: impl Into<String>, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidSetting {
            setting: setting.into(),
            value: value.into(),
            reason: reason.into(),
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
                hint,
                source,
            } => Error::Storage {
                provider,
                kind,
                message: format!("{message}{note}"),
                hint,
                source,
            },
            other => other,
        }
    }

    /// The storage error category, if this is a storage error.
    pub fn storage_kind(&self) -> Option<StorageErrorKind> {
        match self {
            Error::Storage { kind, .. } => Some(*kind),
            Error::ListingOrder { .. } => Some(StorageErrorKind::ListingOrder),
            _ => None,
        }
    }
}
