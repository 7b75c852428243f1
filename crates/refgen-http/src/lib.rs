//! The one HTTP transport under every request refgen writes by hand (the GCS JSON
//! API, Azure Blob REST, IAM signBlob, the Roboflow API and its downloads,
//! `verify`'s probes, `webhook-check`'s POSTs), with the pieces that go
//! with it: [`TokenCache`] (one OAuth token per store, renewed before it expires)
//! and [`whole_xml`] (is a listing page one whole document?). S3 requests go
//! through aws-sdk-s3, which `refgen-s3` configures to the same rules.
//!
//! A request goes out as *attempts*. Each attempt has a connect timeout and an
//! overall timeout that covers reading the **whole** body: a request answers only
//! once its body has arrived in full, so a stalled or cut answer is a failed
//! attempt, never a short result. After the status, the caller's `parse` sees the
//! whole body and may still say "retry" (a page that does not parse whole, say).
//! Two variants of "whole": [`Call::into_file`] streams a successful body to a
//! file (checked against an expected length), and [`Call::max_body`] reads a
//! probe's body only up to a limit (a ranged GET a server answers in full).
//!
//! Retried: connection failures and resets, timeouts, bodies cut short, 408, 429,
//! 500, 502, 503 and 504, and whatever `parse` marks retryable. A refused
//! connection or a host name that does not resolve is tried at most
//! [`RetryConfig::unreachable_attempts`] times (3, as the AWS SDKs' standard
//! mode): what is not listening now is rarely listening ten seconds later. Each
//! retry after the first is a warning line (what, why, attempt N of M, the wait),
//! so a run that is retrying is never silent. A 401 gets one
//! retry after the caller's `on_unauthorized` hook (which drops a cached token).
//! Retries stop at [`RetryConfig::max_attempts`] or when the next wait would pass
//! the [`RetryConfig::budget`] measured from the first attempt. Waits grow
//! exponentially with *full jitter* (a uniform draw in `[0, step]`, so many clients
//! throttled together spread out) and yield to `Retry-After` (seconds or an HTTP
//! date) and Azure's `x-ms-retry-after-ms`.
//!
//! Why these crates: reqwest is the HTTP client the provider crates already use;
//! the retry loop is [`backon`]'s (its `when`/`adjust`/`notify` hooks fit the
//! policy above, with a full-jitter [`Iterator`] of our own as the backoff, since
//! backon's jitter only adds up to one step). reqwest-retry would need
//! reqwest-middleware's client type in every crate and cannot retry on a body
//! that fails to parse, which is the fault that lost references.

mod plumbing;
mod token;
mod whole;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use bytes::Bytes;

pub use plumbing::{UploadFile, check_endpoint_url, env_var, error_chain};
pub use token::{Token, TokenCache};
pub use whole::whole_xml;

/// How hard a request is tried: attempts, time, and the waits between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts in all, the first one included (at least 1).
    pub max_attempts: u32,
    /// No retry starts once this long has passed since the first attempt.
    pub budget: Duration,
    /// The first wait's upper bound.
    pub min_backoff: Duration,
    /// The largest wait's upper bound.
    pub max_backoff: Duration,
    /// One attempt, from connecting to the last byte of the body.
    pub attempt_timeout: Duration,
    /// Opening a connection.
    pub connect_timeout: Duration,
    /// Attempts in all for a refused connection or a name that does not resolve.
    pub unreachable_attempts: u32,
}

impl Default for RetryConfig {
    /// Ten attempts within three minutes, waits from 100 ms up to 15 s (the defaults
    /// of object_store and close to the AWS SDKs' standard mode), a minute per
    /// attempt and ten seconds to connect.
    fn default() -> Self {
        RetryConfig {
            max_attempts: 10,
            budget: Duration::from_secs(180),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            attempt_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            unreachable_attempts: 3,
        }
    }
}

impl RetryConfig {
    /// With this many attempts in all.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// With this many attempts in all for a refused connection or a name that
    /// does not resolve (never more than the attempts in all).
    pub fn with_unreachable_attempts(mut self, attempts: u32) -> Self {
        self.unreachable_attempts = attempts.max(1);
        self
    }

