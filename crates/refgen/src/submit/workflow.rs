//! The whole of a submission as one call, [`run`]: the references (made from a
//! source, or files given), an optional verification, the upload of the file or
//! its inline chunks, the ingest requests, and, when asked, waiting for
//! ingestion, starting the job, waiting for it and downloading its results, all
//! within one deadline. What happens is told as [`SubmitEvent`]s, which a caller
//! renders as it likes; the result is a [`SubmitReport`].

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use refgen_core::source::SourceUrl;
use refgen_core::writer::OutputTarget;
use refgen_roboflow::{IngestRequest, JobOptions, MediaKind, References};
use serde::Serialize;
use serde_json::{Value, json};

use super::{IngestEvent, JobEvent, Submission};
use crate::Error;
use crate::api::ApiOptions;
use crate::generate::{GenerateEvent, GenerateReport, Output, Plan};
use crate::store::StoreOptions;
use crate::upload::{Destination, LocalOptions, UploadReport, Uploaded};
use crate::verify::{Report as VerifyReport, VerifyOptions};

/// Where a submission's references come from.
#[derive(Debug)]
pub enum SubmitReferences {
    /// Made from a source by a generate run, into `keep` (else a temporary file).
    Generate {
        /// The run.
        plan: Box<Plan>,
        /// Where the references file is kept.
        keep: Option<PathBuf>,
    },
    /// References files already made (one batch: the first file's kind is every one's).
    Files(Vec<PathBuf>),
    /// Local files, uploaded (see [`crate::upload`]); the kind must be given.
    Local(Box<LocalOptions>),
}

/// The job a submission starts once its references are ingested.
#[derive(Debug, Clone, Default)]
pub struct JobRequest {
    /// The workflow to run.
    pub workflow_id: String,
    /// The job's id (default: the batch id's first 20 characters).
    pub job_id: Option<String>,
    /// Its settings.
    pub options: JobOptions,
    /// Download the results into this folder once the job succeeds.
    pub download_results: Option<PathBuf>,
}

/// Everything a submission needs.
#[derive(Debug)]
pub struct SubmitOptions {
    /// The batch.
    pub batch_id: String,
    /// Its display name (the batch id if none).
    pub batch_name: Option<String>,
    /// The ingest id (default: the batch id, the time and a digest of the files).
    pub ingest_id: Option<String>,
    /// Where Roboflow posts notifications.
    pub notifications_url: Option<String>,
    /// Which notifications.
    pub notification_categories: Vec<String>,
    /// The references.
    pub references: SubmitReferences,
    /// Images or videos (default: told from every name's extension).
    pub kind: Option<MediaKind>,
    /// The store options (of the source, and of `upload_to`).
    pub store: StoreOptions,
    /// Upload the references file to this object and hand Roboflow its signed
    /// URL; else the references go inline.
    pub upload_to: Option<SourceUrl>,
    /// How long the uploaded file's URL is valid.
    pub expires_in: Duration,
    /// References per inline request (default: the kind's limit).
    pub inline_limit: Option<usize>,
    /// Verify every references file first; a problem stops the submission.
    pub verify: Option<VerifyOptions>,
    /// The job to start after ingestion.
    pub job: Option<JobRequest>,
    /// Wait for ingestion (and the job, if any) to end.
    pub wait: bool,
    /// How long waiting may last, from the last ingest request.
    pub timeout: Duration,
    /// Pause between two polls.
    pub poll: Duration,
    /// Send nothing: the report holds the requests that would be sent.
    pub dry_run: bool,
    /// How to reach Roboflow.
    pub api: ApiOptions,
}

