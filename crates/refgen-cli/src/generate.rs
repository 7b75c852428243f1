//! `refgen generate`: list, filter, sign, write.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use refgen::core::expiry::{display_duration, parse_expiry};
use refgen::core::pipeline::{Objects, Progress, Summary};
use refgen::core::source::SourceUrl;
use refgen::core::writer::{Checkpoint, OutputTarget, ReferenceWriter};
use refgen::generate::{GenerateOptions, Plan};
use serde_json::json;

use crate::args::{GenerateArgs, ReferenceArgs, StoreArgs};
use crate::exit::usage;
use crate::progress::Live;
use crate::stores;

/// The library's plan for these options: everything checked before any request.
pub fn plan(source: &str, args: &ReferenceArgs, concurrency: u16, allow_empty: bool) -> Result<Plan> {
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
        limit: args.limit,
        allow_empty,
        max_size: args.max_size,
        shard: args.shard,
        inventory: args.inventory.clone(),
    };
    let source_url: SourceUrl = source.parse()?;
    check_expiry(&source_url, &args.expires_in, expires_in)?;
    Ok(Plan::new(source, &options)?)
}

/// Refuses an expiry the provider cannot sign, naming the value as it was typed.
pub fn check_expiry(source: &SourceUrl, text: &str, expires_in: Duration) -> Result<()> {
    let max = refgen::store::max_expiry(source.provider);
    if expires_in > max {
        return Err(usage!(
            "invalid expiry `{text}`: {} URLs can be valid for at most {}",
            source.provider,
            display_duration(max)
        ));
    }
    Ok(())
}

/// Refuses an output name that promises compression: refgen writes plain JSON Lines,
/// and a `.gz` name holding plain text would mislead whoever reads it.
pub fn check_output_name(path: &str) -> Result<()> {
    let lower = path.to_ascii_lowercase();
    if let Some(ext) = [".gz", ".bz2", ".xz", ".zst", ".zip"]
        .iter()
        .find(|e| lower.ends_with(*e))
    {
        return Err(usage!(
            "-o {path}: refgen writes plain JSON Lines, not {ext} (Roboflow reads plain files); name it .jsonl"
        ));
    }
    Ok(())
}

/// Opens the store, lists, signs and writes (the writer is finished by the
/// caller), with a progress display while it runs.
pub async fn run(
    plan: &mut Plan,
    store_args: &StoreArgs,
    writer: Option<&mut ReferenceWriter>,
    quiet: bool,
    interval: Duration,
) -> Result<Summary> {
    let store = stores::open(&plan.source, store_args).await?;
    let objects = match &plan.inventory {
        Some(location) => {
            let report = if location.bucket == plan.source.bucket {
                store.clone()
            } else {
                stores::open(location, store_args).await?
            };
            let pattern = location.pattern.clone();
            refgen::generate::inventory(plan, &report, &pattern).await?
        }
        None => Objects::Listing(store.lister()),
    };
    let progress = Arc::new(Progress::default());
    plan.run.progress = Some(Arc::clone(&progress));
    let live = Live::start(progress, quiet, interval);
    let summary = refgen::generate::generate_from(plan, &store, objects, writer).await;
    live.finish();
    Ok(summary?)
}

pub async fn command(args: GenerateArgs, quiet: bool) -> Result<()> {
    // Everything that can be checked locally is checked before any request.
    if args.json && args.output.as_deref().is_none_or(|o| o == "-") && !args.dry_run {
        return Err(usage!(
            "--json prints its summary on stdout, where the references go without -o: pass -o FILE (or --dry-run)"
        ));
    }
    if let Some(path) = &args.output {
        check_output_name(path)?;
    }
    let mut plan = plan(&args.source, &args.references, args.store.concurrency, args.allow_empty)?;
    let target = OutputTarget::from_arg(args.output.as_deref().unwrap_or("-"));
    if args.part_lines.is_some() && !matches!(target, OutputTarget::File(_)) {
        return Err(usage!("--part-lines writes numbered files: give -o FILE"));
    }
    let mut outputs = Vec::new();
    let summary = if args.dry_run {
        run(&mut plan, &args.store, None, quiet, args.progress_interval).await?
    } else {
        let mut writer = match (&target, args.part_lines) {
            (OutputTarget::File(path), Some(lines)) if args.resume => resumable(&args, &mut plan, path, lines, quiet)?,
            (OutputTarget::File(path), Some(lines)) => ReferenceWriter::create_parts(path.clone(), lines)?,
            _ => ReferenceWriter::create(target.clone())?,
        };
        let summary = run(&mut plan, &args.store, Some(&mut writer), quiet, args.progress_interval).await?;
        outputs = writer.outputs();
        writer.finish()?;
        summary
    };
    let destination = match (args.dry_run, outputs.as_slice()) {
        (true, _) => None,
        (false, [first, .., last]) => Some(format!(
            "{} … {} ({} parts)",
            first.display(),
            last.display(),
            outputs.len()
        )),
        (false, _) => Some(destination(&target)),
    };
    if !quiet {
        print_summary_to(&summary, destination.as_deref(), plan.expires_in);
    }
    if args.json {
        let output = match &target {
            OutputTarget::File(p) if !args.dry_run => Some(p.display().to_string()),
            _ => None,
        };
        println!(
            "{}",
            json_summary(
                &summary,
                output.as_deref(),
                plan.expires_in,
                args.dry_run,
                args.references.shard,
                if args.part_lines.is_some() { &outputs } else { &[] },
            )
        );
    }
    Ok(())
}

