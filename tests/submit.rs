//! End-to-end: `refgen submit` from a bucket on the local S3 server to the local
//! Roboflow stand-in, which checks every request against the contract and really
//! downloads the references file and every referenced object.

use std::collections::BTreeMap;

use refgen_e2e::faults::{FaultProxy, Plan, Service};
use refgen_e2e::roboflow::{FakeRoboflow, Fault};
use refgen_e2e::stub::StubServer;
use refgen_e2e::*;

/// A bucket with `n` images under `imgs/` and one text file.
async fn bucket_with_images(env: &S3Env, n: usize) -> (String, Vec<String>) {
    let client = admin_client(env);
    let bucket = unique_bucket("submit");
    create_bucket(&client, &bucket).await;
    let keys: Vec<String> = (0..n).map(|i| format!("imgs/{i:03} photo.jpg")).collect();
    let mut objects: Vec<(String, Vec<u8>)> = keys.iter().map(|k| (k.clone(), body_for(k))).collect();
    objects.push(("imgs/notes.txt".into(), b"not an image".to_vec()));
    assert_eq!(put_objects(&client, &bucket, objects).await.len(), n + 1);
    (bucket, keys)
}

/// A bucket of `n` images (and a note) on the local S3 server, and a Roboflow stand-in.
struct Fixture {
    env: S3Env,
    bucket: String,
    keys: Vec<String>,
    rf: FakeRoboflow,
}

async fn fixture(n: usize) -> Fixture {
    let env = s3_env();
    let (bucket, keys) = bucket_with_images(&env, n).await;
    Fixture {
        env,
        bucket,
        keys,
        rf: FakeRoboflow::start(),
    }
}

fn submit(env: &S3Env, rf: &FakeRoboflow, args: &[&str]) -> Refgen {
    let mut all = vec!["submit".to_owned()];
    all.extend(args.iter().map(|s| s.to_string()));
    Refgen::new(all)
        .s3_admin(env)
        .env("API_BASE_URL", rf.base_url())
        .env("ROBOFLOW_API_KEY", rf.api_key())
        .env("REFGEN_RETRY_DELAY", "20ms")
}

/// `refgen submit s3://BUCKET/imgs/ --images --batch-id BATCH ARGS…` against the stand-in.
fn submit_images(env: &S3Env, rf: &FakeRoboflow, bucket: &str, batch: &str, args: &[&str]) -> Refgen {
    let source = format!("s3://{bucket}/imgs/");
    let mut all = vec![source.as_str(), "--images", "--batch-id", batch];
    all.extend_from_slice(args);
    submit(env, rf, &all)
}

fn expected(keys: &[String]) -> BTreeMap<String, Vec<u8>> {
    keys.iter()
        .map(|k| (refgen_core::naming::flat_name(k), body_for(k)))
        .collect()
}

/// Upload mode: the references file goes to the bucket, its signed URL to Roboflow;
/// --wait ends when every object's exact bytes were ingested.
#[tokio::test(flavor = "multi_thread")]
async fn upload_mode_ingests_every_objects_bytes_and_waits() {
    require!(S3);
    let Fixture { env, bucket, keys, rf } = fixture(40).await;
    let run = submit_images(
        &env,
        &rf,
        &bucket,
        "batch-upload",
        &[
            "--batch-name",
            "Upload test",
            "--upload-to",
            &format!("s3://{bucket}/refs/batch-upload.jsonl"),
            "--notifications-url",
            "https://hooks.example.com/rf",
            "--notification-category",
            "ingest-status",
            "--wait",
            "--poll-interval",
            "1s",
            "--json",
        ],
    )
    .run()
    .assert_ok();
    assert_eq!(
        rf.wait_ingested("batch-upload", 40),
        expected(&keys),
        "every object's exact bytes"
    );
    rf.assert_no_violations();
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("--json prints one JSON object");
    assert_eq!(summary["outcome"], "ingested");
    assert_eq!(summary["references"], 40);
    assert_eq!(summary["workspace"], rf.workspace());
    let url = summary["referencesURL"].as_str().expect("references URL");
    assert!(
        url.ends_with(&format!("/{bucket}/refs/batch-upload.jsonl")) && !url.contains('?'),
        "{url}"
    );
    let st = rf.state.lock().expect("lock");
    assert_eq!(st.ingests.len(), 1);
    assert!(st.ingests[0].3, "sent by URL");
    drop(st);
    assert!(!run.stderr.contains(rf.api_key()), "the API key is never printed");
}

