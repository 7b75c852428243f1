//! End-to-end: what a new user meets first. The README's examples as written, a
//! private CA (AWS_CA_BUNDLE, a profile's ca_bundle), usage errors (exit 2, one
//! line), progress on a terminal and in a log, completions and the manual page.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use refgen_e2e::tls::TlsFront;
use refgen_e2e::*;

/// The "Use" block of the README and of docs/generate.md, each `refgen generate`
/// line run by a shell as written (only the endpoint of the S3-compatible line
/// points at the local server), with the buckets it names on the local S3 server.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_examples_run_as_written() {
    for doc in ["README.md", "docs/generate.md"] {
        readme_examples_run(doc).await;
    }
}

async fn readme_examples_run(doc: &str) {
    require!(S3);
    let env = s3_env();
    let client = admin_client(&env);
    let path = format!("{}/../{doc}", env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(&path).expect(doc);
    let block = readme
        .split("## Use")
        .nth(1)
        .and_then(|s| s.split("```sh").nth(1))
        .and_then(|s| s.split("```").next())
        .unwrap_or_else(|| panic!("a sh block under ## Use in {doc}"));
    let fixtures: &[(&str, &[&str])] = &[
        ("my-bucket", &["images/a.jpg", "images/sub/b.jpg", "images/c.png"]),
        (
            "media",
            &[
                "raw/x.png",
                "raw/tmp/y.png",
                "raw/a/tmp/z.png",
                "raw/notes.txt",
                "top.jpg",
            ],
        ),
        ("bucket", &["one.bin"]),
    ];
    for (bucket, keys) in fixtures {
        create_bucket(&client, bucket).await;
        // The names are the README's, so the buckets may hold what an earlier run left.
        for stale in list_keys(&client, bucket).await {
            client
                .delete_object()
                .bucket(*bucket)
                .key(stale)
                .send()
                .await
                .expect("delete");
        }
        let objects = keys.iter().map(|k| (k.to_string(), k.as_bytes().to_vec())).collect();
        assert_eq!(put_objects(&client, bucket, objects).await.len(), keys.len());
    }
    let want: &[(&str, &[&str])] = &[
        (
            "s3://my-bucket/images/**/*.jpg",
            &["images__a.jpg", "images__sub__b.jpg"],
        ),
        (
            "s3://media/ --images",
            &["raw__x.png", "raw__tmp__y.png", "raw__a__tmp__z.png", "top.jpg"],
        ),
        ("s3://bucket/", &["one.bin"]),
        ("s3://media/raw/ --include", &["x.png", "z.png"]),
    ];
    let bin_dir = refgen_bin().parent().expect("bin folder").to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut ran = 0;
    for line in block.lines().filter(|l| l.contains("refgen generate")) {
        let (_, names) = want
            .iter()
            .find(|(marker, _)| line.contains(marker))
            .unwrap_or_else(|| panic!("no expectation for the {doc} line {line}"));
        let command = line.replace("http://127.0.0.1:9000", &env.endpoint);
        let dir = tempfile::tempdir().expect("tempdir");
        let refgen = Refgen::new(Vec::<String>::new()).s3_admin(&env).env("PATH", &path);
        let (home, envs) = (refgen.home(), refgen.envs());
        let output = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(dir.path())
            .env_clear()
            .envs(envs)
            .env("HOME", &home)
            .stdin(Stdio::null())
            .output()
            .expect("sh runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{line}: {stderr}");
        let written = std::fs::read(dir.path().join("refs.jsonl")).expect("refs.jsonl");
        let got: BTreeSet<String> = parse_references(&written).into_iter().map(|l| l.name).collect();
        let expected: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
        assert_eq!(got, expected, "{line}");
        ran += 1;
    }
    assert_eq!(ran, want.len(), "every {doc} example ran");
}

/// An S3-compatible store behind a private CA: refused without the bundle, listed
/// with AWS_CA_BUNDLE, and with a profile's `ca_bundle` (as the AWS CLI reads them).
#[tokio::test(flavor = "multi_thread")]
async fn a_private_ca_is_trusted_through_aws_ca_bundle_and_the_profile() {
    require!(S3);
    let (env, client, bucket) = new_s3_bucket("tls").await;
    put_objects(
        &client,
        &bucket,
        vec![("a.jpg".into(), b"a".to_vec()), ("b.jpg".into(), b"b".to_vec())],
    )
    .await;
    let front = TlsFront::start(env.endpoint.trim_start_matches("http://"));
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("onprem-ca.pem");
    front.write_ca(&ca);
    let generate = || {
        Refgen::new([
            "generate",
            &format!("s3://{bucket}/"),
            "--max-attempts",
            "2",
            "--name",
            "key",
        ])
        .s3_admin_via(&env, &front.endpoint)
    };

    let refused = generate().run();
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("certificate"), "says why: {}", refused.stderr);

    let run = generate().env("AWS_CA_BUNDLE", &ca).run().assert_ok();
    let lines = parse_references(&run.stdout);
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["a.jpg", "b.jpg"]);
    assert!(
        lines[0].url.starts_with(&format!("{}/{bucket}/a.jpg?", front.endpoint)),
        "{}",
        lines[0].url
    );

    let with_profile = generate();
    let aws = with_profile.home().join(".aws");
    std::fs::create_dir_all(&aws).expect("~/.aws");
    std::fs::write(aws.join("config"), format!("[default]\nca_bundle = {}\n", ca.display())).expect("config");
    let run = with_profile.run().assert_ok();
    assert_eq!(parse_references(&run.stdout).len(), 2);

    let run = generate().env("AWS_CA_BUNDLE", dir.path().join("missing.pem")).run();
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("AWS_CA_BUNDLE") && run.stderr.contains("cannot be read"),
        "{}",
        run.stderr
    );
}

