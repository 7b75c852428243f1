//! refgen's Python module, `refgen._refgen`: a thin binding over the facade.
//!
//! Nothing is re-implemented here: [`generate`] is `refgen::generate::run`, and
//! [`Signer`] opens a store with `refgen::store::open` and signs with its
//! signer, exactly as the command line does. The Python package `refgen`
//! (`python/refgen/`) wraps these in typed functions and classes.
//!
//! - The GIL is released while a call lists, signs or writes (`Python::detach`),
//!   so other Python threads (a Ray or Dask worker's) go on meanwhile; a call
//!   that waits looks for signals every tenth of a second, so Ctrl-C stops it
//!   (`KeyboardInterrupt`) and drops the work where it stands.
//! - Errors become `refgen.UsageError` (what was given), `refgen.RoboflowError`
//!   (the API) or `refgen.StorageError` (everything else), all `refgen.RefgenError`,
//!   carrying the command line's one redacted line and the library's hint.
//! - A [`Signer`] pickles as its settings only: each worker process resolves its
//!   own credentials from its own environment, as the cloud's CLI would there.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use std::sync::Arc;

use arrow_array::ffi::FFI_ArrowArray;
use arrow_array::{Array, ArrayRef, LargeStringArray, StringArray, StringViewArray, StructArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::{DataType, Field};
use refgen::core::ObjectMeta;
use refgen::core::naming::{NameMode, Namer};
use refgen::core::source::SourceUrl;
use refgen::generate::{GenerateOptions, Output, Plan};
use refgen::store::{Store, StoreOptions};

create_exception!(_refgen, RefgenError, PyException, "Any error refgen reports.");
create_exception!(
    _refgen,
    UsageError,
    RefgenError,
    "What was given cannot be used: a source, a glob, a duration, a setting."
);
create_exception!(
    _refgen,
    StorageError,
    RefgenError,
    "Listing, signing, reading or writing failed (a store, credentials, a file)."
);
create_exception!(_refgen, RoboflowError, RefgenError, "A Roboflow API call failed.");

/// Batches of at least this many rows are signed on every core at once.
const PARALLEL_ROWS: usize = 20_000;

/// The one runtime of the process: calls block on it with the GIL released.
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("refgen")
        .build()
        .map_err(|e| StorageError::new_err(format!("cannot start refgen's runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| built))
}

/// The command line's one line: redacted, with what to do about it.
fn to_py(error: refgen::Error) -> PyErr {
    let mut text = refgen::core::redact::redact(&error.to_string().replace('\n', " "));
    if let Some(hint) = error.hint() {
        text.push_str("; ");
        text.push_str(&hint.to_string());
    }
    if error.is_usage() {
        UsageError::new_err(text)
    } else if matches!(error, refgen::Error::Roboflow(_)) {
        RoboflowError::new_err(text)
    } else {
        StorageError::new_err(text)
    }
}

fn core_error(error: refgen::core::Error) -> PyErr {
    to_py(refgen::Error::Core(error))
}

fn name_mode(name: &str) -> PyResult<NameMode> {
    match name {
        "flat" => Ok(NameMode::Flat),
        "key" => Ok(NameMode::Key),
        "basename" => Ok(NameMode::Basename),
        other => Err(UsageError::new_err(format!(
            "name is `{other}`: it is flat, key or basename"
        ))),
    }
}

fn expiry(text: &str) -> PyResult<Duration> {
    refgen::core::expiry::parse_expiry(text).map_err(core_error)
}

/// A run's options, as the Python package passes them (a dict of every
/// keyword of `refgen.generate`).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct RunArgs {
    source: Option<String>,
    include: Vec<String>,
    exclude: Vec<String>,
    images: bool,
    videos: bool,
    ignore_case: bool,
    name: String,
    expires_in: String,
    limit: Option<u64>,
    max_size: Option<String>,
    endpoint_url: Option<String>,
    allow_empty: bool,
    allow_short_expiry: bool,
    pin_versions: bool,
    inventory: Option<String>,
    concurrency: usize,
    /// A plan's JSON document (the Python side reads its file).
    plan: Option<String>,
    shard: Option<String>,
}

impl RunArgs {
    /// The library's checked run and store options.
    fn resolve(self) -> PyResult<(Plan, StoreOptions)> {
        let range_plan = self
            .plan
            .as_deref()
            .map(|text| {
                let plan: refgen::ranges::RangePlan = serde_json::from_str(text)
                    .map_err(|e| UsageError::new_err(format!("plan: not a plan that refgen.plan made ({e})")))?;
                plan.check()
                    .map_err(|reason| UsageError::new_err(format!("plan: {reason}")))?;
                Ok::<_, PyErr>(Arc::new(plan))
            })
            .transpose()?;
        let source = match (self.source, &range_plan) {
            (Some(given), _) => given,
            (None, Some(plan)) => plan.source.clone(),
            (None, None) => return Err(UsageError::new_err("give a source, or a plan")),
        };
        let count = range_plan.as_ref().map(|p| p.count());
        let shard = self
            .shard
            .as_deref()
            .map(|text| match text.strip_prefix("auto") {
                Some(rest) => {
                    let given = rest.strip_prefix('/').and_then(|n| n.parse().ok());
                    refgen::core::shard::Shard::from_scheduler(given.or(count), |name| {
                        refgen::http::env_var(true, name)
                    })
                }
                None => text.parse(),
            })
            .transpose()
            .map_err(core_error)?;
        let mut options = GenerateOptions {
            include: self.include,
            exclude: self.exclude,
            ignore_case: self.ignore_case,
            images: self.images,
            videos: self.videos,
            expires_in: expiry(&self.expires_in)?,
            name_mode: name_mode(&self.name)?,
            concurrency: self.concurrency.max(1),
            limit: self.limit,
            allow_empty: self.allow_empty,
            allow_short_expiry: self.allow_short_expiry,
            max_size: self
                .max_size
                .as_deref()
                .map(refgen::core::size::parse_size)
                .transpose()
                .map_err(core_error)?,
            shard,
            range_plan: range_plan.clone(),
            inventory: self.inventory,
            pin_versions: self.pin_versions,
        };
        // A plan's run takes the plan's selection; one given too must be the
        // same (the library refuses another).
        if let Some(range_plan) = &range_plan
            && !selection_given(&options)
        {
            range_plan.selection.apply(&mut options);
        }
        let plan = Plan::new(&source, &options).map_err(to_py)?;
        let store = StoreOptions {
            endpoint_url: self.endpoint_url,
            ..StoreOptions::default()
        };
        Ok((plan, store))
    }
}

/// Runs `work` on the runtime with the GIL released, looking every tenth of a
/// second for a signal (Ctrl-C raises `KeyboardInterrupt` here, and `work` is
/// dropped where it stands: a run's temporary file goes with it).
fn block_interruptibly<F>(py: Python<'_>, work: F) -> PyResult<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    let runtime = runtime()?;
    let mut work = std::pin::pin!(work);
    loop {
        let done = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(Duration::from_millis(100), &mut work).await.ok() })
        });
        if let Some(output) = done {
            return Ok(output);
        }
        py.check_signals()?;
    }
}

