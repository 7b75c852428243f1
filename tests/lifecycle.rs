//! End-to-end: what comes after `submit`: `verify` (on every storage server),
//! `batches list|show|failures`, `export`, `jobs …` and `webhook-check`, against
//! the Roboflow stand-in (which checks each request against the contract) and the
//! local storage servers. Every `--json` output is deserialised.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use refgen::export::ExportSummary;
use refgen::failures::IngestFailure;
use refgen::verify::{Problem, Report};
use refgen_e2e::backends::{ALL, Backend};
use refgen_e2e::faults::{FaultProxy, Plan, Service};
use refgen_e2e::roboflow::FakeRoboflow;
use refgen_e2e::stub::StubServer;
use refgen_e2e::*;
use refgen_roboflow::{Batch, LogEntry};
use serde_json::{Value, json};

/// `refgen ARGS…` talking to the stand-in, with S3 credentials for the local server.
fn rf_cmd(rf: &FakeRoboflow, args: &[&str]) -> Refgen {
    let mut cmd = Refgen::new(args);
    if std::env::var_os("REFGEN_TEST_S3_ENDPOINT").is_some() {
        cmd = cmd.s3_admin(&s3_env()).env("AWS_REGION", "us-east-1");
    }
    cmd.env("API_BASE_URL", rf.base_url())
        .env("ROBOFLOW_API_KEY", rf.api_key())
        .env("REFGEN_RETRY_DELAY", "20ms")
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("reads")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A references line with another name.
fn renamed(line: &str, name: &str) -> String {
    let mut v: Value = serde_json::from_str(line).expect("line");
    v["name"] = json!(name);
    v.to_string()
}

fn url_of(line: &str) -> String {
    serde_json::from_str::<Value>(line).expect("line")["url"]
        .as_str()
        .expect("url")
        .to_owned()
}

fn name_of(line: &str) -> String {
    serde_json::from_str::<Value>(line).expect("line")["name"]
        .as_str()
        .expect("name")
        .to_owned()
}

/// The URL made valid only from tomorrow: its signing date (S3, GCS) or SAS start
/// (Azure) moved a day ahead.
fn from_tomorrow(url: &str) -> String {
    let tomorrow = std::time::SystemTime::now() + std::time::Duration::from_secs(86_400);
    let secs = tomorrow.duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, min, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    for param in ["X-Amz-Date=", "X-Goog-Date="] {
        if let Some(i) = url.find(param) {
            let at = i + param.len();
            return format!(
                "{}{y:04}{m:02}{d:02}T{h:02}{min:02}{s:02}Z{}",
                &url[..at],
                &url[at + 16..]
            );
        }
    }
    format!("{url}&st={y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z")
}

/// One references file holding one of each fault `verify` knows, on every storage
/// server: each is reported under its kind, by name, and nothing else is.
#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_one_of_each_fault_on_every_server() {
    for backend in ALL.into_iter().filter(|b| b.available()) {
        verify_on(backend).await;
    }
}

