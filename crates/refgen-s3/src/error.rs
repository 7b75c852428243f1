//! Turning SDK failures into one-line refgen errors.
//!
//! Only the S3 error code, its message and the HTTP status are shown: the SDK's own
//! `Display`/`Debug` of a failed request can carry request details, and S3's error
//! bodies can echo the string that was signed.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use refgen_core::{Error, Hint, StorageErrorKind};

pub(crate) const PROVIDER: &str = "S3";

/// What the request was doing, for the message ("listing s3://b/prefix").
pub(crate) fn from_sdk<E>(err: &SdkError<E, HttpResponse>, doing: &str, endpoint: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("");
            // The server's words may echo the request (its token, its signature).
            let detail = e
                .message()
                .map(|m| format!(": {}", refgen_core::redact::redact(m)))
                .unwrap_or_default();
            let (kind, advice) = match code {
                "NoSuchBucket" => (
                    StorageErrorKind::BucketNotFound,
                    "the bucket does not exist (check its name and the endpoint)",
                ),
                "AccessDenied" | "AllAccessDisabled" => (
                    StorageErrorKind::AccessDenied,
                    "access denied: the credentials lack permission (s3:ListBucket to list, s3:GetObject for the URLs to work)",
                ),
                "InvalidAccessKeyId" => (
                    StorageErrorKind::InvalidCredentials,
                    "the access key id is not known to the server",
                ),
                "SignatureDoesNotMatch" => (
                    StorageErrorKind::InvalidCredentials,
                    "the server refused the signature: check the secret access key",
                ),
                "ExpiredToken" | "TokenRefreshRequired" => (
                    StorageErrorKind::InvalidCredentials,
                    "the session token has expired: refresh the credentials",
                ),
                "InvalidToken" => (StorageErrorKind::InvalidCredentials, "the session token is not valid"),
                "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" => {
                    (StorageErrorKind::InvalidConfig, "the bucket is in another region")
                }
                _ => (StorageErrorKind::Other, ""),
            };
            let status = service.raw().status().as_u16();
            let message = if advice.is_empty() {
                let code = if code.is_empty() { "error" } else { code };
                format!("{doing} failed: HTTP {status} {code}{detail}")
            } else {
                format!("{doing} failed: {advice} (HTTP {status} {code}{detail})")
            };
            // A HEAD answer has no body, so it has no code: say what the status means.
            let kind = match (kind, status) {
                (StorageErrorKind::Other, 404) => StorageErrorKind::BucketNotFound,
                (StorageErrorKind::Other, 403) => StorageErrorKind::AccessDenied,
                (k, _) => k,
            };
            let error = Error::storage(PROVIDER, kind, message);
            match code {
                "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" => {
                    error.with_hint(Hint::SetRegion)
                }
                _ => error,
            }
        }
        SdkError::DispatchFailure(failure) => {
            let why = if failure.is_timeout() {
                "timed out"
            } else if failure.is_io() {
                "connection failed"
            } else {
                "request could not be sent"
            };
            let cause = refgen_http::describe(err);
            Error::storage(
                PROVIDER,
                StorageErrorKind::Unreachable,
                format!("{doing} failed: cannot reach {endpoint}: {why} ({cause})"),
            )
        }
        SdkError::TimeoutError(_) => Error::storage(
            PROVIDER,
            StorageErrorKind::Unreachable,
            format!("{doing} failed: {endpoint} did not answer in time"),
        ),
        SdkError::ResponseError(_) => Error::storage(
            PROVIDER,
            StorageErrorKind::Other,
            format!(
                "{doing} failed: the answers from {endpoint} broke off or are not S3's ({})",
                refgen_http::describe(err)
            ),
        ),
        _ if let Some(page) = incomplete_page(err) => Error::storage(
            PROVIDER,
            StorageErrorKind::Other,
            format!("{doing} failed: {endpoint} sent {page}"),
        ),
        _ => Error::storage(
            PROVIDER,
            StorageErrorKind::Other,
            format!("{doing} failed: {}", e_kind(err)),
        ),
    }
}

/// Whether the SDK retries this kind of failure (so a message about it should say
/// how long it tried).
pub(crate) fn is_retried<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: std::error::Error + 'static,
{
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            status == 429 || status >= 500
        }
        _ => incomplete_page(err).is_some(),
    }
}

/// The "not whole" reason of a listing page refused by [`crate::retry::WholePage`].
fn incomplete_page(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    std::iter::successors(Some(err), |e| e.source())
        .find_map(|e| e.downcast_ref::<crate::retry::IncompletePage>())
        .map(|page| page.to_string().replace("the listing page", "a listing page that"))
}

fn e_kind<E, R>(err: &SdkError<E, R>) -> &'static str {
    match err {
        SdkError::ConstructionFailure(_) => "the request could not be built (check the bucket name and endpoint)",
        _ => "unexpected SDK error",
    }
}

pub(crate) fn from_credentials(err: &CredentialsError) -> Error {
    match err {
        CredentialsError::CredentialsNotLoaded(_) => Error::storage(
            PROVIDER,
            StorageErrorKind::NoCredentials,
            "no AWS credentials found (looked at AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the \
             config/credentials files, SSO, web identity, container and instance metadata)",
        )
        .with_hint(Hint::GiveS3Credentials),
        CredentialsError::ProviderTimedOut(_) => Error::storage(
            PROVIDER,
            StorageErrorKind::NoCredentials,
            "timed out while loading AWS credentials (an SSO, web identity or metadata endpoint did not answer)",
        ),
        CredentialsError::InvalidConfiguration(_) => Error::storage(
            PROVIDER,
            StorageErrorKind::InvalidConfig,
            format!("the AWS credentials configuration is invalid: {}", cause_line(err)),
        ),
        _ => Error::storage(
            PROVIDER,
            StorageErrorKind::NoCredentials,
            format!("loading AWS credentials failed: {}", cause_line(err)),
        ),
    }
}

/// The credential provider's explanation, one line. These messages name files,
/// profiles and providers; credential values are redacted by the SDK's own types.
fn cause_line(err: &CredentialsError) -> String {
    std::error::Error::source(err).map_or_else(|| err.to_string(), refgen_http::error_chain)
}
