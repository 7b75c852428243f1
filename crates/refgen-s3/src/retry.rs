//! How the SDK retries for refgen: S3 requests go through aws-sdk-s3's own
//! orchestrator, not the shared transport, so its retry policy is set to the same
//! rules here.
//!
//! - **Attempts**: `AWS_MAX_ATTEMPTS` and `AWS_RETRY_MODE` (or the profile's
//!   `max_attempts` / `retry_mode`) are honoured as the AWS CLI does; without them
//!   refgen makes 10 attempts (the SDK's 3 end a run of tens of thousands of
//!   requests on its first bad minute). The retry quota (token bucket), which stops
//!   retrying after a burst of failures, is lifted: an unattended listing would
//!   rather wait than lose its work.
//! - **Timeouts**: a connect timeout, an attempt timeout (a stalled answer is
//!   retried), and an operation timeout equal to the retry budget.
//! - **What is retried**, beyond the SDK's own classifiers (5xx, throttling codes,
//!   timeouts): HTTP 429, answers cut short or reset mid-body, a 2xx that does not
//!   deserialise, and a listing page that is not whole ([`WholePage`]).
//! - **Not retried past 3 attempts**: a refused connection or a host name that
//!   does not resolve ([`MarkUnreachable`]), as the shared transport.

use aws_sdk_s3::config::interceptors::{AfterDeserializationInterceptorContextRef, InterceptorContext};
use aws_sdk_s3::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;

/// The SDK's error type for interceptors.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A ListObjectsV2 answer that arrived with status 200 but is not a whole page.
#[derive(Debug, thiserror::Error)]
#[error("the listing page is not whole: {0}")]
pub(crate) struct IncompletePage(pub String);

/// Checks every ListObjectsV2 answer before its keys are used: the body ends with
/// the closing `</ListBucketResult>` and holds `<IsTruncated>`, `KeyCount` (when
/// sent) counts what the page holds, and a truncated page carries its continuation
/// token.
/// A failure becomes an [`IncompletePage`], which [`RetryMore`] retries.
#[derive(Debug)]
pub(crate) struct WholePage;

impl Intercept for WholePage {
    fn name(&self) -> &'static str {
        "refgen: whole listing pages"
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = ctx.output_or_error() else {
            return Ok(());
        };
        let body = ctx.response().body().bytes().unwrap_or_default();
        let checked = if let Some(page) = output.downcast_ref::<ListObjectsV2Output>() {
            check_page(body, page)
        } else if let Some(page) = output.downcast_ref::<ListObjectVersionsOutput>() {
            check_versions_page(body, page)
        } else {
            return Ok(());
        };
        checked.map_err(|why| Box::new(IncompletePage(why)) as BoxError)
    }
}

fn check_page(body: &[u8], page: &ListObjectsV2Output) -> Result<(), String> {
    // A body cut short is a prefix of the document, and only the whole document
    // ends with its root's closing tag (keys are URL-encoded, so no `<` is in a
    // name); the SDK's parser has read the rest. A second full XML pass here cost
    // about a tenth of a CPU-bound flat listing in the benchmark.
    if !body.trim_ascii_end().ends_with(b"</ListBucketResult>") {
        return Err("the document ends before </ListBucketResult> (cut short)".to_owned());
    }
    if page.is_truncated().is_none() {
        return Err("<IsTruncated> is missing".to_owned());
    }
    // AWS counts keys and folders (CommonPrefixes); s3rver counts keys only. Either
    // count agrees with a page that parsed whole; neither is a page cut or garbled.
    let keys = page.contents().len();
    let held = keys + page.common_prefixes().len();
    if let Some(count) = page.key_count()
        && ![held, keys].contains(&usize::try_from(count).unwrap_or(usize::MAX))
    {
        return Err(format!("KeyCount says {count}, the page holds {held}"));
    }
    if page.is_truncated() == Some(true) && page.next_continuation_token().is_none_or(str::is_empty) {
        return Err("the listing goes on but no continuation token came".to_owned());
    }
    Ok(())
}

