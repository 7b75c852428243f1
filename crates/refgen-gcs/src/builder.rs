//! Configuration: endpoint, credentials and signing mode for one bucket.
//!
//! [`GcsBuilder::new`] reads nothing from the environment; [`GcsBuilder::from_env`]
//! opts in to what Google's tools read: `STORAGE_EMULATOR_HOST`,
//! `GOOGLE_APPLICATION_CREDENTIALS` and the gcloud ADC file, the metadata server,
//! and `GCS_HMAC_ACCESS_ID` / `GCS_HMAC_SECRET`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use refgen_core::{Error, Hint, Secret, StorageErrorKind};
use refgen_http::{RetryConfig, Transport};

use crate::credential::TokenSource;
use crate::error::storage;
use crate::sign_blob::{IAM_ENDPOINT, SignBlobClient};
use crate::signer::{BlobSigner, Endpoint, HmacSigner, MAX_SIGNED_URL_EXPIRY, RsaSigner, UrlStyle};
use crate::{GcsStore, SigningBackend};

/// URLs signed through another account's identity (impersonation) are capped by
/// Google at 12 hours.
pub const MAX_IMPERSONATED_EXPIRY: Duration = Duration::from_secs(12 * 3600);

/// How URLs are signed, in the order refgen picks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningMode {
    /// HMAC keys: GOOG4-HMAC-SHA256, local and fast.
    Hmac,
    /// A service-account key file: GOOG4-RSA-SHA256 signed locally.
    KeyFile,
    /// Credentials without a private key: the IAM Credentials `signBlob` API.
    SignBlob,
}

/// Builds a [`GcsStore`].
/// Its `Debug` shows no secret (the HMAC secret is a [`Secret`]).
#[derive(Clone, Debug)]
pub struct GcsBuilder {
    bucket: String,
    from_env: bool,
    credentials_file: Option<PathBuf>,
    hmac: Option<(String, Secret)>,
    service_account: Option<String>,
    endpoint_url: Option<String>,
    iam_endpoint: Option<String>,
    page_size: u32,
    retry: RetryConfig,
    user_project: Option<String>,
    url_endpoint: Option<String>,
    bucket_bound: bool,
    pin_versions: bool,
}

impl GcsBuilder {
    /// A builder that reads nothing from the environment.
    pub fn new(bucket: impl Into<String>) -> Self {
        GcsBuilder {
            bucket: bucket.into(),
            from_env: false,
            credentials_file: None,
            hmac: None,
            service_account: None,
            endpoint_url: None,
            iam_endpoint: None,
            page_size: 1000,
            retry: RetryConfig::default(),
            user_project: None,
            url_endpoint: None,
            bucket_bound: false,
            pin_versions: false,
        }
    }

    /// A builder that reads Google's standard environment variables and ADC.
    pub fn from_env(bucket: impl Into<String>) -> Self {
        GcsBuilder {
            from_env: true,
            ..GcsBuilder::new(bucket)
        }
    }

    /// Signs with (and authenticates as) this service-account key file.
    pub fn with_credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// Signs with these HMAC keys.
    pub fn with_hmac(mut self, access_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.hmac = Some((access_id.into(), Secret::new(secret)));
        self
    }

    /// Signs through IAM signBlob as this service account.
    pub fn with_service_account(mut self, email: impl Into<String>) -> Self {
        self.service_account = Some(email.into());
        self
    }

    /// Lists from, and points URLs at, this endpoint (an emulator or a private endpoint).
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Signs URLs for this endpoint (path style, `URL/bucket/object`) instead of
    /// the one listed through: a private endpoint or a reverse proxy's public
    /// name. The signature covers the host, so it is signed for this one.
    pub fn with_url_endpoint(mut self, url: impl Into<String>) -> Self {
        self.url_endpoint = Some(url.into());
        self
    }

    /// The URL endpoint serves this bucket at its root (`URL/object`): a
    /// bucket-bound hostname, such as a load balancer's backend bucket or a
    /// CNAME to `c.storage.googleapis.com` (whose bucket is named like the host,
    /// which is then assumed). V4 signs for that host and that path.
    pub fn with_bucket_bound_url_endpoint(mut self) -> Self {
        self.bucket_bound = true;
        self
    }

    /// Lists each object's generation and signs `generation=…` into its URL, so
    /// that the URL reads the bytes listed: once the object is overwritten, that
    /// generation is read while the bucket keeps noncurrent versions, and is
    /// refused (404) otherwise, never replaced by other bytes.
    pub fn with_pin_versions(mut self) -> Self {
        self.pin_versions = true;
        self
    }

    /// Bills this project for the requests to a requester-pays bucket (as
    /// gsutil's `-u`): `userProject` on listings, reads and uploads, and signed
    /// into every URL, so that whoever reads it is billed to the same project.
    pub fn with_user_project(mut self, project: impl Into<String>) -> Self {
        self.user_project = Some(project.into());
        self
    }