/// Lists the source, keeps what the filters select, signs and writes the
/// references file at `output` (atomically, as the command line does), and
/// returns the run's report as JSON. Without `output`, nothing is signed or
/// written: the report counts what would be (a dry run).
#[pyfunction]
#[pyo3(signature = (args, output=None))]
fn generate(py: Python<'_>, args: RunArgs, output: Option<PathBuf>) -> PyResult<String> {
    let (mut plan, store) = args.resolve()?;
    let output = match output {
        Some(path) => Output::Target(refgen::core::writer::OutputTarget::File(path)),
        None => Output::DryRun,
    };
    let report =
        block_interruptibly(py, refgen::generate::run(&mut plan, &store, output, &mut |_| {}))?.map_err(to_py)?;
    serde_json::to_string(&report).map_err(|e| StorageError::new_err(e.to_string()))
}

/// The references of a run as they are signed: an iterator of `(name, url)`,
/// or with `batch_size`, of pyarrow RecordBatches of up to that many rows
/// (`name`, `url`, `key`, `size`, `expires_at`). Memory stays bounded: the run
/// lists ahead of the taker by a few pages at most.
#[pyfunction]
#[pyo3(signature = (args, batch_size=None))]
fn references(args: RunArgs, batch_size: Option<usize>) -> PyResult<References> {
    let (mut plan, store) = args.resolve()?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let expires_in = plan.expires_in;
    let task = runtime()?
        .spawn(async move { refgen::generate::run(&mut plan, &store, Output::Stream(tx), &mut |_| {}).await });
    Ok(References {
        state: std::sync::Mutex::new(Streaming {
            rx: Some(rx),
            task: Some(task),
            buffer: std::collections::VecDeque::new(),
            report: None,
        }),
        batch_size: batch_size.map(|n| n.max(1)),
        expires_in,
    })
}

/// Where a [`References`] iterator stands.
struct Streaming {
    rx: Option<tokio::sync::mpsc::Receiver<Vec<refgen::core::pipeline::Reference>>>,
    task: Option<tokio::task::JoinHandle<Result<refgen::generate::GenerateReport, refgen::Error>>>,
    buffer: std::collections::VecDeque<refgen::core::pipeline::Reference>,
    /// The run's report (JSON), once it ended.
    report: Option<String>,
}

/// The iterator [`references`] returns.
#[pyclass(module = "refgen._refgen")]
struct References {
    state: std::sync::Mutex<Streaming>,
    batch_size: Option<usize>,
    expires_in: Duration,
}

impl References {
    /// Up to `want` more references, waiting for the run's pages (the GIL
    /// released, Ctrl-C honoured); none once the run has ended, which raises
    /// its error if it failed.
    fn take(&self, py: Python<'_>, want: usize) -> PyResult<Vec<refgen::core::pipeline::Reference>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while state.buffer.len() < want {
            let Some(rx) = state.rx.as_mut() else { break };
            match block_interruptibly(py, rx.recv())? {
                Some(page) => state.buffer.extend(page),
                None => {
                    state.rx = None;
                    if let Some(task) = state.task.take() {
                        let report = block_interruptibly(py, task)?
                            .map_err(|e| StorageError::new_err(format!("the run stopped: {e}")))?
                            .map_err(to_py)?;
                        state.report =
                            Some(serde_json::to_string(&report).map_err(|e| StorageError::new_err(e.to_string()))?);
                    }
                }
            }
        }
        let n = want.min(state.buffer.len());
        Ok(state.buffer.drain(..n).collect())
    }
}

