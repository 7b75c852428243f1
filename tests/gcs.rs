//! End-to-end: the `refgen` binary against the local GCS emulator (fake-gcs-server),
//! in each signing mode. The emulator does not check signatures: the conformance
//! vectors in refgen-gcs prove the signer; these tests prove listing, paging, names,
//! URL shape and that every URL fetches its object's bytes.

use std::collections::HashSet;

use base64::Engine as _;
use refgen_e2e::backends::Backend;
use refgen_e2e::faults::{FaultProxy, Plan};
use refgen_e2e::stub::StubServer;
use refgen_e2e::*;

fn bucket_with(keys: &[String]) -> String {
    let endpoint = gcs_endpoint();
    let bucket = unique_bucket("gcs");
    gcs_create_bucket(&endpoint, &bucket);
    for key in keys {
        gcs_put(&endpoint, &bucket, key, body_for(key));
    }
    bucket
}

fn key_file_env(refgen: Refgen) -> Refgen {
    refgen
        .gcs_emulator()
        .env("GOOGLE_APPLICATION_CREDENTIALS", gcs_dummy_key())
}

/// Globs and presets work as on S3, in key order (paging: behavior/listing.rs).
#[test]
fn globs_and_presets_apply() {
    require!(Gcs);
    let mut keys: Vec<String> = (0..12).map(|i| format!("frames/{i:05}.png")).collect();
    keys.extend(["frames/notes.txt", "other/x.png", "frames/clip.MP4"].map(String::from));
    let bucket = bucket_with(&keys);
    let run = key_file_env(Refgen::new([
        "generate",
        &format!("gs://{bucket}/frames/*.png"),
        "--name",
        "key",
    ]))
    .run()
    .assert_ok();
    let names: Vec<String> = parse_references(&run.stdout).into_iter().map(|l| l.name).collect();
    let want: Vec<String> = (0..12).map(|i| format!("frames/{i:05}.png")).collect();
    assert_eq!(names, want);
    assert!(run.stderr.contains("listed 14 objects"), "{}", run.stderr);
    let run = key_file_env(Refgen::new([
        "generate",
        &format!("gs://{bucket}/"),
        "--videos",
        "--name",
        "key",
    ]))
    .run()
    .assert_ok();
    let names: Vec<String> = parse_references(&run.stdout).into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["frames/clip.MP4"]);
}

/// HMAC mode from GCS_HMAC_ACCESS_ID / GCS_HMAC_SECRET.
#[test]
fn hmac_keys_sign_urls() {
    require!(Gcs);
    let keys = vec!["a b/c+d.jpg".to_owned(), "plain.png".to_owned()];
    let bucket = bucket_with(&keys);
    let run = Refgen::new(["-vv", "generate", &format!("gs://{bucket}/")])
        .gcs_emulator()
        .env("RUST_LOG", "trace")
        .env("GCS_HMAC_ACCESS_ID", "GOOG1TESTACCESSID")
        .env("GCS_HMAC_SECRET", "hmac-secret-value")
        .run()
        .assert_ok();
    let lines = parse_references(&run.stdout);
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert!(
            line.url
                .contains("X-Goog-Algorithm=GOOG4-HMAC-SHA256&X-Goog-Credential=GOOG1TESTACCESSID%2F"),
            "{}",
            line.url
        );
        assert_eq!(http_get(&line.url).0, 200);
        let signature = line.url.rsplit_once("X-Goog-Signature=").expect("signed").1;
        assert!(!run.stderr.contains(signature), "a signature is in the trace log");
    }
    assert!(
        run.stderr.contains("GCS store ready"),
        "trace logging is on: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("hmac-secret-value"),
        "the HMAC secret is in the log"
    );
}