/// Inline mode: requests of at most the limit, each with its own ingest id derived
/// once from the base (`id-0`, `id-1`, …).
#[tokio::test(flavor = "multi_thread")]
async fn inline_mode_chunks_with_derived_ingest_ids() {
    require!(S3);
    let Fixture { env, bucket, keys, rf } = fixture(30).await;
    submit_images(
        &env,
        &rf,
        &bucket,
        "batch-inline",
        &[
            "--ingest-id",
            "run1",
            "--inline-limit",
            "7",
            "--wait",
            "--poll-interval",
            "1s",
        ],
    )
    .run()
    .assert_ok();
    assert_eq!(rf.wait_ingested("batch-inline", 30), expected(&keys));
    rf.assert_no_violations();
    let st = rf.state.lock().expect("lock");
    let ids: Vec<(String, usize)> = st.ingests.iter().map(|(_, id, n, _)| (id.clone(), *n)).collect();
    assert_eq!(
        ids,
        [
            ("run1-0".into(), 7),
            ("run1-1".into(), 7),
            ("run1-2".into(), 7),
            ("run1-3".into(), 7),
            ("run1-4".into(), 2)
        ]
    );
}

/// 429, 503 and dropped connections are retried (3 attempts in all) with the same
/// ingest id; a `duplicated` answer counts as success; after 3 failures refgen says so.
#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_are_retried_and_repeats_are_success() {
    require!(S3);
    let Fixture { env, bucket, keys, rf } = fixture(5).await;
    rf.state
        .lock()
        .expect("lock")
        .ingest_faults
        .extend([Fault::Status(429), Fault::Drop]);
    let args = [
        &format!("s3://{bucket}/imgs/") as &str,
        "--images",
        "--batch-id",
        "batch-retry",
        "--ingest-id",
        "same",
        "--wait",
        "--poll-interval",
        "1s",
    ];
    submit(&env, &rf, &args).run().assert_ok();
    assert_eq!(rf.wait_ingested("batch-retry", 5), expected(&keys));
    assert_eq!(rf.state.lock().expect("lock").ingest_attempts, 3);

    // The same ingest id again: Roboflow answers duplicated, which is fine.
    let run = submit(&env, &rf, &args[..6]).run().assert_ok();
    assert!(run.stderr.contains("a repeat Roboflow already had"), "{}", run.stderr);

    rf.state
        .lock()
        .expect("lock")
        .ingest_faults
        .extend([Fault::Status(503), Fault::Status(503), Fault::Status(503)]);
    let run = submit_images(
        &env,
        &rf,
        &bucket,
        "batch-retry",
        &["--ingest-id", "other", "--max-attempts", "3"],
    )
    .run();
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("HTTP 503") && run.stderr.contains("after 3 attempts over"),
        "{}",
        run.stderr
    );
    rf.assert_no_violations();
}

/// Refusals: one clear line each, the API's own text shown, the key never.
#[tokio::test(flavor = "multi_thread")]
async fn api_refusals_and_local_checks_are_one_clear_line() {
    require!(S3);
    let Fixture {
        env,
        bucket,
        keys: _,
        rf,
    } = fixture(2).await;
    let src = format!("s3://{bucket}/imgs/");
    let check = |run: Run, needle: &str| {
        let stderr = run.stderr.trim_end();
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            !run.success && last.starts_with("error: ") && last.contains(needle),
            "{needle}: {stderr}"
        );
        assert!(!stderr.contains(rf.api_key()));
    };
    check(
        submit(&env, &rf, &[&src, "--images", "--batch-id", "x"])
            .env("ROBOFLOW_API_KEY", "wrong-key")
            .run(),
        "check the API key",
    );
    rf.state
        .lock()
        .expect("lock")
        .ingest_faults
        .push_back(Fault::Status(402));
    check(
        submit(&env, &rf, &[&src, "--images", "--batch-id", "x"]).run(),
        "not enabled for this workspace",
    );
    let before = rf.requests().len();
    check(
        submit(&env, &rf, &[&src, "--images", "--batch-id", "Bad Id"]).run(),
        "invalid batch id `Bad Id`",
    );
    // imgs/ holds notes.txt beside the images: the kind cannot be told from the names.
    check(
        submit(&env, &rf, &[&src, "--batch-id", "x"]).run(),
        "pass --images or --videos",
    );
    check(
        submit(
            &env,
            &rf,
            &[
                &src,
                "--images",
                "--batch-id",
                "x",
                "--upload-to",
                &format!("s3://{bucket}/"),
            ],
        )
        .run(),
        "must name an object",
    );
    check(
        submit(&env, &rf, &[&src, "--images", "--batch-id", "x"])
            .env("ROBOFLOW_API_KEY", "")
            .run(),
        "no Roboflow API key",
    );
    check(
        submit(
            &env,
            &rf,
            &[
                &src,
                "--images",
                "--batch-id",
                "x",
                "--workflow-id",
                "w",
                "--job-id",
                "this-job-id-is-far-too-long",
            ],
        )
        .run(),
        "invalid job id",
    );
    assert_eq!(rf.requests().len(), before, "local checks send nothing");
}

