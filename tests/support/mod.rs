//! Helpers for the end-to-end tests: the servers' settings (from `scripts/*-server.sh env`),
//! running the real `refgen` binary in a clean environment, uploading fixtures, and
//! fetching URLs with a plain HTTP client.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;
use refgen_core::writer::ReferenceLine;

pub mod backends;
pub mod faults;
pub mod roboflow;
pub mod stub;
pub mod tls;

/// Connection settings of the local S3 server.
#[derive(Debug, Clone)]
pub struct S3Env {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Admin identity.
    pub access_key: String,
    /// Admin secret.
    pub secret_key: String,
    /// Identity that may only list and read the bucket `reader-only`.
    pub reader_access_key: String,
    /// Its secret.
    pub reader_secret_key: String,
}

/// Returns from a test, with a message, when one of the named servers
/// (`S3`, `Gcs`, `Azure`) is not set up: `require!(S3);` as a test's first line.
#[macro_export]
macro_rules! require {
    ($($backend:ident),+) => {
        $( if !$crate::backends::Backend::$backend.available() { return; } )+
    };
}

/// A server setting; tests reach it only past `require!`, so a missing one is a
/// bug in the test.
fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test.sh, which starts the local servers")
    })
}

/// The local S3 server's settings (a test checks them first with `require!(S3)`).
pub fn s3_env() -> S3Env {
    S3Env {
        endpoint: required("REFGEN_TEST_S3_ENDPOINT"),
        access_key: required("REFGEN_TEST_S3_ACCESS_KEY"),
        secret_key: required("REFGEN_TEST_S3_SECRET_KEY"),
        reader_access_key: required("REFGEN_TEST_S3_READER_ACCESS_KEY"),
        reader_secret_key: required("REFGEN_TEST_S3_READER_SECRET_KEY"),
    }
}

/// The `shared/` folder beside the clone (or `REFGEN_SHARED_DIR`).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("REFGEN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// The keys of `shared/fixtures/tricky-keys.json`.
pub fn tricky_keys() -> Vec<String> {
    let path = shared_dir().join("fixtures/tricky-keys.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    doc["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k.as_str().expect("key is a string").to_owned())
        .collect()
}

/// The local GCS emulator's endpoint.
pub fn gcs_endpoint() -> String {
    required("REFGEN_TEST_GCS_ENDPOINT")
}

/// Creates a bucket on the GCS emulator.
pub fn gcs_create_bucket(endpoint: &str, bucket: &str) {
    let (status, body) = http_send(
        "POST",
        &format!("{endpoint}/storage/v1/b?project=refgen"),
        format!("{{\"name\":\"{bucket}\"}}").into_bytes(),
    );
    assert_eq!(
        status,
        200,
        "create bucket {bucket}: {}",
        String::from_utf8_lossy(&body)
    );
}

/// Uploads one object to the GCS emulator through the JSON API.
pub fn gcs_put(endpoint: &str, bucket: &str, key: &str, body: Vec<u8>) {
    let name: String = key
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let url = format!("{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}");
    let (status, reply) = http_send("POST", &url, body);
    assert_eq!(status, 200, "upload {key:?}: {}", String::from_utf8_lossy(&reply));
}

/// Azurite's endpoint, account and (published development) key.
pub fn azure_env() -> (String, String, String) {
    (
        required("REFGEN_TEST_AZURE_ENDPOINT"),
        required("REFGEN_TEST_AZURE_ACCOUNT"),
        required("REFGEN_TEST_AZURE_KEY"),
    )
}

/// The dummy service-account key of Google's conformance tests (inactive).
pub fn gcs_dummy_key() -> PathBuf {
    shared_dir().join("vectors/gcs/test_service_account.not-a-test.json")
}

/// The built binary: `REFGEN_BIN`, else `refgen` beside the test's own `deps/` folder.
pub fn refgen_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("REFGEN_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("refgen"))
        .expect("target folder");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build --workspace)",
        bin.display()
    );
    bin
}

