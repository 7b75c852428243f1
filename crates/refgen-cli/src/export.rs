//! `refgen export BATCH --to DIR`: the library's resumable export, with a
//! progress display and a summary.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use refgen::export::{ExportOptions, ExportProgress, export_batch};

use crate::flags::ExportArgs;
use crate::progress::Live;
use crate::render::{plural, print_json, say};
use crate::settings;

pub async fn command(args: ExportArgs, quiet: bool) -> Result<ExitCode> {
    refgen::roboflow::validate_batch_id(&args.batch_id)?;
    let (client, ws) = settings::lifecycle_api(&args.api).connect().await?;
    let options = ExportOptions {
        parts: args.part.clone(),
        overwrite: args.overwrite,
        concurrency: args.concurrency.into(),
    };
    let progress = Arc::new(ExportProgress::default());
    let live = Live::start(progress.clone(), "files", quiet, Duration::from_secs(30));
    let started = Instant::now();
    let result = export_batch(&client, &ws, &args.batch_id, &args.to, &options, Some(progress)).await;
    live.finish();
    let summary = result?;
    if args.api.json {
        print_json(&summary)?;
    }
    let files = plural(summary.files, "file", "files");
    let secs = started.elapsed().as_secs_f64();
    let (dir, downloaded, skipped, bytes) = (
        summary.dir.display(),
        summary.downloaded,
        summary.skipped,
        summary.bytes,
    );
    say(
        quiet,
        format!(
            "batch {}: {files} into {dir} ({downloaded} downloaded, {skipped} already there, {bytes} bytes, {secs:.1}s)",
            summary.batch_id
        ),
    );
    Ok(ExitCode::SUCCESS)
}
