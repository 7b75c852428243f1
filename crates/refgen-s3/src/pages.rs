//! ListObjectsV2 answers read with quick-xml instead of the SDK's XML decoder.
//!
//! The SDK's decoder builds every field of every listed object (owner, ETag,
//! checksums, …) through a generic XML reader, and was about half of refgen's CPU
//! time on a listing. [`FastPages`] puts [`PageDecoder`] in front of the SDK's own
//! deserializer for ListObjectsV2 calls only: a 200 answer with URL-encoded keys
//! (what refgen asks for) is read here into the same `ListObjectsV2Output`, with
//! the fields refgen uses; anything else (an error status, a server that ignored
//! `encoding-type=url`, XML this reader does not expect) goes to the SDK's
//! deserializer unchanged, so errors, retries, timeouts and the whole-page check
//! ([`crate::retry::WholePage`], which runs after either) behave as before.

use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use aws_sdk_s3::types::{CommonPrefix, EncodingType, Object, ObjectStorageClass, RestoreStatus};
use aws_smithy_runtime_api::client::interceptors::context::{Error as OperationError, Output};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse, SharedResponseDeserializer};
use aws_smithy_types::config_bag::FrozenLayer;
use quick_xml::events::Event;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Installs [`PageDecoder`] for ListObjectsV2 calls.
#[derive(Debug)]
pub(crate) struct FastPages {
    /// The operation's own configuration, which holds the SDK's deserializer
    /// (`None`, and nothing is installed, should an SDK version not have it there).
    sdk: Option<FrozenLayer>,
}

impl FastPages {
    pub(crate) fn new() -> Self {
        let sdk = ListObjectsV2::new()
            .config()
            .filter(|layer| layer.load::<SharedResponseDeserializer>().is_some());
        FastPages { sdk }
    }
}

impl Intercept for FastPages {
    fn name(&self) -> &'static str {
        "refgen: ListObjectsV2 pages read with quick-xml"
    }

    fn read_before_deserialization(
        &self,
        _ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(sdk) = &self.sdk
            && cfg.load::<Metadata>().is_some_and(|m| m.name() == "ListObjectsV2")
        {
            // The orchestrator loads the deserializer after this hook has run, and
            // the interceptor state is the config bag's top layer, so this one is used.
            cfg.interceptor_state()
                .store_put(SharedResponseDeserializer::new(PageDecoder { sdk: sdk.clone() }));
        }
        Ok(())
    }
}

/// Reads a ListObjectsV2 answer itself when it can, and hands it to the SDK's
/// deserializer when it cannot (see the module doc).
#[derive(Debug)]
struct PageDecoder {
    sdk: FrozenLayer,
}

impl DeserializeResponse for PageDecoder {
    fn deserialize_nonstreaming_with_config(
        &self,
        response: &HttpResponse,
        cfg: &ConfigBag,
    ) -> Result<Output, OrchestratorError<OperationError>> {
        if response.status().as_u16() == 200
            && let Some(body) = response.body().bytes()
            && let Some(page) = read_page(body)
        {
            return Ok(Output::erase(page));
        }
        match self.sdk.load::<SharedResponseDeserializer>() {
            Some(sdk) => sdk.deserialize_nonstreaming_with_config(response, cfg),
            None => Err(OrchestratorError::other("no ListObjectsV2 deserializer")),
        }
    }
}

/// Which element's text is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    None,
    IsTruncated,
    KeyCount,
    NextToken,
    EncodingType,
    Key,
    Size,
    LastModified,
    StorageClass,
    RestoreInProgress,
    RestoreExpiry,
    Prefix,
}

