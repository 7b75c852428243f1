//! `refgen batches list|show|failures`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use refgen::core::pipeline::Progress;
use refgen::failures::IngestFailure;

use crate::flags::{BatchesCommand, FailuresArgs, ListArgs};
use crate::progress::Live;
use crate::render::{self, or_dash, plural, print_json, print_json_line, print_table, say};
use crate::settings;

pub async fn command(command: BatchesCommand, quiet: bool) -> Result<ExitCode> {
    match command {
        BatchesCommand::List(ListArgs { limit, api }) => {
            let (client, ws) = settings::lifecycle_api(&api).connect().await?;
            let batches = refgen::batches::list(&client, &ws, limit).await?;
            render::print_listing(api.json, &ws, "batches", &batches, &BATCHES_COLUMNS, batch_row)?;
            Ok(ExitCode::SUCCESS)
        }
        BatchesCommand::Show { batch_id, api } => {
            refgen::roboflow::validate_batch_id(&batch_id)?;
            let (client, ws) = settings::lifecycle_api(&api).connect().await?;
            let details = refgen::batches::show(&client, &ws, &batch_id).await?;
            let (batch, count, shards, failed, parts) = (
                &details.batch,
                details.count,
                &details.shards,
                details.failed_shards,
                &details.parts,
            );
            if api.json {
                print_json(&details)?;
            } else {
                print_table(
                    &["field", "value"],
                    [
                        ("batch id", batch.batch_id.clone()),
                        ("name", batch.display_name.clone()),
                        ("type", batch.batch_type.clone()),
                        ("content", batch.batch_content_type.clone()),
                        ("created", or_dash(batch.created_date.as_deref())),
                        ("expires", or_dash(batch.expiry_date.as_deref())),
                        ("files", count.to_string()),
                        ("shards", format!("{} ({failed} failed)", shards.len())),
                    ]
                    .into_iter()
                    .map(|(k, v)| vec![k.to_owned(), v]),
                )?;
                if !parts.is_empty() {
                    println!();
                    print_table(
                        &["part", "type", "content type"],
                        parts
                            .iter()
                            .map(|p| vec![p.name.clone(), p.part_type.clone(), p.content_type.clone()]),
                    )?;
                }
                if !shards.is_empty() {
                    println!();
                    print_table(
                        &["shard", "status", "type", "objects", "at"],
                        shards.iter().map(|s| {
                            vec![
                                s.shard_id.clone(),
                                s.status_name.clone(),
                                s.status_type.clone(),
                                s.objects.to_string(),
                                or_dash(s.event_timestamp.as_deref()),
                            ]
                        }),
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BatchesCommand::Content {
            batch_id,
            part,
            limit,
            api,
        } => {
            refgen::roboflow::validate_batch_id(&batch_id)?;
            let (client, ws) = settings::lifecycle_api(&api).connect().await?;
            // Printed as each page comes: a batch of any size in one page of memory.
            let mut out = std::io::BufWriter::new(std::io::stdout());
            let count = refgen::batches::content(&client, &ws, &batch_id, part.as_deref(), limit, &mut |file| {
                let written = if api.json {
                    serde_json::to_writer(&mut out, &file)
                        .map_err(std::io::Error::from)
                        .and_then(|()| writeln!(out))
                } else {
                    writeln!(
                        out,
                        "{}\t{}\t{}",
                        file.part_name.as_deref().unwrap_or("-"),
                        file.file_name,
                        file.content_type.as_deref().unwrap_or("-")
                    )
                };
                written.map_err(|source| refgen::Error::Io {
                    path: "standard output".into(),
                    source,
                })
            })
            .await?;
            out.flush()?;
            say(quiet, format!("batch {batch_id}: {}", plural(count, "file", "files")));
            Ok(ExitCode::SUCCESS)
        }
        BatchesCommand::Failures(args) => failures_command(*args, quiet).await,
    }
}

async fn failures_command(args: FailuresArgs, quiet: bool) -> Result<ExitCode> {
    let mut options = settings::failures(&args)?;
    let live = options.source.as_mut().map(|plan| {
        let progress = Arc::new(Progress::default());
        plan.run.progress = Some(Arc::clone(&progress));
        Live::start(progress, "listing", quiet, Duration::from_secs(30))
    });
    let result = refgen::failures::run(options, &mut |event| render::generate_event(&event, quiet)).await;
    drop(live);
    let report = result?;
    let found = &report.failures;
    if args.json {
        for failure in found {
            print_json_line(failure)?;
        }
    } else if !found.is_empty() {
        print_table(
            &["name", "type", "shard", "reason"],
            found.iter().map(|f: &IngestFailure| {
                vec![
                    f.name.clone().unwrap_or_else(|| "(whole shard)".to_owned()),
                    f.kind.clone(),
                    or_dash(f.shard_id.as_deref()),
                    f.reason.clone(),
                ]
            }),
        )?;
    }
    if let Some(written) = &report.retry_file {
        say(
            quiet,
            format!(
                "wrote {} to {}{}",
                plural(written.references, "reference", "references"),
                written.path.display(),
                if report.signed_again { " (signed again)" } else { "" }
            ),
        );
        if let Some(first) = written.not_found.first() {
            tracing::warn!(
                "{} failed but {} no longer names {} (first: {first})",
                plural(written.not_found.len() as u64, "reference", "references"),
                if report.signed_again {
                    "the source"
                } else {
                    "the references file"
                },
                if written.not_found.len() == 1 { "it" } else { "them" },
            );
        }
    }
    let unnamed = found.iter().filter(|f| f.name.is_none()).count();
    if unnamed > 0 && !report.compared {
        tracing::warn!(
            "{} failed without naming their files: --references FILE (or --source) finds which",
            plural(unnamed as u64, "shard", "shards")
        );
    }
    if found.is_empty() {
        say(
            quiet,
            format!("no reference of batch {} failed to ingest", args.batch_id),
        );
        Ok(ExitCode::SUCCESS)
    } else {
        say(
            quiet,
            format!(
                "{} of batch {} failed to ingest",
                plural(found.len() as u64, "failure", "failures"),
                args.batch_id
            ),
        );
        Ok(ExitCode::FAILURE)
    }
}

/// The columns of `batches list`.
const BATCHES_COLUMNS: [&str; 6] = ["batch id", "name", "type", "content", "created", "expires"];

/// A batch as a row of `batches list`.
fn batch_row(b: &refgen::roboflow::Batch) -> Vec<String> {
    let [created, expires] = [&b.created_date, &b.expiry_date].map(|d| or_dash(d.as_deref()));
    let (id, name) = (b.batch_id.clone(), b.display_name.clone());
    vec![
        id,
        name,
        b.batch_type.clone(),
        b.batch_content_type.clone(),
        created,
        expires,
    ]
}
