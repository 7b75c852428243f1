//! Inventory reports, on every backend, in every format its cloud writes: a
//! run reads the report, not the bucket (the report leaves one object out), and
//! gives what a listing gives for the objects it holds, as names and as the
//! bytes each URL fetches. (What only one cloud's report has, versions and
//! delete markers, other containers' rows, globs of data files, is in
//! `tests/inventory.rs`.)

use std::collections::BTreeMap;

use refgen_e2e::backends::Backend;
use refgen_e2e::*;

on_every_backend!(a_report_gives_what_a_listing_gives);

/// Name → the bytes its URL fetches, for the references a run printed.
fn fetched(run: &Run) -> BTreeMap<String, Vec<u8>> {
    parse_references(&run.stdout)
        .into_iter()
        .map(|l| (l.name, http_get(&l.url).1))
        .collect()
}

async fn a_report_gives_what_a_listing_gives(backend: Backend) {
    if !backend.available() || python().is_none() {
        return;
    }
    let keys: Vec<String> = ["a.jpg", "dir/b c.jpg", "unicodé/ç.png", "x+y/z (1).png"]
        .map(str::to_owned)
        .to_vec();
    let source = backend.bucket_with(&keys).await;
    let dest = backend.bucket_with(&[]).await;
    let listed = backend
        .generate(&backend.source(&source, ""), None, &["--name", "key"])
        .run()
        .assert_ok();
    let mut want = fetched(&listed);
    assert_eq!(want.len(), keys.len(), "{backend:?}: the listing");
    // The report was taken before `a.jpg` was written: a run that listed the
    // bucket instead of reading the report would have it.
    want.remove("a.jpg");
    for format in backend.inventory_formats() {
        let (spec, manifest) = backend.inventory_spec(&source, &dest, format, &keys[1..]);
        for (name, bytes) in fixture_files(&spec) {
            backend.put(&dest, &name, bytes).await;
        }
        let args = ["--name", "key", "--inventory", &manifest];
        let run = backend
            .generate(&backend.source(&source, ""), None, &args)
            .run()
            .assert_ok();
        assert_eq!(
            fetched(&run),
            want,
            "{backend:?} {format}: the report's references fetch what the listing's do"
        );
    }
}
