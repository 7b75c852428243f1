//! An explicit credential choice is used, or refused with a line naming it: never
//! silently replaced by another credential the chain would find.

use refgen_e2e::backends::Backend;
use refgen_e2e::stub::StubServer;
use refgen_e2e::*;

fn one_line_failure(run: &Run, wants: &[&str]) {
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    for want in wants {
        assert!(run.stderr.contains(want), "`{want}` missing: {}", run.stderr);
    }
    for internal in ["client error", "hyper", "reqwest", "dispatch failure"] {
        assert!(!run.stderr.contains(internal), "HTTP-library words: {}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_profile_is_used_or_refused_never_replaced_by_the_environment() {
    if !Backend::S3.available() {
        return;
    }
    let env = s3_env();
    let bucket = Backend::S3.bucket_with(&["a.jpg".to_owned()]).await;
    let write_profile = |refgen: Refgen| {
        let aws = refgen.home().join(".aws");
        std::fs::create_dir_all(&aws).expect("mkdir");
        std::fs::write(
            aws.join("credentials"),
            format!(
                "[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                env.access_key, env.secret_key
            ),
        )
        .expect("credentials file");
        refgen
    };
    // A profile that does not exist: refused by name, though the environment has keys.
    let run =
        write_profile(Refgen::new(["generate", &format!("s3://{bucket}/"), "--profile", "nope"]).s3_admin(&env)).run();
    one_line_failure(&run, &["profile `nope`", "ci"]);
    // The profile's keys win over wrong keys in the environment, as with the AWS CLI.
    let run = write_profile(
        Refgen::new(["generate", &format!("s3://{bucket}/"), "--profile", "ci"])
            .s3_credentials("WRONGKEY", "wrong-secret")
            .env("AWS_ENDPOINT_URL", &env.endpoint)
            .env("AWS_REGION", "us-east-1"),
    )
    .run()
    .assert_ok();
    assert_eq!(parse_references(&run.stdout).len(), 1);
}

#[test]
fn a_gcs_credentials_file_is_used_or_refused_never_replaced() {
    if !Backend::Gcs.available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let odd = dir.path().join("odd.json");
    std::fs::write(&odd, r#"{"type": "api_key", "key": "x"}"#).expect("write");
    // GOOGLE_APPLICATION_CREDENTIALS holds a usable key: the given file still decides.
    let run = Refgen::new([
        "generate",
        "gs://some-bucket/",
        "--credentials-file",
        odd.to_str().expect("path"),
    ])
    .gcs_emulator()
    .env("GOOGLE_APPLICATION_CREDENTIALS", gcs_dummy_key())
    .run();
    one_line_failure(&run, &["odd.json", "`api_key`"]);
}

/// `--service-account` with a key file of another account signs as the named
/// account through signBlob (the key's credentials acting for it), not locally.
#[tokio::test(flavor = "multi_thread")]
async fn a_gcs_service_account_is_not_ignored_when_a_key_file_is_present() {
    if !Backend::Gcs.available() {
        return;
    }
    let bucket = Backend::Gcs
        .bucket_with(&["a.jpg".to_owned(), "b.jpg".to_owned()])
        .await;
    let iam = StubServer::start(|_req| {
        let answer = serde_json::json!({"keyId": "k1", "signedBlob": "c2lnbmF0dXJl"});
        (
            200,
            vec![("content-type".into(), "application/json".into())],
            answer.to_string().into_bytes(),
        )
    });
    let other = "other@proj.iam.gserviceaccount.com";
    let run = Refgen::new([
        "generate",
        &format!("gs://{bucket}/"),
        "--credentials-file",
        gcs_dummy_key().to_str().expect("path"),
        "--service-account",
        other,
        "--iam-endpoint",
        &format!("http://{}", iam.addr),
        // Signing as another account is impersonation, which Google caps at 12 h.
        "--expires-in",
        "12h",
    ])
    .gcs_emulator()
    .run()
    .assert_ok();
    let lines = parse_references(&run.stdout);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| {
        l.url
            .contains("X-Goog-Credential=other%40proj.iam.gserviceaccount.com%2F")
    }));
    let calls = iam.requests();
    assert_eq!(calls.len(), 2, "one signBlob call per URL");
    assert!(
        calls.iter().all(|c| c.target.contains("other%40proj")),
        "{:?}",
        calls[0].target
    );
}

#[test]
fn azure_credential_choices_are_checked_before_any_request() {
    if !Backend::Azure.available() {
        return;
    }
    let (endpoint, account, _) = azure_env();
    // A connection string without a key or a SAS does not fall through to Entra ID.
    let run = Refgen::new(["generate", &format!("az://{account}/cont/")])
        .env(
            "AZURE_STORAGE_CONNECTION_STRING",
            format!("AccountName={account};BlobEndpoint={endpoint}"),
        )
        .run();
    one_line_failure(
        &run,
        &["connection string has neither AccountKey nor SharedAccessSignature"],
    );
    // A SAS token for an endpoint of another account is refused as a connection string is.
    let run = Refgen::new([
        "generate",
        "az://otheraccount/cont/",
        "--endpoint-url",
        &endpoint,
        "--sas-token",
        "sv=2026-02-06&ss=b&srt=co&sp=rl&se=2999-01-01T00%3A00%3A00Z&sig=x",
    ])
    .run();
    one_line_failure(&run, &["is for account `devstoreaccount1`", "`otheraccount`"]);
}
