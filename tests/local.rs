//! End-to-end: `refgen submit ./folder --images|--videos` uploads local files to
//! the Roboflow stand-in, which checks every request against the contract's
//! "Local files" (the multipart body, the signed PUT's headers, the archives)
//! and keeps what it received; and `refgen batches content` reads a batch back.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use refgen_e2e::faults::{FaultProxy, Plan, Service};
use refgen_e2e::roboflow::{FakeRoboflow, Fault};
use refgen_e2e::*;

/// A folder of `n` images spread over nested folders (each basename used twice),
/// names with spaces and non-ASCII letters, a note, a hidden file, a dangling
/// link (unreadable, even for root), and a link looping to a folder above it.
/// Returns the folder and the name → bytes refgen must upload.
fn frames(n: usize) -> (tempfile::TempDir, BTreeMap<String, Vec<u8>>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("frames");
    let mut want = BTreeMap::new();
    for i in 0..n {
        let folder = ["cam a", "cam b/ünïcode"][i % 2];
        let key = format!("{folder}/shot {:03}.jpg", i / 2);
        let body = format!("image {i} at {key}").into_bytes();
        let path = root.join(&key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &body).expect("write");
        want.insert(refgen_core::naming::flat_name(&key), body);
    }
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("notes.txt"), "not an image").expect("write");
    std::fs::write(root.join(".thumb.jpg"), "hidden").expect("write");
    std::os::unix::fs::symlink(root.join("missing.jpg"), root.join("broken.jpg")).expect("link");
    std::os::unix::fs::symlink(&root, root.join("cam a/loop")).expect("link");
    if !is_root(&root) {
        // Root reads any file whatever its mode: the dangling link stands in there.
        let locked = root.join("locked.jpg");
        std::fs::write(&locked, "no access").expect("write");
        std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).expect("chmod");
    }
    (dir, want)
}

/// Whether files made here belong to root (who can read a file of mode 000).
fn is_root(dir: &Path) -> bool {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(dir).expect("stat")) == 0
}

/// The unreadable paths [`frames`] holds: the dangling link, and a file of mode
/// 000 unless the tests run as root.
fn unreadable(dir: &Path) -> u64 {
    if is_root(dir) { 1 } else { 2 }
}

