//! Client for Roboflow's Data Staging and Batch Processing APIs.
//!
//! It follows the contract read from Roboflow's own client (`inference-cli`),
//! request for request: the API key travels as the `api_key` query parameter
//! (never in a header), calls time out after 60 s (120 s for the two
//! references-ingest calls, 300 s for a download), and every call goes through
//! the shared transport (`refgen-http`): 408, 429, 500, 502, 503, 504, connection
//! errors, timeouts and answers cut short are retried, 10 attempts by default
//! (the client's `RetryConfig`), waits from 500 ms to 8 s with full jitter.
//! An ingest retried with the same `ingestId` is safe: the service answers
//! `duplicated: true`, which counts as success.
//!
//! The API key never appears in errors, logs or `Debug` output.

mod client;
mod error;
mod ids;
pub mod notifications;
mod types;

pub use client::{Client, ClientBuilder, collect_pages, ingest_path, job_body, job_path};
pub use error::RoboflowError;
pub use ids::{validate_batch_id, validate_job_id};
pub use types::*;