#[pymethods]
impl References {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(size) = self.batch_size else {
            return self
                .take(py, 1)?
                .pop()
                .map(|r| (r.name, r.url).into_pyobject(py).map(|t| t.into_any()))
                .transpose();
        };
        let rows = self.take(py, size)?;
        if rows.is_empty() {
            return Ok(None);
        }
        // When the URLs signed last expire: the batch is signed by now.
        let expires_at = std::time::SystemTime::now() + self.expires_in;
        let seconds = expires_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let n = rows.len();
        let (mut names, mut urls, mut keys, mut sizes) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in rows {
            names.push(r.name);
            urls.push(r.url);
            keys.push(r.key);
            sizes.push(r.size);
        }
        let fields = vec![
            Arc::new(Field::new("name", DataType::Utf8, false)),
            Arc::new(Field::new("url", DataType::Utf8, false)),
            Arc::new(Field::new("key", DataType::Utf8, false)),
            Arc::new(Field::new("size", DataType::UInt64, false)),
            Arc::new(Field::new(
                "expires_at",
                DataType::Timestamp(arrow_schema::TimeUnit::Second, Some("UTC".into())),
                false,
            )),
        ];
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(names)),
            Arc::new(StringArray::from_iter_values(urls)),
            Arc::new(StringArray::from_iter_values(keys)),
            Arc::new(arrow_array::UInt64Array::from(sizes)),
            Arc::new(arrow_array::TimestampSecondArray::from(vec![seconds; n]).with_timezone("UTC")),
        ];
        let batch =
            StructArray::try_new(fields.into(), columns, None).map_err(|e| StorageError::new_err(e.to_string()))?;
        export_batch(py, &batch).map(Some)
    }

    /// The run's report (JSON) once the iterator is exhausted, else None.
    fn report(&self) -> Option<String> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).report.clone()
    }
}

/// A struct array as a pyarrow RecordBatch, through the C data interface.
fn export_batch<'py>(py: Python<'py>, batch: &StructArray) -> PyResult<Bound<'py, PyAny>> {
    let pyarrow = py.import("pyarrow")?;
    let (array, schema) =
        arrow_array::ffi::to_ffi(&batch.to_data()).map_err(|e| StorageError::new_err(e.to_string()))?;
    let holder = Py::new(
        py,
        ArrowArray {
            exported: std::sync::Mutex::new(Some((schema, array))),
        },
    )?;
    pyarrow.call_method1("record_batch", (holder,))
}

/// Whether any selection option was given (a plan's run takes the plan's).
fn selection_given(options: &GenerateOptions) -> bool {
    refgen::ranges::PlanSelection::of(options) != refgen::ranges::PlanSelection::default()
}

/// Cuts the listing of `source` into `parts` key ranges as `refgen plan` does,
/// writes the plan to `output` when given, and returns it as JSON.
#[pyfunction]
#[pyo3(signature = (
    source, parts, output=None, *, include=Vec::new(), exclude=Vec::new(), images=false, videos=false,
    ignore_case=false, max_size=None, endpoint_url=None, concurrency=16
))]
#[allow(clippy::too_many_arguments)]
fn plan(
    py: Python<'_>,
    source: &str,
    parts: u32,
    output: Option<PathBuf>,
    include: Vec<String>,
    exclude: Vec<String>,
    images: bool,
    videos: bool,
    ignore_case: bool,
    max_size: Option<&str>,
    endpoint_url: Option<String>,
    concurrency: usize,
) -> PyResult<String> {
    let options = GenerateOptions {
        include,
        exclude,
        images,
        videos,
        ignore_case,
        max_size: max_size
            .map(refgen::core::size::parse_size)
            .transpose()
            .map_err(core_error)?,
        concurrency: concurrency.max(1),
        ..GenerateOptions::default()
    };
    let store = StoreOptions {
        endpoint_url,
        ..StoreOptions::default()
    };
    let made = block_interruptibly(py, async {
        let made = refgen::ranges::plan(source, parts, &options, &store).await?;
        if let Some(path) = &output {
            refgen::ranges::write(&made, path)?;
        }
        Ok::<_, refgen::Error>(made)
    })?
    .map_err(to_py)?;
    serde_json::to_string(&made).map_err(|e| StorageError::new_err(e.to_string()))
}

/// Checks a references file as `refgen verify` does (every line, a sample of
/// the URLs fetched, or all of them with `sample=None`) and returns its report
/// as JSON.
#[pyfunction]
#[pyo3(signature = (path, *, sample=Some(100), min_valid="48h", kind=None, concurrency=16))]
fn verify(
    py: Python<'_>,
    path: PathBuf,
    sample: Option<usize>,
    min_valid: &str,
    kind: Option<&str>,
    concurrency: usize,
) -> PyResult<String> {
    let kind = match kind {
        None => None,
        Some("images") => Some(refgen::roboflow::MediaKind::Images),
        Some("videos") => Some(refgen::roboflow::MediaKind::Videos),
        Some(other) => {
            return Err(UsageError::new_err(format!(
                "kind is `{other}`: it is images or videos"
            )));
        }
    };
    let options = refgen::verify::VerifyOptions {
        sample,
        min_valid: expiry(min_valid)?,
        concurrency: concurrency.max(1),
        kind,
        ..refgen::verify::VerifyOptions::default()
    };
    let report = block_interruptibly(py, refgen::verify::verify(&path, &options))?.map_err(to_py)?;
    serde_json::to_string(&report).map_err(|e| StorageError::new_err(e.to_string()))
}

