//! `refgen submit`: references to Roboflow Batch Processing, then follow them.
//!
//! Order of work: every local check first (ids, kind, expiry, upload target, API
//! key), then the references file (made from a source, or read), then the upload and
//! its signed URL (or inline chunks), then the ingest requests, then, when asked,
//! waiting for ingestion, the job and its results.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use refgen_core::ObjectMeta;
use refgen_core::expiry::{display_duration, parse_expiry};
use refgen_core::filter::MediaPreset;
use refgen_core::source::SourceUrl;
use refgen_core::writer::{OutputTarget, ReferenceLine, ReferenceWriter};
use refgen_roboflow::{Client, ClientBuilder, IngestRequest, JobOptions, MediaKind, Reference, References};
use serde_json::{Value, json};

use crate::args::SubmitArgs;
use crate::generate;
use crate::stores;

/// Exit code when --timeout ends the wait (as GNU timeout does).
const TIMEOUT_EXIT: u8 = 124;

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

pub async fn command(args: SubmitArgs) -> Result<ExitCode> {
    let started = Instant::now();
    // --- Local checks, before any request.
    refgen_roboflow::validate_batch_id(&args.batch_id)?;
    let wants_job = args.job.workflow_id.is_some();
    let job_id = match (&args.job.job_id, wants_job) {
        (Some(id), _) => Some(id.clone()),
        (None, true) => Some(args.batch_id.chars().take(20).collect::<String>()),
        (None, false) => None,
    };
    if let Some(id) = &job_id {
        refgen_roboflow::validate_job_id(id)?;
    }
    if args.job.download_results.is_some() && !wants_job {
        bail!("--download-results needs --workflow-id (results come from a job)");
    }
    let timeout = parse_expiry(&args.timeout).context("--timeout")?;
    let poll = parse_expiry(&args.poll_interval).context("--poll-interval")?;
    let workflow_parameters = args
        .job
        .workflow_parameters
        .as_deref()
        .map(|text| match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(anyhow::anyhow!(
                "--workflow-parameters must be a JSON object, like '{{\"confidence\": 0.5}}'"
            )),
        })
        .transpose()?;
    let expires_in = parse_expiry(&args.references.expires_in)?;
    let upload_target = args.upload_to.as_deref().map(parse_upload_target).transpose()?;
    if let Some(target) = &upload_target {
        generate::check_expiry(target, &args.references.expires_in, expires_in)?;
    }
    let client = if args.dry_run {
        None
    } else {
        let mut builder = ClientBuilder::from_env().with_retry(args.store.requests.retry_config());
        if let Some(key) = &args.roboflow.api_key {
            builder = builder.with_api_key(key);
        }
        if let Ok(ms) = std::env::var("REFGEN_ROBOFLOW_BACKOFF_MS")
            && let Ok(ms) = ms.parse()
        {
            builder = builder.with_backoff_base(Duration::from_millis(ms));
        }
        Some(builder.build()?)
    };

    // --- The references file.
    let temp = tempfile::tempdir().context("cannot create a temporary folder")?;
    let (refs_path, count, kind) = match (&args.source, &args.references_file) {
        (Some(source), _) => {
            let kind = match (args.references.images, args.references.videos) {
                (true, false) => MediaKind::Images,
                (false, true) => MediaKind::Videos,
                _ => bail!(
                    "submit needs exactly one of --images or --videos: a Roboflow batch holds one kind of media \
                     (for a bucket of both, submit twice, to two batches)"
                ),
            };
            let mut plan = generate::plan(source, &args.references)?;
            let path = temp.path().join("references.jsonl");
            let mut writer = ReferenceWriter::create(OutputTarget::File(path.clone()))?;
            let summary = generate::run(&mut plan, &args.store, &mut writer).await?;
            writer.finish()?;
            generate::print_summary_to(&summary, "the references file", expires_in);
            if summary.written == 0 {
                bail!("no object of {source} matched: nothing to submit");
            }
            (path, summary.written, kind)
        }
        (None, Some(file)) => {
            let (count, kind) = check_references_file(file, args.references.images, args.references.videos)?;
            (file.clone(), count, kind)
        }
        (None, None) => bail!("give a source or --references FILE"),
    };

    // --- How the references travel: a signed URL of an uploaded file, or inline.
    let base_id = args.ingest_id.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            args.batch_id,
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        )
    });
    let mut requests = Vec::new();
    let mut references_url = None;
    if let Some(target) = &upload_target {
        let store = stores::open(target, &args.store).await?;
        let key = target.pattern.clone();
        if !args.dry_run {
            store
                .uploader()
                .upload_file(&key, &refs_path, "application/x-ndjson")
                .await?;
        }
        let object = ObjectMeta {
            key: key.clone(),
            size: 0,
            last_modified: None,
        };
        let url = store
            .signer()
            .sign_page(std::slice::from_ref(&object), expires_in)
            .await?
            .pop()
            .context("no URL was signed for the references file")?;
        check_references_url(&url)?;
        references_url = Some(url.clone());
        requests.push(References::Url(url));
    } else {
        let limit = args.roboflow.inline_limit.unwrap_or_else(|| kind.inline_limit()).max(1);
        let text = std::fs::read_to_string(&refs_path).context("cannot read the references file")?;
        let mut chunk = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r: ReferenceLine = serde_json::from_str(line)?;
            chunk.push(Reference {
                name: r.name,
                url: r.url,
            });
            if chunk.len() == limit {
                requests.push(References::Inline(std::mem::take(&mut chunk)));
            }
        }
        if !chunk.is_empty() {
            requests.push(References::Inline(chunk));
        }
    }
    let ingest: Vec<IngestRequest> = requests
        .into_iter()
        .enumerate()
        .map(|(i, references)| IngestRequest {
            kind,
            batch_id: args.batch_id.clone(),
            display_name: args.batch_name.clone(),
            references,
            ingest_id: format!("{base_id}-{i}"),
            notifications_url: args.notifications_url.clone(),
            notification_categories: args.notification_category.clone(),
        })
        .collect();

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
        print_dry_run(&args, &ingest, count, kind, job_id.as_deref());
        return Ok(ExitCode::SUCCESS);
    };

    // --- Roboflow.
    let workspace = match &args.roboflow.workspace {
        Some(w) => w.clone(),
        None => client.workspace().await?,
    };
    let mut duplicated = false;
    for (i, request) in ingest.iter().enumerate() {
        let answer = client.ingest(&workspace, request).await?;
        duplicated |= answer.duplicated;
        eprintln!(
            "refgen: ingest {}/{} accepted (ingest id {}{})",
            i + 1,
            ingest.len(),
            request.ingest_id,
            if answer.duplicated {
                ", a repeat Roboflow already had"
            } else {
                ""
            }
        );
    }
    let deadline = started + timeout;
    let mut outcome = Outcome::Submitted;
    let mut result_files = Vec::new();
    if args.wait || wants_job {
        outcome = wait_for_ingest(&client, &workspace, &args.batch_id, count, deadline, poll).await?;
    }
    if outcome == Outcome::Ingested
        && let (Some(workflow), Some(job)) = (&args.job.workflow_id, &job_id)
    {
        client
            .start_job(&workspace, job, &args.batch_id, kind, workflow, &job_options)
            .await?;
        eprintln!("refgen: job {job} started (workflow {workflow})");
        if args.wait || args.job.download_results.is_some() {
            outcome = wait_for_job(&client, &workspace, job, deadline, poll).await?;
            if outcome == Outcome::JobSucceeded
                && let Some(dir) = &args.job.download_results
            {
                result_files = download_results(&client, &workspace, job, dir).await?;
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
        "ingestIds": ingest.iter().map(|r| r.ingest_id.clone()).collect::<Vec<_>>(),
        "duplicated": duplicated,
        "referencesURL": references_url.as_deref().map(without_signature),
        "jobId": if wants_job { job_id.clone() } else { None },
        "outcome": outcome.name(),
        "resultFiles": result_files,
    });
    eprintln!(
        "refgen: batch {} ({count} references): {} after {:.0}s",
        args.batch_id,
        outcome.name(),
        started.elapsed().as_secs_f64()
    );
    if args.json {
        println!("{summary}");
    }
    Ok(outcome.exit_code())
}