/// With --workflow-id: the job starts once the batch is ingested, is followed to its
/// end, and its export files are downloaded; a job id reused differently is a 409.
#[tokio::test(flavor = "multi_thread")]
async fn workflow_job_runs_and_results_are_downloaded() {
    require!(S3);
    let Fixture { env, bucket, keys, rf } = fixture(6).await;
    let out = tempfile::tempdir().expect("tempdir");
    let results = out.path().join("results");
    let run = submit_images(
        &env,
        &rf,
        &bucket,
        "batch-job",
        &[
            "--upload-to",
            &format!("s3://{bucket}/refs/job.jsonl"),
            "--workflow-id",
            "detect-things",
            "--job-id",
            "job-1",
            "--machine-type",
            "gpu",
            "--workflow-parameters",
            r#"{"confidence": 0.4}"#,
            "--download-results",
            results.to_str().expect("path"),
            "--poll-interval",
            "1s",
            "--json",
        ],
    )
    .run()
    .assert_ok();
    assert_eq!(rf.wait_ingested("batch-job", 6), expected(&keys));
    rf.assert_no_violations();
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(summary["outcome"], "job-succeeded");
    assert_eq!(summary["jobId"], "job-1");
    // A folder per part of the output batch, as `refgen export` lays it out.
    for (part, file) in [("results", "results-2.jsonl"), ("visualisations", "vis-0.jpg")] {
        assert_eq!(
            std::fs::read_to_string(results.join(part).join(file)).expect("downloaded"),
            format!("results for /files/out-job-1/{part}/{file}\n")
        );
    }
    assert_eq!(summary["resultFiles"].as_array().map(Vec::len), Some(4), "{summary}");
    let job = rf.state.lock().expect("lock").jobs["job-1"].clone();
    assert_eq!(job["processingSpecification"]["workflowId"], "detect-things");
    assert_eq!(job["processingSpecification"]["workflowParameters"]["confidence"], 0.4);
    assert_eq!(job["computeConfiguration"]["machineType"], "gpu");
    assert_eq!(job["jobInput"]["batchId"], "batch-job");

    let run = submit_images(
        &env,
        &rf,
        &bucket,
        "batch-job",
        &[
            "--workflow-id",
            "another-workflow",
            "--job-id",
            "job-1",
            "--poll-interval",
            "1s",
        ],
    )
    .run();
    assert!(!run.success && run.stderr.contains("HTTP 409"), "{}", run.stderr);
}

/// --timeout ends a wait that cannot finish with its own exit code (124).
#[tokio::test(flavor = "multi_thread")]
async fn waiting_past_the_timeout_exits_124() {
    require!(S3);
    let Fixture {
        env,
        bucket,
        keys: _,
        rf,
    } = fixture(3).await;
    rf.state.lock().expect("lock").stall = true;
    let run = submit_images(
        &env,
        &rf,
        &bucket,
        "stalled",
        &["--wait", "--timeout", "3s", "--poll-interval", "1s", "--json"],
    )
    .run();
    assert_eq!(run.code, Some(124), "{}", run.stderr);
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(summary["outcome"], "timed-out");
}

