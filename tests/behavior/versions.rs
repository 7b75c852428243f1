//! `--pin-versions`: each URL names the version listed, so the batch reads the
//! bytes that were listed even when an object is overwritten or deleted before
//! it is read; a store that keeps no versions is refused with one line.

use refgen_core::writer::ReferenceLine;
use refgen_e2e::backends::Backend;
use refgen_e2e::faults::{FaultProxy, Plan};
use refgen_e2e::*;

on_every_backend!(pinned_urls_read_the_bytes_listed_after_an_overwrite);

async fn pinned_urls_read_the_bytes_listed_after_an_overwrite(backend: Backend) {
    if !backend.available() || !backend.keeps_versions() {
        return;
    }
    // Tricky keys, and more versions than a page holds (page size 2), so that
    // a version listing's markers cross keys with several versions.
    let mut keys: Vec<String> = ["v/a b.jpg", "v/c+d.jpg", "v/e%2Ff.jpg", "v/ü.jpg"]
        .iter()
        .map(|k| k.to_string())
        .collect();
    keys.sort();
    let bucket = backend.versioned_bucket_with(&keys).await;
    for round in 0..2 {
        backend
            .put(&bucket, &keys[0], format!("older {round}").into_bytes())
            .await;
    }
    backend.put(&bucket, &keys[0], keys[0].as_bytes().to_vec()).await;
    backend
        .put(&bucket, "v/gone.jpg", b"deleted before the run".to_vec())
        .await;
    backend.delete(&bucket, "v/gone.jpg").await;

    let source = backend.source(&bucket, "v/");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str| dir.path().join(name).to_str().expect("path").to_owned();
    let pinned = file("pinned.jsonl");
    let args = ["--name", "key", "--pin-versions", "--page-size", "2", "--json"];
    let run = backend
        .generate(&source, None, &[&args[..], &["-o", &pinned]].concat())
        .run()
        .assert_ok();
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON summary");
    assert_eq!(summary["pinned"], keys.len(), "{backend:?}: {summary}");
    assert!(run.stderr.contains(&format!("{} pinned", keys.len())), "{}", run.stderr);
    let lines = parse_references(&std::fs::read(&pinned).expect("pinned refs"));
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, keys, "{backend:?}: the latest version of each live key, once");

    // The same listing under faults, through the proxy: the same objects, the
    // same versions (the signatures differ only by their time).
    let proxy = FaultProxy::start(&backend.upstream(), Plan::every_fault(backend.service(), 0.5, 11));
    let faulty = file("faulty.jsonl");
    backend
        .generate(&source, Some(&proxy.url), &[&args[..], &["-o", &faulty]].concat())
        .run()
        .assert_ok();
    assert!(proxy.counts.total() > 0, "{backend:?}: faults were injected");
    let version_of = |url: &str| {
        url.split(['?', '&'])
            .find(|p| p.starts_with("versionId=") || p.starts_with("generation="))
            .map(str::to_owned)
    };
    let faulty_lines = parse_references(&std::fs::read(&faulty).expect("faulty refs"));
    let by_version = |lines: &[ReferenceLine]| -> Vec<(String, Option<String>)> {
        lines.iter().map(|l| (l.name.clone(), version_of(&l.url))).collect()
    };
    assert_eq!(by_version(&faulty_lines), by_version(&lines), "{backend:?}");

    // Every key is overwritten after the listing: each pinned URL still reads
    // the bytes listed, a URL of the plain listing reads the new ones.
    for key in &keys {
        backend.put(&bucket, key, b"overwritten".to_vec()).await;
    }
    for line in &lines {
        assert!(version_of(&line.url).is_some(), "{backend:?}: {}", line.url);
        assert_eq!(
            http_get(&line.url),
            (200, line.name.as_bytes().to_vec()),
            "{backend:?}: {}",
            line.url
        );
        if backend.checks_signatures() {
            let version = version_of(&line.url).expect("version");
            let tampered = line.url.replace(&version, &format!("{version}0"));
            assert_ne!(
                http_get(&tampered).0,
                200,
                "{backend:?}: the version is signed: {tampered}"
            );
        }
    }
    let plain = backend.generate(&source, None, &["--name", "key"]).run().assert_ok();
    for line in parse_references(&plain.stdout) {
        assert_eq!(http_get(&line.url), (200, b"overwritten".to_vec()), "{backend:?}");
    }
}

/// A store that keeps no versions cannot pin them: one line, exit 2, no file.
#[tokio::test(flavor = "multi_thread")]
async fn pinning_is_refused_where_no_versions_are_kept() {
    for backend in [Backend::S3, Backend::Azure] {
        if !backend.available() {
            continue;
        }
        // S3 without versioning ever enabled; Azurite keeps no blob versions.
        let bucket = backend.bucket_with(&["a.jpg".to_owned()]).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("refs.jsonl");
        let run = backend
            .generate(
                &backend.source(&bucket, ""),
                None,
                &["--pin-versions", "-o", out.to_str().expect("path")],
            )
            .run();
        assert_eq!(run.code, Some(2), "{backend:?}: {}", run.stderr);
        if let Some(why) = not_one_error_line(&format!("{backend:?}"), &run, "versions cannot be pinned") {
            panic!("{why}");
        }
        assert!(!out.exists(), "{backend:?}: no file is left");
    }
}
