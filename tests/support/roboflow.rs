//! A local stand-in for Roboflow's Data Staging and Batch Processing APIs.
//!
//! It implements the calls of `shared/roboflow-api.md` and checks every request
//! against that contract (method, path, `api_key`, query, body), recording any
//! departure as a violation. Ingest is real: it downloads the references file from
//! its signed URL (or takes the inline references) and GETs every referenced URL
//! from the storage server, keeping the bytes, so a submit test proves the URLs
//! work end to end. Faults can be queued: statuses to answer and connections to drop.
//!
//! The lifecycle calls (batches, files, parts, jobs, stages, tasks, abort,
//! restart, logs) page by a small page size of their own, whatever `pageSize`
//! asks, so paging is exercised. Where the contract leaves a shape open, the
//! stand-in makes a choice and says so: a shard's `statusMetadata` lists its
//! failed files as the files-status webhook does (`failed_files`), and an input
//! batch's `list` gives each file under its reference name.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::stub::{DROP_CONNECTION, Recorded, Reply, StubServer};

/// What the fake does for the next ingest request instead of answering normally.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status with `{"error": …}`.
    Status(u16),
    /// Close the connection without an answer.
    Drop,
}

/// Everything the fake saw and did.
#[derive(Debug, Default)]
pub struct State {
    /// Contract departures seen.
    pub violations: Vec<String>,
    /// Ingest requests accepted: (batch, ingest id, number of references, by URL?).
    pub ingests: Vec<(String, String, usize, bool)>,
    /// Bytes fetched per batch and reference name.
    pub ingested: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Faults to apply to the next ingest calls.
    pub ingest_faults: VecDeque<Fault>,
    /// Ingest attempts seen (including faulted ones).
    pub ingest_attempts: usize,
    /// When set, ingests are accepted but nothing is ever ingested.
    pub stall: bool,
    /// Jobs started: id → body.
    pub jobs: HashMap<String, Value>,
    /// Job status polls per job.
    pub job_polls: HashMap<String, usize>,
    seen_ingest_ids: HashSet<String>,
    /// Every request's method and path (no query).
    pub calls: Vec<String>,
    /// When set, a reference whose URL does not answer 200 is a failed file of its
    /// shard (as the service reports it), not a contract violation.
    pub tolerate_failed_references: bool,
    /// Batches made by ingests: id → (display name, kind, creation order).
    pub batches: BTreeMap<String, (String, String, usize)>,
    /// Reference names per batch, in the order they were taken (shards are made from it).
    pub taken: BTreeMap<String, Vec<String>>,
    /// Failed references per batch: name → (type, reason).
    pub failed: BTreeMap<String, BTreeMap<String, (String, String)>>,
    /// Batches with one more shard that failed as a whole, with this reason.
    pub broken_shards: BTreeMap<String, String>,
    /// Paths under /files/ that answer 500.
    pub file_faults: HashSet<String>,
    /// Downloads of each path under /files/.
    pub file_downloads: BTreeMap<String, usize>,
    /// Jobs aborted.
    pub aborted: Vec<String>,
    /// Jobs restarted, with the body sent (none when empty).
    pub restarts: Vec<(String, Option<Value>)>,
    /// Where download URLs point instead of the stand-in itself (a fault proxy in front of it).
    pub download_base: Option<String>,
    /// How long each download takes (for a progress display to show).
    pub download_delay: std::time::Duration,
    /// Batches made by local uploads: id → `simple-batch` (single images) or `sharded-batch`.
    pub batch_types: BTreeMap<String, String>,
    /// Signed upload URLs handed out and not yet used: token → what is to come.
    pub pending_uploads: HashMap<String, PendingUpload>,
    /// Every file received by local uploads, per batch: name → how many times.
    pub uploads_received: BTreeMap<String, BTreeMap<String, usize>>,
    /// Every archive received: (batch, member names, notification_config.json).
    pub archives: Vec<(String, Vec<String>, Option<Value>)>,
    /// Faults for the next signed-upload PUTs (statuses, or a dropped connection).
    pub put_faults: VecDeque<Fault>,
    /// How long each signed-upload PUT takes (for a test to interrupt a run midway).
    pub put_delay: std::time::Duration,
    /// `put_faults` apply from this PUT on (the ones before go through).
    pub put_faults_from: usize,
    /// Signed-upload PUTs seen.
    pub puts_seen: usize,
}

/// A signed upload URL handed out: where its PUT goes, and the headers it must carry.
#[derive(Debug, Clone)]
pub struct PendingUpload {
    /// The batch.
    pub batch: String,
    /// `tar` or the video's name.
    pub what: Option<String>,
    /// The extension headers handed out with the URL.
    pub headers: Vec<(String, String)>,
}

/// Images per archive the stand-in accepts (Roboflow's documented limit).
const ARCHIVE_MAX: usize = 500;

/// Items per page of a lifecycle listing, whatever `pageSize` asks.
const PAGE: usize = 2;

/// References per shard (the service's is 256: small here, so a batch has several).
const SHARD: usize = 3;

/// The files of a job's output batch: part → file names.
const OUTPUT_PARTS: [(&str, &[&str]); 2] = [
    ("results", &["results-0.jsonl", "results-1.jsonl", "results-2.jsonl"]),
    ("visualisations", &["vis-0.jpg"]),
];

