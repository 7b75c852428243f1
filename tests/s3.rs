//! End-to-end: the `refgen` binary against the local S3 server (SeaweedFS, which
//! checks SigV4 signatures and expiry). Start it with scripts/test.sh.

use std::collections::BTreeMap;

use refgen_e2e::backends::Backend;
use refgen_e2e::faults::{Fault, FaultProxy, Plan};
use refgen_e2e::*;

async fn filter_bucket(env: &S3Env) -> String {
    let client = admin_client(env);
    let bucket = unique_bucket("filters");
    create_bucket(&client, &bucket).await;
    let keys = [
        "images/a.jpg",
        "images/b.PNG",
        "images/sub/c.jpg",
        "images/sub/d.txt",
        "images/sub/e.tmp.jpg",
        "images-old/f.jpg",
        "videos/v.MP4",
        "videos/w.webm",
        "top.jpeg",
        "folder/",
        "notes.txt",
    ];
    let objects = keys
        .iter()
        .map(|k| (k.to_string(), if k.ends_with('/') { Vec::new() } else { body_for(k) }))
        .collect();
    assert_eq!(put_objects(&client, &bucket, objects).await.len(), keys.len());
    bucket
}

/// Globs, include/exclude and presets pick exactly the right objects.
#[tokio::test(flavor = "multi_thread")]
async fn globs_filters_and_presets_pick_exactly_the_right_objects() {
    require!(S3);
    let env = s3_env();
    let bucket = filter_bucket(&env).await;
    let pick = |pattern: &str, extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "generate".to_owned(),
            format!("s3://{bucket}/{pattern}"),
            "--name".into(),
            "key".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let run = Refgen::new(&args).s3_admin(&env).run().assert_ok();
        // Sorted here: SeaweedFS lists folder by folder (`images/` before `images-old/`),
        // not in S3's byte order; refgen keeps whatever order the server lists in.
        let mut names: Vec<String> = parse_references(&run.stdout).into_iter().map(|l| l.name).collect();
        names.sort();
        names
    };
    assert_eq!(pick("images/*.jpg", &[]), ["images/a.jpg"]);
    assert_eq!(
        pick("images/**/*.jpg", &[]),
        ["images/a.jpg", "images/sub/c.jpg", "images/sub/e.tmp.jpg"]
    );
    assert_eq!(
        pick("images", &[]).len(),
        6,
        "a plain prefix is not a folder: images-old/ is in"
    );
    assert_eq!(pick("images/", &["--exclude", "*.tmp.*"]).len(), 4);
    assert_eq!(pick("images/*.png", &["--ignore-case"]), ["images/b.PNG"]);
    assert_eq!(
        pick("", &["--images"]),
        [
            "images-old/f.jpg",
            "images/a.jpg",
            "images/b.PNG",
            "images/sub/c.jpg",
            "images/sub/e.tmp.jpg",
            "top.jpeg"
        ]
    );
    assert_eq!(pick("", &["--videos"]), ["videos/v.MP4", "videos/w.webm"]);
    assert_eq!(pick("", &["--images", "--videos"]).len(), 8);
    assert_eq!(
        pick(
            "",
            &[
                "--include",
                "images/sub/**",
                "--include",
                "*.webm",
                "--exclude",
                "*.txt"
            ]
        ),
        ["images/sub/c.jpg", "images/sub/e.tmp.jpg", "videos/w.webm"]
    );
    assert!(
        !pick("", &[]).contains(&"folder/".to_owned()),
        "folder markers are skipped"
    );
    assert_eq!(pick("", &[]).len(), 10);
    assert!(pick("nothing-here/", &["--allow-empty"]).is_empty());
    assert_eq!(
        pick("images/", &["--exclude", "sub/**"]),
        ["images/a.jpg", "images/b.PNG"],
        "a glob with a slash is relative to the source's folder"
    );
}

