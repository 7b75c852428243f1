//! OAuth tokens for the JSON API calls: Google's `google-cloud-auth` finds and
//! renews them (Application Default Credentials, the metadata server, workload
//! identity); an emulator takes none.

use refgen_core::{Error, StorageErrorKind};

use crate::error::storage;

/// OAuth headers for API calls, or none (emulators take no token).
#[derive(Clone)]
pub(crate) enum TokenSource {
    None,
    Google(google_cloud_auth::credentials::Credentials),
}

impl TokenSource {
    pub(crate) async fn headers(&self) -> Result<http::HeaderMap, Error> {
        match self {
            TokenSource::None => Ok(http::HeaderMap::new()),
            TokenSource::Google(creds) => match creds.headers(http::Extensions::new()).await {
                Ok(google_cloud_auth::credentials::CacheableResource::New { data, .. }) => Ok(data),
                Ok(google_cloud_auth::credentials::CacheableResource::NotModified) => Ok(http::HeaderMap::new()),
                Err(e) => Err(storage(
                    StorageErrorKind::InvalidCredentials,
                    format!("getting an OAuth token failed: {}", refgen_http::error_chain(&e)),
                )),
            },
        }
    }
}
