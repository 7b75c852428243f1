//! refgen as a library: turn the objects of a bucket into a signed-URL
//! references file, and submit it to Roboflow Batch Processing.
//!
//! - [`store`]: open the bucket a source URL names (`s3://`, `gs://`, `az://`,
//!   Azure `https://`), on any provider, with the same options the command line has;
//! - [`generate`]: check a run before any request ([`generate::Plan`]) and write
//!   its references through the streaming, atomic writer;
//! - [`submit`]: check a references file, build the ingest requests (an uploaded
//!   file's signed URL, or inline chunks), and follow ingestion and a job as
//!   streams of events;
//! - [`verify`]: check a references file before a batch is spent on it (every
//!   line, and a ranged GET of a sample of its URLs);
//! - [`failures`]: which references of a batch failed to ingest, and a retry file;
//! - [`export`]: download every file of a batch (a job's results), resumably.
//!
//! The provider crates (`refgen-s3`, `refgen-gcs`, `refgen-azure`), the core
//! (`refgen-core`: sources, filters, names, the listing engine, the writer) and the
//! Roboflow client (`refgen-roboflow`) are re-exported for what this facade does
//! not wrap. Errors are [`Error`]: typed, keeping their source, with a
//! [`Hint`](refgen_core::Hint) that names no command-line flag.
//!
//! ```no_run
//! use refgen::generate::{GenerateOptions, Plan, generate};
//! use refgen::store::{StoreOptions, open};
//! use refgen::core::writer::{OutputTarget, ReferenceWriter};
//!
//! # async fn run() -> Result<(), refgen::Error> {
//! let options = GenerateOptions { images: true, ..GenerateOptions::default() };
//! let mut plan = Plan::new("s3://my-bucket/photos/**", &options)?;
//! let store = open(&plan.source, &StoreOptions::default()).await?;
//! let mut writer = ReferenceWriter::create(OutputTarget::File("refs.jsonl".into()))?;
//! let summary = generate(&mut plan, &store, &mut writer).await?;
//! writer.finish()?; // the file appears only now, whole
//! println!("{} references", summary.written);
//! # Ok(())
//! # }
//! ```
//!
//! Submitting a checked file inline, and waiting for its ingestion:
//!
//! ```no_run
//! use futures::StreamExt;
//! use refgen::roboflow::{ClientBuilder, References};
//! use refgen::submit::{IngestEvent, Submission, default_ingest_id, ingest_events, inline_chunks, inspect_references};
//!
//! # async fn run() -> Result<(), refgen::Error> {
//! let file = inspect_references("refs.jsonl".as_ref(), None)?;
//! let client = ClientBuilder::from_env().build()?;
//! let workspace = client.workspace().await?;
//! let submission = Submission {
//!     batch_id: "my-batch".into(),
//!     display_name: None,
//!     kind: file.kind,
//!     base_ingest_id: default_ingest_id("my-batch", std::time::SystemTime::now()),
//!     notifications_url: None,
//!     notification_categories: Vec::new(),
//! };
//! for (i, chunk) in inline_chunks(&file.path, file.kind.inline_limit())?.enumerate() {
//!     client.ingest(&workspace, &submission.request(i, References::Inline(chunk?))).await?;
//! }
//! let poll = std::time::Duration::from_secs(10);
//! let mut events = ingest_events(&client, &workspace, "my-batch", file.count, poll);
//! while let Some(event) = events.next().await {
//!     if let IngestEvent::Ingested { count } = event? {
//!         println!("{count} references ingested");
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod error;
pub mod export;
pub mod failures;
pub mod generate;
pub mod store;
pub mod submit;
pub mod verify;

pub use error::Error;

/// A result of the `refgen` library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
pub use refgen_azure as azure;
pub use refgen_core as core;
pub use refgen_gcs as gcs;
pub use refgen_http as http;
pub use refgen_roboflow as roboflow;
pub use refgen_s3 as s3;