/// The writer of a `--resume` run: it starts after the parts its checkpoint says
/// are done (when the checkpoint was written with the same settings).
fn resumable(
    args: &GenerateArgs,
    plan: &mut Plan,
    path: &std::path::Path,
    lines: u64,
    quiet: bool,
) -> Result<ReferenceWriter> {
    let r = &args.references;
    if matches!(r.name, crate::args::NameArg::Basename) || r.limit.is_some() {
        return Err(usage!(
            "--resume continues after the last line of the last part done: it does not go with --name basename or --limit"
        ));
    }
    // A report resumes by row: it must be the same report, named by its manifest.
    let by_row = r.inventory.is_some();
    if r.inventory.as_deref().is_some_and(|i| !i.ends_with("manifest.json")) {
        return Err(usage!(
            "--resume with --inventory needs the report's manifest.json, not a folder (a newer report could appear between the runs)"
        ));
    }
    // What makes two runs the same run (the URLs' signatures aside).
    let settings = json!({
        "source": args.source, "include": r.include, "exclude": r.exclude, "images": r.images,
        "videos": r.videos, "ignore_case": r.ignore_case, "name": format!("{:?}", r.name),
        "expires_in": r.expires_in, "max_size": r.max_size, "shard": r.shard.map(|s| s.to_string()),
        "part_lines": lines, "inventory": r.inventory,
    })
    .to_string();
    let (first, after) = match Checkpoint::read(path)? {
        Some(done) if done.settings == settings => {
            if !quiet {
                eprintln!(
                    "refgen: resuming after part {} (the last key written was {:?})",
                    done.parts.saturating_sub(1),
                    done.last_key
                );
            }
            (done.parts, Some(done))
        }
        Some(_) => {
            return Err(usage!(
                "{} was written by a run with other settings: run that command again, or delete it to start over",
                Checkpoint::path(path).display()
            ));
        }
        None => (0, None),
    };
    match after {
        Some(done) if by_row => plan.run.skip_rows = done.position.unwrap_or(0),
        Some(done) => plan.selection = plan.selection.resuming_after(Some(done.last_key)),
        None => {}
    }
    Ok(ReferenceWriter::create_parts_resumable(
        path.to_owned(),
        lines,
        first,
        settings,
        by_row,
    )?)
}

/// The `--json` document: its fields are documented in the README and stable.
pub fn json_summary(
    summary: &Summary,
    output: Option<&str>,
    expires_in: Duration,
    dry_run: bool,
    shard: Option<refgen::core::shard::Shard>,
    parts: &[std::path::PathBuf],
) -> serde_json::Value {
    let parts: Vec<String> = parts.iter().map(|p| p.display().to_string()).collect();
    json!({
        "parts": parts,
        "shard": shard.map(|s| s.to_string()),
        "listed": summary.listed,
        "matched": summary.matched,
        "written": summary.written,
        "skipped": {
            "filtered": summary.skipped.filtered,
            "other_shards": summary.skipped.other_shards,
            "archived": summary.skipped.archived,
            "too_large": summary.skipped.too_large,
            "superseded": summary.skipped.superseded,
            "resumed": summary.skipped.resumed,
        },
        "limited": summary.limited,
        "dry_run": dry_run,
        "output": output,
        "expires_in_seconds": expires_in.as_secs(),
        "elapsed_seconds": summary.elapsed.as_secs_f64(),
    })
}

fn destination(target: &OutputTarget) -> String {
    match target {
        OutputTarget::Stdout if std::io::stdout().is_terminal() => "the terminal".to_owned(),
        OutputTarget::Stdout => "standard output".to_owned(),
        OutputTarget::File(p) => p.display().to_string(),
    }
}

/// `1 reference`, `2 references`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one-line summary on stderr, naming where the references went (none: a dry run).
pub fn print_summary_to(summary: &Summary, destination: Option<&str>, expires_in: Duration) {
    let secs = summary.elapsed.as_secs_f64();
    let listed = plural(summary.listed, "object", "objects");
    let mut limited = if summary.limited {
        " (stopped at --limit)".to_owned()
    } else {
        String::new()
    };
    let skipped = &summary.skipped;
    let reasons: Vec<String> = [
        (skipped.archived, "archived"),
        (skipped.too_large, "too large"),
        (skipped.other_shards, "in other shards"),
        (skipped.superseded, "older versions or delete markers"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, why)| format!("{n} {why}"))
    .collect();
    if !reasons.is_empty() {
        limited.push_str(&format!(" (skipped {})", reasons.join(", ")));
    }
    match destination {
        Some(destination) => {
            let rate = if secs > 0.0 { summary.written as f64 / secs } else { 0.0 };
            eprintln!(
                "refgen: listed {listed}, matched {}, wrote {} to {destination} in {secs:.2}s ({rate:.0}/s){limited}; URLs valid for {}",
                summary.matched,
                plural(summary.written, "reference", "references"),
                display_duration(expires_in)
            );
        }
        None => eprintln!(
            "refgen: dry run: listed {listed}, matched {} in {secs:.2}s{limited}; nothing was signed or written",
            summary.matched
        ),
    }
}