/// A bucket name no other test uses.
pub fn unique_bucket(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{label}-{}-{}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos & 0xffff
    )
}

/// `refgen` in a clean environment: no inherited cloud settings, an empty HOME, and
/// instance metadata disabled or on a closed loopback port (so no credential chain
/// ever leaves the machine).
pub struct Refgen {
    cmd: Command,
    home: tempfile::TempDir,
}

impl Refgen {
    /// A command with the given arguments.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let home = tempfile::tempdir().expect("temp home");
        let mut cmd = Command::new(refgen_bin());
        cmd.env_clear()
            .env("HOME", home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // Google's credential chain ends at the metadata server: a closed loopback port.
            .env("GCE_METADATA_HOST", "127.0.0.1:1")
            .args(args)
            .stdin(Stdio::null());
        Refgen { cmd, home }
    }

    /// The local GCS emulator through `STORAGE_EMULATOR_HOST`.
    pub fn gcs_emulator(self) -> Self {
        self.env("STORAGE_EMULATOR_HOST", gcs_endpoint())
            .env("GCE_METADATA_HOST", "127.0.0.1:1")
    }

    /// Admin credentials and the local endpoint, through the standard env vars.
    pub fn s3_admin(self, env: &S3Env) -> Self {
        self.s3_credentials(&env.access_key, &env.secret_key)
            .env("AWS_ENDPOINT_URL", &env.endpoint)
    }

    /// The server's admin credentials, reached at `endpoint` (a proxy or a TLS
    /// front in front of it), in us-east-1.
    pub fn s3_admin_via(self, env: &S3Env, endpoint: &str) -> Self {
        self.s3_credentials(&env.access_key, &env.secret_key)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", "us-east-1")
    }

