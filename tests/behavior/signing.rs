//! Signing, proven by the servers that check signatures (SeaweedFS, Azurite;
//! fake-gcs-server does not, so the GCS signer is proven by Google's
//! conformance vectors instead): an untouched URL returns the object's bytes; a
//! tampered signature, a signature moved to another key and an expired URL are
//! refused.

use refgen_e2e::backends::Backend;
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
