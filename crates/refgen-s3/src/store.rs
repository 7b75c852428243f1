//! The S3 store: lists with ListObjectsV2, signs with [`SigV4Presigner`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_s3::types::EncodingType;
use percent_encoding::percent_decode_str;
use refgen_core::list::{Capabilities, ListClient, ListPage, ListRequest};
use refgen_core::{Error, ObjectMeta, Signer, StorageErrorKind};

use crate::config::{CredentialsSource, remaining};
use crate::error::{PROVIDER, from_credentials, from_sdk, is_retried};
use crate::presign::{MAX_PRESIGN_EXPIRY, SigV4Presigner, SigningCredentials};

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
    warned_short_credentials: AtomicBool,
    /// Timeouts, and the attempts the SDK makes per request (for messages).
    retry: refgen_http::RetryConfig,
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
            client,
            bucket,
            endpoint,
            page_size,
            signing: RwLock::new(Arc::new(SigningState { presigner, expiry })),
            provider,
            warned_short_credentials: AtomicBool::new(false),
            retry,
        }
    }

    /// The bucket this store lists.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The SDK client, for uploads and other requests.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The presigner in use now.
    pub fn presigner(&self) -> SigV4Presigner {
        self.state().presigner.clone()
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
        if let Some(left) = remaining(state.expiry)
            && left < expires_in
            && !self.warned_short_credentials.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "the signing credentials are temporary and expire in {}, before the URLs' {}: \
                 the URLs stop working when the credentials do",
                refgen_core::expiry::display_approx(left),
                refgen_core::expiry::display_duration(expires_in)
            );
        }
    }

    /// ` (gave up after 12.3s; 10 attempts allowed)`, for a request the SDK retried.
    fn gave_up(&self, started: std::time::Instant) -> String {
        format!(
            " (gave up after {:.1}s; {} attempts allowed)",
            started.elapsed().as_secs_f64(),
            self.retry.max_attempts
        )
    }

    async fn fetch_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<String>,
        delimited: bool,
    ) -> Result<Page, Error> {
        let mut request = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            // Keys may hold characters XML 1.0 cannot carry (and `\r` is normalised
            // away by XML parsers): ask for URL-encoded keys, as the AWS CLI does.
            .encoding_type(EncodingType::Url)
            .set_max_keys(self.page_size)
            .set_continuation_token(token);
        if let Some(after) = start_after {
            request = request.start_after(after);
        }
        if delimited {
            request = request.delimiter("/");
        }
        let started = std::time::Instant::now();
        let out = request.send().await.map_err(|e| {
            let error = from_sdk(&e, &format!("listing s3://{}/{prefix}", self.bucket), &self.endpoint);
            if is_retried(&e) {
                error.with_note(&self.gave_up(started))
            } else {
                error
            }
        })?;
        let url_encoded = out.encoding_type() == Some(&EncodingType::Url);
        let objects = out
            .contents()
            .iter()
            .map(|o| {
                let raw = o.key().unwrap_or_default();
                let key = if url_encoded {
                    decode_listed_key(raw)?
                } else {
                    raw.to_owned()
                };
                Ok(ObjectMeta {
                    key,
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    last_modified: o.last_modified().and_then(|t| SystemTime::try_from(*t).ok()),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let prefixes = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .map(|p| {
                if url_encoded {
                    decode_listed_key(p)
                } else {
                    Ok(p.to_owned())
                }
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let next = match (out.is_truncated(), out.next_continuation_token()) {
            (Some(true), Some(token)) => Some(token.to_owned()),
            (Some(true), None) => {
                return Err(Error::storage(
                    PROVIDER,
                    StorageErrorKind::Other,
                    format!(
                        "listing s3://{} failed: the server said the listing goes on but sent no continuation token",
                        self.bucket
                    ),
                ));
            }
            _ => None,
        };
        Ok(Page {
            objects,
            prefixes,
            next,
        })
    }
}

struct Page {
    objects: Vec<ObjectMeta>,
    /// Common prefixes (delimited listings only).
    prefixes: Vec<String>,
    next: Option<String>,
}

/// Decodes a key listed with `encoding-type=url`: form encoding, so `+` is a space
/// (a literal `+` arrives as `%2B`), exactly as botocore decodes it.
fn decode_listed_key(raw: &str) -> Result<String, Error> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| {
            Error::storage(
                PROVIDER,
                StorageErrorKind::Other,
                format!("the server listed a key that is not UTF-8 once decoded: {raw}"),
            )
        })
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
        let page = self.fetch_page(request.prefix, after, token, request.delimited).await?;
        Ok(ListPage {
            objects: page.objects,
            prefixes: page.prefixes,
            next: page.next,
        })
    }
}

#[async_trait::async_trait]
impl Signer for S3Store {
    fn max_expiry(&self) -> Duration {
        MAX_PRESIGN_EXPIRY
    }

    async fn sign_page(&self, objects: &[ObjectMeta], expires_in: Duration) -> Result<Vec<String>, Error> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let state = self.fresh_state().await?;
        self.warn_if_credentials_outlived(&state, expires_in);
        let batch = state.presigner.batch(SystemTime::now(), expires_in);
        Ok(objects.iter().map(|o| batch.presign(&o.key)).collect())
    }
}

#[async_trait::async_trait]
impl refgen_core::Uploader for S3Store {
    async fn upload_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), Error> {
        let doing = format!("uploading s3://{}/{key}", self.bucket);
        let started = std::time::Instant::now();
        let length = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let attempt_timeout = crate::retry::upload_attempt_timeout(&self.retry, length);
        // ByteStream::from_path re-reads the file on each attempt (a restartable body).
        let body = aws_sdk_s3::primitives::ByteStream::from_path(path).await.map_err(|e| {
            Error::storage(
                PROVIDER,
                StorageErrorKind::Other,
                format!("{doing} failed: cannot read {}: {e}", path.display()),
            )
        })?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::new().timeout_config(
                    aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(attempt_timeout)
                        .operation_timeout(self.retry.budget + attempt_timeout * self.retry.max_attempts)
                        .build(),
                ),
            )
            .send()
            .await
            .map_err(|e| {
                let error = from_sdk(&e, &doing, &self.endpoint);
                if is_retried(&e) {
                    error.with_note(&self.gave_up(started))
                } else {
                    error
                }
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_keys_decode_like_botocore() {
        assert_eq!(
            decode_listed_key("with+space.jpg").ok().as_deref(),
            Some("with space.jpg")
        );
        assert_eq!(
            decode_listed_key("plus%2Bsign.jpg").ok().as_deref(),
            Some("plus+sign.jpg")
        );
        assert_eq!(
            decode_listed_key("percent%2520literal.jpg").ok().as_deref(),
            Some("percent%20literal.jpg")
        );
        assert_eq!(decode_listed_key("new%0Aline").ok().as_deref(), Some("new\nline"));
        assert!(decode_listed_key("bad%FF").is_err());
    }
}