/// Credentials and endpoint from a named profile in the AWS config files.
#[tokio::test(flavor = "multi_thread")]
async fn profile_files_are_read_like_the_aws_cli() {
    require!(S3);
    let env = s3_env();
    let bucket = filter_bucket(&env).await;
    let refgen = Refgen::new(["generate", &format!("s3://{bucket}/top"), "--profile", "local"]);
    let aws = refgen.home().join(".aws");
    std::fs::create_dir_all(&aws).expect("~/.aws");
    std::fs::write(
        aws.join("config"),
        format!("[profile local]\nregion = eu-west-3\nendpoint_url = {}\n", env.endpoint),
    )
    .expect("config");
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[local]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            env.access_key, env.secret_key
        ),
    )
    .expect("credentials");
    let run = refgen.run().assert_ok();
    let line = parse_references(&run.stdout).remove(0);
    assert!(
        line.url.starts_with(&format!("{}/{bucket}/top.jpeg?", env.endpoint)),
        "{}",
        line.url
    );
    assert!(
        line.url.contains("%2Feu-west-3%2Fs3%2Faws4_request"),
        "signed for the profile's region: {}",
        line.url
    );
    assert_eq!(http_get(&line.url), (200, body_for("top.jpeg")));

    // AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL, as in the AWS CLI.
    let run = Refgen::new(["generate", &format!("s3://{bucket}/top")])
        .s3_credentials(&env.access_key, &env.secret_key)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_ENDPOINT_URL_S3", &env.endpoint)
        .run()
        .assert_ok();
    assert_eq!(parse_references(&run.stdout).len(), 1);
}