/// The log entries every job has: (severity, payload).
const LOGS: [(&str, &str); 3] = [
    ("info", "job started"),
    ("warning", "2 images were resized"),
    ("error", "1 image could not be decoded"),
];

/// The running fake.
pub struct FakeRoboflow {
    server: StubServer,
    /// Shared state, for setting faults and reading results.
    pub state: Arc<Mutex<State>>,
}

const KEY: &str = "rf-test-key-0123456789";
const WORKSPACE: &str = "test-ws";

impl FakeRoboflow {
    /// Starts the fake on a loopback port.
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let base = Arc::new(Mutex::new(String::new()));
        let base_for_handler = Arc::clone(&base);
        let server = StubServer::start(move |req| handle(req, &shared, &base_for_handler.lock().expect("lock")));
        *base.lock().expect("lock") = format!("http://{}", server.addr);
        FakeRoboflow { server, state }
    }

    /// `API_BASE_URL` for refgen.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The API key the fake accepts.
    pub fn api_key(&self) -> &'static str {
        KEY
    }

    /// The workspace of that key.
    pub fn workspace(&self) -> &'static str {
        WORKSPACE
    }

    /// Every raw request (to check that the key never travels outside `api_key`).
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    /// Adds a job as if it had been started on `batch` (for the job commands).
    pub fn add_job(&self, job: &str, batch: &str) {
        self.state.lock().expect("lock").jobs.insert(
            job.to_owned(),
            json!({"type": "simple-image-processing-v1",
                "jobInput": {"type": "staging-batch-input-v1", "batchId": batch}}),
        );
    }

    /// What the batch holds now: name → bytes.
    pub fn ingested(&self, batch: &str) -> BTreeMap<String, Vec<u8>> {
        self.state
            .lock()
            .expect("lock")
            .ingested
            .get(batch)
            .cloned()
            .unwrap_or_default()
    }

    /// Fails the test with every contract departure seen, if any.
    pub fn assert_no_violations(&self) {
        let violations = self.state.lock().expect("lock").violations.clone();
        assert!(violations.is_empty(), "contract violations: {violations:?}");
    }

    /// Waits (bounded) until the batch holds `n` references, then returns them.
    pub fn wait_ingested(&self, batch: &str, n: usize) -> BTreeMap<String, Vec<u8>> {
        for _ in 0..200 {
            let got = self.ingested(batch);
            if got.len() >= n {
                return got;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.ingested(batch)
    }
}

fn json_reply(status: u16, v: Value) -> Reply {
    (
        status,
        vec![("content-type".into(), "application/json".into())],
        v.to_string().into_bytes(),
    )
}

fn error(status: u16, message: &str) -> Reply {
    json_reply(status, json!({"error": message}))
}

fn query_of(target: &str) -> BTreeMap<String, String> {
    target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let v = v.replace('+', " ");
            (
                k.to_owned(),
                percent_encoding::percent_decode_str(&v)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
        .collect()
}

/// One page of `items` under `field`, from the `nextPageToken` the query holds
/// (a number: the offset), `PAGE` at a time; checks that `pageSize` was sent.
fn paged(st: &mut State, what: &str, query: &BTreeMap<String, String>, field: &str, items: Vec<Value>) -> Reply {
    if !query
        .get("pageSize")
        .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0))
    {
        st.violations.push(format!("{what} without a valid pageSize"));
    }
    let start: usize = match query.get("nextPageToken") {
        None => 0,
        Some(t) => match t.strip_prefix("offset-").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                st.violations
                    .push(format!("{what}: nextPageToken {t} was not one the stand-in gave"));
                return error(400, "bad nextPageToken");
            }
        },
    };
    let end = (start + PAGE).min(items.len());
    let mut answer = json!({ field: items[start.min(end)..end].to_vec() });
    if end < items.len() {
        answer["nextPageToken"] = json!(format!("offset-{end}"));
    }
    json_reply(200, answer)
}

