//! The behaviour suite: each scenario written once and run against every local
//! storage server (SeaweedFS, fake-gcs-server, Azurite) whose settings are
//! there, gated by what the server can show (`Backend::checks_signatures`,
//! `Backend::archive_tier`, `Backend::inventory_formats`); a server that is not
//! running is skipped with a message. A long scenario is one test per backend
//! (`on_every_backend!`), so the servers work in parallel. Provider files
//! (`s3.rs`, `gcs.rs`, `azure.rs`) keep only what is truly provider-specific.

mod faults;
mod inventory;
mod listing;
mod plans;
mod signing;
mod skipped;
mod versions;

use std::collections::BTreeSet;

use refgen_core::naming::key_of_flat_name;
use refgen_e2e::backends::{ALL, Backend};
use refgen_e2e::*;

/// The servers of this run.
fn backends() -> Vec<Backend> {
    ALL.into_iter().filter(|b| b.available()).collect()
}

/// Every fixture key a server accepts gets a URL that returns exactly its bytes;
/// names are unique and decode to keys, and `--name key` names the same keys.
#[tokio::test(flavor = "multi_thread")]
async fn tricky_keys_every_url_returns_the_objects_bytes() {
    let keys = tricky_keys();
    for backend in backends() {
        let (bucket, accepted) = backend.bucket_holding(&keys).await;
        // SeaweedFS and Azurite refuse `.`/`..` segments (and SeaweedFS over-long
        // names); the rest of the fixture is stored.
        assert!(
            accepted.len() >= keys.len() - 5,
            "{backend:?} accepted {} of {}",
            accepted.len(),
            keys.len()
        );
        let run = backend
            .generate(&backend.source(&bucket, ""), None, &[])
            .run()
            .assert_ok();
        let lines = parse_references(&run.stdout);
        assert_eq!(
            lines.len(),
            accepted.len(),
            "{backend:?}: one line per stored object: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&format!("wrote {} references", accepted.len())),
            "{backend:?}: {}",
            run.stderr
        );
        let names: BTreeSet<&str> = lines.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names.len(), lines.len(), "{backend:?}: names are unique");
        let expected: BTreeSet<Vec<u8>> = accepted.iter().map(|k| k.as_bytes().to_vec()).collect();
        let mut bodies = BTreeSet::new();
        let mut decoded = BTreeSet::new();
        // What each server's URLs must carry: a signature, read-only for Azure.
        let signed: &[&str] = match backend {
            Backend::S3 => &["X-Amz-Signature="],
            Backend::Gcs => &["X-Goog-Algorithm=GOOG4-RSA-SHA256"],
            Backend::Azure => &["&sp=r&", "&sr=b&", "&sig="],
        };
        for line in &lines {
            assert!(signed.iter().all(|m| line.url.contains(m)), "{backend:?}: {}", line.url);
            decoded.insert(key_of_flat_name(&line.name).unwrap_or_else(|| panic!("not a flat name: {:?}", line.name)));
            let (status, body) = http_get(&line.url);
            assert_eq!(
                status,
                200,
                "{backend:?}: GET for {:?}: {}",
                line.name,
                String::from_utf8_lossy(&body)
            );
            assert!(
                expected.contains(&body),
                "{backend:?}: unexpected body for {:?}",
                line.name
            );
            assert!(bodies.insert(body), "{backend:?}: two URLs returned the same object");
        }
        assert_eq!(bodies, expected, "{backend:?}: every stored object is reachable");
        let run = backend
            .generate(&backend.source(&bucket, ""), None, &["--name", "key"])
            .run()
            .assert_ok();
        let keyed: BTreeSet<String> = parse_references(&run.stdout).into_iter().map(|l| l.name).collect();
        assert_eq!(keyed, decoded, "{backend:?}: flat names decode to the listed keys");
    }
}

