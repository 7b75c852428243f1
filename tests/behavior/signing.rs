//! Signing, proven by the servers that check signatures (SeaweedFS, Azurite;
//! fake-gcs-server does not, so the GCS signer is proven by Google's
//! conformance vectors instead): an untouched URL returns the object's bytes; a
//! tampered signature, a signature moved to another key and an expired URL are
//! refused.

use refgen_e2e::backends::Backend;
use refgen_e2e::faults::{FaultProxy, Plan};
use refgen_e2e::*;

on_every_backend!(tampered_moved_and_expired_urls_are_refused_by_the_server);

async fn tampered_moved_and_expired_urls_are_refused_by_the_server(backend: Backend) {
    if backend.available() && backend.checks_signatures() {
        let keys = ["sign/a.jpg".to_owned(), "sign/b.jpg".to_owned()];
        let bucket = backend.bucket_with(&keys).await;
        let source = backend.source(&bucket, "sign/a");
        let run = backend
            .generate(&source, None, &["--expires-in", "1h"])
            .run()
            .assert_ok();
        let url = parse_references(&run.stdout).remove(0).url;
        assert_eq!(http_get(&url), (200, b"sign/a.jpg".to_vec()), "{backend:?}: untouched");
        assert_eq!(
            http_get(&tamper_signature(&url)).0,
            403,
            "{backend:?}: tampered signature"
        );
        assert_eq!(
            http_get(&url.replace("/a.jpg?", "/b.jpg?")).0,
            403,
            "{backend:?}: signature moved to another key"
        );
        if url.contains("X-Amz-Expires=3600") {
            let longer = url.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200");
            assert_eq!(http_get(&longer).0, 403, "{backend:?}: lengthened expiry");
        }
        let run = backend
            .generate(&source, None, &["--expires-in", "1s"])
            .run()
            .assert_ok();
        let short = parse_references(&run.stdout).remove(0).url;
        std::thread::sleep(std::time::Duration::from_millis(2500));
        assert_eq!(http_get(&short).0, 403, "{backend:?}: expired URL");
    }
}

on_every_backend!(urls_signed_for_a_public_endpoint_are_read_through_it);

/// `--url-endpoint`: the store is listed where it is (here directly), and the URLs
/// point at another name for it (here a loopback reverse proxy that passes the
/// Host through, as a public proxy in front of an internal store does). Each URL
/// reads its object through the proxy; on S3, whose signature covers the host, the
/// same URL sent straight to the store is refused (it was signed for the proxy).
/// An Azure SAS does not cover the host, and fake-gcs-server checks no signature
/// (the V4 signer's host handling is proven by Google's conformance vectors).
async fn urls_signed_for_a_public_endpoint_are_read_through_it(backend: Backend) {
    if !backend.available() {
        return;
    }
    let keys = ["pub/a b.jpg".to_owned(), "pub/c+d.jpg".to_owned()];
    let bucket = backend.bucket_with(&keys).await;
    let source = backend.source(&bucket, "pub/");
    let proxy = FaultProxy::start(&backend.upstream(), Plan::every_fault(backend.service(), 0.0, 1));
    let public = match backend {
        Backend::Azure => format!("{}/{}", proxy.url, azure_env().1),
        _ => proxy.url.clone(),
    };
    let run = backend
        .generate(&source, None, &["--url-endpoint", &public, "--name", "key"])
        .run()
        .assert_ok();
    let lines = parse_references(&run.stdout);
    assert_eq!(lines.len(), 2, "{backend:?}: {}", run.stderr);
    assert!(
        proxy.counts.heads.lock().expect("heads").is_empty(),
        "{backend:?}: the listing went to the store, not to the URL endpoint"
    );
    for line in &lines {
        assert!(line.url.starts_with(&format!("{public}/")), "{backend:?}: {}", line.url);
        let direct = line.url.replacen(&proxy.url, &backend.upstream(), 1);
        let body = (200, line.name.as_bytes().to_vec());
        match backend {
            // fake-gcs-server routes `/bucket/object` only for its own host name, so
            // a proxy that passes the Host through gets 404 from it: the same path
            // and query read from the emulator itself show the URL names the object.
            Backend::Gcs => assert_eq!(http_get(&direct), body, "the object's path: {direct}"),
            _ => assert_eq!(
                http_get(&line.url),
                body,
                "{backend:?}: through the proxy: {}",
                line.url
            ),
        }
        if backend == Backend::S3 {
            assert_eq!(http_get(&direct).0, 403, "signed for the proxy's host: {direct}");
        }
    }
}
