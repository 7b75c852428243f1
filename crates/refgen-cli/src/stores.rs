//! Opening a store for a source or an upload target, whatever its provider.

use std::sync::Arc;

use anyhow::{Result, bail};
use refgen_core::source::{Provider, SourceUrl};
use refgen_core::{Lister, Signer, Uploader};

use crate::args::StoreArgs;

/// A bucket or container on one of the providers.
pub enum Store {
    S3(Arc<refgen_s3::S3Store>),
    Gcs(Arc<refgen_gcs::GcsStore>),
    Azure(Arc<refgen_azure::AzureStore>),
}

impl Store {
    /// Shared: listing parts run in tasks of their own.
    pub fn lister(&self) -> Arc<dyn Lister> {
        match self {
            Store::S3(s) => s.clone(),
            Store::Gcs(s) => s.clone(),
            Store::Azure(s) => s.clone(),
        }
    }

    /// Shared: pages are signed in tasks of their own.
    pub fn shared_signer(&self) -> Arc<dyn Signer> {
        match self {
            Store::S3(s) => s.clone(),
            Store::Gcs(s) => s.clone(),
            Store::Azure(s) => s.clone(),
        }
    }

    pub fn signer(&self) -> &dyn Signer {
        match self {
            Store::S3(s) => s.as_ref(),
            Store::Gcs(s) => s.as_ref(),
            Store::Azure(s) => s.as_ref(),
        }
    }

    pub fn uploader(&self) -> &dyn Uploader {
        match self {
            Store::S3(s) => s.as_ref(),
            Store::Gcs(s) => s.as_ref(),
            Store::Azure(s) => s.as_ref(),
        }
    }
}

/// The longest URL lifetime a provider can sign, checked before any request.
pub fn max_expiry(provider: Provider) -> std::time::Duration {
    match provider {
        Provider::S3 => refgen_s3::MAX_PRESIGN_EXPIRY,
        Provider::Gcs => refgen_gcs::MAX_SIGNED_URL_EXPIRY,
        Provider::Azure => refgen_azure::MAX_SAS_EXPIRY,
    }
}

pub async fn open(source: &SourceUrl, args: &StoreArgs) -> Result<Store> {
    let retry = args.requests.retry_config();
    Ok(match source.provider {
        Provider::S3 => {
            let mut b = refgen_s3::S3Builder::from_env(&source.bucket).with_retry(retry);
            if let Some(n) = args.requests.max_attempts {
                b = b.with_max_attempts(n);
            }
            if let Some(p) = &args.s3.profile {
                b = b.with_profile(p);
            }
            if let Some(r) = &args.s3.region {
                b = b.with_region(r);
            }
            if let Some(u) = &args.endpoint_url {
                b = b.with_endpoint_url(u);
            }
            if let Some(n) = args.page_size {
                b = b.with_page_size(i32::try_from(n.min(1000)).unwrap_or(1000));
            }
            if let Some(a) = args.s3.addressing {
                b = b.with_addressing(a.into());
            }
            Store::S3(Arc::new(b.build().await?))
        }
        Provider::Gcs => {
            let mut b = refgen_gcs::GcsBuilder::from_env(&source.bucket).with_retry(retry);
            if let Some(u) = &args.endpoint_url {
                b = b.with_endpoint_url(u);
            }
            if let Some(p) = &args.gcs.credentials_file {
                b = b.with_credentials_file(p);
            }
            match (&args.gcs.hmac_access_id, &args.gcs.hmac_secret) {
                (Some(id), Some(secret)) => b = b.with_hmac(id, secret),
                (None, None) => {}
                _ => bail!("--hmac-access-id and --hmac-secret go together"),
            }
            if let Some(e) = &args.gcs.service_account {
                b = b.with_service_account(e);
            }
            if let Some(n) = args.page_size {
                b = b.with_page_size(n);
            }
            if let Some(u) = &args.gcs.iam_endpoint {
                b = b.with_iam_endpoint(u);
            }
            Store::Gcs(Arc::new(b.build().await?))
        }
        Provider::Azure => {
            let account = source.account.as_deref().unwrap_or_default();
            let mut b = refgen_azure::AzureBuilder::from_env(account, &source.bucket).with_retry(retry);
            if let Some(u) = args.endpoint_url.as_ref().or(source.endpoint.as_ref()) {
                b = b.with_endpoint(u);
            }
            if let Some(n) = args.page_size {
                b = b.with_page_size(n);
            }
            if let Some(t) = &args.azure.sas_token {
                b = b.with_sas_token(t);
            }
            if let Some(k) = &args.azure.account_key {
                b = b.with_account_key(k);
            }
            if let Some(c) = &args.azure.connection_string {
                b = b.with_connection_string(c);
            }
            Store::Azure(Arc::new(b.build().await?))
        }
    })
}
