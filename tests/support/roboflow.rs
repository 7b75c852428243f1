//! A local stand-in for Roboflow's Data Staging and Batch Processing APIs.
//!
//! It implements the calls of `shared/roboflow-api.md` and checks every request
//! against that contract (method, path, `api_key`, query, body), recording any
//! departure as a violation. Ingest is real: it downloads the references file from
//! its signed URL (or takes the inline references) and GETs every referenced URL
//! from the storage server, keeping the bytes, so a submit test proves the URLs
//! work end to end. Faults can be queued: statuses to answer and connections to drop.

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
}

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

    /// Waits (bounded) until the batch holds `n` references, then returns them.
    pub fn wait_ingested(&self, batch: &str, n: usize) -> BTreeMap<String, Vec<u8>> {
        for _ in 0..200 {
            let got = self
                .state
                .lock()
                .expect("lock")
                .ingested
                .get(batch)
                .cloned()
                .unwrap_or_default();
            if got.len() >= n {
                return got;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.state
            .lock()
            .expect("lock")
            .ingested
            .get(batch)
            .cloned()
            .unwrap_or_default()
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
        return (200, vec![], format!("results for {path}\n").into_bytes());
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
        ("GET", ["data-staging", "v1", "external", _, "batches", batch, "count"]) => {
            json_reply(200, json!({"count": st.ingested.get(*batch).map_or(0, BTreeMap::len)}))
        }
        ("GET", ["data-staging", "v1", "external", _, "batches", batch, "shards"]) => {
            if !query.contains_key("pageSize") {
                st.violations.push("shards without pageSize".into());
            }
            let n = st.ingested.get(*batch).map_or(0, BTreeMap::len);
            json_reply(
                200,
                json!({"shards": [{"shardId": format!("{batch}-0"), "statusName": "processed", "statusType": "info", "eventTimestamp": "2026-11-28T00:00:00Z", "shardObjectsCount": n}]}),
            )
        }
        ("GET", ["data-staging", "v1", "external", _, "batches", batch, "parts"]) => json_reply(
            200,
            json!({"batchParts": [{"partName": "results", "partType": "shards", "contentType": "application/jsonl"}], "batch": batch}),
        ),
        ("GET", ["data-staging", "v1", "external", _, "batches", batch, "list"]) => {
            if query.get("partName").map(String::as_str) != Some("results") {
                st.violations.push(format!("list of {batch} without partName=results"));
            }
            json_reply(
                200,
                json!({"filesMetadata": [{"downloadURL": format!("{base}/files/{batch}-results.jsonl"), "fileName": "results.jsonl", "partName": "results", "contentType": "application/jsonl"}]}),
            )
        }
        ("POST", ["batch-processing", "v1", "external", ws, "jobs", job]) => start_job(&mut st, ws, job, &req.body),
        ("GET", ["batch-processing", "v1", "external", _, "jobs", job]) => {
            if !st.jobs.contains_key(*job) {
                return error(404, "job not found");
            }
            let polls = st.job_polls.entry((*job).to_owned()).or_default();
            *polls += 1;
            let done = *polls >= 2;
            json_reply(
                200,
                json!({"job": {"jobId": job, "name": job, "currentStage": if done { "export" } else { "processing" },
                "plannedStages": ["processing", "export"], "error": false, "isTerminal": done, "lastNotification": null,
                "createdAt": "2026-11-28T00:00:00Z", "lastUpdate": "2026-11-28T00:00:00Z"}}),
            )
        }
        ("GET", ["batch-processing", "v1", "external", _, "jobs", job, "stages"]) => json_reply(
            200,
            json!({"stages": [
                {"processingStageId": "s1", "processingStageName": "processing", "tasksNumber": 2, "outputBatches": [], "statusType": "info"},
                {"processingStageId": "s2", "processingStageName": "export", "tasksNumber": 1, "outputBatches": [format!("out-{job}")], "statusType": "info"}
            ]}),
        ),
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
            if status == 200 {
                st.ingested.entry(batch.clone()).or_default().insert(name, bytes);
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
        || spec["persistImagesOutputs"] != false
    {
        bad(format!("processingSpecification {spec}"));
    }
    match st.jobs.get(job) {
        Some(existing) if *existing != body => error(409, "job id already used with a different definition"),
        _ => {
            st.jobs.insert(job.to_owned(), body);
            json_reply(200, json!({}))
        }
    }
}
