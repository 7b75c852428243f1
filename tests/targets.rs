//! Where the references go, and what is left when a run is cut short: signals
//! remove the temporary file (or submit's folder) and exit 128 + the signal; a
//! FIFO or a device is written in place, a symlink stays a link, a read-only file
//! is refused, and a file-size limit or a full disk ends with one line and nothing
//! left behind. Runs the real binary against the local S3 server.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use refgen_e2e::backends::Backend;
use refgen_e2e::faults::{Fault, FaultProxy, Plan, Service};
use refgen_e2e::*;

async fn small_bucket(n: usize) -> String {
    Backend::S3
        .bucket_with(&(0..n).map(|i| format!("img/{i:04}.jpg")).collect::<Vec<_>>())
        .await
}

/// A proxy in front of the S3 server whose listing requests never answer, so a
/// run is mid-way for as long as a test needs.
fn stalling_proxy() -> FaultProxy {
    let mut plan = Plan::every_fault(Service::S3, 1.0, 1);
    plan.faults = vec![Fault::Stall];
    plan.stall = Duration::from_secs(20);
    FaultProxy::start(&Backend::S3.upstream(), plan)
}

/// Spawns `refgen`, waits until it is listing, signals it and returns its output.
fn signal_while_listing(
    mut refgen: Refgen,
    proxy: &FaultProxy,
    ready: impl Fn() -> bool,
    signal: &str,
) -> std::process::Output {
    let child = refgen
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_until("the run to start", ready);
    wait_until("a listing request", || {
        proxy.counts.picked.load(std::sync::atomic::Ordering::SeqCst) > 0
    });
    kill(child.id(), signal);
    child.wait_with_output().expect("wait")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill(pid: u32, signal: &str) {
    // The shell's own `kill`, so no procps package is needed.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{signal} {pid}"))
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_remove_the_temporary_file_and_exit_128_plus_the_signal() {
    if !Backend::S3.available() {
        return;
    }
    let bucket = small_bucket(3).await;
    // Every listing request stalls, so the run is mid-way when the signal comes.
    let proxy = stalling_proxy();
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("refs.jsonl");
        std::fs::write(&out, "old\n").expect("seed");
        let refgen = Backend::S3.generate(
            &Backend::S3.source(&bucket, ""),
            Some(&proxy.url),
            &["-o", out.to_str().expect("path")],
        );
        let output = signal_while_listing(refgen, &proxy, || entries(dir.path()).len() == 2, signal);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "SIG{signal}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(&format!("SIG{signal}")), "{stderr}");
        assert_eq!(
            entries(dir.path()),
            ["refs.jsonl"],
            "SIG{signal}: nothing left beside the target"
        );
        assert_eq!(std::fs::read_to_string(&out).expect("read"), "old\n");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_submit_removes_its_temporary_folder() {
    if !Backend::S3.available() {
        return;
    }
    let bucket = small_bucket(3).await;
    let proxy = stalling_proxy();
    let tmp = tempfile::tempdir().expect("tempdir");
    let env = s3_env();
    let refgen = Refgen::new([
        "submit",
        &format!("s3://{bucket}/img/"),
        "--images",
        "--batch-id",
        "interrupted",
        "--dry-run",
    ])
    .s3_admin_via(&env, &proxy.url)
    .env("TMPDIR", tmp.path());
    let output = signal_while_listing(refgen, &proxy, || !entries(tmp.path()).is_empty(), "TERM");
    assert_eq!(
        output.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(entries(tmp.path()).is_empty(), "left behind: {:?}", entries(tmp.path()));
}

fn generate_to(bucket: &str, target: &Path) -> Run {
    Backend::S3
        .generate(
            &Backend::S3.source(bucket, ""),
            None,
            &["-o", target.to_str().expect("path")],
        )
        .run()
}

#[tokio::test(flavor = "multi_thread")]
async fn special_targets_are_written_in_place_and_links_stay_links() {
    use std::os::unix::fs::FileTypeExt;
    if !Backend::S3.available() {
        return;
    }
    let bucket = small_bucket(20).await;
    let dir = tempfile::tempdir().expect("tempdir");

    // A FIFO: the reader gets every line; the FIFO is still a FIFO.
    let fifo = dir.path().join("refs.fifo");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).expect("read the fifo"))
    };
    generate_to(&bucket, &fifo).assert_ok();
    assert_eq!(parse_references(&reader.join().expect("reader")).len(), 20);
    assert!(std::fs::symlink_metadata(&fifo).expect("lstat").file_type().is_fifo());

    // A character device (a null device made here, never the system's).
    let null = dir.path().join("null");
    if mknod(&null, 1, 3) {
        generate_to(&bucket, &null).assert_ok();
        assert!(
            std::fs::symlink_metadata(&null)
                .expect("lstat")
                .file_type()
                .is_char_device()
        );
        // A full device: the write fails, one line, exit 1.
        let full = dir.path().join("full");
        assert!(mknod(&full, 1, 7), "mknod of a full device");
        let run = generate_to(&bucket, &full);
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains("No space left"), "{}", run.stderr);
        assert!(
            std::fs::symlink_metadata(&full)
                .expect("lstat")
                .file_type()
                .is_char_device()
        );
    } else {
        eprintln!("mknod is not allowed here: device targets not tried");
    }

    // A symlink: the file it points to gets the references; the link stays.
    let real = dir.path().join("real.jsonl");
    std::fs::write(&real, "old\n").expect("seed");
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink("real.jsonl", &link).expect("symlink");
    generate_to(&bucket, &link).assert_ok();
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("lstat")
            .file_type()
            .is_symlink()
    );
    assert_eq!(parse_references(&std::fs::read(&real).expect("read")).len(), 20);

    // A read-only file: refused before anything is listed, kept as it was.
    use std::os::unix::fs::PermissionsExt;
    let ro = dir.path().join("ro.jsonl");
    std::fs::write(&ro, "old\n").expect("seed");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let run = generate_to(&bucket, &ro);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("read-only"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&ro).expect("read"), "old\n");

    let mut left = entries(dir.path());
    left.retain(|n| n.starts_with(".refgen-"));
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_size_limit_ends_with_one_line_and_no_temporary_file() {
    if !Backend::S3.available() {
        return;
    }
    let bucket = small_bucket(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("refs.jsonl");
    std::fs::write(&out, "old\n").expect("seed");
    // `ulimit -f 16`: 16 blocks, far less than 200 references.
    let run = Backend::S3
        .generate(
            &Backend::S3.source(&bucket, ""),
            None,
            &["-o", out.to_str().expect("path")],
        )
        .run_after("ulimit -f 16");
    let stderr = &run.stderr;
    assert_eq!(run.code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("too large"), "{stderr}");
    assert_eq!(entries(dir.path()), ["refs.jsonl"]);
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "old\n");
}

