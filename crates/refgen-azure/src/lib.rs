//! refgen provider for Azure Blob Storage.
//!
//! # Why these crates
//!
//! Checked on the current crates (November 2026):
//! - `azure_storage_blobs` 0.21 is the legacy line, frozen by Microsoft ("no plans to
//!   update"), on `azure_core` 0.21 and native-tls by default: not a base to build on.
//! - Microsoft's official `azure_storage_blob` 1.x is maintained but speaks only
//!   Entra ID tokens and SAS URLs: no Shared Key and no service SAS from an account
//!   key (`azure_storage_sas` builds user-delegation SAS only).
//!
//! Listing is one documented REST call (List Blobs) whose every form refgen needs
//! (SAS query, bearer token, path-style Azurite endpoints) is a URL and a header, so
//! it is made here with `reqwest` and parsed with `quick-xml`, on the same TLS stack
//! as the other providers. Entra ID tokens come from Microsoft's `azure_identity`
//! 1.0 (which has no `DefaultAzureCredential`: `credential.rs` builds the chain). SAS
//! signing is a small HMAC ([`signer`]), about 3 µs per URL, checked against the
//! official Python SDK's answers. With an account key, listing uses a short-lived
//! container SAS (`sp=rl`) minted per request instead of Shared Key headers.
//!
//! Every URL is read-only (`sp=r`), for one blob (`sr=b`), HTTPS-only on https
//! endpoints, with its start back-dated five minutes for clock skew, at the pinned
//! service version [`signer::SERVICE_VERSION`].
//!
//! Layout, as in every provider crate: this file holds the store and its trait
//! impls; `builder` resolves the endpoint and the credential mode; `client` makes
//! the REST calls; `credential` is the Entra ID chain and delegation keys;
//! `signer` is SAS signing; `error` maps answers to one line.

mod builder;
mod client;
mod credential;
mod error;
pub mod inventory;
pub mod signer;

pub use builder::{AzureBuilder, CredentialMode};

use std::time::{Duration, SystemTime};

use refgen_core::expiry::OutlivedWarning;
use refgen_core::list::{Capabilities, ListClient, ListPage, ListRequest};
use refgen_core::{Error, ObjectMeta, Signer};
use refgen_http::Transport;
use tokio::sync::Mutex;

use crate::builder::SasToken;
use crate::credential::{EntraTokens, MAX_DELEGATION, user_delegation_key};
use crate::signer::{
    AccountKey, Resource, SasFields, UserDelegationKey, encode_blob_path, sas_time, service_sas, user_delegation_sas,
};

/// The longest URL lifetime refgen signs with an account key or passes through for a
/// SAS token: a year (the service sets no limit; longer-lived links are rarely wise).
pub const MAX_SAS_EXPIRY: Duration = Duration::from_secs(365 * 24 * 3600);

/// SAS start times are set this far back, so that clocks running a little behind
/// the service's still accept a URL the moment it is made.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

pub(crate) enum Mode {
    SasToken(SasToken),
    AccountKey(AccountKey),
    Entra(EntraTokens),
}

impl Mode {
    pub(crate) fn kind(&self) -> CredentialMode {
        match self {
            Mode::SasToken(_) => CredentialMode::SasToken,
            Mode::AccountKey(_) => CredentialMode::AccountKey,
            Mode::Entra(_) => CredentialMode::EntraId,
        }
    }
}

/// One container on Azure Blob Storage (or Azurite), made by [`AzureBuilder`].
pub struct AzureStore {
    pub(crate) transport: Transport,
    pub(crate) endpoint: String,
    pub(crate) https: bool,
    pub(crate) account: String,
    pub(crate) container: String,
    pub(crate) page_size: Option<u32>,
    pub(crate) mode: Mode,
    /// Entra mode: the user delegation key, fetched once and reused while it lasts.
    pub(crate) delegation: Mutex<Option<(UserDelegationKey, SystemTime)>>,
    pub(crate) warned: OutlivedWarning,
    /// Where URLs point, when not at `endpoint` (see `AzureBuilder::with_url_endpoint`).
    pub(crate) url_endpoint: Option<String>,
    /// List versions and sign the current one's id (see `AzureBuilder::with_pin_versions`).
    pub(crate) pin_versions: bool,
}

impl std::fmt::Debug for AzureStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureStore")
            .field("endpoint", &self.endpoint)
            .field("container", &self.container)
            .field("mode", &self.mode.kind())
            .finish_non_exhaustive()
    }
}

impl AzureStore {
    /// A service SAS for one request of refgen's own (listing, uploading): valid for
    /// an hour, start back-dated for clock skew.
    fn short_lived_sas(&self, key: &AccountKey, resource: Resource<'_>, permissions: &str) -> String {
        let now = SystemTime::now();
        let (start, expiry) = (sas_time(now - CLOCK_SKEW), sas_time(now + Duration::from_secs(3600)));
        let fields = SasFields {
            permissions,
            start: Some(&start),
            expiry: &expiry,
            protocol: self.protocol(),
            ..Default::default()
        };
        service_sas(key, &self.account, &self.container, resource, &fields).query
    }

