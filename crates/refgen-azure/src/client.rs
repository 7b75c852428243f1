//! The Blob service REST calls, through the shared transport (with the cached
//! Entra ID token where that is the mode): List Blobs and its XML answer, and Put
//! Blob for an uploaded references file.
//!
//! List Blobs is one documented GET (`?restype=container&comp=list`) with `prefix`, `marker` and
//! `maxresults`; the answer is checked whole, then parsed with quick-xml's serde support. Names that XML
//! cannot carry come back `Encoded="true"` and percent-encoded.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use refgen_core::{Error, ObjectMeta, StorageErrorKind};
use refgen_http::Reject;
use serde::Deserialize;

use crate::error::{PROVIDER, from_status, storage};
use crate::signer::{Resource, SERVICE_VERSION};
use crate::{AzureStore, Mode};

#[derive(Debug, Deserialize)]
#[serde(rename = "EnumerationResults")]
pub(crate) struct EnumerationResults {
    #[serde(rename = "Blobs", default)]
    pub blobs: Blobs,
    #[serde(rename = "NextMarker", default)]
    pub next_marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Blobs {
    #[serde(rename = "Blob", default)]
    pub blob: Vec<Blob>,
    /// Sub-prefixes (delimited listings only), interleaved with the blobs.
    #[serde(rename = "BlobPrefix", default)]
    pub prefix: Vec<BlobPrefix>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BlobPrefix {
    #[serde(rename = "Name")]
    pub name: BlobName,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Blob {
    #[serde(rename = "Name")]
    pub name: BlobName,
    #[serde(rename = "Properties")]
    pub properties: Option<Properties>,
    /// User metadata (asked for with `include=metadata`).
    #[serde(rename = "Metadata", default)]
    pub metadata: Option<Metadata>,
    /// The version (where the account keeps versions; listed with `include=versions`).
    #[serde(rename = "VersionId", default)]
    pub version_id: Option<String>,
    /// Whether this version is the blob's current one.
    #[serde(rename = "IsCurrentVersion", default)]
    pub is_current_version: Option<bool>,
}

/// The one piece of a blob's metadata refgen reads.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Metadata {
    /// `true` on a Data Lake (hierarchical namespace) folder, which the Blob API
    /// lists as a zero-length blob named like the folder, without a trailing `/`.
    #[serde(rename = "hdi_isfolder", default)]
    pub hdi_isfolder: Option<String>,
}

impl Blob {
    /// A Data Lake folder, not a file.
    pub(crate) fn is_folder(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.hdi_isfolder.as_deref())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct BlobName {
    #[serde(rename = "@Encoded", default)]
    pub encoded: Option<bool>,
    #[serde(rename = "$text", default)]
    pub text: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Properties {
    #[serde(rename = "Content-Length")]
    pub content_length: Option<u64>,
    #[serde(rename = "Last-Modified")]
    pub last_modified: Option<String>,
    /// `Hot`, `Cool`, `Cold` or `Archive` (block blobs).
    #[serde(rename = "AccessTier")]
    pub access_tier: Option<String>,
}

impl Properties {
    /// A blob in the Archive tier (also while it is being rehydrated) cannot be read
    /// until it is moved to an online tier.
    pub(crate) fn archived(&self) -> bool {
        self.access_tier
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Archive"))
    }
}

impl BlobName {
    /// The blob's name, decoded when the service had to encode it.
    pub fn decoded(&self) -> Option<String> {
        if self.encoded == Some(true) {
            percent_encoding::percent_decode_str(&self.text)
                .decode_utf8()
                .ok()
                .map(|n| n.into_owned())
        } else {
            Some(self.text.clone())
        }
    }
}

/// Parses a page once it is known to be whole (one closed `EnumerationResults`
/// holding its `NextMarker`): a cut body would otherwise read as a shorter last page.
pub(crate) fn parse(body: &[u8]) -> Result<EnumerationResults, String> {
    refgen_http::whole_xml(body, "EnumerationResults", &["NextMarker"])?;
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    quick_xml::de::from_str(text).map_err(|e| e.to_string())
}

impl AzureStore {
    pub(crate) async fn fetch_page(
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
        // With each blob's metadata: a Data Lake folder is known by `hdi_isfolder`.
        // Pinned, every version, of which the current ones are kept.
        url.push_str(if self.pin_versions {
            "&include=metadata%2Cversions"
        } else {
            "&include=metadata"
        });
        let doing = format!("listing container `{}` of account `{}`", self.container, self.account);
        let page = self
            .send(
                &doing,
                None,
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
                    crate::client::parse(&response.body).map_err(|e| {
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
        let pin = self.pin_versions;
        let objects = page
            .blobs
            .blob
            .into_iter()
            // Older versions are not what a plain GET of the name reads.
            .filter(|b| !pin || b.is_current_version != Some(false))
            .map(|b| {
                let version = match (pin, b.version_id.clone()) {
                    (true, None) => {
                        return Err(Error::InvalidSource {
                            url: format!("azure://{}/{}", self.account, self.container),
                            reason: "versions cannot be pinned: the account does not keep blob versions (turn on versioning for blobs)"
                                .to_owned(),
                        });
                    }
                    (true, version) => version,
                    (false, _) => None,
                };
                let key = b.name.decoded().ok_or_else(|| {
                    storage(
                        StorageErrorKind::Other,
                        format!("{doing} failed: a blob name is not UTF-8 once decoded"),
                    )
                })?;
                let folder = b.is_folder();
                let props = b.properties;
                Ok(ObjectMeta {
                    key,
                    archived: props.as_ref().is_some_and(Properties::archived),
                    superseded: false,
                    folder,
                    version,
                    customer_key: false,
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
        into_file: Option<(&std::path::Path, Option<u64>)>,
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
        let call = self.transport.call(doing).on_unauthorized(&renew);
        call.timeout(timeout)
            .into_file_if(into_file)
            .send(
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

    /// Uploads the file at `path` to the blob `key` with Put Blob.
    pub(crate) async fn put_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), Error> {
        let doing = format!("uploading `{key}` to container `{}`", self.container);
        let file = refgen_http::UploadFile::open(path, PROVIDER, &doing)?;
        let timeout = file.timeout(self.transport.config());
        self.send(
            &doing,
            Some(timeout),
            None,
            || {
                // A blob SAS that may create and write this one blob.
                Ok(self
                    .transport
                    .client()
                    .put(self.request_url(key, "cw"))
                    .header("x-ms-version", SERVICE_VERSION)
                    .header("x-ms-blob-type", "BlockBlob")
                    .header("content-type", content_type)
                    .header("content-length", file.length)
                    .body(file.body()?))
            },
            |response| match response.status {
                201 => Ok(()),
                status => Err(Reject::Fail(from_status(&doing, status, &response.text()))),
            },
        )
        .await
    }

    /// The URL of the blob `key`, authorised as the credential mode does it: the
    /// user's SAS token, a short-lived blob SAS with `permissions` minted from the
    /// account key, or nothing (Entra ID sends a bearer token instead).
    fn request_url(&self, key: &str, permissions: &str) -> String {
        let query = match &self.mode {
            Mode::SasToken(token) => token.query.clone(),
            Mode::AccountKey(account_key) => self.short_lived_sas(account_key, Resource::Blob(key), permissions),
            Mode::Entra(_) => String::new(),
        };
        self.blob_url(key, &query).trim_end_matches('?').to_owned()
    }

    /// Downloads the blob `key` into the file at `to` with Get Blob, streamed (an
    /// inventory's data files can be large); an answer of another length than
    /// `expected` is fetched again.
    pub(crate) async fn get_file(&self, key: &str, to: &std::path::Path, expected: Option<u64>) -> Result<u64, Error> {
        let doing = format!("reading `{key}` of container `{}`", self.container);
        let timeout = self.transport.config().upload_timeout(expected.unwrap_or(0));
        self.send(
            &doing,
            Some(timeout),
            Some((to, expected)),
            || {
                Ok(self
                    .transport
                    .client()
                    .get(self.request_url(key, "r"))
                    .header("x-ms-version", SERVICE_VERSION))
            },
            |response| match response.status {
                200 => Ok(()),
                status => Err(Reject::Fail(from_status(&doing, status, &response.text()))),
            },
        )
        .await?;
        Ok(std::fs::metadata(to).map(|m| m.len()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_sizes_markers_and_encoded_names() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="x" ContainerName="c"><Prefix/><MaxResults>2</MaxResults><Blobs><Blob><Name>a &amp; b.jpg</Name><Properties><Content-Length>12</Content-Length><Last-Modified>Sat, 28 Nov 2026 20:00:40 GMT</Last-Modified></Properties></Blob><Blob><Name Encoded="true">bell%07.jpg</Name><Properties><Content-Length>3</Content-Length></Properties></Blob></Blobs><NextMarker>2!abc</NextMarker></EnumerationResults>"#;
        let r = parse(xml.as_bytes()).expect("parses");
        let names: Vec<_> = r.blobs.blob.iter().map(|b| b.name.decoded().expect("utf-8")).collect();
        assert_eq!(names, ["a & b.jpg", "bell\u{7}.jpg"]);
        assert_eq!(
            r.blobs.blob[0].properties.as_ref().and_then(|p| p.content_length),
            Some(12)
        );
        assert_eq!(r.next_marker.as_deref(), Some("2!abc"));
        let level = parse(br#"<EnumerationResults><Blobs><Blob><Name>a.jpg</Name></Blob><BlobPrefix><Name>b/</Name></BlobPrefix><Blob><Name>c.jpg</Name></Blob><BlobPrefix><Name>d/</Name></BlobPrefix></Blobs><NextMarker/></EnumerationResults>"#).expect("interleaved blobs and prefixes parse");
        assert_eq!(level.blobs.blob.len(), 2);
        assert_eq!(
            level
                .blobs
                .prefix
                .iter()
                .map(|p| p.name.text.as_str())
                .collect::<Vec<_>>(),
            ["b/", "d/"]
        );
        let empty = parse(br#"<EnumerationResults><Blobs/><NextMarker/></EnumerationResults>"#).expect("parses");
        assert!(empty.blobs.blob.is_empty());
        assert!(empty.next_marker.as_deref().unwrap_or_default().is_empty());
    }

    #[test]
    fn a_page_cut_anywhere_is_refused_not_read_as_a_shorter_page() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs><Blob><Name>tricky/a-z/y.jpg</Name></Blob><Blob><Name>b.jpg</Name></Blob></Blobs><NextMarker>2!abc</NextMarker></EnumerationResults>"#;
        assert!(parse(xml.as_bytes()).is_ok());
        for cut in 0..xml.len() {
            assert!(parse(&xml.as_bytes()[..cut]).is_err(), "cut at {cut} was accepted");
        }
    }

    #[test]
    fn a_data_lake_folder_is_known_by_its_metadata() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs><Blob><Name>dir</Name><Properties><Content-Length>0</Content-Length></Properties><Metadata><hdi_isfolder>true</hdi_isfolder><other>x</other></Metadata></Blob><Blob><Name>dir/a.jpg</Name><Properties><Content-Length>3</Content-Length></Properties><Metadata/></Blob><Blob><Name>empty</Name></Blob></Blobs><NextMarker/></EnumerationResults>"#;
        let page = parse(xml.as_bytes()).expect("parses");
        let folders: Vec<bool> = page.blobs.blob.iter().map(Blob::is_folder).collect();
        assert_eq!(folders, [true, false, false]);
    }
}
