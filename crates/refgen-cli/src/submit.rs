//! `refgen submit`: the library's submission ([`refgen::submit::run`]), its
//! events shown as they come, and its report as a summary line or `--json`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use refgen::core::expiry::display_duration;
use refgen::core::pipeline::Progress;
use refgen::roboflow::MediaKind;
use refgen::submit::{IngestEvent, JobEvent, Outcome, SubmitEvent, SubmitReferences};
use serde_json::Value;

use crate::flags::SubmitArgs;
use crate::progress::{Ingesting, Live, Uploading};
use crate::render::{self, plural, say};
use crate::settings;

/// Exit code when --timeout ends the wait (as GNU timeout does).
const TIMEOUT_EXIT: u8 = 124;

/// Progress lines of a long listing or wait when stderr is not a terminal.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(30);

pub async fn command(args: SubmitArgs, quiet: bool) -> Result<ExitCode> {
    let json = args.json;
    let (mut options, kept) = settings::submit(args)?;
    let dry_run = options.dry_run;
    let has_key = options.api.api_key.is_some() || std::env::var_os("ROBOFLOW_API_KEY").is_some_and(|k| !k.is_empty());
    if dry_run && !has_key {
        tracing::warn!(
            "dry run without a Roboflow API key (--api-key or ROBOFLOW_API_KEY): a real run would stop at the first request"
        );
    }
    let batch = options.batch_id.clone();
    let mut job = String::new();
    let expires_in = options.expires_in;
    let mut live = None;
    if let SubmitReferences::Generate { plan, .. } = &mut options.references {
        let progress = Arc::new(Progress::default());
        plan.run.progress = Some(Arc::clone(&progress));
        live = Some(Live::start(progress, "listing", quiet, PROGRESS_INTERVAL));
    }
    let mut ingesting: Option<(Arc<Ingesting>, Live)> = None;
    let mut uploading: Option<(Arc<Uploading>, Live)> = None;
    let shown = match &kept {
        Some(p) => p.display().to_string(),
        None => "the references file".to_owned(),
    };
    let result = refgen::submit::run(options, &mut |event| {
        if !matches!(event, SubmitEvent::Uploaded(_)) {
            // The uploads are over: their live line gives way to what follows.
            uploading.take();
        }
        match event {
            SubmitEvent::Generate(event) => render::generate_event(&event, quiet),
            SubmitEvent::Generated(report) => {
                if let Some(live) = live.take() {
                    live.finish();
                }
                if !quiet {
                    render::generate_summary(&report, Some(&shown));
                }
            }
            SubmitEvent::KindInferred { count, kind } => say(quiet, inferred_kind(count, kind)),
            SubmitEvent::Uploaded(done) => {
                let (counts, _) = uploading.get_or_insert_with(|| {
                    let counts = Arc::new(Uploading::default());
                    let live = Live::start(counts.clone(), "uploads", quiet, PROGRESS_INTERVAL);
                    (counts, live)
                });
                counts.files.store(done.done, Ordering::Relaxed);
                counts.uploads.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("uploaded {}", done.what);
            }
            SubmitEvent::Verified { path, report } => render::verified(&path, &report, quiet),
            SubmitEvent::Accepted {
                number,
                total,
                ingest_id,
                duplicated,
            } => say(
                quiet,
                format!(
                    "ingest {number}/{total} accepted (ingest id {ingest_id}{})",
                    if duplicated {
                        ", a repeat Roboflow already had"
                    } else {
                        ""
                    }
                ),
            ),
            SubmitEvent::Ingest(IngestEvent::Progress { ingested, expected }) => {
                let (counts, _) = ingesting.get_or_insert_with(|| {
                    let counts = Arc::new(Ingesting {
                        ingested: 0.into(),
                        expected,
                    });
                    let live = Live::start(counts.clone(), "references ingested", quiet, PROGRESS_INTERVAL);
                    (counts, live)
                });
                counts.ingested.store(ingested, Ordering::Relaxed);
            }
            SubmitEvent::Ingest(IngestEvent::ShardFailed(bad)) => {
                ingesting.take();
                eprintln!(
                    "refgen: shard {} of batch {} failed: {} ({})",
                    bad.shard_id,
                    batch,
                    bad.status_name,
                    // Server text: through the one redaction step, as every message is.
                    refgen::core::redact::redact(
                        &bad.status_metadata.as_ref().map(Value::to_string).unwrap_or_default()
                    )
                );
            }
            SubmitEvent::Ingest(IngestEvent::Ingested { expected, .. }) => {
                ingesting.take();
                say(quiet, format!("all {expected} references ingested into batch {batch}"));
            }
            SubmitEvent::IngestTimedOut { ingested, expected } => {
                ingesting.take();
                eprintln!(
                    "refgen: gave up waiting: {ingested} of {expected} references ingested when --timeout ran out"
                );
            }
            SubmitEvent::JobStarted { job_id, workflow_id } => {
                say(quiet, format!("job {job_id} started (workflow {workflow_id})"));
                job = job_id;
            }
            SubmitEvent::Job(JobEvent::Stage { name, tasks }) => {
                say(quiet, format!("job {job}: stage {name} ({tasks} tasks)"))
            }
            SubmitEvent::Job(JobEvent::Failed(failed)) => eprintln!(
                "refgen: job {job} failed{}",
                refgen::core::redact::redact(&failed.last_notification.map(|n| format!(": {n}")).unwrap_or_default())
            ),
            SubmitEvent::Job(JobEvent::Succeeded(_)) => say(quiet, format!("job {job} finished")),
            SubmitEvent::JobTimedOut { job_id } => {
                eprintln!("refgen: gave up waiting for job {job_id} when --timeout ran out")
            }
            SubmitEvent::Downloaded { files, dir } => say(
                quiet,
                format!(
                    "downloaded {} into {}",
                    plural(files as u64, "result file", "result files"),
                    dir.display()
                ),
            ),
        }
    })
    .await;
    drop(uploading);
    let report = result.map_err(|e| match e {
        refgen::Error::VerifyFailed { path, problems } => anyhow::anyhow!(
            "--verify found problems in {}: {problems}; nothing was submitted",
            path.display()
        ),
        other => other.into(),
    })?;
    if let Some(upload) = &report.upload {
        say(quiet, render::upload_summary(upload, dry_run));
    }
    if dry_run && report.upload.is_some() {
        for request in &report.dry_run_requests {
            println!("{request}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if dry_run {
        for request in &report.dry_run_requests {
            println!("{request}");
        }
        say(
            quiet,
            format!(
                "dry run: {} in {} request(s); nothing was uploaded or sent (URLs valid for {})",
                plural(report.references, "reference", "references"),
                report.requests,
                display_duration(expires_in)
            ),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (one, many) = match report.upload {
        Some(_) => ("file", "files"),
        None => ("reference", "references"),
    };
    say(
        quiet,
        format!(
            "batch {} ({}): {} after {:.0}s",
            report.batch_id,
            plural(report.references, one, many),
            report.outcome.name(),
            report.elapsed.as_secs_f64()
        ),
    );
    if json {
        println!("{}", serde_json::to_value(&report)?);
    }
    Ok(match report.outcome {
        Outcome::Failed => ExitCode::FAILURE,
        Outcome::TimedOut => ExitCode::from(TIMEOUT_EXIT),
        _ => ExitCode::SUCCESS,
    })
}

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