/// `s3://bucket/refs/x.jsonl`: a full object key, no wildcards.
fn parse_upload_target(text: &str) -> Result<SourceUrl> {
    let target: SourceUrl = text.parse().context("--upload-to")?;
    if target.pattern.is_empty() || target.pattern.ends_with('/') {
        bail!("--upload-to `{text}` must name an object (…/refs.jsonl), not a bucket or folder");
    }
    if refgen_core::filter::literal_prefix(&target.pattern).1 {
        bail!("--upload-to `{text}` must be a plain object name, without wildcards");
    }
    Ok(target)
}

/// Roboflow's client refuses `http://` references URLs; a local test server is the
/// one exception (warned about).
fn check_references_url(url: &str) -> Result<()> {
    if fetchable(url).map_err(|why| anyhow::anyhow!("the references URL {why}"))? {
        tracing::warn!("the references URL is plain http on a local server: Roboflow itself only fetches https URLs");
    }
    Ok(())
}

/// Whether Roboflow can fetch `url`: https, or plain http on this machine (the
/// local test servers), for which `Ok(true)` asks for a warning. The error says why not.
fn fetchable(url: &str) -> std::result::Result<bool, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
    match parsed.scheme() {
        "https" => Ok(false),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(true),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(true),
            Some(url::Host::Domain("localhost")) => Ok(true),
            host => Err(format!(
                "is plain http ({}); Roboflow only fetches https URLs",
                host.map(|h| h.to_string()).unwrap_or_default()
            )),
        },
        other => Err(format!("is a {other}: URL; Roboflow only fetches https URLs")),
    }
}

