//! The presigner against published known answers: every case of
//! `shared/vectors/s3/presign_vectors.json` (botocore 1.44.8) and the example of
//! AWS's SigV4 query-authentication documentation.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use refgen_s3::{SigV4Presigner, SigningCredentials};
use serde_json::Value;

fn vectors() -> Value {
    let path = std::env::var_os("REFGEN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("vectors/s3/presign_vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn parse_amz_date(s: &str) -> SystemTime {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, &fmt)
        .expect("amz date")
        .assume_utc()
        .into()
}

/// The bucket's base URL as the case gives it: everything before the key.
fn endpoint_of_case(case: &Value) -> url::Url {
    let full = url::Url::parse(case["url"].as_str().expect("url")).expect("case url parses");
    let mut base = full.clone();
    base.set_query(None);
    if case["addressing_style"] == "path" {
        base.set_path(&format!("/{}", case["bucket"].as_str().expect("bucket")));
    } else {
        base.set_path("");
    }
    base
}

/// Same scheme, host and raw (still percent-encoded) path, and the same raw query
/// pairs: S3 verifies the signature over the sorted parameters, so their order in the
/// URL does not matter (botocore puts the session token after SignedHeaders).
fn assert_same_url(got: &str, want: &str, what: &str) {
    let split = |u: &str| -> (String, Vec<String>) {
        let (base, query) = u.split_once('?').unwrap_or((u, ""));
        let mut pairs: Vec<String> = query.split('&').map(str::to_owned).collect();
        pairs.sort();
        (base.to_owned(), pairs)
    };
    assert_eq!(split(got), split(want), "{what}\n got: {got}\nwant: {want}");
}

fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k}"))
}

#[test]
fn every_botocore_case_matches_exactly() {
    let v = vectors();
    let at = parse_amz_date(str_field(&v, "signing_time"));
    let cases = v["cases"].as_array().expect("cases");
    assert_eq!(
        cases.len(),
        73,
        "the vector file has 73 cases; a missing case would go unnoticed"
    );
    let mut checked = 0;
    for case in cases {
        let creds = SigningCredentials::new(
            str_field(&v, "access_key_id"),
            str_field(&v, "secret_access_key"),
            case["session_token"].as_str().map(str::to_owned),
        );
        let signer = SigV4Presigner::new(&endpoint_of_case(case), str_field(case, "region"), creds);
        let expires = Duration::from_secs(case["expires_in"].as_u64().expect("expires_in"));
        let got = signer.presign(str_field(case, "key"), at, expires);
        assert_same_url(
            &got,
            str_field(case, "url"),
            &format!("case {} key {:?}", case["config"], case["key"]),
        );
        checked += 1;
    }
    assert_eq!(checked, 73);
}

#[test]
fn aws_documentation_example() {
    let v = vectors();
    let ex = &v["aws_documented_example"];
    let creds = SigningCredentials::new(str_field(&v, "access_key_id"), str_field(&v, "secret_access_key"), None);
    let endpoint = url::Url::parse(&format!("https://{}.s3.amazonaws.com", str_field(ex, "bucket"))).expect("url");
    let signer = SigV4Presigner::new(&endpoint, str_field(ex, "region"), creds);
    let got = signer.presign(
        str_field(ex, "key"),
        parse_amz_date(str_field(ex, "signing_time")),
        Duration::from_secs(ex["expires_in"].as_u64().expect("expires")),
    );
    assert_same_url(&got, str_field(ex, "url"), "AWS documentation example");
    assert!(got.ends_with("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"));
}

#[test]
fn debug_output_hides_secrets() {
    let creds = SigningCredentials::new("AKIDVISIBLE", "very-secret-key", Some("session-token-value".into()));
    let endpoint = url::Url::parse("http://127.0.0.1:9000/b").expect("url");
    let shown = format!("{:?}", SigV4Presigner::new(&endpoint, "us-east-1", creds));
    assert!(shown.contains("AKIDVISIBLE"));
    assert!(
        !shown.contains("very-secret-key") && !shown.contains("session-token-value"),
        "{shown}"
    );
}

/// A requester-pays bucket: `x-amz-request-payer=requester` signed into the
/// query, against botocore's own query signer given the same URL, key, time and
/// credentials (`scripts/s3-requester-pays-known-answer.py`).
#[test]
fn requester_pays_is_signed_into_the_query_as_botocore_signs_it() {
    let want = include_str!("requester_pays_known_answer.txt").trim();
    let creds = SigningCredentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None);
    let endpoint = url::Url::parse("https://examplebucket.s3.amazonaws.com").expect("url");
    let signer = SigV4Presigner::new(&endpoint, "us-east-1", creds).with_request_payer();
    let got = signer.presign(
        "photos/a b+c.jpg",
        parse_amz_date("20260102T030405Z"),
        Duration::from_secs(3600),
    );
    assert_same_url(&got, want, "requester pays");
    assert!(got.contains("&x-amz-request-payer=requester&X-Amz-Signature="), "{got}");
    // Without it, the signature differs: the parameter is signed, not only sent.
    let creds = SigningCredentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None);
    let plain = SigV4Presigner::new(&endpoint, "us-east-1", creds).presign(
        "photos/a b+c.jpg",
        parse_amz_date("20260102T030405Z"),
        Duration::from_secs(3600),
    );
    let signature = |u: &str| u.rsplit_once("X-Amz-Signature=").map(|(_, s)| s.to_owned());
    assert_ne!(signature(&plain), signature(&got));
}

/// A URL pinned to one version (`versionId`, sorted between the `X-Amz-` names
/// and `x-amz-request-payer`), against botocore's own query signer given the
/// same URL, key, time and credentials
/// (`scripts/s3-requester-pays-known-answer.py --version-id …`).
#[test]
fn a_version_is_signed_into_the_query_as_botocore_signs_it() {
    let want = include_str!("version_id_known_answer.txt").trim();
    let creds = SigningCredentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None);
    let endpoint = url::Url::parse("https://examplebucket.s3.amazonaws.com").expect("url");
    let signer = SigV4Presigner::new(&endpoint, "us-east-1", creds).with_request_payer();
    let batch = signer.batch(parse_amz_date("20260102T030405Z"), Duration::from_secs(3600));
    let mut scratch = refgen_s3::signer::Scratch::default();
    let version = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo";
    let got = batch.presign_version_with("photos/a b+c.jpg", Some(version), &mut scratch);
    assert_same_url(&got, want, "versionId");
    // The scratch buffers serve the next URL, pinned or not, unchanged.
    let plain = batch.presign_with("photos/a b+c.jpg", &mut scratch);
    assert_eq!(plain, batch.presign("photos/a b+c.jpg"));
    assert!(!plain.contains("versionId"), "{plain}");
}
