//! What a storage provider implements besides listing (see [`crate::list`]).

use std::time::Duration;

use crate::{Error, ObjectMeta};

/// Turns objects into signed GET URLs.
///
/// Signing works a page at a time: local signers loop over the page cheaply, and
/// signers that call a remote service can run the calls of a page concurrently.
#[async_trait::async_trait]
pub trait Signer: Send + Sync {
    /// The longest expiry the provider accepts for a signed URL.
    fn max_expiry(&self) -> Duration;

    /// Whose limit [`Signer::max_expiry`] is, for messages and reports ("SigV4's
    /// limit on a presigned URL").
    fn expiry_limit(&self) -> &'static str {
        "the provider's limit"
    }

    /// When the credentials that sign the URLs stop working, if they are
    /// temporary and say so (an STS session, an assumed role, SSO, a
    /// `credential_process` with an `Expiration`): a URL signed with them is
    /// refused from then on, whatever its own expiry.
    fn credentials_expire_at(&self) -> Option<std::time::SystemTime> {
        None
    }

    /// Signs one GET URL per object, in the same order, each valid for `expires_in`.
    async fn sign_page(&self, objects: &[ObjectMeta], expires_in: Duration) -> Result<Vec<String>, Error>;
}

/// Reads one object into a local file (an inventory report's files).
#[async_trait::async_trait]
pub trait Downloader: Send + Sync {
    /// Streams the object `key` into the file at `to` (created or truncated) and
    /// returns its length in bytes. An answer of another length than `expected`
    /// counts as cut short, and is fetched again as any failed request is.
    async fn download_file(&self, key: &str, to: &std::path::Path, expected: Option<u64>) -> Result<u64, Error>;
}

/// Uploads one file as an object (for the references file of a submission).
#[async_trait::async_trait]
pub trait Uploader: Send + Sync {
    /// Streams the file at `path` to `key`, with this content type.
    async fn upload_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), Error>;
}