/// How to reach Roboflow: the key and workspace given, else the environment's
/// (`ROBOFLOW_API_KEY`, `API_BASE_URL`), as the command line does.
fn api(api_key: Option<String>, workspace: Option<String>) -> refgen::api::ApiOptions {
    refgen::api::ApiOptions {
        api_key,
        workspace,
        ..refgen::api::ApiOptions::default()
    }
}

/// Connects to the Roboflow API (the key and workspace given, else the
/// environment's), runs `call` with the client and the workspace, and returns
/// what it answers as JSON: the shape of every lifecycle call.
fn with_api<T, F, Fut>(py: Python<'_>, api_key: Option<String>, workspace: Option<String>, call: F) -> PyResult<String>
where
    T: serde::Serialize + Send,
    F: FnOnce(refgen::roboflow::Client, String) -> Fut + Send,
    Fut: std::future::Future<Output = Result<T, refgen::Error>> + Send,
{
    let answer = block_interruptibly(py, async {
        let (client, workspace) = api(api_key, workspace).connect().await?;
        call(client, workspace).await
    })?
    .map_err(to_py)?;
    to_json(&answer)
}

/// A report or listing as JSON (the Python side turns it into plain data).
fn to_json(value: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| StorageError::new_err(e.to_string()))
}

/// `refgen submit`: references made from a source (`generate`, a run's
/// options) or given as files, into the batch `batch_id`; optionally waited
/// for, a job started and its results downloaded. Returns the report as JSON.
#[pyfunction]
#[pyo3(signature = (
    batch_id, *, generate=None, references=Vec::new(), kind=None, upload_to=None, expires_in="24h",
    wait=false, timeout=7200.0, poll=10.0, workflow_id=None, job_id=None, download_results=None,
    verify=false, dry_run=false, batch_name=None, notifications_url=None, api_key=None, workspace=None
))]
#[allow(clippy::too_many_arguments)]
fn submit(
    py: Python<'_>,
    batch_id: String,
    generate: Option<RunArgs>,
    references: Vec<PathBuf>,
    kind: Option<&str>,
    upload_to: Option<String>,
    expires_in: &str,
    wait: bool,
    timeout: f64,
    poll: f64,
    workflow_id: Option<String>,
    job_id: Option<String>,
    download_results: Option<PathBuf>,
    verify: bool,
    dry_run: bool,
    batch_name: Option<String>,
    notifications_url: Option<String>,
    api_key: Option<String>,
    workspace: Option<String>,
) -> PyResult<String> {
    let seconds = |what: &str, value: f64| {
        Duration::try_from_secs_f64(value)
            .map_err(|_| UsageError::new_err(format!("{what} is {value}: a number of seconds, 0 or more")))
    };
    let (refs, store) = match (generate, references.is_empty()) {
        (Some(args), true) => {
            let (plan, store) = args.resolve()?;
            (
                refgen::submit::SubmitReferences::Generate {
                    plan: Box::new(plan),
                    keep: None,
                },
                store,
            )
        }
        (None, false) => (
            refgen::submit::SubmitReferences::Files(references),
            StoreOptions::default(),
        ),
        (Some(_), false) => return Err(UsageError::new_err("give a source or references files, not both")),
        (None, true) => return Err(UsageError::new_err("give a source or references files")),
    };
    let mut options = refgen::submit::SubmitOptions::new(batch_id, refs);
    options.store = store;
    options.kind = match kind {
        None => None,
        Some("images") => Some(refgen::roboflow::MediaKind::Images),
        Some("videos") => Some(refgen::roboflow::MediaKind::Videos),
        Some(other) => {
            return Err(UsageError::new_err(format!(
                "kind is `{other}`: it is images or videos"
            )));
        }
    };
    options.upload_to = upload_to
        .as_deref()
        .map(str::parse::<SourceUrl>)
        .transpose()
        .map_err(core_error)?;
    options.expires_in = expiry(expires_in)?;
    options.wait = wait;
    options.timeout = seconds("timeout", timeout)?;
    options.poll = seconds("poll", poll)?;
    options.job = workflow_id.map(|workflow_id| refgen::submit::JobRequest {
        workflow_id,
        job_id,
        download_results,
        ..refgen::submit::JobRequest::default()
    });
    options.verify = verify.then(refgen::verify::VerifyOptions::default);
    options.dry_run = dry_run;
    options.batch_name = batch_name;
    options.notifications_url = notifications_url;
    options.api = api(api_key, workspace);
    let report = block_interruptibly(py, refgen::submit::run(options, &mut |_| {}))?.map_err(to_py)?;
    to_json(&report)
}

/// The workspace's batches, newest first, up to `limit`, as JSON.
#[pyfunction]
#[pyo3(signature = (limit=None, *, api_key=None, workspace=None))]
fn batches(
    py: Python<'_>,
    limit: Option<usize>,
    api_key: Option<String>,
    workspace: Option<String>,
) -> PyResult<String> {
    with_api(py, api_key, workspace, |client, workspace| async move {
        refgen::batches::list(&client, &workspace, limit).await
    })
}

