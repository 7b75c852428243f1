//! SigV4 query-string presigning of GetObject URLs, written for speed.
//!
//! Why not the SDK's `presigned()`: it runs the whole request pipeline per URL
//! (interceptors, endpoint resolution, identity lookup), about 45 µs per URL on
//! aws-sdk-s3 1.157, while a references file for a large bucket needs millions of
//! URLs. Everything that is the same for every URL of a run is derived once here:
//! the endpoint base and host (resolved by the SDK's own endpoint rules, see
//! `builder.rs`), the credential scope, the query prefix, and the day's signing key.
//! Per URL only the key is percent-encoded and two SHA-256 passes are made.
//!
//! Correctness is pinned by `tests/vectors.rs` (botocore's answers and the AWS
//! documentation example, every case) and by a comparison with the SDK's own
//! presigner on random keys.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use aws_lc_rs::{digest, hmac};
use refgen_core::encoding;

/// The longest lifetime SigV4 allows for a presigned URL.
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Credentials used to sign. The secret and token never appear in `Debug` output.
#[derive(Clone)]
pub struct SigningCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl SigningCredentials {
    /// Access key id, secret key and optional session token.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        let secret_access_key = secret_access_key.into();
        // Known to the redaction step, so that a store echoing them is never shown.
        refgen_core::redact::register(&secret_access_key);
        if let Some(token) = &session_token {
            refgen_core::redact::register(token);
        }
        SigningCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token,
        }
    }
}

impl std::fmt::Debug for SigningCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &self.session_token.as_ref().map(|_| "** redacted **"))
            .finish()
    }
}

/// Signs GET URLs for the objects of one bucket.
#[derive(Clone)]
pub struct SigV4Presigner {
    /// Scheme, host and, for path-style, `/bucket`; no trailing slash.
    base_url: String,
    /// The path part of `base_url` (`/bucket` for path style, empty otherwise).
    base_path: String,
    host: String,
    region: String,
    /// The signature's service name: `s3`, or `s3express` for a directory bucket.
    service: String,
    credentials: SigningCredentials,
    /// `x-amz-request-payer=requester` in every URL's signed query.
    request_payer: bool,
}

impl std::fmt::Debug for SigV4Presigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4Presigner")
            .field("base_url", &self.base_url)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("credentials", &self.credentials)
            .field("request_payer", &self.request_payer)
            .finish()
    }
}

/// The values shared by every URL signed at one instant: derive once, sign many.
pub struct SigningBatch<'a> {
    presigner: &'a SigV4Presigner,
    key: hmac::Key,
    /// `X-Amz-Algorithm=…&…&X-Amz-SignedHeaders=host`, sorted as SigV4 requires.
    query: String,
    /// `\n<query>\nhost:<host>\n\nhost\nUNSIGNED-PAYLOAD`.
    canonical_tail: String,
    /// The query up to `X-Amz-SignedHeaders=host`, and what follows it: a
    /// `versionId` sorts between the two.
    query_head: String,
    query_rest: String,
    /// `\nhost:<host>\n\nhost\nUNSIGNED-PAYLOAD`.
    headers_tail: String,
    /// `AWS4-HMAC-SHA256\n<amz date>\n<scope>\n`.
    string_to_sign_head: String,
}

impl SigV4Presigner {
    /// `endpoint` is the bucket's base URL: `https://bucket.s3.region.amazonaws.com`
    /// (virtual-hosted) or `http://host:port/bucket` (path style).
    pub fn new(endpoint: &url::Url, region: impl Into<String>, credentials: SigningCredentials) -> Self {
        let base_path = endpoint.path().trim_end_matches('/').to_owned();
        let host = match endpoint.port() {
            Some(port) => format!("{}:{port}", endpoint.host_str().unwrap_or_default()),
            None => endpoint.host_str().unwrap_or_default().to_owned(),
        };
        let base_url = format!("{}://{host}{base_path}", endpoint.scheme());
        SigV4Presigner {
            base_url,
            base_path,
            host,
            region: region.into(),
            service: "s3".to_owned(),
            credentials,
            request_payer: false,
        }
    }

    /// Signs for this service name instead of `s3` (`s3express` for an S3
    /// Express One Zone directory bucket, as the endpoint rules say).
    pub fn with_service(mut self, service: &str) -> Self {
        self.service = service.to_owned();
        self
    }

    /// Signs `x-amz-request-payer=requester` into every URL's query, for a
    /// requester-pays bucket: the reader is charged for the GET, and S3 refuses
    /// it without. In the query, not as a signed header (as botocore's
    /// `RequestPayer` parameter would have it), so that a plain GET carries it.
    pub fn with_request_payer(mut self) -> Self {
        self.request_payer = true;
        self
    }

    /// Replaces the credentials (after temporary ones were renewed).
    pub fn set_credentials(&mut self, credentials: SigningCredentials) {
        self.credentials = credentials;
    }

