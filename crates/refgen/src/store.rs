//! Opening the store a source URL names, whatever its provider.
//!
//! The one place in the facade where providers are told apart: adding one means
//! a crate of its own (a `ListClient`, `Signer`, `Uploader` and `Downloader`, an
//! inventory reader and a `validity` reader of its signed URLs) and one arm in
//! [`open`], [`max_expiry`] (checked before any request),
//! [`Store::inventory_report`] and [`validity`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use refgen_core::inventory::Report;
use refgen_core::source::{Provider, SourceUrl};
use refgen_core::{Downloader, ListClient, Secret, Signer, Uploader};
use refgen_http::RetryConfig;

pub use refgen_s3::Addressing;

use crate::Error;

/// Everything a provider needs to be opened: what the command line's store
/// options hold. Unset fields leave each provider's own chain (environment,
/// profiles, metadata) to decide, exactly as that cloud's CLI would.
/// Its `Debug` shows no secret: every credential is a [`Secret`].
#[derive(Debug, Default, Clone)]
pub struct StoreOptions {
    /// Storage endpoint (an S3-compatible store, a GCS emulator, an Azure Blob endpoint).
    pub endpoint_url: Option<String>,
    /// Where the signed URLs point, when not where the store is listed (a
    /// reverse proxy's public name, a custom domain); signed for that host.
    pub url_endpoint: Option<String>,
    /// GCS: `url_endpoint` serves the bucket at its root (a bucket-bound hostname).
    pub url_endpoint_bucket_bound: bool,
    /// Keys per listing page (default: each service's maximum).
    pub page_size: Option<u32>,
    /// Timeouts, attempts and the retry budget of every request.
    pub retry: RetryConfig,
    /// Attempts given explicitly: for S3, ahead of `AWS_MAX_ATTEMPTS` and the profile's.
    pub max_attempts: Option<u32>,
    /// S3: the profile (which must exist; its credentials come first).
    pub s3_profile: Option<String>,
    /// S3: the region.
    pub s3_region: Option<String>,
    /// S3: path or virtual-hosted addressing.
    pub s3_addressing: Option<Addressing>,
    /// S3: the requester pays (requests say so; URLs carry it in their signed query).
    pub s3_request_payer: bool,
    /// GCS: the project billed for a requester-pays bucket (`userProject`).
    pub gcs_user_project: Option<String>,
    /// GCS: a credentials file of any type.
    pub gcs_credentials_file: Option<PathBuf>,
    /// GCS: an HMAC key (access id, secret).
    pub gcs_hmac: Option<(String, Secret)>,
    /// GCS: the service account to sign as (through IAM signBlob unless the key file is its own).
    pub gcs_service_account: Option<String>,
    /// GCS: the IAM Credentials endpoint.
    pub gcs_iam_endpoint: Option<String>,
    /// Azure: a SAS token.
    pub azure_sas_token: Option<Secret>,
    /// Azure: the account key.
    pub azure_account_key: Option<Secret>,
    /// Azure: a connection string.
    pub azure_connection_string: Option<Secret>,
    /// List versions, so that each object's URL names the version listed
    /// (set by a run with `pin_versions`; the provider refuses a bucket that
    /// keeps no versions).
    pub pin_versions: bool,
}

/// What every provider's store is: listed, signed for, uploaded to.
pub trait ObjectStore: ListClient + Signer + Uploader {}

impl<T: ListClient + Signer + Uploader> ObjectStore for T {}

/// An open bucket or container, on any provider.
#[derive(Clone)]
pub struct Store {
    provider: Provider,
    inner: Arc<dyn ObjectStore>,
    /// The provider's store itself, for what each reads its own way (its
    /// inventory reports); none for a store wrapped by [`Store::new`].
    backend: Option<Backend>,
}

