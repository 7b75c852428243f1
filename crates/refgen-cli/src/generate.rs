//! `refgen generate`: the library's run, with a progress display, the summary
//! line and the `--json` document.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use refgen::core::pipeline::Progress;
use refgen::generate::{GenerateReport, Output, Plan};
use refgen::store::StoreOptions;

use crate::flags::GenerateArgs;
use crate::progress::Live;
use crate::render;
use crate::settings;

pub async fn command(args: GenerateArgs, quiet: bool) -> Result<()> {
    let (mut plan, store, output) = settings::generate(&args)?;
    let to_terminal =
        matches!(output, Output::Target(refgen::core::writer::OutputTarget::Stdout)) && std::io::stdout().is_terminal();
    let report = run(&mut plan, &store, output, quiet, args.progress_interval).await?;
    if !quiet {
        let destination = match report.destination() {
            Some(_) if to_terminal => Some("the terminal".to_owned()),
            other => other,
        };
        render::generate_summary(&report, destination.as_deref());
    }
    if args.json {
        println!("{}", serde_json::to_value(&report)?);
    }
    Ok(())
}

/// The library's run with a progress display while it goes.
pub async fn run(
    plan: &mut Plan,
    store: &StoreOptions,
    output: Output,
    quiet: bool,
    interval: Duration,
) -> Result<GenerateReport> {
    let progress = Arc::new(Progress::default());
    plan.run.progress = Some(Arc::clone(&progress));
    let live = Live::start(progress, "listing", quiet, interval);
    let report = refgen::generate::run(plan, store, output, &mut |event| render::generate_event(&event, quiet)).await;
    live.finish();
    Ok(report?)
}