fn submit(rf: &FakeRoboflow, api: &str, args: &[&str]) -> Refgen {
    let mut all = vec!["submit".to_owned()];
    all.extend(args.iter().map(|s| s.to_string()));
    Refgen::new(all)
        .env("API_BASE_URL", api)
        .env("ROBOFLOW_API_KEY", rf.api_key())
        .env("REFGEN_RETRY_DELAY", "20ms")
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

fn json_of(run: &Run) -> serde_json::Value {
    serde_json::from_slice(&run.stdout).expect("--json prints one JSON document")
}

/// More than 32 images go as tar archives of at most --images-per-shard, each
/// file once under a unique name (two `shot 000.jpg` in different folders stay
/// two), with the webhook's notification_config.json in each archive; what is
/// not an image, hidden, unreadable or a loop is skipped with its reason.
#[test]
fn a_folder_goes_up_in_archives_with_unique_names() {
    let rf = FakeRoboflow::start();
    let (dir, want) = frames(45);
    let state = dir.path().join("state");
    let run = submit(
        &rf,
        &rf.base_url(),
        &[
            &path_arg(&dir.path().join("frames")),
            "--images",
            "-b",
            "local-bulk",
            "--images-per-shard",
            "10",
            "--notifications-url",
            "https://hooks.example.com/rf",
            "--state-dir",
            &path_arg(&state),
            "--wait",
            "--poll-interval",
            "1s",
            "--json",
            "-v",
        ],
    )
    .run()
    .assert_ok();
    assert_eq!(
        rf.ingested("local-bulk"),
        want,
        "every image's bytes, under its flat name"
    );
    let st = rf.state.lock().expect("lock");
    assert!(
        st.uploads_received["local-bulk"].values().all(|n| *n == 1),
        "each file once"
    );
    assert_eq!(st.archives.len(), 5, "45 images in archives of 10");
    for (batch, names, config) in &st.archives {
        assert_eq!(batch, "local-bulk");
        assert!(names.len() <= 10, "{names:?}");
        let config = config.as_ref().expect("notification_config.json in every archive");
        assert_eq!(config["notificationsURL"], "https://hooks.example.com/rf");
        assert!(
            config["ingestId"]
                .as_str()
                .is_some_and(|id| id.starts_with("local-bulk-")),
            "{config}"
        );
    }
    let ids: std::collections::HashSet<&str> = st
        .archives
        .iter()
        .filter_map(|(_, _, c)| c.as_ref()?["ingestId"].as_str())
        .collect();
    assert_eq!(ids.len(), 5, "an ingest id per archive");
    drop(st);
    rf.assert_no_violations();
    let report = json_of(&run);
    assert_eq!(report["outcome"], "ingested");
    let upload = &report["upload"];
    assert_eq!(upload["mode"], "bulk");
    assert_eq!(
        (
            upload["found"].as_u64(),
            upload["uploaded"].as_u64(),
            upload["shards"].as_u64()
        ),
        (Some(45), Some(45), Some(5))
    );
    assert_eq!(
        upload["skipped"],
        serde_json::json!({"filtered": 1, "hidden": 1, "unreadable": unreadable(dir.path()), "symlink-loop": 1})
    );
    assert!(
        run.stderr.contains("broken.jpg"),
        "-v names the unreadable file: {}",
        run.stderr
    );
    assert!(run.stderr.contains("loop"), "the loop is named: {}", run.stderr);
    // The state is kept where asked, never in the source folder.
    assert!(std::fs::read_dir(state.join("uploads")).expect("state folder").count() == 1);
    let mut inside = Vec::new();
    for entry in std::fs::read_dir(dir.path().join("frames")).expect("frames") {
        inside.push(entry.expect("entry").file_name());
    }
    let made = 5 + unreadable(dir.path()) as usize - 1;
    assert_eq!(inside.len(), made, "nothing added to the source folder: {inside:?}");

    // The same command again: everything is confirmed, nothing is sent again.
    let again = submit(
        &rf,
        &rf.base_url(),
        &[
            &path_arg(&dir.path().join("frames")),
            "--images",
            "-b",
            "local-bulk",
            "--images-per-shard",
            "10",
            "--state-dir",
            &path_arg(&state),
            "--json",
        ],
    )
    .run()
    .assert_ok();
    let upload = &json_of(&again)["upload"];
    assert_eq!(
        (upload["uploaded"].as_u64(), upload["alreadyUploaded"].as_u64()),
        (Some(0), Some(45))
    );
    assert_eq!(rf.state.lock().expect("lock").archives.len(), 5);
}

/// A few images go one by one (a multipart body, the part named after the
/// file); the batch then holds single uploads, so more images go the same way,
/// and asking for archives is refused in one line. Videos go by signed URL.
#[test]
fn a_few_images_go_one_by_one_and_videos_by_signed_url() {
    let rf = FakeRoboflow::start();
    let (dir, want) = frames(6);
    let state = path_arg(&dir.path().join("state"));
    let folder = path_arg(&dir.path().join("frames"));
    // With a workflow: uploaded, waited for, and the job started on the batch.
    let run = submit(
        &rf,
        &rf.base_url(),
        &[
            &folder,
            "--images",
            "-b",
            "few",
            "--state-dir",
            &state,
            "--json",
            "-w",
            "wf",
            "-j",
            "few-job",
            "--poll-interval",
            "1s",
        ],
    )
    .run()
    .assert_ok();
    assert_eq!(json_of(&run)["upload"]["single"], 6);
    assert_eq!(rf.ingested("few"), want);
    let job = rf
        .state
        .lock()
        .expect("lock")
        .jobs
        .get("few-job")
        .cloned()
        .expect("the job was started");
    assert_eq!(job["jobInput"]["batchId"], "few");
    assert!(rf.state.lock().expect("lock").archives.is_empty());

    // 40 more into that simple batch: one by one, as the batch holds them.
    let (more, more_want) = frames(40);
    let run = submit(
        &rf,
        &rf.base_url(),
        &[
            &path_arg(&more.path().join("frames")),
            "--images",
            "-b",
            "few",
            "--state-dir",
            &state,
            "--json",
            "--include",
            "cam a/**",
        ],
    )
    .run()
    .assert_ok();
    assert_eq!(json_of(&run)["upload"]["single"], 20);
    assert_eq!(
        rf.ingested("few").len(),
        6 + more_want.keys().filter(|k| k.starts_with("cam a")).count() - 3
    );
    let refused = submit(
        &rf,
        &rf.base_url(),
        &[
            &folder,
            "--images",
            "-b",
            "few",
            "--upload-mode",
            "bulk",
            "--state-dir",
            &state,
        ],
    )
    .run();
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("simple-batch"), "{}", refused.stderr);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);

    // Videos: a signed URL each, then the PUT with its headers.
    let videos = tempfile::tempdir().expect("tempdir");
    for (name, body) in [("a/clip.mp4", "clip a"), ("b/clip.mp4", "clip b"), ("c.mov", "clip c")] {
        let path = videos.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("write");
    }
    let run = submit(
        &rf,
        &rf.base_url(),
        &[
            &path_arg(videos.path()),
            "--videos",
            "-b",
            "clips",
            "--state-dir",
            &state,
            "--json",
        ],
    )
    .run()
    .assert_ok();
    assert_eq!(json_of(&run)["upload"]["videos"], 3);
    let got = rf.ingested("clips");
    assert_eq!(got.keys().collect::<Vec<_>>(), ["a__clip.mp4", "b__clip.mp4", "c.mov"]);
    assert_eq!(got["b__clip.mp4"], b"clip b");
    rf.assert_no_violations();
}

