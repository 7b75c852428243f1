//! Checking a references file before a batch is spent on it.
//!
//! Every line is checked without a request: that it parses, that its name is
//! unique and has an extension Roboflow takes, that its URL is https (plain http
//! only on a loopback test server), and, from the signature's own parameters
//! (`X-Amz-Date`/`X-Amz-Expires`, `X-Goog-Date`/`X-Goog-Expires`, Azure SAS
//! `st`/`se`, V2 `Expires`), that it is valid now and still will be after
//! `min_valid` (less ten minutes, so a file signed for 24 h just now passes a
//! 24 h check). Then a sample of the URLs (or all of them) is fetched with a
//! one-byte ranged GET, a few at once, through the shared transport (so a
//! throttled or flaky server is retried, not reported): the answer tells a
//! missing object, a refused or expired signature, and the object's size.
//!
//! The sample is the `n` names with the smallest hash (xxh3), so it is spread
//! over the file, the same on every run, and kept in a bounded heap while the
//! file streams by. Names are kept (to find repeats), nothing else.

use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use futures::stream::{self, StreamExt};
use refgen_core::filter::MediaPreset;
use refgen_core::size::ROBOFLOW_IMAGE_LIMIT;
use refgen_http::{Reject, RetryConfig, SendError, Transport};
use refgen_roboflow::MediaKind;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::store::validity;
use crate::submit::fetchable;

/// The batch's processing window: URLs should stay valid this long (`--min-valid`'s default).
pub const PROCESSING_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Names kept per problem in a report (the count is always whole).
pub const NAMES_KEPT: usize = 100;

/// Clock difference tolerated between this machine and a store, as the stores do.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// How much shorter than `min_valid` a URL may still be valid: a file signed for
/// 24 h a few minutes ago passes the default 24 h check, one signed hours ago does not.
pub const MIN_VALID_GRACE: Duration = Duration::from_secs(600);

/// What is wrong with a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// A line that is not `{"name", "url"}`.
    BadLine,
    /// A URL holding a line break or another control character: no HTTP client
    /// sends it as it is.
    BadUrl,
    /// A name used on an earlier line.
    DuplicateName,
    /// A name whose extension is not among Roboflow's images (or videos).
    BadExtension,
    /// A plain `http://` URL (Roboflow fetches https only).
    PlainHttp,
    /// The URL's signature has expired.
    Expired,
    /// The URL's signature is not valid yet.
    NotYetValid,
    /// The URL expires before `min_valid` has passed.
    ExpiresSoon,
    /// The store refused the signature.
    SignatureRefused,
    /// The object is encrypted with a key its reader must send (S3 SSE-C, a GCS
    /// customer-supplied key, Azure's customer-provided key): no URL can carry
    /// it, so no plain GET reads the object.
    CustomerKey,
    /// The object is encrypted with a KMS key the URL's signer may not use.
    KmsDenied,
    /// The store has no such object.
    Missing,
    /// The object is larger than Roboflow takes for an image (20 MiB).
    TooLarge,
    /// The store could not be reached, or answered another error, after retries.
    Unreachable,
}

impl Problem {
    /// The kebab-case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::BadLine => "bad-line",
            Problem::BadUrl => "bad-url",
            Problem::DuplicateName => "duplicate-name",
            Problem::BadExtension => "bad-extension",
            Problem::PlainHttp => "plain-http",
            Problem::Expired => "expired",
            Problem::NotYetValid => "not-yet-valid",
            Problem::ExpiresSoon => "expires-soon",
            Problem::SignatureRefused => "signature-refused",
            Problem::CustomerKey => "customer-key",
            Problem::KmsDenied => "kms-denied",
            Problem::Missing => "missing",
            Problem::TooLarge => "too-large",
            Problem::Unreachable => "unreachable",
        }
    }
}

