//! Faults are tested like features, on every backend: the fault proxy sits in
//! front of each real server and breaks listing requests (500, 503 in the
//! service's words, 429 with Retry-After, resets before and in the body, 200s cut
//! short with and without a length, stalls). At 10 % and 30 %, with and without concurrency, every run must
//! write exactly the references of the fault-free run; with every attempt failing,
//! a run must end with one line and leave its target as it was.

use refgen_e2e::backends::Backend;
use refgen_e2e::faults::{Fault, FaultProxy, Plan};
use refgen_e2e::*;

/// Nested folders, a flat folder of 600 (listed in chunks), names whose byte order
/// and folder order differ, and tricky characters: about 1,000 keys, pages of 100.
fn keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..600).map(|i| format!("flat/{i:05}.jpg")).collect();
    keys.extend((0..240).map(|i| format!("deep/d{}/s{}/{i:04}.jpg", i % 4, i % 3)));
    keys.extend((0..120).map(|i| format!("tricky/a-z/{i:03} y+é%20#?.jpg")));
    keys.extend(["tricky/a-z/y.jpg", "tricky/a/b.jpg", "top.jpg", "zz/last.jpg"].map(String::from));
    keys
}

fn names(run: &Run) -> Vec<String> {
    parse_references(&run.stdout).into_iter().map(|l| l.name).collect()
}

/// Runs refgen through a proxy with `plan`, writing to a file (as unattended runs
/// do), and returns the run and the file's names.
fn through(backend: Backend, source: &str, plan: Plan, args: &[&str]) -> (Run, Vec<String>, FaultProxy) {
    let proxy = FaultProxy::start(&backend.upstream(), plan);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("refs.jsonl");
    let mut all = vec![
        "--name",
        "key",
        "--page-size",
        "100",
        "--request-timeout",
        "2s",
        "-o",
        out.to_str().expect("path"),
    ];
    all.extend_from_slice(args);
    let run = backend.generate(source, Some(&proxy.url), &all).run();
    let written = std::fs::read(&out).unwrap_or_default();
    let file_names = parse_references(&written).into_iter().map(|l| l.name).collect();
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("ls").count(),
        usize::from(run.success),
        "no temporary file is left beside the target"
    );
    (run, file_names, proxy)
}

on_every_backend!(
    listing_survives_every_fault,
    plan_parts_survive_every_fault,
    a_request_that_always_fails_ends_in_one_line
);

async fn listing_survives_every_fault(backend: Backend) {
    if !backend.available() {
        return;
    }
    let mut keys = keys();
    let bucket = backend.bucket_with(&keys).await;
    let source = backend.source(&bucket, "");
    keys.sort();
    let mut seed = 7;
    for concurrency in ["16", "1"] {
        // The fault-free run at the same concurrency: SeaweedFS lists folder by
        // folder, which only a sequential listing keeps.
        let args = ["--name", "key", "--concurrency", concurrency, "--page-size", "100"];
        let clean = backend.generate(&source, None, &args).run().assert_ok();
        let expected = names(&clean);
        let mut sorted = expected.clone();
        sorted.sort();
        assert!(sorted == keys, "{backend:?}: the fault-free run lists every key once");
        for rate in [0.1, 0.3] {
            seed += 1;
            let plan = Plan::every_fault(backend.service(), rate, seed);
            let (run, got, proxy) = through(backend, &source, plan, &["--concurrency", concurrency]);
            let label = format!("{backend:?} rate {rate} concurrency {concurrency} seed {seed}");
            assert!(run.success, "{label}: failed: {}", run.stderr);
            if got != expected {
                let at = got.iter().zip(&expected).position(|(a, b)| a != b);
                panic!(
                    "{label}: output differs from the fault-free run: {} names against {}, first difference at {at:?}",
                    got.len(),
                    expected.len()
                );
            }
            let injected = proxy.counts.total();
            assert!(
                injected > 0,
                "{label}: no fault was injected ({} listing requests)",
                proxy.counts.picked.load(std::sync::atomic::Ordering::SeqCst)
            );
            eprintln!("{label}: survived {:?}", proxy.counts.by_kind());
        }
    }
}

