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
//!
//! Layout, as in every provider crate: this file holds the store and its trait
//! impls; `builder` resolves configuration and credentials; `client` makes the
//! SDK calls; `retry` sets the SDK's retries to the shared transport's rules and
//! checks pages whole; `signer` is SigV4; `error` turns SDK failures into one line.

mod builder;
mod client;
mod error;
pub mod inventory;
mod pages;
mod retry;
pub mod signer;

pub use builder::{Addressing, S3Builder};
pub use signer::{MAX_PRESIGN_EXPIRY, SigV4Presigner, SigningBatch, SigningCredentials};

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use refgen_core::expiry::OutlivedWarning;
use refgen_core::list::{Capabilities, ListClient, ListPage, ListRequest};
use refgen_core::{Error, ObjectMeta, Signer};

use crate::builder::{CredentialsSource, remaining};
use crate::error::from_credentials;

/// Temporary credentials closer than this to expiry are renewed before signing.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// One bucket on S3 or an S3-compatible store.
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    endpoint: String,
    page_size: Option<i32>,
    signing: RwLock<Arc<SigningState>>,
    provider: CredentialsSource,
    warned_short_credentials: OutlivedWarning,
    /// Timeouts, and the attempts the SDK makes per request (for messages).
    retry: refgen_http::RetryConfig,
    /// Requests (listing, reading, uploading) say the requester pays.
    request_payer: Option<aws_sdk_s3::types::RequestPayer>,
    /// List versions and sign the one listed (see [`S3Builder::with_pin_versions`]).
    pin_versions: bool,
    /// Set once the bucket was found to keep versions (checked before the first
    /// pinned listing).
    keeps_versions: tokio::sync::OnceCell<()>,
}

struct SigningState {
    presigner: SigV4Presigner,
    expiry: Option<SystemTime>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("presigner", &state.presigner)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// The bucket's name.
    pub(crate) fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl S3Store {
    pub(crate) fn new(
        client: aws_sdk_s3::Client,
        bucket: String,
        endpoint: String,
        page_size: Option<i32>,
        (presigner, expiry): (SigV4Presigner, Option<SystemTime>),
        provider: CredentialsSource,
        retry: refgen_http::RetryConfig,
    ) -> Self {
        S3Store {
            request_payer: None,
            pin_versions: false,
            keeps_versions: tokio::sync::OnceCell::new(),
            client,
            bucket,
            endpoint,
            page_size,
            signing: RwLock::new(Arc::new(SigningState { presigner, expiry })),
            provider,
            warned_short_credentials: OutlivedWarning::default(),
            retry,
        }
    }

    fn state(&self) -> Arc<SigningState> {
        Arc::clone(&self.signing.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The signing state, renewed first when temporary credentials are about to expire.
    async fn fresh_state(&self) -> Result<Arc<SigningState>, Error> {
        let state = self.state();
        if remaining(state.expiry).is_none_or(|left| left > RENEW_BEFORE) {
            return Ok(state);
        }
        let creds = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| from_credentials(&e))?;
        tracing::debug!("renewed temporary credentials for signing");
        let mut presigner = state.presigner.clone();
        presigner.set_credentials(SigningCredentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            creds.session_token().map(str::to_owned),
        ));
        let renewed = Arc::new(SigningState {
            presigner,
            expiry: creds.expiry(),
        });
        *self.signing.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&renewed);
        Ok(renewed)
    }

    fn warn_if_credentials_outlived(&self, state: &SigningState, expires_in: Duration) {
        if let Some(left) = remaining(state.expiry) {
            let what = "the signing credentials are temporary and expire";
            self.warned_short_credentials.check(what, left, expires_in);
        }
    }

    /// ` (gave up after 12.3s; 10 attempts allowed)`, for a request the SDK retried
    /// (3 for a refused connection or a name that does not resolve).
    fn gave_up(&self, started: std::time::Instant, unreachable: bool) -> String {
        let allowed = if unreachable {
            self.retry.unreachable_attempts.min(self.retry.max_attempts)
        } else {
            self.retry.max_attempts
        };
        format!(
            " (gave up after {:.1}s; {allowed} attempts allowed)",
            started.elapsed().as_secs_f64(),
        )
    }

    /// One line for a failed SDK call, saying how long it was retried when it was.
    fn sdk_error<E>(
        &self,
        err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
        doing: &str,
        started: std::time::Instant,
    ) -> Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let error = crate::error::from_sdk(err, doing, &self.endpoint);
        if crate::error::is_retried(err) {
            error.with_note(&self.gave_up(started, crate::retry::gave_up_unreachable(err)))
        } else {
            error
        }
    }
}

#[async_trait::async_trait]
impl ListClient for S3Store {
    fn capabilities(&self) -> Capabilities {
        Capabilities::full(self.page_size.map_or(1000, |n| n.max(1) as usize))
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        // The continuation token carries the position; StartAfter only seeds it.
        let after = request.start_after.filter(|_| request.token.is_none());
        let token = request.token.map(str::to_owned);
        if self.pin_versions {
            self.keeps_versions.get_or_try_init(|| self.check_versioning()).await?;
            return self
                .fetch_versions_page(request.prefix, after, token, request.delimited)
                .await;
        }
        self.fetch_page(request.prefix, after, token, request.delimited).await
    }
}

#[async_trait::async_trait]
impl Signer for S3Store {
    fn max_expiry(&self) -> Duration {
        MAX_PRESIGN_EXPIRY
    }

    fn expiry_limit(&self) -> &'static str {
        "SigV4's limit on a presigned URL"
    }

    fn credentials_expire_at(&self) -> Option<SystemTime> {
        self.state().expiry
    }

    async fn sign_page(&self, objects: &[ObjectMeta], expires_in: Duration) -> Result<Vec<String>, Error> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let state = self.fresh_state().await?;
        self.warn_if_credentials_outlived(&state, expires_in);
        let batch = state.presigner.batch(SystemTime::now(), expires_in);
        let mut scratch = signer::Scratch::default();
        Ok(objects
            .iter()
            .map(|o| batch.presign_version_with(&o.key, o.version.as_deref(), &mut scratch))
            .collect())
    }
}

#[async_trait::async_trait]
impl refgen_core::Downloader for S3Store {
    async fn download_file(&self, key: &str, to: &std::path::Path, expected: Option<u64>) -> Result<u64, Error> {
        self.get_file(key, to, expected).await
    }
}

#[async_trait::async_trait]
impl refgen_core::Uploader for S3Store {
    async fn upload_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), Error> {
        self.put_file(key, path, content_type).await
    }
}
