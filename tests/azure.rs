//! End-to-end: the `refgen` binary against Azurite (which checks SAS signatures and
//! expiry) in SAS-token and account-key modes, and the Entra ID mode against a local
//! stand-in for the managed-identity token endpoint and the Blob service calls it
//! makes (Azurite accepts OAuth only over HTTPS).

use std::time::{Duration, SystemTime};

use refgen_azure::signer::{AccountKey, Resource, SasFields, account_sas, sas_time, service_sas};
use refgen_core::naming::key_of_flat_name;
use refgen_e2e::stub::StubServer;
use refgen_e2e::*;

fn key() -> AccountKey {
    AccountKey::from_base64(&azure_env().2).expect("Azurite's key")
}

/// An account SAS with every permission, for fixtures (made with refgen's own signer,
/// which the official SDK's vectors pin).
fn admin_sas() -> String {
    let expiry = sas_time(SystemTime::now() + Duration::from_secs(3600));
    account_sas(
        &key(),
        &azure_env().1,
        "sco",
        &SasFields {
            permissions: "rwdlac",
            expiry: &expiry,
            ..Default::default()
        },
    )
    .query
}

/// A container SAS of the local account with these permissions, until `expiry`.
fn container_sas(account: &str, container: &str, permissions: &str, expiry: &str) -> String {
    let fields = SasFields {
        permissions,
        expiry,
        ..Default::default()
    };
    service_sas(&key(), account, container, Resource::Container, &fields).query
}

fn container_with(keys: &[String]) -> String {
    let (endpoint, _, _) = azure_env();
    let container = unique_bucket("az");
    let sas = admin_sas();
    let (status, body) = http_send(
        "PUT",
        &format!("{endpoint}/{container}?restype=container&{sas}"),
        Vec::new(),
    );
    assert_eq!(status, 201, "create container: {}", String::from_utf8_lossy(&body));
    for key in keys {
        let url = azure_blob_url(&endpoint, &container, key, &sas);
        let (status, text) = azure_put_blob(&url, body_for(key));
        assert!(
            status == 201 || key.contains("/./") || key.contains("/../"),
            "upload {key:?}: {status} {text}"
        );
    }
    container
}

fn account_key_run(args: &[&str]) -> Refgen {
    let (endpoint, _, key) = azure_env();
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--endpoint-url".to_owned(), endpoint]);
    Refgen::new(all).env("AZURE_STORAGE_KEY", key)
}

/// SAS-token mode: the user's container SAS lists and is appended to every URL.
/// The URLs stop working when the token does: a token that ends before
/// --expires-in is refused with one line (exit 2, no output), and accepted with
/// --allow-short-expiry, which says the token bounds the expiry.
#[test]
fn sas_token_mode_lists_and_reads_with_the_users_token() {
    require!(Azure);
    let keys: Vec<String> = ["x/1.png", "x/2 two.png", "y.txt"].map(String::from).to_vec();
    let container = container_with(&keys);
    let (endpoint, account, _) = azure_env();
    let expiry = sas_time(SystemTime::now() + Duration::from_secs(2 * 3600 + 30));
    let token = container_sas(&account, &container, "rl", &expiry);
    let source = format!("az://{account}/{container}/");
    let with_token = |extra: &[&str]| {
        let mut args = vec!["generate", &source, "--images", "--endpoint-url", &endpoint];
        args.extend(extra);
        Refgen::new(args).env("AZURE_STORAGE_SAS_TOKEN", format!("?{token}"))
    };
    let refused = with_token(&[]).run();
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    if let Some(why) = not_one_error_line("a short SAS token", &refused, "the signing credentials expire at") {
        panic!("{why}");
    }
    assert!(refused.stderr.contains("--allow-short-expiry"), "{}", refused.stderr);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("refs.jsonl");
    let run = with_token(&["--allow-short-expiry", "--json", "-o", out.to_str().expect("path")])
        .run()
        .assert_ok();
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    let limit = report["expiry_limit"].as_str().expect("expiry_limit");
    assert!(
        limit.starts_with("the signing credentials, which expire at"),
        "{report}"
    );
    let seconds = report["expires_in_seconds"].as_u64().expect("seconds");
    assert!((2 * 3600 - 60..=2 * 3600 + 30).contains(&seconds), "{report}");
    let lines = parse_references(&std::fs::read(&out).expect("refs"));
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert!(line.url.ends_with(&token), "{}", line.url);
        assert_eq!(http_get(&line.url).0, 200);
    }

    let read_only = container_sas(&account, &container, "r", &expiry);
    let run = Refgen::new([
        "generate",
        &format!("az://{account}/{container}/"),
        "--endpoint-url",
        &endpoint,
        "--sas-token",
        &read_only,
    ])
    .run();
    assert!(
        !run.success && run.stderr.contains("does not grant list"),
        "{}",
        run.stderr
    );
}

