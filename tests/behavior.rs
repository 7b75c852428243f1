//! The behaviour suite: each scenario written once and run against every local
//! storage server (SeaweedFS, fake-gcs-server, Azurite) whose settings are there;
//! a server that is not running is skipped with a message.

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