/// As [`paged`], with pages of 1, 2 and 3 items in turn (by offset), so a
/// reader cannot count on pages of one size.
fn paged_unevenly(
    st: &mut State,
    what: &str,
    query: &BTreeMap<String, String>,
    field: &str,
    items: Vec<Value>,
) -> Reply {
    let start: usize = query
        .get("nextPageToken")
        .and_then(|t| t.strip_prefix("offset-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if !query.contains_key("pageSize") {
        st.violations.push(format!("{what} without a pageSize"));
    }
    let end = (start + 1 + start % 3).min(items.len());
    let mut answer = json!({ field: items[start.min(end)..end].to_vec() });
    if end < items.len() {
        answer["nextPageToken"] = json!(format!("offset-{end}"));
    }
    json_reply(200, answer)
}

/// Files a local upload brought into `batch`: kept as ingested (so the count,
/// `list` and the shards see them) and counted per name.
fn receive(st: &mut State, batch: &str, kind: &str, display: Option<&String>, files: Vec<(String, Vec<u8>)>) {
    let order = st.batches.len();
    st.batches
        .entry(batch.to_owned())
        .or_insert_with(|| (display.cloned().unwrap_or_default(), kind.to_owned(), order));
    for (name, bytes) in files {
        *st.uploads_received
            .entry(batch.to_owned())
            .or_default()
            .entry(name.clone())
            .or_default() += 1;
        st.taken.entry(batch.to_owned()).or_default().push(name.clone());
        st.ingested.entry(batch.to_owned()).or_default().insert(name, bytes);
    }
}

/// A batch made one way takes no upload of the other (the contract's "Local files").
fn check_batch_type(st: &mut State, batch: &str, wanted: &str) -> Option<Reply> {
    match st.batch_types.get(batch) {
        Some(t) if t != wanted => {
            st.violations.push(format!("a {wanted} upload into {batch}, a {t}"));
            Some(error(400, "batch type mismatch"))
        }
        Some(_) => None,
        None if st.batches.contains_key(batch) && wanted == "simple-batch" => {
            st.violations
                .push(format!("a single upload into {batch}, made by references"));
            Some(error(400, "batch type mismatch"))
        }
        None => {
            st.batch_types.insert(batch.to_owned(), wanted.to_owned());
            None
        }
    }
}

/// `POST …/upload/image`: a multipart body of exactly one file part, named
/// (field and file name) as the `fileName` parameter says.
fn upload_image(st: &mut State, batch: &str, query: &BTreeMap<String, String>, req: &Recorded) -> Reply {
    let Some(name) = query.get("fileName").cloned() else {
        st.violations
            .push(format!("upload/image into {batch} without fileName"));
        return error(400, "fileName required");
    };
    let parsed = req
        .header("content-type")
        .and_then(|t| t.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_owned())
        .ok_or_else(|| "not multipart/form-data with a boundary".to_owned())
        .and_then(|boundary| one_part(&req.body, &boundary));
    let (field, file_name, bytes) = match parsed {
        Ok(part) => part,
        Err(why) => {
            st.violations.push(format!("upload/image {name}: {why}"));
            return error(400, "bad multipart body");
        }
    };
    if field != name || file_name != name {
        st.violations.push(format!(
            "upload/image {name}: the part is named {field:?} (file name {file_name:?})"
        ));
    }
    if let Some(reply) = check_batch_type(st, batch, "simple-batch") {
        return reply;
    }
    receive(st, batch, "image", query.get("displayName"), vec![(name, bytes)]);
    json_reply(200, json!({"status": "ok"}))
}

/// The one part of a multipart body: (field name, file name, bytes); HTML5's
/// escapes (`%22`, `%0D`, `%0A`) undone in the names.
fn one_part(body: &[u8], boundary: &str) -> Result<(String, String, Vec<u8>), String> {
    let open = format!("--{boundary}\r\n");
    let close = format!("\r\n--{boundary}--");
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    if !body.starts_with(open.as_bytes()) {
        return Err("the body does not start with the boundary".into());
    }
    let rest = &body[open.len()..];
    let head_end = find(rest, b"\r\n\r\n").ok_or("a part without headers")?;
    let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
    let data = &rest[head_end + 4..];
    let end = find(data, close.as_bytes()).ok_or("no closing boundary")?;
    if find(&data[..end], format!("\r\n--{boundary}\r\n").as_bytes()).is_some() {
        return Err("more than one part".into());
    }
    let unescape = |s: &str| s.replace("%22", "\"").replace("%0D", "\r").replace("%0A", "\n");
    let param = |key: &str| {
        let marker = format!("{key}=\"");
        head.find(&marker).and_then(|i| {
            let after = &head[i + marker.len()..];
            after.find('"').map(|j| unescape(&after[..j]))
        })
    };
    let field = param(" name").ok_or("no field name")?;
    let file_name = param("filename").ok_or("no file name")?;
    Ok((field, file_name, data[..end].to_vec()))
}

/// `POST …/upload/video` or `…/bulk-upload/image-files`: a signed URL on the
/// stand-in (or the proxy in front of it) and two extension headers to send with it.
fn signed_url(
    st: &mut State,
    batch: &str,
    query: &BTreeMap<String, String>,
    base: &str,
    video: bool,
    req: &Recorded,
) -> Reply {
    if !req.body.is_empty() {
        st.violations
            .push(format!("an upload URL request for {batch} with a body"));
    }
    let what = if video {
        let Some(name) = query.get("fileName").cloned() else {
            st.violations
                .push(format!("upload/video into {batch} without fileName"));
            return error(400, "fileName required");
        };
        Some(name)
    } else {
        if let Some(reply) = check_batch_type(st, batch, "sharded-batch") {
            return reply;
        }
        None
    };
    let token = format!(
        "u{}",
        st.pending_uploads.len() + st.archives.len() * 1000 + st.calls.len()
    );
    let headers = vec![
        ("x-goog-meta-ingest".to_owned(), format!("{batch}-{token}")),
        ("x-goog-content-length-range".to_owned(), "0,10737418240".to_owned()),
    ];
    let order = st.batches.len();
    st.batches.entry(batch.to_owned()).or_insert_with(|| {
        (
            query.get("displayName").cloned().unwrap_or_default(),
            if video { "video" } else { "image" }.to_owned(),
            order,
        )
    });
    st.pending_uploads.insert(
        token.clone(),
        PendingUpload {
            batch: batch.to_owned(),
            what,
            headers: headers.clone(),
        },
    );
    let extension: serde_json::Map<String, Value> = headers.into_iter().map(|(k, v)| (k, json!(v))).collect();
    json_reply(
        200,
        json!({"signedURLDetails": {"uploadURL": format!("{base}/signed-upload/{token}?X-Goog-Signature=s1g"),
            "extensionHeaders": extension}}),
    )
}

/// The PUT of a signed upload: its headers exactly as handed out, a length, no
/// API key; an archive must be a well-formed tar of unique names.
fn put_upload(st: &mut State, token: &str, query: &BTreeMap<String, String>, req: &Recorded) -> Reply {
    st.puts_seen += 1;
    let faulted = st.puts_seen > st.put_faults_from;
    if let Some(fault) = faulted.then(|| st.put_faults.pop_front()).flatten() {
        return match fault {
            Fault::Status(s) => error(s, &format!("injected {s}")),
            Fault::Drop => (DROP_CONNECTION, vec![], Vec::new()),
        };
    }
    let Some(pending) = st.pending_uploads.get(token).cloned() else {
        st.violations
            .push(format!("a PUT to an upload URL never handed out ({token})"));
        return error(403, "no such upload");
    };
    if req.method != "PUT" {
        st.violations.push(format!("{} to a signed upload URL", req.method));
    }
    if query.contains_key("api_key") || req.headers.iter().any(|(_, v)| v.contains(KEY)) {
        st.violations.push("a signed upload was sent the API key".to_owned());
    }
    for (name, value) in &pending.headers {
        if req.header(name) != Some(value.as_str()) {
            st.violations.push(format!("the PUT lacks the header {name}: {value}"));
        }
    }
    if req.header("content-length").is_none() {
        st.violations.push("a PUT without Content-Length".to_owned());
    }
    match &pending.what {
        Some(video) => {
            receive(
                st,
                &pending.batch,
                "video",
                None,
                vec![(video.clone(), req.body.clone())],
            );
        }
        None => {
            let mut archive = tar::Archive::new(req.body.as_slice());
            let mut files = Vec::new();
            let mut config = None;
            let entries = match archive.entries() {
                Ok(entries) => entries,
                Err(e) => {
                    st.violations.push(format!("an archive that is not a tar: {e}"));
                    return error(400, "not a tar");
                }
            };
            for entry in entries {
                let mut entry = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        st.violations.push(format!("a broken tar member: {e}"));
                        return error(400, "broken tar");
                    }
                };
                let name = entry
                    .path()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut bytes = Vec::new();
                if let Err(e) = std::io::Read::read_to_end(&mut entry, &mut bytes) {
                    st.violations.push(format!("a tar member that cannot be read: {e}"));
                    return error(400, "broken tar");
                }
                if name == "notification_config.json" {
                    config = serde_json::from_slice::<Value>(&bytes).ok();
                    if config.is_none() {
                        st.violations.push("notification_config.json is not JSON".to_owned());
                    }
                } else {
                    files.push((name, bytes));
                }
            }
            let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
            let unique: HashSet<&String> = names.iter().collect();
            if unique.len() != names.len() {
                st.violations
                    .push(format!("an archive with repeated member names: {names:?}"));
            }
            if names.is_empty() || names.len() > ARCHIVE_MAX {
                st.violations.push(format!("an archive of {} images", names.len()));
            }
            st.archives.push((pending.batch.clone(), names, config));
            receive(st, &pending.batch, "image", None, files);
        }
    }
    (200, vec![], Vec::new())
}