/// A connection string (as the portal shows it) names account, key and endpoint
/// (paging: behavior/listing.rs).
#[test]
fn connection_string_mode() {
    require!(Azure);
    let keys: Vec<String> = (0..5).map(|i| format!("p/{i:05}.jpg")).collect();
    let container = container_with(&keys);
    let (endpoint, account, key) = azure_env();
    let conn = format!("DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};BlobEndpoint={endpoint};");
    let run = Refgen::new(["generate", &format!("az://{account}/{container}/"), "--name", "key"])
        .env("AZURE_STORAGE_CONNECTION_STRING", conn)
        .run()
        .assert_ok();
    let names: Vec<String> = parse_references(&run.stdout).into_iter().map(|l| l.name).collect();
    assert_eq!(names, keys, "in key order");
    let line = &parse_references(&run.stdout)[4];
    assert_eq!(http_get(&line.url), (200, body_for("p/00004.jpg")));
}

/// `refgen generate az://acct/cont/ ARGS…` in Entra ID mode against the stand-in
/// at `addr` (its managed-identity endpoint and Blob service).
fn entra_run(addr: &str, args: &[&str]) -> Refgen {
    let endpoint = format!("http://{addr}/acct");
    let mut all = vec!["generate", "az://acct/cont/", "--endpoint-url", &endpoint];
    all.extend_from_slice(args);
    Refgen::new(all)
        .env("IDENTITY_ENDPOINT", format!("http://{addr}/msi/token"))
        .env("IDENTITY_HEADER", "stub-identity-secret")
        .env("AZURE_TOKEN_CREDENTIALS", "prod")
}

/// A stand-in's 200 answer of XML.
fn xml(body: String) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let content_type = ("content-type".to_owned(), "application/xml".to_owned());
    (200, vec![content_type], body.into_bytes())
}

/// The delegation key the Entra stand-ins hand out.
const DELEGATION_KEY: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><UserDelegationKey><SignedOid>oid-1</SignedOid><SignedTid>tid-1</SignedTid><SignedStart>2026-01-01T00:00:00Z</SignedStart><SignedExpiry>2026-01-08T00:00:00Z</SignedExpiry><SignedService>b</SignedService><SignedVersion>2026-10-06</SignedVersion><Value>cmVmZ2VuLXRlc3QtZGVsZWdhdGlvbi1rZXktMzItYnl0ZXM=</Value></UserDelegationKey>";

/// A List Blobs page of the stand-ins: three names from `start`, and the marker of
/// the next page (empty at the end).
fn blob_page(names: &[String], start: usize) -> String {
    let page: String = names
        .iter()
        .skip(start)
        .take(3)
        .map(|n| format!("<Blob><Name>{n}</Name><Properties><Content-Length>1</Content-Length></Properties></Blob>"))
        .collect();
    let next = if start + 3 < names.len() {
        format!("<NextMarker>{}</NextMarker>", start + 3)
    } else {
        "<NextMarker/>".into()
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs>{page}</Blobs>{next}</EnumerationResults>"
    )
}