/// [`check_page`] for a ListObjectVersions answer (versions pinned): whole to its
/// closing tag, and a truncated page says where the next one starts.
fn check_versions_page(body: &[u8], page: &ListObjectVersionsOutput) -> Result<(), String> {
    if !body.trim_ascii_end().ends_with(b"</ListVersionsResult>") {
        return Err("the document ends before </ListVersionsResult> (cut short)".to_owned());
    }
    if page.is_truncated().is_none() {
        return Err("<IsTruncated> is missing".to_owned());
    }
    if page.is_truncated() == Some(true) && page.next_key_marker().is_none_or(str::is_empty) {
        return Err("the listing goes on but no NextKeyMarker came".to_owned());
    }
    Ok(())
}

/// Retries what the SDK's classifiers leave alone (see the module doc), and not
/// a refused connection that [`MarkUnreachable`] marked as tried enough.
#[derive(Debug)]
pub(crate) struct RetryMore;

/// A refused connection (or a name that does not resolve) on an attempt that
/// used up [`MarkUnreachable::unreachable_attempts`]: [`RetryMore`] does not retry it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unreachable(String);

/// Whether the SDK gave up on `err` as [`Unreachable`]: a refused connection
/// tried the few times allowed for it (the mark [`MarkUnreachable`] put on it).
pub(crate) fn gave_up_unreachable<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool
where
    E: std::error::Error + 'static,
{
    source_chain(err).any(|e| e.is::<Unreachable>())
}

/// Marks a refused connection on the last attempt allowed for it as
/// [`Unreachable`]. The attempt count lives in the orchestrator's config bag,
/// which a classifier cannot see (and the request, with its `amz-sdk-request`
/// header, has gone into the connector), so an interceptor that can see both
/// marks the error and the classifier reads the mark. It also says, from a
/// request's second failed attempt on, that the request is being retried, as the
/// shared transport does: a run that retries is never silent.
#[derive(Debug)]
pub(crate) struct MarkUnreachable {
    pub(crate) unreachable_attempts: u32,
    /// Attempts in all, for the retry lines.
    pub(crate) max_attempts: u32,
}

impl Intercept for MarkUnreachable {
    fn name(&self) -> &'static str {
        "refgen: refused connections tried a few times"
    }

    fn modify_before_attempt_completion(
        &self,
        ctx: &mut aws_sdk_s3::config::interceptors::FinalizerInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_smithy_runtime_api::client::orchestrator::Metadata;
        use aws_smithy_runtime_api::client::orchestrator::OrchestratorError;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_runtime_api::client::retries::RequestAttempts;
        let attempts = cfg.load::<RequestAttempts>().map_or(1, RequestAttempts::attempts);
        let status = ctx.response().map(|r| r.status().as_u16());
        let Some(slot) = ctx.output_or_error_mut() else {
            return Ok(());
        };
        let (cause, connector) = match slot {
            Err(err) => match err.as_connector_error() {
                Some(connector) => (refgen_http::describe(connector), true),
                None if err.is_timeout_error() => ("no answer in time".to_owned(), false),
                None if err.is_response_error() => ("the answer broke off".to_owned(), false),
                None => match status {
                    Some(s @ (408 | 429 | 500 | 502 | 503 | 504)) => (format!("HTTP {s}"), false),
                    _ if source_chain(err).any(|e| e.is::<IncompletePage>()) => {
                        ("the page is not whole".to_owned(), false)
                    }
                    _ => return Ok(()),
                },
            },
            Ok(_) => return Ok(()),
        };
        let unreachable = connector && refgen_http::is_unreachable_text(&cause);
        let allowed = if unreachable {
            self.unreachable_attempts.min(self.max_attempts)
        } else {
            self.max_attempts
        };
        if unreachable && attempts >= self.unreachable_attempts {
            *slot = Err(OrchestratorError::connector(ConnectorError::io(Box::new(Unreachable(
                cause,
            )))));
        } else if attempts >= 2 && attempts < allowed {
            let operation = cfg.load::<Metadata>().map_or("request", Metadata::name);
            tracing::warn!("S3 {operation}: attempt {attempts} of {allowed} failed ({cause}); retrying");
        }
        Ok(())
    }
}

