//! `refgen submit`: references to Roboflow Batch Processing, then follow them.
//!
//! The steps are the library's (`refgen::submit`); this module orders them, shows
//! progress and prints the summary. Order of work: every local check first (ids,
//! kind, expiry, upload target, API key), then the references file (made from a
//! source, or read), then the upload and its signed URL (or inline chunks), then
//! the ingest requests, then, when asked, waiting for ingestion, the job and its
//! results, all within one deadline.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use refgen::core::expiry::{display_duration, parse_expiry};
use refgen::core::source::SourceUrl;
use refgen::core::writer::{OutputTarget, ReferenceWriter};
use refgen::roboflow::{Client, IngestRequest, JobOptions, MediaKind, References};
use refgen::submit::{self, IngestEvent, JobEvent, Submission};
use serde_json::{Value, json};

use crate::args::SubmitArgs;
use crate::exit::usage;
use crate::{generate, stores};

/// Exit code when --timeout ends the wait (as GNU timeout does).
const TIMEOUT_EXIT: u8 = 124;

/// Progress lines of a long listing when stderr is not a terminal.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(30);

/// Says that the kind was told from the names, and how to choose it instead.
fn inferred_kind(count: u64, kind: MediaKind) -> String {
    let (one, many) = match kind {
        MediaKind::Images => ("an image", "images"),
        MediaKind::Videos => ("a video", "videos"),
    };
    let every = if count == 1 {
        "the one reference names".to_owned()
    } else {
        format!("every one of the {count} references names")
    };
    format!("{every} {one}: submitting as {many} (--images or --videos chooses)")
}

/// The workflow parameters, from --workflow-parameters JSON or a --workflow-params file.
fn workflow_parameters(args: &SubmitArgs) -> Result<Option<Value>> {
    let (text, from) = match (&args.job.workflow_parameters, &args.job.workflow_params) {
        (Some(text), _) => (text.clone(), "--workflow-parameters".to_owned()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                usage!(
                    "--workflow-params {}: cannot read it: {}",
                    path.display(),
                    crate::exit::io_text(&e)
                )
            })?;
            (text, format!("--workflow-params {}", path.display()))
        }
        (None, None) => return Ok(None),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => Ok(Some(v)),
        _ => Err(usage!("{from} must hold a JSON object, like '{{\"confidence\": 0.5}}'")),
    }
}

/// `submit -o FILE`: the references file is kept there, and read back, so it must
/// be a plain file (or a new one), not standard output or a device.
fn check_kept_file(text: &str) -> Result<std::path::PathBuf> {
    if text == "-" {
        return Err(usage!(
            "submit -o needs a file name: the references are read back from it"
        ));
    }
    generate::check_output_name(text)?;
    let path = std::path::PathBuf::from(text);
    match std::fs::metadata(&path) {
        Ok(meta) if !meta.is_file() => Err(usage!(
            "submit -o {text}: not a plain file (the references are read back from it)"
        )),
        _ => Ok(path),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Submitted,
    Ingested,
    JobSucceeded,
    Failed,
    TimedOut,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Submitted => "submitted",
            Outcome::Ingested => "ingested",
            Outcome::JobSucceeded => "job-succeeded",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed-out",
        }
    }

    fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Failed => ExitCode::FAILURE,
            Outcome::TimedOut => ExitCode::from(TIMEOUT_EXIT),
            _ => ExitCode::SUCCESS,
        }
    }
}