async fn verify_on(backend: Backend) {
    let keys: Vec<String> = ["v/ok.jpg", "v/gone.jpg", "v/notes.txt"].map(String::from).to_vec();
    let bucket = backend.bucket_with(&keys).await;
    backend.put(&bucket, "v/big.jpg", vec![7u8; 20 * 1024 * 1024 + 1]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = backend.source(&bucket, "v/");
    let generate = |file: &str, args: &[&str]| {
        let path = dir.path().join(file);
        let mut all = vec!["-o", path.to_str().expect("path")];
        all.extend(args);
        backend.generate(&source, None, &all).run().assert_ok();
        read_lines(&path)
    };
    let long = generate("long.jsonl", &["--expires-in", "48h"]);
    let short = generate("short.jsonl", &["--expires-in", "1h", "--include", "ok.jpg"]);
    let expired = generate("expired.jsonl", &["--expires-in", "1s", "--include", "ok.jpg"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    backend.delete(&bucket, "v/gone.jpg").await;
    let line = |suffix: &str| {
        long.iter()
            .find(|l| name_of(l).ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} in {long:?}"))
            .clone()
    };
    let ok = line("ok.jpg");
    let mut lines = long.clone();
    lines.push(ok.clone());
    lines.push(renamed(&expired[0], "expired.jpg"));
    lines.push(renamed(&short[0], "soon.jpg"));
    let future = json!({"name": "future.jpg", "url": from_tomorrow(&url_of(&ok))}).to_string();
    lines.push(future);
    if backend.checks_signatures() {
        lines.push(json!({"name": "tampered.jpg", "url": tamper_signature(&url_of(&ok))}).to_string());
    }
    lines.push(json!({"name": "plain.jpg", "url": "http://example.com/plain.jpg"}).to_string());
    lines.push("not json".to_owned());
    let file = dir.path().join("refs.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").expect("writes");

    let run = Refgen::new(["verify", file.to_str().expect("path"), "--all", "--json"]).run();
    assert_eq!(run.code, Some(1), "{backend:?}: {}", run.stderr);
    let report: Report = serde_json::from_slice(&run.stdout).expect("JSON report");
    let got: BTreeMap<Problem, BTreeSet<String>> = report
        .problems
        .iter()
        .map(|(p, f)| {
            assert_eq!(f.count as usize, f.names.len(), "{p:?}");
            (*p, f.names.iter().cloned().collect())
        })
        .collect();
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let mut want = BTreeMap::from([
        (Problem::BadLine, names(&[&format!("line {}", lines.len())])),
        (Problem::DuplicateName, names(&[&name_of(&ok)])),
        (Problem::BadExtension, names(&[&name_of(&line("notes.txt"))])),
        (Problem::PlainHttp, names(&["plain.jpg"])),
        (Problem::Expired, names(&["expired.jpg"])),
        (Problem::NotYetValid, names(&["future.jpg"])),
        (Problem::ExpiresSoon, names(&["soon.jpg"])),
        (Problem::Missing, names(&[&name_of(&line("gone.jpg"))])),
        (Problem::TooLarge, names(&[&name_of(&line("big.jpg"))])),
    ]);
    if backend.checks_signatures() {
        want.insert(Problem::SignatureRefused, names(&["tampered.jpg"]));
    }
    assert_eq!(got, want, "{backend:?}");
    assert!(!report.ok);
    // Fetched: every line but the bad one, the plain-http, the expired and the future one.
    assert_eq!(report.fetched as usize, lines.len() - 4, "{backend:?}");

    // The good lines alone pass, fetching a sample.
    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, format!("{ok}\n")).expect("writes");
    let run = Refgen::new(["verify", good.to_str().expect("path"), "--sample", "5", "--json"])
        .run()
        .assert_ok();
    let report: Report = serde_json::from_slice(&run.stdout).expect("JSON report");
    assert!(
        report.ok && report.problems.is_empty() && report.fetched == 1,
        "{report:?}"
    );
    // When its URL stops working, read from its signature: 48 h from its signing.
    let until = report
        .expires_at
        .as_deref()
        .and_then(refgen_core::expiry::parse_rfc3339)
        .unwrap_or_else(|| panic!("{backend:?}: expires_at in {report:?}"));
    let left = until
        .duration_since(std::time::SystemTime::now())
        .expect("in the future");
    assert!(left.as_secs().abs_diff(48 * 3600) < 120, "{backend:?}: {left:?} left");
    // Without --json: a table of problems and one summary line on stderr, exit 1.
    let run = Refgen::new(["verify", file.to_str().expect("path")]).run();
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("PROBLEM")
            && run.stderr.contains("1 missing")
            && run.stderr.contains("the first URL expires at"),
        "{}",
        run.stderr
    );
}

/// A bucket under `imgs/` with `n` images.
async fn images(n: usize) -> (String, Vec<String>) {
    let keys: Vec<String> = (0..n).map(|i| format!("imgs/{i:03} photo.jpg")).collect();
    let bucket = Backend::S3.bucket_with(&keys).await;
    (bucket, keys)
}

/// `submit --verify` checks the file before any request, and stops there when
/// something is wrong; a sound file goes on to be submitted.
#[tokio::test(flavor = "multi_thread")]
async fn submit_verify_stops_before_any_request() {
    require!(S3);
    let (bucket, _) = images(3).await;
    let rf = FakeRoboflow::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let refs = dir.path().join("refs.jsonl");
    Backend::S3
        .generate(
            &format!("s3://{bucket}/imgs/"),
            None,
            &["-o", refs.to_str().expect("path")],
        )
        .run()
        .assert_ok();
    let good = read_lines(&refs);
    Backend::S3.delete(&bucket, "imgs/001 photo.jpg").await;
    let run = rf_cmd(
        &rf,
        &[
            "submit",
            "--references",
            refs.to_str().expect("path"),
            "-b",
            "checked",
            "--verify",
        ],
    )
    .run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("--verify found problems")
            && last.contains("1 missing")
            && last.contains("nothing was submitted"),
        "{}",
        run.stderr
    );
    assert!(rf.state.lock().expect("lock").calls.is_empty(), "a request went out");

    let sound = dir.path().join("sound.jsonl");
    std::fs::write(&sound, format!("{}\n{}\n", good[0], good[2])).expect("writes");
    rf_cmd(
        &rf,
        &[
            "submit",
            "--references",
            sound.to_str().expect("path"),
            "-b",
            "checked",
            "--verify",
        ],
    )
    .run()
    .assert_ok();
    assert_eq!(rf.wait_ingested("checked", 2).len(), 2);
    rf.assert_no_violations();
}

/// A batch of 5 images on the stand-in where one reference fails to ingest (its
/// URL's signature spoiled: the store refuses it) and one shard fails whole.
struct FailingBatch {
    rf: FakeRoboflow,
    bucket: String,
    /// The sound references file.
    refs: String,
    /// The file submitted: `refs` with line 3's URL spoiled.
    bad: String,
    /// The lines of `bad`.
    lines: Vec<String>,
    /// The name whose URL is spoiled.
    failed_name: String,
    dir: tempfile::TempDir,
}

