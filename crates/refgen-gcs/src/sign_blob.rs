//! Signing through the IAM Credentials API (`signBlob`), for credentials without a
//! private key: gcloud user logins, the metadata server, workload identity.
//!
//! One request per URL, rate-limited by Google: requests run concurrently with a
//! bound, each through the shared transport (429 and 5xx retried with backoff).

use base64::Engine as _;
use refgen_core::{Error, StorageErrorKind};
use refgen_http::{Reject, Transport};

use crate::client::send_with_tokens;
use crate::credential::TokenSource;
use crate::error::{from_status, storage};

/// The public IAM Credentials endpoint.
pub(crate) const IAM_ENDPOINT: &str = "https://iamcredentials.googleapis.com";

/// How many signBlob requests may be in flight at once.
pub(crate) const SIGN_BLOB_CONCURRENCY: usize = 16;

pub(crate) struct SignBlobClient {
    transport: Transport,
    endpoint: String,
    service_account: String,
    tokens: TokenSource,
}

impl SignBlobClient {
    pub(crate) fn new(transport: Transport, endpoint: String, service_account: String, tokens: TokenSource) -> Self {
        SignBlobClient {
            transport,
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
        let url = format!(
            "{}/v1/projects/-/serviceAccounts/{}:signBlob",
            self.endpoint,
            percent_encoding::utf8_percent_encode(&self.service_account, percent_encoding::NON_ALPHANUMERIC)
        );
        let doing = format!("signing through IAM signBlob as {}", self.service_account);
        let payload = serde_json::json!({
            "payload": base64::engine::general_purpose::STANDARD.encode(blob),
        });
        let build = || Ok(self.transport.client().post(&url).json(&payload));
        send_with_tokens(&self.transport, &self.tokens, &doing, None, None, build, |response| {
            if response.status != 200 {
                return Err(Reject::Fail(from_status(&doing, response.status, &response.text())));
            }
            let signed = serde_json::from_slice::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|v| v["signedBlob"].as_str().map(str::to_owned))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            // A 200 without a whole answer is a broken answer, worth another attempt.
            signed.ok_or_else(|| {
                Reject::Retry(storage(
                    StorageErrorKind::Other,
                    format!("{doing} failed: the answer has no signedBlob"),
                ))
            })
        })
        .await
    }
}
