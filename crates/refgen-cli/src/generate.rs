//! `refgen generate`: list, filter, sign, write.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Result, bail};
use refgen::generate::{GenerateOptions, Plan};
use refgen_core::expiry::{display_duration, parse_expiry};
use refgen_core::pipeline::Summary;
use refgen_core::source::SourceUrl;
use refgen_core::writer::{OutputTarget, ReferenceWriter};

use crate::args::{GenerateArgs, ReferenceArgs, StoreArgs};
use crate::stores;

/// The library's plan for these options: everything checked before any request.
pub fn plan(source: &str, args: &ReferenceArgs, concurrency: u16) -> Result<Plan> {
    let expires_in = parse_expiry(&args.expires_in)?;
    let options = GenerateOptions {
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        ignore_case: args.ignore_case,
        images: args.images,
        videos: args.videos,
        expires_in,
        name_mode: args.name.into(),
        concurrency: usize::from(concurrency),
    };
    let source_url: SourceUrl = source.parse()?;
    check_expiry(&source_url, &args.expires_in, expires_in)?;
    Ok(Plan::new(source, &options)?)
}

/// Refuses an expiry the provider cannot sign, naming the value as it was typed.
pub fn check_expiry(source: &SourceUrl, text: &str, expires_in: Duration) -> Result<()> {
    let max = refgen::store::max_expiry(source.provider);
    if expires_in > max {
        bail!(
            "invalid expiry `{text}`: {} URLs can be valid for at most {}",
            source.provider,
            display_duration(max)
        );
    }
    Ok(())
}

/// Opens the store, lists, signs and writes; the writer is finished by the caller.
pub async fn run(plan: &mut Plan, store_args: &StoreArgs, writer: &mut ReferenceWriter) -> Result<Summary> {
    let store = stores::open(&plan.source, store_args).await?;
    Ok(refgen::generate::generate(plan, &store, writer).await?)
}

pub async fn command(args: GenerateArgs) -> Result<()> {
    // Everything that can be checked locally is checked before any request.
    let mut plan = plan(&args.source, &args.references, args.store.concurrency)?;
    let target = OutputTarget::from_arg(args.output.as_deref().unwrap_or("-"));
    let mut writer = ReferenceWriter::create(target.clone())?;
    let summary = run(&mut plan, &args.store, &mut writer).await?;
    writer.finish()?;
    if !args.quiet {
        print_summary(&summary, &target, plan.expires_in);
    }
    Ok(())
}

pub fn print_summary(summary: &Summary, target: &OutputTarget, expires_in: Duration) {
    let destination = match target {
        OutputTarget::Stdout if std::io::stdout().is_terminal() => "the terminal".to_owned(),
        OutputTarget::Stdout => "standard output".to_owned(),
        OutputTarget::File(p) => p.display().to_string(),
    };
    print_summary_to(summary, &destination, expires_in);
}

/// The one-line summary on stderr, naming where the references went.
pub fn print_summary_to(summary: &Summary, destination: &str, expires_in: Duration) {
    let secs = summary.elapsed.as_secs_f64();
    let rate = if secs > 0.0 { summary.written as f64 / secs } else { 0.0 };
    eprintln!(
        "refgen: listed {} objects, matched {}, wrote {} references to {destination} in {secs:.2}s ({rate:.0}/s); URLs valid for {}",
        summary.listed,
        summary.matched,
        summary.written,
        display_duration(expires_in)
    );
}
