//! refgen provider for Azure Blob Storage.
//!
//! # Why these crates
//!
//! Checked on the current crates (November 2026):
//! - `azure_storage_blobs` 0.21 is the legacy line, frozen by Microsoft ("no plans to
//!   update"), on `azure_core` 0.21 and native-tls by default: not a base to build on.
//! - Microsoft's official `azure_storage_blob` 1.x is maintained but speaks only
//!   Entra ID tokens and SAS URLs: no Shared Key and no service SAS from an account
//!   key (`azure_storage_sas` builds user-delegation SAS only).
//!
//! Listing is one documented REST call (List Blobs) whose every form refgen needs
//! (SAS query, bearer token, path-style Azurite endpoints) is a URL and a header, so
//! it is made here with `reqwest` and parsed with `quick-xml`, on the same TLS stack
//! as the other providers. Entra ID tokens come from Microsoft's `azure_identity`
//! 1.0 (which has no `DefaultAzureCredential`: `entra.rs` builds the chain). SAS
//! signing is a small HMAC ([`sas`]), about 3 µs per URL, checked against the
//! official Python SDK's answers. With an account key, listing uses a short-lived
//! container SAS (`sp=rl`) minted per request instead of Shared Key headers.
//!
//! Every URL is read-only (`sp=r`), for one blob (`sr=b`), HTTPS-only on https
//! endpoints, with its start back-dated five minutes for clock skew, at the pinned
//! service version [`sas::SERVICE_VERSION`].

mod config;
mod entra;
mod error;
mod list;
pub mod sas;
mod store;

pub use config::{AzureBuilder, CredentialMode};
pub use store::{AzureStore, MAX_SAS_EXPIRY};