/// One batch, whole (its count, shards and parts), as JSON.
#[pyfunction]
#[pyo3(signature = (batch_id, *, api_key=None, workspace=None))]
fn batch(py: Python<'_>, batch_id: String, api_key: Option<String>, workspace: Option<String>) -> PyResult<String> {
    with_api(py, api_key, workspace, |client, workspace| async move {
        refgen::batches::show(&client, &workspace, &batch_id).await
    })
}

/// The workspace's jobs, up to `limit`, as JSON.
#[pyfunction]
#[pyo3(signature = (limit=None, *, api_key=None, workspace=None))]
fn jobs(py: Python<'_>, limit: Option<usize>, api_key: Option<String>, workspace: Option<String>) -> PyResult<String> {
    with_api(py, api_key, workspace, |client, workspace| async move {
        refgen::jobs::list(&client, &workspace, limit).await
    })
}

/// One job, whole (its stages), as JSON.
#[pyfunction]
#[pyo3(signature = (job_id, *, api_key=None, workspace=None))]
fn job(py: Python<'_>, job_id: String, api_key: Option<String>, workspace: Option<String>) -> PyResult<String> {
    with_api(py, api_key, workspace, |client, workspace| async move {
        refgen::jobs::show(&client, &workspace, &job_id).await
    })
}

/// Every file of a batch (a job's results) into `folder`, resumably, as
/// `refgen export` does; the summary as JSON.
#[pyfunction]
#[pyo3(signature = (batch_id, folder, *, parts=Vec::new(), overwrite=false, concurrency=8, api_key=None, workspace=None))]
#[allow(clippy::too_many_arguments)]
fn export(
    py: Python<'_>,
    batch_id: String,
    folder: PathBuf,
    parts: Vec<String>,
    overwrite: bool,
    concurrency: usize,
    api_key: Option<String>,
    workspace: Option<String>,
) -> PyResult<String> {
    let options = refgen::export::ExportOptions {
        parts,
        overwrite,
        concurrency: concurrency.max(1),
    };
    with_api(py, api_key, workspace, |client, workspace| async move {
        refgen::export::export_batch(&client, &workspace, &batch_id, &folder, &options, None).await
    })
}

/// An open store and what signing needs, made once per process.
struct Opened {
    store: Store,
    expires_in: Duration,
}

/// Signs GET URLs for keys of one bucket, the way `refgen generate` signs them.
///
/// `Signer("s3://bucket/")` takes its credentials from the environment of the
/// process that signs, when it first signs (each Ray, Spark or Dask worker
/// resolves its own). It pickles as its settings, never as credentials.
#[pyclass(module = "refgen._refgen", frozen)]
struct Signer {
    store_url: String,
    expires_in: String,
    name: String,
    endpoint_url: Option<String>,
    opened: OnceLock<Opened>,
}

impl Signer {
    fn opened(&self, py: Python<'_>) -> PyResult<&Opened> {
        if let Some(opened) = self.opened.get() {
            return Ok(opened);
        }
        let source: SourceUrl = self.store_url.parse().map_err(core_error)?;
        let options = StoreOptions {
            endpoint_url: self.endpoint_url.clone(),
            ..StoreOptions::default()
        };
        let asked = expiry(&self.expires_in)?;
        refgen::generate::check_expiry(&source, asked).map_err(to_py)?;
        let runtime = runtime()?;
        let (store, expires_in) = py
            .detach(|| {
                runtime.block_on(async {
                    let store = refgen::store::open(&source, &options).await?;
                    let expires_in = refgen::generate::effective_expiry(&store, asked, false)?;
                    Ok::<_, refgen::Error>((store, expires_in))
                })
            })
            .map_err(to_py)?;
        Ok(self.opened.get_or_init(|| Opened { store, expires_in }))
    }

    fn sign_keys(&self, py: Python<'_>, keys: &[String]) -> PyResult<Vec<String>> {
        let objects: Vec<ObjectMeta> = keys
            .iter()
            .map(|key| ObjectMeta {
                key: key.clone(),
                ..ObjectMeta::default()
            })
            .collect();
        Ok(self.sign_objects(py, objects, None)?.1)
    }

    /// Signs `objects` in order; a large batch in pieces on every core (the
    /// runtime's workers), which a signer computing URLs locally makes as fast
    /// as the cores allow. With `names`, each piece also names its keys (a
    /// mode that names each key by itself alone: flat or key).
    fn sign_objects(
        &self,
        py: Python<'_>,
        objects: Vec<ObjectMeta>,
        names: Option<NameMode>,
    ) -> PyResult<(Vec<String>, Vec<String>)> {
        let opened = self.opened(py)?;
        let runtime = runtime()?;
        let (signer, expires_in) = (opened.store.signer(), opened.expires_in);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pieces = if objects.len() < PARALLEL_ROWS { 1 } else { threads };
        let piece = objects.len().div_ceil(pieces).max(1);
        let mut chunks = Vec::with_capacity(pieces);
        let mut rest = objects.into_iter();
        loop {
            let chunk: Vec<ObjectMeta> = rest.by_ref().take(piece).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(chunk);
        }
        py.detach(|| {
            runtime.block_on(async {
                let tasks: Vec<_> = chunks
                    .into_iter()
                    .map(|chunk| {
                        let signer = Arc::clone(&signer);
                        tokio::spawn(async move {
                            let urls = signer.sign_page(&chunk, expires_in).await?;
                            let names = match names {
                                Some(mode) => {
                                    let mut namer = Namer::new(mode);
                                    chunk.iter().map(|o| namer.name(&o.key)).collect()
                                }
                                None => Vec::new(),
                            };
                            Ok::<_, refgen::core::Error>((names, urls))
                        })
                    })
                    .collect();
                let (mut names, mut urls) = (Vec::new(), Vec::new());
                for task in tasks {
                    let (n, u) = task
                        .await
                        .map_err(|e| StorageError::new_err(format!("signing stopped: {e}")))?
                        .map_err(core_error)?;
                    names.extend(n);
                    urls.extend(u);
                }
                Ok((names, urls))
            })
        })
    }