/// Shapes whose level under the root holds a single folder (the listing engine
/// goes down to where it splits): the concurrent output is the sequential one,
/// line for line, on every server.
#[tokio::test(flavor = "multi_thread")]
async fn a_listing_from_any_root_equals_the_sequential_listing() {
    let shapes: [(&str, Vec<String>); 3] = [
        (
            "one folder",
            (0..240).map(|i| format!("frames/{:03}/{i:05}.jpg", i % 6)).collect(),
        ),
        (
            "a chain",
            (0..240).map(|i| format!("a/b/c/d/e/{:02}/{i:05}.jpg", i % 6)).collect(),
        ),
        (
            "files and a folder",
            (0..3)
                .map(|i| format!("readme{i}.txt"))
                .chain((0..240).map(|i| format!("data/{i:05}.jpg")))
                .collect(),
        ),
    ];
    for backend in backends() {
        for (shape, keys) in &shapes {
            let bucket = backend.bucket_with(keys).await;
            let source = backend.source(&bucket, "");
            let page = ["--page-size", "10"];
            let sequential = backend
                .generate(
                    &source,
                    None,
                    &[&page[..], &["--concurrency", "1", "--name", "key"]].concat(),
                )
                .run()
                .assert_ok();
            let concurrent = backend
                .generate(&source, None, &[&page[..], &["--name", "key", "-vv"]].concat())
                .run()
                .assert_ok();
            let names = |run: &Run| {
                parse_references(&run.stdout)
                    .into_iter()
                    .map(|l| l.name)
                    .collect::<Vec<_>>()
            };
            let expected: Vec<String> = keys.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
            assert!(
                names(&sequential) == expected,
                "{backend:?} {shape}: every key, in byte order"
            );
            assert!(
                names(&concurrent) == expected,
                "{backend:?} {shape}: the same at the default concurrency"
            );
            assert!(
                concurrent.stderr.contains("listing in chunks"),
                "{backend:?} {shape}: the folders were split: {}",
                concurrent.stderr.lines().take(5).collect::<Vec<_>>().join(" | ")
            );
        }
    }
}

/// A bucket that does not exist: one line, exit 1, nothing on stdout.
#[test]
fn a_missing_bucket_is_one_clear_line() {
    for backend in backends() {
        let source = backend.source(&unique_bucket("missing"), "");
        let run = backend.generate(&source, None, &[]).run();
        assert_eq!(run.code, Some(1), "{backend:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{backend:?}");
        let line = run.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{backend:?}: {line}");
        assert!(line.starts_with("error: "), "{backend:?}: {line}");
        assert!(
            ["does not exist", "not found", "NoSuchBucket", "ContainerNotFound"]
                .iter()
                .any(|w| line.contains(w)),
            "{backend:?}: {line}"
        );
    }
}

/// Keys of the four shapes, each under its own top folder. `awkward` adds names
/// whose byte order differs from a folder-by-folder walk (`a-b/` sorts before `a/`).
fn shaped_keys(awkward: bool) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    keys.extend((0..1100).map(|i| format!("flat/{i:05}.jpg")));
    keys.extend((0..600).map(|i| format!("deep/d{}/s{}/c{}/{i:04}.jpg", i % 4, i % 5, i % 3)));
    keys.extend((0..1050).map(|i| format!("skew/big/{i:05}.jpg")));
    keys.extend((0..25).map(|i| format!("skew/small{i:02}/x.jpg")));
    keys.extend((0..800).map(|i| format!("huge/train/c{:02}/{i:04}.png", i % 40)));
    // Files, then a sub-folder the files' names say nothing about: the chunks
    // guessed from the first page end at the files, and the rest is cut again.
    keys.extend((0..400).map(|i| format!("tail/{i:05}.jpg")));
    keys.extend((0..1500).map(|i| format!("tail/labels/{i:05}.txt")));
    keys.extend(["top.jpg", "zz/last.jpg"].map(String::from));
    if awkward {
        keys.extend(
            [
                "skew/big-old/a.jpg",
                "skew/big.jpg",
                "skew/big0/b.jpg",
                "deep/d1 copy/x.jpg",
                "deep/d1/s1.jpg",
            ]
            .map(String::from),
        );
    }
    keys
}

/// A bucket of [`shaped_keys`] on `backend`, made once per test process and
/// shared by the tests that only read it (filling one takes tens of seconds
/// on fake-gcs-server and Azurite, a request per object).
async fn shaped_bucket(backend: Backend) -> (String, Vec<String>) {
    /// A bucket and its keys, once made.
    type Made = tokio::sync::OnceCell<(String, Vec<String>)>;
    static BUCKETS: std::sync::OnceLock<[Made; 3]> = std::sync::OnceLock::new();
    let cells = BUCKETS.get_or_init(Default::default);
    let at = refgen_e2e::backends::ALL
        .iter()
        .position(|b| *b == backend)
        .expect("a backend");
    cells[at]
        .get_or_init(|| async {
            let keys = shaped_keys(backend != Backend::S3);
            (backend.bucket_with(&keys).await, keys)
        })
        .await
        .clone()
}

fn key_names(run: Run) -> Vec<String> {
    parse_references(&run.assert_ok().stdout)
        .into_iter()
        .map(|l| l.name)
        .collect()
}