impl FailingBatch {
    async fn submit(batch: &str, extra: &[&str]) -> Self {
        let (bucket, _) = images(5).await;
        let rf = FakeRoboflow::start();
        {
            let mut st = rf.state.lock().expect("lock");
            st.tolerate_failed_references = true;
            st.broken_shards.insert(batch.into(), "archive corrupted".into());
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let refs = dir.path().join("refs.jsonl").display().to_string();
        Backend::S3
            .generate(&format!("s3://{bucket}/imgs/"), None, &["--images", "-o", &refs])
            .run()
            .assert_ok();
        let mut lines = read_lines(Path::new(&refs));
        let failed_name = name_of(&lines[2]);
        lines[2] = json!({"name": failed_name, "url": tamper_signature(&url_of(&lines[2]))}).to_string();
        let bad = dir.path().join("bad.jsonl").display().to_string();
        std::fs::write(&bad, lines.join("\n") + "\n").expect("writes");
        let mut args = vec!["submit", "--references", &bad, "-b", batch];
        args.extend(extra);
        rf_cmd(&rf, &args).run().assert_ok();
        rf.wait_ingested(batch, 4);
        FailingBatch {
            rf,
            bucket,
            refs,
            bad,
            lines,
            failed_name,
            dir,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// `batches list|show|failures`: failures come from the shards (a file that could
/// not be fetched, a shard that failed whole) and from the names the batch does not
/// hold; the retry file holds the failed lines, re-signed when a source is given.
#[tokio::test(flavor = "multi_thread")]
async fn batches_and_their_failures() {
    require!(S3);
    let setup = FailingBatch::submit("fail-batch", &["--batch-name", "Nightly"]).await;
    let FailingBatch {
        rf,
        bucket,
        refs,
        bad: _,
        lines,
        failed_name,
        ..
    } = &setup;
    let path = |name: &str| setup.path(name);
    for batch in ["good-batch", "third-batch"] {
        rf_cmd(
            rf,
            &["submit", "--references", refs, "-b", batch, "--batch-name", "Nightly"],
        )
        .run()
        .assert_ok();
    }
    rf.wait_ingested("good-batch", 5);
    rf.wait_ingested("third-batch", 5);

    // list: every batch, across the stand-in's pages of two.
    let run = rf_cmd(rf, &["batches", "list", "--json"]).run().assert_ok();
    let listed: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    let batches: Vec<Batch> = serde_json::from_value(listed["batches"].clone()).expect("batches");
    let ids: BTreeSet<&str> = batches.iter().map(|b| b.batch_id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["fail-batch", "good-batch", "third-batch"]));
    assert!(batches.iter().all(|b| b.display_name == "Nightly"));
    let run = rf_cmd(rf, &["batches", "list", "--limit", "1", "--json"])
        .run()
        .assert_ok();
    let listed: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(listed["batches"].as_array().map(Vec::len), Some(1));
    let table = rf_cmd(rf, &["batches", "list"]).run().assert_ok();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("BATCH ID") && table.contains("good-batch"), "{table}");

    // show: details, count and the shards with their status.
    let run = rf_cmd(rf, &["batches", "show", "fail-batch", "--json"])
        .run()
        .assert_ok();
    let shown: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    let batch: Batch = serde_json::from_value(shown["batch"].clone()).expect("batch");
    assert_eq!(
        (batch.batch_id.as_str(), shown["count"].as_u64()),
        ("fail-batch", Some(4))
    );
    assert_eq!(shown["shards"].as_array().map(Vec::len), Some(3), "{shown}");
    assert_eq!(shown["failedShards"], 1);
    let run = rf_cmd(rf, &["batches", "show", "no-such-batch"]).run();
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("HTTP 404") && run.stderr.lines().count() == 1,
        "{}",
        run.stderr
    );
    let run = rf_cmd(rf, &["batches", "show", "Bad Id"]).run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);