fn without_signature(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

/// Reads a references file: one JSON object with name and url per line; blank
/// lines are ignored. Returns the count and the media kind.
fn check_references_file(path: &std::path::Path, images: bool, videos: bool) -> Result<(u64, MediaKind)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (mut count, mut image_count, mut video_count) = (0u64, 0u64, 0u64);
    // Names must be unique in a batch; the set costs about a name's length per line.
    let mut names = std::collections::HashMap::new();
    let mut warned_http = false;
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{} line {}", path.display(), n + 1);
        let r: ReferenceLine =
            serde_json::from_str(line).with_context(|| format!("{}: not a JSON object with name and url", at()))?;
        match fetchable(&r.url) {
            Ok(local) => {
                if local && !std::mem::replace(&mut warned_http, true) {
                    tracing::warn!(
                        "{}: plain http on a local server; Roboflow itself only fetches https URLs",
                        at()
                    );
                }
            }
            Err(why) => bail!("{}: the url {why}", at()),
        }
        if let Some(first) = names.insert(r.name.clone(), n + 1) {
            bail!(
                "{}: the name `{}` is already used on line {first}: names must be unique in a batch",
                at(),
                r.name
            );
        }
        count += 1;
        if MediaPreset::Images.matches(&r.name) {
            image_count += 1;
        } else if MediaPreset::Videos.matches(&r.name) {
            video_count += 1;
        }
    }
    if count == 0 {
        bail!("{} holds no references", path.display());
    }
    let kind = match (images, videos) {
        (true, false) => MediaKind::Images,
        (false, true) => MediaKind::Videos,
        (true, true) => bail!("give --images or --videos, not both: a Roboflow batch holds one kind of media"),
        (false, false) if image_count > 0 && video_count == 0 => MediaKind::Images,
        (false, false) if video_count > 0 && image_count == 0 => MediaKind::Videos,
        (false, false) => bail!(
            "cannot tell whether {} holds images or videos ({image_count} image names, {video_count} video names): \
             pass --images or --videos (a batch holds one kind)",
            path.display()
        ),
    };
    Ok((count, kind))
}

struct Progress {
    bar: Option<ProgressBar>,
    last_line: Instant,
}