    fn protocol(&self) -> Option<&'static str> {
        self.https.then_some("https")
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The delegation key for URLs that expire at `until`; fetched at most once per
    /// run unless a later URL needs a longer-lived key.
    async fn delegation_key(&self, until: SystemTime) -> Result<UserDelegationKey, Error> {
        let mut cached = self.delegation.lock().await;
        if let Some((key, expiry)) = cached.as_ref()
            && *expiry >= until
        {
            return Ok(key.clone());
        }
        let now = SystemTime::now();
        let expiry = (until + Duration::from_secs(60)).min(now + MAX_DELEGATION);
        let key = user_delegation_key(self, now - CLOCK_SKEW, expiry).await?;
        tracing::debug!(expiry = %sas_time(expiry), "got a user delegation key");
        *cached = Some((key.clone(), expiry));
        Ok(key)
    }

    fn blob_url(&self, name: &str, sas_query: &str) -> String {
        format!(
            "{}/{}/{}?{sas_query}",
            self.url_endpoint.as_deref().unwrap_or(&self.endpoint),
            self.container,
            encode_blob_path(name)
        )
    }

    /// [`AzureStore::blob_url`] of one version (`versionid=…` ahead of the SAS).
    fn object_url(&self, object: &ObjectMeta, sas_query: &str) -> String {
        match &object.version {
            Some(version) => self.blob_url(
                &object.key,
                &format!("versionid={}&{sas_query}", refgen_core::encoding::query(version)),
            ),
            None => self.blob_url(&object.key, sas_query),
        }
    }
}

/// What a URL's SAS is for: the blob, or the version listed.
fn resource(object: &ObjectMeta) -> Resource<'_> {
    match &object.version {
        Some(version) => Resource::BlobVersion(&object.key, version),
        None => Resource::Blob(&object.key),
    }
}

#[async_trait::async_trait]
impl refgen_core::Downloader for AzureStore {
    async fn download_file(&self, key: &str, to: &std::path::Path, expected: Option<u64>) -> Result<u64, Error> {
        self.get_file(key, to, expected).await
    }
}

#[async_trait::async_trait]
impl refgen_core::Uploader for AzureStore {
    async fn upload_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), Error> {
        self.put_file(key, path, content_type).await
    }
}

#[async_trait::async_trait]
impl ListClient for AzureStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::full(self.page_size.map_or(5000, |n| n.max(1) as usize))
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        // `startFrom` (service version 2026-02-06 on) is inclusive (the key itself
        // is dropped above this call); the marker carries the position on later pages.
        let from = request.start_after.filter(|_| request.token.is_none());
        let (objects, prefixes, next) = self
            .fetch_page(request.prefix, from, request.token, request.delimited)
            .await?;
        Ok(ListPage {
            objects,
            prefixes,
            next,
        })
    }
}

#[async_trait::async_trait]
impl Signer for AzureStore {
    fn max_expiry(&self) -> Duration {
        match self.mode {
            // A user-delegation SAS cannot outlive its key, and keys last 7 days at most.
            Mode::Entra(_) => MAX_DELEGATION,
            _ => MAX_SAS_EXPIRY,
        }
    }

    fn expiry_limit(&self) -> &'static str {
        match self.mode {
            Mode::Entra(_) => "the limit on a user delegation key, which its SAS cannot outlive",
            _ => "refgen's limit on a SAS",
        }
    }

    /// A SAS token given to refgen is in every URL as it is: the URLs stop
    /// working at its own `se`, whatever they are signed for.
    fn credentials_expire_at(&self) -> Option<SystemTime> {
        match &self.mode {
            Mode::SasToken(token) => token.expiry,
            _ => None,
        }
    }

    async fn sign_page(&self, objects: &[ObjectMeta], expires_in: Duration) -> Result<Vec<String>, Error> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let now = SystemTime::now();
        let (start, expiry) = (sas_time(now - CLOCK_SKEW), sas_time(now + expires_in));
        let fields = SasFields {
            permissions: "r",
            start: Some(&start),
            expiry: &expiry,
            protocol: self.protocol(),
            ..Default::default()
        };
        Ok(match &self.mode {
            Mode::SasToken(token) => {
                if let Some(se) = token.expiry {
                    let left = se.duration_since(now).unwrap_or_default();
                    self.warned.check("the SAS token expires", left, expires_in);
                }
                objects.iter().map(|o| self.object_url(o, &token.query)).collect()
            }
            Mode::AccountKey(key) => objects
                .iter()
                .map(|o| {
                    let sas = service_sas(key, &self.account, &self.container, resource(o), &fields);
                    self.object_url(o, &sas.query)
                })
                .collect(),
            Mode::Entra(_) => {
                let key = self.delegation_key(now + expires_in).await?;
                objects
                    .iter()
                    .map(|o| {
                        let sas = user_delegation_sas(&key, &self.account, &self.container, resource(o), &fields);
                        self.object_url(o, &sas.query)
                    })
                    .collect()
            }
        })
    }
}
