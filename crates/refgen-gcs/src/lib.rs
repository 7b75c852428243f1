//! refgen provider for Google Cloud Storage.
//!
//! # Why these crates
//!
//! Checked on the current crates (November 2026):
//! - Google's official `google-cloud-storage` (1.x) lists objects through
//!   `StorageControl` over gRPC, which the JSON-API emulators used for testing cannot
//!   answer; it has no `STORAGE_EMULATOR_HOST` support and no HMAC signing, and its
//!   `SignedUrlBuilder` parses the RSA key again for every URL (about 760 µs per URL,
//!   against about 310 µs with the key loaded once).
//! - The community crate (now `gcloud-storage`) duplicates the auth stack.
//!
//! So refgen keeps Google's own `google-cloud-auth` for what it does best
//! (Application Default Credentials discovery and OAuth tokens, including the
//! metadata server and workload identity) and does the rest here:
//! - listing over the JSON API (`GET /storage/v1/b/{bucket}/o` with `prefix`,
//!   `pageToken` and a narrow `fields`), which emulators serve;
//! - V4 signing ([`v4`]) with an RSA key parsed once, with HMAC keys (no Rust crate
//!   implements GOOG4-HMAC-SHA256), or through the IAM Credentials `signBlob` API
//!   when the credentials hold no private key.
//!
//! `STORAGE_EMULATOR_HOST` (or an explicit endpoint) points listing and the signed
//! URLs at a local server, as Google's own client libraries do; requests to it carry
//! no OAuth token, while URLs are still signed with the configured key.

mod config;
mod error;
mod sign_blob;
mod store;
pub mod v4;

pub use config::{GcsBuilder, SigningMode};
pub use store::GcsStore;
pub use v4::MAX_SIGNED_URL_EXPIRY;
