//! `refgen plan` and `generate --plan --shard K/N`: workers that split a
//! listing by key range. Their parts' union is the unsharded output, each
//! object in exactly one part, objects added after the plan included; and each
//! worker lists about its share of the pages, not the whole bucket.

use std::collections::BTreeSet;

use refgen_e2e::backends::Backend;
use refgen_e2e::faults::{FaultProxy, Plan};
use refgen_e2e::*;

use super::{backends, key_names, shaped_bucket};

/// The plan of `source` in `parts`, written to a file in `dir`.
fn make_plan(
    backend: Backend,
    source: &str,
    parts: usize,
    dir: &std::path::Path,
    extra: &[&str],
) -> std::path::PathBuf {
    let path = dir.join("plan.json");
    let parts = parts.to_string();
    let mut args = vec!["plan", source, "--parts", &parts, "-o", path.to_str().expect("utf-8")];
    args.extend(extra);
    let run = backend.refgen(&args, None).run().assert_ok();
    assert!(run.stderr.contains("planned"), "{}", run.stderr);
    path
}

/// Part `k` of the plan's `n`, as `--name key` names (through `via`); with
/// the run's `--json` document.
fn part(
    backend: Backend,
    plan: &std::path::Path,
    k: usize,
    n: usize,
    via: Option<&str>,
    extra: &[&str],
) -> Vec<String> {
    let shard = format!("{k}/{n}");
    let mut args = vec![
        "generate",
        "--plan",
        plan.to_str().expect("utf-8"),
        "--shard",
        &shard,
        "--name",
        "key",
    ];
    args.extend(extra);
    key_names(backend.refgen(&args, via).run())
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_parts_together_list_every_object_once() {
    for backend in backends() {
        let (bucket, _) = shaped_bucket(backend).await;
        let dir = tempfile::tempdir().expect("tempdir");
        // Azurite is slow to list: bigger pages, and no plan past the budget.
        let page = if backend == Backend::Azure { "300" } else { "100" };
        let mut cases = vec![
            // Listed whole within the planner's budget: exact.
            ("", 4, vec!["--page-size", page]),
            ("skew/", 3, vec!["--page-size", page]),
        ];
        if backend != Backend::Azure {
            // 10-key pages: past the budget of 256, so the ranges are estimated.
            cases.push(("", 5, vec!["--page-size", "10"]));
        }
        for (prefix, parts, plan_args) in cases {
            let source = backend.source(&bucket, prefix);
            let plan = make_plan(backend, &source, parts, dir.path(), &plan_args);
            let document: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&plan).expect("plan")).expect("JSON");
            assert_eq!(document["parts"].as_array().map(Vec::len), Some(parts), "{backend:?}");
            let whole = key_names(
                backend
                    .generate(&source, None, &["--name", "key", "--page-size", page])
                    .run(),
            );
            let mut union = Vec::new();
            for k in 0..parts {
                let listed = part(backend, &plan, k, parts, None, &["--page-size", page]);
                union.extend(listed);
            }
            let (mut sorted_union, mut sorted_whole) = (union.clone(), whole.clone());
            sorted_union.sort();
            sorted_whole.sort();
            assert_eq!(sorted_union, sorted_whole, "{backend:?} `{prefix}` in {parts}");
            assert_eq!(
                union.len(),
                union.iter().collect::<BTreeSet<_>>().len(),
                "{backend:?}: no object in two parts"
            );
        }
        // Objects added and removed between the plan and the runs: each new one
        // in exactly one part, the removed one in none (a bucket of its own:
        // the shaped one is shared).
        let keys: Vec<String> = (0..400)
            .map(|i| format!("f{}/{i:04}.jpg", i % 3))
            .chain(["top.jpg".to_owned()])
            .collect();
        let bucket = backend.bucket_with(&keys).await;
        let page = "20";
        let source = backend.source(&bucket, "");
        let plan = make_plan(backend, &source, 4, dir.path(), &["--page-size", page]);
        let document: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan).expect("plan")).expect("JSON");
        let boundary = document["parts"][1]["until"].as_str().expect("a boundary").to_owned();
        let added = ["!first.jpg".to_owned(), format!("{boundary}0"), "~last.jpg".to_owned()];
        for key in &added {
            backend.put(&bucket, key, b"new".to_vec()).await;
        }
        backend.delete(&bucket, "top.jpg").await;
        let mut union: Vec<String> = (0..4)
            .flat_map(|k| part(backend, &plan, k, 4, None, &["--page-size", page]))
            .collect();
        union.sort();
        let mut now = key_names(
            backend
                .generate(&source, None, &["--name", "key", "--page-size", page])
                .run(),
        );
        now.sort();
        let (have, want): (BTreeSet<&String>, BTreeSet<&String>) = (union.iter().collect(), now.iter().collect());
        assert_eq!(union.len(), now.len(), "{backend:?}: after the plan");
        assert!(
            have == want,
            "{backend:?}: after the plan, parts without {:?}, parts with {:?} too",
            want.difference(&have).collect::<Vec<_>>(),
            have.difference(&want).collect::<Vec<_>>()
        );
        for key in &added {
            assert_eq!(union.iter().filter(|k| *k == key).count(), 1, "{backend:?}: {key}");
        }
        assert!(!union.contains(&"top.jpg".to_owned()));
    }
}

