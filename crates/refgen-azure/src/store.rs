//! The Azure store: List Blobs over REST, read-only SAS URLs per blob.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use refgen_core::list::{Capabilities, ListClient, ListPage, ListRequest};
use refgen_core::{Error, ObjectMeta, Signer, StorageErrorKind};
use refgen_http::{Reject, Transport};
use tokio::sync::Mutex;

use crate::config::{CredentialMode, SasToken};
use crate::entra::{EntraTokens, MAX_DELEGATION, user_delegation_key};
use crate::error::{PROVIDER, from_status, storage};
use crate::sas::{
    AccountKey, Resource, SERVICE_VERSION, SasFields, UserDelegationKey, encode_blob_path, sas_time, service_sas,
    user_delegation_sas,
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

/// One container on Azure Blob Storage (or Azurite).
pub struct AzureStore {
    transport: Transport,
    endpoint: String,
    https: bool,
    account: String,
    container: String,
    page_size: Option<u32>,
    mode: Mode,
    /// Entra mode: the user delegation key, fetched once and reused while it lasts.
    delegation: Mutex<Option<(UserDelegationKey, SystemTime)>>,
    warned: AtomicBool,
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
    pub(crate) fn new(
        transport: Transport,
        endpoint: String,
        https: bool,
        account: String,
        container: String,
        page_size: Option<u32>,
        mode: Mode,
    ) -> Self {
        AzureStore {
            transport,
            endpoint,
            https,
            account,
            container,
            page_size,
            mode,
            delegation: Mutex::new(None),
            warned: AtomicBool::new(false),
        }
    }

    /// Which credential mode is in use.
    pub fn credential_mode(&self) -> CredentialMode {
        self.mode.kind()
    }

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

    async fn fetch_page(
        &self,
        prefix: &str,
        start_from: Option<&str>,
        marker: Option<&str>,
        delimited: bool,
    ) -> Result<(Vec<ObjectMeta>, Vec<String>, Option<String>), Error> {
        let mut url = format!(
            "{}/{}?restype=container&comp=list&prefix={}",
            self.endpoint,
            utf8_percent_encode(&self.container, NON_ALPHANUMERIC),
            utf8_percent_encode(prefix, NON_ALPHANUMERIC)
        );
        if let Some(n) = self.page_size {
            url.push_str(&format!("&maxresults={n}"));
        }
        if let Some(m) = marker {
            url.push_str(&format!("&marker={}", utf8_percent_encode(m, NON_ALPHANUMERIC)));
        }
        if let Some(from) = start_from {
            url.push_str(&format!("&startFrom={}", utf8_percent_encode(from, NON_ALPHANUMERIC)));
        }
        if delimited {
            url.push_str("&delimiter=%2F");
        }
        let doing = format!("listing container `{}` of account `{}`", self.container, self.account);
        let page = self
            .send(
                &doing,
                None,
                || {
                    let url = match &self.mode {
                        Mode::SasToken(token) => format!("{url}&{}", token.query),
                        // A short-lived container SAS (read + list) for this one request.
                        Mode::AccountKey(key) => {
                            format!("{url}&{}", self.short_lived_sas(key, Resource::Container, "rl"))
                        }
                        Mode::Entra(_) => url.clone(),
                    };
                    Ok(self.transport.client().get(url).header("x-ms-version", SERVICE_VERSION))
                },
                |response| {
                    if response.status != 200 {
                        return Err(Reject::Fail(from_status(&doing, response.status, &response.text())));
                    }
                    // The page is used only once it parsed whole: a cut body is retried.
                    crate::list::parse(&response.body).map_err(|e| {
                        Reject::Retry(storage(
                            StorageErrorKind::Other,
                            format!("{doing} failed: the answer is not a whole blob list ({e})"),
                        ))
                    })
                },
            )
            .await?;
        let prefixes = page
            .blobs
            .prefix
            .iter()
            .map(|p| p.name.decoded())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                storage(
                    StorageErrorKind::Other,
                    format!("{doing} failed: a prefix is not UTF-8 once decoded"),
                )
            })?;
        let objects = page
            .blobs
            .blob
            .into_iter()
            .map(|b| {
                let key = b.name.decoded().ok_or_else(|| {
                    storage(
                        StorageErrorKind::Other,
                        format!("{doing} failed: a blob name is not UTF-8 once decoded"),
                    )
                })?;
                let props = b.properties;
                Ok(ObjectMeta {
                    key,
                    size: props.as_ref().and_then(|p| p.content_length).unwrap_or(0),
                    last_modified: props
                        .and_then(|p| p.last_modified)
                        .and_then(|t| {
                            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc2822).ok()
                        })
                        .map(SystemTime::from),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok((objects, prefixes, page.next_marker.filter(|m| !m.is_empty())))
    }

    /// One request through the shared transport; in Entra mode with the cached
    /// bearer token, which a 401 (or an AuthenticationFailed 403, Azure's answer to
    /// an expired token) drops so that the one retry gets a fresh token.
    pub(crate) async fn send<T>(
        &self,
        doing: &str,
        timeout: Option<Duration>,
        build: impl Fn() -> Result<reqwest::RequestBuilder, Error>,
        parse: impl Fn(refgen_http::Response) -> Result<T, Reject<Error>>,
    ) -> Result<T, Error> {
        let tokens = match &self.mode {
            Mode::Entra(tokens) => Some(tokens),
            _ => None,
        };
        let renew = || {
            if let Some(tokens) = tokens {
                tokens.clear();
            }
        };
        let reauthorized = AtomicBool::new(false);
        let mut call = self.transport.call(doing).on_unauthorized(&renew);
        if let Some(timeout) = timeout {
            call = call.timeout(timeout);
        }
        call.send(
            || async {
                let mut request = build()?;
                if let Some(tokens) = tokens {
                    request = request.bearer_auth(tokens.get().await?);
                }
                Ok(request)
            },
            |response| {
                // Azure answers an expired bearer token with 403 AuthenticationFailed:
                // the token is dropped and the request tried once more.
                let expired = tokens.is_some()
                    && response.status == 403
                    && response.text().contains("AuthenticationFailed")
                    && !reauthorized.swap(true, std::sync::atomic::Ordering::SeqCst);
                match parse(response) {
                    Err(Reject::Fail(e)) if expired => {
                        renew();
                        Err(Reject::Retry(e))
                    }
                    other => other,
                }
            },
        )
        .await
        .map_err(|e| e.into_error(PROVIDER, doing))
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
            self.endpoint,
            self.container,
            encode_blob_path(name)
        )
    }
}

#[async_trait::async_trait]
impl refgen_core::Uploader for AzureStore {
    async fn upload_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), Error> {
        let doing = format!("uploading `{key}` to container `{}`", self.container);
        let unreadable = |e: std::io::Error| {
            storage(
                StorageErrorKind::Other,
                format!("{doing} failed: cannot read {}: {e}", path.display()),
            )
        };
        let length = std::fs::metadata(path).map_err(unreadable)?.len();
        // Put Blob replaces the blob whole, so each attempt sends the file again from
        // its start (a restartable body); an attempt gets a minute per 8 MiB.
        let timeout = self.transport.config().attempt_timeout * (1 + (length / (8 << 20)) as u32);
        self.send(
            &doing,
            Some(timeout),
            || {
                let query = match &self.mode {
                    Mode::SasToken(token) => token.query.clone(),
                    // A blob SAS that may create and write this one blob.
                    Mode::AccountKey(account_key) => self.short_lived_sas(account_key, Resource::Blob(key), "cw"),
                    Mode::Entra(_) => String::new(),
                };
                let url = format!("{}/{}/{}?{query}", self.endpoint, self.container, encode_blob_path(key));
                let file = std::fs::File::open(path).map_err(unreadable)?;
                Ok(self
                    .transport
                    .client()
                    .put(url.trim_end_matches('?'))
                    .header("x-ms-version", SERVICE_VERSION)
                    .header("x-ms-blob-type", "BlockBlob")
                    .header("content-type", content_type)
                    .header("content-length", length)
                    .body(reqwest::Body::from(tokio::fs::File::from_std(file))))
            },
            |response| match response.status {
                201 => Ok(()),
                status => Err(Reject::Fail(from_status(&doing, status, &response.text()))),
            },
        )
        .await
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
                if let Some(se) = token.expiry
                    && se < now + expires_in
                    && !self.warned.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(
                        "the SAS token expires in {}, before the requested {}: the URLs stop working when it does",
                        refgen_core::expiry::display_approx(se.duration_since(now).unwrap_or_default()),
                        refgen_core::expiry::display_duration(expires_in)
                    );
                }
                objects.iter().map(|o| self.blob_url(&o.key, &token.query)).collect()
            }
            Mode::AccountKey(key) => objects
                .iter()
                .map(|o| {
                    let sas = service_sas(key, &self.account, &self.container, Resource::Blob(&o.key), &fields);
                    self.blob_url(&o.key, &sas.query)
                })
                .collect(),
            Mode::Entra(_) => {
                let key = self.delegation_key(now + expires_in).await?;
                objects
                    .iter()
                    .map(|o| {
                        let sas =
                            user_delegation_sas(&key, &self.account, &self.container, Resource::Blob(&o.key), &fields);
                        self.blob_url(&o.key, &sas.query)
                    })
                    .collect()
            }
        })
    }
}