/// --dry-run lists and signs but uploads and sends nothing; a references file made
/// earlier is submitted inline with its kind read from the names.
#[tokio::test(flavor = "multi_thread")]
async fn dry_run_sends_nothing_and_references_files_are_accepted() {
    require!(S3);
    let Fixture { env, bucket, keys, rf } = fixture(4).await;
    let run = submit_images(
        &env,
        &rf,
        &bucket,
        "dry",
        &["--upload-to", &format!("s3://{bucket}/refs/dry.jsonl"), "--dry-run"],
    )
    .run()
    .assert_ok();
    assert!(rf.requests().is_empty(), "a dry run sends nothing to Roboflow");
    let planned: serde_json::Value =
        serde_json::from_slice(run.stdout.split(|b| *b == b'\n').next().expect("a line")).expect("JSON");
    assert_eq!(
        planned["path"],
        "/data-staging/v1/external/<the API key's workspace>/batches/dry/bulk-upload/image-references"
    );
    let client = admin_client(&env);
    assert!(
        !list_keys(&client, &bucket).await.contains("refs/dry.jsonl"),
        "a dry run uploads nothing"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let refs = dir.path().join("refs.jsonl");
    Refgen::new([
        "generate",
        &format!("s3://{bucket}/imgs/"),
        "--images",
        "-o",
        refs.to_str().expect("path"),
    ])
    .s3_admin(&env)
    .run()
    .assert_ok();
    submit(
        &env,
        &rf,
        &[
            "--references",
            refs.to_str().expect("path"),
            "--batch-id",
            "from-file",
            "--wait",
            "--poll-interval",
            "1s",
        ],
    )
    .run()
    .assert_ok();
    assert_eq!(rf.wait_ingested("from-file", 4), expected(&keys));
    rf.assert_no_violations();
}

/// The references file can go to another provider than the source: GCS (emulator)
/// and Azure (Azurite) here, each reached through its own standard settings.
#[tokio::test(flavor = "multi_thread")]
async fn references_file_uploads_to_gcs_and_azure() {
    require!(S3, Gcs, Azure);
    let Fixture { env, bucket, keys, rf } = fixture(3).await;

    let gcs_bucket = unique_bucket("refs");
    gcs_create_bucket(&gcs_endpoint(), &gcs_bucket);
    submit_images(
        &env,
        &rf,
        &bucket,
        "to-gcs",
        &[
            "--upload-to",
            &format!("gs://{gcs_bucket}/refs/to-gcs.jsonl"),
            "--wait",
            "--poll-interval",
            "1s",
        ],
    )
    .env("STORAGE_EMULATOR_HOST", gcs_endpoint())
    .env("GOOGLE_APPLICATION_CREDENTIALS", gcs_dummy_key())
    .run()
    .assert_ok();
    assert_eq!(rf.wait_ingested("to-gcs", 3), expected(&keys));
    let (status, _) = http_get(&format!(
        "{}/storage/v1/b/{gcs_bucket}/o/refs%2Fto-gcs.jsonl",
        gcs_endpoint()
    ));
    assert_eq!(status, 200, "the references file is in the GCS bucket");

    let (az_endpoint, account, key) = azure_env();
    let container = unique_bucket("refs");
    let conn = format!("AccountName={account};AccountKey={key};BlobEndpoint={az_endpoint}");
    let sas = refgen_azure::signer::account_sas(
        &refgen_azure::signer::AccountKey::from_base64(&key).expect("key"),
        &account,
        "sco",
        &refgen_azure::signer::SasFields {
            permissions: "rwdlac",
            expiry: "2099-01-01T00:00:00Z",
            ..Default::default()
        },
    )
    .query;
    assert_eq!(
        http_send(
            "PUT",
            &format!("{az_endpoint}/{container}?restype=container&{sas}"),
            Vec::new()
        )
        .0,
        201
    );
    submit_images(
        &env,
        &rf,
        &bucket,
        "to-azure",
        &[
            "--upload-to",
            &format!("az://{account}/{container}/refs/to-azure.jsonl"),
            "--wait",
            "--poll-interval",
            "1s",
        ],
    )
    .env("AZURE_STORAGE_CONNECTION_STRING", conn)
    .run()
    .assert_ok();
    assert_eq!(rf.wait_ingested("to-azure", 3), expected(&keys));
    rf.assert_no_violations();
}

/// The Roboflow API behind the fault proxy (every fault, 30 % of calls): the
/// batch still gets every object once, and the stand-in sees no departure from the
/// contract (repeated ingests carry the same ingestId).
#[tokio::test(flavor = "multi_thread")]
async fn every_api_fault_is_survived() {
    require!(S3);
    let Fixture { env, bucket, keys, rf } = fixture(30).await;
    let proxy = FaultProxy::start(&rf.base_url(), Plan::every_fault(Service::Api, 0.3, 11));
    let run = submit_images(
        &env,
        &rf,
        &bucket,
        "batch-faults",
        &[
            "--inline-limit",
            "7",
            "--wait",
            "--poll-interval",
            "1s",
            "--request-timeout",
            "2s",
        ],
    )
    .env("API_BASE_URL", &proxy.url)
    .run()
    .assert_ok();
    assert_eq!(rf.wait_ingested("batch-faults", 30), expected(&keys), "{}", run.stderr);
    assert!(proxy.counts.total() > 0, "no fault was injected");
    eprintln!("survived {:?}", proxy.counts.by_kind());
    rf.assert_no_violations();
}

/// Bad input to submit is refused before any request, one line each (2 for a bad
/// flag value); an API key is never shown, in any encoding.
#[test]
fn bad_submit_input_is_refused_before_any_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = StubServer::start(|req| {
        // An API that echoes the request (and so the key) in its error text.
        let text = format!(
            "{{\"error\": \"bad request {} (decoded: {})\"}}",
            req.target,
            percent_encoding::percent_decode_str(&req.target.replace('+', " ")).decode_utf8_lossy()
        );
        (
            400,
            vec![("content-type".into(), "application/json".into())],
            text.into_bytes(),
        )
    });
    let write = |name: &str, lines: &[&str]| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("write");
        path.to_str().expect("path").to_owned()
    };
    let good = r#"{"name": "a.jpg", "url": "https://bucket.example.com/a.jpg?sig=1"}"#;
    let cases = [
        (
            write(
                "http.jsonl",
                &[good, r#"{"name": "b.jpg", "url": "http://bucket.example.com/b.jpg"}"#],
            ),
            "line 2: the url is plain http",
        ),
        (
            write("bad-url.jsonl", &[r#"{"name": "b.jpg", "url": "not a url"}"#]),
            "line 1: the url is not a URL",
        ),
        (
            write("ftp.jsonl", &[r#"{"name": "b.jpg", "url": "ftp://host/b.jpg"}"#]),
            "is a ftp: URL",
        ),
        (
            write("dupes.jsonl", &[good, good]),
            "line 2: the name `a.jpg` is already used on line 1",
        ),
    ];
    for (file, needle) in &cases {
        let run = Refgen::new(["submit", "--references", file, "--batch-id", "x", "--images"])
            .env("API_BASE_URL", format!("http://{}", api.addr))
            .env("ROBOFLOW_API_KEY", "k")
            .run();
        assert_eq!(run.code, Some(1), "{needle}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    let ok = write("ok.jsonl", &[good]);
    for (flag, value) in [
        ("--notifications-url", "ftp://hooks.example.com/x"),
        ("--notifications-url", "not a url"),
        ("--max-image-failure-rate", "1.5"),
        ("--max-image-failure-rate", "-0.1"),
    ] {
        let run = Refgen::new([
            "submit",
            "--references",
            &ok,
            "--batch-id",
            "x",
            "--workflow-id",
            "w",
            &format!("{flag}={value}"),
        ])
        .env("API_BASE_URL", format!("http://{}", api.addr))
        .env("ROBOFLOW_API_KEY", "k")
        .run();
        assert_eq!(run.code, Some(2), "{flag} {value}: {}", run.stderr);
        assert!(run.stderr.contains(flag), "{}", run.stderr);
    }
    assert!(api.requests().is_empty(), "bad input sent a request");

    // The API's error echoes the key percent-encoded and decoded: neither is shown.
    let key = "k+y/z=w q";
    let run = Refgen::new(["submit", "--references", &ok, "--batch-id", "x", "--api-key", key])
        .env("API_BASE_URL", format!("http://{}", api.addr))
        .run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(!api.requests().is_empty());
    for form in [key, "k%2By%2Fz%3Dw+q", "k%2By%2Fz%3Dw%20q", "k+y%2Fz%3Dw"] {
        assert!(!run.stderr.contains(form), "the key leaked as {form}: {}", run.stderr);
    }
    assert!(run.stderr.contains("***"), "{}", run.stderr);
}

/// Without --images or --videos the kind is told from the matched names when every
/// one says it (and said so on stderr); a mix is a usage error that asks for it.
#[tokio::test(flavor = "multi_thread")]
async fn the_kind_is_inferred_when_every_name_says_it() {
    require!(S3);
    let Fixture { env, bucket, keys, rf } = fixture(3).await;
    let run = submit(
        &env,
        &rf,
        &[
            &format!("s3://{bucket}/imgs/*.jpg"),
            "--batch-id",
            "told",
            "--wait",
            "--poll-interval",
            "1s",
        ],
    )
    .run()
    .assert_ok();
    assert!(
        run.stderr
            .contains("every one of the 3 references names an image: submitting as images"),
        "{}",
        run.stderr
    );
    assert_eq!(rf.wait_ingested("told", 3), expected(&keys));

    // imgs/ also holds notes.txt: which kind is meant cannot be told.
    let run = submit(&env, &rf, &[&format!("s3://{bucket}/imgs/"), "--batch-id", "mixed"]).run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("3 image names, 0 video names, 1 others")
            && run.stderr.contains("pass --images or --videos"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{}",
        run.stderr
    );
    rf.assert_no_violations();
}

/// --timeout bounds the wait itself: the listing, the upload and the ingest requests
/// before it do not shorten it (before, a 3s timeout gave up after about 1s of
/// waiting when the listing had taken 2s).
#[tokio::test(flavor = "multi_thread")]
async fn the_timeout_counts_from_the_start_of_the_wait() {
    require!(S3);
    let Fixture {
        env,
        bucket,
        keys: _,
        rf,
    } = fixture(300).await;
    rf.state.lock().expect("lock").stall = true;
    // Pages of one key, listed one at a time: the listing takes a while on its own.
    let started = std::time::Instant::now();
    let run = submit_images(
        &env,
        &rf,
        &bucket,
        "slow",
        &[
            "--wait",
            "--timeout",
            "3s",
            "--poll-interval",
            "1s",
            "--page-size",
            "1",
            "--concurrency",
            "1",
        ],
    )
    .run();
    let ended = std::time::Instant::now();
    assert_eq!(run.code, Some(124), "{}", run.stderr);
    let requests = rf.requests();
    let ingest = requests
        .iter()
        .find(|r| r.method == "POST" && r.target.contains("bulk-upload"))
        .expect("an ingest request");
    let waited = ended - ingest.at;
    assert!(
        waited >= std::time::Duration::from_secs(3),
        "waited {waited:?} after the ingest request (the run took {:?} in all)",
        ended - started
    );
}

/// -o keeps the references file that submit makes; -q leaves only errors on stderr;
/// the dry run shows the job's whole request body and warns without an API key.
#[tokio::test(flavor = "multi_thread")]
async fn output_quiet_and_dry_run_job_settings() {
    require!(S3);
    let Fixture { env, bucket, keys, rf } = fixture(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = dir.path().join("kept.jsonl");
    let run = submit_images(&env, &rf, &bucket, "kept", &["-o", kept.to_str().expect("path"), "-q"])
        .run()
        .assert_ok();
    assert_eq!(run.stderr, "", "-q: nothing but errors and warnings");
    let lines = parse_references(&std::fs::read(&kept).expect("the file is kept"));
    let names: Vec<String> = lines.into_iter().map(|l| l.name).collect();
    let want: Vec<String> = expected(&keys).into_keys().collect();
    assert_eq!(names, want);
    assert_eq!(rf.wait_ingested("kept", 2).len(), 2);

    let params = dir.path().join("params.json");
    std::fs::write(&params, r#"{"confidence": 0.4}"#).expect("write params");
    let run = Refgen::new([
        "submit",
        &format!("s3://{bucket}/imgs/"),
        "--images",
        "-b",
        "dry-job",
        "-w",
        "my-workflow",
        "-j",
        "job-1",
        "-jn",
        "Nightly",
        "-mt",
        "gpu",
        "--max-runtime-seconds",
        "900",
        "--workflow-params",
        params.to_str().expect("path"),
        "--notifications-url",
        "https://hooks.example.com/rf",
        "--dry-run",
    ])
    .s3_admin(&env)
    .run()
    .assert_ok()
    .assert_stderr_has("dry run without a Roboflow API key");
    let planned: Vec<serde_json::Value> = run
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("JSON"))
        .collect();
    let job = planned.last().expect("the job request");
    assert!(job["path"].as_str().expect("path").ends_with("/jobs/job-1"), "{job}");
    assert_eq!(job["query"]["name"], "Nightly");
    let body = &job["body"];
    assert_eq!(body["computeConfiguration"]["machineType"], "gpu");
    assert_eq!(body["processingTimeoutSeconds"], 900);
    assert_eq!(body["processingSpecification"]["workflowId"], "my-workflow");
    assert_eq!(body["processingSpecification"]["workflowParameters"]["confidence"], 0.4);
    assert_eq!(body["notificationsURL"], "https://hooks.example.com/rf");
    assert_eq!(body["jobInput"]["batchId"], "dry-job");
}

/// Sharded workers each submit their share into one batch, under ingest ids of
/// their own; together the batch holds every object. Waiting belongs to one step
/// after them all, so --shard with --wait is a usage error.
#[tokio::test(flavor = "multi_thread")]
async fn sharded_workers_fill_one_batch() {
    require!(S3);
    let Fixture { env, bucket, keys, rf } = fixture(40).await;
    for k in 0..2 {
        let shard = format!("{k}/2");
        submit_images(&env, &rf, &bucket, "sharded", &["--shard", &shard])
            .run()
            .assert_ok();
    }
    assert_eq!(rf.wait_ingested("sharded", 40), expected(&keys));
    let ids: Vec<String> = rf
        .state
        .lock()
        .expect("lock")
        .ingests
        .iter()
        .map(|i| i.1.clone())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] != ids[1], "each part has ingest ids of its own: {ids:?}");
    let run = submit(
        &env,
        &rf,
        &[
            &format!("s3://{bucket}/imgs/"),
            "--images",
            "-b",
            "sharded",
            "--shard",
            "0/2",
            "--wait",
        ],
    )
    .run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    rf.assert_no_violations();
}

/// Several --references parts go into one batch: inline, chunked part by part; by
/// upload, each part beside --upload-to's name, numbered; ingest ids derived once.
#[tokio::test(flavor = "multi_thread")]
async fn several_parts_go_into_one_batch() {
    require!(S3);
    let Fixture { env, bucket, keys, rf } = fixture(25).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("refs.jsonl");
    Refgen::new([
        "generate",
        &format!("s3://{bucket}/imgs/"),
        "--images",
        "--part-lines",
        "10",
        "-o",
        base.to_str().expect("path"),
    ])
    .s3_admin(&env)
    .run()
    .assert_ok();
    let parts: Vec<String> = (0..3)
        .map(|i| dir.path().join(format!("refs-{i:05}.jsonl")).display().to_string())
        .collect();
    let mut args: Vec<&str> = vec![
        "--batch-id",
        "parts-inline",
        "--ingest-id",
        "run",
        "--inline-limit",
        "4",
    ];
    for part in &parts {
        args.extend(["--references", part]);
    }
    submit(&env, &rf, &args).run().assert_ok();
    assert_eq!(rf.wait_ingested("parts-inline", 25), expected(&keys));
    let ids: Vec<String> = rf
        .state
        .lock()
        .expect("lock")
        .ingests
        .iter()
        .map(|i| i.1.clone())
        .collect();
    // 10, 10 and 5 references, 4 at a time: 3 + 3 + 2 requests, numbered once.
    assert_eq!(ids, (0..8).map(|i| format!("run-{i}")).collect::<Vec<_>>());

    let mut args: Vec<String> = vec![
        "--batch-id".into(),
        "parts-upload".into(),
        "--upload-to".into(),
        format!("s3://{bucket}/refs/nightly.jsonl"),
        "--json".into(),
    ];
    for part in &parts {
        args.extend(["--references".into(), part.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = submit(&env, &rf, &args).run().assert_ok();
    assert_eq!(rf.wait_ingested("parts-upload", 25), expected(&keys));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    let urls: Vec<&str> = summary["referencesURLs"]
        .as_array()
        .expect("urls")
        .iter()
        .map(|u| u.as_str().expect("url"))
        .collect();
    assert_eq!(urls.len(), 3);
    assert!(urls[2].ends_with("/refs/nightly-00002.jsonl"), "{urls:?}");
    rf.assert_no_violations();
}

/// The library's example (`crates/refgen/examples/pipeline.rs`, built by
/// scripts/test.sh): generate → verify → submit from Rust, waiting until the
/// stand-in has ingested every image's exact bytes.
#[tokio::test(flavor = "multi_thread")]
async fn the_library_example_generates_verifies_and_submits() {
    require!(S3);
    let Fixture { env, bucket, keys, rf } = fixture(6).await;
    let example = refgen_bin()
        .parent()
        .expect("bin folder")
        .join("examples")
        .join("pipeline");
    assert!(example.is_file(), "{} (cargo build --examples)", example.display());
    let refgen = submit(&env, &rf, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(&example)
        .args([format!("s3://{bucket}/imgs/"), "batch-example".to_owned()])
        .current_dir(dir.path())
        .env_clear()
        .envs(refgen.envs())
        .env("HOME", refgen.home())
        .output()
        .expect("the example runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(rf.wait_ingested("batch-example", 6), expected(&keys));
    rf.assert_no_violations();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("6 written, "), "{stdout}");
    assert!(stdout.contains(r#""outcome":"ingested""#), "{stdout}");
}

/// Every job option inference-cli offers reaches the job body exactly as the
/// contract's "Every job option" says, under inference-cli's spellings (the
/// two-letter short names too); the deprecated --machine-size becomes workers per
/// machine, as that client maps it, with a warning. `jobs restart` takes it too.
#[tokio::test(flavor = "multi_thread")]
async fn every_job_option_reaches_the_job_body() {
    require!(S3);
    let Fixture { env, bucket, rf, .. } = fixture(2).await;
    let run = submit_images(
        &env,
        &rf,
        &bucket,
        "all-options",
        &[
            "-w",
            "wf",
            "-j",
            "job-options",
            "--save-image-outputs",
            "--image-outputs-to-save",
            "crops",
            "--image-outputs-to-save",
            "overlay",
            "-p",
            "images",
            "-imp",
            "metadata",
            "-mm",
            "camera=camera_id",
            "--metadata-mapping",
            "site=site=north",
            "-ib",
            "inference-models",
            "-ms",
            "s",
            "--poll-interval",
            "1s",
        ],
    )
    .run()
    .assert_ok()
    .assert_stderr_has("--machine-size is deprecated");
    let _ = run;
    let body = rf
        .state
        .lock()
        .expect("lock")
        .jobs
        .get("job-options")
        .cloned()
        .expect("job started");
    let want = serde_json::json!({
        "type": "simple-image-processing-v1",
        "jobInput": {"type": "staging-batch-input-v1", "batchId": "all-options",
            "partName": "images", "imagesMetadataPart": "metadata"},
        "computeConfiguration": {"type": "compute-configuration-v2", "workersPerMachine": 4},
        "processingSpecification": {"type": "workflows-processing-specification-v1", "workspace": rf.workspace(),
            "workflowId": "wf", "persistImagesOutputs": true,
            "imagesOutputsToBePersisted": ["crops", "overlay"],
            "imagesMetadataInputsMapping": {"camera": "camera_id", "site": "site=north"}},
        "inferenceBackend": "inference-models",
    });
    assert_eq!(body, want);
    rf.assert_no_violations();

    // Usage errors: both ways of giving workers, a mapping without `=`.
    for (args, needle) in [
        (vec!["-ms", "m", "--workers-per-machine", "2"], "cannot be used with"),
        (vec!["--metadata-mapping", "camera"], "INPUT=FIELD"),
        (vec!["--inference-backend", "fast"], "invalid value"),
    ] {
        let mut all = vec!["-w", "wf", "--dry-run"];
        all.extend(args);
        let run = submit_images(&env, &rf, &bucket, "bad-options", &all).run();
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(run.stderr.contains(needle), "{}", run.stderr);
    }

    // jobs restart: --machine-size as workers per machine, and the other overrides.
    let run = Refgen::new([
        "jobs",
        "restart",
        "job-options",
        "-ms",
        "xs",
        "--max-parallel-tasks",
        "3",
    ])
    .env("API_BASE_URL", rf.base_url())
    .env("ROBOFLOW_API_KEY", rf.api_key())
    .run()
    .assert_ok();
    assert!(run.stderr.contains("deprecated"), "{}", run.stderr);
    let restarts = rf.state.lock().expect("lock").restarts.clone();
    assert_eq!(
        restarts.last().and_then(|(_, b)| b.clone()),
        Some(
            serde_json::json!({"type": "parameters-override-v1", "maxParallelTasks": 3,
            "computeConfiguration": {"type": "compute-configuration-v2", "workersPerMachine": 8}})
        )
    );
    rf.assert_no_violations();
}