    /// With this total time budget.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// With these bounds on the waits between attempts.
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// With this timeout for one attempt.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// With this connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    fn backoff(&self) -> FullJitter {
        let steps = ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .build();
        FullJitter(steps)
    }

    /// Runs `op` until it succeeds, fails for good, or the attempts or the budget
    /// run out: the one retry loop under every request.
    /// `op` gets the attempt's number, from 1.
    pub async fn retry<T, E, F, Fut>(&self, doing: &str, op: F) -> Result<T, Exhausted<E>>
    where
        F: Fn(u32) -> Fut,
        Fut: Future<Output = Result<T, Attempt<E>>>,
    {
        let started = Instant::now();
        let attempts = AtomicU32::new(0);
        let budget = self.budget;
        let max = self.max_attempts;
        let unreachable_max = self.unreachable_attempts.min(max);
        let result = (|| {
            let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            op(n)
        })
        .retry(self.backoff())
        .sleep(tokio::time::sleep)
        .when(|a: &Attempt<E>| {
            let made = attempts.load(Ordering::SeqCst);
            a.is_retryable()
                && started.elapsed() < budget
                && !(matches!(a, Attempt::Unreachable { .. }) && made >= unreachable_max)
        })
        .adjust(|a: &Attempt<E>, wait| {
            let left = budget.checked_sub(started.elapsed())?;
            let wait = match a {
                // The server's word beats the schedule (but not the attempt count).
                Attempt::Retry { after: Some(after), .. } => wait.map(|_| *after),
                _ => wait,
            }?;
            // A wait that would end past the budget is not worth starting.
            (wait <= left).then_some(wait)
        })
        .notify(|a: &Attempt<E>, wait| {
            let made = attempts.load(Ordering::SeqCst);
            let of = match a {
                Attempt::Unreachable { .. } => unreachable_max,
                _ => max,
            };
            // The first retry is routine under load; from the second on, say so.
            if made >= 2 {
                tracing::warn!(
                    "{doing}: attempt {made} of {of} failed ({}); retrying in {:.1}s",
                    a.reason(),
                    wait.as_secs_f64()
                );
            } else {
                tracing::debug!(
                    "{doing}: attempt {made} of {of} failed ({}); retrying in {:.1}s",
                    a.reason(),
                    wait.as_secs_f64()
                );
            }
        })
        .await;
        result.map_err(|a| Exhausted {
            error: a.into_error(),
            attempts: attempts.load(Ordering::SeqCst),
            elapsed: started.elapsed(),
        })
    }
}

/// Exponential steps with full jitter: each wait is uniform in `[0, step]`.
struct FullJitter(backon::ExponentialBackoff);

impl Iterator for FullJitter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let step = self.0.next()?;
        let nanos = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
        Some(Duration::from_nanos(rand::random_range(0..=nanos)))
    }
}

/// How one attempt ended, when it did not succeed.
#[derive(Debug)]
pub enum Attempt<E> {
    /// Worth another attempt; `after` is the server's requested wait.
    Retry {
        /// The error, reported if no attempt is left.
        error: E,
        /// `Retry-After` or `x-ms-retry-after-ms`, when sent.
        after: Option<Duration>,
        /// What went wrong, for the debug log.
        reason: String,
    },
    /// Nothing answered: the connection was refused or the host name does not
    /// resolve. Retried, but only [`RetryConfig::unreachable_attempts`] times.
    Unreachable {
        /// The error, reported if no attempt is left.
        error: E,
        /// What went wrong, for the log.
        reason: String,
    },
    /// Another attempt would fail the same way.
    Fail(E),
}

impl<E> Attempt<E> {
    fn is_retryable(&self) -> bool {
        matches!(self, Attempt::Retry { .. } | Attempt::Unreachable { .. })
    }

    fn reason(&self) -> &str {
        match self {
            Attempt::Retry { reason, .. } | Attempt::Unreachable { reason, .. } => reason,
            Attempt::Fail(_) => "final",
        }
    }

    fn into_error(self) -> E {
        match self {
            Attempt::Retry { error, .. } | Attempt::Unreachable { error, .. } | Attempt::Fail(error) => error,
        }
    }
}

/// The last error, with how many attempts were made and over how long.
#[derive(Debug)]
pub struct Exhausted<E> {
    /// The last attempt's error.
    pub error: E,
    /// Attempts made.
    pub attempts: u32,
    /// From the first attempt's start to the end.
    pub elapsed: Duration,
}

