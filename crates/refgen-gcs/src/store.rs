//! The GCS store: JSON API listing, V4 signing in one of three modes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt, stream};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use refgen_core::list::{Capabilities, ListClient, ListPage, ListRequest};
use refgen_core::{Error, ObjectMeta, Signer, StorageErrorKind};
use refgen_http::{Reject, Transport};
use serde::Deserialize;

use crate::error::{PROVIDER, from_status, storage};
use crate::sign_blob::{SIGN_BLOB_CONCURRENCY, SignBlobClient};
use crate::v4::{self, BlobSigner, Endpoint, UrlStyle, V4Request};

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
                    format!("getting an OAuth token failed: {}", one_line(&e)),
                )),
            },
        }
    }
}

/// One API request through `transport` with `tokens`' OAuth headers: the GCS call
/// path shared by listing, uploads and signBlob. A 401 gets one retry (the auth
/// library renews a token it finds expired).
pub(crate) async fn send_with_tokens<T>(
    transport: &Transport,
    tokens: &TokenSource,
    doing: &str,
    timeout: Option<Duration>,
    build: impl Fn() -> Result<reqwest::RequestBuilder, Error>,
    parse: impl Fn(refgen_http::Response) -> Result<T, Reject<Error>>,
) -> Result<T, Error> {
    let renew = || {};
    let mut call = transport.call(doing).on_unauthorized(&renew);
    if let Some(timeout) = timeout {
        call = call.timeout(timeout);
    }
    call.send(
        || async {
            let mut request = build()?;
            for (name, value) in tokens.headers().await?.iter() {
                request = request.header(name, value);
            }
            Ok(request)
        },
        parse,
    )
    .await
    .map_err(|e| e.into_error(PROVIDER, doing))
}

pub(crate) fn one_line(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(next) = cur {
        let text = next.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = next.source();
    }
    parts.join(": ").replace('\n', " ")
}

/// How URLs are signed.
pub(crate) enum SigningBackend {
    /// RSA key or HMAC keys held here.
    Local(Arc<dyn BlobSigner>),
    /// The IAM Credentials API.
    SignBlob(Arc<SignBlobClient>),
}

/// One bucket on Google Cloud Storage (or an emulator).
pub struct GcsStore {
    pub(crate) transport: Transport,
    pub(crate) api_base: String,
    pub(crate) bucket: String,
    pub(crate) tokens: TokenSource,
    pub(crate) page_size: u32,
    pub(crate) url_endpoint: Endpoint,
    pub(crate) url_style: UrlStyle,
    pub(crate) backend: SigningBackend,
    pub(crate) max_expiry: Duration,
}

impl std::fmt::Debug for GcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsStore")
            .field("api_base", &self.api_base)
            .field("bucket", &self.bucket)
            .field("url_endpoint", &self.url_endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    items: Vec<ListedObject>,
    /// Sub-prefixes (delimited listings only).
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
}

impl ListedObject {
    fn into_meta(self) -> ObjectMeta {
        ObjectMeta {
            size: self.size.and_then(|s| s.parse().ok()).unwrap_or(0),
            last_modified: self
                .updated
                .and_then(|t| time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok())
                .map(SystemTime::from),
            key: self.name,
        }
    }
}

#[derive(Deserialize)]
struct ListedObject {
    name: String,
    /// The JSON API sends sizes as decimal strings.
    size: Option<String>,
    updated: Option<String>,
}

impl GcsStore {
    async fn fetch_page(
        &self,
        prefix: &str,
        start_offset: Option<&str>,
        token: Option<&str>,
        delimited: bool,
    ) -> Result<ListResponse, Error> {
        let mut url = format!(
            "{}/storage/v1/b/{}/o?fields=items(name,size,updated),prefixes,nextPageToken&maxResults={}&prefix={}",
            self.api_base,
            utf8_percent_encode(&self.bucket, NON_ALPHANUMERIC),
            self.page_size,
            utf8_percent_encode(prefix, NON_ALPHANUMERIC)
        );
        if let Some(offset) = start_offset {
            url.push_str(&format!(
                "&startOffset={}",
                utf8_percent_encode(offset, NON_ALPHANUMERIC)
            ));
        }
        if let Some(token) = token {
            url.push_str(&format!("&pageToken={}", utf8_percent_encode(token, NON_ALPHANUMERIC)));
        }
        if delimited {
            url.push_str("&delimiter=%2F");
        }
        let doing = format!("listing gs://{}/{prefix}", self.bucket);
        self.send(
            &doing,
            None,
            || Ok(self.transport.client().get(&url)),
            |response| {
                if response.status == 404 {
                    return Err(Reject::Fail(storage(
                        StorageErrorKind::BucketNotFound,
                        format!("{doing} failed: the bucket does not exist (check its name and the endpoint)"),
                    )));
                }
                if response.status != 200 {
                    return Err(Reject::Fail(from_status(&doing, response.status, &response.text())));
                }
                // The page is used only once it parsed whole: a body cut short is not JSON.
                serde_json::from_slice(&response.body).map_err(|e| {
                    Reject::Retry(storage(
                        StorageErrorKind::Other,
                        format!("{doing} failed: the answer is not a whole JSON API object list ({e})"),
                    ))
                })
            },
        )
        .await
    }