/// The page, or `None` for anything the SDK should read instead: keys not
/// URL-encoded, a value that does not parse, XML that is not well formed, or an
/// entity other than XML's own.
pub(crate) fn read_page(body: &[u8]) -> Option<ListObjectsV2Output> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut out = ListObjectsV2Output::builder();
    let (mut contents, mut prefixes) = (Vec::new(), Vec::new());
    let mut url_encoded = false;
    let mut object: Option<aws_sdk_s3::types::builders::ObjectBuilder> = None;
    let mut restore: Option<aws_sdk_s3::types::builders::RestoreStatusBuilder> = None;
    let (mut in_prefixes, mut depth, mut root) = (false, 0usize, false);
    let mut field = Field::None;
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) => {
                depth += 1;
                let name = start.local_name();
                field = Field::None;
                text.clear();
                match (depth, name.as_ref()) {
                    (1, b"ListBucketResult") => root = true,
                    (1, _) => return None,
                    (2, b"Contents") => object = Some(Object::builder()),
                    (2, b"CommonPrefixes") => in_prefixes = true,
                    (2, b"IsTruncated") => field = Field::IsTruncated,
                    (2, b"KeyCount") => field = Field::KeyCount,
                    (2, b"NextContinuationToken") => field = Field::NextToken,
                    (2, b"EncodingType") => field = Field::EncodingType,
                    (3, b"Key") if object.is_some() => field = Field::Key,
                    (3, b"Size") if object.is_some() => field = Field::Size,
                    (3, b"LastModified") if object.is_some() => field = Field::LastModified,
                    (3, b"StorageClass") if object.is_some() => field = Field::StorageClass,
                    (3, b"RestoreStatus") if object.is_some() => restore = Some(RestoreStatus::builder()),
                    (3, b"Prefix") if in_prefixes => field = Field::Prefix,
                    (4, b"IsRestoreInProgress") if restore.is_some() => field = Field::RestoreInProgress,
                    (4, b"RestoreExpiryDate") if restore.is_some() => field = Field::RestoreExpiry,
                    _ => {}
                }
            }
            // An empty element that would carry a value (`<Key/>`): the SDK's call.
            Event::Empty(empty) => {
                let name = empty.local_name();
                let read = match (depth, name.as_ref()) {
                    (1, b"IsTruncated" | b"KeyCount" | b"NextContinuationToken" | b"EncodingType") => true,
                    (2, b"Key" | b"Size" | b"LastModified" | b"StorageClass") => object.is_some(),
                    (2, b"Prefix") => in_prefixes,
                    (3, b"IsRestoreInProgress" | b"RestoreExpiryDate") => restore.is_some(),
                    _ => false,
                };
                if read {
                    return None;
                }
            }
            Event::Text(t) if field != Field::None => text.push_str(&t.decode().ok()?),
            Event::CData(t) if field != Field::None => text.push_str(&t.decode().ok()?),
            Event::GeneralRef(r) if field != Field::None => match r.resolve_char_ref().ok()? {
                Some(c) => text.push(c),
                None => text.push(match &*r {
                    b"lt" => '<',
                    b"gt" => '>',
                    b"amp" => '&',
                    b"apos" => '\'',
                    b"quot" => '"',
                    _ => return None,
                }),
            },
            Event::End(end) => {
                let value = std::mem::take(&mut text);
                match std::mem::replace(&mut field, Field::None) {
                    Field::None => {}
                    Field::IsTruncated => out = out.is_truncated(boolean(&value)?),
                    Field::KeyCount => out = out.key_count(value.trim().parse().ok()?),
                    Field::NextToken => out = out.next_continuation_token(value),
                    Field::EncodingType => url_encoded = value == "url",
                    Field::Key => object = object.map(|o| o.key(value)),
                    Field::Size => {
                        let size: i64 = value.trim().parse().ok()?;
                        object = object.map(|o| o.size(size));
                    }
                    Field::LastModified => {
                        let at = DateTime::from_str(value.trim(), DateTimeFormat::DateTime).ok()?;
                        object = object.map(|o| o.last_modified(at));
                    }
                    Field::StorageClass => {
                        object = object.map(|o| o.storage_class(ObjectStorageClass::from(value.as_str())))
                    }
                    Field::RestoreInProgress => {
                        let in_progress = boolean(&value)?;
                        restore = restore.map(|r| r.is_restore_in_progress(in_progress));
                    }
                    Field::RestoreExpiry => {
                        let at = DateTime::from_str(value.trim(), DateTimeFormat::DateTime).ok()?;
                        restore = restore.map(|r| r.restore_expiry_date(at));
                    }
                    Field::Prefix => prefixes.push(CommonPrefix::builder().prefix(value).build()),
                }
                match (depth, end.local_name().as_ref()) {
                    (2, b"Contents") => contents.push(object.take()?.build()),
                    (2, b"CommonPrefixes") => in_prefixes = false,
                    (3, b"RestoreStatus") => {
                        object = object.map(|o| {
                            o.restore_status(
                                restore
                                    .take()
                                    .map(|r| r.build())
                                    .unwrap_or_else(|| RestoreStatus::builder().build()),
                            )
                        })
                    }
                    _ => {}
                }
                depth = depth.checked_sub(1)?;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root || depth != 0 || !url_encoded {
        return None;
    }
    Some(
        out.encoding_type(EncodingType::Url)
            .set_contents(Some(contents))
            .set_common_prefixes(Some(prefixes))
            .build(),
    )
}

