//! refgen as a library: every workflow of the `refgen` command, as a call that
//! takes options, tells what happens through a callback of events, and returns
//! a typed report (`Serialize`: its JSON is the command's `--json` document).
//!
//! - [`generate::run`]: list a source (or read its inventory report), filter,
//!   sign and write its references: one file, standard output, resumable parts,
//!   or a dry run that only counts;
//! - [`submit::run`]: references made from a source or given as files,
//!   verified, uploaded or sent inline, ingested, waited for, a job started and
//!   its results downloaded, within one deadline;
//! - [`upload`]: local images and videos into a batch (single uploads, tar
//!   archives, videos), resumably, as a submission's source;
//! - [`ranges::plan`]: cut a source's listing into key ranges that workers list
//!   apart (`generate` with [`generate::GenerateOptions::range_plan`]);
//! - [`verify::verify`]: check a references file before a batch is spent on it;
//! - [`failures::run`]: which references of a batch failed to ingest, and a retry file;
//! - [`export::export_batch`], [`batches`], [`jobs`], [`webhook`]: what comes after;
//! - [`references`]: the one reader of a references file; [`store`]: the one
//!   place that tells providers apart; [`api`]: the Roboflow connection.
//!
//! The provider crates (`refgen-s3`, `refgen-gcs`, `refgen-azure`), the core
//! (`refgen-core`), the transport (`refgen-http`) and the Roboflow client
//! (`refgen-roboflow`) are re-exported for what this facade does not wrap.
//! Errors are [`Error`]: typed, keeping their source, with a
//! [`Hint`](refgen_core::Hint) that names no command-line flag and
//! [`Error::is_usage`].
//!
//! ```no_run
//! use refgen::core::writer::OutputTarget;
//! use refgen::generate::{GenerateOptions, Output, Plan};
//! use refgen::store::StoreOptions;
//! use refgen::submit::{SubmitOptions, SubmitReferences};
//!
//! # async fn run() -> Result<(), refgen::Error> {
//! let options = GenerateOptions { images: true, ..GenerateOptions::default() };
//! let mut plan = Plan::new("s3://my-bucket/photos/**", &options)?;
//! let output = Output::Target(OutputTarget::File("refs.jsonl".into()));
//! let made = refgen::generate::run(&mut plan, &StoreOptions::default(), output, &mut |_| {}).await?;
//! println!("{} references", made.written);
//!
//! let mut submission = SubmitOptions::new("my-batch", SubmitReferences::Files(vec!["refs.jsonl".into()]));
//! submission.wait = true;
//! let report = refgen::submit::run(submission, &mut |event| eprintln!("{event:?}")).await?;
//! println!("{}", report.outcome.name());
//! # Ok(())
//! # }
//! ```
//!
//! `crates/refgen/examples/pipeline.rs` runs generate → verify → submit as a
//! program; the tests run it against a local S3 server and the Roboflow stand-in.

pub mod api;
pub mod batches;
mod error;
pub mod export;
pub mod failures;
pub mod generate;
pub mod jobs;
pub mod ranges;
pub mod references;
pub mod store;
pub mod submit;
pub mod upload;
pub mod verify;
pub mod webhook;

pub use error::Error;

/// A result of the `refgen` library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
pub use refgen_azure as azure;
pub use refgen_core as core;
pub use refgen_gcs as gcs;
pub use refgen_http as http;
pub use refgen_roboflow as roboflow;
pub use refgen_s3 as s3;