pub async fn command(args: SubmitArgs, quiet: bool) -> Result<ExitCode> {
    let started = Instant::now();
    // --- Local checks, before any request.
    refgen::roboflow::validate_batch_id(&args.batch_id)?;
    let wants_job = args.job.workflow_id.is_some();
    let job_id = match (&args.job.job_id, wants_job) {
        (Some(id), _) => Some(id.clone()),
        (None, true) => Some(args.batch_id.chars().take(20).collect::<String>()),
        (None, false) => None,
    };
    if let Some(id) = &job_id {
        refgen::roboflow::validate_job_id(id)?;
    }
    if args.job.download_results.is_some() && !wants_job {
        return Err(usage!(
            "--download-results needs --workflow-id (results come from a job)"
        ));
    }
    let timeout = args.timeout;
    let poll = args.poll_interval;
    let workflow_parameters = workflow_parameters(&args)?;
    let expires_in = parse_expiry(&args.references.expires_in)?;
    let upload_target = args.upload_to.as_deref().map(parse_upload_target).transpose()?;
    if let Some(target) = &upload_target {
        generate::check_expiry(target, &args.references.expires_in, expires_in)?;
    }
    let given_kind = match (args.references.images, args.references.videos) {
        (true, true) => {
            return Err(usage!(
                "give --images or --videos, not both: a Roboflow batch holds one kind of media \
                 (for a bucket of both, submit twice, to two batches)"
            ));
        }
        (true, false) => Some(MediaKind::Images),
        (false, true) => Some(MediaKind::Videos),
        (false, false) => None,
    };
    let kept = args.output.as_deref().map(check_kept_file).transpose()?;
    if let Some(shard) = args.references.shard
        && (args.wait || wants_job)
    {
        return Err(usage!(
            "--shard {shard} submits one worker's share: the batch is whole only when every worker is done, \
             so --wait and --workflow-id belong to one step after them all"
        ));
    }
    let client = if args.dry_run {
        None
    } else {
        Some(crate::api::client(&args.roboflow, &args.store.requests)?)
    };
    let say = |line: String| {
        if !quiet {
            eprintln!("refgen: {line}");
        }
    };

    // --- The references file.
    let temp = tempfile::tempdir().context("cannot create a temporary folder")?;
    // The files to submit, each with its count: one made from a source, or the parts given.
    let (files, kind): (Vec<(std::path::PathBuf, u64)>, MediaKind) =
        match (&args.source, args.references_file.as_slice()) {
            (Some(source), _) => {
                let mut plan = generate::plan(source, &args.references, args.store.concurrency, false)?;
                let path = kept.clone().unwrap_or_else(|| temp.path().join("references.jsonl"));
                let mut writer = ReferenceWriter::create(OutputTarget::File(path.clone()))?;
                let summary = generate::run(&mut plan, &args.store, Some(&mut writer), quiet, PROGRESS_INTERVAL)
                    .await
                    .map_err(|e| match e.downcast::<refgen::Error>() {
                        // Without --allow-empty's hint: submit has no such option.
                        Ok(empty @ refgen::Error::Empty { .. }) => anyhow::anyhow!("{empty}: nothing to submit"),
                        Ok(other) => other.into(),
                        Err(other) => other,
                    })?;
                writer.finish()?;
                if !quiet {
                    let shown = match &kept {
                        Some(p) => p.display().to_string(),
                        None => "the references file".to_owned(),
                    };
                    generate::print_summary_to(&summary, Some(&shown), expires_in);
                }
                let (count, kind) = match given_kind {
                    Some(kind) => (summary.written, kind),
                    None => {
                        let checked = submit::inspect_references(&path, None)?;
                        say(inferred_kind(checked.count, checked.kind));
                        (checked.count, checked.kind)
                    }
                };
                (vec![(path, count)], kind)
            }
            (None, []) => return Err(usage!("give a source or --references FILE")),
            (None, given) => {
                let mut files = Vec::new();
                let mut kind = given_kind;
                for file in given {
                    let checked = submit::inspect_references(file, kind)?;
                    if kind.is_none() && checked.kind_inferred {
                        say(inferred_kind(checked.count, checked.kind));
                    }
                    // The first file's kind is every other's: a batch holds one kind.
                    kind = Some(checked.kind);
                    files.push((checked.path, checked.count));
                }
                (files, kind.unwrap_or(MediaKind::Images))
            }
        };
    let count: u64 = files.iter().map(|(_, n)| n).sum();
    let paths: Vec<std::path::PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();

    // --- --verify: before any upload or Roboflow request.
    if args.verify {
        let options = crate::verify::options(&args.verify_check, &args.store.requests, Some(kind));
        for path in &paths {
            let report = crate::verify::run(path, &options, quiet).await?;
            if !report.ok {
                anyhow::bail!(
                    "--verify found problems in {}: {}; nothing was submitted",
                    path.display(),
                    report.describe()
                );
            }
        }
    }

    // --- How the references travel: a signed URL of an uploaded file, or inline.
    let submission = Submission {
        batch_id: args.batch_id.clone(),
        display_name: args.batch_name.clone(),
        kind,
        base_ingest_id: match &args.ingest_id {
            Some(id) => id.clone(),
            None => submit::default_ingest_id_for(&args.batch_id, SystemTime::now(), &paths)?,
        },
        notifications_url: args.notifications_url.clone(),
        notification_categories: args.notification_category.clone(),
    };
    let mut references_urls = Vec::new();
    let limit = args.roboflow.inline_limit.unwrap_or_else(|| kind.inline_limit()).max(1);
    let ingest: Box<dyn Iterator<Item = refgen::Result<IngestRequest>>> = if let Some(target) = &upload_target {
        // One file goes where --upload-to says; parts go beside it, numbered as they are.
        let store = stores::open(target, &args.store).await?;
        for (i, path) in paths.iter().enumerate() {
            let key = if paths.len() == 1 {
                target.pattern.clone()
            } else {
                refgen::core::writer::part_path(std::path::Path::new(&target.pattern), i)
                    .to_string_lossy()
                    .into_owned()
            };
            references_urls.push(submit::upload_references(&store, &key, path, expires_in, args.dry_run).await?);
        }
        let requests: Vec<_> = references_urls
            .iter()
            .enumerate()
            .map(|(i, url)| Ok(submission.request(i, References::Url(url.clone()))))
            .collect();
        Box::new(requests.into_iter())
    } else {
        let mut chunks = Vec::new();
        for path in &paths {
            chunks.push(submit::inline_chunks(path, limit)?);
        }
        Box::new(
            chunks
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, chunk)| Ok(submission.request(i, References::Inline(chunk?)))),
        )
    };
    let requests = match upload_target {
        Some(_) => paths.len(),
        None => files.iter().map(|(_, n)| submit::inline_request_count(*n, limit)).sum(),
    };

    let job_options = JobOptions {
        name: args.job.job_name.clone(),
        machine_type: args.job.machine_type.clone(),
        workers_per_machine: args.job.workers_per_machine,
        processing_timeout_seconds: args.job.processing_timeout,
        max_parallel_tasks: args.job.max_parallel_tasks,
        max_image_failure_rate: args.job.max_image_failure_rate,
        workflow_parameters,
        image_input_name: args.job.image_input_name.clone(),
        aggregation_format: args.job.aggregation_format.clone(),
        max_video_fps: args.job.max_video_fps,
        notifications_url: args.notifications_url.clone(),
    };

    let Some(client) = client else {
        print_dry_run(
            &args,
            ingest,
            requests,
            count,
            kind,
            job_id.as_deref(),
            &job_options,
            quiet,
        )?;
        return Ok(ExitCode::SUCCESS);
    };

    // --- Roboflow.
    let workspace = crate::api::workspace(&client, &args.roboflow).await?;
    let mut duplicated = false;
    let mut ingest_ids = Vec::new();
    for (i, request) in ingest.enumerate() {
        let request = request?;
        let answer = client.ingest(&workspace, &request).await?;
        duplicated |= answer.duplicated;
        ingest_ids.push(request.ingest_id.clone());
        say(format!(
            "ingest {}/{requests} accepted (ingest id {}{})",
            i + 1,
            request.ingest_id,
            if answer.duplicated {
                ", a repeat Roboflow already had"
            } else {
                ""
            }
        ));
    }
    // --timeout bounds the waiting, which starts now: listing and ingesting a big
    // bucket do not eat into it.
    let deadline = Instant::now() + timeout;
    let mut outcome = Outcome::Submitted;
    let mut result_files = Vec::new();
    if args.wait || wants_job {
        outcome = wait_for_ingest(&client, &workspace, &args.batch_id, count, deadline, poll, quiet).await?;
    }
    if outcome == Outcome::Ingested
        && let (Some(workflow), Some(job)) = (&args.job.workflow_id, &job_id)
    {
        client
            .start_job(&workspace, job, &args.batch_id, kind, workflow, &job_options)
            .await?;
        say(format!("job {job} started (workflow {workflow})"));
        if args.wait || args.job.download_results.is_some() {
            outcome = wait_for_job(&client, &workspace, job, deadline, poll, quiet).await?;
            if outcome == Outcome::JobSucceeded
                && let Some(dir) = &args.job.download_results
            {
                result_files = download_results(&client, &workspace, job, dir, quiet).await?;
            }
        } else {
            outcome = Outcome::Submitted;
        }
    }

    let summary = json!({
        "batchId": args.batch_id,
        "workspace": workspace,
        "kind": match kind { MediaKind::Images => "images", MediaKind::Videos => "videos" },
        "references": count,
        "ingestIds": ingest_ids,
        "duplicated": duplicated,
        "referencesURL": references_urls.first().map(|u| submit::without_signature(u)),
        "referencesURLs": references_urls.iter().map(|u| submit::without_signature(u)).collect::<Vec<_>>(),
        "jobId": if wants_job { job_id.clone() } else { None },
        "outcome": outcome.name(),
        "resultFiles": result_files,
    });
    say(format!(
        "batch {} ({}): {} after {:.0}s",
        args.batch_id,
        generate::plural(count, "reference", "references"),
        outcome.name(),
        started.elapsed().as_secs_f64()
    ));
    if args.json {
        println!("{summary}");
    }
    Ok(outcome.exit_code())
}

