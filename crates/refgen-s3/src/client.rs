//! The S3 calls, through aws-sdk-s3: ListObjectsV2 pages (URL-encoded keys,
//! decoded as botocore does) and PutObject for an uploaded references file. The
//! SDK's retries are set up in `retry` with the transport's rules.

use std::time::SystemTime;

use aws_sdk_s3::types::{EncodingType, OptionalObjectAttributes};
use percent_encoding::percent_decode_str;
use refgen_core::list::ListPage;
use refgen_core::{Error, ObjectMeta, StorageErrorKind};

use crate::S3Store;
use crate::error::PROVIDER;

impl S3Store {
    pub(crate) async fn fetch_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<String>,
        delimited: bool,
    ) -> Result<ListPage, Error> {
        let mut request = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            // Keys may hold characters XML 1.0 cannot carry (and `\r` is normalised
            // away by XML parsers): ask for URL-encoded keys, as the AWS CLI does.
            .encoding_type(EncodingType::Url)
            // Whether an archived object was restored (and so can be read).
            .optional_object_attributes(OptionalObjectAttributes::RestoreStatus)
            .set_max_keys(self.page_size)
            .set_request_payer(self.request_payer.clone())
            .set_continuation_token(token);
        if let Some(after) = start_after {
            request = request.start_after(after);
        }
        if delimited {
            request = request.delimiter("/");
        }
        let started = std::time::Instant::now();
        let mut out = request.send().await.map_err(|e| {
            let error = self.sdk_error(&e, &format!("listing s3://{}/{prefix}", self.bucket), started);
            // A requester-pays bucket refuses a listing that does not say who pays
            // with a plain 403: the hint names what may be missing.
            match error.storage_kind() {
                Some(StorageErrorKind::AccessDenied) if self.request_payer.is_none() && error.hint().is_none() => {
                    error.with_hint(refgen_core::Hint::PayAsRequester)
                }
                _ => error,
            }
        })?;
        let url_encoded = out.encoding_type() == Some(&EncodingType::Url);
        // The page's keys are moved out, not copied: most need no decoding at all.
        let decode = |raw: String| if url_encoded { decode_listed(raw) } else { Ok(raw) };
        let objects = out
            .contents
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|o| {
                let meta = listed(
                    o.size(),
                    o.last_modified(),
                    o.storage_class().map(|c| c.as_str()),
                    o.restore_status(),
                );
                Ok(ObjectMeta {
                    key: decode(o.key.unwrap_or_default())?,
                    ..meta
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let prefixes = decoded_prefixes(out.common_prefixes.take(), decode)?;
        let next = self.next_position(
            out.is_truncated(),
            out.next_continuation_token().map(|t| Ok(t.to_owned())),
            "continuation token",
        )?;
        Ok(ListPage {
            objects,
            prefixes,
            next,
        })
    }

    /// Where the next page starts: `None` after the last page; an error when the
    /// server says the listing goes on but not where (`what`).
    fn next_position(
        &self,
        truncated: Option<bool>,
        position: Option<Result<String, Error>>,
        what: &str,
    ) -> Result<Option<String>, Error> {
        match (truncated, position) {
            (Some(true), Some(position)) => position.map(Some),
            (Some(true), None) => Err(Error::storage(
                PROVIDER,
                StorageErrorKind::Other,
                format!(
                    "listing s3://{} failed: the server said the listing goes on but sent no {what}",
                    self.bucket
                ),
            )),
            _ => Ok(None),
        }
    }

    /// Refuses to pin versions in a bucket whose versioning was never enabled
    /// (GetBucketVersioning has no status): there, overwriting a key replaces its
    /// one `null` version, so a URL pinned to it would read the new bytes. A
    /// caller not allowed to ask is given the benefit of the doubt.
    pub(crate) async fn check_versioning(&self) -> Result<(), Error> {
        let started = std::time::Instant::now();
        let answer = self
            .client
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(None)
            .send()
            .await;
        match answer {
            Ok(out) if out.status().is_none() => Err(Error::InvalidSource {
                url: format!("s3://{}", self.bucket),
                reason: "versions cannot be pinned: the bucket's versioning was never enabled, so overwriting a key replaces its only version"
                    .to_owned(),
            }),
            Ok(_) => Ok(()),
            Err(e) => {
                let error = self.sdk_error(&e, &format!("reading the versioning of s3://{}", self.bucket), started);
                if error.storage_kind() == Some(StorageErrorKind::AccessDenied) {
                    tracing::debug!("cannot read the bucket's versioning status; pinning what is listed");
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
    }

    /// A ListObjectVersions page with each key's latest version (not a delete
    /// marker), its `versionId` kept for the URL. The token holds both markers.
    pub(crate) async fn fetch_versions_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<String>,
        delimited: bool,
    ) -> Result<ListPage, Error> {
        let (key_marker, version_marker) = match token.as_deref().map(split_version_token) {
            Some(Some((key, version))) => (Some(key.to_owned()), version.map(str::to_owned)),
            Some(None) => {
                return Err(Error::storage(
                    PROVIDER,
                    StorageErrorKind::Other,
                    format!("listing s3://{}: a version listing token did not parse", self.bucket),
                ));
            }
            // Versions are listed after the key marker's own versions: "start
            // after" this key.
            None => (start_after.map(str::to_owned), None),
        };
        let mut request = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(prefix)
            .encoding_type(EncodingType::Url)
            .set_max_keys(self.page_size)
            .set_request_payer(self.request_payer.clone())
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker);
        if delimited {
            request = request.delimiter("/");
        }
        let started = std::time::Instant::now();
        let mut out = request.send().await.map_err(|e| {
            self.sdk_error(
                &e,
                &format!("listing the versions in s3://{}/{prefix}", self.bucket),
                started,
            )
        })?;
        let url_encoded = out.encoding_type() == Some(&EncodingType::Url);
        let decode = |raw: String| if url_encoded { decode_listed(raw) } else { Ok(raw) };
        let objects = out
            .versions
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.is_latest() == Some(true))
            .map(|v| {
                let meta = listed(
                    v.size(),
                    v.last_modified(),
                    v.storage_class().map(|c| c.as_str()),
                    v.restore_status(),
                );
                Ok(ObjectMeta {
                    version: Some(v.version_id.unwrap_or_else(|| "null".to_owned())),
                    key: decode(v.key.unwrap_or_default())?,
                    ..meta
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let prefixes = decoded_prefixes(out.common_prefixes.take(), decode)?;
        let marker = out.next_key_marker.take();
        let next = self.next_position(
            out.is_truncated(),
            marker.map(|key| Ok(version_token(&decode(key)?, out.next_version_id_marker()))),
            "key marker",
        )?;
        Ok(ListPage {
            objects,
            prefixes,
            next,
        })
    }

    /// Uploads the file at `path` to `key` with PutObject.
    pub(crate) async fn put_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), Error> {
        let doing = format!("uploading s3://{}/{key}", self.bucket);
        let started = std::time::Instant::now();
        let length = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let attempt_timeout = self.retry.upload_timeout(length);
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
            .set_request_payer(self.request_payer.clone())
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
            .map_err(|e| self.sdk_error(&e, &doing, started))?;
        Ok(())
    }
}

/// What a listed object's fields say, but its key (an object of ListObjectsV2
/// or a version of ListObjectVersions).
fn listed(
    size: Option<i64>,
    modified: Option<&aws_sdk_s3::primitives::DateTime>,
    class: Option<&str>,
    restore: Option<&aws_sdk_s3::types::RestoreStatus>,
) -> ObjectMeta {
    ObjectMeta {
        size: size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        last_modified: modified.and_then(|t| SystemTime::try_from(*t).ok()),
        archived: archived(
            class,
            restore.and_then(|r| r.is_restore_in_progress()),
            restore.is_some_and(|r| r.restore_expiry_date().is_some()),
        ),
        ..ObjectMeta::default()
    }
}

/// The sub-prefixes of a delimited page, decoded as its keys are.
fn decoded_prefixes(
    prefixes: Option<Vec<aws_sdk_s3::types::CommonPrefix>>,
    decode: impl Fn(String) -> Result<String, Error>,
) -> Result<Vec<String>, Error> {
    prefixes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.prefix)
        .map(decode)
        .collect()
}

/// A version listing's position as one token: `<length of the version
/// marker>:<version marker><key marker>` (either may hold any character).
fn version_token(key: &str, version: Option<&str>) -> String {
    let version = version.unwrap_or_default();
    format!("{}:{version}{key}", version.len())
}

/// The key marker and version marker (if any) of a [`version_token`].
fn split_version_token(token: &str) -> Option<(&str, Option<&str>)> {
    let (len, rest) = token.split_once(':')?;
    let len: usize = len.parse().ok()?;
    let version = rest.get(..len)?;
    let key = rest.get(len..)?;
    Some((key, (!version.is_empty()).then_some(version)))
}

/// [`decode_listed_key`], keeping the listed string when there is nothing to decode.
fn decode_listed(raw: String) -> Result<String, Error> {
    if raw.bytes().any(|b| b == b'+' || b == b'%') {
        decode_listed_key(&raw)
    } else {
        Ok(raw)
    }
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

/// Whether a plain GET cannot read an object of this storage class: `GLACIER` and
/// `DEEP_ARCHIVE` until restored (a restore finished has an expiry date and is not
/// in progress). `GLACIER_IR`, the infrequent-access classes and intelligent
/// tiering's frequent tiers are read at once.
pub(crate) fn archived(class: Option<&str>, restore_in_progress: Option<bool>, restored_until: bool) -> bool {
    matches!(class, Some("GLACIER" | "DEEP_ARCHIVE")) && (restore_in_progress == Some(true) || !restored_until)
}

impl S3Store {
    /// GetObject into a local file, streamed: an inventory's data files can be large.
    ///
    /// The SDK retries the request; a body cut short, or of another length than
    /// `expected`, is fetched again under the shared retry policy (the file is
    /// written anew each attempt), so a fault mid-answer costs a retry, not the run.
    pub(crate) async fn get_file(&self, key: &str, to: &std::path::Path, expected: Option<u64>) -> Result<u64, Error> {
        use refgen_http::Attempt;
        use tokio::io::AsyncWriteExt;
        let doing = format!("reading s3://{}/{key}", self.bucket);
        let started = std::time::Instant::now();
        let local = |e: std::io::Error| {
            Attempt::Fail(Error::storage(
                PROVIDER,
                StorageErrorKind::Other,
                format!("{doing} failed: cannot write {}: {e}", to.display()),
            ))
        };
        let cut = |reason: String| Attempt::Retry {
            error: Error::storage(
                PROVIDER,
                StorageErrorKind::Unreachable,
                format!("{doing} failed: {reason}"),
            ),
            after: None,
            reason,
        };
        let result = self
            .retry
            .retry(&doing, |_| async {
                let out = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_request_payer(self.request_payer.clone())
                    .send()
                    .await
                    .map_err(|e| Attempt::Fail(self.sdk_error(&e, &doing, started)))?;
                let mut file = tokio::fs::File::create(to).await.map_err(local)?;
                let mut body = out.body;
                let mut written = 0u64;
                loop {
                    match body.try_next().await {
                        Ok(Some(chunk)) => {
                            file.write_all(&chunk).await.map_err(local)?;
                            written += chunk.len() as u64;
                        }
                        Ok(None) => break,
                        Err(e) => return Err(cut(format!("the answer was cut short ({e})"))),
                    }
                }
                file.flush().await.map_err(local)?;
                match expected {
                    Some(want) if want != written => {
                        Err(cut(format!("the answer held {written} bytes, not the {want} expected")))
                    }
                    _ => Ok(written),
                }
            })
            .await;
        result.map_err(|exhausted| {
            exhausted
                .error
                .with_note(&refgen_http::retry_note(exhausted.attempts, exhausted.elapsed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tokens_hold_both_markers_whatever_they_contain() {
        for (key, version) in [
            ("a.jpg", Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY/MTRCxf")),
            ("12:odd:key", Some("v")),
            ("", None),
            ("weird 1:2", None),
        ] {
            let token = version_token(key, version);
            assert_eq!(split_version_token(&token), Some((key, version)), "{token}");
        }
        assert_eq!(split_version_token("x"), None);
        assert_eq!(split_version_token("9:short"), None);
    }

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
        assert_eq!(
            decode_listed("plain/key.jpg".into()).ok().as_deref(),
            Some("plain/key.jpg")
        );
        assert_eq!(decode_listed("a+b%2B.jpg".into()).ok().as_deref(), Some("a b+.jpg"));
        assert!(decode_listed("bad%FF".into()).is_err());
    }

    #[test]
    fn archive_classes_are_unreadable_until_restored() {
        for class in ["GLACIER", "DEEP_ARCHIVE"] {
            assert!(archived(Some(class), None, false), "{class}");
            assert!(archived(Some(class), Some(true), false), "{class} being restored");
            assert!(
                archived(Some(class), Some(true), true),
                "{class} restored before, again in progress"
            );
            assert!(!archived(Some(class), Some(false), true), "{class} restored");
        }
        for class in [
            "STANDARD",
            "GLACIER_IR",
            "STANDARD_IA",
            "INTELLIGENT_TIERING",
            "ONEZONE_IA",
            "REDUCED_REDUNDANCY",
        ] {
            assert!(!archived(Some(class), None, false), "{class} is read at once");
        }
        assert!(!archived(None, None, false));
    }
}