/// Credentials without a key (here the metadata server) sign through IAM signBlob:
/// one request per URL, with the metadata server's token, retried on 429.
#[test]
fn sign_blob_mode_calls_iam_once_per_url_with_the_right_shape() {
    require!(Gcs);
    let keys: Vec<String> = (0..25).map(|i| format!("img/{i:02}.jpg")).collect();
    let bucket = bucket_with(&keys);
    let email = "runner@proj.iam.gserviceaccount.com";
    let refused_once = std::sync::atomic::AtomicBool::new(false);
    let metadata = StubServer::start(move |req| {
        let flavor = vec![("Metadata-Flavor".to_owned(), "Google".to_owned())];
        let json = |v: serde_json::Value| {
            (
                200,
                vec![
                    ("content-type".into(), "application/json".into()),
                    ("Metadata-Flavor".into(), "Google".into()),
                ],
                v.to_string().into_bytes(),
            )
        };
        if req.header("metadata-flavor") != Some("Google") {
            return (400, flavor, b"missing Metadata-Flavor".to_vec());
        }
        match req.target.split('?').next().unwrap_or_default() {
            "/computeMetadata/v1/instance/service-accounts/default/email" => (200, flavor, email.as_bytes().to_vec()),
            "/computeMetadata/v1/instance/service-accounts/default/token" => {
                json(serde_json::json!({"access_token": "stub-token-123", "expires_in": 3599, "token_type": "Bearer"}))
            }
            "/computeMetadata/v1/universe/universe-domain" => (200, flavor, b"googleapis.com".to_vec()),
            _ => (404, flavor, b"not found".to_vec()),
        }
    });
    let iam = StubServer::start(move |req| {
        // Google rate-limits signBlob: refuse the first call to prove the retry.
        if !refused_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return (
                429,
                vec![],
                br#"{"error": {"code": 429, "message": "slow down"}}"#.to_vec(),
            );
        }
        let payload: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let blob = base64::engine::general_purpose::STANDARD
            .decode(payload["payload"].as_str().unwrap_or_default())
            .unwrap_or_default();
        // A stand-in signature: the SHA-256 of what was sent, so the test can match them.
        let signature = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &blob);
        let answer = serde_json::json!({"keyId": "k1", "signedBlob": base64::engine::general_purpose::STANDARD.encode(signature.as_ref())});
        (
            200,
            vec![("content-type".into(), "application/json".into())],
            answer.to_string().into_bytes(),
        )
    });

    let run = Refgen::new([
        "generate",
        &format!("gs://{bucket}/"),
        "--iam-endpoint",
        &format!("http://{}", iam.addr),
    ])
    .env("STORAGE_EMULATOR_HOST", gcs_endpoint())
    .env("GCE_METADATA_HOST", &metadata.addr)
    .run()
    .assert_ok();
    assert!(
        run.stderr
            .contains("signing through the IAM signBlob API as runner@proj.iam.gserviceaccount.com"),
        "{}",
        run.stderr
    );
    let lines = parse_references(&run.stdout);
    assert_eq!(lines.len(), 25);

    let calls = iam.requests();
    assert_eq!(calls.len(), 26, "one call per URL, plus the refused one");
    let mut expected_signatures = HashSet::new();
    for call in &calls {
        assert_eq!(call.method, "POST");
        assert_eq!(
            call.target,
            "/v1/projects/-/serviceAccounts/runner%40proj%2Eiam%2Egserviceaccount%2Ecom:signBlob"
        );
        assert_eq!(call.header("authorization"), Some("Bearer stub-token-123"));
        let payload: serde_json::Value = serde_json::from_slice(&call.body).expect("JSON body");
        assert_eq!(
            payload.as_object().map(|o| o.len()),
            Some(1),
            "only `payload`: {payload}"
        );
        let blob = base64::engine::general_purpose::STANDARD
            .decode(payload["payload"].as_str().expect("payload"))
            .expect("base64");
        let text = String::from_utf8(blob.clone()).expect("string to sign");
        assert!(
            text.starts_with("GOOG4-RSA-SHA256\n") && text.contains("/auto/storage/goog4_request\n"),
            "{text}"
        );
        let hex: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &blob)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        expected_signatures.insert(hex);
    }
    for line in &lines {
        assert!(
            line.url
                .contains("X-Goog-Credential=runner%40proj.iam.gserviceaccount.com%2F"),
            "{}",
            line.url
        );
        let signature = line.url.rsplit_once("X-Goog-Signature=").expect("signed").1;
        assert!(
            expected_signatures.contains(signature),
            "the URL carries IAM's signature"
        );
        assert_eq!(http_get(&line.url).0, 200);
    }
}

