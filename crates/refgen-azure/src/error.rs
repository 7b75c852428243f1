//! Azure failures as one-line refgen errors.

use refgen_core::{Error, StorageErrorKind};

pub(crate) const PROVIDER: &str = "Azure";

pub(crate) fn storage(kind: StorageErrorKind, message: impl Into<String>) -> Error {
    Error::storage(PROVIDER, kind, message)
}

const REFUSED: &str = "the credentials were refused (wrong key, or a SAS that is expired or altered)";

/// An error answer: Azure's `<Code>` and `<Message>` (first line), with advice.
pub(crate) fn from_status(doing: &str, status: u16, body: &str) -> Error {
    let tag = |name: &str| {
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let start = body.find(&open)? + open.len();
        let end = start + body[start..].find(&close)?;
        Some(body[start..end].lines().next().unwrap_or_default().to_owned())
    };
    let code = tag("Code").unwrap_or_default();
    let message = tag("Message").unwrap_or_default();
    let (kind, advice) = match (status, code.as_str()) {
        (404, "ContainerNotFound") | (404, _) => (
            StorageErrorKind::BucketNotFound,
            "the container does not exist (check its name, the account and the endpoint)",
        ),
        (403, "AuthenticationFailed") => (StorageErrorKind::InvalidCredentials, REFUSED),
        // Azurite answers a bad SAS signature with this code and message.
        (403, "AuthorizationFailure") if message.contains("failed to authenticate") => {
            (StorageErrorKind::InvalidCredentials, REFUSED)
        }
        (403, "AuthorizationPermissionMismatch") | (403, "AuthorizationFailure") => (
            StorageErrorKind::AccessDenied,
            "access denied: the credentials lack permission",
        ),
        (403, _) => (StorageErrorKind::AccessDenied, "access denied"),
        (401, _) => (StorageErrorKind::InvalidCredentials, "the credentials were refused"),
        _ => (StorageErrorKind::Other, "the service refused the request"),
    };
    let detail = match (code.is_empty(), message.is_empty()) {
        (true, true) => format!("HTTP {status}"),
        (false, true) => format!("HTTP {status} {code}"),
        _ => format!("HTTP {status} {code}: {message}"),
    };
    storage(kind, format!("{doing} failed: {advice} ({detail})"))
}