    /// Calls this IAM Credentials endpoint instead of Google's.
    pub fn with_iam_endpoint(mut self, url: impl Into<String>) -> Self {
        self.iam_endpoint = Some(url.into());
        self
    }

    /// Asks for pages of at most this many objects (1,000 by default).
    pub fn with_page_size(mut self, objects: u32) -> Self {
        self.page_size = objects.clamp(1, 1000);
        self
    }

    /// How requests are retried and timed out (see [`RetryConfig`]).
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Resolves endpoint, credentials and signing mode. Makes no request to storage;
    /// may ask the metadata server for the service account's email.
    pub async fn build(self) -> Result<GcsStore, Error> {
        let env = |name: &str| refgen_http::env_var(self.from_env, name);
        let emulator = self.endpoint_url.clone().or_else(|| env("STORAGE_EMULATOR_HOST"));
        let api_base = match &emulator {
            // Google's libraries accept the emulator host with or without a scheme.
            Some(host) if host.contains("://") => host.trim_end_matches('/').to_owned(),
            Some(host) => format!("http://{}", host.trim_end_matches('/')),
            None => "https://storage.googleapis.com".to_owned(),
        };
        refgen_http::check_endpoint_url(&api_base).map_err(|why| storage(StorageErrorKind::InvalidConfig, why))?;
        let url_endpoint = match &self.url_endpoint {
            Some(url) => {
                let url = url.trim_end_matches('/');
                refgen_http::check_endpoint_url(url).map_err(|why| storage(StorageErrorKind::InvalidConfig, why))?;
                Endpoint::parse(url, "https")
            }
            None => Endpoint::parse(&api_base, "https"),
        };
        // A CNAME-bound bucket is named like its host (the port aside).
        let host = url_endpoint.authority.split(':').next().unwrap_or_default();
        let bucket_bound =
            self.url_endpoint.is_some() && (self.bucket_bound || host.eq_ignore_ascii_case(&self.bucket));
        let url_style = if bucket_bound {
            UrlStyle::BucketBound(url_endpoint.authority.clone())
        } else {
            UrlStyle::Path
        };

        let explicit = self.hmac.clone().map(|(id, secret)| (id, secret.expose().to_owned()));
        let hmac = match (explicit, env("GCS_HMAC_ACCESS_ID"), env("GCS_HMAC_SECRET")) {
            (Some(pair), _, _) => Some(pair),
            (None, Some(id), Some(secret)) => Some((id, secret)),
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(storage(
                    StorageErrorKind::InvalidConfig,
                    "HMAC signing needs both GCS_HMAC_ACCESS_ID and GCS_HMAC_SECRET",
                )
                .with_hint(Hint::GiveBothHmacKeys));
            }
            _ => None,
        };
        if let Some((id, secret)) = &hmac
            && (id.is_empty() || secret.is_empty())
        {
            return Err(storage(
                StorageErrorKind::InvalidConfig,
                "HMAC access id and secret must not be empty",
            ));
        }

        let key_file = match &self.credentials_file {
            Some(path) => Some(read_key_file(path)?),
            None => adc_file(&env).map(|p| read_key_file(&p)).transpose()?,
        };
        // A key file signs locally, unless --service-account names another account:
        // then the key's credentials act as that account through signBlob.
        let service_account_key = key_file.as_ref().filter(|(_, json)| {
            json["type"] == "service_account"
                && self
                    .service_account
                    .as_deref()
                    .is_none_or(|email| json["client_email"].as_str() == Some(email))
        });

        let transport = Transport::new(self.retry)
            .map_err(|e| storage(StorageErrorKind::Other, format!("cannot start the HTTP client: {e}")))?;

        // OAuth tokens for API calls: none for an emulator (no token endpoint can be
        // reached there), the given key file's own when one was given (whatever its
        // type: it is never swapped for another file), ADC otherwise.
        let google_tokens = || -> Result<TokenSource, Error> {
            use google_cloud_auth::credentials as gc;
            let Some((path, json)) = self.credentials_file.as_ref().and(key_file.as_ref()) else {
                return gc::Builder::default().build().map(TokenSource::Google).map_err(|e| {
                    storage(
                        StorageErrorKind::NoCredentials,
                        format!(
                            "no usable Google credentials (looked at GOOGLE_APPLICATION_CREDENTIALS, the gcloud ADC file and the metadata server): {}",
                            refgen_http::error_chain(&e)
                        ),
                    )
                });
            };
            let built = match json["type"].as_str() {
                Some("service_account") => gc::service_account::Builder::new(json.clone()).build(),
                Some("authorized_user") => gc::user_account::Builder::new(json.clone()).build(),
                Some("impersonated_service_account") => gc::impersonated::Builder::new(json.clone()).build(),
                Some("external_account") => gc::external_account::Builder::new(json.clone()).build(),
                other => {
                    return Err(storage(
                        StorageErrorKind::InvalidConfig,
                        format!(
                            "the credentials file `{}` is not a Google credentials file (its type is {}; expected service_account, authorized_user, impersonated_service_account or external_account)",
                            path.display(),
                            other.map_or("missing".to_owned(), |t| format!("`{t}`"))
                        ),
                    ));
                }
            };
            built.map(TokenSource::Google).map_err(|e| {
                storage(
                    StorageErrorKind::InvalidConfig,
                    format!(
                        "the credentials file `{}` is not usable: {}",
                        path.display(),
                        refgen_http::error_chain(&e)
                    ),
                )
            })
        };
        let tokens = if emulator.is_some() {
            TokenSource::None
        } else {
            google_tokens()?
        };

