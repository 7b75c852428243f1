//! End-to-end: S3 Inventory reports instead of a listing. Reports are written by
//! `scripts/inventory-fixture.py` (pyarrow for Parquet) exactly as S3 lays them
//! out, uploaded to the local S3 server beside the bucket they describe.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use refgen_e2e::faults::{Fault, FaultProxy, Plan, Service};
use refgen_e2e::*;
use serde_json::{Value, json};

/// Writes a report from `spec` and uploads its files to `dest`.
async fn report(env: &S3Env, dest: &str, spec: Value) {
    let objects = fixture_files(&spec);
    let client = admin_client(env);
    let n = objects.len();
    assert_eq!(put_objects(&client, dest, objects).await.len(), n);
}

/// A source bucket with the fixture's tricky keys and its report's buckets.
async fn buckets(env: &S3Env) -> (String, String, Vec<String>) {
    let client = admin_client(env);
    let (source, dest) = (unique_bucket("inv-src"), unique_bucket("inv-dest"));
    create_bucket(&client, &source).await;
    create_bucket(&client, &dest).await;
    let mut keys: Vec<String> = tricky_keys();
    keys.extend(["plain/a.jpg".to_owned(), "cold/frozen.jpg".to_owned()]);
    let objects = keys.iter().map(|k| (k.clone(), k.as_bytes().to_vec())).collect();
    put_objects(&client, &source, objects).await;
    // The keys as the server stores them (SeaweedFS folds `//` and a leading `/`),
    // which is what a report of the bucket holds.
    let stored = list_keys(&client, &source).await.into_iter().collect();
    (source, dest, stored)
}

/// The S3 server's settings, a source bucket with the fixture's tricky keys and
/// its report's bucket; none without the server or pyarrow (which writes the
/// reports), each saying so.
async fn s3_fixture() -> Option<(S3Env, String, String, Vec<String>)> {
    if !refgen_e2e::backends::Backend::S3.available() {
        return None;
    }
    python()?;
    let env = s3_env();
    let (source, dest, keys) = buckets(&env).await;
    Some((env, source, dest, keys))
}

/// The rows S3 would report for `keys`: each current, plus an older version of the
/// first key, a delete marker, and `cold/frozen.jpg` in GLACIER.
fn rows(keys: &[String]) -> Vec<Value> {
    let mut rows: Vec<Value> = keys
        .iter()
        .map(|k| {
            let class = if k == "cold/frozen.jpg" { "GLACIER" } else { "STANDARD" };
            json!({"key": k, "size": k.len(), "version": "v2", "latest": true, "class": class})
        })
        .collect();
    rows.push(json!({"key": keys[0], "size": 1, "version": "v1", "latest": false}));
    rows.push(json!({"key": "deleted/gone.jpg", "version": "v9", "latest": true, "delete_marker": true}));
    rows
}