fn batch_json(id: &str, name: &str, batch_type: &str, content: &str) -> Value {
    json!({"batchId": id, "displayName": name, "batchType": batch_type, "batchContentType": content,
        "createdDate": "2026-11-28T00:00:00Z", "expiryDate": "2026-12-05T00:00:00Z"})
}

/// The batch `id` as the service describes it: one made by ingests, or a job's output.
fn batch_of(st: &State, id: &str) -> Option<Value> {
    if let Some((name, kind, _)) = st.batches.get(id) {
        let batch_type = st.batch_types.get(id).map_or("sharded-batch", String::as_str);
        return Some(batch_json(id, name, batch_type, kind));
    }
    let job = id.strip_prefix("out-")?;
    st.jobs
        .contains_key(job)
        .then(|| batch_json(id, id, "multipart-batch", "mixed"))
}

/// The shards of an ingested batch: its references `SHARD` at a time, with their
/// failed files, and a broken shard when one is set.
fn shards_of(st: &State, batch: &str) -> Vec<Value> {
    let names = st.taken.get(batch).cloned().unwrap_or_default();
    let failed = st.failed.get(batch).cloned().unwrap_or_default();
    let mut shards: Vec<Value> = names
        .chunks(SHARD)
        .enumerate()
        .map(|(i, chunk)| {
            let failed_files: Vec<Value> = chunk
                .iter()
                .filter_map(|n| {
                    failed
                        .get(n)
                        .map(|(t, r)| json!({"type": t, "file_name": n, "reason": r}))
                })
                .collect();
            let mut shard = json!({"shardId": format!("{batch}-{i}"), "statusName": "processed",
                "statusType": "info", "eventTimestamp": "2026-11-28T00:00:00Z",
                "shardObjectsCount": chunk.len() - failed_files.len()});
            if !failed_files.is_empty() {
                shard["statusName"] = json!("processed-with-failures");
                shard["statusType"] = json!("warning");
                shard["statusMetadata"] = json!({"failed_files": failed_files});
            }
            shard
        })
        .collect();
    if let Some(reason) = st.broken_shards.get(batch) {
        shards.push(
            json!({"shardId": format!("{batch}-broken"), "statusName": "ingest-failed",
            "statusType": "error", "eventTimestamp": "2026-11-28T00:00:00Z", "shardObjectsCount": 0,
            "statusMetadata": {"reason": reason}}),
        );
    }
    shards
}