/// Every usage error exits 2 with one line, clap's and refgen's own alike.
#[test]
fn usage_errors_exit_2_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["generate", "s3://b/x", "--expires-in", "soon"],
            "invalid expiry `soon`",
        ),
        (&["generate", "s3://b/x", "--expires-in", "-5"], "must be positive"),
        (
            &["generate", "s3://b/x", "--expires-in", "8d"],
            "S3 URLs can be valid for at most 7d",
        ),
        (&["generate", "b/x"], "no scheme"),
        (&["generate", "s3://b/[a-"], "invalid glob"),
        (&["generate", "s3://b/x", "--bogus"], "unexpected argument '--bogus'"),
        (&["generate"], "required arguments were not provided: <SOURCE>"),
        (&["generate", "s3://b/x", "-o", "refs.jsonl.gz"], "not .gz"),
        (
            &["generate", "s3://b/x", "--json"],
            "--json prints its summary on stdout",
        ),
        (&["generate", "s3://b/x", "--limit", "0"], "--limit"),
        (
            &["generate", "gs://b/x", "--request-payer", "requester"],
            "--request-payer is for s3:// sources, not GCS",
        ),
        (
            &["generate", "s3://b/x", "--user-project", "p"],
            "--user-project is for gs:// sources, not S3",
        ),
        (&["generate", "s3://b/x", "--request-payer", "me"], "invalid value 'me'"),
        // Every provider's own settings are refused for another's source.
        (
            &["generate", "gs://b/x", "--profile", "p"],
            "--profile is for s3:// sources, not GCS",
        ),
        (
            &["generate", "s3://b/x", "--sas-token", "sv=x"],
            "--sas-token is for azure://",
        ),
        (
            &[
                "generate",
                "az://acct/c/",
                "--hmac-access-id",
                "i",
                "--hmac-secret",
                "s",
            ],
            "--hmac-access-id is for gs://",
        ),
        (
            &["submit", "s3://b/x", "--batch-id", "b1", "--credentials-file", "k.json"],
            "--credentials-file is for gs://",
        ),
        (
            &["submit", "./photos", "--batch-id", "b1", "--pin-versions"],
            "--pin-versions is for bucket sources",
        ),
        (&["submit", "s3://b/x", "--batch-id", "Bad Id"], "invalid batch id"),
        (
            &[
                "submit",
                "s3://b/x",
                "--batch-id",
                "ok",
                "--job-id",
                "x".repeat(21).leak(),
            ],
            "invalid job id",
        ),
        (
            &["submit", "s3://b/x", "--batchid", "ok"],
            "a similar argument exists: '--batch-id'",
        ),
        (
            &["submit", "s3://b/x", "--batch-id", "ok", "--images", "--videos"],
            "not both",
        ),
        (
            &["submit", "s3://b/x", "--batch-id", "ok", "--timeout", "soon"],
            "invalid value 'soon'",
        ),
        (
            &["submit", "s3://b/x", "-b", "ok", "--download-results", "out"],
            "needs --workflow-id",
        ),
        (
            &[
                "submit",
                "s3://b/x",
                "-b",
                "ok",
                "--workflow-params",
                "/nonexistent.json",
            ],
            "cannot read it",
        ),
        (
            &["submit", "s3://b/x", "-b", "ok", "--upload-to", "s3://b/"],
            "must name an object",
        ),
        (&["generate", "s3://b/x", "--endpoint-url", "not a url"], "is not a URL"),
        (&["generate", "gs://b/x", "--hmac-access-id", "GOOG1"], "go together"),
        (&["generate", "gs://b/x", "--hmac-secret", "s3cr3t"], "go together"),
        (&["generate", "s3://b/x", "-o", ""], "an empty path"),
        (
            &["jobs", "restart", "j1", "--workers-per-machine", "0"],
            "--workers-per-machine",
        ),
        (
            &["jobs", "restart", "j1", "--max-parallel-tasks", "0"],
            "--max-parallel-tasks",
        ),
        (
            &["jobs", "restart", "j1", "--processing-timeout", "0"],
            "--processing-timeout",
        ),
        (&["batches", "list", "--limit", "0"], "--limit"),
        (&["jobs", "list", "--limit", "0"], "--limit"),
    ];
    // A value from a REFGEN_* variable names the variable (it named only the flag).
    for (var, value) in [("REFGEN_MAX_ATTEMPTS", "0"), ("REFGEN_RETRY_DELAY", "soon")] {
        let run = Refgen::new(["generate", "s3://b/x"]).env(var, value).run();
        assert_eq!(run.code, Some(2), "{var}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(var), "{var}: {}", run.stderr);
    }
    for (args, says) in cases {
        let run = Refgen::new(*args).env("ROBOFLOW_API_KEY", "unused").run();
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: one line: {}", run.stderr);
        assert!(
            run.stderr.starts_with("error: ") && run.stderr.contains(says),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("os error"), "{}", run.stderr);
    }
}