impl Progress {
    fn new(total: u64, what: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({elapsed})") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_owned());
            bar
        });
        Progress {
            bar,
            last_line: Instant::now() - Duration::from_secs(3600),
        }
    }

    fn update(&mut self, done: u64, line: impl FnOnce() -> String) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if self.last_line.elapsed() >= Duration::from_secs(30) => {
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

async fn wait_for_ingest(
    client: &Client,
    ws: &str,
    batch: &str,
    expected: u64,
    deadline: Instant,
    poll: Duration,
) -> Result<Outcome> {
    let mut progress = Progress::new(expected, "ingesting");
    loop {
        let count = client.batch_count(ws, batch).await?;
        let shards = client.shards(ws, batch).await?;
        progress.update(count.min(expected), || {
            format!("ingested {count} of {expected} references")
        });
        if let Some(bad) = shards.iter().find(|s| s.failed()) {
            progress.finish();
            eprintln!(
                "refgen: shard {} of batch {batch} failed: {} ({})",
                bad.shard_id,
                bad.status_name,
                bad.status_metadata.as_ref().map(Value::to_string).unwrap_or_default()
            );
            return Ok(Outcome::Failed);
        }
        if count >= expected {
            progress.finish();
            eprintln!("refgen: all {expected} references ingested into batch {batch}");
            return Ok(Outcome::Ingested);
        }
        if Instant::now() + poll > deadline {
            progress.finish();
            eprintln!("refgen: gave up waiting: {count} of {expected} references ingested when --timeout ran out");
            return Ok(Outcome::TimedOut);
        }
        tokio::time::sleep(poll).await;
    }
}

async fn wait_for_job(client: &Client, ws: &str, job_id: &str, deadline: Instant, poll: Duration) -> Result<Outcome> {
    let mut last_stage = String::new();
    loop {
        let job = client.job(ws, job_id).await?;
        let stage = job.current_stage.clone().unwrap_or_default();
        if stage != last_stage && !stage.is_empty() {
            let tasks: u64 = client
                .job_stages(ws, job_id)
                .await?
                .iter()
                .filter(|s| s.name == stage)
                .map(|s| s.tasks)
                .sum();
            eprintln!("refgen: job {job_id}: stage {stage} ({tasks} tasks)");
            last_stage = stage;
        }
        if job.is_terminal {
            if job.error {
                eprintln!(
                    "refgen: job {job_id} failed{}",
                    job.last_notification.map(|n| format!(": {n}")).unwrap_or_default()
                );
                return Ok(Outcome::Failed);
            }
            eprintln!("refgen: job {job_id} finished");
            return Ok(Outcome::JobSucceeded);
        }
        if Instant::now() + poll > deadline {
            eprintln!("refgen: gave up waiting for job {job_id} when --timeout ran out");
            return Ok(Outcome::TimedOut);
        }
        tokio::time::sleep(poll).await;
    }
}

/// Downloads every file of the export stage's output batches into `dir`.
async fn download_results(client: &Client, ws: &str, job_id: &str, dir: &std::path::Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stages = client.job_stages(ws, job_id).await?;
    let batches: Vec<String> = stages
        .iter()
        .filter(|s| s.name == "export")
        .flat_map(|s| s.output_batches.clone())
        .collect();
    if batches.is_empty() {
        bail!("job {job_id} has no export stage with output batches: nothing to download");
    }
    let mut written = Vec::new();
    for batch in &batches {
        for part in client.batch_parts(ws, batch).await? {
            for file in client.list_files(ws, batch, &part.name).await? {
                // File names come from the service: keep only their last segment.
                let name = file.file_name.rsplit(['/', '\\']).next().unwrap_or_default();
                if name.is_empty() || name == "." || name == ".." {
                    continue;
                }
                let bytes = client.download(&file.download_url).await?;
                let path = dir.join(name);
                std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
                written.push(path.display().to_string());
            }
        }
    }
    eprintln!(
        "refgen: downloaded {} result files into {}",
        written.len(),
        dir.display()
    );
    Ok(written)
}

fn print_dry_run(args: &SubmitArgs, ingest: &[IngestRequest], count: u64, kind: MediaKind, job_id: Option<&str>) {
    let workspace = args
        .roboflow
        .workspace
        .clone()
        .unwrap_or_else(|| "<the API key's workspace>".into());
    for r in ingest {
        let references = match &r.references {
            References::Url(u) => json!({"referencesURL": without_signature(u)}),
            References::Inline(refs) => json!({"inlineReferences": refs.len()}),
        };
        let line = json!({
            "method": "POST",
            "path": format!("/data-staging/v1/external/{workspace}/batches/{}/bulk-upload/{}", r.batch_id, kind.endpoint()),
            "displayName": r.display_name.clone().unwrap_or_else(|| r.batch_id.clone()),
            "ingestId": r.ingest_id,
            "references": references,
            "notificationsURL": r.notifications_url,
            "notificationCategories": r.notification_categories,
        });
        println!("{line}");
    }
    if let (Some(workflow), Some(job)) = (&args.job.workflow_id, job_id) {
        println!(
            "{}",
            json!({"method": "POST", "path": format!("/batch-processing/v1/external/{workspace}/jobs/{job}"), "workflowId": workflow})
        );
    }
    eprintln!(
        "refgen: dry run: {count} references in {} request(s); nothing was uploaded or sent (URLs valid for {})",
        ingest.len(),
        display_duration(parse_expiry(&args.references.expires_in).unwrap_or_default())
    );
}