/// A plan made through the faults is the fault-free plan (it is cut exactly
/// from a whole listing), and each of its parts listed through them (a range
/// over a page client that clips pages) is the fault-free part, at both rates.
async fn plan_parts_survive_every_fault(backend: Backend) {
    if !backend.available() {
        return;
    }
    // SeaweedFS walks `tricky/a/` before `tricky/a-z/` (folder order), which a
    // range refuses; the other servers list it in byte order.
    let keys: Vec<String> = keys()
        .into_iter()
        .filter(|k| backend != Backend::S3 || k != "tricky/a/b.jpg")
        .collect();
    let bucket = backend.bucket_with(&keys).await;
    let source = backend.source(&bucket, "");
    let dir = tempfile::tempdir().expect("tempdir");
    let listing = ["--page-size", "100", "--request-timeout", "2s"];
    // What the runs rely on (the ranges, under their fingerprint) and the
    // counts; not when it was made, nor how many requests it took.
    let plan_through = |via: Option<&str>, name: &str| -> serde_json::Value {
        let path = dir.path().join(name);
        let mut args = vec!["plan", &source, "--parts", "3", "-o", path.to_str().expect("utf-8")];
        args.extend(listing);
        let run = backend.refgen(&args, via).run();
        assert!(run.success, "{backend:?} plan via {via:?}: {}", run.stderr);
        let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("the plan")).expect("JSON");
        serde_json::json!([
            plan["fingerprint"],
            plan["parts"],
            plan["estimated_objects"],
            plan["exact"]
        ])
    };
    let part_through = |plan: &str, k: usize, via: Option<&str>| -> Run {
        let shard = format!("{k}/3");
        let mut args = vec!["generate", "--plan", plan, "--shard", &shard, "--name", "key"];
        args.extend(listing);
        backend.refgen(&args, via).run()
    };
    let clean_plan = plan_through(None, "clean.json");
    let plan = dir.path().join("clean.json");
    let plan = plan.to_str().expect("utf-8");
    let expected: Vec<Vec<String>> = (0..3)
        .map(|k| names(&part_through(plan, k, None).assert_ok()))
        .collect();
    let mut union: Vec<&String> = expected.iter().flatten().collect();
    union.sort();
    let mut sorted_keys: Vec<&String> = keys.iter().collect();
    sorted_keys.sort();
    assert_eq!(
        union, sorted_keys,
        "{backend:?}: the fault-free parts list every key once"
    );
    for (rate, seed) in [(0.1, 31), (0.3, 32)] {
        let label = format!("{backend:?} rate {rate} seed {seed}");
        let proxy = FaultProxy::start(&backend.upstream(), Plan::every_fault(backend.service(), rate, seed));
        let faulted_plan = plan_through(Some(&proxy.url), "faulted.json");
        assert!(
            faulted_plan == clean_plan,
            "{label}: the plan made through faults differs"
        );
        for (k, want) in expected.iter().enumerate() {
            let run = part_through(plan, k, Some(&proxy.url));
            assert!(run.success, "{label} part {k}: failed: {}", run.stderr);
            assert!(
                &names(&run) == want,
                "{label} part {k}: differs from the fault-free part"
            );
        }
        assert!(proxy.counts.total() > 0, "{label}: no fault was injected");
        eprintln!("{label}: parts survived {:?}", proxy.counts.by_kind());
    }
}

/// Each fault alone on every first attempt of a page would be too slow; instead
/// every listing request fails the same way: one line, attempts and time, exit 1,
/// the old file untouched.
async fn a_request_that_always_fails_ends_in_one_line(backend: Backend) {
    if !backend.available() {
        return;
    }
    let bucket = backend.bucket_with(&["a.jpg".to_owned()]).await;
    let source = backend.source(&bucket, "");
    for fault in [Fault::Busy, Fault::CutWithLength, Fault::Stall] {
        let mut plan = Plan::every_fault(backend.service(), 1.0, 1);
        plan.faults = vec![fault];
        let proxy = FaultProxy::start(&backend.upstream(), plan);
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("refs.jsonl");
        std::fs::write(&out, "old\n").expect("seed");
        let run = backend
            .generate(
                &source,
                Some(&proxy.url),
                &[
                    "-o",
                    out.to_str().expect("path"),
                    "--max-attempts",
                    "3",
                    "--request-timeout",
                    "1s",
                ],
            )
            .run();
        let label = format!("{backend:?} {fault:?}");
        assert_eq!(run.code, Some(1), "{label}: {}", run.stderr);
        // One error line; the retries before it say so (WARN lines) since a
        // retried request is never silent, on S3 (whose SDK retries) as elsewhere.
        if matches!(fault, Fault::Busy) {
            assert!(
                run.stderr.contains("attempt 2 of 3 failed (HTTP 503); retrying"),
                "{label}: the retry is said: {}",
                run.stderr
            );
        }
        let stderr = without_retry_lines(&run.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{label}: one line: {}", run.stderr);
        let line = lines[0];
        assert!(
            line.starts_with("error: ") && line.contains("listing"),
            "{label}: {line}"
        );
        assert!(
            line.contains("after 3 attempts over") || line.contains("3 attempts allowed"),
            "{label}: attempts and time: {line}"
        );
        assert_eq!(proxy.counts.total(), 3, "{label}: three attempts");
        assert_eq!(std::fs::read_to_string(&out).expect("read"), "old\n", "{label}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1, "{label}");
    }
}