/// Clear one-line errors for GCS mistakes, before or without any listing.
#[test]
fn gcs_errors_are_one_clear_line() {
    require!(Gcs);
    let bucket = bucket_with(&["a.jpg".to_owned()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let not_json = dir.path().join("key.json");
    std::fs::write(&not_json, "not json").expect("write");
    let src = format!("gs://{bucket}/");
    let cases: Vec<(&str, Refgen, &str)> = vec![
        (
            "missing bucket",
            key_file_env(Refgen::new(["generate", "gs://no-such-bucket-gcs/"])),
            "bucket does not exist",
        ),
        (
            "too long",
            key_file_env(Refgen::new(["generate", &src, "--expires-in", "8d"])),
            "at most 7d",
        ),
        (
            "half an HMAC key",
            Refgen::new(["generate", &src])
                .gcs_emulator()
                .env("GCS_HMAC_ACCESS_ID", "x"),
            "needs both",
        ),
        (
            "key file is not JSON",
            Refgen::new(["generate", &src, "--credentials-file", not_json.to_str().expect("path")]).gcs_emulator(),
            "is not JSON",
        ),
        (
            "missing key file",
            Refgen::new(["generate", &src])
                .gcs_emulator()
                .env("GOOGLE_APPLICATION_CREDENTIALS", dir.path().join("nope.json")),
            "cannot read the credentials file",
        ),
        (
            "no key and no account",
            Refgen::new(["generate", &src]).gcs_emulator(),
            "no service account could be found",
        ),
        (
            "impersonation is capped at 12h",
            Refgen::new([
                "generate",
                &src,
                "--service-account",
                "sa@p.iam.gserviceaccount.com",
                "--expires-in",
                "1d",
            ])
            .gcs_emulator()
            .env("GOOGLE_APPLICATION_CREDENTIALS", gcs_user_credentials(dir.path())),
            "longer than the limit on a URL signed through signBlob as another account of 12h",
        ),
        (
            "unreachable emulator",
            key_file_env(Refgen::new(["generate", &src, "--endpoint-url", "http://127.0.0.1:1"])),
            "cannot reach http://127.0.0.1:1",
        ),
    ];
    let mut failures = Vec::new();
    for (what, refgen, needle) in cases {
        let run = refgen.run();
        let stderr = run.stderr.trim_end();
        let last = stderr.lines().last().unwrap_or_default();
        if run.success || !last.starts_with("error: ") || !last.contains(needle) || stderr.contains("panicked") {
            failures.push(format!("{what}: code {:?}, stderr {stderr:?}", run.code));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A gcloud user login (ADC `authorized_user`): holds no key, so signing needs
/// --service-account; its token endpoint is never reached in these tests.
fn gcs_user_credentials(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("adc.json");
    std::fs::write(
        &path,
        r#"{"type": "authorized_user", "client_id": "id", "client_secret": "s", "refresh_token": "r", "token_uri": "http://127.0.0.1:1/token"}"#,
    )
    .expect("write");
    path
}

/// A requester-pays bucket (`--user-project`): `userProject` on every listing
/// request, and signed into every URL's query (which fake-gcs-server does not
/// check: the signature over it is proven by a known answer in refgen-gcs's tests).
#[test]
fn user_project_goes_on_every_listing_and_into_every_url() {
    require!(Gcs);
    let keys = vec!["up/a b.jpg".to_owned(), "up/c.png".to_owned()];
    let bucket = bucket_with(&keys);
    let proxy = FaultProxy::start(&gcs_endpoint(), Plan::every_fault(Backend::Gcs.service(), 0.0, 1));
    let run = Backend::Gcs
        .generate(
            &format!("gs://{bucket}/up/"),
            Some(&proxy.url),
            &[
                "--user-project",
                "my-project",
                "--hmac-access-id",
                "GOOG1TESTACCESSID",
                "--hmac-secret",
                "s",
            ],
        )
        .run()
        .assert_ok();
    let lines = parse_references(&run.stdout);
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    for line in &lines {
        assert!(
            line.url.contains("&userProject=my-project&X-Goog-Signature="),
            "{}",
            line.url
        );
    }
    let heads = proxy.counts.heads.lock().expect("heads");
    let listings: Vec<&Vec<String>> = heads.iter().filter(|h| h[0].contains("/o?")).collect();
    assert!(!listings.is_empty(), "the listing went through the proxy");
    for head in listings {
        // Percent-encoded as every value of these requests is (`-` as `%2D`).
        assert!(head[0].contains("&userProject=my%2Dproject"), "{}", head[0]);
    }
}

/// A bucket-bound hostname (`--url-endpoint URL --bucket-bound`, or a host named
/// like the bucket, as a CNAME to `c.storage.googleapis.com` is): the URLs put the
/// object at the root of that host, `URL/OBJECT`, with no bucket in the path (the
/// V4 signature over that host and path is checked against Google's library in
/// refgen-gcs's `sdk_known_answers.json`). The URL endpoint is never contacted: the
/// same path under `/BUCKET` on the emulator reads the object.
#[test]
fn bucket_bound_hostnames_serve_objects_at_their_root() {
    require!(Gcs);
    let keys = vec!["pub/a b.jpg".to_owned(), "pub/ü+1.jpg".to_owned()];
    let plain = bucket_with(&keys);
    let cname = format!("{plain}.localhost");
    gcs_create_bucket(&gcs_endpoint(), &cname);
    for key in &keys {
        gcs_put(&gcs_endpoint(), &cname, key, body_for(key));
    }
    for (bucket, host, extra) in [
        (&plain, "cdn.localhost:1".to_owned(), Some("--bucket-bound")),
        (&cname, format!("{cname}:1"), None),
    ] {
        let public = format!("http://{host}");
        let mut args = vec![
            "generate".to_owned(),
            format!("gs://{bucket}/pub/"),
            "--url-endpoint".to_owned(),
            public.clone(),
            "--name".to_owned(),
            "key".to_owned(),
        ];
        args.extend(extra.map(str::to_owned));
        let run = key_file_env(Refgen::new(args)).run().assert_ok();
        let lines = parse_references(&run.stdout);
        assert_eq!(lines.len(), 2, "{}", run.stderr);
        for line in &lines {
            let rest = line
                .url
                .strip_prefix(&format!("{public}/pub/"))
                .unwrap_or_else(|| panic!("the object at the host's root: {}", line.url));
            let on_emulator = format!("{}/{bucket}/pub/{rest}", gcs_endpoint());
            assert_eq!(http_get(&on_emulator), (200, body_for(&line.name)), "{on_emulator}");
        }
    }
    // Without a URL endpoint there is no bucket-bound host to sign for.
    let run = key_file_env(Refgen::new(["generate", &format!("gs://{plain}/"), "--bucket-bound"])).run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--url-endpoint"), "{}", run.stderr);
    // And it is a GCS setting.
    let run = Refgen::new([
        "generate",
        "s3://b/",
        "--url-endpoint",
        "http://cdn.localhost:1",
        "--bucket-bound",
    ])
    .run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--bucket-bound is for gs://"), "{}", run.stderr);
}