    /// `name` and `url` for the rows of `input` (whose `key` column is known to
    /// be strings without nulls) in a mode that names each key alone: in pieces
    /// on every core, each reading, signing and naming its rows a page at a
    /// time straight into Arrow buffers of its own (so a page's strings are
    /// freed and their memory reused by the next, as the CLI's writer does),
    /// the pieces then joined into one array.
    fn sign_rows(&self, py: Python<'_>, input: &StructArray, mode: NameMode) -> PyResult<(StringArray, StringArray)> {
        let opened = self.opened(py)?;
        let runtime = runtime()?;
        let (signer, expires_in) = (opened.store.signer(), opened.expires_in);
        let (rows, keys) = (input.len(), input.column_by_name("key").cloned());
        let versions = input.column_by_name("version_id").cloned();
        let keys = keys.ok_or_else(|| UsageError::new_err("the batch has no `key` column"))?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pieces = if rows < PARALLEL_ROWS { 1 } else { threads };
        let piece = rows.div_ceil(pieces).max(1);
        py.detach(|| {
            let done = runtime.block_on(async {
                let tasks: Vec<_> = (0..rows)
                    .step_by(piece)
                    .map(|start| {
                        let (signer, keys, versions) = (Arc::clone(&signer), keys.clone(), versions.clone());
                        tokio::spawn(async move {
                            let keys = Strings::of(keys.as_ref()).expect("checked: strings");
                            let versions = versions.as_deref().and_then(Strings::of);
                            let end = rows.min(start + piece);
                            let mut out = Piece::default();
                            let mut page = Vec::with_capacity(SIGN_PAGE);
                            let mut namer = Namer::new(mode);
                            for first in (start..end).step_by(SIGN_PAGE) {
                                page.clear();
                                page.extend(
                                    (first..end.min(first + SIGN_PAGE)).map(|i| object_at(&keys, versions.as_ref(), i)),
                                );
                                let urls = signer.sign_page(&page, expires_in).await?;
                                if out.urls.is_empty() {
                                    // Sized from the first page: one allocation for the piece, not a doubling series.
                                    let per_row = |bytes: usize| bytes.div_ceil(page.len()) + 8;
                                    let url_bytes = urls.iter().map(String::len).sum();
                                    let key_bytes = page.iter().map(|o| o.key.len()).sum();
                                    out.reserve(end - start, per_row(key_bytes), per_row(url_bytes));
                                }
                                for (object, url) in page.iter().zip(&urls) {
                                    out.names.push(&namer.name(&object.key));
                                    out.urls.push(url);
                                }
                            }
                            Ok::<_, refgen::core::Error>(out)
                        })
                    })
                    .collect();
                let mut done = Vec::with_capacity(tasks.len());
                for task in tasks {
                    done.push(
                        task.await
                            .map_err(|e| StorageError::new_err(format!("signing stopped: {e}")))?
                            .map_err(core_error)?,
                    );
                }
                Ok::<_, PyErr>(done)
            })?;
            // Joined with the GIL still released: a copy of hundreds of MB.
            let names = Strings32::join(done.iter().map(|p| &p.names).collect())?;
            let urls = Strings32::join(done.iter().map(|p| &p.urls).collect())?;
            Ok((names, urls))
        })
    }

    /// `name` and `url` for a struct array of `key` (and `version_id`) columns.
    fn sign_struct(&self, py: Python<'_>, input: &StructArray) -> PyResult<StructArray> {
        let column = |name: &str| -> PyResult<Option<Strings<'_>>> {
            match input.column_by_name(name) {
                None => Ok(None),
                Some(c) => Strings::of(c.as_ref()).map(Some).ok_or_else(|| {
                    UsageError::new_err(format!("the `{name}` column is {}, not a string", c.data_type()))
                }),
            }
        };
        let keys = column("key")?.ok_or_else(|| UsageError::new_err("the batch has no `key` column"))?;
        let versions = column("version_id")?;
        if let Some(i) = (0..input.len()).find(|&i| keys.get(i).is_none()) {
            return Err(UsageError::new_err(format!("row {i} has no key")));
        }
        let mode = name_mode(&self.name)?;
        let (names, urls) = if mode == NameMode::Basename {
            // Basenames are made unique across the batch: named here, in order.
            let objects: Vec<ObjectMeta> = (0..input.len())
                .map(|i| object_at(&keys, versions.as_ref(), i))
                .collect();
            let mut namer = Namer::new(mode);
            let names: Vec<String> = objects.iter().map(|o| namer.name(&o.key)).collect();
            let (_, urls) = self.sign_objects(py, objects, None)?;
            (
                StringArray::from_iter_values(names),
                StringArray::from_iter_values(urls),
            )
        } else {
            self.sign_rows(py, input, mode)?
        };
        let fields = vec![
            Arc::new(Field::new("name", DataType::Utf8, false)),
            Arc::new(Field::new("url", DataType::Utf8, false)),
        ];
        let columns: Vec<ArrayRef> = vec![Arc::new(names), Arc::new(urls)];
        StructArray::try_new(fields.into(), columns, None).map_err(|e| StorageError::new_err(e.to_string()))
    }
}