fn job_json(st: &State, job: &str, done: bool) -> Value {
    let aborted = st.aborted.iter().any(|a| a == job);
    json!({"jobId": job, "name": job, "currentStage": if done { "export" } else { "processing" },
        "plannedStages": ["processing", "export"], "error": aborted, "isTerminal": done || aborted,
        "lastNotification": null, "createdAt": "2026-11-28T00:00:00Z", "lastUpdate": "2026-11-28T00:00:00Z"})
}

/// Checks a restart body against `parameters-override-v1`.
fn check_restart(body: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let Some(fields) = body.as_object() else {
        return vec![format!("restart body {body} is not an object")];
    };
    if body["type"] != "parameters-override-v1" {
        bad.push(format!("restart type {}", body["type"]));
    }
    for key in fields.keys() {
        if ![
            "type",
            "computeConfiguration",
            "maxParallelTasks",
            "processingTimeoutSeconds",
            "maxImageFailureRate",
        ]
        .contains(&key.as_str())
        {
            bad.push(format!("restart field {key}"));
        }
    }
    if fields.len() == 1 {
        bad.push("a restart body that overrides nothing (it must then be left out)".into());
    }
    if let Some(compute) = fields.get("computeConfiguration") {
        if compute["type"] != "compute-configuration-v2" {
            bad.push(format!("restart computeConfiguration {compute}"));
        }
        for key in compute
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_else(Vec::new)
        {
            if !["type", "machineType", "workersPerMachine"].contains(&key.as_str()) {
                bad.push(format!("restart computeConfiguration field {key}"));
            }
        }
        if let Some(m) = compute.get("machineType")
            && !matches!(m.as_str(), Some("cpu" | "gpu"))
        {
            bad.push(format!("machineType {m}"));
        }
    }
    bad
}