fn generate(env: &S3Env, source: &str, inventory: &str, args: &[&str]) -> Refgen {
    let mut all = vec![
        "generate".to_owned(),
        format!("s3://{source}/"),
        "--inventory".into(),
        inventory.to_owned(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    Refgen::new(all).s3_admin(env)
}

/// CSV and Parquet reports give what a listing gives (as names and the bytes their
/// URLs fetch), less the archived object, with older versions and delete markers
/// counted; no listing request reaches the source bucket.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_gives_what_a_listing_gives() {
    let Some((env, source, dest, keys)) = s3_fixture().await else {
        return;
    };
    let listed = Refgen::new([
        "generate".to_owned(),
        format!("s3://{source}/"),
        "--name".into(),
        "key".into(),
    ])
    .s3_admin(&env)
    .run()
    .assert_ok();
    // What the listing's URLs fetch, by name: the bytes each reference must fetch.
    let mut listed_bodies: BTreeMap<String, Vec<u8>> = parse_references(&listed.stdout)
        .into_iter()
        .map(|l| (l.name, http_get(&l.url).1))
        .collect();
    assert!(
        listed_bodies.remove("cold/frozen.jpg").is_some(),
        "the listing has the object (SeaweedFS keeps its class)"
    );
    let want: BTreeSet<String> = listed_bodies.keys().cloned().collect();
    for (format, date) in [
        ("CSV", "2026-11-29T01-00Z"),
        ("Parquet", "2026-11-30T01-00Z"),
        ("ORC", "2026-12-01T01-00Z"),
    ] {
        let prefix = format!("{source}/{}/", format.to_lowercase());
        report(
            &env,
            &dest,
            json!({"format": format, "source_bucket": source, "destination_bucket": dest, "prefix": prefix,
                   "date": date, "files": 3, "rows": rows(&keys)}),
        )
        .await;
        // Through a proxy that counts listing requests: an inventory run makes none.
        let proxy = FaultProxy::start(&env.endpoint, Plan::every_fault(Service::S3, 0.0, 1));
        let manifest = format!("s3://{dest}/{prefix}{date}/manifest.json");
        let run =
            generate(&env, &source, &manifest, &["--name", "key", "--json", "-o"]).env("AWS_ENDPOINT_URL", &proxy.url);
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("refs.jsonl");
        let mut cmd = run;
        cmd.command().arg(&out);
        let run = cmd.run().assert_ok();
        assert_eq!(
            proxy.counts.picked.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "{format}: no listing request"
        );
        let lines = parse_references(&std::fs::read(&out).expect("refs"));
        let got: BTreeSet<String> = lines.iter().map(|l| l.name.clone()).collect();
        assert_eq!(
            got, want,
            "{format}: the report's current objects, as the listing names them"
        );
        assert_eq!(lines.len(), got.len(), "{format}: one reference per key");
        let bodies: BTreeMap<String, Vec<u8>> = lines
            .iter()
            .map(|l| {
                let (status, body) = http_get(&l.url);
                assert_eq!(status, 200, "{format}: {}", l.name);
                (l.name.clone(), body)
            })
            .collect();
        assert_eq!(
            bodies, listed_bodies,
            "{format}: every URL fetches what the listing's URL fetches"
        );
        let summary: Value = serde_json::from_slice(&run.stdout).expect("JSON");
        assert_eq!(summary["skipped"]["superseded"], 2, "{format}: {summary}");
        assert_eq!(summary["skipped"]["archived"], 1, "{format}: {summary}");
        assert_eq!(summary["listed"], keys.len() + 2, "{format}: every row read");
    }
}

/// The configuration folder picks the newest complete report (an incomplete one has
/// no manifest.checksum); a tampered manifest, another bucket's report and a
/// report without its checksum are refused with one line.
#[tokio::test(flavor = "multi_thread")]
async fn the_folder_form_and_refusals() {
    let Some((env, source, dest, keys)) = s3_fixture().await else {
        return;
    };
    let prefix = format!("{source}/daily/");
    let base = json!({"format": "CSV", "source_bucket": source, "destination_bucket": dest, "prefix": prefix});
    let with = |extra: Value| {
        let mut spec = base.clone();
        spec.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        spec
    };
    report(
        &env,
        &dest,
        with(json!({"date": "2026-11-28T01-00Z", "rows": [{"key": "plain/a.jpg", "size": 11}]})),
    )
    .await;
    report(
        &env,
        &dest,
        with(json!({"date": "2026-11-29T01-00Z", "rows": rows(&keys)})),
    )
    .await;
    report(
        &env,
        &dest,
        with(json!({"date": "2026-11-30T01-00Z", "complete": false, "rows": [{"key": "x.jpg"}]})),
    )
    .await;
    let run = generate(
        &env,
        &source,
        &format!("s3://{dest}/{prefix}"),
        &["--name", "key", "--dry-run", "--json", "-v"],
    )
    .run()
    .assert_ok();
    let summary: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(summary["listed"], keys.len() + 2, "the 29th's report: {}", run.stderr);

    let refused = |location: String, says: &str| {
        let run = generate(&env, &source, &location, &["--max-attempts", "2"]).run();
        assert_eq!(run.code, Some(1), "{location}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(says), "{location}: {}", run.stderr);
    };
    refused(
        format!("s3://{dest}/{prefix}2026-11-30T01-00Z/manifest.json"),
        "incomplete",
    );
    // Another bucket's report.
    let other = format!("{source}/other/");
    report(
        &env,
        &dest,
        json!({"format": "CSV", "source_bucket": "someone-else", "destination_bucket": dest, "prefix": other,
               "date": "2026-11-29T01-00Z", "rows": [{"key": "a.jpg"}]}),
    )
    .await;
    refused(
        format!("s3://{dest}/{other}2026-11-29T01-00Z/manifest.json"),
        "not the source's",
    );
    // A manifest changed after its checksum was written.
    let client = admin_client(&env);
    let key = format!("{prefix}2026-11-28T01-00Z/manifest.json");
    put_objects(
        &client,
        &dest,
        vec![(key.clone(), b"{\"sourceBucket\": \"x\"}".to_vec())],
    )
    .await;
    refused(format!("s3://{dest}/{key}"), "its MD5 is");
}

/// Shards of an inventory run: by data file when the report has enough of them,
/// by key hash otherwise; either way disjoint, together the whole output.
#[tokio::test(flavor = "multi_thread")]
async fn shards_of_a_report() {
    let Some((env, source, dest, keys)) = s3_fixture().await else {
        return;
    };
    for (files, label) in [(4, "by-file"), (1, "by-hash")] {
        let prefix = format!("{source}/{label}/");
        report(
            &env,
            &dest,
            json!({"format": "Parquet", "source_bucket": source, "destination_bucket": dest, "prefix": prefix,
                   "date": "2026-11-30T01-00Z", "files": files, "rows": rows(&keys)}),
        )
        .await;
        let manifest = format!("s3://{dest}/{prefix}2026-11-30T01-00Z/manifest.json");
        let names = |args: &[&str]| -> BTreeSet<String> {
            let mut all = vec!["--name", "key"];
            all.extend_from_slice(args);
            let run = generate(&env, &source, &manifest, &all).run().assert_ok();
            parse_references(&run.stdout).into_iter().map(|l| l.name).collect()
        };
        let whole = names(&[]);
        let mut union = BTreeSet::new();
        for k in 0..3 {
            let part = names(&["--shard", &format!("{k}/3")]);
            assert!(!part.is_empty(), "{label}: shard {k}/3 is empty");
            assert!(part.is_disjoint(&union), "{label}: shard {k}/3 overlaps");
            union.extend(part);
        }
        assert_eq!(union, whole, "{label}");
    }
}

/// Every request of an inventory run (the manifest, its checksum, each data file)
/// gets faults at 10 % and 30 %: errors, resets, answers cut short (with and
/// without a matching length), stalls. The output equals the run without faults.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_survives_every_fault() {
    let Some((env, source, dest, keys)) = s3_fixture().await else {
        return;
    };
    let prefix = format!("{source}/faults/");
    report(
        &env,
        &dest,
        json!({"format": "CSV", "source_bucket": source, "destination_bucket": dest, "prefix": prefix,
               "date": "2026-11-30T01-00Z", "files": 6, "rows": rows(&keys)}),
    )
    .await;
    let manifest = format!("s3://{dest}/{prefix}2026-11-30T01-00Z/manifest.json");
    let names = |via: Option<&str>| -> (Run, Vec<String>) {
        let mut refgen = generate(&env, &source, &manifest, &["--name", "key", "--request-timeout", "2s"])
            .env("AWS_REGION", "us-east-1")
            .env("REFGEN_RETRY_DELAY", "20ms");
        if let Some(url) = via {
            refgen = refgen.env("AWS_ENDPOINT_URL", url);
        }
        let run = refgen.run();
        let names = parse_references(&run.stdout).into_iter().map(|l| l.name).collect();
        (run, names)
    };
    let (clean, want) = names(None);
    assert!(clean.success, "{}", clean.stderr);
    for (rate, seed) in [(0.1, 7), (0.3, 11)] {
        let proxy = FaultProxy::start(
            &env.endpoint,
            Plan {
                service: Service::Api,
                rate,
                faults: Fault::ALL.to_vec(),
                stall: std::time::Duration::from_secs(3),
                seed,
            },
        );
        let (run, got) = names(Some(&proxy.url));
        assert!(run.success, "rate {rate}: {}", run.stderr);
        assert_eq!(got, want, "rate {rate}: the same output as without faults");
        assert!(proxy.counts.total() > 0, "rate {rate}: faults were injected");
    }
}

/// Puts `objects` into the Azurite container `container` (created first).
fn azure_put(container: &str, objects: &[(String, Vec<u8>)]) {
    let (endpoint, _, _) = azure_env();
    let sas = refgen_e2e::backends::azure_admin_sas();
    let (status, _) = http_send(
        "PUT",
        &format!("{endpoint}/{container}?restype=container&{sas}"),
        Vec::new(),
    );
    assert!(status == 201 || status == 409, "create container {container}: {status}");
    for (key, body) in objects {
        let url = azure_blob_url(&endpoint, container, key, &sas);
        assert_eq!(azure_put_blob(&url, body.clone()).0, 201, "upload {key}");
    }
}

/// Azure Blob Inventory, CSV and Parquet: only the source's container (not one
/// whose name extends it), one reference per blob however often it repeats, the
/// Archive tier skipped; a report that did not succeed is refused.
#[tokio::test(flavor = "multi_thread")]
async fn an_azure_report_gives_the_containers_blobs() {
    require!(Azure);
    if python().is_none() {
        return;
    }
    let (endpoint, account, key) = azure_env();
    let source = unique_bucket("inv-src");
    let dest = unique_bucket("inv-dest");
    let blobs: Vec<String> = ["a.jpg", "dir/b c.jpg", "unicodé/ç.png", "frozen.jpg"]
        .map(str::to_owned)
        .to_vec();
    azure_put(
        &source,
        &blobs
            .iter()
            .map(|b| (b.clone(), b.as_bytes().to_vec()))
            .collect::<Vec<_>>(),
    );
    let mut rows: Vec<Value> = blobs
        .iter()
        .map(|b| json!({"name": format!("{source}/{b}"), "size": b.len(), "tier": if b == "frozen.jpg" { "Archive" } else { "Hot" }}))
        .collect();
    rows.push(json!({"name": format!("{source}/a.jpg"), "size": 5}));
    rows.push(json!({"name": format!("{source}2/other.jpg"), "size": 5}));
    rows.push(json!({"name": format!("{dest}/x.jpg"), "size": 5}));
    for (format, status, prefix) in [
        ("csv", "Succeeded", "csv/"),
        ("parquet", "Succeeded", "parquet/"),
        ("csv", "Running", "running/"),
    ] {
        let files = fixture_files(
            &json!({"flavor": "azure", "format": format, "status": status, "prefix": prefix,
                                          "destination_container": dest, "files": 2, "rows": rows}),
        );
        azure_put(&dest, &files);
        // The report's run, with these options after the common ones.
        let inventory_run = |more: &[&str]| {
            let mut args = vec![
                "generate".to_owned(),
                format!("az://{account}/{source}/"),
                "--inventory".into(),
                format!("az://{account}/{dest}/{prefix}Rule_1-manifest.json"),
                "--name".into(),
                "key".into(),
                "--endpoint-url".into(),
                endpoint.clone(),
            ];
            args.extend(more.iter().map(|a| a.to_string()));
            Refgen::new(args).env("AZURE_STORAGE_KEY", &key).run()
        };
        let run = inventory_run(&["--json", "--dry-run"]);
        if status != "Succeeded" {
            assert_eq!(run.code, Some(1), "{}", run.stderr);
            assert!(run.stderr.contains("not Succeeded"), "{}", run.stderr);
            continue;
        }
        let run = run.assert_ok();
        let summary: Value = serde_json::from_slice(&run.stdout).expect("JSON");
        assert_eq!(summary["matched"], 3, "{format}: {summary}");
        assert_eq!(summary["skipped"]["archived"], 1, "{format}: {summary}");
        let out = tempfile::tempdir().expect("tempdir");
        let refs = out.path().join("refs.jsonl");
        inventory_run(&["-o", &refs.display().to_string()]).assert_ok();
        let lines = parse_references(&std::fs::read(&refs).expect("refs"));
        let names: BTreeSet<String> = lines.iter().map(|l| l.name.clone()).collect();
        let want: BTreeSet<String> = ["a.jpg", "dir/b c.jpg", "unicodé/ç.png"].map(str::to_owned).into();
        assert_eq!(names, want, "{format}");
        assert_eq!(lines.len(), 3, "{format}: one reference per blob");
        for line in &lines {
            let (status, body) = http_get(&line.url);
            assert_eq!(
                (status, body),
                (200, line.name.as_bytes().to_vec()),
                "{format}: {}",
                line.name
            );
        }
    }
}

/// GCS Storage Insights, CSV and Parquet, from the manifest and from a glob of the
/// shard files: the report's objects, whose URLs sign for the source bucket.
#[tokio::test(flavor = "multi_thread")]
async fn a_gcs_report_from_its_manifest_or_a_glob() {
    require!(Gcs);
    if python().is_none() {
        return;
    }
    let endpoint = gcs_endpoint();
    let (source, dest) = (unique_bucket("inv-src"), unique_bucket("inv-dest"));
    gcs_create_bucket(&endpoint, &source);
    gcs_create_bucket(&endpoint, &dest);
    let keys: Vec<String> = ["a.jpg", "dir/b c.jpg", "unicodé/ç.png", "cold.jpg"]
        .map(str::to_owned)
        .to_vec();
    for k in &keys {
        gcs_put(&endpoint, &source, k, k.as_bytes().to_vec());
    }
    let rows: Vec<Value> = keys
        .iter()
        .map(|k| json!({"key": k, "size": k.len(), "class": if k == "cold.jpg" { "ARCHIVE" } else { "STANDARD" }}))
        .collect();
    for format in ["csv", "parquet"] {
        let prefix = format!("reports/{format}/");
        let spec = json!({"flavor": "gcs", "format": format, "prefix": prefix, "source_bucket": source,
                          "files": 2, "rows": rows});
        for (name, bytes) in fixture_files(&spec) {
            gcs_put(&endpoint, &dest, &name, bytes);
        }
        let ext = if format == "csv" { "csv" } else { "parquet" };
        for location in [
            format!("gs://{dest}/{prefix}cfg_2026-11-30T01:00:00_manifest.json"),
            format!("gs://{dest}/{prefix}cfg_2026-11-30T01:00:00_*.{ext}"),
        ] {
            let run = Refgen::new([
                "generate",
                &format!("gs://{source}/"),
                "--inventory",
                &location,
                "--name",
                "key",
            ])
            .gcs_emulator()
            .env("GOOGLE_APPLICATION_CREDENTIALS", gcs_dummy_key())
            .run()
            .assert_ok();
            let lines = parse_references(&run.stdout);
            let names: BTreeSet<String> = lines.iter().map(|l| l.name.clone()).collect();
            let want: BTreeSet<String> = keys.iter().cloned().collect();
            assert_eq!(names, want, "{location}: every class, Archive included, is read on GCS");
            assert!(
                lines.iter().all(|l| l.url.contains(&format!("/{source}/"))),
                "{location}: URLs sign for the source bucket"
            );
        }
    }
}

/// `--resume` on a report: a run that stops for good on a data file it cannot read
/// keeps its parts and checkpoint (by row); once the file is there, the same
/// command continues, and the parts equal an uninterrupted run's.
#[tokio::test(flavor = "multi_thread")]
async fn an_inventory_run_resumes_by_row() {
    let Some((env, source, dest, keys)) = s3_fixture().await else {
        return;
    };
    let prefix = format!("{source}/resume/");
    let date = "2026-11-30T01-00Z";
    let spec = json!({"format": "CSV", "source_bucket": source, "destination_bucket": dest, "prefix": prefix,
                      "date": date, "files": 3, "rows": rows(&keys)});
    let (held, objects): (Vec<_>, Vec<_>) = fixture_files(&spec)
        .into_iter()
        .partition(|(key, _)| key.ends_with("-0002.csv.gz"));
    let held_back = held.into_iter().next();
    let client = admin_client(&env);
    put_objects(&client, &dest, objects).await;
    let manifest = format!("s3://{dest}/{prefix}{date}/manifest.json");
    let run_into = |out: &Path| {
        generate(
            &env,
            &source,
            &manifest,
            &[
                "--name",
                "key",
                "--part-lines",
                "5",
                "--resume",
                "--max-attempts",
                "1",
                "-o",
                out.to_str().expect("path"),
            ],
        )
        .run()
    };
    let parts_of = |folder: &Path| -> Vec<String> {
        let mut parts: Vec<_> = std::fs::read_dir(folder)
            .expect("ls")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        parts.sort();
        parts
            .iter()
            .flat_map(|p| parse_references(&std::fs::read(p).expect("part")))
            .map(|l| l.name)
            .collect()
    };
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = out_dir.path().join("refs.jsonl");
    let failed = run_into(&out);
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    assert!(
        out_dir.path().join("refs.jsonl.refgen-resume").exists(),
        "{}",
        failed.stderr
    );
    let done_before = parts_of(out_dir.path()).len();
    assert!(
        done_before >= 5,
        "parts were done before the missing file: {done_before} lines"
    );

    put_objects(&client, &dest, vec![held_back.expect("the third data file")]).await;
    let resumed = run_into(&out).assert_ok();
    assert!(resumed.stderr.contains("resuming after part"), "{}", resumed.stderr);
    let whole_dir = tempfile::tempdir().expect("tempdir");
    run_into(&whole_dir.path().join("refs.jsonl")).assert_ok();
    assert_eq!(
        parts_of(out_dir.path()),
        parts_of(whole_dir.path()),
        "resumed parts equal an uninterrupted run's"
    );
}

/// A data file that is not what its report says (gzip or Parquet that does not
/// decode) is named by its key in the report, not by the temporary file it was
/// read from, and the run leaves no temporary folder behind (4 runs in 10 left a
/// `.tmpXXXX/` with the data file in TMPDIR before). A report that lists no data
/// file says it is empty, not "is the prefix right?"; a report in another cloud
/// than the source is refused before any request.
#[tokio::test(flavor = "multi_thread")]
async fn a_broken_or_empty_report_is_named_and_leaves_nothing() {
    let Some((env, source, dest, keys)) = s3_fixture().await else {
        return;
    };
    let client = admin_client(&env);
    for format in ["CSV", "Parquet"] {
        let prefix = format!("{source}/broken-{}/", format.to_lowercase());
        let date = "2026-11-30T01-00Z";
        let spec = json!({"format": format, "source_bucket": source, "destination_bucket": dest,
                          "prefix": prefix, "date": date, "files": 2, "rows": rows(&keys)});
        let mut objects = fixture_files(&spec);
        // The second data file keeps its size but not its bytes.
        let broken = objects
            .iter_mut()
            .filter(|(key, _)| !key.ends_with("manifest.json") && !key.ends_with("manifest.checksum"))
            .nth(1)
            .expect("two data files");
        broken.1 = vec![b'x'; broken.1.len()];
        let broken_key = broken.0.clone();
        put_objects(&client, &dest, objects).await;
        for _ in 0..5 {
            let tmp = tempfile::tempdir().expect("tempdir");
            let run = generate(
                &env,
                &source,
                &format!("s3://{dest}/{prefix}{date}/manifest.json"),
                &[
                    "--max-attempts",
                    "1",
                    "-o",
                    tmp.path().join("refs.jsonl").to_str().expect("path"),
                ],
            )
            .env("TMPDIR", tmp.path())
            .run();
            assert_eq!(run.code, Some(1), "{}", run.stderr);
            let last = run.stderr.lines().last().unwrap_or_default();
            assert!(last.contains(&broken_key), "{format}: named by its key: {}", run.stderr);
            assert!(!last.contains(".tmp"), "{format}: no temporary path: {}", run.stderr);
            let left: Vec<_> = std::fs::read_dir(tmp.path())
                .expect("ls")
                .map(|e| e.expect("entry").file_name())
                .collect();
            assert!(left.is_empty(), "{format}: left in TMPDIR: {left:?}");
        }
    }
    // A manifest that lists no data file.
    let prefix = format!("{source}/empty/");
    let date = "2026-11-30T01-00Z";
    report(
        &env,
        &dest,
        json!({"format": "CSV", "source_bucket": source, "destination_bucket": dest, "prefix": prefix,
               "date": date, "empty": true, "rows": [{"key": "a.jpg"}]}),
    )
    .await;
    let run = generate(&env, &source, &format!("s3://{dest}/{prefix}{date}/manifest.json"), &[]).run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("it is empty") && !run.stderr.contains("prefix right"),
        "{}",
        run.stderr
    );
    // A report in another cloud: one line, exit 2, and no request anywhere (the
    // Google chain would have probed its metadata server).
    let run = generate(&env, &source, "gs://reports/manifest.json", &[])
        .env("GCE_METADATA_HOST", "127.0.0.1:9")
        .run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("source's own cloud"), "{}", run.stderr);
}