/// ` (after N attempts over T)` when more than one attempt was made: the note every
/// message about a retried request ends with.
pub fn retry_note(attempts: u32, elapsed: Duration) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts over {:.1}s)", elapsed.as_secs_f64())
    } else {
        String::new()
    }
}

/// A whole answer: status, headers and the complete body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body, read to its end.
    pub body: Bytes,
}

impl Response {
    /// The body as text to show (in a message, a log, a JSON field): lossy, and
    /// through the one redaction step ([`refgen_core::redact`]), since a server
    /// may echo the request with its signature, token or key.
    pub fn text(&self) -> String {
        refgen_core::redact::redact(&String::from_utf8_lossy(&self.body))
    }

    /// The body as text to parse, as it came (never to be shown).
    pub fn raw_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What `parse` makes of a whole answer that it does not accept.
#[derive(Debug)]
pub enum Reject<E> {
    /// The answer is not usable as it is but another attempt may be (a body that
    /// is not a whole document, say).
    Retry(E),
    /// Final: the server meant it.
    Fail(E),
}

/// Why an attempt got no whole answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The connection could not be opened (refused, no route, unknown host).
    Connect(String),
    /// No whole answer within the attempt timeout.
    Timeout(Duration),
    /// The connection broke before the answer was whole (a reset, a body cut short).
    Interrupted(String),
}

impl Fault {
    /// A refused connection or a host name that does not resolve: nothing is
    /// listening there now (a connect timeout is not this: a busy server may answer).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Fault::Connect(cause) if is_unreachable_text(cause))
    }
}

/// Whether [`describe`]'s words say a connection was refused or a name did not resolve.
pub fn is_unreachable_text(cause: &str) -> bool {
    cause.starts_with("connection refused") || cause.starts_with("cannot resolve the host name")
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Connect(cause) => write!(f, "connection failed ({cause})"),
            Fault::Timeout(after) => write!(f, "no answer within {}s", after.as_secs_f64()),
            Fault::Interrupted(cause) => write!(f, "the connection broke before the answer was whole ({cause})"),
        }
    }
}

/// A request that failed for good.
#[derive(Debug, thiserror::Error)]
pub enum SendError<E: std::fmt::Display> {
    /// The server answered, and `parse` turned the answer into this error (a final
    /// status, or a retryable one on the last attempt).
    #[error("{error}{}", retry_note(*attempts, *elapsed))]
    Answer {
        /// The caller's error.
        error: E,
        /// Attempts made.
        attempts: u32,
        /// Time taken.
        elapsed: Duration,
    },
    /// No whole answer came.
    #[error("cannot reach {endpoint}: {fault}{}", retry_note(*attempts, *elapsed))]
    Transport {
        /// Scheme, host and port of the request (no path or query: those may hold
        /// secrets).
        endpoint: String,
        /// What went wrong on the last attempt.
        fault: Fault,
        /// Attempts made.
        attempts: u32,
        /// Time taken.
        elapsed: Duration,
        /// The HTTP client's error, without its URL.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The request could not be built (a file to upload could not be opened…).
    #[error("{0}")]
    Build(E),
}

impl<E: std::fmt::Display> SendError<E> {
    /// Attempts made (0 when the request could not be built).
    pub fn attempts(&self) -> u32 {
        match self {
            SendError::Answer { attempts, .. } | SendError::Transport { attempts, .. } => *attempts,
            SendError::Build(_) => 0,
        }
    }
}

/// The HTTP client and the retry policy, shared by every request of a store.
#[derive(Debug, Clone)]
pub struct Transport {
    http: reqwest::Client,
    config: RetryConfig,
}

impl Transport {
    /// A client with the config's timeouts.
    pub fn new(config: RetryConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            // A pooled connection the server has closed fails the next request at
            // once; keep the pool short-lived so that happens rarely.
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Transport { http, config })
    }

    /// The client, for building requests.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// The retry policy.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// Starts a call described by `doing` ("listing gs://b/p"), for messages.
    pub fn call<'a>(&'a self, doing: &'a str) -> Call<'a> {
        Call {
            transport: self,
            doing,
            timeout: None,
            on_unauthorized: None,
            into_file: None,
            max_body: None,
        }
    }
}