impl SubmitOptions {
    /// A submission of `references` into `batch_id` with the command line's
    /// defaults: inline, kind told from the names, no job, not waited for (a
    /// 2-hour timeout and a 10-second poll when waiting), the environment's
    /// store and Roboflow settings.
    pub fn new(batch_id: impl Into<String>, references: SubmitReferences) -> Self {
        SubmitOptions {
            batch_id: batch_id.into(),
            batch_name: None,
            ingest_id: None,
            notifications_url: None,
            notification_categories: Vec::new(),
            references,
            kind: None,
            store: StoreOptions::default(),
            upload_to: None,
            expires_in: Duration::from_secs(86_400),
            inline_limit: None,
            verify: None,
            job: None,
            wait: false,
            timeout: Duration::from_secs(2 * 3600),
            poll: Duration::from_secs(10),
            dry_run: false,
            api: ApiOptions::default(),
        }
    }
}

/// How a submission ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Requests accepted; not waited for.
    Submitted,
    /// Every reference is in the batch.
    Ingested,
    /// The job ended well.
    JobSucceeded,
    /// A shard or the job failed.
    Failed,
    /// The timeout ran out first.
    TimedOut,
}

impl Outcome {
    /// Its name in the report: `submitted`, `ingested`, `job-succeeded`, `failed`, `timed-out`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Submitted => "submitted",
            Outcome::Ingested => "ingested",
            Outcome::JobSucceeded => "job-succeeded",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed-out",
        }
    }
}

/// What a submission did. Serialized, it is `refgen submit --json`'s document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitReport {
    /// The batch.
    pub batch_id: String,
    /// The workspace (none in a dry run without one given).
    pub workspace: Option<String>,
    /// `images` or `videos`.
    pub kind: &'static str,
    /// References submitted.
    pub references: u64,
    /// The ingest requests' ids.
    pub ingest_ids: Vec<String>,
    /// Whether Roboflow already had one of the requests.
    pub duplicated: bool,
    /// The first uploaded file's URL, without its signature.
    #[serde(rename = "referencesURL")]
    pub references_url: Option<String>,
    /// Every uploaded file's URL, without its signature.
    #[serde(rename = "referencesURLs")]
    pub references_urls: Vec<String>,
    /// The job.
    pub job_id: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Result files downloaded, relative to their folder.
    pub result_files: Vec<String>,
    /// What uploading local files did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadReport>,
    /// Ingest requests sent (or, in a dry run, to send).
    #[serde(skip)]
    pub requests: usize,
    /// A dry run's requests, each as `{method, path, …}`.
    #[serde(skip)]
    pub dry_run_requests: Vec<Value>,
    /// How long the submission took.
    #[serde(skip)]
    pub elapsed: Duration,
}

/// What a submission says as it goes.
#[derive(Debug, Clone)]
pub enum SubmitEvent {
    /// A generate run says something.
    Generate(GenerateEvent),
    /// The references file was made from the source.
    Generated(GenerateReport),
    /// The kind was told from every name's extension.
    KindInferred {
        /// References in the file.
        count: u64,
        /// The kind told.
        kind: MediaKind,
    },
    /// A references file was verified (a problem ends the submission after this).
    Verified {
        /// The file.
        path: PathBuf,
        /// What was found.
        report: VerifyReport,
    },
    /// A local file, or an archive of them, was uploaded.
    Uploaded(Uploaded),
    /// An ingest request was accepted.
    Accepted {
        /// From 1.
        number: usize,
        /// Of so many.
        total: usize,
        /// Its ingest id.
        ingest_id: String,
        /// Roboflow already had it.
        duplicated: bool,
    },
    /// Waiting for ingestion sees this.
    Ingest(IngestEvent),
    /// The timeout ran out while waiting for ingestion.
    IngestTimedOut {
        /// Ingested when it ran out.
        ingested: u64,
        /// Submitted.
        expected: u64,
    },
    /// The job was started.
    JobStarted {
        /// The job.
        job_id: String,
        /// Its workflow.
        workflow_id: String,
    },
    /// Waiting for the job sees this.
    Job(JobEvent),
    /// The timeout ran out while waiting for the job.
    JobTimedOut {
        /// The job.
        job_id: String,
    },
    /// The job's results were downloaded.
    Downloaded {
        /// Files.
        files: usize,
        /// Into this folder.
        dir: PathBuf,
    },
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Images => "images",
        MediaKind::Videos => "videos",
    }
}

