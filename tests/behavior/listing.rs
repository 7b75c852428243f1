//! Listing, on every backend: more than one page, in key order, each URL the
//! object's bytes; and a reader that stops early (`| head`) ends the run quietly.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use refgen_e2e::backends::Backend;
use refgen_e2e::*;

on_every_backend!(a_listing_spans_pages_in_key_order_and_stdout_can_be_cut);

async fn a_listing_spans_pages_in_key_order_and_stdout_can_be_cut(backend: Backend) {
    if !backend.available() {
        return;
    }
    let keys: Vec<String> = (0..1234).map(|i| format!("img/{i:05}.jpg")).collect();
    let mut all = keys.clone();
    all.push("other/skip.jpg".to_owned());
    let bucket = backend.bucket_with(&all).await;
    let source = backend.source(&bucket, "img/");
    let run = backend
        .generate(&source, None, &["--name", "key", "--page-size", "500"])
        .run()
        .assert_ok();
    let lines = parse_references(&run.stdout);
    let names: Vec<String> = lines.iter().map(|l| l.name.clone()).collect();
    assert_eq!(
        names, keys,
        "{backend:?}: every key under the prefix, in key order, across pages"
    );
    assert!(
        run.stderr.contains("listed 1234 objects"),
        "{backend:?}: {}",
        run.stderr
    );
    for i in [0, 499, 500, 1233] {
        assert_eq!(
            http_get(&lines[i].url),
            (200, keys[i].as_bytes().to_vec()),
            "{backend:?}"
        );
    }

    // A reader that takes one line and closes the pipe.
    let mut refgen = backend.generate(&source, None, &[]);
    let mut child = refgen
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("one line");
    // Dropping the reader closes the pipe while refgen still has lines to write.
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        first.starts_with("{\"name\":\"img__00000.jpg\""),
        "{backend:?}: {first}"
    );
    assert!(
        output.status.success(),
        "{backend:?}: a closed pipe is not a failure: {stderr}"
    );
    assert!(
        !stderr.contains("error") && !stderr.contains("panicked"),
        "{backend:?}: {stderr}"
    );
}