/// Rows signed per call of the signer within a piece of `sign_batch`: small
/// enough that a page's strings stay in the cache and their memory is reused.
const SIGN_PAGE: usize = 1024;

/// What one piece of a `sign_batch` made: its rows' names and URLs.
#[derive(Default)]
struct Piece {
    names: Strings32,
    urls: Strings32,
}

impl Piece {
    fn reserve(&mut self, rows: usize, name_bytes: usize, url_bytes: usize) {
        self.names.reserve(rows, rows * name_bytes);
        self.urls.reserve(rows, rows * url_bytes);
    }
}

/// Strings laid out as an Arrow string column lays them out (bytes end to
/// end, and where each ends), built by pushing, joined into one `StringArray`.
#[derive(Default)]
struct Strings32 {
    values: Vec<u8>,
    ends: Vec<usize>,
}

impl Strings32 {
    fn reserve(&mut self, rows: usize, bytes: usize) {
        self.ends.reserve(rows);
        self.values.reserve(bytes);
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn push(&mut self, s: &str) {
        self.values.extend_from_slice(s.as_bytes());
        self.ends.push(self.values.len());
    }

    /// One array of every piece's strings in order; the copying is done on a
    /// thread per piece, each into its own part of the one buffer.
    fn join(pieces: Vec<&Strings32>) -> PyResult<StringArray> {
        let total: usize = pieces.iter().map(|p| p.values.len()).sum();
        if i32::try_from(total).is_err() {
            return Err(UsageError::new_err(format!(
                "the batch's strings come to {total} bytes, more than the 2 GiB an Arrow string column holds: \
                 sign it in smaller batches (Table.to_batches(max_chunksize=1_000_000))"
            )));
        }
        let rows: usize = pieces.iter().map(|p| p.ends.len()).sum();
        let mut values = vec![0u8; total];
        let mut offsets = vec![0i32; rows + 1];
        std::thread::scope(|scope| {
            let (mut values_rest, mut offsets_rest) = (values.as_mut_slice(), &mut offsets[1..]);
            let mut base = 0usize;
            for piece in pieces {
                let (values_part, v) = values_rest.split_at_mut(piece.values.len());
                let (offsets_part, o) = offsets_rest.split_at_mut(piece.ends.len());
                (values_rest, offsets_rest) = (v, o);
                let start = base;
                base += piece.values.len();
                scope.spawn(move || {
                    values_part.copy_from_slice(&piece.values);
                    for (offset, end) in offsets_part.iter_mut().zip(&piece.ends) {
                        // Fits: every end is at most `total`, checked above.
                        *offset = (start + end) as i32;
                    }
                });
            }
        });
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        StringArray::try_new(offsets, Buffer::from_vec(values), None).map_err(|e| StorageError::new_err(e.to_string()))
    }
}

/// Row `i` as an object to sign (its key known not to be null).
fn object_at(keys: &Strings<'_>, versions: Option<&Strings<'_>>, i: usize) -> ObjectMeta {
    ObjectMeta {
        key: keys.get(i).unwrap_or_default().to_owned(),
        version: versions.and_then(|v| v.get(i)).map(str::to_owned),
        ..ObjectMeta::default()
    }
}

/// A string column in any of Arrow's layouts (pandas' arrow-backed strings are
/// `large_string`; Polars' are views).
enum Strings<'a> {
    Small(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    fn of(array: &'a dyn Array) -> Option<Self> {
        let any = array.as_any();
        any.downcast_ref::<StringArray>()
            .map(Strings::Small)
            .or_else(|| any.downcast_ref::<LargeStringArray>().map(Strings::Large))
            .or_else(|| any.downcast_ref::<StringViewArray>().map(Strings::View))
    }

    /// Row `i`'s value; none when null.
    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Strings::Small(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strings::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strings::View(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }
}

/// An Arrow array handed to pyarrow through the PyCapsule interface
/// (`pyarrow.record_batch(holder)` calls `__arrow_c_array__` once).
#[pyclass(module = "refgen._refgen")]
struct ArrowArray {
    exported: std::sync::Mutex<Option<(FFI_ArrowSchema, FFI_ArrowArray)>>,
}

#[pymethods]
impl ArrowArray {
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
        let _ = requested_schema;
        let (schema, array) = self
            .exported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| StorageError::new_err("this Arrow array was already taken"))?;
        // Dropped with the capsule: released then unless pyarrow took them.
        let schema = PyCapsule::new_with_value(py, schema, c"arrow_schema")?;
        let array = PyCapsule::new_with_value(py, array, c"arrow_array")?;
        Ok((schema, array))
    }
}