    // failures: JSON Lines, exit 1.
    let run = rf_cmd(rf, &["batches", "failures", "fail-batch", "--json"]).run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let found: Vec<IngestFailure> = json_lines(&run.stdout);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].name.as_deref(), Some(failed_name.as_str()));
    assert_eq!(found[0].kind, "download-error");
    assert!(found[0].reason.contains("403"), "{found:?}");
    assert_eq!(
        (found[1].name.as_deref(), found[1].reason.as_str()),
        (None, "archive corrupted")
    );
    assert!(run.stderr.contains("2 failures of batch fail-batch"), "{}", run.stderr);
    // None failed: exit 0 and nothing on stdout.
    let run = rf_cmd(rf, &["batches", "failures", "good-batch", "--json"])
        .run()
        .assert_ok();
    assert!(run.stdout.is_empty());

    // --references: a name the batch never got is a failure too; the retry file
    // holds the failed lines as they were.
    let extra = path("extra.jsonl");
    let mut with_extra = lines.clone();
    with_extra.push(renamed(&lines[0], "never-sent.jpg"));
    std::fs::write(&extra, with_extra.join("\n") + "\n").expect("writes");
    let retry = path("retry.jsonl");
    let run = rf_cmd(
        rf,
        &[
            "batches",
            "failures",
            "fail-batch",
            "--references",
            &extra,
            "--retry-file",
            &retry,
            "--json",
        ],
    )
    .run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let found: Vec<IngestFailure> = json_lines(&run.stdout);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(
        (found[2].name.as_deref(), found[2].kind.as_str()),
        (Some("never-sent.jpg"), "not-in-batch")
    );
    assert_eq!(read_lines(Path::new(&retry)), [lines[2].clone(), with_extra[5].clone()]);

    // --source: listed and signed again; the retry line's URL works.
    let resigned = path("resigned.jsonl");
    let run = rf_cmd(
        rf,
        &[
            "batches",
            "failures",
            "fail-batch",
            "--source",
            &format!("s3://{bucket}/imgs/"),
            "--images",
            "--retry-file",
            &resigned,
        ],
    )
    .run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("(signed again)"), "{}", run.stderr);
    let retry_lines = read_lines(Path::new(&resigned));
    assert_eq!(retry_lines.len(), 1);
    assert_eq!(&name_of(&retry_lines[0]), failed_name);
    assert_ne!(url_of(&retry_lines[0]), url_of(&lines[2]));
    let (status, body) = http_get(&url_of(&retry_lines[0]));
    assert_eq!((status, body), (200, b"imgs/002 photo.jpg".to_vec()));
    let run = rf_cmd(rf, &["batches", "failures", "fail-batch", "--retry-file", &resigned]).run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    rf.assert_no_violations();
}

/// `export`: every part of an output batch into a folder per part, over pages;
/// a failed run leaves no partial file and the next run downloads only what is
/// missing; parts can be chosen; an input batch exports by reference name.
#[tokio::test(flavor = "multi_thread")]
async fn export_is_resumable() {
    require!(S3);
    let rf = FakeRoboflow::start();
    rf.add_job("job-x", "some-batch");
    let dir = tempfile::tempdir().expect("tempdir");
    let to = |name: &str| dir.path().join(name).to_str().expect("path").to_owned();
    let all = [
        "results/results-0.jsonl",
        "results/results-1.jsonl",
        "results/results-2.jsonl",
        "visualisations/vis-0.jpg",
    ];
    let run = rf_cmd(&rf, &["export", "out-job-x", "--to", &to("a"), "--json"])
        .run()
        .assert_ok();
    let summary: ExportSummary = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!((summary.files, summary.downloaded, summary.skipped), (4, 4, 0));
    assert_eq!(summary.batch_type, "multipart-batch");
    for file in all {
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a").join(file)).expect("exported"),
            format!("results for /files/out-job-x/{file}\n")
        );
    }

    // The last file fails every attempt: exit 1, one line; no partial file.
    rf.state
        .lock()
        .expect("lock")
        .file_faults
        .insert("/files/out-job-x/visualisations/vis-0.jpg".into());
    let run = rf_cmd(&rf, &["export", "out-job-x", "--to", &to("b"), "--max-attempts", "2"]).run();
    assert_eq!(run.code, Some(1));
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("vis-0.jpg") && last.contains("HTTP 500"),
        "{}",
        run.stderr
    );
    let leftovers: Vec<_> = walk(&dir.path().join("b"))
        .into_iter()
        .filter(|p| p.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    rf.state.lock().expect("lock").file_faults.clear();
    let run = rf_cmd(&rf, &["export", "out-job-x", "--to", &to("b"), "--json"])
        .run()
        .assert_ok();
    let summary: ExportSummary = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!((summary.downloaded, summary.skipped), (1, 3), "{summary:?}");
    let downloads = rf.state.lock().expect("lock").file_downloads.clone();
    for file in &all[..3] {
        // Once for folder a, once for folder b: the second run skipped them.
        assert_eq!(downloads[&format!("/files/out-job-x/{file}")], 2, "{file}");
    }

    // The output batch's parts, as `batches show` gives them.
    let run = rf_cmd(&rf, &["batches", "show", "out-job-x", "--json"])
        .run()
        .assert_ok();
    let shown: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    let parts: Vec<refgen_roboflow::BatchPart> = serde_json::from_value(shown["parts"].clone()).expect("parts");
    assert_eq!(
        parts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["results", "visualisations"]
    );
    assert_eq!(
        (shown["batch"]["batchType"].as_str(), shown["count"].as_u64()),
        (Some("multipart-batch"), Some(4))
    );

    // One part; an unknown part is one line.
    let run = rf_cmd(
        &rf,
        &[
            "export",
            "out-job-x",
            "--to",
            &to("c"),
            "--part",
            "visualisations",
            "--json",
        ],
    )
    .run()
    .assert_ok();
    let summary: ExportSummary = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(summary.paths, [Path::new("visualisations/vis-0.jpg")]);
    let run = rf_cmd(&rf, &["export", "out-job-x", "--to", &to("d"), "--part", "nope"]).run();
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("no part named `nope`"), "{}", run.stderr);

    // An input batch: its files by reference name, straight into the folder.
    let (bucket, _) = images(3).await;
    let refs = to("refs.jsonl");
    Backend::S3
        .generate(&format!("s3://{bucket}/imgs/"), None, &["-o", &refs])
        .run()
        .assert_ok();
    rf_cmd(&rf, &["submit", "--references", &refs, "-b", "inputs"])
        .run()
        .assert_ok();
    rf.wait_ingested("inputs", 3);
    let run = rf_cmd(&rf, &["export", "inputs", "--to", &to("e"), "--json"])
        .run()
        .assert_ok();
    let summary: ExportSummary = serde_json::from_slice(&run.stdout).expect("JSON");
    let names: BTreeSet<String> = read_lines(Path::new(&refs)).iter().map(|l| name_of(l)).collect();
    let exported: BTreeSet<String> = summary.paths.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(exported, names);
    rf.assert_no_violations();
}

fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

/// `jobs list|show|abort|restart|logs`, with the restart body checked against
/// `parameters-override-v1` (and left out when nothing is overridden).
#[test]
fn jobs_are_listed_shown_aborted_restarted_and_logged() {
    let rf = FakeRoboflow::start();
    for job in ["j-a", "j-b", "j-c"] {
        rf.add_job(job, "some-batch");
    }
    let run = rf_cmd(&rf, &["jobs", "list", "--json"]).run().assert_ok();
    let listed: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    let jobs: Vec<refgen_roboflow::Job> = serde_json::from_value(listed["jobs"].clone()).expect("jobs");
    assert_eq!(
        jobs.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
        ["j-a", "j-b", "j-c"]
    );

    let run = rf_cmd(&rf, &["jobs", "list", "--limit", "1", "--json"])
        .run()
        .assert_ok();
    let listed: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(1));
    // Stopped after the first page: the stand-in pages by two.
    let pages = rf
        .state
        .lock()
        .expect("lock")
        .calls
        .iter()
        .filter(|c| c.ends_with("/jobs"))
        .count();
    let calls = rf.state.lock().expect("lock").calls.clone();
    assert_eq!(
        pages,
        2 + 1,
        "two pages for the whole list, one for --limit 1: {calls:?}"
    );

    let run = rf_cmd(&rf, &["jobs", "show", "j-a", "--json"]).run().assert_ok();
    let shown: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(shown["job"]["jobId"], "j-a");
    assert_eq!(shown["stages"][0]["tasksByStatus"], json!({"error": 1, "info": 2}));
    assert_eq!(shown["stages"][1]["outputBatches"], json!(["out-j-a"]));
    let table = rf_cmd(&rf, &["jobs", "show", "j-a"]).run().assert_ok();
    assert!(String::from_utf8_lossy(&table.stdout).contains("error: 1, info: 2"));

    let run = rf_cmd(&rf, &["jobs", "abort", "j-a", "--json"]).run().assert_ok();
    let answer: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(answer, json!({"jobId": "j-a", "aborted": true}));
    let run = rf_cmd(&rf, &["jobs", "show", "j-a", "--json"]).run().assert_ok();
    let shown: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(shown["state"], "failed");

    rf_cmd(&rf, &["jobs", "restart", "j-b"]).run().assert_ok();
    let run = rf_cmd(
        &rf,
        &[
            "jobs",
            "restart",
            "j-b",
            "--machine-type",
            "gpu",
            "--workers-per-machine",
            "2",
            "--max-parallel-tasks",
            "4",
            "--max-runtime-seconds",
            "600",
            "--max-image-failure-rate",
            "0.1",
            "--json",
        ],
    )
    .run()
    .assert_ok();
    let answer: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    let body = json!({"type": "parameters-override-v1",
        "computeConfiguration": {"type": "compute-configuration-v2", "machineType": "gpu", "workersPerMachine": 2},
        "maxParallelTasks": 4, "processingTimeoutSeconds": 600, "maxImageFailureRate": 0.1});
    assert_eq!(answer["overrides"], body);
    let restarts = rf.state.lock().expect("lock").restarts.clone();
    assert_eq!(restarts, [("j-b".to_owned(), None), ("j-b".to_owned(), Some(body))]);

    let run = rf_cmd(&rf, &["jobs", "logs", "j-a", "--severity", "warning", "--json"])
        .run()
        .assert_ok();
    let logs: Vec<LogEntry> = json_lines(&run.stdout);
    assert_eq!(
        logs.iter().map(|l| l.severity.as_str()).collect::<Vec<_>>(),
        ["warning", "error"]
    );
    let run = rf_cmd(&rf, &["jobs", "logs", "j-a", "--json", "-vv"]).run().assert_ok();
    assert_eq!(json_lines::<LogEntry>(&run.stdout).len(), 3);
    assert!(run.stderr.contains("Roboflow request"), "-vv logs the requests");
    assert!(
        !run.stderr.contains(rf.api_key()),
        "the API key in the log: {}",
        run.stderr
    );
    let table = rf_cmd(&rf, &["jobs", "logs", "j-a"]).run().assert_ok();
    assert!(String::from_utf8_lossy(&table.stdout).contains("job started"));

    let run = rf_cmd(&rf, &["jobs", "show", "nope"]).run();
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);
    let run = rf_cmd(&rf, &["jobs", "abort", "Bad Id"]).run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(rf.state.lock().expect("lock").aborted, ["j-a"]);
    rf.assert_no_violations();
    // The key travelled only as api_key.
    for request in rf.requests() {
        assert!(request.header("authorization").is_none());
    }
}