/// Submits as `options` say, telling `events` what happens (see the module doc).
///
/// ```no_run
/// use refgen::submit::{SubmitOptions, SubmitReferences};
///
/// # async fn go() -> Result<(), refgen::Error> {
/// let references = SubmitReferences::Files(vec!["refs.jsonl".into()]);
/// let report = refgen::submit::run(SubmitOptions::new("my-batch", references), &mut |_| {}).await?;
/// println!("{}: {}", report.batch_id, report.outcome.name());
/// # Ok(())
/// # }
/// ```
pub async fn run(options: SubmitOptions, events: &mut (dyn FnMut(SubmitEvent) + Send)) -> Result<SubmitReport, Error> {
    let started = Instant::now();
    let mut o = options;
    // --- Local checks, before any request.
    refgen_roboflow::validate_batch_id(&o.batch_id)?;
    let job_id = o.job.as_ref().map(|job| {
        job.job_id
            .clone()
            .unwrap_or_else(|| o.batch_id.chars().take(20).collect())
    });
    if let Some(id) = &job_id {
        refgen_roboflow::validate_job_id(id)?;
    }
    if let Some(target) = &o.upload_to {
        crate::generate::check_expiry(target, o.expires_in)?;
    }
    let client = if o.dry_run { None } else { Some(o.api.client()?) };
    if let SubmitReferences::Local(local) = &o.references {
        let local = local.clone();
        return submit_local(&o, &local, client, job_id, started, events).await;
    }

    // --- The references files, each with its count.
    let temp = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let references = std::mem::replace(&mut o.references, SubmitReferences::Files(Vec::new()));
    let (files, kind): (Vec<(PathBuf, u64)>, MediaKind) = match references {
        SubmitReferences::Generate { mut plan, keep } => {
            let path = keep.unwrap_or_else(|| temp.path().join("references.jsonl"));
            let output = Output::Target(OutputTarget::File(path.clone()));
            let mut told = |e| events(SubmitEvent::Generate(e));
            let report = crate::generate::run(&mut plan, &o.store, output, &mut told)
                .await
                .map_err(|e| match e {
                    empty @ Error::Empty { .. } => Error::NothingToSubmit(empty.to_string()),
                    other => other,
                })?;
            let written = report.written;
            events(SubmitEvent::Generated(report));
            let (count, kind) = match o.kind {
                Some(kind) => (written, kind),
                None => {
                    let checked = super::inspect_references(&path, None)?;
                    events(SubmitEvent::KindInferred {
                        count: checked.count,
                        kind: checked.kind,
                    });
                    (checked.count, checked.kind)
                }
            };
            (vec![(path, count)], kind)
        }
        // Taken above, before any reference is made.
        SubmitReferences::Local(_) => return Err(Error::UploadMode("local files are uploaded, not referenced".into())),
        SubmitReferences::Files(given) => {
            let mut files = Vec::new();
            let mut kind = o.kind;
            for file in &given {
                let checked = super::inspect_references(file, kind)?;
                if kind.is_none() && checked.kind_inferred {
                    events(SubmitEvent::KindInferred {
                        count: checked.count,
                        kind: checked.kind,
                    });
                }
                // The first file's kind is every other's: a batch holds one kind.
                kind = Some(checked.kind);
                files.push((checked.path, checked.count));
            }
            (files, kind.unwrap_or(MediaKind::Images))
        }
    };
    let count: u64 = files.iter().map(|(_, n)| n).sum();
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();

    // --- Verification: before any upload or Roboflow request.
    if let Some(verify) = &o.verify {
        let verify = VerifyOptions {
            kind: Some(kind),
            ..verify.clone()
        };
        for path in &paths {
            let report = crate::verify::verify(path, &verify).await?;
            let ok = report.ok;
            let problems = report.describe();
            events(SubmitEvent::Verified {
                path: path.clone(),
                report,
            });
            if !ok {
                return Err(Error::VerifyFailed {
                    path: path.clone(),
                    problems,
                });
            }
        }
    }

    // --- How the references travel: a signed URL of an uploaded file, or inline.
    let submission = Submission {
        batch_id: o.batch_id.clone(),
        display_name: o.batch_name.clone(),
        kind,
        base_ingest_id: match &o.ingest_id {
            Some(id) => id.clone(),
            None => super::default_ingest_id_for(&o.batch_id, SystemTime::now(), &paths)?,
        },
        notifications_url: o.notifications_url.clone(),
        notification_categories: o.notification_categories.clone(),
    };
    let mut references_urls = Vec::new();
    let limit = o.inline_limit.unwrap_or_else(|| kind.inline_limit()).max(1);
    let (ingest, requests): (Box<dyn Iterator<Item = Result<IngestRequest, Error>> + Send>, usize) =
        if let Some(target) = &o.upload_to {
            // One file goes where `upload_to` says; parts go beside it, numbered as they are.
            let store = crate::store::open(target, &o.store).await?;
            crate::generate::check_signer_expiry(&store, o.expires_in)?;
            for (i, path) in paths.iter().enumerate() {
                let key = if paths.len() == 1 {
                    target.pattern.clone()
                } else {
                    refgen_core::writer::part_path(std::path::Path::new(&target.pattern), i)
                        .to_string_lossy()
                        .into_owned()
                };
                references_urls.push(super::upload_references(&store, &key, path, o.expires_in, o.dry_run).await?);
            }
            let requests: Vec<_> = references_urls
                .iter()
                .enumerate()
                .map(|(i, url)| Ok(submission.request(i, References::Url(url.clone()))))
                .collect();
            (Box::new(requests.into_iter()), paths.len())
        } else {
            let mut chunks = Vec::new();
            for path in &paths {
                chunks.push(super::inline_chunks(path, limit)?);
            }
            let submission = submission.clone();
            let requests = files.iter().map(|(_, n)| super::inline_request_count(*n, limit)).sum();
            (
                Box::new(
                    chunks
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .map(move |(i, chunk)| Ok(submission.request(i, References::Inline(chunk?)))),
                ),
                requests,
            )
        };
    let mut report = SubmitReport {
        batch_id: o.batch_id.clone(),
        workspace: o.api.workspace.clone(),
        kind: kind_name(kind),
        references: count,
        ingest_ids: Vec::new(),
        duplicated: false,
        references_url: references_urls.first().map(|u| super::without_signature(u)),
        references_urls: references_urls.iter().map(|u| super::without_signature(u)).collect(),
        job_id: job_id.clone(),
        outcome: Outcome::Submitted,
        result_files: Vec::new(),
        requests,
        dry_run_requests: Vec::new(),
        elapsed: Duration::ZERO,
        upload: None,
    };

    let Some(client) = client else {
        report.dry_run_requests = dry_run_requests(&o, ingest, kind, job_id.as_deref())?;
        report.elapsed = started.elapsed();
        return Ok(report);
    };

    // --- Roboflow.
    let workspace = client.resolve_workspace(o.api.workspace.as_deref()).await?;
    report.workspace = Some(workspace.clone());
    for (i, request) in ingest.enumerate() {
        let request = request?;
        let answer = client.ingest(&workspace, &request).await?;
        report.duplicated |= answer.duplicated;
        report.ingest_ids.push(request.ingest_id.clone());
        events(SubmitEvent::Accepted {
            number: i + 1,
            total: requests,
            ingest_id: request.ingest_id.clone(),
            duplicated: answer.duplicated,
        });
    }
    follow(&o, &client, &workspace, &mut report, count, kind, events).await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Local files: uploaded (or, in a dry run, listed with how they would go),
/// then followed as any submission.
async fn submit_local(
    o: &SubmitOptions,
    local: &LocalOptions,
    client: Option<refgen_roboflow::Client>,
    job_id: Option<String>,
    started: Instant,
    events: &mut (dyn FnMut(SubmitEvent) + Send),
) -> Result<SubmitReport, Error> {
    let kind = o.kind.ok_or_else(|| {
        Error::UploadMode("local files: say whether they are images or videos (a batch holds one kind)".to_owned())
    })?;
    if o.upload_to.is_some() || o.verify.is_some() {
        return Err(Error::UploadMode(
            "local files are uploaded themselves: there is no references file to upload or verify".to_owned(),
        ));
    }
    // The sources are checked before any request.
    crate::upload::check(local, kind)?;
    let base_ingest_id = match &o.ingest_id {
        Some(id) => id.clone(),
        None => super::default_ingest_id(&o.batch_id, SystemTime::now()),
    };
    let display_name = o.batch_name.clone().unwrap_or_else(|| o.batch_id.clone());
    let to = Destination {
        batch_id: &o.batch_id,
        display_name: &display_name,
        kind,
        base_ingest_id: &base_ingest_id,
        notifications_url: o.notifications_url.as_deref(),
        workspace: o.api.workspace.as_deref(),
    };
    let workspace = match &client {
        Some(client) => Some(client.resolve_workspace(o.api.workspace.as_deref()).await?),
        None => None,
    };
    let connection = client.as_ref().zip(workspace.as_deref());
    let (upload, lines) =
        crate::upload::run(local, &to, connection, &mut |done| events(SubmitEvent::Uploaded(done))).await?;
    let mut report = SubmitReport {
        batch_id: o.batch_id.clone(),
        workspace: workspace.clone().or_else(|| o.api.workspace.clone()),
        kind: kind_name(kind),
        references: upload.found,
        ingest_ids: Vec::new(),
        duplicated: false,
        references_url: None,
        references_urls: Vec::new(),
        job_id: job_id.clone(),
        outcome: Outcome::Submitted,
        result_files: Vec::new(),
        requests: lines.len(),
        dry_run_requests: Vec::new(),
        elapsed: Duration::ZERO,
        upload: None,
    };
    let found = upload.found;
    report.upload = Some(upload);
    match (&client, &workspace) {
        (Some(client), Some(workspace)) => follow(o, client, workspace, &mut report, found, kind, events).await?,
        _ => {
            report.dry_run_requests = lines;
            report
                .dry_run_requests
                .extend(dry_run_requests(o, std::iter::empty(), kind, job_id.as_deref())?);
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// After the ingest requests: waits for ingestion when asked (or for a job),
/// starts the job, waits for it, downloads its results.
async fn follow(
    o: &SubmitOptions,
    client: &refgen_roboflow::Client,
    workspace: &str,
    report: &mut SubmitReport,
    count: u64,
    kind: MediaKind,
    events: &mut (dyn FnMut(SubmitEvent) + Send),
) -> Result<(), Error> {
    let job_id = report.job_id.clone();
    // The timeout bounds the waiting, which starts now: listing and ingesting a
    // big bucket do not eat into it.
    let deadline = tokio::time::Instant::now() + o.timeout;
    if o.wait || o.job.is_some() {
        report.outcome = wait_for_ingest(client, workspace, &o.batch_id, count, deadline, o.poll, events).await?;
    }
    if report.outcome == Outcome::Ingested
        && let (Some(job), Some(id)) = (&o.job, &job_id)
    {
        client
            .start_job(workspace, id, &o.batch_id, kind, &job.workflow_id, &job.options)
            .await?;
        events(SubmitEvent::JobStarted {
            job_id: id.clone(),
            workflow_id: job.workflow_id.clone(),
        });
        if o.wait || job.download_results.is_some() {
            report.outcome = wait_for_job(client, workspace, id, deadline, o.poll, events).await?;
            if report.outcome == Outcome::JobSucceeded
                && let Some(dir) = &job.download_results
            {
                let written = super::download_results(client, workspace, id, dir).await?;
                events(SubmitEvent::Downloaded {
                    files: written.len(),
                    dir: dir.clone(),
                });
                report.result_files = written.iter().map(|p| p.display().to_string()).collect();
            }
        } else {
            report.outcome = Outcome::Submitted;
        }
    }
    Ok(())
}

/// Follows ingestion until it ends or `deadline` passes.
async fn wait_for_ingest(
    client: &refgen_roboflow::Client,
    workspace: &str,
    batch: &str,
    expected: u64,
    deadline: tokio::time::Instant,
    poll: Duration,
    events: &mut (dyn FnMut(SubmitEvent) + Send),
) -> Result<Outcome, Error> {
    let mut stream = super::ingest_events(client, workspace, batch, expected, poll);
    let mut ingested = 0;
    loop {
        let event = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_elapsed) => {
                events(SubmitEvent::IngestTimedOut { ingested, expected });
                return Ok(Outcome::TimedOut);
            }
            Ok(None) => return Ok(Outcome::Failed),
            Ok(Some(event)) => event?,
        };
        let outcome = match &event {
            IngestEvent::Progress { ingested: count, .. } => {
                ingested = *count;
                None
            }
            IngestEvent::ShardFailed(_) => Some(Outcome::Failed),
            IngestEvent::Ingested { .. } => Some(Outcome::Ingested),
        };
        events(SubmitEvent::Ingest(event));
        if let Some(outcome) = outcome {
            return Ok(outcome);
        }
    }
}

/// Follows the job until it ends or `deadline` passes.
async fn wait_for_job(
    client: &refgen_roboflow::Client,
    workspace: &str,
    job_id: &str,
    deadline: tokio::time::Instant,
    poll: Duration,
    events: &mut (dyn FnMut(SubmitEvent) + Send),
) -> Result<Outcome, Error> {
    let mut stream = super::job_events(client, workspace, job_id, poll);
    loop {
        let event = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_elapsed) => {
                events(SubmitEvent::JobTimedOut {
                    job_id: job_id.to_owned(),
                });
                return Ok(Outcome::TimedOut);
            }
            Ok(None) => return Ok(Outcome::Failed),
            Ok(Some(event)) => event?,
        };
        let outcome = match &event {
            JobEvent::Stage { .. } => None,
            JobEvent::Failed(_) => Some(Outcome::Failed),
            JobEvent::Succeeded(_) => Some(Outcome::JobSucceeded),
        };
        events(SubmitEvent::Job(event));
        if let Some(outcome) = outcome {
            return Ok(outcome);
        }
    }
}