/// Entra ID mode: a token from the managed-identity endpoint, one user delegation
/// key for the whole run (however many pages), user-delegation SAS URLs.
#[test]
fn entra_id_mode_fetches_one_delegation_key_and_signs_user_delegation_sas() {
    require!(Azure);
    let names: Vec<String> = (0..7).map(|i| format!("d/{i}.jpg")).collect();
    let listing_names = names.clone();
    let service = StubServer::start(move |req| {
        let path = req.target.split('?').next().unwrap_or_default().to_owned();
        if path == "/msi/token" {
            if req.header("x-identity-header") != Some("stub-identity-secret") {
                return (401, vec![], b"{}".to_vec());
            }
            let expires = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("epoch")
                .as_secs()
                + 3600;
            let body = format!(
                r#"{{"access_token": "stub-aad-token", "expires_on": "{expires}", "resource": "https://storage.azure.com", "token_type": "Bearer"}}"#
            );
            return (
                200,
                vec![("content-type".to_owned(), "application/json".to_owned())],
                body.into_bytes(),
            );
        }
        if req.header("authorization") != Some("Bearer stub-aad-token") {
            return (
                403,
                vec![],
                b"<Error><Code>AuthenticationFailed</Code></Error>".to_vec(),
            );
        }
        if req.method == "POST" && req.target == "/acct/?restype=service&comp=userdelegationkey" {
            return xml(DELEGATION_KEY.into());
        }
        if req.method == "GET" && path == "/acct/cont" {
            // Pages of 3, following the marker, or from the first name after
            // `startFrom` (as a concurrent listing's key ranges ask).
            let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or_default();
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .map(|v| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
            };
            let start: usize = match (param("marker"), param("startFrom")) {
                (Some(marker), _) => marker.parse().unwrap_or(0),
                (None, Some(from)) => listing_names
                    .iter()
                    .position(|n| *n > from)
                    .unwrap_or(listing_names.len()),
                (None, None) => 0,
            };
            return xml(blob_page(&listing_names, start));
        }
        (404, vec![], b"<Error><Code>ResourceNotFound</Code></Error>".to_vec())
    });
    let run = entra_run(&service.addr.to_string(), &["--expires-in", "2d"])
        .run()
        .assert_ok();
    let lines = parse_references(&run.stdout);
    assert_eq!(
        lines
            .iter()
            .map(|l| key_of_flat_name(&l.name).expect("flat"))
            .collect::<Vec<_>>(),
        names
    );
    for line in &lines {
        for field in [
            "skoid=oid-1",
            "sktid=tid-1",
            "sks=b",
            "skv=2026-10-06",
            "sp=r",
            "sr=b",
            "sig=",
        ] {
            assert!(line.url.contains(field), "{field} missing: {}", line.url);
        }
    }
    let requests = service.requests();
    let key_requests: Vec<_> = requests
        .iter()
        .filter(|r| r.target.contains("comp=userdelegationkey"))
        .collect();
    assert_eq!(key_requests.len(), 1, "one delegation key for the whole run (3 pages)");
    let body = String::from_utf8_lossy(&key_requests[0].body).into_owned();
    assert!(
        body.contains("<KeyInfo><Start>") && body.contains("</Expiry></KeyInfo>"),
        "{body}"
    );
    assert_eq!(key_requests[0].header("x-ms-version"), Some("2026-10-06"));
    // Three pages of names (more requests when the listing goes concurrent), all
    // under the one delegation key.
    let listings = requests.iter().filter(|r| r.target.contains("comp=list")).count();
    assert!(listings >= 3, "{listings} listing requests");
    assert!(!run.stderr.contains("stub-aad-token") && !run.stderr.contains("stub-identity-secret"));
}