/// Four workers over a 100,000-object bucket each list about a quarter of its
/// pages (the counting proxy sees every listing request), where `--shard K/N`
/// alone makes each list them all.
#[tokio::test(flavor = "multi_thread")]
async fn four_workers_each_list_about_a_quarter_of_the_pages() {
    let backend = Backend::S3;
    if !backend.available() {
        return;
    }
    let keys: Vec<String> = (0..100_000)
        .map(|i| format!("frames/{:02}/{i:06}.jpg", i % 8))
        .collect();
    let bucket = backend.bucket_with_many(&keys);
    let source = backend.source(&bucket, "");
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = make_plan(backend, &source, 4, dir.path(), &[]);
    let requests = |args: &[&str]| {
        let proxy = FaultProxy::start(&backend.upstream(), Plan::every_fault(backend.service(), 0.0, 1));
        let mut all = vec!["generate"];
        all.extend(args);
        let listed = key_names(backend.refgen(&all, Some(&proxy.url)).run()).len();
        (listed, proxy.counts.picked.load(std::sync::atomic::Ordering::SeqCst))
    };
    let (whole, whole_requests) = requests(&[&source, "--name", "key"]);
    assert_eq!(whole, keys.len());
    let (mut listed, mut total) = (0, 0);
    for k in 0..4 {
        let shard = format!("{k}/4");
        let (n, pages) = requests(&[
            "--plan",
            plan.to_str().expect("utf-8"),
            "--shard",
            &shard,
            "--name",
            "key",
        ]);
        listed += n;
        // 100 pages: a quarter is 25 pages of the whole listing's 125 or so
        // requests; a range's own planning and chunk ends cost some more (about
        // 40 here), far from the whole listing each that a hash shard costs.
        assert!(
            pages * 10 <= whole_requests * 4 && pages >= 25,
            "worker {k}: {pages} requests ({n} objects), whole: {whole_requests}"
        );
        total += pages;
    }
    assert_eq!(listed, keys.len());
    assert!(
        total * 10 <= whole_requests * 14,
        "the four: {total} requests, whole: {whole_requests}"
    );
    let (_, hashed) = requests(&[&source, "--shard", "1/4", "--name", "key"]);
    assert!(hashed >= 100, "a hash shard lists everything: {hashed}");
}

/// A plan is refused for a local folder, and its runs refuse what does not
/// fit it, each with one line and exit 2.
#[tokio::test(flavor = "multi_thread")]
async fn plans_refuse_what_does_not_fit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = Refgen::new(["plan", dir.path().to_str().expect("utf-8"), "--parts", "2"]).run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("byte order"), "{}", run.stderr);
    let Some(backend) = backends().into_iter().next() else {
        return;
    };
    let bucket = backend
        .bucket_with(&(0..10).map(|i| format!("k{i}")).collect::<Vec<_>>())
        .await;
    let source = backend.source(&bucket, "");
    let plan = make_plan(backend, &source, 3, dir.path(), &[]);
    let plan_arg = plan.to_str().expect("utf-8");
    for (args, says) in [
        (
            vec!["generate", "--plan", plan_arg, "--shard", "0/4"],
            "the plan has 3 parts",
        ),
        (
            vec!["generate", "--plan", plan_arg, "--shard", "0/3", "--images"],
            "cannot be used with",
        ),
        (vec!["generate", "--plan", plan_arg], "--shard"),
    ] {
        let run = backend.refgen(&args, None).run();
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }
    // `auto` takes the count from the plan (a Kubernetes Indexed Job gives none).
    let run = backend
        .refgen(
            &["generate", "--plan", plan_arg, "--shard", "auto", "--name", "key"],
            None,
        )
        .env("JOB_COMPLETION_INDEX", "2")
        .run()
        .assert_ok();
    let last = parse_references(&run.stdout);
    assert!(last.iter().any(|l| l.name == "k9"), "part 2 of 3 ends the bucket");
    // A plan edited by hand is refused.
    let text = std::fs::read_to_string(&plan).expect("plan");
    let document: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let boundary = document["parts"][0]["until"].as_str().expect("a boundary");
    let text = text.replace(&format!("\"{boundary}\""), "\"k5x\"");
    std::fs::write(&plan, text).expect("write");
    let run = backend
        .refgen(&["generate", "--plan", plan_arg, "--shard", "0/3"], None)
        .run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("fingerprint"), "{}", run.stderr);
}