fn valid_id(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn handle(req: &Recorded, state: &Arc<Mutex<State>>, base: &str) -> Reply {
    let path = req.target.split('?').next().unwrap_or_default().to_owned();
    let query = query_of(&req.target);
    let mut st = state.lock().expect("lock");
    st.calls.push(format!("{} {path}", req.method));
    if path.starts_with("/files/") {
        *st.file_downloads.entry(path.clone()).or_default() += 1;
        if query.contains_key("api_key") {
            st.violations
                .push(format!("{path}: a download URL was sent the API key"));
        }
        if st.file_faults.contains(&path) {
            return error(500, "injected");
        }
        let delay = st.download_delay;
        if !delay.is_zero() {
            drop(st);
            std::thread::sleep(delay);
        }
        return (200, vec![], format!("results for {path}\n").into_bytes());
    }
    if let Some(token) = path.strip_prefix("/signed-upload/") {
        let delay = st.put_delay;
        if !delay.is_zero() {
            // Without the lock: other requests go on meanwhile.
            drop(st);
            std::thread::sleep(delay);
            st = state.lock().expect("lock");
        }
        return put_upload(&mut st, token, &query, req);
    }
    if req.headers.iter().any(|(k, v)| k == "authorization" || v.contains(KEY)) {
        st.violations
            .push(format!("{path}: the API key travelled outside the api_key parameter"));
    }
    match query.get("api_key").map(String::as_str) {
        Some(KEY) => {}
        Some(_) => return error(401, "Unauthorized: invalid API key"),
        None => {
            st.violations
                .push(format!("{} {path}: no api_key parameter", req.method));
            return error(401, "Unauthorized");
        }
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let ("POST", ["data-staging", "v1", "external", ws, "batches", batch, rest @ ..]) =
        (req.method.as_str(), segments.as_slice())
        && matches!(
            rest,
            ["upload", "image"] | ["upload", "video"] | ["bulk-upload", "image-files"]
        )
    {
        if *ws != WORKSPACE {
            st.violations.push(format!("upload into workspace {ws}"));
        }
        if !valid_id(batch, 64) {
            st.violations
                .push(format!("upload into batch {batch}: the id breaks the rules"));
        }
        if !query.contains_key("displayName") {
            st.violations.push(format!("upload into {batch} without displayName"));
        }
        let base = st.download_base.clone().unwrap_or_else(|| base.to_owned());
        return match rest {
            ["upload", "image"] => upload_image(&mut st, batch, &query, req),
            ["upload", "video"] => signed_url(&mut st, batch, &query, &base, true, req),
            _ => signed_url(&mut st, batch, &query, &base, false, req),
        };
    }
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", [""]) => json_reply(200, json!({"workspace": WORKSPACE})),
        (
            "POST",
            [
                "data-staging",
                "v1",
                "external",
                ws,
                "batches",
                batch,
                "bulk-upload",
                kind,
            ],
        ) => {
            st.ingest_attempts += 1;
            if let Some(fault) = st.ingest_faults.pop_front() {
                return match fault {
                    Fault::Status(s) => error(s, &format!("injected {s}")),
                    Fault::Drop => (DROP_CONNECTION, vec![], Vec::new()),
                };
            }
            ingest(&mut st, state, ws, batch, kind, &query, &req.body)
        }
        ("GET", ["data-staging", "v1", "external", ws, "batches"]) => {
            if *ws != WORKSPACE {
                st.violations.push(format!("batches of workspace {ws}"));
            }
            let mut ids: Vec<(usize, String)> = st.batches.iter().map(|(id, (_, _, n))| (*n, id.clone())).collect();
            ids.sort_by(|a, b| b.cmp(a));
            let items = ids.iter().filter_map(|(_, id)| batch_of(&st, id)).collect();
            paged(&mut st, "batches", &query, "batches", items)
        }
        ("GET", ["data-staging", "v1", "external", _, "batches", batch]) => match batch_of(&st, batch) {
            Some(b) => json_reply(200, json!({"batch": b})),
            None => error(404, "batch not found"),
        },
        ("GET", ["data-staging", "v1", "external", _, "batches", batch, "count"]) => {
            let count = match batch.strip_prefix("out-") {
                Some(_) if batch_of(&st, batch).is_some() => OUTPUT_PARTS.iter().map(|(_, f)| f.len()).sum(),
                _ => st.ingested.get(*batch).map_or(0, BTreeMap::len),
            };
            json_reply(200, json!({ "count": count }))
        }
        ("GET", ["data-staging", "v1", "external", _, "batches", batch, "shards"]) => {
            let shards = shards_of(&st, batch);
            paged(&mut st, "shards", &query, "shards", shards)
        }
        ("GET", ["data-staging", "v1", "external", _, "batches", batch, "parts"]) => match batch_of(&st, batch) {
            Some(b) if b["batchType"] == "multipart-batch" => json_reply(
                200,
                json!({"batchParts": OUTPUT_PARTS.iter().map(|(name, _)| json!({"partName": name,
                    "partType": "shards", "contentType": "application/octet-stream"})).collect::<Vec<_>>()}),
            ),
            Some(_) => {
                st.violations
                    .push(format!("parts of {batch}, which is not a multipart batch"));
                error(400, "not a multipart batch")
            }
            None => error(404, "batch not found"),
        },
        ("GET", ["data-staging", "v1", "external", _, "batches", batch, "list"]) => {
            let Some(described) = batch_of(&st, batch) else {
                return error(404, "batch not found");
            };
            let part = query.get("partName").cloned();
            let base = st.download_base.clone().unwrap_or_else(|| base.to_owned());
            let files: Vec<Value> = if described["batchType"] == "multipart-batch" {
                let Some((name, files)) = OUTPUT_PARTS.iter().find(|(n, _)| Some(*n) == part.as_deref()) else {
                    st.violations
                        .push(format!("list of multipart {batch} without one of its partName"));
                    return error(400, "partName required");
                };
                files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        json!({"downloadURL": format!("{base}/files/{batch}/{name}/{f}"), "fileName": f,
                        "partName": name, "shardId": format!("shard-{i}"), "contentType": "application/octet-stream"})
                    })
                    .collect()
            } else {
                if let Some(p) = part {
                    st.violations
                        .push(format!("list of {batch} with partName {p}, but it has no parts"));
                }
                st.ingested
                    .get(*batch)
                    .map(|m| {
                        m.keys()
                            .map(|n| {
                                json!({"downloadURL": format!("{base}/files/{batch}/input/{n}"),
                                "fileName": n, "contentType": "image/jpeg"})
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            paged_unevenly(&mut st, "list", &query, "filesMetadata", files)
        }
        ("POST", ["batch-processing", "v1", "external", ws, "jobs", job]) => start_job(&mut st, ws, job, &req.body),
        ("GET", ["batch-processing", "v1", "external", _, "jobs"]) => {
            let mut ids: Vec<String> = st.jobs.keys().cloned().collect();
            ids.sort();
            let items = ids.iter().map(|j| job_json(&st, j, false)).collect();
            paged(&mut st, "jobs", &query, "jobs", items)
        }
        ("GET", ["batch-processing", "v1", "external", _, "jobs", job]) => {
            if !st.jobs.contains_key(*job) {
                return error(404, "job not found");
            }
            let polls = st.job_polls.entry((*job).to_owned()).or_default();
            *polls += 1;
            let done = *polls >= 2;
            json_reply(200, json!({"job": job_json(&st, job, done)}))
        }
        ("GET", ["batch-processing", "v1", "external", _, "jobs", job, "stages"]) => {
            if !st.jobs.contains_key(*job) {
                return error(404, "job not found");
            }
            json_reply(
                200,
                json!({"stages": [
                    {"processingStageId": "s1", "processingStageName": "processing", "tasksNumber": 3, "outputBatches": [], "statusType": "info"},
                    {"processingStageId": "s2", "processingStageName": "export", "tasksNumber": 1, "outputBatches": [format!("out-{job}")], "statusType": "info"}
                ]}),
            )
        }
        (
            "GET",
            [
                "batch-processing",
                "v1",
                "external",
                _,
                "jobs",
                job,
                "stages",
                stage,
                "tasks",
            ],
        ) => {
            if !st.jobs.contains_key(*job) || !matches!(*stage, "s1" | "s2") {
                return error(404, "stage not found");
            }
            let statuses: &[&str] = if *stage == "s1" {
                &["info", "info", "error"]
            } else {
                &["info"]
            };
            let items = statuses
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    json!({"taskId": format!("{stage}-t{i}"), "notification": {}, "statusType": s,
                    "progress": 1.0, "eventTimestamp": "2026-11-28T00:00:00Z"})
                })
                .collect();
            paged(&mut st, "tasks", &query, "tasks", items)
        }
        ("POST", ["batch-processing", "v1", "external", _, "jobs", job, "abort"]) => {
            if !req.body.is_empty() {
                st.violations.push(format!("abort of {job} with a body"));
            }
            if !st.jobs.contains_key(*job) {
                return error(404, "job not found");
            }
            st.aborted.push((*job).to_owned());
            json_reply(200, json!({}))
        }
        ("POST", ["batch-processing", "v1", "external", _, "jobs", job, "restart"]) => {
            if !st.jobs.contains_key(*job) {
                return error(404, "job not found");
            }
            let body = if req.body.is_empty() {
                None
            } else {
                match serde_json::from_slice::<Value>(&req.body) {
                    Ok(v) => {
                        let bad = check_restart(&v);
                        st.violations.extend(bad);
                        Some(v)
                    }
                    Err(_) => {
                        st.violations.push(format!("restart of {job}: body is not JSON"));
                        return error(400, "bad body");
                    }
                }
            };
            st.restarts.push(((*job).to_owned(), body));
            json_reply(200, json!({}))
        }
        ("GET", ["batch-processing", "v1", "external", _, "jobs", job, "logs"]) => {
            if !st.jobs.contains_key(*job) {
                return error(404, "job not found");
            }
            let floor = match query.get("severity").map(String::as_str) {
                None | Some("info") => 0,
                Some("warning") => 1,
                Some("error") => 2,
                Some(other) => {
                    st.violations.push(format!("logs severity {other}"));
                    return error(400, "bad severity");
                }
            };
            let items = LOGS
                .iter()
                .enumerate()
                .filter(|(i, _)| *i >= floor)
                .map(|(i, (severity, payload))| {
                    json!({"createdAt": format!("2026-11-28T00:00:0{i}Z"),
                    "processingStageId": "s1", "severity": severity, "reportingModule": "worker",
                    "logType": "message", "payload": {"message": payload}})
                })
                .collect();
            paged(&mut st, "logs", &query, "logs", items)
        }
        _ => {
            st.violations.push(format!("unexpected call {} {path}", req.method));
            error(404, "no such endpoint")
        }
    }
}

fn ingest(
    st: &mut State,
    state: &Arc<Mutex<State>>,
    ws: &str,
    batch: &str,
    kind: &str,
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> Reply {
    let mut bad = |why: String| st.violations.push(format!("ingest {batch}: {why}"));
    if ws != WORKSPACE {
        bad(format!("workspace {ws}"));
    }
    if !valid_id(batch, 64) {
        bad("batch id breaks the rules".into());
    }
    let (prefix, limit) = match kind {
        "image-references" => ("image", 20_000),
        "video-references" => ("video", 5_000),
        other => {
            bad(format!("kind {other}"));
            return error(404, "no such endpoint");
        }
    };
    if !query.contains_key("displayName") {
        bad("no displayName".into());
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        bad("body is not a JSON object".into());
        return error(400, "bad body");
    };
    let (url_field, inline_field) = (format!("{prefix}ReferencesURL"), format!("{prefix}References"));
    for key in body.keys() {
        if ![
            url_field.as_str(),
            inline_field.as_str(),
            "ingestId",
            "notificationsURL",
            "notificationCategories",
        ]
        .contains(&key.as_str())
        {
            bad(format!("unknown field {key}"));
        }
    }
    if body.contains_key(&url_field) == body.contains_key(&inline_field) {
        bad("needs exactly one of the URL and inline forms".into());
    }
    if let Some(cats) = body.get("notificationCategories") {
        let ok = cats.as_array().is_some_and(|a| {
            a.iter()
                .all(|c| matches!(c.as_str(), Some("ingest-status" | "files-status")))
        });
        if !ok {
            bad(format!("notificationCategories {cats}"));
        }
    }
    let Some(ingest_id) = body.get("ingestId").and_then(Value::as_str).map(str::to_owned) else {
        bad("no ingestId".into());
        return error(400, "no ingestId");
    };
    if !st.seen_ingest_ids.insert(ingest_id.clone()) {
        return json_reply(200, json!({"ingestId": ingest_id, "duplicated": true}));
    }
    let inline: Option<Vec<(String, String)>> = body.get(&inline_field).map(|refs| {
        refs.as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        (
                            r["name"].as_str().unwrap_or_default().to_owned(),
                            r["url"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    if let Some(refs) = &inline
        && refs.len() > limit
    {
        bad(format!("{} inline references, more than {limit}", refs.len()));
    }
    let url = body.get(&url_field).and_then(Value::as_str).map(str::to_owned);
    let order = st.batches.len();
    st.batches.entry(batch.to_owned()).or_insert_with(|| {
        (
            query.get("displayName").cloned().unwrap_or_default(),
            prefix.to_owned(),
            order,
        )
    });
    st.ingests.push((
        batch.to_owned(),
        ingest_id.clone(),
        inline.as_ref().map_or(0, Vec::len),
        url.is_some(),
    ));
    if st.stall {
        return json_reply(200, json!({"ingestId": ingest_id, "shardIds": [format!("{batch}-0")]}));
    }
    // Ingest in the background, as the real service does: fetch, then every reference.
    let (state, owned_batch) = (Arc::clone(state), batch.to_owned());
    std::thread::spawn(move || {
        let batch = owned_batch;
        let refs = match (inline, url) {
            (Some(refs), _) => refs,
            (None, Some(url)) => {
                let (status, body) = crate::http_get(&url);
                if status != 200 {
                    state
                        .lock()
                        .expect("lock")
                        .violations
                        .push(format!("references URL answered {status}"));
                    return;
                }
                String::from_utf8_lossy(&body)
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .map(|v| {
                        (
                            v["name"].as_str().unwrap_or_default().to_owned(),
                            v["url"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            }
            (None, None) => return,
        };
        for (name, url) in refs {
            let (status, bytes) = crate::http_get(&url);
            let mut st = state.lock().expect("lock");
            st.taken.entry(batch.clone()).or_default().push(name.clone());
            if status == 200 {
                st.ingested.entry(batch.clone()).or_default().insert(name, bytes);
            } else if st.tolerate_failed_references {
                st.failed.entry(batch.clone()).or_default().insert(
                    name,
                    (
                        "download-error".to_owned(),
                        format!("Could not download the file (HTTP {status})"),
                    ),
                );
            } else {
                st.violations.push(format!("reference {name} answered {status}"));
            }
        }
    });
    json_reply(200, json!({"ingestId": ingest_id, "shardIds": [format!("{batch}-0")]}))
}

fn start_job(st: &mut State, ws: &str, job: &str, body: &[u8]) -> Reply {
    let mut bad = |why: String| st.violations.push(format!("job {job}: {why}"));
    if !valid_id(job, 20) {
        bad("job id breaks the rules".into());
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        bad("body is not JSON".into());
        return error(400, "bad body");
    };
    let kind = body["type"].as_str().unwrap_or_default();
    if !matches!(kind, "simple-image-processing-v1" | "simple-video-processing-v1") {
        bad(format!("type {kind}"));
    }
    if body["jobInput"]["type"] != "staging-batch-input-v1" || !body["jobInput"]["batchId"].is_string() {
        bad(format!("jobInput {}", body["jobInput"]));
    }
    if body["computeConfiguration"]["type"] != "compute-configuration-v2" {
        bad("computeConfiguration.type".into());
    }
    let spec = &body["processingSpecification"];
    if spec["type"] != "workflows-processing-specification-v1"
        || spec["workspace"] != ws
        || !spec["workflowId"].is_string()
        || !spec["persistImagesOutputs"].is_boolean()
    {
        bad(format!("processingSpecification {spec}"));
    }
    // Every field the contract names ("Every job option"), and no other.
    let allowed: [(&Value, &[&str]); 4] = [
        (
            &body,
            &[
                "type",
                "jobInput",
                "computeConfiguration",
                "processingSpecification",
                "processingTimeoutSeconds",
                "maxParallelTasks",
                "maxImageFailureRate",
                "notificationsURL",
                "inferenceBackend",
            ],
        ),
        (
            &body["jobInput"],
            &["type", "batchId", "partName", "imagesMetadataPart"],
        ),
        (
            &body["computeConfiguration"],
            &["type", "machineType", "workersPerMachine"],
        ),
        (
            spec,
            &[
                "type",
                "workspace",
                "workflowId",
                "workflowParameters",
                "imageInputName",
                "persistImagesOutputs",
                "imagesOutputsToBePersisted",
                "aggregationFormat",
                "maxVideoFPS",
                "imagesMetadataInputsMapping",
            ],
        ),
    ];
    for (object, names) in allowed {
        for key in object
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_else(Vec::new)
        {
            if !names.contains(&key.as_str()) {
                bad(format!("unknown field {key}"));
            }
        }
    }
    if let Some(b) = body.get("inferenceBackend")
        && !matches!(b.as_str(), Some("old-inference" | "inference-models"))
    {
        bad(format!("inferenceBackend {b}"));
    }
    if let Some(m) = spec.get("imagesMetadataInputsMapping")
        && !m.as_object().is_some_and(|o| o.values().all(Value::is_string))
    {
        bad(format!("imagesMetadataInputsMapping {m}"));
    }
    if let Some(names) = spec.get("imagesOutputsToBePersisted")
        && !names.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    {
        bad(format!("imagesOutputsToBePersisted {names}"));
    }
    match st.jobs.get(job) {
        Some(existing) if *existing != body => error(409, "job id already used with a different definition"),
        _ => {
            st.jobs.insert(job.to_owned(), body);
            json_reply(200, json!({}))
        }
    }
}