/// A provider's own store.
#[derive(Clone)]
enum Backend {
    S3(Arc<refgen_s3::S3Store>),
    Gcs(Arc<refgen_gcs::GcsStore>),
    Azure(Arc<refgen_azure::AzureStore>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Wraps a store of any provider (or a test model).
    pub fn new(provider: Provider, store: Arc<dyn ObjectStore>) -> Store {
        Store {
            provider,
            inner: store,
            backend: None,
        }
    }

    /// The inventory report at `location` in this bucket, which must describe
    /// `source_bucket`, and the downloader of its data files.
    pub async fn inventory_report(
        &self,
        location: &str,
        source_bucket: &str,
    ) -> Result<(Report, Arc<dyn Downloader>), Error> {
        Ok(match &self.backend {
            Some(Backend::S3(s3)) => (
                refgen_s3::inventory::open_report(s3, location, source_bucket).await?,
                s3.clone(),
            ),
            Some(Backend::Azure(azure)) => (
                refgen_azure::inventory::open_report(azure, location, source_bucket).await?,
                azure.clone(),
            ),
            Some(Backend::Gcs(gcs)) => (refgen_gcs::inventory::open_report(gcs, location).await?, gcs.clone()),
            None => {
                return Err(refgen_core::Error::Inventory {
                    file: location.to_owned(),
                    reason: "this store has no inventory reports refgen reads".to_owned(),
                }
                .into());
            }
        })
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The listing side, shared: listing parts run in tasks of their own.
    pub fn lister(&self) -> Arc<dyn ListClient> {
        self.inner.clone()
    }

    /// The signing side, shared: pages are signed in tasks of their own.
    pub fn signer(&self) -> Arc<dyn Signer> {
        self.inner.clone()
    }

    /// The uploading side.
    pub fn uploader(&self) -> &dyn Uploader {
        self.inner.as_ref()
    }
}

/// The longest URL lifetime a provider can sign, checked before any request.
pub fn max_expiry(provider: Provider) -> Duration {
    match provider {
        Provider::S3 => refgen_s3::MAX_PRESIGN_EXPIRY,
        Provider::Gcs => refgen_gcs::MAX_SIGNED_URL_EXPIRY,
        Provider::Azure => refgen_azure::MAX_SAS_EXPIRY,
    }
}

/// When a signed URL starts and stops being valid, read from its own query by
/// each provider's signer in turn: SigV4 (or a V2 `Expires`), GCS V4, an Azure
/// SAS. `None` when no provider recognizes it.
pub fn validity(url: &str) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
    let parsed = url::Url::parse(url).ok()?;
    let query: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    refgen_s3::signer::validity(&query)
        .or_else(|| refgen_gcs::signer::validity(&query))
        .or_else(|| refgen_azure::signer::validity(&query))
}

/// Opens the bucket or container that `source` names, with `options`.
pub async fn open(source: &SourceUrl, options: &StoreOptions) -> Result<Store, Error> {
    let o = options;
    let (inner, backend): (Arc<dyn ObjectStore>, Backend) = match source.provider {
        Provider::S3 => {
            let mut b = refgen_s3::S3Builder::from_env(&source.bucket).with_retry(o.retry);
            if let Some(n) = o.max_attempts {
                b = b.with_max_attempts(n);
            }
            if let Some(p) = &o.s3_profile {
                b = b.with_profile(p);
            }
            if let Some(r) = &o.s3_region {
                b = b.with_region(r);
            }
            if let Some(u) = &o.endpoint_url {
                b = b.with_endpoint_url(u);
            }
            if let Some(n) = o.page_size {
                b = b.with_page_size(n);
            }
            if let Some(a) = o.s3_addressing {
                b = b.with_addressing(a);
            }
            if o.s3_request_payer {
                b = b.with_request_payer();
            }
            if o.pin_versions {
                b = b.with_pin_versions();
            }
            if let Some(u) = &o.url_endpoint {
                b = b.with_url_endpoint(u);
            }
            let store = Arc::new(b.build().await?);
            (store.clone(), Backend::S3(store))
        }
        Provider::Gcs => {
            let mut b = refgen_gcs::GcsBuilder::from_env(&source.bucket).with_retry(o.retry);
            if let Some(u) = &o.endpoint_url {
                b = b.with_endpoint_url(u);
            }
            if let Some(p) = &o.gcs_credentials_file {
                b = b.with_credentials_file(p);
            }
            if let Some((id, secret)) = &o.gcs_hmac {
                b = b.with_hmac(id, secret.expose());
            }
            if let Some(e) = &o.gcs_service_account {
                b = b.with_service_account(e);
            }
            if let Some(n) = o.page_size {
                b = b.with_page_size(n);
            }
            if let Some(u) = &o.gcs_iam_endpoint {
                b = b.with_iam_endpoint(u);
            }
            if let Some(p) = &o.gcs_user_project {
                b = b.with_user_project(p);
            }
            if o.pin_versions {
                b = b.with_pin_versions();
            }
            if let Some(u) = &o.url_endpoint {
                b = b.with_url_endpoint(u);
            }
            if o.url_endpoint_bucket_bound {
                b = b.with_bucket_bound_url_endpoint();
            }
            let store = Arc::new(b.build().await?);
            (store.clone(), Backend::Gcs(store))
        }
        Provider::Azure => {
            let account = source.account.as_deref().unwrap_or_default();
            let mut b = refgen_azure::AzureBuilder::from_env(account, &source.bucket).with_retry(o.retry);
            if let Some(u) = o.endpoint_url.as_ref().or(source.endpoint.as_ref()) {
                b = b.with_endpoint_url(u);
            }
            if let Some(n) = o.page_size {
                b = b.with_page_size(n);
            }
            if let Some(t) = &o.azure_sas_token {
                b = b.with_sas_token(t.expose());
            }
            if let Some(k) = &o.azure_account_key {
                b = b.with_account_key(k.expose());
            }
            if let Some(c) = &o.azure_connection_string {
                b = b.with_connection_string(c.expose());
            }
            if let Some(u) = &o.url_endpoint {
                b = b.with_url_endpoint(u);
            }
            if o.pin_versions {
                b = b.with_pin_versions();
            }
            let store = Arc::new(b.build().await?);
            (store.clone(), Backend::Azure(store))
        }
    };
    Ok(Store {
        backend: Some(backend),
        ..Store::new(source.provider, inner)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options and builders derive `Debug`: their secrets must still not show.
    #[test]
    fn debug_output_holds_no_secret() {
        let secret = "s3cr3t-VALUE";
        let options = StoreOptions {
            gcs_hmac: Some(("GOOG1ID".into(), secret.into())),
            azure_sas_token: Some(secret.into()),
            azure_account_key: Some(secret.into()),
            azure_connection_string: Some(secret.into()),
            ..StoreOptions::default()
        };
        let azure = refgen_azure::AzureBuilder::new("acct", "c")
            .with_sas_token(secret)
            .with_account_key(secret)
            .with_connection_string(secret);
        let gcs = refgen_gcs::GcsBuilder::new("b").with_hmac("GOOG1ID", secret);
        let roboflow = refgen_roboflow::ClientBuilder::new().with_api_key(secret);
        for shown in [
            format!("{options:?}"),
            format!("{azure:?}"),
            format!("{gcs:?}"),
            format!("{roboflow:?}"),
        ] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }
}