/// A run killed midway (SIGKILL) and started again uploads only what the state
/// does not hold; the batch ends with every file's exact bytes.
#[test]
fn an_interrupted_upload_resumes_with_only_the_rest() {
    let rf = FakeRoboflow::start();
    rf.state.lock().expect("lock").put_delay = Duration::from_millis(150);
    let (dir, want) = frames(120);
    let state = path_arg(&dir.path().join("state"));
    let folder = path_arg(&dir.path().join("frames"));
    let args = [
        folder.as_str(),
        "--images",
        "-b",
        "resumed",
        "--images-per-shard",
        "8",
        "--concurrency",
        "2",
        "--state-dir",
        &state,
        "--json",
    ];
    let mut first = submit(&rf, &rf.base_url(), &args);
    let mut child = first
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    for _ in 0..400 {
        if rf.state.lock().expect("lock").archives.len() >= 5 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let before = rf.state.lock().expect("lock").archives.len();
    assert!((5..15).contains(&before), "killed midway: {before} of 15 archives");

    rf.state.lock().expect("lock").put_delay = Duration::ZERO;
    let run = submit(&rf, &rf.base_url(), &args).run().assert_ok();
    let upload = &json_of(&run)["upload"];
    let (sent, already) = (
        upload["uploaded"].as_u64().unwrap_or(0),
        upload["alreadyUploaded"].as_u64().unwrap_or(0),
    );
    assert_eq!(sent + already, 120, "{upload}");
    assert!(already >= 8 * 4, "the confirmed archives are not sent again: {upload}");
    assert_eq!(rf.ingested("resumed"), want);
    // At most the archives in flight when the run was killed went twice.
    let twice = rf.state.lock().expect("lock").uploads_received["resumed"]
        .values()
        .filter(|n| **n > 1)
        .count();
    assert!(twice <= 2 * 8, "{twice} files sent twice");
    rf.assert_no_violations();
}

/// Faults on every API call and every PUT (errors, resets, bodies cut short,
/// stalls) at 10 % and 30 %: the batch ends with exactly the folder's files.
#[test]
fn uploads_survive_faults_on_the_api_and_the_puts() {
    for (rate, seed, count, batch) in [(0.1, 5, 40, "faults-10"), (0.3, 17, 24, "faults-30")] {
        let rf = FakeRoboflow::start();
        let proxy = FaultProxy::start(&rf.base_url(), Plan::every_fault(Service::Api, rate, seed));
        rf.state.lock().expect("lock").download_base = Some(proxy.url.clone());
        let (dir, want) = frames(count);
        let run = submit(
            &rf,
            &proxy.url,
            &[
                &path_arg(&dir.path().join("frames")),
                "--images",
                "-b",
                batch,
                "--images-per-shard",
                "5",
                "--state-dir",
                &path_arg(&dir.path().join("state")),
                "--max-attempts",
                "12",
            ],
        )
        .run();
        assert!(run.success, "rate {rate}: {}", run.stderr);
        assert!(proxy.counts.total() > 0, "faults were injected at {rate}");
        assert_eq!(rf.ingested(batch), want, "rate {rate}");
        rf.assert_no_violations();
    }
}

/// A dry run walks and shows how the files would go, and sends nothing.
#[test]
fn a_dry_run_shows_the_archives_and_sends_nothing() {
    let rf = FakeRoboflow::start();
    let (dir, _) = frames(40);
    let state = dir.path().join("state");
    let run = submit(
        &rf,
        &rf.base_url(),
        &[
            &path_arg(&dir.path().join("frames")),
            "--images",
            "-b",
            "dry",
            "--dry-run",
            "--state-dir",
            &path_arg(&state),
            "-w",
            "wf",
            "--save-image-outputs",
        ],
    )
    .run()
    .assert_ok();
    let lines: Vec<serde_json::Value> = json_lines(&run.stdout);
    assert_eq!(lines.len(), 2, "one archive of 40, and the job: {lines:?}");
    assert_eq!(lines[0]["files"], 40);
    assert!(
        lines[0]["path"]
            .as_str()
            .expect("path")
            .ends_with("/batches/dry/bulk-upload/image-files")
    );
    assert_eq!(
        lines[1]["body"]["processingSpecification"]["persistImagesOutputs"],
        true
    );
    assert!(run.stderr.contains("would upload 40 files"), "{}", run.stderr);
    assert!(rf.requests().is_empty(), "a dry run sends nothing");
    assert!(!state.exists(), "a dry run writes no state");

    // Two sources keep their folders in the names; a glob selects below its folder.
    let frames = dir.path().join("frames");
    let run = submit(
        &rf,
        &rf.base_url(),
        &[
            &path_arg(&frames.join("cam a")),
            &format!("{}/**/shot 00*.jpg", path_arg(&frames.join("cam b"))),
            "--images",
            "-b",
            "dry",
            "--dry-run",
            "--upload-mode",
            "single",
            "--state-dir",
            &path_arg(&state),
        ],
    )
    .run()
    .assert_ok();
    let names: Vec<String> = json_lines::<serde_json::Value>(&run.stdout)
        .iter()
        .map(|l| l["fileName"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(names.len(), 20 + 10, "{names:?}");
    assert_eq!(names[0], "cam a__shot 000.jpg");
    assert_eq!(names[20], "cam b__ünïcode__shot 000.jpg");
}

/// What cannot work is one line and exit 2, before any request.
#[test]
fn bad_local_input_is_one_line() {
    let rf = FakeRoboflow::start();
    let (dir, _) = frames(3);
    let folder = path_arg(&dir.path().join("frames"));
    let inside = path_arg(&dir.path().join("frames/cam a"));
    for (args, needle) in [
        (vec![folder.as_str(), "-b", "x"], "give --images or --videos"),
        (vec!["/no/such/folder", "--images", "-b", "x"], "/no/such/folder"),
        (
            vec![
                folder.as_str(),
                "--images",
                "-b",
                "x",
                "--upload-to",
                "s3://b/refs.jsonl",
            ],
            "--upload-to does not go with local files",
        ),
        (
            vec![folder.as_str(), inside.as_str(), "--images", "-b", "x"],
            "one lies inside the other",
        ),
        (
            vec![folder.as_str(), "--images", "-b", "x", "--images-per-shard", "501"],
            "501",
        ),
        (
            vec![folder.as_str(), "--videos", "-b", "x", "--upload-mode", "bulk"],
            "videos go one by one",
        ),
        (
            vec![folder.as_str(), "s3://bucket/", "--images", "-b", "x"],
            "one bucket source",
        ),
    ] {
        let run = submit(&rf, &rf.base_url(), &args).run();
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{args:?}: {}", run.stderr);
    }
    assert!(rf.requests().is_empty());
}

/// `batches content`: every file of an input batch over pages of uneven sizes,
/// every part of a multipart batch, one part, a limit.
#[test]
fn batches_content_lists_every_file_of_every_part() {
    let rf = FakeRoboflow::start();
    let (dir, want) = frames(7);
    submit(
        &rf,
        &rf.base_url(),
        &[
            &path_arg(&dir.path().join("frames")),
            "--images",
            "-b",
            "listed",
            "--state-dir",
            &path_arg(&dir.path().join("state")),
        ],
    )
    .run()
    .assert_ok();
    rf.add_job("job-1", "listed");
    let content = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["batches", "content"];
        all.extend_from_slice(args);
        let run = Refgen::new(all)
            .env("API_BASE_URL", rf.base_url())
            .env("ROBOFLOW_API_KEY", rf.api_key())
            .run()
            .assert_ok();
        json_lines(&run.stdout)
    };
    let names: Vec<String> = content(&["listed", "--json"])
        .iter()
        .map(|f| f["fileName"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(names, want.keys().cloned().collect::<Vec<_>>());
    let parts: Vec<(String, String)> = content(&["out-job-1", "--json"])
        .iter()
        .map(|f| {
            (
                f["partName"].as_str().expect("part").to_owned(),
                f["fileName"].as_str().expect("name").to_owned(),
            )
        })
        .collect();
    assert_eq!(parts.len(), 4, "{parts:?}");
    assert_eq!(parts.iter().filter(|(p, _)| p == "results").count(), 3);
    assert_eq!(content(&["out-job-1", "--part", "visualisations", "--json"]).len(), 1);
    assert_eq!(content(&["listed", "--limit", "2", "--json"]).len(), 2);
    rf.assert_no_violations();
}

/// An archive whose PUT fails after its retries ends the run with one line
/// naming the archive and its first file; the state keeps what was confirmed,
/// and the same command then sends only the rest, each file once.
#[test]
fn a_put_that_keeps_failing_names_its_archive_and_a_rerun_finishes() {
    let rf = FakeRoboflow::start();
    let (dir, want) = frames(34);
    let folder = path_arg(&dir.path().join("frames"));
    let state = path_arg(&dir.path().join("state"));
    let args = [
        folder.as_str(),
        "--images",
        "-b",
        "put-fails",
        "--images-per-shard",
        "10",
        "--concurrency",
        "1",
        "--state-dir",
        &state,
        "--max-attempts",
        "2",
        "--json",
        "-q",
    ];
    {
        // The first archive goes through; both attempts of the second are refused.
        let mut st = rf.state.lock().expect("lock");
        st.put_faults_from = 1;
        st.put_faults.extend([Fault::Status(500), Fault::Status(500)]);
    }
    let run = submit(&rf, &rf.base_url(), &args).run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    // The fixture's loop is warned about; the failure is one line.
    let errors: Vec<&str> = run.stderr.lines().filter(|l| !l.contains(" WARN ")).collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    let line = errors[0];
    for needle in [
        "uploading shard 1 (10 files, the first ",
        "cam a/shot 010.jpg",
        "HTTP 500",
        "after 2 attempts",
        "10 files uploaded before are recorded in",
    ] {
        assert!(line.contains(needle), "{needle:?} in {line}");
    }
    assert_eq!(rf.ingested("put-fails").len(), 10);

    let run = submit(&rf, &rf.base_url(), &args).run().assert_ok();
    let upload = &json_of(&run)["upload"];
    assert_eq!(
        (upload["uploaded"].as_u64(), upload["alreadyUploaded"].as_u64()),
        (Some(24), Some(10)),
        "{upload}"
    );
    assert_eq!(rf.ingested("put-fails"), want);
    assert!(
        rf.state.lock().expect("lock").uploads_received["put-fails"]
            .values()
            .all(|n| *n == 1)
    );
    rf.assert_no_violations();
}
