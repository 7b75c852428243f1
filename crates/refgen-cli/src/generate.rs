//! `refgen generate`: list, filter, sign, write.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Result, bail};
use refgen_core::expiry::{display_duration, parse_expiry};
use refgen_core::filter::{MediaPreset, Selection, SelectionBuilder};
use refgen_core::naming::Namer;
use refgen_core::pipeline::{Summary, generate};
use refgen_core::source::SourceUrl;
use refgen_core::writer::{OutputTarget, ReferenceWriter};

use crate::args::{GenerateArgs, ReferenceArgs, StoreArgs};
use crate::stores;

/// Everything about a references file that can be checked before any request.
pub struct Plan {
    pub source: SourceUrl,
    pub selection: Selection,
    pub expires_in: Duration,
    pub namer: Namer,
}

pub fn plan(source: &str, args: &ReferenceArgs) -> Result<Plan> {
    let source: SourceUrl = source.parse()?;
    let expires_in = parse_expiry(&args.expires_in)?;
    check_expiry(&source, &args.expires_in, expires_in)?;
    let mut selection = SelectionBuilder::new(&source.pattern)
        .include(&args.include)
        .exclude(&args.exclude)
        .case_insensitive(args.ignore_case);
    if args.images {
        selection = selection.preset(MediaPreset::Images);
    }
    if args.videos {
        selection = selection.preset(MediaPreset::Videos);
    }
    Ok(Plan {
        selection: selection.build()?,
        source,
        expires_in,
        namer: Namer::new(args.name.into()),
    })
}

pub fn check_expiry(source: &SourceUrl, text: &str, expires_in: Duration) -> Result<()> {
    let max = stores::max_expiry(source.provider);
    if expires_in > max {
        bail!(
            "invalid expiry `{text}`: {} URLs can be valid for at most {}",
            source.provider,
            display_duration(max)
        );
    }
    Ok(())
}

/// Lists, signs and writes; the writer is finished by the caller.
pub async fn run(plan: &mut Plan, store_args: &StoreArgs, writer: &mut ReferenceWriter) -> Result<Summary> {
    let store = stores::open(&plan.source, store_args).await?;
    let summary = generate(
        store.lister(),
        store.shared_signer(),
        &plan.selection,
        plan.expires_in,
        usize::from(store_args.concurrency),
        &mut plan.namer,
        writer,
    )
    .await?;
    if summary.matched == 0 && summary.listed > 0 {
        tracing::warn!("no object matched the filters ({} listed)", summary.listed);
    }
    Ok(summary)
}

pub async fn command(args: GenerateArgs) -> Result<()> {
    // Everything that can be checked locally is checked before any request.
    let mut plan = plan(&args.source, &args.references)?;
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