fn compare(label: &str, run: impl Fn(&str, &str) -> Run, expected_order: Option<&[String]>) {
    for prefix in ["", "flat/", "deep/", "skew/", "huge/", "huge/train/c1", "tail/"] {
        let sequential = key_names(run(prefix, "1"));
        let concurrent_run = run(prefix, "16");
        if prefix == "flat/" {
            // 1,100 keys in pages of 100: a flat part, which must go in chunks.
            let log = &concurrent_run.stderr;
            assert!(log.contains("listing in chunks"), "{label}: not chunked:\n{log}");
            assert!(log.contains("chunked listing: the end is reached"), "{label}:\n{log}");
        }
        if prefix == "tail/" {
            let log = &concurrent_run.stderr;
            assert!(
                log.contains("cutting the tail again"),
                "{label}: tail not re-cut:\n{log}"
            );
        }
        let concurrent = key_names(concurrent_run);
        assert!(!sequential.is_empty(), "{label} {prefix:?}: something listed");
        assert_eq!(
            concurrent, sequential,
            "{label} {prefix:?}: concurrent output differs from sequential"
        );
        if let Some(all) = expected_order {
            let want: Vec<String> = all.iter().filter(|k| k.starts_with(prefix)).cloned().collect();
            assert_eq!(sequential, want, "{label} {prefix:?}: byte order");
        }
    }
}

/// Every shape (flat, deep, skewed, one huge prefix, files then a big sub-folder),
/// from the root and from prefixes: the concurrent output is the sequential one,
/// in byte order, and the flat and tail parts went in chunks.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_listing_matches_sequential_on_every_shape() {
    for backend in backends() {
        // SeaweedFS walks folders, so names whose byte order differs from the walk
        // are left to listing.rs.
        let (bucket, keys) = shaped_bucket(backend).await;
        // Azurite is slow to list: bigger pages keep the test short.
        let page = if backend == Backend::Azure { "300" } else { "100" };
        let run = |prefix: &str, concurrency: &str| {
            backend
                .generate(
                    &backend.source(&bucket, prefix),
                    None,
                    &["--name", "key", "--concurrency", concurrency, "--page-size", page],
                )
                .env("RUST_LOG", "refgen_core=debug")
                .run()
        };
        let mut sorted = keys.clone();
        sorted.sort();
        compare(&format!("{backend:?}"), run, Some(&sorted));
    }
}

/// `--include`/`--exclude` globs with a `/` are relative to the source's folder, as
/// in aws-cli and rclone: the README's `s3://media/raw/ --include '*.png' --exclude
/// 'tmp/**'` drops `raw/tmp/…` (before, the glob was matched against the whole key
/// and `raw/tmp/y.png` stayed in).
#[tokio::test(flavor = "multi_thread")]
async fn filters_are_relative_to_the_source() {
    let keys: Vec<String> = [
        "raw/x.png",
        "raw/tmp/y.png",
        "raw/a/tmp/z.png",
        "raw/notes.txt",
        "rawer/tmp/w.png",
    ]
    .map(str::to_owned)
    .to_vec();
    for backend in backends() {
        let bucket = backend.bucket_with(&keys).await;
        let pick = |prefix: &str, args: &[&str]| -> BTreeSet<String> {
            let mut all = vec!["--name", "key"];
            all.extend_from_slice(args);
            let run = backend
                .generate(&backend.source(&bucket, prefix), None, &all)
                .run()
                .assert_ok();
            parse_references(&run.stdout).into_iter().map(|l| l.name).collect()
        };
        let set = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            pick("raw/", &["--include", "*.png", "--exclude", "tmp/**"]),
            set(&["raw/x.png", "raw/a/tmp/z.png"]),
            "{backend:?}"
        );
        assert_eq!(
            pick("raw", &["--exclude", "tmp/**", "--exclude", "*.txt"]),
            set(&["raw/x.png", "raw/a/tmp/z.png", "rawer/tmp/w.png"]),
            "{backend:?}: `raw` names the folder raw/ for the keys below it"
        );
        assert_eq!(
            pick("raw/**/*.png", &["--include", "*/tmp/*"]),
            set(&["raw/a/tmp/z.png"]),
            "{backend:?}: relative to the glob's literal folder"
        );
        assert_eq!(
            pick("", &["--include", "raw/tmp/**"]),
            set(&["raw/tmp/y.png"]),
            "{backend:?}: the whole bucket is relative to its root"
        );
    }
}