impl ClassifyRetry for RetryMore {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(err)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let status = ctx.response().map(|r| r.status().as_u16());
        if status == Some(429) {
            return RetryAction::throttling_error();
        }
        if err.is_interceptor_error() && source_chain(err).any(|e| e.is::<IncompletePage>()) {
            return RetryAction::transient_error();
        }
        if err.is_response_error() || err.is_timeout_error() {
            return RetryAction::transient_error();
        }
        if let Some(connector) = err.as_connector_error()
            && (connector.is_io() || connector.is_timeout() || connector.is_other())
        {
            if source_chain(connector).any(|e| e.is::<Unreachable>()) {
                return RetryAction::RetryForbidden;
            }
            return RetryAction::transient_error();
        }
        // A success status whose body did not deserialise was cut or garbled.
        if err.is_operation_error() && status.is_some_and(|s| (200..300).contains(&s)) {
            return RetryAction::transient_error();
        }
        RetryAction::NoActionIndicated
    }

    fn name(&self) -> &'static str {
        "refgen: 429, cut bodies, whole pages"
    }
}

fn source_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

/// The SDK retry configuration: `attempts` when `explicit` (the caller's own
/// choice wins), else the environment's or profile's `configured` value, else
/// `attempts`; the mode as configured, else standard. The values were read and
/// checked by the builder, never by aws-config (which panics on a bad one).
pub(crate) fn sdk_retry_config(
    attempts: u32,
    explicit: bool,
    configured: Option<u32>,
    mode: Option<aws_sdk_s3::config::retry::RetryMode>,
) -> aws_sdk_s3::config::retry::RetryConfig {
    use aws_sdk_s3::config::retry::{RetryConfig, RetryMode};
    let base = match mode {
        Some(RetryMode::Adaptive) => RetryConfig::adaptive(),
        _ => RetryConfig::standard(),
    };
    let attempts = match (explicit, configured) {
        (false, Some(n)) => n,
        _ => attempts,
    };
    base.with_max_attempts(attempts.max(1))
}

/// Timeouts: connect, one attempt, and the whole operation (the retry budget).
pub(crate) fn sdk_timeouts(retry: &refgen_http::RetryConfig) -> aws_sdk_s3::config::timeout::TimeoutConfig {
    aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .connect_timeout(retry.connect_timeout)
        .operation_attempt_timeout(retry.attempt_timeout)
        .operation_timeout(retry.budget + retry.attempt_timeout)
        .build()
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::types::{CommonPrefix, Object};

    use super::*;

    #[test]
    fn a_page_must_be_whole_and_count_what_it_holds() {
        let page = |count: i32, truncated: bool, token: Option<&str>| {
            ListObjectsV2Output::builder()
                .contents(Object::builder().key("a").build())
                .common_prefixes(CommonPrefix::builder().prefix("p/").build())
                .key_count(count)
                .is_truncated(truncated)
                .set_next_continuation_token(token.map(str::to_owned))
                .build()
        };
        let body = b"<ListBucketResult><Contents><Key>a</Key></Contents><CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes><KeyCount>2</KeyCount><IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken></ListBucketResult>";
        assert_eq!(check_page(body, &page(2, true, Some("t"))), Ok(()));
        for cut in 0..body.len() {
            assert!(
                check_page(&body[..cut], &page(2, true, Some("t"))).is_err(),
                "cut at {cut}"
            );
        }
        assert!(
            check_page(body, &page(5, true, Some("t")))
                .expect_err("refused")
                .contains("KeyCount")
        );
        // A count of the keys alone, without the folders, as s3rver sends.
        assert_eq!(check_page(body, &page(1, true, Some("t"))), Ok(()));
        assert!(
            check_page(body, &page(2, true, None))
                .expect_err("refused")
                .contains("continuation")
        );
    }
}