/// `webhook-check` POSTs the three notification shapes of the contract, with the
/// publishable key as Authorization; a receiver that refuses them fails the check.
#[test]
fn webhook_check_posts_the_three_notifications() {
    let receiver = StubServer::start(|_| (200, vec![], b"ok".to_vec()));
    let url = format!("http://{}/hook", receiver.addr);
    let run = Refgen::new([
        "webhook-check",
        &url,
        "--publishable-key",
        "pk-secret-123",
        "--json",
        "-vv",
    ])
    .run()
    .assert_ok();
    let report: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(report["ok"], true);
    let posts = receiver.requests();
    assert_eq!(posts.len(), 3);
    let mut kinds = Vec::new();
    for post in &posts {
        assert_eq!((post.method.as_str(), post.target.as_str()), ("POST", "/hook"));
        assert_eq!(post.header("authorization"), Some("pk-secret-123"));
        assert!(
            post.header("content-type")
                .is_some_and(|c| c.starts_with("application/json"))
        );
        let body: Value = serde_json::from_slice(&post.body).expect("JSON body");
        assert!(body["event_id"].is_string() && body["delivery_attempt"] == 1, "{body}");
        match body["type"].as_str() {
            Some("roboflow-data-staging-notification-v1") => {
                for key in ["ingest_id", "batch_id", "shard_id"] {
                    assert!(body[key].is_string(), "{key} in {body}");
                }
                let n = &body["notification"];
                assert!(n["success"].is_boolean(), "{body}");
                if n["type"] == "ingest-files-status-notification-v1" {
                    assert!(n["ingested_files"].is_array() && n["content_truncated"].is_boolean());
                    let failed = &n["failed_files"][0];
                    assert!(
                        failed["type"].is_string() && failed["file_name"].is_string() && failed["reason"].is_string()
                    );
                } else {
                    assert_eq!(n["type"], "ingest-status-notification-v1");
                }
                kinds.push(n["type"].as_str().expect("type").to_owned());
            }
            Some("roboflow-batch-job-notification-v1") => {
                assert!(body["job_id"].is_string());
                assert!(matches!(body["job_state"].as_str(), Some("success" | "fail")));
                kinds.push("job".into());
            }
            other => panic!("unexpected notification type {other:?}"),
        }
    }
    assert_eq!(
        kinds,
        [
            "ingest-status-notification-v1",
            "ingest-files-status-notification-v1",
            "job"
        ]
    );
    assert!(!run.stderr.contains("pk-secret-123"));

    let refusing = StubServer::start(|_| (500, vec![], b"boom".to_vec()));
    let run = Refgen::new([
        "webhook-check",
        &format!("http://{}/hook", refusing.addr),
        "--max-attempts",
        "1",
        "--json",
    ])
    .run();
    assert_eq!(run.code, Some(1));
    let report: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(report["ok"], false);
    assert!(
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r["status"] == 500)
    );

    let run = Refgen::new(["webhook-check", "--print"]).run().assert_ok();
    assert_eq!(json_lines::<Value>(&run.stdout).len(), 3);
}

