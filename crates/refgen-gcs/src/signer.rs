//! Google Cloud Storage V4 signing (GOOG4-RSA-SHA256 and GOOG4-HMAC-SHA256).
//!
//! One canonical-request builder serves both algorithms and every URL style of
//! Google's conformance suite; the signature itself comes from a [`BlobSigner`]:
//! an RSA key parsed once, HMAC keys, or (see `sign_blob.rs`) the IAM Credentials
//! API. Checked against all `signingV4Tests` of Google's conformance file.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use aws_lc_rs::{digest, hmac, rand, signature};
use refgen_core::encoding;

/// The longest lifetime V4 allows for a signed URL.
pub const MAX_SIGNED_URL_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where the bucket goes in the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlStyle {
    /// `https://host/bucket/object`.
    Path,
    /// `https://bucket.host/object`.
    VirtualHosted,
    /// `https://cname/object`: a domain bound to the bucket.
    BucketBound(String),
}

/// The endpoint signed URLs point at: scheme and host (with an optional port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` or `http`.
    pub scheme: String,
    /// Host name and optional `:port`, as the URL carries it.
    pub authority: String,
}

impl Endpoint {
    /// The public endpoint, `https://storage.googleapis.com`.
    pub fn google() -> Self {
        Endpoint::parse("https://storage.googleapis.com", "https")
    }

    /// Reads `scheme://host[:port]` or a bare `host[:port]` (then `default_scheme`).
    pub fn parse(text: &str, default_scheme: &str) -> Self {
        let (scheme, rest) = match text.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => (default_scheme.to_owned(), text),
        };
        let authority = rest.split('/').next().unwrap_or_default().to_owned();
        Endpoint { scheme, authority }
    }

    /// The host without its port: what the `host` header is signed as (Google's
    /// libraries and conformance cases drop the port, `localhost:8080` → `localhost`).
    fn host(&self) -> &str {
        if self.authority.starts_with('[') {
            // An IPv6 literal: `[::1]` or `[::1]:8080`.
            return self
                .authority
                .find(']')
                .map_or(&self.authority, |i| &self.authority[..=i]);
        }
        match self.authority.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => &self.authority,
        }
    }
}

/// Produces signatures over a string to sign.
pub trait BlobSigner: Send + Sync {
    /// `GOOG4-RSA-SHA256` or `GOOG4-HMAC-SHA256`.
    fn algorithm(&self) -> &'static str;
    /// Service-account email or HMAC access id.
    fn credential_id(&self) -> &str;
    /// The raw signature bytes.
    fn sign(&self, string_to_sign: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The private key could not be read.
    #[error("the service-account private key is not a valid RSA key in PKCS#8 PEM: {0}")]
    BadKey(String),
    /// The crypto library refused to sign.
    #[error("RSA signing failed")]
    Rsa,
}

/// A service account's RSA key, parsed once and used for every URL.
pub struct RsaSigner {
    email: String,
    key: signature::RsaKeyPair,
    rng: rand::SystemRandom,
}

impl std::fmt::Debug for RsaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaSigner")
            .field("email", &self.email)
            .field("key", &"** redacted **")
            .finish()
    }
}

impl RsaSigner {
    /// From the `client_email` and `private_key` (PEM, PKCS#8) of a key file.
    pub fn from_pem(email: impl Into<String>, pem: &str) -> Result<Self, SignError> {
        let der = pem_body(pem, "PRIVATE KEY").ok_or_else(|| SignError::BadKey("no PRIVATE KEY block".into()))?;
        let key = signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| SignError::BadKey(e.to_string()))?;
        Ok(RsaSigner {
            email: email.into(),
            key,
            rng: rand::SystemRandom::new(),
        })
    }
}

impl BlobSigner for RsaSigner {
    fn algorithm(&self) -> &'static str {
        "GOOG4-RSA-SHA256"
    }
    fn credential_id(&self) -> &str {
        &self.email
    }
    fn sign(&self, string_to_sign: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&signature::RSA_PKCS1_SHA256, &self.rng, string_to_sign, &mut sig)
            .map_err(|_| SignError::Rsa)?;
        Ok(sig)
    }
}

/// HMAC keys (an access id and secret made for a service account).
pub struct HmacSigner {
    access_id: String,
    secret: String,
    /// The signing key of the last date used: derivation costs four HMACs.
    cached: std::sync::Mutex<Option<(String, hmac::Key)>>,
}

impl std::fmt::Debug for HmacSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacSigner")
            .field("access_id", &self.access_id)
            .field("secret", &"** redacted **")
            .finish()
    }
}

impl HmacSigner {
    /// From an HMAC key's access id and secret.
    pub fn new(access_id: impl Into<String>, secret: impl Into<String>) -> Self {
        HmacSigner {
            access_id: access_id.into(),
            secret: secret.into(),
            cached: std::sync::Mutex::new(None),
        }
    }

    fn signing_key(&self, date: &str) -> hmac::Key {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((d, key)) = cached.as_ref()
            && d == date
        {
            return key.clone();
        }
        let mut key = hmac::Key::new(hmac::HMAC_SHA256, format!("GOOG4{}", self.secret).as_bytes());
        for part in [date, "auto", "storage", "goog4_request"] {
            let tag = hmac::sign(&key, part.as_bytes());
            key = hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref());
        }
        *cached = Some((date.to_owned(), key.clone()));
        key
    }
}