/// What a store's refusal of a ranged GET says about the URL, from its status and
/// its error text (codes and messages as S3, GCS and Azure word them).
fn refused(status: u16, text: &str) -> Problem {
    let text = text.to_ascii_lowercase();
    let says = |words: &[&str]| words.iter().any(|w| text.contains(w));
    match status {
        404 => Problem::Missing,
        // S3: 400 InvalidRequest "…stored using a form of Server Side Encryption. The
        // correct parameters must be provided…"; GCS: 400
        // ResourceIsEncryptedWithCustomerEncryptionKey; Azure: 409
        // BlobUsesCustomerSpecifiedEncryption.
        400 | 403 | 409
            if says(&[
                "server side encryption",
                "server-side encryption",
                "customer encryption key",
                "customer-supplied encryption key",
                "customerspecifiedencryption",
                "customer specified encryption",
                "sse-c",
            ]) =>
        {
            Problem::CustomerKey
        }
        // S3 with SSE-KMS: 403 AccessDenied naming `kms:Decrypt`, or a `KMS.…` code.
        400 | 403 if says(&["kms:decrypt", "kms."]) => Problem::KmsDenied,
        400 | 401 | 403 if says(&["expired", "expiry"]) => Problem::Expired,
        400 | 401 | 403 if says(&["not yet valid", "not valid yet"]) => Problem::NotYetValid,
        400 | 401 | 403 => Problem::SignatureRefused,
        _ => Problem::Unreachable,
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a references file is verified.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// URLs to fetch: a sample of this many, or every one when `None`.
    pub sample: Option<usize>,
    /// URLs must stay valid at least this long from now.
    pub min_valid: Duration,
    /// Requests at once.
    pub concurrency: usize,
    /// Images or videos (decides the extensions and the size limit); when
    /// `None`, either list's extensions pass and sizes are checked for image names.
    pub kind: Option<MediaKind>,
    /// Timeouts and retries of the requests.
    pub retry: RetryConfig,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            sample: Some(100),
            min_valid: PROCESSING_WINDOW,
            concurrency: 16,
            kind: None,
            retry: RetryConfig::default(),
        }
    }
}

/// One kind of problem: how many references have it, and (the first) which.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Found {
    /// References with this problem.
    pub count: u64,
    /// Their names (at most [`NAMES_KEPT`]; a bad line is named `line N`).
    pub names: Vec<String>,
}

/// What verifying found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    /// References in the file.
    pub references: u64,
    /// URLs fetched.
    pub fetched: u64,
    /// Problems by kind; empty when all is well.
    pub problems: BTreeMap<Problem, Found>,
    /// When the first URL of the file stops working (RFC 3339), read from the
    /// signatures (SigV4, GCS V4, SAS); none when no URL says.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Whether nothing was found.
    pub ok: bool,
}

impl Report {
    fn add(&mut self, problem: Problem, name: &str) {
        let found = self.problems.entry(problem).or_default();
        found.count += 1;
        if found.names.len() < NAMES_KEPT {
            found.names.push(name.to_owned());
        }
    }

    /// References with at least one problem, counted once per problem.
    pub fn problem_count(&self) -> u64 {
        self.problems.values().map(|f| f.count).sum()
    }