        let (backend, max_expiry, mode) = if let Some((id, secret)) = hmac {
            let signer: Arc<dyn BlobSigner> = Arc::new(HmacSigner::new(id, secret));
            (SigningBackend::Local(signer), MAX_SIGNED_URL_EXPIRY, SigningMode::Hmac)
        } else if let Some((path, json)) = service_account_key {
            let (Some(email), Some(pem)) = (json["client_email"].as_str(), json["private_key"].as_str()) else {
                return Err(storage(
                    StorageErrorKind::InvalidConfig,
                    format!(
                        "`{}` is a service-account key file without client_email or private_key",
                        path.display()
                    ),
                ));
            };
            let signer = RsaSigner::from_pem(email, pem)
                .map_err(|e| storage(StorageErrorKind::InvalidConfig, format!("`{}`: {e}", path.display())))?;
            (
                SigningBackend::Local(Arc::new(signer)),
                MAX_SIGNED_URL_EXPIRY,
                SigningMode::KeyFile,
            )
        } else {
            let iam_tokens = match &tokens {
                TokenSource::None => google_tokens()?,
                t => t.clone(),
            };
            if let (Some(email), Some((path, json))) = (&self.service_account, &key_file)
                && json["type"] == "service_account"
            {
                tracing::debug!(
                    "{} holds a key for {}, not {email}: signing as {email} through signBlob",
                    path.display(),
                    json["client_email"].as_str().unwrap_or("another account")
                );
            }
            let (email, max_expiry) = match &self.service_account {
                Some(email) => (email.clone(), MAX_IMPERSONATED_EXPIRY),
                None => (discover_service_account().await?, MAX_SIGNED_URL_EXPIRY),
            };
            tracing::warn!(
                "signing through the IAM signBlob API as {email}: one request per URL; a service-account key file or HMAC keys sign much faster"
            );
            let endpoint = self
                .iam_endpoint
                .clone()
                .or_else(|| env("REFGEN_GCS_IAM_ENDPOINT"))
                .unwrap_or_else(|| IAM_ENDPOINT.into());
            let client = SignBlobClient::new(transport.clone(), endpoint, email, iam_tokens);
            (
                SigningBackend::SignBlob(Arc::new(client)),
                max_expiry,
                SigningMode::SignBlob,
            )
        };
        tracing::debug!(?mode, api = %api_base, bucket = %self.bucket, "GCS store ready");
        Ok(GcsStore {
            transport,
            api_base,
            bucket: self.bucket,
            tokens,
            page_size: self.page_size,
            url_endpoint,
            url_style,
            pin_versions: self.pin_versions,
            backend,
            max_expiry,
            user_project: self
                .user_project
                .map(|p| vec![("userProject".to_owned(), p)])
                .unwrap_or_default(),
        })
    }
}

/// The ADC file: `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's well-known file.
fn adc_file(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(path) = env("GOOGLE_APPLICATION_CREDENTIALS") {
        return Some(PathBuf::from(path));
    }
    let config = env("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config/gcloud")))?;
    let path = config.join("application_default_credentials.json");
    path.exists().then_some(path)
}

fn read_key_file(path: &std::path::Path) -> Result<(PathBuf, serde_json::Value), Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        storage(
            StorageErrorKind::NoCredentials,
            format!("cannot read the credentials file `{}`: {e}", path.display()),
        )
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        storage(
            StorageErrorKind::InvalidConfig,
            format!("the credentials file `{}` is not JSON: {e}", path.display()),
        )
    })?;
    Ok((path.to_path_buf(), json))
}

/// The service account the ADC credentials act as (metadata server, impersonation).
async fn discover_service_account() -> Result<String, Error> {
    let no_key = |why: String| {
        storage(
            StorageErrorKind::NoCredentials,
            format!(
                "the Google credentials hold no private key and no service account could be found to sign as ({why})"
            ),
        )
        .with_hint(Hint::GiveGcsSigner)
    };
    let signer = google_cloud_auth::credentials::Builder::default()
        .build_signer()
        .map_err(|e| no_key(refgen_http::error_chain(&e)))?;
    signer
        .client_email()
        .await
        .map_err(|e| no_key(refgen_http::error_chain(&e)))
}