/// One request, sent as attempts: see the module doc.
pub struct Call<'a> {
    transport: &'a Transport,
    doing: &'a str,
    timeout: Option<Duration>,
    on_unauthorized: Option<&'a (dyn Fn() + Send + Sync)>,
    /// Where a successful answer's body goes instead of memory, and its expected length.
    into_file: Option<(&'a std::path::Path, Option<u64>)>,
    /// Read at most this many bytes of a body, then stop (see [`Call::max_body`]).
    max_body: Option<usize>,
}

impl<'a> Call<'a> {
    /// A longer (or shorter) timeout per attempt than the config's, for uploads.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into().or(self.timeout);
        self
    }

    /// Streams a successful (2xx) answer's body into the file at `path` (written anew
    /// each attempt) instead of memory: `parse` then gets the status and headers
    /// with an empty body. A body that breaks off, or of another length than
    /// `expected`, is an answer that was not whole, and is tried again.
    pub fn into_file(mut self, path: &'a std::path::Path, expected: Option<u64>) -> Self {
        self.into_file = Some((path, expected));
        self
    }

    /// [`Call::into_file`] when `file` is given (a `(path, expected length)`),
    /// else the body stays in memory.
    pub fn into_file_if(mut self, file: Option<(&'a std::path::Path, Option<u64>)>) -> Self {
        if let Some(file) = file {
            self.into_file = Some(file);
        }
        self
    }

    /// Reads at most `limit` bytes of each answer's body and then stops reading it
    /// (the connection is closed), for a probe that needs the status and headers
    /// (and a short error text) but not an object a server might send whole when a
    /// range was asked for. `parse` gets the body cut at `limit`.
    pub fn max_body(mut self, limit: usize) -> Self {
        self.max_body = Some(limit);
        self
    }

    /// Called before the one retry a 401 gets: drops a cached token, so the next
    /// attempt fetches a fresh one.
    pub fn on_unauthorized(mut self, hook: &'a (dyn Fn() + Send + Sync)) -> Self {
        self.on_unauthorized = Some(hook);
        self
    }

    /// Sends the request built by `build` (called once per attempt, so a body can
    /// be opened afresh) and hands each whole answer to `parse`, which gets every
    /// status: it turns success into `T` and an error status into the caller's
    /// error (retryable statuses are retried before its error is final).
    pub async fn send<T, E, B, BFut, P>(self, build: B, parse: P) -> Result<T, SendError<E>>
    where
        E: std::fmt::Display,
        B: Fn() -> BFut,
        BFut: Future<Output = Result<reqwest::RequestBuilder, E>>,
        P: Fn(Response) -> Result<T, Reject<E>>,
    {
        let timeout = self.timeout.unwrap_or(self.transport.config.attempt_timeout);
        let reauthorized = std::sync::atomic::AtomicBool::new(false);
        // A download that ended with its connection, without a length: what it held.
        let unframed: std::sync::Mutex<Option<(u64, u64)>> = std::sync::Mutex::new(None);
        let result = self
            .transport
            .config
            .retry(self.doing, |_n| async {
                let (client, request) = build()
                    .await
                    .map_err(|e| Attempt::Fail(Failure::Build(e)))?
                    .build_split();
                let request = request.map_err(|e| {
                    Attempt::Fail(Failure::Transport(Broken {
                        fault: Fault::Interrupted(describe(&e)),
                        endpoint: None,
                        source: Some(e.without_url()),
                    }))
                })?;
                let endpoint = origin(request.url());
                let answer = whole_answer(&client, request, &endpoint, self.into_file, self.max_body, &unframed);
                let response = match tokio::time::timeout(timeout, answer).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(broken)) if broken.fault.is_unreachable() => {
                        return Err(Attempt::Unreachable {
                            reason: broken.fault.to_string(),
                            error: Failure::Transport(broken),
                        });
                    }
                    Ok(Err(broken)) => {
                        return Err(Attempt::Retry {
                            reason: broken.fault.to_string(),
                            error: Failure::Transport(broken),
                            after: None,
                        });
                    }
                    Err(_) => {
                        let fault = Fault::Timeout(timeout);
                        return Err(Attempt::Retry {
                            reason: fault.to_string(),
                            error: Failure::Transport(Broken {
                                fault,
                                endpoint: Some(endpoint),
                                source: None,
                            }),
                            after: None,
                        });
                    }
                };
                let status = response.status;
                let after = retry_after(&response.headers, SystemTime::now());
                let reauthorize =
                    status == 401 && self.on_unauthorized.is_some() && !reauthorized.swap(true, Ordering::SeqCst);
                let retryable_status = reauthorize || matches!(status, 408 | 429 | 500 | 502 | 503 | 504);
                let outcome = parse(response);
                if reauthorize
                    && outcome.is_err()
                    && let Some(hook) = self.on_unauthorized
                {
                    hook();
                }
                match outcome {
                    Ok(value) => Ok(value),
                    Err(Reject::Retry(e)) => Err(Attempt::Retry {
                        error: Failure::Answer(e),
                        after: if reauthorize { Some(Duration::ZERO) } else { after },
                        reason: if retryable_status {
                            format!("HTTP {status}")
                        } else {
                            "the answer is not whole".to_owned()
                        },
                    }),
                    Err(Reject::Fail(e)) if retryable_status => Err(Attempt::Retry {
                        error: Failure::Answer(e),
                        after: if reauthorize { Some(Duration::ZERO) } else { after },
                        reason: format!("HTTP {status}"),
                    }),
                    Err(Reject::Fail(e)) => Err(Attempt::Fail(Failure::Answer(e))),
                }
            })
            .await;
        result.map_err(|exhausted| {
            let Exhausted {
                error,
                attempts,
                elapsed,
            } = exhausted;
            match error {
                Failure::Answer(error) => SendError::Answer {
                    error,
                    attempts,
                    elapsed,
                },
                Failure::Transport(broken) => SendError::Transport {
                    endpoint: broken.endpoint.unwrap_or_else(|| "the server".to_owned()),
                    fault: broken.fault,
                    attempts,
                    elapsed,
                    source: broken.source,
                },
                Failure::Build(e) => SendError::Build(e),
            }
        })
    }
}