    /// These credentials through `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub fn s3_credentials(self, access_key: &str, secret_key: &str) -> Self {
        self.env("AWS_ACCESS_KEY_ID", access_key)
            .env("AWS_SECRET_ACCESS_KEY", secret_key)
    }

    /// Sets one environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// The environment the command runs in (for running it through a shell or a
    /// pseudo-terminal instead).
    pub fn envs(&self) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        self.cmd
            .get_envs()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
            .collect()
    }

    /// Adds `-q`.
    pub fn arg_quiet(mut self) -> Self {
        self.cmd.arg("-q");
        self
    }

    /// The command's private HOME (`~/.aws/` there holds its profile files).
    pub fn home(&self) -> PathBuf {
        self.home.path().to_path_buf()
    }

    /// Runs to completion.
    pub fn run(mut self) -> Run {
        let Output { status, stdout, stderr } = self.cmd.output().expect("refgen runs");
        Run {
            success: status.success(),
            code: status.code(),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Runs to completion under `sh -c "SETUP && exec refgen …"`, with the same
    /// environment (for limits such as `ulimit -f`).
    pub fn run_after(self, setup: &str) -> Run {
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(format!("{setup} && exec \"$@\""))
            .arg("sh")
            .arg(self.cmd.get_program())
            .args(self.cmd.get_args())
            .env_clear()
            .envs(self.cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .stdin(Stdio::null());
        let Output { status, stdout, stderr } = shell.output().expect("sh runs");
        drop(self.home);
        Run {
            success: status.success(),
            code: status.code(),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Runs to completion under a pseudo-terminal (`script`), with the same
    /// environment: whether it succeeded, and everything the terminal showed.
    pub fn run_in_terminal(self) -> (bool, String) {
        let line: Vec<String> = std::iter::once(self.cmd.get_program())
            .chain(self.cmd.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', r"'\''")))
            .collect();
        let output = Command::new("script")
            .args(["-q", "-e", "-c", &line.join(" ")])
            .arg(self.home.path().join("typescript"))
            .env_clear()
            .envs(self.envs())
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .output()
            .expect("script runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }

    /// The underlying command, for streaming tests.
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }
}

/// The outcome of one run.
#[derive(Debug)]
pub struct Run {
    /// Exit status was 0.
    pub success: bool,
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Run {
    /// Panics with the stderr when the run failed.
    pub fn assert_ok(self) -> Self {
        assert!(self.success, "refgen failed ({:?}): {}", self.code, self.stderr);
        self
    }

    /// Panics with the stderr when it does not hold `needle`.
    pub fn assert_stderr_has(self, needle: &str) -> Self {
        assert!(self.stderr.contains(needle), "no {needle:?} in: {}", self.stderr);
        self
    }
}

/// Parses a references file strictly: every line one JSON object with exactly
/// `name` and `url`, no blank lines.
pub fn parse_references(bytes: &[u8]) -> Vec<ReferenceLine> {
    let text = std::str::from_utf8(bytes).expect("references are UTF-8");
    if text.is_empty() {
        return Vec::new();
    }
    assert!(text.ends_with('\n'), "the file ends with a newline");
    text.trim_end_matches('\n')
        .split('\n')
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let fields: BTreeSet<&str> = value.as_object().expect("object").keys().map(String::as_str).collect();
            assert_eq!(fields, BTreeSet::from(["name", "url"]), "{line}");
            serde_json::from_value(value).expect("name and url are strings")
        })
        .collect()
}

/// GET with a plain HTTP client that sends the URL's path exactly as written.
pub fn http_get(url: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = agent.get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().expect("read body");
    (status, body)
}

/// A request with a body, returning status and body.
pub fn http_send(method: &str, url: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .expect("request");
    let mut response = agent.run(request).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_vec().expect("read body"))
}

/// The URL of blob `key` in `container` at an Azure `endpoint`, with `sas`.
pub fn azure_blob_url(endpoint: &str, container: &str, key: &str, sas: &str) -> String {
    let path = refgen_azure::signer::encode_blob_path(key);
    format!("{endpoint}/{container}/{path}?{sas}")
}

/// Puts a block blob at `url` (which carries its SAS): the answer's status and text.
pub fn azure_put_blob(url: &str, body: Vec<u8>) -> (u16, String) {
    azure_put_blob_with_metadata(url, body, &[])
}

/// [`azure_put_blob`] with user metadata (`x-ms-meta-NAME: VALUE`).
pub fn azure_put_blob_with_metadata(url: &str, body: Vec<u8>, metadata: &[(&str, &str)]) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = ureq::http::Request::builder()
        .method("PUT")
        .uri(url)
        .header("x-ms-blob-type", "BlockBlob");
    for (name, value) in metadata {
        request = request.header(format!("x-ms-meta-{name}"), *value);
    }
    let request = request.body(body).expect("request");
    let mut response = agent.run(request).unwrap_or_else(|e| panic!("PUT {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap_or_default())
}

/// An SDK client on the local server as admin, for fixtures.
pub fn admin_client(env: &S3Env) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(&env.endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            &env.access_key,
            &env.secret_key,
            None,
            None,
            "refgen-tests",
        ))
        .force_path_style(true)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Creates a bucket (idempotent).
pub async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) {
    if let Err(e) = client.create_bucket().bucket(bucket).send().await {
        let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e)
            .unwrap_or_default()
            .to_owned();
        assert!(code.starts_with("BucketAlready"), "create bucket {bucket}: {e:?}");
    }
}

/// Turns versioning on for a bucket (every overwrite keeps the version before).
pub async fn enable_versioning(client: &aws_sdk_s3::Client, bucket: &str) {
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning on");
}

/// Uploads objects, 16 at a time; returns the keys the server accepted.
pub async fn put_objects(client: &aws_sdk_s3::Client, bucket: &str, objects: Vec<(String, Vec<u8>)>) -> Vec<String> {
    put_objects_with(client, bucket, objects, 16).await
}

/// [`put_objects`], `concurrency` at a time.
pub async fn put_objects_with(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    objects: Vec<(String, Vec<u8>)>,
    concurrency: usize,
) -> Vec<String> {
    futures::stream::iter(objects)
        .map(|(key, body)| async move {
            let result = client
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(ByteStream::from(body))
                .send()
                .await;
            result.ok().map(|_| key)
        })
        .buffer_unordered(concurrency)
        .filter_map(|k| async move { k })
        .collect()
        .await
}

/// Every key in the bucket, as the SDK lists it.
pub async fn list_keys(client: &aws_sdk_s3::Client, bucket: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut pages = client.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.expect("list");
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
    }
    keys
}

/// `stderr` without the lines that say a request is being retried (`WARN …:
/// attempt N of M failed …`), which come before a failure's one line.
pub fn without_retry_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !(l.trim_start().starts_with("WARN") && l.contains(" failed (") && l.contains("; retrying")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Makes a character device `major:minor` at `path` (a null device is 1:3, a
/// full one 1:7), in a test's own folder, never the system's; false when this
/// machine does not allow it.
pub fn mknod(path: &Path, major: u32, minor: u32) -> bool {
    Command::new("mknod")
        .arg(path)
        .args(["c", &major.to_string(), &minor.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// The URL with one character of its signature changed.
pub fn tamper_signature(url: &str) -> String {
    for param in ["X-Amz-Signature=", "X-Goog-Signature=", "sig="] {
        if let Some(i) = url.find(param) {
            let at = i + param.len();
            let old = &url[at..at + 1];
            let new = if old == "a" { "b" } else { "a" };
            return format!("{}{new}{}", &url[..at], &url[at + 1..]);
        }
    }
    panic!("no signature in {url}");
}

/// The bytes a test stores under `key`: its own, so a fetched URL proves which
/// object it reached.
pub fn body_for(key: &str) -> Vec<u8> {
    format!("object body for {key:?}").into_bytes()
}

/// The local S3 server's settings, an admin client, and a new bucket named
/// after `label`.
pub async fn new_s3_bucket(label: &str) -> (S3Env, aws_sdk_s3::Client, String) {
    let env = s3_env();
    let client = admin_client(&env);
    let bucket = unique_bucket(label);
    create_bucket(&client, &bucket).await;
    (env, client, bucket)
}

/// What is wrong with a failed run that must end in one line: `error: …` holding
/// `needle` (the retry lines before it aside), nothing on stdout, no panic; none
/// when it did so.
pub fn not_one_error_line(what: &str, run: &Run, needle: &str) -> Option<String> {
    let stderr = without_retry_lines(&run.stderr);
    let stderr = stderr.trim_end();
    let ok = !run.success
        && stderr.lines().count() == 1
        && stderr.starts_with("error: ")
        && stderr.contains(needle)
        && !stderr.contains("panicked")
        && run.stdout.is_empty();
    (!ok).then(|| format!("{what}: code {:?}, stderr {stderr:?}", run.code))
}

/// The Python with pyarrow that scripts/test.sh installs; a test without it says so.
pub fn python() -> Option<String> {
    let found = std::env::var("REFGEN_TEST_PYTHON").ok();
    if found.is_none() {
        eprintln!("skipped: REFGEN_TEST_PYTHON is not set (scripts/test.sh installs pyarrow and sets it)");
    }
    found
}

/// The files of the report `spec` describes, written by scripts/inventory-fixture.py:
/// each object's key (relative to its bucket) and bytes.
pub fn fixture_files(spec: &serde_json::Value) -> Vec<(String, Vec<u8>)> {
    let python = python().expect("checked");
    let dir = tempfile::tempdir().expect("tempdir");
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).expect("spec");
    let out = dir.path().join("out");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/inventory-fixture.py");
    let status = std::process::Command::new(python)
        .arg(script)
        .arg(&spec_path)
        .arg(&out)
        .status()
        .expect("python runs");
    assert!(status.success(), "the fixture script failed");
    let mut objects = Vec::new();
    let mut stack = vec![out.clone()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("ls") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let key = path
                    .strip_prefix(&out)
                    .expect("under out")
                    .to_string_lossy()
                    .into_owned();
                objects.push((key, std::fs::read(&path).expect("read")));
            }
        }
    }
    objects
}

/// The JSON Lines of a command's output, each parsed (a line that is not JSON fails the test).
pub fn json_lines<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Vec<T> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