/// Small things a first run shows: the default expiry reads as it is typed, a
/// missing folder is said once, without "(os error N)".
#[tokio::test(flavor = "multi_thread")]
async fn messages_read_as_typed() {
    require!(S3);
    let (env, client, bucket) = new_s3_bucket("words").await;
    put_objects(&client, &bucket, vec![("a.jpg".into(), b"a".to_vec())]).await;
    let run = Refgen::new(["generate", &format!("s3://{bucket}/")])
        .s3_admin(&env)
        .run()
        .assert_ok();
    assert!(
        run.stderr.contains("listed 1 object, matched 1, wrote 1 reference to") && run.stderr.contains("valid for 24h"),
        "{}",
        run.stderr
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("nodir/refs.jsonl");
    let run = Refgen::new([
        "generate",
        &format!("s3://{bucket}/"),
        "-o",
        target.to_str().expect("path"),
    ])
    .s3_admin(&env)
    .run();
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stderr.matches("does not exist").count(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains("os error"), "{}", run.stderr);
}

/// A bucket that takes a while to list: 2,000 keys in pages of 5, one at a time.
async fn slow_bucket(env: &S3Env) -> String {
    let client = admin_client(env);
    let bucket = unique_bucket("slow");
    create_bucket(&client, &bucket).await;
    let objects = (0..2000).map(|i| (format!("f/{i:04}.jpg"), b"x".to_vec())).collect();
    assert_eq!(put_objects(&client, &bucket, objects).await.len(), 2000);
    bucket
}

/// On a terminal (a pseudo-terminal from `script`), a live line shows the counts
/// while the run goes and is cleared at the end; in a log, a short run prints only
/// the summary, a long one a line every interval.
#[tokio::test(flavor = "multi_thread")]
async fn progress_on_a_terminal_and_in_a_log() {
    require!(S3);
    let env = s3_env();
    let bucket = slow_bucket(&env).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("refs.jsonl");
    let args = [
        "generate".to_owned(),
        format!("s3://{bucket}/"),
        "-o".to_owned(),
        out.display().to_string(),
        "--page-size".to_owned(),
        "5".to_owned(),
        "--concurrency".to_owned(),
        "1".to_owned(),
    ];
    let (success, screen) = Refgen::new(&args).s3_admin(&env).run_in_terminal();
    assert!(success, "{screen}");
    assert!(
        screen.contains("listed ") && screen.contains(", written ") && screen.contains("/s, "),
        "a live line while it runs: {screen:?}"
    );
    assert!(screen.contains("\x1b[2K"), "the live line is cleared: {screen:?}");
    let last = screen
        .trim_end()
        .rsplit(['\n', '\r'])
        .next()
        .unwrap_or_default()
        .trim_start_matches("\x1b[2K");
    assert!(
        last.starts_with("refgen: listed 2000 objects"),
        "the summary stays: {last:?}"
    );
    assert_eq!(parse_references(&std::fs::read(&out).expect("refs")).len(), 2000);

    // Not a terminal: one line for a short run, progress lines for a long one.
    let run = Refgen::new(&args[..6]).s3_admin(&env).run().assert_ok();
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let mut slow = args.to_vec();
    slow.extend(["--progress-interval".to_owned(), "200ms".to_owned()]);
    let run = Refgen::new(&slow).s3_admin(&env).run().assert_ok();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(lines.len() >= 2, "{}", run.stderr);
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("refgen: listed ") && l.contains(", written ")),
        "{}",
        run.stderr
    );
    let run = Refgen::new(&slow).s3_admin(&env).arg_quiet().run().assert_ok();
    assert_eq!(run.stderr, "", "-q: no progress, no summary");
}