enum Failure<E> {
    Answer(E),
    Transport(Broken),
    Build(E),
}

/// An attempt that got no whole answer.
struct Broken {
    fault: Fault,
    endpoint: Option<String>,
    source: Option<reqwest::Error>,
}

/// Sends and reads the body to its end: into memory, or a successful one into a file.
async fn whole_answer(
    client: &reqwest::Client,
    request: reqwest::Request,
    endpoint: &str,
    into_file: Option<(&std::path::Path, Option<u64>)>,
    max_body: Option<usize>,
    unframed: &std::sync::Mutex<Option<(u64, u64)>>,
) -> Result<Response, Broken> {
    let broken = |fault: Fault, e: reqwest::Error| Broken {
        fault,
        endpoint: Some(endpoint.to_owned()),
        source: Some(e.without_url()),
    };
    let response = client.execute(request).await.map_err(|e| {
        let fault = if e.is_connect() {
            Fault::Connect(describe(&e))
        } else {
            Fault::Interrupted(describe(&e))
        };
        broken(fault, e)
    })?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    if let Some((path, expected)) = into_file
        && (200..300).contains(&status)
    {
        // A body with a length (or in chunks) says where it ends; one that ends
        // with its connection does not, and a connection cut midway looks the same.
        let framed = headers.contains_key(http::header::CONTENT_LENGTH)
            || headers
                .get(http::header::TRANSFER_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let (written, digest) = body_into_file(response, path, endpoint).await?;
        if let Some(want) = expected
            && written != want
        {
            return Err(Broken {
                fault: Fault::Interrupted(format!("the answer held {written} bytes, not the {want} expected")),
                endpoint: Some(endpoint.to_owned()),
                source: None,
            });
        }
        if expected.is_none() && !framed {
            // Trusted only when a second answer holds the same bytes.
            let mut seen = unframed.lock().unwrap_or_else(|e| e.into_inner());
            if seen.replace((written, digest)) != Some((written, digest)) {
                return Err(Broken {
                    fault: Fault::Interrupted(
                        "the answer ended with its connection, without a length: fetched again to tell whether it was whole"
                            .to_owned(),
                    ),
                    endpoint: Some(endpoint.to_owned()),
                    source: None,
                });
            }
        }
        return Ok(Response {
            status,
            headers,
            body: Bytes::new(),
        });
    }
    if let Some(limit) = max_body {
        use futures::StreamExt;
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while body.len() < limit
            && let Some(chunk) = stream.next().await
        {
            let chunk = chunk.map_err(|e| broken(Fault::Interrupted(describe(&e)), e))?;
            body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]);
        }
        return Ok(Response {
            status,
            headers,
            body: Bytes::from(body),
        });
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| broken(Fault::Interrupted(describe(&e)), e))?;
    Ok(Response { status, headers, body })
}