    /// Prepares signing for URLs dated `at` that stay valid for `expires_in`.
    pub fn batch(&self, at: SystemTime, expires_in: Duration) -> SigningBatch<'_> {
        let at = time::OffsetDateTime::from(at);
        let date = format!("{:04}{:02}{:02}", at.year(), u8::from(at.month()), at.day());
        let amz_date = format!("{date}T{:02}{:02}{:02}Z", at.hour(), at.minute(), at.second());
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let key = signing_key(&self.credentials.secret_access_key, &date, &self.region, &self.service);
        let mut query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}%2F{}&X-Amz-Date={amz_date}&X-Amz-Expires={}",
            encoding::query(&self.credentials.access_key_id),
            encoding::query(&scope),
            expires_in.as_secs()
        );
        if let Some(token) = &self.credentials.session_token {
            let _ = write!(query, "&X-Amz-Security-Token={}", encoding::query(token));
        }
        query.push_str("&X-Amz-SignedHeaders=host");
        let query_head = query.clone();
        // Sorted after the `X-Amz-` names: lower case sorts after upper.
        let query_rest = if self.request_payer {
            "&x-amz-request-payer=requester".to_owned()
        } else {
            String::new()
        };
        query.push_str(&query_rest);
        let headers_tail = format!("\nhost:{}\n\nhost\nUNSIGNED-PAYLOAD", self.host);
        let canonical_tail = format!("\n{query}{headers_tail}");
        SigningBatch {
            presigner: self,
            key,
            query,
            canonical_tail,
            query_head,
            query_rest,
            headers_tail,
            string_to_sign_head: format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"),
        }
    }

    /// Signs one URL (convenience over [`SigV4Presigner::batch`]).
    pub fn presign(&self, key: &str, at: SystemTime, expires_in: Duration) -> String {
        self.batch(at, expires_in).presign(key)
    }
}

impl SigningBatch<'_> {
    /// The presigned GET URL of `key`.
    pub fn presign(&self, key: &str) -> String {
        self.presign_with(key, &mut Scratch::default())
    }

    /// [`SigningBatch::presign`] reusing `scratch`'s buffers from one URL to the
    /// next (a page signs a thousand; three allocations per URL were a tenth of
    /// the signing time).
    pub fn presign_with(&self, key: &str, scratch: &mut Scratch) -> String {
        self.presign_version_with(key, None, scratch)
    }

    /// [`SigningBatch::presign_with`] for one version of `key` (`versionId` in the
    /// signed query), or for whatever the key holds when `version` is `None`.
    pub fn presign_version_with(&self, key: &str, version: Option<&str>, scratch: &mut Scratch) -> String {
        let Scratch {
            encoded_key,
            canonical,
            string_to_sign,
            query,
        } = scratch;
        // The version's query, sorted after `X-Amz-SignedHeaders` (`v` > `X`)
        // and before `x-amz-request-payer` (`v` < `x`).
        let query: &str = match version {
            None => &self.query,
            Some(version) => {
                query.clear();
                query.push_str(&self.query_head);
                query.push_str("&versionId=");
                encoding::query(version).for_each(|piece| query.push_str(piece));
                query.push_str(&self.query_rest);
                query
            }
        };
        encoded_key.clear();
        // Piece by piece: the encoder hands out runs of unencoded text.
        encoding::path(key).for_each(|piece| encoded_key.push_str(piece));
        canonical.clear();
        canonical.push_str("GET\n");
        canonical.push_str(&self.presigner.base_path);
        canonical.push('/');
        canonical.push_str(encoded_key);
        if version.is_none() {
            canonical.push_str(&self.canonical_tail);
        } else {
            canonical.push('\n');
            canonical.push_str(query);
            canonical.push_str(&self.headers_tail);
        }
        let canonical_hash = digest::digest(&digest::SHA256, canonical.as_bytes());

        string_to_sign.clear();
        string_to_sign.push_str(&self.string_to_sign_head);
        push_hex(string_to_sign, canonical_hash.as_ref());
        let signature = hmac::sign(&self.key, string_to_sign.as_bytes());

        let mut url = String::with_capacity(self.presigner.base_url.len() + encoded_key.len() + query.len() + 100);
        url.push_str(&self.presigner.base_url);
        url.push('/');
        url.push_str(encoded_key);
        url.push('?');
        url.push_str(query);
        url.push_str("&X-Amz-Signature=");
        push_hex(&mut url, signature.as_ref());
        url
    }
}

/// Buffers one signer reuses from one URL to the next.
#[derive(Debug, Default)]
pub struct Scratch {
    encoded_key: String,
    canonical: String,
    string_to_sign: String,
    query: String,
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut key = hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes());
    for part in [date, region, service, "aws4_request"] {
        let tag = hmac::sign(&key, part.as_bytes());
        key = hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref());
    }
    key
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 64];
    for (pair, b) in hex.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
    // Hex digits are ASCII: the check cannot fail.
    out.push_str(std::str::from_utf8(&hex[..2 * bytes.len().min(32)]).unwrap_or_default());
}

/// When a URL this signer made (or a V2 presigned URL) starts and stops being
/// valid, read from its query: `X-Amz-Date` + `X-Amz-Expires`, or V2's
/// `Expires` (epoch seconds). `None` when the query is not one of these.
pub fn validity(query: &[(String, String)]) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
    use refgen_core::expiry::{dated_validity, query_value};
    if let (Some(date), Some(secs)) = (query_value(query, "X-Amz-Date"), query_value(query, "X-Amz-Expires")) {
        return dated_validity(date, secs);
    }
    let end = std::time::UNIX_EPOCH + Duration::from_secs(query_value(query, "Expires")?.parse().ok()?);
    Some((std::time::UNIX_EPOCH, end))
}
