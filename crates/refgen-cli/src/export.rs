//! `refgen export BATCH --to DIR`: the library's resumable export, with a
//! progress bar on a terminal (a line every 30 s elsewhere) and a summary.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use refgen::export::{ExportOptions, ExportProgress, export_batch};

use crate::api::{self, print_json};
use crate::args::ExportArgs;
use crate::generate::plural;

pub async fn command(args: ExportArgs, quiet: bool) -> Result<ExitCode> {
    refgen::roboflow::validate_batch_id(&args.batch_id)?;
    let (client, ws) = api::connect(&args.api).await?;
    let options = ExportOptions {
        parts: args.part.clone(),
        overwrite: args.overwrite,
        concurrency: args.concurrency.into(),
    };
    let progress = Arc::new(ExportProgress::default());
    let shown = (!quiet).then(|| show(Arc::clone(&progress)));
    let started = Instant::now();
    let result = export_batch(&client, &ws, &args.batch_id, &args.to, &options, Some(progress)).await;
    if let Some((bar, task)) = shown {
        task.abort();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
    let summary = result?;
    if args.api.json {
        print_json(&summary)?;
    }
    if !quiet {
        eprintln!(
            "refgen: batch {}: {} into {} ({} downloaded, {} already there, {} bytes, {:.1}s)",
            summary.batch_id,
            plural(summary.files, "file", "files"),
            summary.dir.display(),
            summary.downloaded,
            summary.skipped,
            summary.bytes,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A bar of files done against the batch's count on a terminal; a line every 30 s elsewhere.
fn show(progress: Arc<ExportProgress>) -> (Option<ProgressBar>, tokio::task::JoinHandle<()>) {
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} files, {msg} ({elapsed})") {
            bar.set_style(style);
        }
        let drawn = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                drawn.set_length(progress.total.load(Ordering::Relaxed));
                drawn.set_position(progress.done.load(Ordering::Relaxed));
                drawn.set_message(format!("{} bytes", progress.bytes.load(Ordering::Relaxed)));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        (Some(bar), task)
    } else {
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                eprintln!(
                    "refgen: exported {} of {} files",
                    progress.done.load(Ordering::Relaxed),
                    progress.total.load(Ordering::Relaxed)
                );
            }
        });
        (None, task)
    }
}