/// `--pin-versions` from a report: each URL names the row's `VersionId`, so it
/// reads the bytes of the version the report lists after the key is overwritten;
/// a row of an object encrypted with a customer-provided key (`EncryptionStatus`
/// `SSE-C`) is skipped as `customer-key`, pinned or not, in every format.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_pins_versions_and_skips_customer_keys() {
    if !refgen_e2e::backends::Backend::S3.available() || python().is_none() {
        return;
    }
    let (env, client, source) = new_s3_bucket("inv-versions").await;
    let dest = unique_bucket("inv-versions-dest");
    create_bucket(&client, &dest).await;
    enable_versioning(&client, &source).await;
    let keys = ["a b.jpg", "dir/c+d.jpg"];
    let mut rows = Vec::new();
    for key in keys {
        let put = client
            .put_object()
            .bucket(&source)
            .key(key)
            .body(body_for(key).into())
            .send()
            .await
            .expect("put");
        let version = put.version_id().expect("a version id").to_owned();
        rows.push(json!({"key": key, "size": body_for(key).len(), "version": version, "latest": true}));
    }
    rows.push(json!({"key": "secret.jpg", "size": 3, "version": "v7", "latest": true, "encryption": "SSE-C"}));
    rows.push(json!({"key": "dir/kms.jpg", "size": 3, "version": "v8", "latest": true, "encryption": "SSE-KMS", "class": "GLACIER"}));
    for (format, date) in [
        ("CSV", "2026-11-29T01-00Z"),
        ("Parquet", "2026-11-30T01-00Z"),
        ("ORC", "2026-12-01T01-00Z"),
    ] {
        let prefix = format!("{source}/{}/", format.to_lowercase());
        report(
            &env,
            &dest,
            json!({"format": format, "source_bucket": source, "destination_bucket": dest, "prefix": prefix,
                   "date": date, "files": 2, "rows": rows, "encryption": true}),
        )
        .await;
        let manifest = format!("s3://{dest}/{prefix}{date}/manifest.json");
        for pin in [true, false] {
            let mut args = vec!["--name", "key", "--json", "-o"];
            let dir = tempfile::tempdir().expect("tempdir");
            let out = dir.path().join("refs.jsonl");
            args.push(out.to_str().expect("path"));
            if pin {
                args.push("--pin-versions");
            }
            let run = generate(&env, &source, &manifest, &args).run().assert_ok();
            let summary: Value = serde_json::from_slice(&run.stdout).expect("JSON");
            assert_eq!(summary["skipped"]["customer_key"], 1, "{format} pin={pin}: {summary}");
            assert_eq!(summary["skipped"]["archived"], 1, "{format} pin={pin}: {summary}");
            assert_eq!(summary["pinned"], if pin { 2 } else { 0 }, "{format}: {summary}");
            assert!(run.stderr.contains("customer-provided key"), "{format}: {}", run.stderr);
            let lines = parse_references(&std::fs::read(&out).expect("refs"));
            let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
            assert_eq!(names, keys, "{format} pin={pin}");
            for (line, row) in lines.iter().zip(&rows) {
                let version = format!("versionId={}", row["version"].as_str().expect("version"));
                assert_eq!(line.url.contains(&version), pin, "{format}: {}", line.url);
            }
            if pin && format == "ORC" {
                // Overwritten after the report: the pinned URLs read what it listed.
                for key in keys {
                    put_objects(&client, &source, vec![(key.to_owned(), b"new".to_vec())]).await;
                }
                for line in &lines {
                    assert_eq!(http_get(&line.url), (200, body_for(&line.name)), "{}", line.url);
                }
            }
        }
    }
}