/// Completions for each shell and a roff manual page.
#[test]
fn completions_and_manual_page() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = Refgen::new(["completions", shell]).run().assert_ok();
        let script = String::from_utf8(run.stdout).expect("text");
        assert!(script.contains("refgen") && script.contains("expires-in"), "{shell}");
    }
    let run = Refgen::new(["man"]).run().assert_ok();
    let page = String::from_utf8(run.stdout).expect("text");
    assert!(page.contains(".TH refgen 1") && page.contains("generate"), "{page}");
    let run = Refgen::new(["completions", "tcsh"]).run();
    assert_eq!(run.code, Some(2));
}

/// A retry setting aws-config would panic on (exit 101, a Rust source path) is one
/// line naming the variable or the profile key, exit 2; an empty variable is unset,
/// as the AWS CLI takes it. The same with `--max-attempts` and for submit's upload.
#[test]
fn bad_aws_settings_are_one_line_not_a_panic() {
    let closed = "http://127.0.0.1:1";
    let with = |vars: &[(&str, &str)], args: &[&str], profile: Option<&str>| {
        let mut refgen = Refgen::new(args)
            .s3_credentials("AKIDEXAMPLE", "not-a-real-secret-key")
            .env("AWS_ENDPOINT_URL", closed)
            .env("AWS_REGION", "us-east-1")
            .env("ROBOFLOW_API_KEY", "unused-key-0123");
        if let Some(text) = profile {
            let aws = refgen.home().join(".aws");
            std::fs::create_dir_all(&aws).expect("mkdir");
            std::fs::write(aws.join("config"), text).expect("config");
        }
        for (k, v) in vars {
            refgen = refgen.env(k, v);
        }
        refgen.run()
    };
    let generate: &[&str] = &["generate", "s3://b/"];
    let with_flag: &[&str] = &["generate", "s3://b/", "--max-attempts", "3"];
    let refs = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(refs.path(), "{\"name\":\"a.jpg\",\"url\":\"https://x/a.jpg\"}\n").expect("write");
    let upload: &[&str] = &[
        "submit",
        "--references",
        refs.path().to_str().expect("path"),
        "-b",
        "ok",
        "--upload-to",
        "s3://b/refs.jsonl",
    ];
    // (variables, arguments, the profile file, what the one line says)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], Option<&'a str>, &'a str);
    let cases: &[Case] = &[
        (&[("AWS_MAX_ATTEMPTS", "0")], generate, None, "AWS_MAX_ATTEMPTS is `0`"),
        (&[("AWS_MAX_ATTEMPTS", "x")], generate, None, "AWS_MAX_ATTEMPTS is `x`"),
        (
            &[("AWS_MAX_ATTEMPTS", "-1")],
            generate,
            None,
            "AWS_MAX_ATTEMPTS is `-1`",
        ),
        (&[("AWS_MAX_ATTEMPTS", "0")], with_flag, None, "AWS_MAX_ATTEMPTS is `0`"),
        (
            &[("AWS_RETRY_MODE", "garbage")],
            generate,
            None,
            "AWS_RETRY_MODE is `garbage`",
        ),
        (
            &[],
            generate,
            Some("[default]\nmax_attempts = 0\n"),
            "`max_attempts` of the AWS profile `default` is `0`",
        ),
        (
            &[],
            generate,
            Some("[default]\nretry_mode = bogus\n"),
            "`retry_mode` of the AWS profile `default` is `bogus`",
        ),
        (&[("AWS_REGION", " ")], generate, None, "AWS_REGION is ` `"),
        (&[("AWS_MAX_ATTEMPTS", "0")], upload, None, "AWS_MAX_ATTEMPTS is `0`"),
    ];
    for (vars, args, profile, says) in cases {
        let run = with(vars, args, *profile);
        assert_eq!(run.code, Some(2), "{vars:?} {args:?}: {}", run.stderr);
        let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{vars:?}: one error line: {}", run.stderr);
        assert!(errors[0].contains(says), "{vars:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains(".rs:") && !run.stderr.contains("panicked"),
            "{}",
            run.stderr
        );
    }
    // Set but empty: unset. The run goes on to the (closed) endpoint.
    for var in ["AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_REGION"] {
        let run = with(&[(var, "")], generate, None);
        assert_eq!(run.code, Some(1), "{var}: {}", run.stderr);
        assert!(run.stderr.contains("127.0.0.1:1"), "{var}: {}", run.stderr);
    }
}