/// Streams a body into `path`, returning its length and a digest of it.
async fn body_into_file(
    response: reqwest::Response,
    path: &std::path::Path,
    endpoint: &str,
) -> Result<(u64, u64), Broken> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let local = |e: std::io::Error| Broken {
        fault: Fault::Interrupted(format!("cannot write {}: {e}", path.display())),
        endpoint: Some(endpoint.to_owned()),
        source: None,
    };
    let mut file = tokio::fs::File::create(path).await.map_err(local)?;
    let mut body = response.bytes_stream();
    let mut written = 0u64;
    let mut digest = xxhash_rust::xxh3::Xxh3::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Broken {
            fault: Fault::Interrupted(describe(&e)),
            endpoint: Some(endpoint.to_owned()),
            source: Some(e.without_url()),
        })?;
        file.write_all(&chunk).await.map_err(local)?;
        digest.update(&chunk);
        written += chunk.len() as u64;
    }
    file.flush().await.map_err(local)?;
    Ok((written, digest.digest()))
}

/// `scheme://host:port` of a URL: never its path or query, which may carry a SAS
/// or an API key.
pub fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

/// A person's words for an HTTP client error: the innermost cause, without the
/// client's own layers (`client error (Connect): …`).
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost: &(dyn std::error::Error + 'static) = err;
    let mut io_kind = None;
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        innermost = e;
        current = e.source();
    }
    use std::io::ErrorKind as K;
    match io_kind {
        Some(K::ConnectionRefused) => "connection refused".to_owned(),
        Some(K::ConnectionReset) => "connection reset by the server".to_owned(),
        Some(K::ConnectionAborted) => "connection aborted".to_owned(),
        Some(K::TimedOut) => "timed out".to_owned(),
        Some(K::UnexpectedEof) => "the connection closed before the answer ended".to_owned(),
        _ => {
            let text = innermost.to_string();
            if text.contains("dns error") || text.contains("failed to lookup address") {
                format!("cannot resolve the host name: {text}")
            } else {
                text.replace('\n', " ")
            }
        }
    }
}

/// The wait a server asks for: `x-ms-retry-after-ms`, else `Retry-After` in
/// seconds or as an HTTP date (relative to `now`). Capped at 5 minutes.
pub fn retry_after(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let wait = if let Some(ms) = text("x-ms-retry-after-ms").and_then(|v| v.parse::<u64>().ok()) {
        Duration::from_millis(ms)
    } else {
        let value = text("retry-after")?;
        if let Ok(secs) = value.parse::<u64>() {
            Duration::from_secs(secs)
        } else {
            let at = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
            SystemTime::from(at).duration_since(now).unwrap_or_default()
        }
    };
    Some(wait.min(Duration::from_secs(300)))
}

#[cfg(test)]
mod tests;

impl SendError<refgen_core::Error> {
    /// One refgen error for a request that failed for good: the provider's own
    /// error for an answer (with the attempts made), or "`doing` failed: cannot
    /// reach …" for a transport fault.
    pub fn into_error(self, provider: &'static str, doing: &str) -> refgen_core::Error {
        match self {
            SendError::Answer {
                error,
                attempts,
                elapsed,
            } => error.with_note(&retry_note(attempts, elapsed)),
            transport @ SendError::Transport { .. } => {
                let error = refgen_core::Error::storage(
                    provider,
                    refgen_core::StorageErrorKind::Unreachable,
                    format!("{doing} failed: {transport}"),
                );
                // The HTTP client's error, kept for callers who walk the sources
                // (it has no URL, so no signature or SAS).
                match transport {
                    SendError::Transport { source: Some(s), .. } => error.with_source(s),
                    _ => error,
                }
            }
            SendError::Build(error) => error,
        }
    }
}
