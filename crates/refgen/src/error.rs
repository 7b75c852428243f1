//! The facade's error: a library error, or what submitting found wrong.

use std::path::PathBuf;

use refgen_core::Hint;

/// Errors from the `refgen` library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing, signing, writing, parsing a source or a glob.
    #[error(transparent)]
    Core(#[from] refgen_core::Error),
    /// A Roboflow call.
    #[error(transparent)]
    Roboflow(#[from] refgen_roboflow::RoboflowError),
    /// A line of a references file.
    #[error("{} line {line}: {reason}", path.display())]
    References {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A run that selected no object: a references file must hold at least one.
    #[error("{}", empty_message(url, *listed, *unreadable, *other_shards))]
    Empty {
        /// The source, as its URL.
        url: String,
        /// Objects the listing returned.
        listed: u64,
        /// Selected objects skipped as unreadable (archived, over the size limit).
        unreadable: u64,
        /// Selected objects of other workers' shards.
        other_shards: u64,
    },
    /// A references file without one reference.
    #[error("{} holds no references", path.display())]
    NoReferences {
        /// The file.
        path: PathBuf,
    },
    /// A references file whose names are neither all images nor all videos.
    #[error("cannot tell whether {} holds images or videos ({images} image names, {videos} video names, {others} others)", path.display())]
    UnknownKind {
        /// The file.
        path: PathBuf,
        /// Image names.
        images: u64,
        /// Video names.
        videos: u64,
        /// Names with neither an image nor a video extension.
        others: u64,
    },
    /// The signed URL of an uploaded references file.
    #[error("the references URL {0}")]
    ReferencesUrl(String),
    /// A job with nothing to download.
    #[error("job {job_id} has no export stage with output batches: nothing to download")]
    NoResults {
        /// The job.
        job_id: String,
    },
    /// An export could not go on.
    #[error("{0}")]
    Export(String),
    /// The HTTP client could not be built (TLS roots, settings).
    #[error("cannot start the HTTP client: {0}")]
    HttpClient(String),
    /// Verifying could not go on.
    #[error("{0}")]
    Verify(String),
    /// A resumable run's checkpoint was written by a run with other settings.
    #[error("{} was written by a run with other settings: run that command again, or delete it to start over", checkpoint.display())]
    ResumeMismatch {
        /// The checkpoint file.
        checkpoint: PathBuf,
    },
    /// A plan file that cannot be used.
    #[error("{path}: {reason}")]
    Plan {
        /// The plan file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A submission found its source empty.
    #[error("{0}: nothing to submit")]
    NothingToSubmit(String),
    /// `verify` before a submission found problems.
    #[error("verifying found problems in {}: {problems}; nothing was submitted", path.display())]
    VerifyFailed {
        /// The references file.
        path: PathBuf,
        /// What was found.
        problems: String,
    },
    /// Local files to upload: nothing selected.
    #[error("{}", no_local_files(sources, *found, skipped))]
    NoLocalFiles {
        /// The sources as given.
        sources: String,
        /// Files selected (all already uploaded when this is not 0).
        found: u64,
        /// Paths skipped, by reason.
        skipped: String,
    },
    /// An upload's mode does not fit the batch it would go into.
    #[error("{0}")]
    UploadMode(String),
    /// An upload failed after its retries; what came before is in the state file.
    #[error("uploading {unit} failed: {source}; {done} files uploaded before are recorded in {}, and running the same command again sends only the rest", state.display())]
    UploadFailed {
        /// What: `shard 3 (256 files, the first a__b.jpg)`, `frames__a.jpg`.
        unit: String,
        /// Files confirmed by this run and the runs before.
        done: u64,
        /// The state file.
        state: PathBuf,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A local file could not be read or written.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the error is about what was asked (a malformed source, glob,
    /// duration or id, options that do not go together): the command line
    /// exits with 2 for these.
    pub fn is_usage(&self) -> bool {
        match self {
            Error::Core(e) => e.is_usage(),
            Error::Roboflow(e) => matches!(e, refgen_roboflow::RoboflowError::InvalidId { .. }),
            Error::UnknownKind { .. } | Error::ResumeMismatch { .. } | Error::UploadMode(_) | Error::Plan { .. } => {
                true
            }
            _ => false,
        }
    }

    /// What to do about this error, if refgen knows (flag names are the caller's).
    pub fn hint(&self) -> Option<Hint> {
        match self {
            Error::Core(e) => e.hint(),
            Error::Roboflow(e) => e.hint(),
            Error::UnknownKind { .. } => Some(Hint::ChooseMediaKind),
            Error::Empty { .. } => Some(Hint::AllowEmpty),
            _ => None,
        }
    }
}

fn no_local_files(sources: &str, found: u64, skipped: &str) -> String {
    match (found, skipped.is_empty()) {
        (1.., _) => {
            format!("every one of the {found} files selected in {sources} is already uploaded: nothing to send")
        }
        (0, true) => format!("no file in {sources}: nothing to send"),
        (0, false) => format!("no file in {sources} is selected ({skipped}): nothing to send"),
    }
}

fn empty_message(source: &str, listed: u64, unreadable: u64, other_shards: u64) -> String {
    match (listed, unreadable, other_shards) {
        (0, ..) => format!("no object under {source}: nothing to reference (is the prefix right?)"),
        (n, 1.., _) => format!(
            "of the {n} objects listed under {source}, the {unreadable} selected are archived or over the size limit: nothing to reference"
        ),
        (n, 0, 1..) => format!(
            "of the {n} objects listed under {source}, none of those selected is in this shard: nothing to reference"
        ),
        (1, ..) => format!("the one object listed under {source} does not match the filters: nothing to reference"),
        (n, ..) => format!("none of the {n} objects listed under {source} matches the filters: nothing to reference"),
    }
}
