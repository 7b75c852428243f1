//! The JSON API calls, through the shared transport with the OAuth headers:
//! listing pages (used only once they parse whole) and media uploads.

use std::time::{Duration, SystemTime};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use refgen_core::list::ListPage;
use refgen_core::{Error, ObjectMeta, StorageErrorKind};
use refgen_http::{Reject, Transport};
use serde::Deserialize;

use crate::GcsStore;
use crate::credential::TokenSource;
use crate::error::{PROVIDER, from_status, storage};

/// One API request through `transport` with `tokens`' OAuth headers: the GCS call
/// path shared by listing, uploads and signBlob. A 401 gets one retry (the auth
/// library renews a token it finds expired).
pub(crate) async fn send_with_tokens<T>(
    transport: &Transport,
    tokens: &TokenSource,
    doing: &str,
    timeout: Option<Duration>,
    into_file: Option<(&std::path::Path, Option<u64>)>,
    build: impl Fn() -> Result<reqwest::RequestBuilder, Error>,
    parse: impl Fn(refgen_http::Response) -> Result<T, Reject<Error>>,
) -> Result<T, Error> {
    let renew = || {};
    let call = transport.call(doing).on_unauthorized(&renew);
    call.timeout(timeout)
        .into_file_if(into_file)
        .send(
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
    /// `pin`: keep the generation listed, for a URL of that generation only.
    fn into_meta(self, pin: bool) -> ObjectMeta {
        ObjectMeta {
            size: self.size.and_then(|s| s.parse().ok()).unwrap_or(0),
            last_modified: self
                .updated
                .and_then(|t| time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok())
                .map(SystemTime::from),
            // Every GCS storage class, Archive included, is read by a plain GET.
            archived: false,
            superseded: false,
            folder: false,
            version: self.generation.filter(|_| pin),
            customer_key: false,
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
    /// The live generation (decimal string), asked for when versions are pinned.
    generation: Option<String>,
}

impl GcsStore {
    pub(crate) async fn fetch_page(
        &self,
        prefix: &str,
        start_offset: Option<&str>,
        token: Option<&str>,
        delimited: bool,
    ) -> Result<ListPage, Error> {
        let mut url = format!(
            "{}/storage/v1/b/{}/o?fields=items(name,size,updated{}),prefixes,nextPageToken&maxResults={}&prefix={}",
            self.api_base,
            utf8_percent_encode(&self.bucket, NON_ALPHANUMERIC),
            if self.pin_versions { ",generation" } else { "" },
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
        url.push_str(&self.user_project_param());
        let doing = format!("listing gs://{}/{prefix}", self.bucket);
        let page: ListResponse = self
            .send(
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
            .await?;
        Ok(ListPage {
            objects: {
                let objects: Vec<ObjectMeta> = page.items.into_iter().map(|o| o.into_meta(self.pin_versions)).collect();
                if self.pin_versions
                    && let Some(o) = objects.iter().find(|o| o.version.is_none())
                {
                    return Err(storage(
                        StorageErrorKind::Other,
                        format!(
                            "{doing} failed: `{}` was listed without its generation, which a pinned URL needs",
                            o.key
                        ),
                    ));
                }
                objects
            },
            prefixes: page.prefixes,
            next: page.next_page_token,
        })
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
        send_with_tokens(&self.transport, &self.tokens, doing, timeout, None, build, parse).await
    }

    /// Uploads the file at `path` to `key` (a media upload, replacing the object).
    pub(crate) async fn put_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), Error> {
        let doing = format!("uploading gs://{}/{key}", self.bucket);
        let file = refgen_http::UploadFile::open(path, PROVIDER, &doing)?;
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}{}",
            self.api_base,
            utf8_percent_encode(&self.bucket, NON_ALPHANUMERIC),
            utf8_percent_encode(key, NON_ALPHANUMERIC),
            self.user_project_param()
        );
        let timeout = file.timeout(self.transport.config());
        let build = || {
            Ok(self
                .transport
                .client()
                .post(&url)
                .header("content-type", content_type)
                .header("content-length", file.length)
                .body(file.body()?))
        };
        self.send(&doing, Some(timeout), build, |response| match response.status {
            200 => Ok(()),
            status => Err(Reject::Fail(from_status(&doing, status, &response.text()))),
        })
        .await
    }

    /// Downloads `key` into the file at `to` (a media download), streamed; an
    /// answer of another length than `expected` is fetched again.
    pub(crate) async fn get_file(&self, key: &str, to: &std::path::Path, expected: Option<u64>) -> Result<u64, Error> {
        let doing = format!("reading gs://{}/{key}", self.bucket);
        let url = format!(
            "{}/storage/v1/b/{}/o/{}?alt=media{}",
            self.api_base,
            utf8_percent_encode(&self.bucket, NON_ALPHANUMERIC),
            utf8_percent_encode(key, NON_ALPHANUMERIC),
            self.user_project_param()
        );
        let timeout = self.transport.config().upload_timeout(expected.unwrap_or(0));
        send_with_tokens(
            &self.transport,
            &self.tokens,
            &doing,
            Some(timeout),
            Some((to, expected)),
            || Ok(self.transport.client().get(&url)),
            |response| match response.status {
                200 => Ok(()),
                status => Err(Reject::Fail(from_status(&doing, status, &response.text()))),
            },
        )
        .await?;
        Ok(std::fs::metadata(to).map(|m| m.len()).unwrap_or(0))
    }
}
