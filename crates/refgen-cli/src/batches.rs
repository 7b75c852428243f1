//! `refgen batches list|show|failures`.

use std::collections::HashSet;
use std::process::ExitCode;

use anyhow::Result;
use refgen::core::writer::{OutputTarget, ReferenceWriter, TargetFile};
use refgen::failures::{self, IngestFailure};
use refgen::roboflow::collect_pages;
use serde_json::json;

use crate::api::{self, or_dash, print_json, print_json_line, print_table};
use crate::args::{BatchesCommand, FailuresArgs};
use crate::exit::usage;
use crate::generate;

pub async fn command(command: BatchesCommand, quiet: bool) -> Result<ExitCode> {
    match command {
        BatchesCommand::List { limit, api } => {
            let (client, ws) = api::connect(&api).await?;
            let batches = collect_pages(limit.unwrap_or(usize::MAX), |token| {
                let (client, ws) = (&client, &ws);
                async move { client.batches_page(ws, token.as_deref()).await }
            })
            .await?;
            if api.json {
                print_json(&json!({"workspace": ws, "batches": batches}))?;
            } else {
                print_table(
                    &["batch id", "name", "type", "content", "created", "expires"],
                    batches.iter().map(|b| {
                        vec![
                            b.batch_id.clone(),
                            b.display_name.clone(),
                            b.batch_type.clone(),
                            b.batch_content_type.clone(),
                            or_dash(b.created_date.as_deref()),
                            or_dash(b.expiry_date.as_deref()),
                        ]
                    }),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        BatchesCommand::Show { batch_id, api } => {
            refgen::roboflow::validate_batch_id(&batch_id)?;
            let (client, ws) = api::connect(&api).await?;
            let batch = client.batch(&ws, &batch_id).await?;
            let count = client.batch_count(&ws, &batch_id).await?;
            let shards = client.shards(&ws, &batch_id).await?;
            let failed = shards.iter().filter(|s| s.failed()).count();
            let parts = if batch.is_multipart() {
                client.batch_parts(&ws, &batch_id).await?
            } else {
                Vec::new()
            };
            if api.json {
                print_json(&json!({"batch": batch, "count": count, "shards": shards,
                    "failedShards": failed, "parts": parts}))?;
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
        BatchesCommand::Failures(args) => failures_command(*args, quiet).await,
    }
}

async fn failures_command(args: FailuresArgs, quiet: bool) -> Result<ExitCode> {
    refgen::roboflow::validate_batch_id(&args.batch_id)?;
    if args.retry_file.is_some() && args.references_file.is_none() && args.source.is_none() {
        return Err(usage!(
            "--retry-file needs --references FILE (the file the batch was made from) or --source URL \
             (to list and sign again)"
        ));
    }
    // The retry file's target is checked before anything is listed or asked.
    let retry_target = args.retry_file.as_deref().map(TargetFile::create).transpose()?;
    let temp = tempfile::tempdir()?;
    // Listing the source again first: a bad source or selection fails before any Roboflow call.
    let regenerated = match &args.source {
        Some(source) => {
            let mut plan = generate::plan(source, &args.references, args.store.concurrency, false)?;
            let path = temp.path().join("references.jsonl");
            let mut writer = ReferenceWriter::create(OutputTarget::File(path.clone()))?;
            generate::run(
                &mut plan,
                &args.store,
                Some(&mut writer),
                quiet,
                std::time::Duration::from_secs(30),
            )
            .await?;
            writer.finish()?;
            Some(path)
        }
        None => None,
    };
    let original = regenerated.as_deref().or(args.references_file.as_deref());
    let client = api::client(&args.roboflow, &args.store.requests)?;
    let ws = api::workspace(&client, &args.roboflow).await?;
    let mut found = failures::shard_failures(&client, &ws, &args.batch_id).await?;
    if let Some(original) = original {
        let named: HashSet<String> = found.iter().filter_map(|f| f.name.clone()).collect();
        let missing = failures::missing_from_batch(&client, &ws, &args.batch_id, original, &named).await?;
        found.extend(missing);
    }
    if args.json {
        for failure in &found {
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
    let say = |line: String| {
        if !quiet {
            eprintln!("refgen: {line}");
        }
    };
    if let (Some(target), Some(out), Some(original)) = (&args.retry_file, retry_target, original) {
        let names: HashSet<String> = found.iter().filter_map(|f| f.name.clone()).collect();
        let written = failures::write_retry_file(original, &names, out)?;
        say(format!(
            "wrote {} to {}{}",
            generate::plural(written.references, "reference", "references"),
            target.display(),
            if args.source.is_some() { " (signed again)" } else { "" }
        ));
        if !written.not_found.is_empty() {
            tracing::warn!(
                "{} failed but {} no longer names {} (first: {})",
                generate::plural(written.not_found.len() as u64, "reference", "references"),
                if args.source.is_some() {
                    "the source"
                } else {
                    "the references file"
                },
                if written.not_found.len() == 1 { "it" } else { "them" },
                written.not_found[0]
            );
        }
    }
    let unnamed = found.iter().filter(|f| f.name.is_none()).count();
    if unnamed > 0 && original.is_none() {
        tracing::warn!(
            "{} failed without naming their files: --references FILE (or --source) finds which",
            generate::plural(unnamed as u64, "shard", "shards")
        );
    }
    if found.is_empty() {
        say(format!("no reference of batch {} failed to ingest", args.batch_id));
        Ok(ExitCode::SUCCESS)
    } else {
        say(format!(
            "{} of batch {} failed to ingest",
            generate::plural(found.len() as u64, "failure", "failures"),
            args.batch_id
        ));
        Ok(ExitCode::FAILURE)
    }
}