/// One clear line for Azure mistakes.
#[test]
fn azure_errors_are_one_clear_line() {
    require!(Azure);
    let container = container_with(&["a.jpg".to_owned()]);
    let (endpoint, account, _) = azure_env();
    let src = format!("az://{account}/{container}/");
    let cases: Vec<(&str, Refgen, &str)> = vec![
        (
            "missing container",
            account_key_run(&["generate", &format!("az://{account}/no-such-container/")]),
            "container does not exist",
        ),
        (
            "wrong key",
            Refgen::new(["generate", &src, "--endpoint-url", &endpoint]).env("AZURE_STORAGE_KEY", "d3Jvbmcta2V5"),
            "credentials were refused",
        ),
        (
            "key not base64",
            Refgen::new(["generate", &src, "--endpoint-url", &endpoint, "--account-key", "!!"]),
            "not valid base64",
        ),
        (
            "no credentials at all",
            Refgen::new(["generate", &src, "--endpoint-url", &endpoint])
                .env("IDENTITY_ENDPOINT", "http://127.0.0.1:1/token")
                .env("IDENTITY_HEADER", "x")
                .env("AZURE_TOKEN_CREDENTIALS", "prod"),
            "no Azure credentials found",
        ),
        (
            "unreachable",
            Refgen::new([
                "generate",
                &src,
                "--endpoint-url",
                "http://127.0.0.1:1/devstoreaccount1",
            ])
            .env("AZURE_STORAGE_KEY", azure_env().2),
            "cannot reach",
        ),
        (
            "connection string for another account",
            Refgen::new(["generate", &src]).env("AZURE_STORAGE_CONNECTION_STRING", "AccountName=other;AccountKey=a2V5"),
            "is for account `other`",
        ),
    ];
    // One error line; a request that is retried says so first (WARN lines).
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|(what, refgen, needle)| not_one_error_line(what, &refgen.run(), needle))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Entra ID tokens are cached and renewed before they expire: over a listing of
/// about 7 s, 5-second tokens are fetched a few times (not once per page), and no
/// request goes out with an expired one.
#[test]
fn entra_id_tokens_are_renewed_during_a_long_listing() {
    require!(Azure);
    use std::sync::{Arc, Mutex};
    let names: Vec<String> = (0..36).map(|i| format!("t/{i:02}.jpg")).collect();
    let listing_names = names.clone();
    // Token number → its expiry (seconds since the epoch, with a fraction).
    let issued: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let expired_uses = Arc::new(Mutex::new(0usize));
    let (tokens, expired) = (Arc::clone(&issued), Arc::clone(&expired_uses));
    let now = || {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("epoch")
            .as_secs_f64()
    };
    let service = StubServer::start(move |req| {
        let path = req.target.split('?').next().unwrap_or_default().to_owned();
        if path == "/msi/token" {
            let mut issued = tokens.lock().expect("lock");
            let expires = now() + 5.0;
            issued.push(expires);
            let body = format!(
                r#"{{"access_token": "tok-{}", "expires_on": "{}", "resource": "https://storage.azure.com", "token_type": "Bearer"}}"#,
                issued.len() - 1,
                expires.floor() as u64
            );
            return (
                200,
                vec![("content-type".to_owned(), "application/json".to_owned())],
                body.into_bytes(),
            );
        }
        let valid = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer tok-"))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| tokens.lock().expect("lock").get(n).copied())
            .is_some_and(|expiry| expiry.floor() > now());
        if !valid {
            *expired.lock().expect("lock") += 1;
            return (
                401,
                vec![],
                b"<Error><Code>InvalidAuthenticationInfo</Code></Error>".to_vec(),
            );
        }
        if req.method == "POST" && req.target == "/acct/?restype=service&comp=userdelegationkey" {
            return xml(DELEGATION_KEY.into());
        }
        // Pages of 3, 600 ms each: 12 pages, about 7 s in all.
        std::thread::sleep(Duration::from_millis(600));
        let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let start: usize = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("marker="))
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        xml(blob_page(&listing_names, start))
    });
    let run = entra_run(&service.addr.to_string(), &["--concurrency", "1"])
        .run()
        .assert_ok();
    assert_eq!(parse_references(&run.stdout).len(), names.len());
    let fetched = issued.lock().expect("lock").len();
    let pages = service
        .requests()
        .iter()
        .filter(|r| r.target.contains("comp=list"))
        .count();
    assert_eq!(pages, 12);
    assert!(
        fetched >= 2,
        "the token was never renewed ({fetched} fetched over 12 pages)"
    );
    assert!(
        fetched <= 6,
        "{fetched} tokens for 12 pages: fetched per request, not cached"
    );
    assert_eq!(
        *expired_uses.lock().expect("lock"),
        0,
        "a request went out with an expired token"
    );
}

/// Data Lake (hierarchical namespace) folders are blobs with the metadata
/// `hdi_isfolder=true`, named like the folder without a trailing `/`: they are
/// skipped as folder markers (counted as filtered), listed concurrently or one
/// request at a time. An empty blob without the metadata is a file, and kept.
#[test]
fn data_lake_folders_are_skipped_as_folder_markers() {
    require!(Azure);
    let (endpoint, account, _) = azure_env();
    let container = container_with(&["adls/dir/a.jpg".to_owned(), "adls/dir/sub/b.jpg".to_owned()]);
    let sas = admin_sas();
    for folder in ["adls/dir", "adls/dir/sub"] {
        let url = azure_blob_url(&endpoint, &container, folder, &sas);
        let (status, text) = azure_put_blob_with_metadata(&url, Vec::new(), &[("hdi_isfolder", "true")]);
        assert_eq!(status, 201, "{folder}: {text}");
    }
    let (status, text) = azure_put_blob(&azure_blob_url(&endpoint, &container, "adls/empty", &sas), Vec::new());
    assert_eq!(status, 201, "{text}");
    for concurrency in ["16", "1"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("refs.jsonl");
        let run = account_key_run(&[
            "generate",
            &format!("az://{account}/{container}/adls/"),
            "--name",
            "key",
            "--json",
            "--concurrency",
            concurrency,
            "-o",
            out.to_str().expect("path"),
        ])
        .run()
        .assert_ok();
        let names: Vec<String> = parse_references(&std::fs::read(&out).expect("read"))
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(
            names,
            ["adls/dir/a.jpg", "adls/dir/sub/b.jpg", "adls/empty"],
            "{concurrency}"
        );
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("--json");
        assert_eq!(report["skipped"]["filtered"], 2, "{concurrency}: {report}");
    }
}