/// A refused connection is not a slow fault: it is tried 3 times (not 10 over a
/// minute), and each retry after the first says so on stderr at the default
/// verbosity, with the attempt and the wait.
#[test]
fn a_refused_connection_is_tried_three_times_and_said() {
    let run = Refgen::new(["webhook-check", "http://127.0.0.1:1/hook", "--json"]).run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    for result in report["results"].as_array().expect("results") {
        let error = result["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("connection refused") && error.contains("after 3 attempts"),
            "{error}"
        );
    }
    let retries: Vec<&str> = run.stderr.lines().filter(|l| l.contains("attempt 2 of 3")).collect();
    assert_eq!(retries.len(), 3, "one line per notification: {}", run.stderr);
    assert!(
        retries[0].contains("connection refused") && retries[0].contains("retrying in"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("attempt 3 of 3 failed"),
        "no retry after the last: {}",
        run.stderr
    );
    // The S3 SDK's requests stop after 3 attempts too.
    let run = Refgen::new(["generate", "s3://b/", "--max-attempts", "10"])
        .s3_credentials("AKIDEXAMPLE", "not-a-real-secret-key")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_REGION", "us-east-1")
        .run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("connection refused") && last.contains("3 attempts allowed"),
        "{}",
        run.stderr
    );
}

/// `verify` holds to the same rules as submit and stays linear: an empty file is
/// a problem (exit 1, one line), a line that is not UTF-8 is named by its number,
/// a URL with a raw line break is `bad-url`, and a name of 20 MB is cut in what is
/// shown (it printed the whole name, and took minutes, before).
#[test]
fn verify_rules_and_bounded_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path.display().to_string()
    };
    let empty = write("empty.jsonl", b"\n\n");
    let run = Refgen::new(["verify", &empty]).run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("holds no references"), "{}", run.stderr);

    let mut latin1 = b"{\"name\":\"a.jpg\",\"url\":\"http://127.0.0.1:1/a.jpg\"}\n".to_vec();
    latin1.extend_from_slice(b"{\"name\":\"caf\xe9.jpg\",\"url\":\"http://127.0.0.1:1/b.jpg\"}\n");
    let path = write("latin1.jsonl", &latin1);
    let run = Refgen::new(["verify", &path]).run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("line 2") && run.stderr.contains("UTF-8"),
        "{}",
        run.stderr
    );

    let crlf = serde_json::json!({"name": "c.jpg", "url": "https://127.0.0.1:1/c.jpg\r\nX-Injected: 1"});
    let path = write("crlf.jsonl", format!("{crlf}\n").as_bytes());
    let run = Refgen::new(["verify", &path, "--json"]).run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(report["problems"]["bad-url"]["count"], 1, "{report}");
    assert_eq!(report["fetched"], 0, "never fetched: {report}");

    let long = format!("{}.txt", "n".repeat(20 << 20));
    let line = serde_json::json!({"name": long, "url": "http://127.0.0.1:1/x"});
    let path = write("long.jsonl", format!("{line}\n{line}\n").as_bytes());
    let run = Refgen::new(["verify", &path]).run();
    assert_eq!(run.code, Some(1), "{}", &run.stderr[..run.stderr.len().min(500)]);
    assert!(run.stderr.len() < 10_000, "{} bytes on stderr", run.stderr.len());
    assert!(
        run.stderr.contains("duplicate-name") && run.stderr.contains('…'),
        "{}",
        run.stderr
    );
}