    /// Sends an API request with the OAuth headers (none for an emulator) through
    /// the shared transport; `parse` sees every whole answer.
    pub(crate) async fn send<T>(
        &self,
        doing: &str,
        timeout: Option<Duration>,
        build: impl Fn() -> Result<reqwest::RequestBuilder, Error>,
        parse: impl Fn(refgen_http::Response) -> Result<T, Reject<Error>>,
    ) -> Result<T, Error> {
        send_with_tokens(&self.transport, &self.tokens, doing, timeout, build, parse).await
    }

    fn request<'a>(&'a self, key: &'a str, at: SystemTime, expires_in: Duration) -> V4Request<'a> {
        V4Request {
            method: "GET",
            bucket: &self.bucket,
            object: Some(key),
            headers: &[],
            query: &[],
            endpoint: &self.url_endpoint,
            style: &self.url_style,
            at,
            expires_in,
        }
    }
}

#[async_trait::async_trait]
impl refgen_core::Uploader for GcsStore {
    async fn upload_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), Error> {
        let doing = format!("uploading gs://{}/{key}", self.bucket);
        let length = std::fs::metadata(path)
            .map_err(|e| {
                storage(
                    StorageErrorKind::Other,
                    format!("{doing} failed: cannot read {}: {e}", path.display()),
                )
            })?
            .len();
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            self.api_base,
            utf8_percent_encode(&self.bucket, NON_ALPHANUMERIC),
            utf8_percent_encode(key, NON_ALPHANUMERIC)
        );
        // Uploads replace the object whole, so each attempt sends the file again from
        // its start (a restartable body); an attempt gets a minute per 8 MiB.
        let timeout = self.transport.config().attempt_timeout * (1 + (length / (8 << 20)) as u32);
        let build = || {
            let file = std::fs::File::open(path).map_err(|e| {
                storage(
                    StorageErrorKind::Other,
                    format!("{doing} failed: cannot read {}: {e}", path.display()),
                )
            })?;
            Ok(self
                .transport
                .client()
                .post(&url)
                .header("content-type", content_type)
                .header("content-length", length)
                .body(reqwest::Body::from(tokio::fs::File::from_std(file))))
        };
        self.send(&doing, Some(timeout), build, |response| match response.status {
            200 => Ok(()),
            status => Err(Reject::Fail(from_status(&doing, status, &response.text()))),
        })
        .await
    }
}

#[async_trait::async_trait]
impl ListClient for GcsStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::full(self.page_size.max(1) as usize)
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        // `startOffset` is inclusive (the key itself is dropped above this call),
        // and it is sent with every page: the page token expects the same query.
        let page = self
            .fetch_page(request.prefix, request.start_after, request.token, request.delimited)
            .await?;
        Ok(ListPage {
            objects: page.items.into_iter().map(ListedObject::into_meta).collect(),
            prefixes: page.prefixes,
            next: page.next_page_token,
        })
    }
}

#[async_trait::async_trait]
impl Signer for GcsStore {
    fn max_expiry(&self) -> Duration {
        self.max_expiry
    }

    async fn sign_page(&self, objects: &[ObjectMeta], expires_in: Duration) -> Result<Vec<String>, Error> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let at = SystemTime::now();
        match &self.backend {
            SigningBackend::Local(signer) => {
                // RSA signing takes a fraction of a millisecond per URL: keep it off the
                // async workers, so listing goes on while pages are signed.
                let signer = Arc::clone(signer);
                let keys: Vec<String> = objects.iter().map(|o| o.key.clone()).collect();
                let (bucket, endpoint, style) =
                    (self.bucket.clone(), self.url_endpoint.clone(), self.url_style.clone());
                tokio::task::spawn_blocking(move || {
                    keys.iter()
                        .map(|key| {
                            let req = V4Request {
                                method: "GET",
                                bucket: &bucket,
                                object: Some(key),
                                headers: &[],
                                query: &[],
                                endpoint: &endpoint,
                                style: &style,
                                at,
                                expires_in,
                            };
                            v4::sign_url(&req, signer.as_ref())
                                .map_err(|e| storage(StorageErrorKind::InvalidConfig, e.to_string()))
                        })
                        .collect::<Result<Vec<_>, Error>>()
                })
                .await
                .map_err(|e| storage(StorageErrorKind::Other, format!("signing stopped: {e}")))?
            }
            SigningBackend::SignBlob(client) => {
                let prepared: Vec<v4::Prepared> = objects
                    .iter()
                    .map(|o| {
                        v4::prepare(
                            &self.request(&o.key, at, expires_in),
                            "GOOG4-RSA-SHA256",
                            client.service_account(),
                        )
                    })
                    .collect();
                stream::iter(prepared)
                    .map(|prepared| {
                        let client = Arc::clone(client);
                        async move {
                            let signature = client.sign(prepared.string_to_sign.as_bytes()).await?;
                            Ok::<_, Error>(prepared.url_with(&signature))
                        }
                    })
                    .buffered(SIGN_BLOB_CONCURRENCY)
                    .try_collect()
                    .await
            }
        }
    }
}
