//! The List Blobs REST call and its XML answer.
//!
//! One documented GET (`?restype=container&comp=list`) with `prefix`, `marker` and
//! `maxresults`; the answer is checked whole, then parsed with quick-xml's serde support. Names that XML
//! cannot carry come back `Encoded="true"` and percent-encoded.

use serde::Deserialize;

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
}