/// `--resume`: a run killed part-way (SIGKILL: no cleanup at all) and run again
/// continues after its last part done, and its parts together equal an
/// uninterrupted run's; a resume with other settings is refused with one line.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_run_resumes_where_it_stopped() {
    require!(S3);
    let keys: Vec<String> = (0..1500).map(|i| format!("r/{:02}/{i:05}.jpg", i % 7)).collect();
    let bucket = Backend::S3.bucket_with(&keys).await;
    let source = Backend::S3.source(&bucket, "r/");
    let dir = tempfile::tempdir().expect("tempdir");
    let whole_dir = tempfile::tempdir().expect("tempdir");
    let names_of = |dir: &Path| -> Vec<String> {
        let mut parts: Vec<_> = entries(dir).into_iter().filter(|n| n.ends_with(".jsonl")).collect();
        parts.sort();
        parts
            .iter()
            .flat_map(|p| parse_references(&std::fs::read(dir.join(p)).expect("part")))
            .map(|l| l.name)
            .collect()
    };
    let args = |out: &Path| -> Vec<String> {
        // Sequential pages of 5: the run lasts long enough to be killed mid-way.
        [
            "--part-lines",
            "100",
            "--resume",
            "--page-size",
            "5",
            "--concurrency",
            "1",
            "-o",
            out.to_str().expect("path"),
        ]
        .map(str::to_owned)
        .to_vec()
    };

    let whole_out = whole_dir.path().join("refs.jsonl");
    Backend::S3
        .generate(&source, None, &strs(&args(&whole_out)))
        .run()
        .assert_ok();
    let whole = names_of(whole_dir.path());
    assert_eq!(whole.len(), 1500);
    assert!(
        !whole_out.with_file_name("refs.jsonl.refgen-resume").exists(),
        "a whole run leaves no checkpoint"
    );

    let out = dir.path().join("refs.jsonl");
    let mut first = Backend::S3.generate(&source, None, &strs(&args(&out)));
    let child = first
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let third = dir.path().join("refs-00002.jsonl");
    wait_until("three parts done", || third.exists());
    kill(child.id(), "KILL");
    let _ = child.wait_with_output();
    assert!(
        dir.path().join("refs.jsonl.refgen-resume").exists(),
        "the checkpoint is left"
    );

    let mut other = args(&out);
    other.extend(["--images".to_owned()]);
    let refused = Backend::S3.generate(&source, None, &strs(&other)).run();
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("other settings"), "{}", refused.stderr);

    let run = Backend::S3
        .generate(&source, None, &strs(&args(&out)))
        .run()
        .assert_ok();
    assert!(run.stderr.contains("resuming after part"), "{}", run.stderr);
    // The killed run's temporary part is left beside the parts; it is not a part.
    let resumed = names_of(dir.path());
    let first_difference = resumed.iter().zip(&whole).position(|(a, b)| a != b);
    assert!(
        resumed.len() == whole.len() && first_difference.is_none(),
        "the parts equal an uninterrupted run's: {} names against {}, first difference at {first_difference:?}",
        resumed.len(),
        whole.len()
    );
    assert!(!dir.path().join("refs.jsonl.refgen-resume").exists());
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// With standard output closed (`>&-`), the references went nowhere: one line,
/// exit 1 (it said "wrote 5 references to standard output", exit 0, before). A
/// shell's `> /dev/null` is a choice, and stays a success.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_standard_output_is_an_error() {
    if !Backend::S3.available() {
        return;
    }
    let bucket = small_bucket(5).await;
    let source = Backend::S3.source(&bucket, "");
    let run = Backend::S3.generate(&source, None, &[]).run_after("exec 1>&-");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("standard output is closed"), "{}", run.stderr);
    assert!(!run.stderr.contains("wrote"), "{}", run.stderr);
    Backend::S3
        .generate(&source, None, &[])
        .run_after("exec 1>/dev/null")
        .assert_ok();
}

/// An interrupt after a resumable run has put parts in place says so, instead of
/// "an output file is left as it was" (which it said before, with parts in place).
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupt_says_which_files_are_in_place() {
    if !Backend::S3.available() {
        return;
    }
    let bucket = small_bucket(40).await;
    // Half the listing requests stall for 20 s: the run is mid-way, with parts
    // done, for long enough to be interrupted there.
    let mut plan = Plan::every_fault(Service::S3, 0.5, 7);
    plan.faults = vec![Fault::Stall];
    plan.stall = Duration::from_secs(20);
    let proxy = FaultProxy::start(&Backend::S3.upstream(), plan);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("refs.jsonl");
    let refgen = Backend::S3.generate(
        &Backend::S3.source(&bucket, ""),
        Some(&proxy.url),
        &[
            "--concurrency",
            "1",
            "--page-size",
            "2",
            "--part-lines",
            "1",
            "--resume",
            "-o",
            out.to_str().expect("path"),
        ],
    );
    let first_part = dir.path().join("refs-00000.jsonl");
    let output = signal_while_listing(refgen, &proxy, || first_part.exists(), "INT");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("already in place") && last.contains("refs-00000.jsonl") && !last.contains("left as it was"),
        "{stderr}"
    );
}