/// Every read of the lifecycle commands through a proxy that injects every fault
/// (5xx, 429, resets, bodies cut short, stalls) into 30 % of the API's answers and
/// of the downloads: the output equals the fault-free one.
#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_outputs_under_faults_equal_the_fault_free_ones() {
    require!(S3);
    let setup = FailingBatch::submit("faulty", &[]).await;
    let (rf, refs) = (&setup.rf, &setup.bad);
    let path = |name: &str| setup.path(name);
    rf.add_job("job-f", "faulty");
    let proxy = FaultProxy::start(&rf.base_url(), Plan::every_fault(Service::Api, 0.3, 23));

    let outputs = |base: &str, export_to: &str| {
        let commands: [&[&str]; 5] = [
            &["batches", "list", "--json"],
            &["batches", "show", "faulty", "--json"],
            &["batches", "failures", "faulty", "--references", refs, "--json"],
            &["jobs", "list", "--json"],
            &["jobs", "logs", "job-f", "--json"],
        ];
        let mut got: Vec<Vec<u8>> = commands
            .iter()
            .map(|args| {
                let mut all = args.to_vec();
                all.extend(["--request-timeout", "2s"]);
                let run = rf_cmd(rf, &all)
                    .env("API_BASE_URL", base)
                    .env("REFGEN_RETRY_DELAY", "10ms")
                    .run();
                let expected_code = if args[1] == "failures" { 1 } else { 0 };
                assert_eq!(run.code, Some(expected_code), "{args:?} via {base}: {}", run.stderr);
                run.stdout
            })
            .collect();
        let run = rf_cmd(
            rf,
            &[
                "export",
                "out-job-f",
                "--to",
                export_to,
                "--json",
                "--request-timeout",
                "2s",
            ],
        )
        .env("API_BASE_URL", base)
        .env("REFGEN_RETRY_DELAY", "10ms")
        .run()
        .assert_ok();
        let summary: ExportSummary = serde_json::from_slice(&run.stdout).expect("JSON");
        for file in &summary.paths {
            got.push(std::fs::read(Path::new(export_to).join(file)).expect("exported"));
        }
        got.push(format!("{:?}", summary.paths).into_bytes());
        got
    };
    let clean = outputs(&rf.base_url(), &path("clean"));
    rf.state.lock().expect("lock").download_base = Some(proxy.url.clone());
    let faulted = outputs(&proxy.url, &path("faulted"));
    assert!(proxy.counts.total() > 0, "no fault was injected");
    eprintln!("survived {:?}", proxy.counts.by_kind());
    assert_eq!(faulted.len(), clean.len());
    for (a, b) in clean.iter().zip(&faulted) {
        assert_eq!(String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    }
    rf.assert_no_violations();
}

/// On a terminal (a pseudo-terminal from `script`), `export` shows a bar of the
/// files done, cleared at the end, with the summary left; in a log, only the summary.
#[test]
fn export_shows_a_bar_on_a_terminal() {
    let rf = FakeRoboflow::start();
    rf.add_job("job-p", "some-batch");
    rf.state.lock().expect("lock").download_delay = std::time::Duration::from_millis(400);
    let dir = tempfile::tempdir().expect("tempdir");
    let to = dir.path().join("out").display().to_string();
    let (success, screen) = rf_cmd(&rf, &["export", "out-job-p", "--to", &to, "--concurrency", "1"]).run_in_terminal();
    assert!(success, "{screen}");
    assert!(screen.contains("/4 files"), "a bar while it runs: {screen:?}");
    assert!(screen.contains("\x1b[2K"), "the bar is cleared: {screen:?}");
    let last = screen.trim_end().rsplit(['\n', '\r']).next().unwrap_or_default();
    assert!(
        last.trim_start_matches("\x1b[2K")
            .starts_with("refgen: batch out-job-p: 4 files into"),
        "the summary stays: {last:?}"
    );
    // Not a terminal: the summary alone.
    let run = rf_cmd(&rf, &["export", "out-job-p", "--to", &to, "--overwrite"])
        .run()
        .assert_ok();
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("4 downloaded, 0 already there"), "{}", run.stderr);
}

/// The special targets of one folder: a null device made here (never the
/// system's; none when mknod is not allowed), a FIFO, a symlink to a file, a
/// read-only file, and a path in a folder that does not exist.
struct SpecialTargets {
    dir: tempfile::TempDir,
    null: Option<std::path::PathBuf>,
}

impl SpecialTargets {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let null = dir.path().join("null");
        let made = mknod(&null, 1, 3);
        mkfifo(&dir.path().join("fifo"));
        std::fs::write(dir.path().join("real"), "old\n").expect("seed");
        std::os::unix::fs::symlink("real", dir.path().join("link")).expect("symlink");
        let read_only = dir.path().join("read-only");
        std::fs::write(&read_only, "kept\n").expect("seed");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        SpecialTargets {
            dir,
            null: made.then_some(null),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Reads the FIFO on a thread while `write` runs, and returns what it got.
    fn through_fifo(&self, write: impl FnOnce(&str)) -> Vec<u8> {
        let fifo = self.dir.path().join("fifo");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(std::fs::read(fifo).expect("read the fifo")));
        write(&self.path("fifo"));
        // A FIFO replaced by a file would leave the reader waiting for good.
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::symlink_metadata(self.dir.path().join("fifo")).map(|m| m.file_type());
        assert!(
            kind.as_ref().is_ok_and(|k| k.is_fifo()),
            "the FIFO was replaced: {kind:?}"
        );
        // Nothing written into it (a link to it replaced instead) leaves the
        // reader waiting: that is a failure, not a hang.
        rx.recv_timeout(std::time::Duration::from_secs(30))
            .expect("nothing was written into the FIFO")
    }