/// Each request the run would send, with the paths escaped exactly as the
/// client sends them and the job's whole request body.
fn dry_run_requests(
    o: &SubmitOptions,
    ingest: impl Iterator<Item = Result<IngestRequest, Error>>,
    kind: MediaKind,
    job_id: Option<&str>,
) -> Result<Vec<Value>, Error> {
    let workspace = o.api.workspace.clone();
    let shown = workspace.clone().unwrap_or_else(|| "<the API key's workspace>".into());
    // Without a workspace, the path shows where it goes, escaped as the rest.
    let in_workspace = |path: &dyn Fn(&str) -> String| match &workspace {
        Some(ws) => path(ws),
        None => path("WORKSPACE").replacen("WORKSPACE", &shown, 1),
    };
    let mut lines = Vec::new();
    for r in ingest {
        let r = r?;
        let references = match &r.references {
            References::Url(u) => json!({"referencesURL": super::without_signature(u)}),
            References::Inline(refs) => json!({"inlineReferences": refs.len()}),
        };
        let path = in_workspace(&|ws| refgen_roboflow::ingest_path(ws, &r.batch_id, kind));
        lines.push(json!({
            "method": "POST",
            "path": path,
            "displayName": r.display_name.clone().unwrap_or_else(|| r.batch_id.clone()),
            "ingestId": r.ingest_id,
            "references": references,
            "notificationsURL": r.notifications_url,
            "notificationCategories": r.notification_categories,
        }));
    }
    if let (Some(job), Some(id)) = (&o.job, job_id) {
        let path = in_workspace(&|ws| refgen_roboflow::job_path(ws, id));
        let body = refgen_roboflow::job_body(&shown, &o.batch_id, kind, &job.workflow_id, &job.options);
        lines.push(json!({
            "method": "POST",
            "path": path,
            "query": {"name": job.options.name},
            "body": body,
        }));
    }
    Ok(lines)
}
