//! Objects a plain GET cannot read, on every backend that has them: skipped,
//! counted in the summary and `--json`, and named under `-v`.

use refgen_e2e::backends::Backend;
use refgen_e2e::*;

on_every_backend!(archived_objects_are_skipped_and_counted);

async fn archived_objects_are_skipped_and_counted(backend: Backend) {
    if !backend.available() || !backend.archive_tier() {
        return;
    }
    let bucket = backend
        .bucket_with(&["hot.jpg".to_owned(), "warm.jpg".to_owned()])
        .await;
    backend.put_archived(&bucket, "frozen.jpg").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("refs.jsonl");
    let args = ["--name", "key", "-o", out.to_str().expect("path"), "--json", "-v"];
    let run = backend
        .generate(&backend.source(&bucket, ""), None, &args)
        .run()
        .assert_ok();
    let names: Vec<String> = parse_references(&std::fs::read(&out).expect("refs"))
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, ["hot.jpg", "warm.jpg"], "{backend:?}");
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(summary["skipped"]["archived"], 1, "{backend:?}: {summary}");
    run.assert_stderr_has("skipped \"frozen.jpg\": archived")
        .assert_stderr_has("(skipped 1 archived)");
}
