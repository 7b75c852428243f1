//! refgen provider for AWS S3 and S3-compatible stores (MinIO, Cloudflare R2,
//! Backblaze B2, Wasabi, Ceph, Garage, SeaweedFS…).
//!
//! - Configuration and credentials come from `aws-config`, so they are found exactly
//!   as the AWS CLI finds them ([`S3Builder::from_env`]).
//! - Listing uses `aws-sdk-s3`'s ListObjectsV2, page by page.
//! - Signing is SigV4 query authentication done here ([`SigV4Presigner`]), about ten
//!   times cheaper per URL than the SDK's `presigned()`, and checked against
//!   botocore's known answers and the SDK's own presigner.
//!
//! The SDK is built without its legacy TLS stack (`default-features = false` with
//! `default-https-client`), and with request checksums only when required, because
//! several S3-compatible stores refuse the default checksum headers.

mod config;
mod error;
mod presign;
mod retry;
mod store;

pub use config::{Addressing, S3Builder};
pub use presign::{MAX_PRESIGN_EXPIRY, SigV4Presigner, SigningBatch, SigningCredentials};
pub use store::S3Store;
