//! What SeaweedFS's folder-by-folder listing order does to a concurrent listing
//! (the shapes on every server are in `behavior.rs`).

use refgen_e2e::*;

/// SeaweedFS lists folder by folder (`f/00150d/k0` before `f/00150d-q`), not in byte
/// order, which key ranges rely on. Written to a file, the run notices, starts over
/// sequentially and gives the sequential output; to stdout (which cannot take lines
/// back) it stops with one line that says what to do. Never keys lost in silence.
#[tokio::test(flavor = "multi_thread")]
async fn s3_server_listing_out_of_byte_order_falls_back_to_sequential() {
    require!(S3);
    let (env, client, bucket) = new_s3_bucket("order").await;
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

    // --resume relies on byte order even one request at a time: the advice is
    // that the run works without it (it said "rerun with --concurrency 1", which
    // the run already was, before).
    let parts = dir.path().join("parts.jsonl");
    let run = Refgen::new([
        "generate",
        &format!("s3://{bucket}/f/"),
        "--concurrency",
        "1",
        "--part-lines",
        "100",
        "--resume",
        "-o",
        parts.to_str().expect("utf-8"),
    ])
    .s3_admin(&env)
    .run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("out of byte order") && last.contains("without --resume") && !last.contains("--concurrency 1"),
        "{}",
        run.stderr
    );
}

/// What the unit tests' folder-walking store (`refgen_core::list::testing::FolderWalk`) assumes
/// of SeaweedFS, checked on the real server: it lists a folder before the names
/// that extend the folder's name with a character below `/` (`f/k5/…` before
/// `f/k5-a-b`), and "start after" resumes that walk, so that starting after a key
/// between the two (`f/k5-a-z`) skips both, and starting just past the folder
/// (`f/k5/` + U+10FFFF) returns what follows it. This is why a chunk boundary in
/// such a gap gets its own check, and why the check works.
#[tokio::test(flavor = "multi_thread")]
async fn s3_server_walks_folders_as_the_chunk_boundary_check_assumes() {
    require!(S3);
    let (_, client, bucket) = new_s3_bucket("walk").await;
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

/// s3rver's one-level listings leave out a folder that holds only folders, and its
/// `KeyCount` counts keys without folders. Before: `s3://b/mix/` wrote 1 of 3
/// references with exit 0, `s3://b/data/p1` said "no object", and the bucket's
/// root failed after ten retries ("KeyCount says 0, the page holds 1"). Now every
/// key is written, with one warning that the folder listing is not trusted.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_whose_folder_listing_drops_folders_loses_no_key() {
    let Ok(endpoint) = std::env::var("REFGEN_TEST_S3RVER_ENDPOINT") else {
        return;
    };
    let env = S3Env {
        endpoint,
        access_key: "S3RVER".into(),
        secret_key: "S3RVER".into(),
        reader_access_key: String::new(),
        reader_secret_key: String::new(),
    };
    let client = admin_client(&env);
    let bucket = unique_bucket("drops");
    create_bucket(&client, &bucket).await;
    let keys: Vec<String> = ["mix/a.jpg", "mix/sub/deeper/b.jpg", "mix/sub/deeper/c.jpg"]
        .into_iter()
        .map(str::to_owned)
        .chain((0..136).map(|i| format!("data/p1/part-{:02}/x/{i:03}.jpg", i % 8)))
        .collect();
    put_objects(
        &client,
        &bucket,
        keys.iter().map(|k| (k.clone(), b"x".to_vec())).collect(),
    )
    .await;
    for (prefix, want) in [("mix/", 3), ("data/p1", 136), ("", 139)] {
        let run = Refgen::new(["generate", &format!("s3://{bucket}/{prefix}")])
            .s3_admin(&env)
            .env("AWS_REGION", "us-east-1")
            .run()
            .assert_ok();
        let references = parse_references(&run.stdout);
        assert_eq!(references.len(), want, "{prefix}: {}", run.stderr);
        for key in keys.iter().filter(|k| k.starts_with(prefix)) {
            let path = format!("/{bucket}/{key}?");
            assert!(
                references.iter().any(|r| r.url.contains(&path)),
                "{prefix}: no reference to {key}"
            );
        }
        let warnings: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains("listing flat instead"))
            .collect();
        assert_eq!(warnings.len(), 1, "{prefix}: said once: {}", run.stderr);
    }
}
