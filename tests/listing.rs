//! Concurrent listing gives exactly the sequential listing's output, on real
//! servers, for every bucket shape: flat, deep, skewed, one huge prefix, files
//! followed by a big sub-folder.

use refgen_e2e::*;

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

fn names(run: Run) -> Vec<String> {
    parse_references(&run.assert_ok().stdout)
        .into_iter()
        .map(|l| l.name)
        .collect()
}

fn compare(label: &str, run: impl Fn(&str, &str) -> Run, expected_order: Option<&[String]>) {
    for prefix in ["", "flat/", "deep/", "skew/", "huge/", "huge/train/c1", "tail/"] {
        let sequential = names(run(prefix, "1"));
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
        let concurrent = names(concurrent_run);
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

#[tokio::test(flavor = "multi_thread")]
async fn s3_concurrent_listing_matches_sequential() {
    require!(S3);
    let env = s3_env();
    let client = admin_client(&env);
    let bucket = unique_bucket("shapes");
    create_bucket(&client, &bucket).await;
    let keys = shaped_keys(false);
    assert_eq!(
        put_objects(
            &client,
            &bucket,
            keys.iter().map(|k| (k.clone(), b"x".to_vec())).collect()
        )
        .await
        .len(),
        keys.len()
    );
    let run = |prefix: &str, concurrency: &str| {
        Refgen::new([
            "generate",
            &format!("s3://{bucket}/{prefix}"),
            "--name",
            "key",
            "--concurrency",
            concurrency,
            "--page-size",
            "100",
        ])
        .s3_admin(&env)
        .env("RUST_LOG", "refgen_core=debug")
        .run()
    };
    let mut sorted = keys.clone();
    sorted.sort();
    compare("S3", run, Some(&sorted));
}

#[test]
fn gcs_concurrent_listing_matches_sequential() {
    require!(Gcs);
    let endpoint = gcs_endpoint();
    let bucket = unique_bucket("shapes");
    gcs_create_bucket(&endpoint, &bucket);
    let mut keys = shaped_keys(true);
    for k in &keys {
        gcs_put(&endpoint, &bucket, k, b"x".to_vec());
    }
    keys.sort();
    let run = |prefix: &str, concurrency: &str| {
        Refgen::new([
            "generate",
            &format!("gs://{bucket}/{prefix}"),
            "--name",
            "key",
            "--concurrency",
            concurrency,
            "--page-size",
            "100",
        ])
        .gcs_emulator()
        .env("GOOGLE_APPLICATION_CREDENTIALS", gcs_dummy_key())
        .env("RUST_LOG", "refgen_core=debug")
        .run()
    };
    compare("GCS", run, Some(&keys));
}

#[test]
fn azure_concurrent_listing_matches_sequential() {
    require!(Azure);
    let (endpoint, account, key) = azure_env();
    let container = unique_bucket("shapes");
    let sas = refgen_e2e::backends::azure_admin_sas();
    assert_eq!(
        http_send(
            "PUT",
            &format!("{endpoint}/{container}?restype=container&{sas}"),
            Vec::new()
        )
        .0,
        201
    );
    let mut keys = shaped_keys(true);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for k in &keys {
        let url = format!(
            "{endpoint}/{container}/{}?{sas}",
            refgen_azure::signer::encode_blob_path(k)
        );
        let request = ureq::http::Request::builder()
            .method("PUT")
            .uri(&url)
            .header("x-ms-blob-type", "BlockBlob")
            .body(b"x".to_vec())
            .expect("request");
        assert_eq!(agent.run(request).expect("upload").status().as_u16(), 201, "{k}");
    }
    keys.sort();
    let run = |prefix: &str, concurrency: &str| {
        Refgen::new([
            "generate",
            &format!("az://{account}/{container}/{prefix}"),
            "--name",
            "key",
            "--concurrency",
            concurrency,
            "--endpoint-url",
            &endpoint,
            "--page-size",
            "300",
        ])
        .env("AZURE_STORAGE_KEY", &key)
        .env("RUST_LOG", "refgen_core=debug")
        .run()
    };
    compare("Azure", run, Some(&keys));
}

/// SeaweedFS lists folder by folder (`f/00150d/k0` before `f/00150d-q`), not in byte
/// order, which key ranges rely on. Written to a file, the run notices, starts over
/// sequentially and gives the sequential output; to stdout (which cannot take lines
/// back) it stops with one line that says what to do. Never keys lost in silence.
#[tokio::test(flavor = "multi_thread")]
async fn s3_server_listing_out_of_byte_order_falls_back_to_sequential() {
    require!(S3);
    let env = s3_env();
    let client = admin_client(&env);
    let bucket = unique_bucket("order");
    create_bucket(&client, &bucket).await;
    let mut keys: Vec<String> = (0..2500).map(|i| format!("f/{i:05}")).collect();
    for folder in ["a", "00150d", "01200d", "02000d"] {
        keys.extend((0..3).map(|j| format!("f/{folder}/k{j}")));
    }
    keys.extend(
        [
            "f/a.txt",
            "f/a-c",
            "f/00150d-q",
            "f/00150d.r",
            "f/01200d.5",
            "f/01200d-y",
            "f/02000d-z",
        ]
        .map(String::from),
    );
    let stored = put_objects(
        &client,
        &bucket,
        keys.iter().map(|k| (k.clone(), b"x".to_vec())).collect(),
    )
    .await;
    assert_eq!(stored.len(), keys.len());

    let dir = tempfile::tempdir().expect("tempdir");
    let generate = |concurrency: &str, out: &str| {
        Refgen::new([
            "generate",
            &format!("s3://{bucket}/f/"),
            "--name",
            "key",
            "--page-size",
            "100",
            "--concurrency",
            concurrency,
            "-o",
            out,
        ])
        .s3_admin(&env)
        .run()
    };
    let read = |path: &std::path::Path| -> Vec<String> {
        parse_references(&std::fs::read(path).expect("references file"))
            .into_iter()
            .map(|l| l.name)
            .collect()
    };
    let (seq_path, conc_path) = (dir.path().join("seq.jsonl"), dir.path().join("conc.jsonl"));
    generate("1", seq_path.to_str().expect("utf-8")).assert_ok();
    let sequential = read(&seq_path);
    assert_eq!(sequential.len(), keys.len());

    let run = generate("16", conc_path.to_str().expect("utf-8")).assert_ok();
    assert!(run.stderr.contains("listing again, sequentially"), "{}", run.stderr);
    assert_eq!(read(&conc_path), sequential, "the fallback gives the sequential output");

    let to_stdout = generate("16", "-");
    assert_eq!(to_stdout.code, Some(1), "{}", to_stdout.stderr);
    assert_eq!(to_stdout.stderr.trim().lines().count(), 1, "{}", to_stdout.stderr);
    assert!(to_stdout.stderr.contains("out of byte order") && to_stdout.stderr.contains("--concurrency 1"));
}

/// What the unit tests' folder-walking store (`fanout::tests::FolderWalk`) assumes
/// of SeaweedFS, checked on the real server: it lists a folder before the names
/// that extend the folder's name with a character below `/` (`f/k5/…` before
/// `f/k5-a-b`), and "start after" resumes that walk, so that starting after a key
/// between the two (`f/k5-a-z`) skips both, and starting just past the folder
/// (`f/k5/` + U+10FFFF) returns what follows it. This is why a chunk boundary in
/// such a gap gets its own check, and why the check works.
#[tokio::test(flavor = "multi_thread")]
async fn s3_server_walks_folders_as_the_chunk_boundary_check_assumes() {
    require!(S3);
    let env = s3_env();
    let client = admin_client(&env);
    let bucket = unique_bucket("walk");
    create_bucket(&client, &bucket).await;
    let keys: Vec<String> = (0..10)
        .map(|i| format!("f/k{i}"))
        .chain((0..5).map(|j| format!("f/k5/x{j:02}")))
        .chain(["f/k5-a/z", "f/k5-a-b"].map(String::from))
        .collect();
    let objects = keys.iter().map(|k| (k.clone(), b"x".to_vec())).collect();
    assert_eq!(put_objects(&client, &bucket, objects).await.len(), keys.len());
    let list = |start_after: Option<&str>| {
        let request = client
            .list_objects_v2()
            .bucket(&bucket)
            .prefix("f/")
            .set_start_after(start_after.map(str::to_owned));
        async move {
            let page = request.send().await.expect("list");
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect::<Vec<_>>()
        }
    };
    let walk = list(None).await;
    let position = |key: &str| walk.iter().position(|k| k == key).expect(key);
    assert!(position("f/k5/x04") < position("f/k5-a/z"), "{walk:?}");
    assert!(position("f/k5-a/z") < position("f/k5-a-b"), "{walk:?}");
    assert_eq!(list(Some("f/k5-a-z")).await.first().map(String::as_str), Some("f/k6"));
    assert_eq!(
        list(Some("f/k5/\u{10FFFF}")).await.first().map(String::as_str),
        Some("f/k5-a/z")
    );
    assert_eq!(
        list(Some("f/k5-a/\u{10FFFF}")).await.first().map(String::as_str),
        Some("f/k5-a-b")
    );
}