/// Zero references is an error (one line, exit 1, the target as it was), for an
/// empty prefix and for filters that match nothing; --allow-empty writes the empty file.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_result_fails_and_leaves_the_target_unless_allowed() {
    let keys: Vec<String> = vec!["docs/a.txt".into(), "docs/b.txt".into()];
    for backend in backends() {
        let bucket = backend.bucket_with(&keys).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("refs.jsonl");
        std::fs::write(&target, "previous\n").expect("an earlier file");
        let out = target.to_str().expect("path");
        for (prefix, args, says) in [
            ("nothing/", &[][..], "no object under"),
            ("docs/", &["--images"][..], "none of the 2 objects listed under"),
        ] {
            let mut all = args.to_vec();
            all.extend(["-o", out]);
            let run = backend.generate(&backend.source(&bucket, prefix), None, &all).run();
            assert_eq!(run.code, Some(1), "{backend:?} {prefix}: {}", run.stderr);
            assert_eq!(run.stderr.lines().count(), 1, "{backend:?}: one line: {}", run.stderr);
            assert!(
                run.stderr.starts_with("error: ") && run.stderr.contains(says) && run.stderr.contains("--allow-empty"),
                "{backend:?}: {}",
                run.stderr
            );
            assert_eq!(
                std::fs::read_to_string(&target).expect("target"),
                "previous\n",
                "{backend:?}: untouched"
            );
            assert_eq!(
                std::fs::read_dir(dir.path()).expect("dir").count(),
                1,
                "{backend:?}: no temporary file left"
            );
        }
        backend
            .generate(
                &backend.source(&bucket, "nothing/"),
                None,
                &["--allow-empty", "-o", out],
            )
            .run()
            .assert_ok();
        assert_eq!(
            std::fs::read(&target).expect("target"),
            b"",
            "{backend:?}: allowed: an empty file"
        );
    }
}

