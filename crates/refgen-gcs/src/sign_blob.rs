//! Signing through the IAM Credentials API (`signBlob`), for credentials without a
//! private key: gcloud user logins, the metadata server, workload identity.
//!
//! One request per URL, rate-limited by Google: requests run concurrently with a
//! bound, and 429 and 5xx answers are retried with exponential backoff and jitter.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use base64::Engine as _;
use refgen_core::{Error, StorageErrorKind};

use crate::error::{from_reqwest, from_status, storage};
use crate::store::TokenSource;

/// The public IAM Credentials endpoint.
pub(crate) const IAM_ENDPOINT: &str = "https://iamcredentials.googleapis.com";

/// How many signBlob requests may be in flight at once.
pub(crate) const SIGN_BLOB_CONCURRENCY: usize = 16;

pub(crate) struct SignBlobClient {
    http: reqwest::Client,
    endpoint: String,
    service_account: String,
    tokens: TokenSource,
}

enum Attempt {
    Retryable(Error),
    Final(Error),
}

impl SignBlobClient {
    pub(crate) fn new(http: reqwest::Client, endpoint: String, service_account: String, tokens: TokenSource) -> Self {
        SignBlobClient {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            service_account,
            tokens,
        }
    }

    pub(crate) fn service_account(&self) -> &str {
        &self.service_account
    }

    /// The signature of `blob` by the service account's Google-managed key.
    pub(crate) async fn sign(&self, blob: &[u8]) -> Result<Vec<u8>, Error> {
        let attempt = || async { self.try_sign(blob).await };
        let result = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(10))
                    .with_max_times(5)
                    .with_jitter(),
            )
            .when(|a: &Attempt| matches!(a, Attempt::Retryable(_)))
            .notify(|_, wait| tracing::debug!(?wait, "signBlob refused for now; retrying"))
            .await;
        result.map_err(|a| match a {
            Attempt::Retryable(e) => storage(
                e.storage_kind().unwrap_or(StorageErrorKind::Other),
                format!("{} (after 6 attempts)", e.to_string().trim_start_matches("GCS: ")),
            ),
            Attempt::Final(e) => e,
        })
    }

    async fn try_sign(&self, blob: &[u8]) -> Result<Vec<u8>, Attempt> {
        let url = format!(
            "{}/v1/projects/-/serviceAccounts/{}:signBlob",
            self.endpoint,
            percent_encoding::utf8_percent_encode(&self.service_account, percent_encoding::NON_ALPHANUMERIC)
        );
        let doing = format!("signing through IAM signBlob as {}", self.service_account);
        let mut request = self.http.post(&url).json(&serde_json::json!({
            "payload": base64::engine::general_purpose::STANDARD.encode(blob),
        }));
        for (name, value) in self.tokens.headers().await.map_err(Attempt::Final)?.iter() {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Attempt::Retryable(from_reqwest(&doing, &self.endpoint, &e)))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| Attempt::Retryable(from_reqwest(&doing, &self.endpoint, &e)))?;
        if status == 429 || status >= 500 {
            return Err(Attempt::Retryable(from_status(&doing, status, &body)));
        }
        if status != 200 {
            return Err(Attempt::Final(from_status(&doing, status, &body)));
        }
        let signed = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["signedBlob"].as_str().map(str::to_owned))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
        signed.ok_or_else(|| {
            Attempt::Final(storage(
                StorageErrorKind::Other,
                format!("{doing} failed: the answer has no signedBlob"),
            ))
        })
    }
}
