//! SAS signatures against known answers from Microsoft's official Python SDK: every
//! case of `shared/vectors/azure/sas_vectors.json` (service and account SAS) and of
//! `user_delegation_vectors.json` beside this file (made by scripts/azure-sas-vectors.py;
//! its last two cases sign one blob version, `sr=bv`, as `--pin-versions` does).

use std::collections::BTreeMap;
use std::path::PathBuf;

use refgen_azure::signer::{
    AccountKey, Resource, SasFields, UserDelegationKey, account_sas, service_sas, user_delegation_sas,
};
use serde_json::Value;

fn shared() -> PathBuf {
    std::env::var_os("REFGEN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn read(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

/// Query parameters decoded, so that encoding choices (`/` kept or `%2F`) do not matter.
fn params(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

/// `2030-01-02 03:04:05+00:00` → `2030-01-02T03:04:05Z`.
fn sas_time(python: Option<&str>) -> Option<String> {
    python.map(|t| format!("{}Z", t.replace(' ', "T").trim_end_matches("+00:00")))
}

#[test]
fn every_official_sdk_case_matches() {
    let doc = read(shared().join("vectors/azure/sas_vectors.json"));
    let key = AccountKey::from_base64(doc["account_key"].as_str().expect("key")).expect("base64 key");
    let cases = doc["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 6, "the file has 6 cases; a missing one would go unnoticed");
    for case in cases {
        let name = case["description"].as_str().expect("description");
        let i = &case["inputs"];
        let (start, expiry) = (
            sas_time(i["start"].as_str()),
            sas_time(i["expiry"].as_str()).expect("expiry"),
        );
        let fields = SasFields {
            permissions: i["permission"].as_str().expect("permission"),
            start: start.as_deref(),
            expiry: &expiry,
            protocol: i["protocol"].as_str(),
            content_disposition: i["content_disposition"].as_str(),
            content_type: i["content_type"].as_str(),
        };
        let account = i["account_name"].as_str().expect("account");
        let sas = match case["kind"].as_str().expect("kind") {
            "generate_blob_sas" => service_sas(
                &key,
                account,
                i["container_name"].as_str().expect("container"),
                Resource::Blob(i["blob_name"].as_str().expect("blob")),
                &fields,
            ),
            "generate_container_sas" => service_sas(
                &key,
                account,
                i["container_name"].as_str().expect("container"),
                Resource::Container,
                &fields,
            ),
            "generate_account_sas" => account_sas(&key, account, i["resource_types"].as_str().expect("srt"), &fields),
            other => panic!("{name}: unknown kind {other}"),
        };
        assert_eq!(
            sas.string_to_sign,
            case["string_to_sign"].as_str().expect("sts"),
            "{name}: string to sign"
        );
        assert_eq!(
            params(&sas.query),
            params(case["sas_query"].as_str().expect("query")),
            "{name}: query"
        );
        assert_eq!(
            params(&sas.query)["sig"],
            case["sig"].as_str().expect("sig"),
            "{name}: signature"
        );
    }
}

#[test]
fn every_user_delegation_case_matches() {
    let doc = read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/user_delegation_vectors.json"));
    let k = &doc["user_delegation_key"];
    let s = |v: &Value, f: &str| v[f].as_str().unwrap_or_else(|| panic!("{f}")).to_owned();
    let key = UserDelegationKey {
        signed_oid: s(k, "signed_oid"),
        signed_tid: s(k, "signed_tid"),
        signed_start: s(k, "signed_start"),
        signed_expiry: s(k, "signed_expiry"),
        signed_service: s(k, "signed_service"),
        signed_version: s(k, "signed_version"),
        signed_delegated_user_tid: None,
        key: AccountKey::from_base64(&s(k, "value")).expect("key"),
    };
    let cases = doc["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 5, "a missing case would go unnoticed");
    let account_key = AccountKey::from_base64(
        read(shared().join("vectors/azure/sas_vectors.json"))["account_key"]
            .as_str()
            .expect("key"),
    )
    .expect("base64 key");
    for case in cases {
        let name = s(case, "description");
        let expiry = s(case, "expiry");
        let fields = SasFields {
            permissions: case["permission"].as_str().expect("permission"),
            start: case["start"].as_str(),
            expiry: &expiry,
            protocol: case["protocol"].as_str(),
            ..Default::default()
        };
        // A version's SAS (`sr=bv`) signs its id where a snapshot's time goes.
        let resource = match (case["blob_name"].as_str(), case["version_id"].as_str()) {
            (Some(blob), Some(version)) => Resource::BlobVersion(blob, version),
            (Some(blob), None) => Resource::Blob(blob),
            (None, _) => Resource::Container,
        };
        let sas = if case["kind"] == "service" {
            service_sas(&account_key, "devstoreaccount1", "testcont", resource, &fields)
        } else {
            user_delegation_sas(&key, "devstoreaccount1", "testcont", resource, &fields)
        };
        let want: BTreeMap<String, String> = case["params"]
            .as_object()
            .expect("params")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("str").to_owned()))
            .collect();
        assert_eq!(params(&sas.query), want, "{name}");
    }
}

#[test]
fn keys_never_show_in_debug_output() {
    let key = AccountKey::from_base64("c2VjcmV0LWtleS1ieXRlcw==").expect("key");
    assert_eq!(format!("{key:?}"), "AccountKey(** redacted **)");
    assert!(AccountKey::from_base64("not base64!").is_none());
}
