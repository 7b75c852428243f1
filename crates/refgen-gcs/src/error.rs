//! GCS failures as one-line refgen errors.

use refgen_core::{Error, StorageErrorKind};

pub(crate) const PROVIDER: &str = "GCS";

pub(crate) fn storage(kind: StorageErrorKind, message: impl Into<String>) -> Error {
    Error::storage(PROVIDER, kind, message)
}

/// An HTTP error answer from the JSON or IAM API: status plus the API's own message.
pub(crate) fn from_status(doing: &str, status: u16, body: &str) -> Error {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect::<String>().replace('\n', " "));
    let (kind, advice) = match status {
        401 => (StorageErrorKind::InvalidCredentials, "the credentials were refused"),
        403 => (
            StorageErrorKind::AccessDenied,
            "access denied: the credentials lack permission",
        ),
        404 => (StorageErrorKind::BucketNotFound, "not found"),
        _ => (StorageErrorKind::Other, "the server refused the request"),
    };
    let error = storage(kind, format!("{doing} failed: {advice} (HTTP {status}: {message})"));
    // "Bucket is a requester pays bucket but no user project provided."
    if message.to_ascii_lowercase().contains("requester pays") {
        error.with_hint(refgen_core::Hint::GiveUserProject)
    } else {
        error
    }
}