    /// `2 missing, 1 expired`: the problems in one phrase.
    pub fn describe(&self) -> String {
        self.problems
            .iter()
            .map(|(p, f)| format!("{} {}", f.count, p.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A line kept for fetching.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Sampled {
    hash: u64,
    name: String,
    url: String,
}

/// Verifies the references file at `path` (see the module doc).
///
/// ```no_run
/// use refgen::verify::VerifyOptions;
///
/// # async fn go() -> Result<(), refgen::Error> {
/// let report = refgen::verify::verify("refs.jsonl".as_ref(), &VerifyOptions::default()).await?;
/// if !report.ok {
///     eprintln!("{}", report.describe());
/// }
/// # Ok(())
/// # }
/// ```
pub async fn verify(path: &Path, options: &VerifyOptions) -> Result<Report, Error> {
    let now = SystemTime::now();
    let mut report = Report::default();
    let mut names = HashSet::new();
    let transport = Transport::new(options.retry).map_err(|e| Error::HttpClient(e.to_string()))?;
    // With --all, URLs are fetched a batch at a time as the file is read, so memory
    // does not grow with the file (only the names do, for the repeats).
    let mut batch = Vec::new();
    let mut sample: BinaryHeap<Sampled> = BinaryHeap::new();
    let mut first_end: Option<SystemTime> = None;
    for line in crate::references::lines(path)? {
        let line = line?;
        report.references += 1;
        let Ok(r) = line.reference(path) else {
            report.add(Problem::BadLine, &format!("line {}", line.number));
            continue;
        };
        if !names.insert(r.name.clone()) {
            report.add(Problem::DuplicateName, &r.name);
        }
        let extension_ok = match options.kind {
            Some(MediaKind::Images) => MediaPreset::Images.matches(&r.name),
            Some(MediaKind::Videos) => MediaPreset::Videos.matches(&r.name),
            None => MediaPreset::Images.matches(&r.name) || MediaPreset::Videos.matches(&r.name),
        };
        if !extension_ok {
            report.add(Problem::BadExtension, &r.name);
        }
        let mut fetch = true;
        if r.url.chars().any(char::is_control) {
            report.add(Problem::BadUrl, &r.name);
            continue;
        }
        if fetchable(&r.url).is_err() {
            report.add(Problem::PlainHttp, &r.name);
            // Never fetched: it may point anywhere.
            fetch = false;
        }
        let valid = validity(&r.url);
        if let Some((_, end)) = valid {
            first_end = Some(first_end.map_or(end, |first: SystemTime| first.min(end)));
        }
        match valid {
            Some((start, _)) if start > now + CLOCK_SKEW => {
                report.add(Problem::NotYetValid, &r.name);
                fetch = false;
            }
            Some((_, end)) if end <= now => {
                report.add(Problem::Expired, &r.name);
                fetch = false;
            }
            Some((_, end)) if end + MIN_VALID_GRACE < now + options.min_valid => {
                report.add(Problem::ExpiresSoon, &r.name)
            }
            _ => {}
        }
        if !fetch {
            continue;
        }
        match options.sample {
            None => {
                batch.push((r.name, r.url));
                if batch.len() >= FETCH_BATCH {
                    fetch_batch(&transport, std::mem::take(&mut batch), options, &mut report).await;
                }
            }
            Some(0) => {}
            Some(size) => {
                let hash = xxhash_rust::xxh3::xxh3_64(r.name.as_bytes());
                if sample.len() < size {
                    sample.push(Sampled {
                        hash,
                        name: r.name,
                        url: r.url,
                    });
                } else if sample.peek().is_some_and(|top| hash < top.hash) {
                    sample.pop();
                    sample.push(Sampled {
                        hash,
                        name: r.name,
                        url: r.url,
                    });
                }
            }
        }
    }
    if report.references == 0 {
        // The same rule as submit's: a file with no reference is a problem.
        return Err(Error::NoReferences { path: path.to_owned() });
    }
    if options.sample.is_some() {
        batch = sample.into_sorted_vec().into_iter().map(|s| (s.name, s.url)).collect();
    }
    fetch_batch(&transport, batch, options, &mut report).await;
    report.ok = report.problems.is_empty();
    report.expires_at = first_end.map(refgen_core::expiry::format_rfc3339);
    Ok(report)
}

/// URLs read before they are fetched with `--all`.
const FETCH_BATCH: usize = 4096;

/// Fetches `targets`, a few at once, adding what is wrong to `report`.
async fn fetch_batch(
    transport: &Transport,
    targets: Vec<(String, String)>,
    options: &VerifyOptions,
    report: &mut Report,
) {
    let checked: Vec<(String, Option<Problem>)> = stream::iter(targets)
        .map(|(name, url)| async move {
            let problem = probe(transport, &url, &name, options.kind).await;
            (name, problem)
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    for (name, problem) in checked {
        report.fetched += 1;
        if let Some(problem) = problem {
            report.add(problem, &name);
        }
    }
}

/// A one-byte ranged GET of `url`: what is wrong, if anything.
async fn probe(transport: &Transport, url: &str, name: &str, kind: Option<MediaKind>) -> Option<Problem> {
    let doing = "fetching a reference's first byte";
    let answer = transport
        .call(doing)
        .max_body(16 * 1024)
        .send(
            || async { Ok::<_, Problem>(transport.client().get(url).header("range", "bytes=0-0")) },
            |response| {
                if response.is_success() {
                    return Ok(total_size(&response.headers));
                }
                Err(Reject::Fail(refused(response.status, &response.text())))
            },
        )
        .await;
    let too_large = |size: u64| {
        let image = match kind {
            Some(MediaKind::Images) => true,
            Some(MediaKind::Videos) => false,
            None => MediaPreset::Images.matches(name),
        };
        image && size > ROBOFLOW_IMAGE_LIMIT
    };
    match answer {
        Ok(Some(size)) if too_large(size) => Some(Problem::TooLarge),
        Ok(_) => None,
        Err(SendError::Answer { error, .. }) => Some(error),
        Err(SendError::Build(_)) => Some(Problem::Unreachable),
        Err(e @ SendError::Transport { .. }) => {
            tracing::debug!("{name}: {e}");
            Some(Problem::Unreachable)
        }
    }
}

/// The object's whole size: `Content-Range: bytes 0-0/SIZE` of a ranged answer,
/// or the `Content-Length` of a whole one.
fn total_size(headers: &http::HeaderMap) -> Option<u64> {
    if let Some(range) = headers.get("content-range").and_then(|v| v.to_str().ok()) {
        return range.rsplit('/').next().and_then(|s| s.trim().parse().ok());
    }
    headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> u64 {
        t.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs()
    }

    #[test]
    fn validity_is_read_from_each_signature_scheme() {
        let s3 = "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261202T000000Z&X-Amz-Expires=3600&X-Amz-Signature=x";
        let (start, end) = validity(s3).expect("sigv4");
        assert_eq!((secs(start), secs(end)), (1_796_169_600, 1_796_169_600 + 3600));
        let gcs = "https://storage.googleapis.com/b/k?X-Goog-Date=20261202T000000Z&X-Goog-Expires=60";
        assert_eq!(secs(validity(gcs).expect("gcs").1), 1_796_169_660);
        let sas =
            "https://a.blob.core.windows.net/c/k?sv=2021-08-06&st=2026-12-02T00%3A00%3A00Z&se=2026-12-03T00:00Z&sig=x";
        let (start, end) = validity(sas).expect("sas");
        assert_eq!((secs(start), secs(end)), (1_796_169_600, 1_796_169_600 + 86_400));
        assert_eq!(
            secs(validity("https://x/k?Expires=1796169600&Signature=s").expect("v2").1),
            1_796_169_600
        );
        assert_eq!(validity("https://x/k"), None);
        // A repeated parameter: the last one counts (a start appended after the signer's own).
        let restarted = format!("{sas}&st=2026-12-04T00:00:00Z");
        assert_eq!(secs(validity(&restarted).expect("sas").0), 1_796_169_600 + 2 * 86_400);
    }

    #[test]
    fn the_size_comes_from_the_content_range() {
        let mut h = http::HeaderMap::new();
        h.insert("content-length", "1".parse().expect("value"));
        h.insert("content-range", "bytes 0-0/20971521".parse().expect("value"));
        assert_eq!(total_size(&h), Some(20_971_521));
        h.remove("content-range");
        assert_eq!(total_size(&h), Some(1));
    }

    /// The stores' own words for an object no plain GET can read.
    #[test]
    fn refusals_name_customer_keys_and_kms() {
        let cases = [
            (
                400,
                "<Error><Code>InvalidRequest</Code><Message>The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.</Message></Error>",
                Problem::CustomerKey,
            ),
            (
                400,
                r#"{"error":{"code":400,"message":"The target object is encrypted by a customer-supplied encryption key.","errors":[{"reason":"resourceIsEncryptedWithCustomerEncryptionKey"}]}}"#,
                Problem::CustomerKey,
            ),
            (
                409,
                "<Error><Code>BlobUsesCustomerSpecifiedEncryption</Code><Message>The blob is encrypted with customer specified encryption, but it was not provided in the request.</Message></Error>",
                Problem::CustomerKey,
            ),
            (
                403,
                "<Error><Code>AccessDenied</Code><Message>User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:1:key/k</Message></Error>",
                Problem::KmsDenied,
            ),
            (
                400,
                "<Error><Code>KMS.DisabledException</Code><Message>arn:aws:kms:… is disabled.</Message></Error>",
                Problem::KmsDenied,
            ),
            (
                403,
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                Problem::Expired,
            ),
            (
                403,
                "<Error><Code>SignatureDoesNotMatch</Code></Error>",
                Problem::SignatureRefused,
            ),
            (404, "", Problem::Missing),
            (409, "<Error><Code>Conflict</Code></Error>", Problem::Unreachable),
        ];
        for (status, text, want) in cases {
            assert_eq!(refused(status, text), want, "{status} {text}");
        }
    }
}