/// --json is one object on stdout (deserialised here), --dry-run signs and writes
/// nothing, and --limit stops after N references.
#[tokio::test(flavor = "multi_thread")]
async fn json_summary_dry_run_and_limit() {
    let keys: Vec<String> = (0..30)
        .map(|i| format!("pics/{i:02}.jpg"))
        .chain(["pics/notes.txt".to_owned()])
        .collect();
    for backend in backends() {
        let bucket = backend.bucket_with(&keys).await;
        let source = backend.source(&bucket, "pics/");
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("refs.jsonl");
        let out = target.to_str().expect("path");
        let run = backend
            .generate(
                &source,
                None,
                &["--images", "--json", "-o", out, "--expires-in", "1h30m"],
            )
            .run()
            .assert_ok();
        let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("one JSON document");
        assert_eq!(summary["listed"], 31, "{backend:?}: {summary}");
        assert_eq!(summary["matched"], 30);
        assert_eq!(summary["written"], 30);
        assert_eq!(summary["skipped"]["filtered"], 1);
        assert_eq!(summary["output"], out);
        assert_eq!(summary["expires_in_seconds"], 5400);
        assert_eq!(summary["dry_run"], false);
        assert!(summary["elapsed_seconds"].as_f64().is_some_and(|s| s >= 0.0));
        assert_eq!(parse_references(&std::fs::read(&target).expect("file")).len(), 30);
        assert!(run.stderr.contains("URLs valid for 1h30m"), "{}", run.stderr);

        let run = backend
            .generate(&source, None, &["--images", "--dry-run", "--json", "-v"])
            .run()
            .assert_ok();
        let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("one JSON document");
        assert_eq!(
            (summary["matched"].as_u64(), summary["written"].as_u64()),
            (Some(30), Some(0))
        );
        assert_eq!(summary["dry_run"], true);
        assert!(
            run.stderr.contains("would reference \"pics/00.jpg\""),
            "{backend:?}: -v shows the first keys: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("pics/notes.txt"), "{}", run.stderr);

        let run = backend
            .generate(&source, None, &["--limit", "7", "--name", "key"])
            .run()
            .assert_ok();
        let names: Vec<String> = parse_references(&run.stdout).into_iter().map(|l| l.name).collect();
        let want: Vec<String> = keys[..7].to_vec();
        assert_eq!(names, want, "{backend:?}: the first 7 in key order");
        assert!(
            run.stderr.contains("wrote 7 references") && run.stderr.contains("--limit"),
            "{}",
            run.stderr
        );
        let run = backend.generate(&source, None, &["--limit", "1"]).run().assert_ok();
        assert!(
            run.stderr.contains("wrote 1 reference to"),
            "{backend:?}: singular: {}",
            run.stderr
        );
    }
}

/// `--shard K/N`: the N outputs are disjoint and together exactly the unsharded
/// output, each a fair share; `--shard auto` reads each scheduler's variables.
#[tokio::test(flavor = "multi_thread")]
async fn shards_split_a_listing_into_disjoint_even_parts() {
    let keys: Vec<String> = (0..600).map(|i| format!("s/{}/{i:04}.jpg", i % 7)).collect();
    for backend in backends() {
        let bucket = backend.bucket_with(&keys).await;
        let source = backend.source(&bucket, "s/");
        let names = |run: Run| -> BTreeSet<String> {
            parse_references(&run.assert_ok().stdout)
                .into_iter()
                .map(|l| l.name)
                .collect()
        };
        let whole = names(backend.generate(&source, None, &["--name", "key"]).run());
        assert_eq!(whole.len(), 600);
        let mut union = BTreeSet::new();
        for k in 0..3 {
            let shard = format!("{k}/3");
            let part = names(
                backend
                    .generate(&source, None, &["--name", "key", "--shard", &shard])
                    .run(),
            );
            assert!(
                (150..=250).contains(&part.len()),
                "{backend:?}: shard {shard} holds {} of 600",
                part.len()
            );
            assert!(part.is_disjoint(&union), "{backend:?}: shard {shard} overlaps");
            union.extend(part);
        }
        assert_eq!(union, whole, "{backend:?}: the shards together are the whole output");

        let by_env = |vars: &[(&str, &str)], shard: &str| {
            let mut refgen = backend.generate(
                &source,
                None,
                &["--name", "key", "--shard", shard, "--json", "--dry-run"],
            );
            for (k, v) in vars {
                refgen = refgen.env(k, v);
            }
            let run = refgen.run().assert_ok();
            let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
            (
                summary["shard"].as_str().unwrap_or_default().to_owned(),
                summary["matched"].as_u64(),
            )
        };
        let (shard, matched) = by_env(&[("JOB_COMPLETION_INDEX", "2")], "auto/3");
        assert_eq!(shard, "2/3");
        let fixed = names(
            backend
                .generate(&source, None, &["--name", "key", "--shard", "2/3"])
                .run(),
        );
        assert_eq!(matched, Some(fixed.len() as u64), "{backend:?}");
        assert_eq!(by_env(&[("AWS_BATCH_JOB_ARRAY_INDEX", "0")], "auto/4").0, "0/4");
        assert_eq!(
            by_env(&[("CLOUD_RUN_TASK_INDEX", "1"), ("CLOUD_RUN_TASK_COUNT", "5")], "auto").0,
            "1/5"
        );
        let run = backend.generate(&source, None, &["--shard", "auto"]).run();
        assert_eq!(run.code, Some(2), "no scheduler variable: {}", run.stderr);
        assert!(run.stderr.contains("none of JOB_COMPLETION_INDEX"), "{}", run.stderr);
    }
}

/// `--part-lines N`: numbered parts of at most N lines, each a whole references
/// file, together the unsplit output in order.
#[tokio::test(flavor = "multi_thread")]
async fn output_in_numbered_parts() {
    let keys: Vec<String> = (0..30).map(|i| format!("p/{i:02}.jpg")).collect();
    for backend in backends() {
        let bucket = backend.bucket_with(&keys).await;
        let source = backend.source(&bucket, "p/");
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("refs.jsonl");
        let run = backend
            .generate(
                &source,
                None,
                &[
                    "--name",
                    "key",
                    "--part-lines",
                    "7",
                    "--json",
                    "-o",
                    base.to_str().expect("path"),
                ],
            )
            .run()
            .assert_ok();
        let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
        let parts: Vec<String> = summary["parts"]
            .as_array()
            .expect("parts")
            .iter()
            .map(|p| p.as_str().expect("path").to_owned())
            .collect();
        let want: Vec<String> = (0..5)
            .map(|i| dir.path().join(format!("refs-{i:05}.jsonl")).display().to_string())
            .collect();
        assert_eq!(parts, want, "{backend:?}");
        let mut names = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let lines = parse_references(&std::fs::read(part).expect("part"));
            assert_eq!(lines.len(), if i < 4 { 7 } else { 2 }, "{backend:?} {part}");
            names.extend(lines.into_iter().map(|l| l.name));
        }
        assert_eq!(names, keys, "{backend:?}: the parts in order are the whole output");
        assert!(run.stderr.contains("(5 parts)"), "{}", run.stderr);
        assert!(!base.exists(), "no unnumbered file");
    }
}
