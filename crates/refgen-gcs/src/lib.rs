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
//! - V4 signing ([`signer`]) with an RSA key parsed once, with HMAC keys (no Rust crate
//!   implements GOOG4-HMAC-SHA256), or through the IAM Credentials `signBlob` API
//!   when the credentials hold no private key.
//!
//! `STORAGE_EMULATOR_HOST` (or an explicit endpoint) points listing and the signed
//! URLs at a local server, as Google's own client libraries do; requests to it carry
//! no OAuth token, while URLs are still signed with the configured key.
//!
//! Layout, as in every provider crate: this file holds the store and its trait
//! impls; `builder` resolves the endpoint, credentials and signing mode;
//! `client` makes the JSON API calls through the shared transport;
//! `credential` gives the OAuth headers; `signer` is V4 signing and `sign_blob`
//! the IAM Credentials client it may sign through; `error` maps answers to one line.

mod builder;
mod client;
mod credential;
mod error;
pub mod inventory;
mod sign_blob;
pub mod signer;

pub use builder::{GcsBuilder, SigningMode};
pub use signer::MAX_SIGNED_URL_EXPIRY;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt, stream};
use refgen_core::list::{Capabilities, ListClient, ListPage, ListRequest};
use refgen_core::{Error, ObjectMeta, Signer, StorageErrorKind};
use refgen_http::Transport;

use crate::credential::TokenSource;
use crate::error::storage;
use crate::sign_blob::{SIGN_BLOB_CONCURRENCY, SignBlobClient};
use crate::signer::{BlobSigner, Endpoint, UrlStyle, V4Request};

/// How URLs are signed.
pub(crate) enum SigningBackend {
    /// RSA key or HMAC keys held here.
    Local(Arc<dyn BlobSigner>),
    /// The IAM Credentials API.
    SignBlob(Arc<SignBlobClient>),
}

/// One bucket on Google Cloud Storage (or an emulator).
pub struct GcsStore {
    transport: Transport,
    api_base: String,
    bucket: String,
    tokens: TokenSource,
    page_size: u32,
    url_endpoint: Endpoint,
    url_style: UrlStyle,
    backend: SigningBackend,
    max_expiry: Duration,
    /// `userProject`, the project billed for a requester-pays bucket: on every
    /// request, and signed into every URL. Empty when not given.
    user_project: Vec<(String, String)>,
    /// List each object's generation and sign it into its URL (see
    /// `GcsBuilder::with_pin_versions`).
    pin_versions: bool,
}

impl std::fmt::Debug for GcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsStore")
            .field("api_base", &self.api_base)
            .field("bucket", &self.bucket)
            .field("url_endpoint", &self.url_endpoint)
            .finish_non_exhaustive()
    }
}

impl GcsStore {
    fn request<'a>(
        &'a self,
        key: &'a str,
        query: &'a [(String, String)],
        at: SystemTime,
        expires_in: Duration,
    ) -> V4Request<'a> {
        V4Request {
            method: "GET",
            bucket: &self.bucket,
            object: Some(key),
            headers: &[],
            query,
            endpoint: &self.url_endpoint,
            style: &self.url_style,
            at,
            expires_in,
        }
    }
}

/// The signed query of one object's URL: `userProject` (a requester-pays
/// bucket's billed project) and the `generation` listed, when pinned.
fn object_query(user_project: &[(String, String)], object: &ObjectMeta) -> Vec<(String, String)> {
    let mut query = user_project.to_vec();
    if let Some(generation) = &object.version {
        query.push(("generation".to_owned(), generation.clone()));
    }
    query
}

impl GcsStore {
    /// `&userProject=…` for the JSON API's requests, or nothing.
    pub(crate) fn user_project_param(&self) -> String {
        self.user_project
            .iter()
            .map(|(k, v)| {
                format!(
                    "&{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect()
    }

    /// The bucket's name.
    pub(crate) fn bucket_name(&self) -> &str {
        &self.bucket
    }
}

#[async_trait::async_trait]
impl refgen_core::Downloader for GcsStore {
    async fn download_file(&self, key: &str, to: &std::path::Path, expected: Option<u64>) -> Result<u64, Error> {
        self.get_file(key, to, expected).await
    }
}

#[async_trait::async_trait]
impl refgen_core::Uploader for GcsStore {
    async fn upload_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), Error> {
        self.put_file(key, path, content_type).await
    }
}

#[async_trait::async_trait]
impl ListClient for GcsStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::full(self.page_size.max(1) as usize)
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        // `startOffset` is inclusive (the key itself is dropped above this call),
        // and it is sent with every page: the page token expects the same query.
        self.fetch_page(request.prefix, request.start_after, request.token, request.delimited)
            .await
    }
}

#[async_trait::async_trait]
impl Signer for GcsStore {
    fn max_expiry(&self) -> Duration {
        self.max_expiry
    }

    fn expiry_limit(&self) -> &'static str {
        if self.max_expiry < MAX_SIGNED_URL_EXPIRY {
            "the limit on a URL signed through signBlob as another account"
        } else {
            "V4's limit on a signed URL"
        }
    }

    async fn sign_page(&self, objects: &[ObjectMeta], expires_in: Duration) -> Result<Vec<String>, Error> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let at = SystemTime::now();
        match &self.backend {
            SigningBackend::Local(signer) => {
                // RSA signing takes a fraction of a millisecond per URL: keep it off the
                // async workers, so listing goes on while pages are signed.
                let signer = Arc::clone(signer);
                let keys: Vec<(String, Vec<(String, String)>)> = objects
                    .iter()
                    .map(|o| (o.key.clone(), object_query(&self.user_project, o)))
                    .collect();
                let (bucket, endpoint, style) =
                    (self.bucket.clone(), self.url_endpoint.clone(), self.url_style.clone());
                tokio::task::spawn_blocking(move || {
                    keys.iter()
                        .map(|(key, query)| {
                            let req = V4Request {
                                method: "GET",
                                bucket: &bucket,
                                object: Some(key),
                                headers: &[],
                                query,
                                endpoint: &endpoint,
                                style: &style,
                                at,
                                expires_in,
                            };
                            signer::sign_url(&req, signer.as_ref())
                                .map_err(|e| storage(StorageErrorKind::InvalidConfig, e.to_string()))
                        })
                        .collect::<Result<Vec<_>, Error>>()
                })
                .await
                .map_err(|e| storage(StorageErrorKind::Other, format!("signing stopped: {e}")))?
            }
            SigningBackend::SignBlob(client) => {
                let prepared: Vec<signer::Prepared> = objects
                    .iter()
                    .map(|o| {
                        let query = object_query(&self.user_project, o);
                        signer::prepare(
                            &self.request(&o.key, &query, at, expires_in),
                            "GOOG4-RSA-SHA256",
                            client.service_account(),
                        )
                    })
                    .collect();
                stream::iter(prepared)
                    .map(|prepared| {
                        let client = Arc::clone(client);
                        async move {
                            let signature = client.sign(prepared.string_to_sign.as_bytes()).await?;
                            Ok::<_, Error>(prepared.url_with(&signature))
                        }
                    })
                    .buffered(SIGN_BLOB_CONCURRENCY)
                    .try_collect()
                    .await
            }
        }
    }
}