impl BlobSigner for HmacSigner {
    fn algorithm(&self) -> &'static str {
        "GOOG4-HMAC-SHA256"
    }
    fn credential_id(&self) -> &str {
        &self.access_id
    }
    fn sign(&self, string_to_sign: &[u8]) -> Result<Vec<u8>, SignError> {
        // The date is the second line of the string to sign, first 8 characters.
        let text = std::str::from_utf8(string_to_sign).unwrap_or_default();
        let date = text.lines().nth(1).and_then(|l| l.get(..8)).unwrap_or_default();
        Ok(hmac::sign(&self.signing_key(date), string_to_sign).as_ref().to_vec())
    }
}

/// Everything that describes one signed request.
#[derive(Debug, Clone)]
pub struct V4Request<'a> {
    /// HTTP method (`GET`).
    pub method: &'a str,
    /// Bucket name.
    pub bucket: &'a str,
    /// Object name; `None` for the bucket itself.
    pub object: Option<&'a str>,
    /// Extra headers the holder of the URL must send (signed).
    pub headers: &'a [(String, String)],
    /// Extra query parameters (signed).
    pub query: &'a [(String, String)],
    /// Scheme and host of the URL.
    pub endpoint: &'a Endpoint,
    /// Where the bucket goes.
    pub style: &'a UrlStyle,
    /// Signing time.
    pub at: SystemTime,
    /// Lifetime.
    pub expires_in: Duration,
}

/// The pieces of a signed URL before the signature is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The URL without `&X-Goog-Signature=…`.
    pub unsigned_url: String,
}

impl Prepared {
    /// The final URL for a signature.
    pub fn url_with(&self, signature: &[u8]) -> String {
        let mut url = String::with_capacity(self.unsigned_url.len() + 20 + signature.len() * 2);
        url.push_str(&self.unsigned_url);
        url.push_str("&X-Goog-Signature=");
        push_hex(&mut url, signature);
        url
    }
}

/// Builds the canonical request, the string to sign and the unsigned URL.
pub fn prepare(req: &V4Request<'_>, algorithm: &str, credential_id: &str) -> Prepared {
    let at = time::OffsetDateTime::from(req.at);
    let date = format!("{:04}{:02}{:02}", at.year(), u8::from(at.month()), at.day());
    let timestamp = format!("{date}T{:02}{:02}{:02}Z", at.hour(), at.minute(), at.second());
    let scope = format!("{date}/auto/storage/goog4_request");

    let (scheme, authority, path) = match req.style {
        UrlStyle::Path => (
            req.endpoint.scheme.as_str(),
            req.endpoint.authority.clone(),
            match req.object {
                Some(o) => format!("/{}/{}", req.bucket, encoding::path(o)),
                None => format!("/{}", req.bucket),
            },
        ),
        UrlStyle::VirtualHosted => (
            req.endpoint.scheme.as_str(),
            format!("{}.{}", req.bucket, req.endpoint.authority),
            format!(
                "/{}",
                req.object.map(|o| encoding::path(o).to_string()).unwrap_or_default()
            ),
        ),
        UrlStyle::BucketBound(host) => (
            req.endpoint.scheme.as_str(),
            host.clone(),
            format!(
                "/{}",
                req.object.map(|o| encoding::path(o).to_string()).unwrap_or_default()
            ),
        ),
    };
    let host = Endpoint {
        scheme: scheme.to_owned(),
        authority: authority.clone(),
    }
    .host()
    .to_owned();

    // Canonical headers: lower-case names, values trimmed with inner runs of
    // whitespace collapsed, sorted by name; `host` always signed.
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.push(("host".into(), host));
    headers.sort();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");

    let mut query: Vec<(String, String)> = vec![
        ("X-Goog-Algorithm".into(), algorithm.into()),
        ("X-Goog-Credential".into(), format!("{credential_id}/{scope}")),
        ("X-Goog-Date".into(), timestamp.clone()),
        ("X-Goog-Expires".into(), req.expires_in.as_secs().to_string()),
        ("X-Goog-SignedHeaders".into(), signed_headers.clone()),
    ];
    query.extend(req.query.iter().cloned());
    let mut encoded: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encoding::query(k).to_string(), encoding::query(v).to_string()))
        .collect();
    encoded.sort();
    let query_string = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");

    let mut canonical_request = format!("{}\n{path}\n{query_string}\n", req.method);
    for (k, v) in &headers {
        let _ = writeln!(canonical_request, "{k}:{v}");
    }
    let _ = write!(canonical_request, "\n{signed_headers}\n");
    let payload = headers
        .iter()
        .find(|(k, _)| k == "x-goog-content-sha256")
        .map_or("UNSIGNED-PAYLOAD", |(_, v)| v.as_str());
    canonical_request.push_str(payload);

    let mut string_to_sign = format!("{algorithm}\n{timestamp}\n{scope}\n");
    push_hex(
        &mut string_to_sign,
        digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref(),
    );
    Prepared {
        canonical_request,
        string_to_sign,
        unsigned_url: format!("{scheme}://{authority}{path}?{query_string}"),
    }
}

/// Signs one URL with a local signer.
pub fn sign_url(req: &V4Request<'_>, signer: &dyn BlobSigner) -> Result<String, SignError> {
    let prepared = prepare(req, signer.algorithm(), signer.credential_id());
    let signature = signer.sign(prepared.string_to_sign.as_bytes())?;
    Ok(prepared.url_with(&signature))
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
}

/// The DER bytes of the first PEM block with this label.
fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// When a V4 URL this signer made starts and stops being valid, read from its
/// query (`X-Goog-Date` + `X-Goog-Expires`); `None` for any other query.
pub fn validity(query: &[(String, String)]) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
    use refgen_core::expiry::{dated_validity, query_value};
    dated_validity(
        query_value(query, "X-Goog-Date")?,
        query_value(query, "X-Goog-Expires")?,
    )
}