/// Each failure: a non-zero exit, one line on stderr saying what to fix, no panic,
/// and no output file (an existing one left as it was).
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_one_clear_line_and_no_output_file() {
    require!(S3);
    let env = s3_env();
    let bucket = filter_bucket(&env).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("refs.jsonl");
    std::fs::write(&out, "previous contents\n").expect("seed");
    let out_arg = out.to_str().expect("path").to_owned();
    let src = format!("s3://{bucket}/");

    let admin = |args: &[&str]| Refgen::new(args).s3_admin(&env);
    // Usage errors (what was typed) exit 2, every other failure 1.
    let cases: Vec<(&str, Refgen, &str)> = vec![
        (
            "unknown scheme",
            admin(&["generate", "ftp://bucket/x", "-o", &out_arg]),
            "unknown scheme `ftp://`",
        ),
        (
            "missing bucket",
            admin(&["generate", "s3://", "-o", &out_arg]),
            "missing bucket name",
        ),
        (
            "bad glob",
            admin(&["generate", &format!("{src}[a-"), "-o", &out_arg]),
            "invalid glob",
        ),
        (
            "bad include",
            admin(&["generate", &src, "--include", "{a,b", "-o", &out_arg]),
            "invalid glob",
        ),
        (
            "negative expiry",
            admin(&["generate", &src, "--expires-in=-5", "-o", &out_arg]),
            "must be positive",
        ),
        (
            "zero expiry",
            admin(&["generate", &src, "--expires-in", "0", "-o", &out_arg]),
            "at least one second",
        ),
        (
            "long expiry",
            admin(&["generate", &src, "--expires-in", "8d", "-o", &out_arg]),
            "at most 7d",
        ),
        (
            "garbled expiry",
            admin(&["generate", &src, "--expires-in", "soon", "-o", &out_arg]),
            "expected a number",
        ),
        (
            "no credentials",
            Refgen::new(["generate", &src, "-o", &out_arg]).env("AWS_ENDPOINT_URL", &env.endpoint),
            "no AWS credentials found",
        ),
        (
            // As on a laptop: the instance metadata service is tried last and
            // cannot be reached. The SDK's own warnings about it stay out of sight.
            "no credentials, instance metadata tried",
            Refgen::new(["generate", &src, "-o", &out_arg])
                .env("AWS_ENDPOINT_URL", &env.endpoint)
                .env("AWS_EC2_METADATA_DISABLED", "false")
                .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1"),
            "AWS credentials",
        ),
        (
            "unknown access key",
            Refgen::new(["generate", &src, "-o", &out_arg])
                .s3_credentials("NO-SUCH-KEY", &env.secret_key)
                .env("AWS_ENDPOINT_URL", &env.endpoint),
            "access key id is not known",
        ),
        (
            "wrong secret",
            Refgen::new(["generate", &src, "-o", &out_arg])
                .s3_credentials(&env.access_key, "wrong-secret")
                .env("AWS_ENDPOINT_URL", &env.endpoint),
            "check the secret access key",
        ),
        (
            "access denied",
            Refgen::new(["generate", &src, "-o", &out_arg])
                .s3_credentials(&env.reader_access_key, &env.reader_secret_key)
                .env("AWS_ENDPOINT_URL", &env.endpoint),
            "access denied",
        ),
        (
            "no such bucket",
            admin(&["generate", "s3://no-such-bucket-refgen/", "-o", &out_arg]),
            "bucket does not exist",
        ),
        (
            "unreachable endpoint",
            admin(&["generate", &src, "--endpoint-url", "http://127.0.0.1:1", "-o", &out_arg]),
            "cannot reach http://127.0.0.1:1: connection failed (connection refused) (gave up after",
        ),
        (
            "bad endpoint",
            admin(&["generate", &src, "--endpoint-url", "not a url", "-o", &out_arg]),
            "is not a URL",
        ),
        (
            "missing output folder",
            admin(&[
                "generate",
                &src,
                "-o",
                dir.path().join("no/such/dir/refs.jsonl").to_str().expect("path"),
            ]),
            "does not exist",
        ),
        (
            "output is a folder",
            admin(&["generate", &src, "-o", dir.path().to_str().expect("path")]),
            "is a folder",
        ),
    ];
    let usage = [
        "bad endpoint",
        "unknown scheme",
        "missing bucket",
        "bad glob",
        "bad include",
        "negative expiry",
        "zero expiry",
        "long expiry",
        "garbled expiry",
    ];
    let mut failures = Vec::new();
    for (what, refgen, needle) in cases {
        let run = refgen.run();
        let code = if usage.contains(&what) { 2 } else { 1 };
        let wrong_code = (run.code != Some(code)).then(|| format!("{what}: exit {:?}, not {code}", run.code));
        failures.extend(not_one_error_line(what, &run, needle).or(wrong_code));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "previous contents\n");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");

    // Usage errors come from the argument parser with its own code (2).
    let run = admin(&["generate"]).run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
}

/// Verbose logs never show the secret key, a session token or a URL signature.
#[tokio::test(flavor = "multi_thread")]
async fn logs_never_show_secrets() {
    require!(S3);
    let env = s3_env();
    let bucket = filter_bucket(&env).await;
    let run = Refgen::new(["-vv", "generate", &format!("s3://{bucket}/")])
        .s3_admin(&env)
        .env("RUST_LOG", "trace")
        .run()
        .assert_ok();
    let lines = parse_references(&run.stdout);
    assert!(!lines.is_empty());
    assert!(run.stderr.len() > 100, "trace logging produced output: {}", run.stderr);
    assert!(!run.stderr.contains(&env.secret_key), "secret key in logs");
    for line in &lines {
        let signature = line.url.rsplit_once("X-Amz-Signature=").expect("signed").1;
        assert!(!run.stderr.contains(signature), "a URL signature is in the logs");
    }
    // A session token is sent on every request: it must not be logged either, even on failure.
    let token = "IQoJb3JpZ2luX2VjEXAMPLE-session-token-value";
    let run = Refgen::new([
        "-vv",
        "generate",
        &format!("s3://{bucket}/"),
        "--endpoint-url",
        "http://127.0.0.1:1",
    ])
    .s3_admin(&env)
    .env("AWS_SESSION_TOKEN", token)
    .env("RUST_LOG", "trace")
    .run();
    assert!(!run.success);
    assert!(
        !run.stderr.contains(token) && !run.stderr.contains(&env.secret_key),
        "{}",
        run.stderr
    );
}