fn boolean(text: &str) -> Option<bool> {
    match text.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><EncodingType>url</EncodingType>
<IsTruncated>true</IsTruncated><NextContinuationToken>1ue&amp;x&#47;y=</NextContinuationToken>
<Contents><Key>p/a+b%2Bc.jpg</Key><LastModified>2026-11-30T01:02:03.000Z</LastModified><ETag>&quot;e&quot;</ETag>
<ChecksumAlgorithm>CRC32</ChecksumAlgorithm><Size>12</Size><Owner><ID>x</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>p/cold.jpg</Key><Size>5</Size><StorageClass>GLACIER</StorageClass>
<RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress><RestoreExpiryDate>2026-12-30T00:00:00.000Z</RestoreExpiryDate></RestoreStatus></Contents>
<CommonPrefixes><Prefix>p/sub%20dir/</Prefix></CommonPrefixes></ListBucketResult>"#;

    #[test]
    fn a_page_reads_as_the_sdk_reads_it() {
        let page = read_page(PAGE.as_bytes()).expect("read here");
        assert_eq!(page.is_truncated(), Some(true));
        assert_eq!(page.key_count(), Some(3));
        assert_eq!(page.next_continuation_token(), Some("1ue&x/y="));
        assert_eq!(page.encoding_type(), Some(&EncodingType::Url));
        let objects = page.contents();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].key(), Some("p/a+b%2Bc.jpg"));
        assert_eq!(objects[0].size(), Some(12));
        assert_eq!(objects[0].storage_class(), Some(&ObjectStorageClass::Standard));
        assert_eq!(
            objects[0].last_modified().map(|t| t.secs()),
            Some(1_796_000_523),
            "2026-11-30T01:02:03Z"
        );
        assert!(objects[0].restore_status().is_none());
        assert_eq!(objects[1].storage_class(), Some(&ObjectStorageClass::Glacier));
        let restore = objects[1].restore_status().expect("restore status");
        assert_eq!(restore.is_restore_in_progress(), Some(false));
        assert!(restore.restore_expiry_date().is_some());
        let prefixes: Vec<_> = page.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
        assert_eq!(prefixes, ["p/sub%20dir/"]);
    }

    /// The SDK's own ListObjectsV2 deserializer, as the client would run it.
    fn sdk_read(body: &str) -> ListObjectsV2Output {
        let layer = ListObjectsV2::new().config().expect("the operation's configuration");
        let sdk = layer
            .load::<SharedResponseDeserializer>()
            .expect("the SDK's deserializer is where FastPages takes it from");
        let status = aws_smithy_runtime_api::http::StatusCode::try_from(200).expect("status");
        let response = HttpResponse::new(status, aws_sdk_s3::primitives::SdkBody::from(body.to_owned()));
        let output = sdk
            .deserialize_nonstreaming_with_config(&response, &ConfigBag::base())
            .expect("the SDK reads it");
        output
            .downcast::<ListObjectsV2Output>()
            .expect("a ListObjectsV2 answer")
    }

    /// What refgen uses of a page.
    fn used(page: &ListObjectsV2Output) -> String {
        let objects: Vec<String> = page
            .contents()
            .iter()
            .map(|o| {
                format!(
                    "{:?} {:?} {:?} {:?} {:?}",
                    o.key(),
                    o.size(),
                    o.last_modified(),
                    o.storage_class(),
                    o.restore_status()
                        .map(|r| (r.is_restore_in_progress(), r.restore_expiry_date()))
                )
            })
            .collect();
        let prefixes: Vec<_> = page.common_prefixes().iter().map(|p| p.prefix()).collect();
        format!(
            "{objects:?} {prefixes:?} {:?} {:?} {:?} {:?}",
            page.is_truncated(),
            page.key_count(),
            page.next_continuation_token(),
            page.encoding_type()
        )
    }

    /// Random pages, written as S3 and the servers refgen is tested on write them
    /// (URL-encoded keys, entities and character references in text, optional
    /// fields, other fields in between), read here and by the SDK: the same.
    #[test]
    fn random_pages_read_as_the_sdk_reads_them() {
        use rand::rngs::StdRng;
        use rand::{RngExt, SeedableRng};
        let mut rng = StdRng::seed_from_u64(26);
        // Text as servers escape it: entities, character references, or as is.
        let escape = |rng: &mut StdRng, text: &str| -> String {
            text.chars()
                .map(|c| match (c, rng.random_range(0..3)) {
                    ('&', 0) => "&#38;".to_owned(),
                    ('&', _) => "&amp;".to_owned(),
                    ('<', _) => "&lt;".to_owned(),
                    ('>', 0) => ">".to_owned(),
                    ('>', _) => "&gt;".to_owned(),
                    ('"', 0) => "&quot;".to_owned(),
                    ('\'', 0) => "&apos;".to_owned(),
                    (c, 1) if c.is_ascii_alphanumeric() => format!("&#x{:X};", u32::from(c)),
                    (c, _) => c.to_string(),
                })
                .collect()
        };
        const PIECES: &[&str] = &[
            "a", "Z", "0", "/", "%20", "+", "%2B", "%25", "&", "<", ">", "\"", "'", ".", "~", "%C3%A9",
        ];
        for _ in 0..300 {
            let mut body = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
            body.push_str(r#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#);
            body.push_str("<Name>b</Name><Prefix></Prefix><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType>");
            let truncated = rng.random_bool(0.5);
            let (objects, folders) = (rng.random_range(0..6), rng.random_range(0..3));
            if rng.random_bool(0.8) {
                body.push_str(&format!("<KeyCount>{}</KeyCount>", objects + folders));
            }
            body.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
            if truncated {
                body.push_str(&format!(
                    "<NextContinuationToken>{}</NextContinuationToken>",
                    escape(&mut rng, "1/t&k=n+")
                ));
            }
            let text = |rng: &mut StdRng| -> String {
                let raw: String = (0..rng.random_range(1..12))
                    .map(|_| PIECES[rng.random_range(0..PIECES.len())])
                    .collect();
                escape(rng, &raw)
            };
            for _ in 0..objects {
                body.push_str("<Contents>");
                body.push_str(&format!("<Key>{}</Key>", text(&mut rng)));
                if rng.random_bool(0.9) {
                    body.push_str("<LastModified>2026-11-30T01:02:03.000Z</LastModified>");
                }
                body.push_str("<ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag>");
                if rng.random_bool(0.5) {
                    body.push_str(
                        "<ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType>",
                    );
                }
                body.push_str(&format!("<Size>{}</Size>", rng.random_range(0..u32::MAX)));
                if rng.random_bool(0.3) {
                    body.push_str("<Owner><ID>x</ID><DisplayName>y</DisplayName></Owner>");
                }
                if rng.random_bool(0.9) {
                    let class =
                        ["STANDARD", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "SOMETHING_NEW"][rng.random_range(0..5)];
                    body.push_str(&format!("<StorageClass>{class}</StorageClass>"));
                }
                match rng.random_range(0..3) {
                    0 => {
                        body.push_str("<RestoreStatus><IsRestoreInProgress>true</IsRestoreInProgress></RestoreStatus>")
                    }
                    1 => body.push_str(
                        "<RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress>\
                         <RestoreExpiryDate>2026-12-30T00:00:00.000Z</RestoreExpiryDate></RestoreStatus>",
                    ),
                    _ => {}
                }
                body.push_str("</Contents>");
                if rng.random_bool(0.3) {
                    body.push_str("\n  ");
                }
            }
            for _ in 0..folders {
                body.push_str(&format!(
                    "<CommonPrefixes><Prefix>{}/</Prefix></CommonPrefixes>",
                    text(&mut rng)
                ));
            }
            body.push_str("</ListBucketResult>");
            let here = read_page(body.as_bytes()).unwrap_or_else(|| panic!("read here: {body}"));
            assert_eq!(used(&here), used(&sdk_read(&body)), "{body}");
        }
    }

    #[test]
    fn the_last_page_and_an_empty_one_read() {
        let last = r#"<ListBucketResult><EncodingType>url</EncodingType><KeyCount>0</KeyCount><Prefix/><IsTruncated>false</IsTruncated></ListBucketResult>"#;
        let page = read_page(last.as_bytes()).expect("read here");
        assert_eq!(page.is_truncated(), Some(false));
        assert!(page.contents().is_empty() && page.common_prefixes().is_empty());
        assert!(page.next_continuation_token().is_none());
    }

    /// What this reader leaves to the SDK's own deserializer.
    #[test]
    fn anything_unexpected_goes_to_the_sdk() {
        let cases = [
            // Keys not URL-encoded (a server that ignored encoding-type=url).
            PAGE.replace("<EncodingType>url</EncodingType>", ""),
            // Cut short: no closing root.
            PAGE[..PAGE.len() - 20].to_owned(),
            // Not a listing.
            "<Error><Code>NoSuchBucket</Code></Error>".to_owned(),
            // A value that does not parse.
            PAGE.replace("<Size>12</Size>", "<Size>twelve</Size>"),
            PAGE.replace("<IsTruncated>true</IsTruncated>", "<IsTruncated>yes</IsTruncated>"),
            // An entity XML does not define, an empty key, mismatched tags.
            PAGE.replace("1ue&amp;", "1ue&nbsp;"),
            PAGE.replace("<Key>p/cold.jpg</Key>", "<Key/>"),
            PAGE.replace("</Size><Owner>", "</Sise><Owner>"),
            String::new(),
        ];
        for (i, body) in cases.iter().enumerate() {
            assert!(read_page(body.as_bytes()).is_none(), "case {i} should go to the SDK");
        }
    }
}