/// No setting from the environment makes refgen panic (exit 101, a Rust source
/// path): the variables the AWS, Google and Azure chains read, set to what CI
/// templates and typos produce, end in one line or a normal run.
#[test]
fn no_environment_setting_panics() {
    let long = "x".repeat(300);
    let cases: &[(&str, &str, &str)] = &[
        ("s3://b/", "AWS_MAX_ATTEMPTS", ""),
        ("s3://b/", "AWS_RETRY_MODE", "adaptive"),
        ("s3://b/", "AWS_REGION", ""),
        ("s3://b/", "AWS_DEFAULT_REGION", "a b"),
        ("s3://b/", "AWS_ENDPOINT_URL", "not-a-url"),
        ("s3://b/", "AWS_PROFILE", "nope"),
        ("s3://b/", "AWS_CONFIG_FILE", "/nonexistent"),
        ("s3://b/", "AWS_USE_FIPS_ENDPOINT", "maybe"),
        ("s3://b/", "AWS_USE_DUALSTACK_ENDPOINT", "x"),
        ("s3://b/", "AWS_DEFAULTS_MODE", "x"),
        ("s3://b/", "AWS_SDK_UA_APP_ID", &long),
        ("s3://b/", "AWS_REQUEST_CHECKSUM_CALCULATION", "x"),
        ("s3://b/", "AWS_S3_USE_ARN_REGION", "x"),
        ("s3://b/", "AWS_ACCOUNT_ID_ENDPOINT_MODE", "x"),
        ("s3://b/", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "x"),
        ("s3://b/", "AWS_DISABLE_REQUEST_COMPRESSION", "x"),
        ("s3://b/", "AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES", "x"),
        ("s3://b/", "AWS_AUTH_SCHEME_PREFERENCE", "x"),
        ("s3://b/", "AWS_CA_BUNDLE", "/nonexistent"),
        ("gs://b/", "GOOGLE_APPLICATION_CREDENTIALS", ""),
        ("gs://b/", "GOOGLE_APPLICATION_CREDENTIALS", "/etc/hostname"),
        ("gs://b/", "STORAGE_EMULATOR_HOST", "not a url"),
        ("gs://b/", "GOOGLE_CLOUD_PROJECT", ""),
        ("az://acct/c/", "AZURE_STORAGE_CONNECTION_STRING", ";;;="),
        ("az://acct/c/", "AZURE_STORAGE_KEY", "!!notbase64"),
        ("az://acct/c/", "AZURE_STORAGE_SAS_TOKEN", "%%%"),
        ("az://acct/c/", "AZURE_TENANT_ID", "../.."),
        ("az://acct/c/", "AZURE_FEDERATED_TOKEN_FILE", "/nonexistent"),
        ("az://acct/c/", "AZURE_AUTHORITY_HOST", "not a url"),
    ];
    for (source, var, value) in cases {
        let run = Refgen::new(["generate", source, "--max-attempts", "1"])
            .s3_credentials("AKIDEXAMPLE", "not-a-real-secret-key")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
            .env("AWS_REGION", "us-east-1")
            .env("IDENTITY_ENDPOINT", "http://127.0.0.1:1")
            .env("MSI_ENDPOINT", "http://127.0.0.1:1")
            .env(var, value)
            .run();
        assert_ne!(run.code, Some(101), "{var}={value}: {}", run.stderr);
        assert!(
            !run.stderr.contains("panicked") && !run.stderr.contains(".rs:"),
            "{var}={value}: {}",
            run.stderr
        );
        assert!(
            run.stderr.lines().any(|l| l.starts_with("error: ")),
            "{var}={value}: {}",
            run.stderr
        );
    }
}