/// The same bucket gives the same file (names and URLs up to their signature time).
#[tokio::test(flavor = "multi_thread")]
async fn output_is_deterministic() {
    require!(S3);
    let env = s3_env();
    let bucket = filter_bucket(&env).await;
    let names = || -> Vec<String> {
        let run = Refgen::new(["generate", &format!("s3://{bucket}/"), "--name", "basename"])
            .s3_admin(&env)
            .run()
            .assert_ok();
        parse_references(&run.stdout).into_iter().map(|l| l.name).collect()
    };
    let first = names();
    assert_eq!(first, names());
    let counts: BTreeMap<&String, usize> = first.iter().fold(BTreeMap::new(), |mut m, n| {
        *m.entry(n).or_default() += 1;
        m
    });
    assert!(counts.values().all(|&c| c == 1), "basenames are unique: {first:?}");
}

/// Temporary credentials (here from a `credential_process` that reports an
/// expiration two hours away) that end before the URLs would (7 days): refused
/// with one line naming both times and the fixes, the target untouched; with
/// `--allow-short-expiry`, the URLs are signed for the two hours the credentials
/// have, and the summary, `--json` and the URL itself say so.
#[tokio::test(flavor = "multi_thread")]
async fn temporary_credentials_that_end_before_the_urls_are_refused_or_signed_for_their_time() {
    require!(S3);
    let env = s3_env();
    let bucket = filter_bucket(&env).await;
    let expiration = std::time::SystemTime::now() + std::time::Duration::from_secs(2 * 3600 + 30);
    let secs = expiration
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after epoch")
        .as_secs();
    let with_profile = |extra: &[&str]| {
        let mut args = vec![
            "generate".to_owned(),
            format!("s3://{bucket}/top"),
            "--profile".into(),
            "temp".into(),
            "--expires-in".into(),
            "7d".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let refgen = Refgen::new(args);
        let aws = refgen.home().join(".aws");
        std::fs::create_dir_all(&aws).expect("~/.aws");
        let script = aws.join("creds.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '{{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"%s\", \"Expiration\": \"%s\"}}' \
                 '{}' '{}' \"$(date -u -d @{secs} +%Y-%m-%dT%H:%M:%SZ)\"\n",
                env.access_key, env.secret_key
            ),
        )
        .expect("script");
        std::fs::write(
            aws.join("config"),
            format!(
                "[profile temp]\nendpoint_url = {}\ncredential_process = sh {}\n",
                env.endpoint,
                script.display()
            ),
        )
        .expect("config");
        refgen
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("refs.jsonl");
    std::fs::write(&out, "old\n").expect("seed");
    let run = with_profile(&["-o", out.to_str().expect("path")]).run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let line = run.stderr.trim();
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    assert!(
        line.contains("the signing credentials expire at ")
            && line.contains("before URLs valid for 7d would")
            && line.contains("--allow-short-expiry")
            && line.contains("--expires-in"),
        "{line}"
    );
    assert_eq!(
        std::fs::read_to_string(&out).expect("read"),
        "old\n",
        "the target is untouched"
    );

    let json_out = dir.path().join("json.jsonl");
    let run = with_profile(&["--allow-short-expiry", "--json", "-o", json_out.to_str().expect("path")])
        .run()
        .assert_ok();
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("--json document");
    let seconds = report["expires_in_seconds"].as_u64().expect("expires_in_seconds");
    assert!((2 * 3600 - 60..=2 * 3600 + 30).contains(&seconds), "{seconds}");
    let at = report["expires_at"].as_str().expect("expires_at");
    let at = refgen::core::expiry::parse_rfc3339(at).expect("RFC 3339");
    let off = at.duration_since(expiration).unwrap_or_else(|e| e.duration());
    assert!(off.as_secs() <= 60, "expires_at is the credentials' end: {report}");
    assert!(run.stderr.contains("the URLs are signed for 2h"), "{}", run.stderr);
    let limit = report["expiry_limit"].as_str().expect("expiry_limit");
    assert!(
        limit.starts_with("the signing credentials, which expire at"),
        "{report}"
    );

    let run = with_profile(&["--allow-short-expiry"]).run().assert_ok();
    let line = parse_references(&run.stdout).remove(0);
    let expires: u64 = line
        .url
        .split("X-Amz-Expires=")
        .nth(1)
        .and_then(|v| v.split('&').next())
        .and_then(|v| v.parse().ok())
        .expect("X-Amz-Expires");
    assert!((2 * 3600 - 60..=2 * 3600 + 30).contains(&expires), "{}", line.url);
    assert_eq!(http_get(&line.url), (200, body_for("top.jpeg")));
    assert!(
        run.stderr.contains("URLs valid for 2h") && run.stderr.contains("(the first until "),
        "{}",
        run.stderr
    );
}

/// GLACIER and DEEP_ARCHIVE objects (not restored) are skipped and counted; the
/// other classes are read at once and stay. With --images, an image over
/// Roboflow's 20 MiB limit is skipped with a warning; --max-size sets the limit.
#[tokio::test(flavor = "multi_thread")]
async fn unreadable_objects_are_skipped_and_counted() {
    require!(S3);
    let (env, client, bucket) = new_s3_bucket("classes").await;
    use aws_sdk_s3::types::StorageClass;
    for (key, class) in [
        ("glacier.jpg", StorageClass::Glacier),
        ("deep.jpg", StorageClass::DeepArchive),
        ("instant.jpg", StorageClass::GlacierIr),
        ("ia.jpg", StorageClass::StandardIa),
        ("tiering.jpg", StorageClass::IntelligentTiering),
        ("plain.jpg", StorageClass::Standard),
    ] {
        client
            .put_object()
            .bucket(&bucket)
            .key(key)
            .storage_class(class)
            .body(aws_sdk_s3::primitives::ByteStream::from(b"small".to_vec()))
            .send()
            .await
            .expect("put");
    }
    let big = vec![7u8; 20 * 1024 * 1024 + 1];
    put_objects(&client, &bucket, vec![("big.jpg".into(), big)]).await;
    let generate = |args: &[&str]| {
        let mut all = vec![
            "generate".to_owned(),
            format!("s3://{bucket}/"),
            "--name".into(),
            "key".into(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        Refgen::new(all).s3_admin(&env).run().assert_ok()
    };
    let names = |run: &Run| -> Vec<String> { parse_references(&run.stdout).into_iter().map(|l| l.name).collect() };

    let run = generate(&[]);
    assert_eq!(
        names(&run),
        ["big.jpg", "ia.jpg", "instant.jpg", "plain.jpg", "tiering.jpg"]
    );
    assert!(
        run.stderr.contains("skipped 2 objects in an archive tier"),
        "{}",
        run.stderr
    );

    let run = generate(&["--images"]);
    assert_eq!(names(&run), ["ia.jpg", "instant.jpg", "plain.jpg", "tiering.jpg"]);
    assert!(
        run.stderr
            .contains("skipped 1 object over 20 MiB (Roboflow's limit on an image)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(skipped 2 archived, 1 too large)"),
        "{}",
        run.stderr
    );

    let run = generate(&["--images", "--max-size", "30MiB"]);
    assert_eq!(names(&run).len(), 5, "a larger limit keeps big.jpg");
    let run = generate(&["--max-size", "5B"]);
    assert_eq!(
        names(&run),
        ["ia.jpg", "instant.jpg", "plain.jpg", "tiering.jpg"],
        "5 bytes is not over 5B"
    );
    let run = generate(&["--max-size", "4B", "--allow-empty", "--json", "--dry-run"]);
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(
        (
            summary["skipped"]["too_large"].as_u64(),
            summary["skipped"]["archived"].as_u64()
        ),
        (Some(5), Some(2)),
        "{summary}"
    );
}

/// S3 attempts follow the AWS CLI's settings when refgen is not told: the
/// environment's `AWS_MAX_ATTEMPTS`, else the profile's `max_attempts`, else 10;
/// `--max-attempts` beats them all.
#[tokio::test(flavor = "multi_thread")]
async fn s3_attempts_follow_aws_max_attempts_and_the_profile() {
    require!(S3);
    let bucket = Backend::S3.bucket_with(&["a.jpg".to_owned()]).await;
    let source = Backend::S3.source(&bucket, "");
    let attempts = |args: &[&str], env: &[(&str, &str)], profile: Option<&str>| {
        let mut plan = Plan::every_fault(Backend::S3.service(), 1.0, 1);
        plan.faults = vec![Fault::Busy];
        let proxy = FaultProxy::start(&Backend::S3.upstream(), plan);
        let mut refgen = Backend::S3.generate(&source, Some(&proxy.url), args);
        for (k, v) in env {
            refgen = refgen.env(k, v);
        }
        if let Some(profile) = profile {
            let aws = refgen.home().join(".aws");
            std::fs::create_dir_all(&aws).expect("mkdir");
            std::fs::write(aws.join("config"), profile).expect("config");
        }
        let run = refgen.run();
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        proxy.counts.total()
    };
    assert_eq!(attempts(&[], &[("AWS_MAX_ATTEMPTS", "2")], None), 2);
    assert_eq!(attempts(&[], &[], Some("[default]\nmax_attempts = 4\n")), 4);
    assert_eq!(
        attempts(&["--max-attempts", "3"], &[("AWS_MAX_ATTEMPTS", "2")], None),
        3
    );
    assert_eq!(
        attempts(&[], &[("AWS_RETRY_MODE", "adaptive"), ("AWS_MAX_ATTEMPTS", "2")], None),
        2
    );
}

/// A requester-pays bucket (`--request-payer requester`): every listing request
/// says so (the SDK's signed `x-amz-request-payer` header), and every URL carries
/// `x-amz-request-payer=requester` in its signed query, which SeaweedFS checks: the
/// URL reads the object; the same URL without the parameter is refused. Without
/// the flag, neither the requests nor the URLs carry it.
#[tokio::test(flavor = "multi_thread")]
async fn requester_pays_is_said_on_every_listing_and_signed_into_every_url() {
    require!(S3);
    let keys = ["rp/a b.jpg".to_owned(), "rp/c+d.jpg".to_owned()];
    let bucket = Backend::S3.bucket_with(&keys).await;
    let source = Backend::S3.source(&bucket, "rp/");
    let payer = |line: &String| line.eq_ignore_ascii_case("x-amz-request-payer: requester");
    for flag in [true, false] {
        let proxy = FaultProxy::start(
            &Backend::S3.upstream(),
            Plan::every_fault(Backend::S3.service(), 0.0, 1),
        );
        let args: &[&str] = if flag {
            &["--request-payer", "requester", "--name", "key"]
        } else {
            &["--name", "key"]
        };
        let run = Backend::S3.generate(&source, Some(&proxy.url), args).run().assert_ok();
        let lines = parse_references(&run.stdout);
        assert_eq!(lines.len(), 2, "{}", run.stderr);
        let listings: Vec<Vec<String>> = proxy
            .counts
            .heads
            .lock()
            .expect("heads")
            .iter()
            .filter(|h| h[0].starts_with("GET ") && h[0].contains("list-type=2"))
            .cloned()
            .collect();
        assert!(!listings.is_empty(), "the listing went through the proxy");
        for head in &listings {
            assert_eq!(head.iter().any(payer), flag, "flag {flag}: {head:?}");
        }
        for line in &lines {
            assert_eq!(line.url.contains("x-amz-request-payer=requester"), flag, "{}", line.url);
            // Each object holds its own key.
            assert_eq!(
                http_get(&line.url),
                (200, line.name.as_bytes().to_vec()),
                "{}",
                line.url
            );
            if flag {
                let without = line.url.replace("&x-amz-request-payer=requester", "");
                assert_eq!(http_get(&without).0, 403, "the parameter is signed: {without}");
            }
        }
    }
}

/// An object stored with a customer-provided key (SSE-C) cannot be read by a plain
/// GET, whatever its signature: `verify` names it `customer-key` (from the store's
/// 400 answer), not `signature-refused` or `unreachable`, and the plain object
/// beside it passes.
#[tokio::test(flavor = "multi_thread")]
async fn verify_names_objects_behind_a_customer_key() {
    require!(S3);
    use base64::Engine as _;
    let (env, client, bucket) = new_s3_bucket("ssec").await;
    put_objects(&client, &bucket, vec![("c/ok.jpg".to_owned(), body_for("c/ok.jpg"))]).await;
    let key = [7u8; 32];
    client
        .put_object()
        .bucket(&bucket)
        .key("c/secret.jpg")
        .body(body_for("c/secret.jpg").into())
        .sse_customer_algorithm("AES256")
        .sse_customer_key(base64::engine::general_purpose::STANDARD.encode(key))
        .sse_customer_key_md5(base64::engine::general_purpose::STANDARD.encode(<md5::Md5 as md5::Digest>::digest(key)))
        .send()
        .await
        .expect("SSE-C upload");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("refs.jsonl");
    Refgen::new([
        "generate",
        &format!("s3://{bucket}/c/"),
        "--name",
        "key",
        "-o",
        file.to_str().expect("path"),
    ])
    .s3_admin(&env)
    .run()
    .assert_ok();
    let run = Refgen::new(["verify", file.to_str().expect("path"), "--all", "--json"]).run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON report");
    assert_eq!(
        report["problems"],
        serde_json::json!({"customer-key": {"count": 1, "names": ["c/secret.jpg"]}}),
        "{report}"
    );
}

/// Sources whose URLs refgen cannot sign are refused with one line before any
/// request (the endpoint is a closed loopback port, so none could go out): a
/// Multi-Region Access Point (SigV4A), an access point with path-style
/// addressing, a directory bucket with temporary credentials, and an ARN that is
/// not an access point's. (An access point's URLs are compared with botocore's in
/// refgen-s3's `access_point_urls_are_the_ones_botocore_signs`.)
#[test]
fn sources_refgen_cannot_sign_for_are_refused_before_any_request() {
    let run = |source: &str, extra: &[&str], token: bool| {
        let mut args = vec!["generate", source];
        args.extend(extra);
        let mut refgen = Refgen::new(args)
            .s3_credentials("AKIDEXAMPLE", "secret-example-key")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
            .env("AWS_REGION", "us-east-1");
        if token {
            refgen = refgen.env("AWS_SESSION_TOKEN", "session-token-example");
        }
        refgen.run()
    };
    let cases: &[(&str, &[&str], bool, &str)] = &[
        (
            "s3://arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap/photos/",
            &[],
            false,
            "needs SigV4A",
        ),
        (
            "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/photos/",
            &["--addressing", "path"],
            false,
            "path-style addressing cannot name it",
        ),
        (
            "s3://media--use1-az4--x-s3/photos/",
            &[],
            true,
            "sign with long-lived credentials",
        ),
        (
            "s3://arn:aws:s3:us-west-2:123456789012:bucket/b/photos/",
            &[],
            false,
            "is not an S3 access point ARN",
        ),
    ];
    for (source, extra, token, needle) in cases {
        let got = run(source, extra, *token);
        assert_eq!(got.code, Some(2), "{source}: {}", got.stderr);
        if let Some(why) = not_one_error_line(source, &got, needle) {
            panic!("{why}");
        }
    }
}