    /// Each special file is still what it was.
    fn assert_kept(&self) {
        use std::os::unix::fs::FileTypeExt;
        let lstat = |name: &str| std::fs::symlink_metadata(self.dir.path().join(name)).expect("lstat");
        if self.null.is_some() {
            assert!(
                lstat("null").file_type().is_char_device(),
                "the device is still a device"
            );
        }
        assert!(lstat("fifo").file_type().is_fifo(), "the FIFO is still a FIFO");
        assert!(lstat("link").file_type().is_symlink(), "the link is still a link");
        assert_eq!(
            std::fs::read_to_string(self.dir.path().join("read-only")).expect("read"),
            "kept\n"
        );
        let stray: Vec<String> = walk(self.dir.path())
            .into_iter()
            .filter(|p| p.contains(".refgen"))
            .collect();
        assert!(stray.is_empty(), "temporary files left: {stray:?}");
    }
}

/// `--retry-file` follows the rules of every file refgen writes: a device or a
/// FIFO is written in place, a symlink stays a link and its file is replaced, a
/// read-only file is refused and kept, a missing folder is one line naming the
/// target. (Before, each of the first four was replaced by a regular file.)
#[tokio::test(flavor = "multi_thread")]
async fn the_retry_file_keeps_special_targets() {
    require!(S3);
    let setup = FailingBatch::submit("fail-batch", &[]).await;
    let targets = SpecialTargets::new();
    let failures = |target: &str| {
        rf_cmd(
            &setup.rf,
            &[
                "batches",
                "failures",
                "fail-batch",
                "--references",
                &setup.bad,
                "--retry-file",
                target,
            ],
        )
        .run()
    };
    let failed_line = setup.lines[2].clone();
    if let Some(null) = &targets.null {
        let run = failures(null.to_str().expect("path"));
        assert_eq!(run.code, Some(1), "{}", run.stderr);
    }
    let got = targets.through_fifo(|fifo| {
        let run = failures(fifo);
        assert_eq!(run.code, Some(1), "{}", run.stderr);
    });
    assert_eq!(String::from_utf8_lossy(&got), format!("{failed_line}\n"));
    let run = failures(&targets.path("link"));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(read_lines(&targets.dir.path().join("real")), [failed_line]);
    let run = failures(&targets.path("read-only"));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.lines().count() == 1 && run.stderr.contains("read-only") && run.stderr.contains("read-only`"),
        "{}",
        run.stderr
    );
    let missing = targets.path("no-such-folder/retry.jsonl");
    let run = failures(&missing);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.lines().count() == 1
            && run.stderr.contains(&missing)
            && run.stderr.contains("does not exist")
            && !run.stderr.contains("os error"),
        "{}",
        run.stderr
    );
    targets.assert_kept();
    setup.rf.assert_no_violations();
}

/// `export` writes each file under the same rules: with `--overwrite`, a file
/// whose name is a symlink, a FIFO or a device is written through, never
/// replaced; a read-only one is refused with one line.
#[test]
fn export_keeps_special_targets() {
    let rf = FakeRoboflow::start();
    rf.add_job("job-x", "some-batch");
    let targets = SpecialTargets::new();
    let part = targets.dir.path().join("results");
    std::fs::create_dir(&part).expect("mkdir");
    // results-0 is a link to ../real, results-1 the FIFO's link... each file of
    // the part is given one special form.
    std::os::unix::fs::symlink("../real", part.join("results-0.jsonl")).expect("symlink");
    std::os::unix::fs::symlink("../fifo", part.join("results-1.jsonl")).expect("symlink");
    let export = || {
        rf_cmd(
            &rf,
            &[
                "export",
                "out-job-x",
                "--to",
                targets.dir.path().to_str().expect("path"),
                "--part",
                "results",
                "--overwrite",
            ],
        )
        .run()
    };
    let got = targets.through_fifo(|_| {
        export().assert_ok();
    });
    assert_eq!(
        String::from_utf8_lossy(&got),
        "results for /files/out-job-x/results/results-1.jsonl\n"
    );
    assert_eq!(
        std::fs::read_to_string(targets.dir.path().join("real")).expect("read"),
        "results for /files/out-job-x/results/results-0.jsonl\n"
    );
    for name in ["results-0.jsonl", "results-1.jsonl"] {
        assert!(
            std::fs::symlink_metadata(part.join(name))
                .expect("lstat")
                .file_type()
                .is_symlink()
        );
    }
    // A read-only file in the way: refused, kept, one line.
    std::fs::remove_file(part.join("results-1.jsonl")).expect("rm");
    std::fs::remove_file(part.join("results-2.jsonl")).expect("rm");
    std::os::unix::fs::symlink("../read-only", part.join("results-2.jsonl")).expect("symlink");
    let run = export();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.lines().count() == 1 && run.stderr.contains("read-only"),
        "{}",
        run.stderr
    );
    targets.assert_kept();
    rf.assert_no_violations();
}