/// Reads an object of the Arrow PyCapsule interface (a pyarrow RecordBatch) as a struct array.
#[allow(unsafe_code)]
fn import_batch(batch: &Bound<'_, PyAny>) -> PyResult<StructArray> {
    let (schema, array): (Bound<'_, PyCapsule>, Bound<'_, PyCapsule>) =
        batch.call_method0("__arrow_c_array__")?.extract()?;
    let schema_ptr = schema.pointer_checked(Some(c"arrow_schema"))?.cast::<FFI_ArrowSchema>();
    let array_ptr = array.pointer_checked(Some(c"arrow_array"))?.cast::<FFI_ArrowArray>();
    // SAFETY: the capsules are the producer's, named as the C data interface
    // says; the array is moved out (its release left to us), the schema borrowed.
    let data = unsafe {
        let array = FFI_ArrowArray::from_raw(array_ptr.as_ptr());
        arrow_array::ffi::from_ffi(array, &*schema_ptr.as_ptr())
    }
    .map_err(|e| UsageError::new_err(format!("not an Arrow record batch: {e}")))?;
    match data.data_type() {
        DataType::Struct(_) => Ok(StructArray::from(data)),
        other => Err(UsageError::new_err(format!(
            "an Arrow record batch is a struct array, not {other}"
        ))),
    }
}

#[pymethods]
impl Signer {
    #[new]
    #[pyo3(signature = (store_url, *, expires_in="24h", name="flat", endpoint_url=None))]
    fn new(store_url: &str, expires_in: &str, name: &str, endpoint_url: Option<String>) -> PyResult<Self> {
        // Checked now, so that a bad setting fails where it is written.
        let source: SourceUrl = store_url.parse().map_err(core_error)?;
        refgen::generate::check_expiry(&source, expiry(expires_in)?).map_err(to_py)?;
        name_mode(name)?;
        Ok(Signer {
            store_url: store_url.to_owned(),
            expires_in: expires_in.to_owned(),
            name: name.to_owned(),
            endpoint_url,
            opened: OnceLock::new(),
        })
    }

    /// One signed GET URL per key, in order.
    fn sign(&self, py: Python<'_>, keys: Vec<String>) -> PyResult<Vec<String>> {
        self.sign_keys(py, &keys)
    }

    /// `(name, url)` per key, in order: the lines of a references file (names
    /// made as `name=` says, unique within the call).
    fn references(&self, py: Python<'_>, keys: Vec<String>) -> PyResult<Vec<(String, String)>> {
        let urls = self.sign_keys(py, &keys)?;
        let mut namer = Namer::new(name_mode(&self.name)?);
        Ok(keys.iter().map(|k| namer.name(k)).zip(urls).collect())
    }

    /// Signs a pyarrow `RecordBatch` (or `Table`) with a `key` column (and an
    /// optional `version_id`), through the Arrow C data interface: a
    /// `RecordBatch` of `name` and `url`, in the same order. A batch whose
    /// URLs would pass the 2 GiB an Arrow string column holds (several
    /// million rows) raises `UsageError`: sign it in smaller batches.
    fn sign_batch<'py>(&self, py: Python<'py>, batch: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let pyarrow = py.import("pyarrow")?;
        // A table is signed as the one batch its combined chunks make.
        let batch = if batch.hasattr("__arrow_c_array__")? {
            batch
        } else if batch.hasattr("combine_chunks")? {
            let table = batch.call_method0("combine_chunks")?;
            match table
                .call_method0("to_batches")?
                .extract::<Vec<Bound<'py, PyAny>>>()?
                .pop()
            {
                Some(one) => one,
                None => pyarrow.call_method1("record_batch", (table,))?,
            }
        } else {
            return Err(UsageError::new_err("sign_batch takes a pyarrow RecordBatch or Table"));
        };
        let input = import_batch(&batch)?;
        let output = self.sign_struct(py, &input)?;
        export_batch(py, &output)
    }

    /// Pickled as its settings: `Signer(store_url, **settings)` on the other side.
    fn __getnewargs_ex__<'py>(&self, py: Python<'py>) -> PyResult<((String,), Bound<'py, PyDict>)> {
        let settings = PyDict::new(py);
        settings.set_item("expires_in", &self.expires_in)?;
        settings.set_item("name", &self.name)?;
        settings.set_item("endpoint_url", &self.endpoint_url)?;
        Ok(((self.store_url.clone(),), settings))
    }

    fn __repr__(&self) -> String {
        format!(
            "Signer({:?}, expires_in={:?}, name={:?})",
            self.store_url, self.expires_in, self.name
        )
    }
}

#[pymodule]
fn _refgen(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RefgenError", py.get_type::<RefgenError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("RoboflowError", py.get_type::<RoboflowError>())?;
    m.add_function(wrap_pyfunction!(generate, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(references, m)?)?;
    for function in [
        wrap_pyfunction!(submit, m)?,
        wrap_pyfunction!(batches, m)?,
        wrap_pyfunction!(batch, m)?,
        wrap_pyfunction!(jobs, m)?,
        wrap_pyfunction!(job, m)?,
        wrap_pyfunction!(export, m)?,
    ] {
        m.add_function(function)?;
    }
    m.add_class::<References>()?;
    m.add_class::<Signer>()?;
    m.add_class::<ArrowArray>()?;
    Ok(())
}
