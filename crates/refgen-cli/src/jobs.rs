//! `refgen jobs list|show|abort|restart|logs`.

use std::process::ExitCode;

use anyhow::Result;
use refgen::jobs::state;
use refgen::roboflow::RestartOptions;
use serde_json::{Value, json};

use crate::flags::{JobsCommand, ListArgs};
use crate::render::{self, or_dash, print_json, print_json_line, print_table, say};
use crate::settings;

pub async fn command(command: JobsCommand, quiet: bool) -> Result<ExitCode> {
    let say = |line: String| say(quiet, line);
    match command {
        JobsCommand::List(ListArgs { limit, api }) => {
            let (client, ws) = settings::lifecycle_api(&api).connect().await?;
            let jobs = refgen::jobs::list(&client, &ws, limit).await?;
            render::print_listing(api.json, &ws, "jobs", &jobs, &JOBS_COLUMNS, job_row)?;
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Show { job_id, api } => {
            refgen::roboflow::validate_job_id(&job_id)?;
            let (client, ws) = settings::lifecycle_api(&api).connect().await?;
            let details = refgen::jobs::show(&client, &ws, &job_id).await?;
            let (job, shown) = (&details.job, serde_json::to_value(&details.stages)?);
            let shown = shown.as_array().cloned().unwrap_or_default();
            if api.json {
                print_json(&details)?;
            } else {
                print_table(
                    &["field", "value"],
                    [
                        ("job id", job.job_id.clone()),
                        ("name", or_dash(job.name.as_deref())),
                        ("state", state(job).to_owned()),
                        ("stage", or_dash(job.current_stage.as_deref())),
                        ("created", or_dash(job.created_at.as_deref())),
                        ("updated", or_dash(job.last_update.as_deref())),
                    ]
                    .into_iter()
                    .map(|(k, v)| vec![k.to_owned(), v]),
                )?;
                println!();
                print_table(
                    &["stage", "id", "status", "tasks", "by status", "output batches"],
                    shown.iter().map(|s| {
                        let by: Vec<String> = s["tasksByStatus"]
                            .as_object()
                            .map(|o| o.iter().map(|(k, v)| format!("{k}: {v}")).collect())
                            .unwrap_or_default();
                        let outputs: Vec<&str> = s["outputBatches"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        vec![
                            s["processingStageName"].as_str().unwrap_or_default().to_owned(),
                            s["processingStageId"].as_str().unwrap_or_default().to_owned(),
                            s["statusType"].as_str().unwrap_or_default().to_owned(),
                            s["tasksNumber"].to_string(),
                            or_dash(Some(&by.join(", "))),
                            or_dash(Some(&outputs.join(" "))),
                        ]
                    }),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Abort { job_id, api } => {
            refgen::roboflow::validate_job_id(&job_id)?;
            let (client, ws) = settings::lifecycle_api(&api).connect().await?;
            refgen::jobs::abort(&client, &ws, &job_id).await?;
            if api.json {
                print_json(&json!({"jobId": job_id, "aborted": true}))?;
            }
            say(format!("asked Roboflow to abort job {job_id}"));
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Restart(args) => {
            refgen::roboflow::validate_job_id(&args.job_id)?;
            let (client, ws) = settings::lifecycle_api(&args.api).connect().await?;
            let options = RestartOptions {
                machine_type: args.machine_type.clone(),
                workers_per_machine: settings::workers_per_machine(
                    args.workers_per_machine,
                    args.machine_size.as_deref(),
                ),
                max_parallel_tasks: args.max_parallel_tasks,
                processing_timeout_seconds: args.processing_timeout,
                max_image_failure_rate: args.max_image_failure_rate,
            };
            refgen::jobs::restart(&client, &ws, &args.job_id, &options).await?;
            if args.api.json {
                print_json(&json!({"jobId": args.job_id, "restarted": true, "overrides": options.body()}))?;
            }
            say(format!(
                "asked Roboflow to restart job {}{}",
                args.job_id,
                if options.body().is_some() {
                    " with the overrides given"
                } else {
                    " as it was"
                }
            ));
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Logs { job_id, severity, api } => {
            refgen::roboflow::validate_job_id(&job_id)?;
            let (client, ws) = settings::lifecycle_api(&api).connect().await?;
            let mut first = true;
            // Printed a page at a time: a long log starts showing at once.
            refgen::jobs::logs(&client, &ws, &job_id, severity.map(Into::into), |entries| {
                if api.json {
                    for entry in entries {
                        print_json_line(entry).map_err(io)?;
                    }
                } else if !entries.is_empty() {
                    if !std::mem::replace(&mut first, false) {
                        println!();
                    }
                    print_table(
                        &["at", "severity", "module", "type", "payload"],
                        entries.iter().map(|e| {
                            vec![
                                e.created_at.clone(),
                                e.severity.clone(),
                                e.reporting_module.clone(),
                                e.log_type.clone(),
                                match &e.payload {
                                    Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                },
                            ]
                        }),
                    )
                    .map_err(io)?;
                }
                Ok(())
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A failure to print a page, as the library's error for standard output.
fn io(e: anyhow::Error) -> refgen::Error {
    let kind = e
        .downcast_ref::<std::io::Error>()
        .map_or(std::io::ErrorKind::Other, std::io::Error::kind);
    refgen::Error::Io {
        path: "standard output".into(),
        source: std::io::Error::new(kind, e.to_string()),
    }
}

/// The columns of `jobs list`.
const JOBS_COLUMNS: [&str; 6] = ["job id", "name", "state", "stage", "created", "updated"];

/// A job as a row of `jobs list`.
fn job_row(j: &refgen::roboflow::Job) -> Vec<String> {
    vec![
        j.job_id.clone(),
        or_dash(j.name.as_deref()),
        state(j).to_owned(),
        or_dash(j.current_stage.as_deref()),
        or_dash(j.created_at.as_deref()),
        or_dash(j.last_update.as_deref()),
    ]
}