/// `s3://bucket/refs/x.jsonl`: a full object key, no wildcards.
fn parse_upload_target(text: &str) -> Result<SourceUrl> {
    let target: SourceUrl = text.parse().context("--upload-to")?;
    if target.pattern.is_empty() || target.pattern.ends_with('/') {
        return Err(usage!(
            "--upload-to `{text}` must name an object (…/refs.jsonl), not a bucket or folder"
        ));
    }
    if refgen::core::filter::literal_prefix(&target.pattern).1 {
        return Err(usage!(
            "--upload-to `{text}` must be a plain object name, without wildcards"
        ));
    }
    Ok(target)
}

struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    last_line: Instant,
}

impl Progress {
    fn new(total: u64, what: &str, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({elapsed})") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_owned());
            bar
        });
        Progress {
            bar,
            quiet,
            last_line: Instant::now() - Duration::from_secs(3600),
        }
    }

    fn update(&mut self, done: u64, line: impl FnOnce() -> String) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if !self.quiet && self.last_line.elapsed() >= Duration::from_secs(30) => {
                eprintln!("refgen: {}", line());
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Follows ingestion until it ends or `deadline` passes.
async fn wait_for_ingest(
    client: &Client,
    ws: &str,
    batch: &str,
    expected: u64,
    deadline: Instant,
    poll: Duration,
    quiet: bool,
) -> Result<Outcome> {
    let mut progress = Progress::new(expected, "ingesting", quiet);
    let mut events = submit::ingest_events(client, ws, batch, expected, poll);
    let mut ingested = 0;
    let outcome = loop {
        let event = match tokio::time::timeout_at(deadline.into(), events.next()).await {
            Err(_elapsed) => {
                eprintln!(
                    "refgen: gave up waiting: {ingested} of {expected} references ingested when --timeout ran out"
                );
                break Outcome::TimedOut;
            }
            Ok(None) => break Outcome::Failed,
            Ok(Some(event)) => event?,
        };
        match event {
            IngestEvent::Progress { ingested: count, .. } => {
                ingested = count;
                progress.update(count.min(expected), || {
                    format!("ingested {count} of {expected} references")
                });
            }
            IngestEvent::ShardFailed(bad) => {
                progress.finish();
                eprintln!(
                    "refgen: shard {} of batch {batch} failed: {} ({})",
                    bad.shard_id,
                    bad.status_name,
                    bad.status_metadata.as_ref().map(Value::to_string).unwrap_or_default()
                );
                break Outcome::Failed;
            }
            IngestEvent::Ingested { .. } => {
                progress.finish();
                if !quiet {
                    eprintln!("refgen: all {expected} references ingested into batch {batch}");
                }
                break Outcome::Ingested;
            }
        }
    };
    progress.finish();
    Ok(outcome)
}

/// Follows the job until it ends or `deadline` passes.
async fn wait_for_job(
    client: &Client,
    ws: &str,
    job_id: &str,
    deadline: Instant,
    poll: Duration,
    quiet: bool,
) -> Result<Outcome> {
    let mut events = submit::job_events(client, ws, job_id, poll);
    loop {
        let event = match tokio::time::timeout_at(deadline.into(), events.next()).await {
            Err(_elapsed) => {
                eprintln!("refgen: gave up waiting for job {job_id} when --timeout ran out");
                return Ok(Outcome::TimedOut);
            }
            Ok(None) => return Ok(Outcome::Failed),
            Ok(Some(event)) => event?,
        };
        match event {
            JobEvent::Stage { name, tasks } if !quiet => {
                eprintln!("refgen: job {job_id}: stage {name} ({tasks} tasks)")
            }
            JobEvent::Stage { .. } => {}
            JobEvent::Failed(job) => {
                eprintln!(
                    "refgen: job {job_id} failed{}",
                    job.last_notification.map(|n| format!(": {n}")).unwrap_or_default()
                );
                return Ok(Outcome::Failed);
            }
            JobEvent::Succeeded(_) => {
                if !quiet {
                    eprintln!("refgen: job {job_id} finished");
                }
                return Ok(Outcome::JobSucceeded);
            }
        }
    }
}

/// Downloads the job's results, saying where they went.
async fn download_results(
    client: &Client,
    ws: &str,
    job_id: &str,
    dir: &std::path::Path,
    quiet: bool,
) -> Result<Vec<String>> {
    let written = submit::download_results(client, ws, job_id, dir).await?;
    if !quiet {
        eprintln!(
            "refgen: downloaded {} into {}",
            generate::plural(written.len() as u64, "result file", "result files"),
            dir.display()
        );
    }
    Ok(written.iter().map(|p| p.display().to_string()).collect())
}

/// Prints each request the run would send, with the paths escaped exactly as the
/// client sends them and the job's whole request body, and sends nothing.
#[allow(clippy::too_many_arguments)]
fn print_dry_run(
    args: &SubmitArgs,
    ingest: impl Iterator<Item = refgen::Result<IngestRequest>>,
    requests: usize,
    count: u64,
    kind: MediaKind,
    job_id: Option<&str>,
    job_options: &JobOptions,
    quiet: bool,
) -> Result<()> {
    let workspace = args.roboflow.workspace.clone();
    let shown = workspace.clone().unwrap_or_else(|| "<the API key's workspace>".into());
    if args.roboflow.api_key.is_none() && std::env::var_os("ROBOFLOW_API_KEY").is_none_or(|k| k.is_empty()) {
        tracing::warn!(
            "dry run without a Roboflow API key (--api-key or ROBOFLOW_API_KEY): a real run would stop at the first request"
        );
    }
    for r in ingest {
        let r = r?;
        let references = match &r.references {
            References::Url(u) => json!({"referencesURL": submit::without_signature(u)}),
            References::Inline(refs) => json!({"inlineReferences": refs.len()}),
        };
        let path = match &workspace {
            Some(ws) => refgen::roboflow::ingest_path(ws, &r.batch_id, kind),
            None => refgen::roboflow::ingest_path("WORKSPACE", &r.batch_id, kind).replacen("WORKSPACE", &shown, 1),
        };
        let line = json!({
            "method": "POST",
            "path": path,
            "displayName": r.display_name.clone().unwrap_or_else(|| r.batch_id.clone()),
            "ingestId": r.ingest_id,
            "references": references,
            "notificationsURL": r.notifications_url,
            "notificationCategories": r.notification_categories,
        });
        println!("{line}");
    }
    if let (Some(workflow), Some(job)) = (&args.job.workflow_id, job_id) {
        let path = match &workspace {
            Some(ws) => refgen::roboflow::job_path(ws, job),
            None => refgen::roboflow::job_path("WORKSPACE", job).replacen("WORKSPACE", &shown, 1),
        };
        let body = refgen::roboflow::job_body(&shown, &args.batch_id, kind, workflow, job_options);
        println!(
            "{}",
            json!({
                "method": "POST",
                "path": path,
                "query": {"name": job_options.name},
                "body": body,
            })
        );
    }
    if !quiet {
        eprintln!(
            "refgen: dry run: {} in {requests} request(s); nothing was uploaded or sent (URLs valid for {})",
            generate::plural(count, "reference", "references"),
            display_duration(parse_expiry(&args.references.expires_in).unwrap_or_default())
        );
    }
    Ok(())
}
