//! `refgen jobs list|show|abort|restart|logs`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Result;
use refgen::roboflow::{Job, RestartOptions, collect_pages};
use serde_json::{Value, json};

use crate::api::{self, or_dash, print_json, print_json_line, print_table};
use crate::args::JobsCommand;

fn state(job: &Job) -> &'static str {
    match (job.is_terminal, job.error) {
        (true, true) => "failed",
        (true, false) => "succeeded",
        (false, true) => "failing",
        (false, false) => "running",
    }
}

pub async fn command(command: JobsCommand, quiet: bool) -> Result<ExitCode> {
    let say = |line: String| {
        if !quiet {
            eprintln!("refgen: {line}");
        }
    };
    match command {
        JobsCommand::List { limit, api } => {
            let (client, ws) = api::connect(&api).await?;
            let jobs = collect_pages(limit.unwrap_or(usize::MAX), |token| {
                let (client, ws) = (&client, &ws);
                async move { client.jobs_page(ws, token.as_deref()).await }
            })
            .await?;
            if api.json {
                print_json(&json!({"workspace": ws, "jobs": jobs}))?;
            } else {
                print_table(
                    &["job id", "name", "state", "stage", "created", "updated"],
                    jobs.iter().map(|j| {
                        vec![
                            j.job_id.clone(),
                            or_dash(j.name.as_deref()),
                            state(j).to_owned(),
                            or_dash(j.current_stage.as_deref()),
                            or_dash(j.created_at.as_deref()),
                            or_dash(j.last_update.as_deref()),
                        ]
                    }),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Show { job_id, api } => {
            refgen::roboflow::validate_job_id(&job_id)?;
            let (client, ws) = api::connect(&api).await?;
            let job = client.job(&ws, &job_id).await?;
            let stages = client.job_stages(&ws, &job_id).await?;
            let mut shown = Vec::new();
            for stage in &stages {
                let tasks = client.stage_tasks(&ws, &job_id, &stage.id).await?;
                let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
                for t in &tasks {
                    *by_status.entry(t.status_type.clone()).or_default() += 1;
                }
                let mut v = serde_json::to_value(stage)?;
                v["tasksByStatus"] = json!(by_status);
                shown.push(v);
            }
            if api.json {
                print_json(&json!({"job": job, "state": state(&job), "stages": shown}))?;
            } else {
                print_table(
                    &["field", "value"],
                    [
                        ("job id", job.job_id.clone()),
                        ("name", or_dash(job.name.as_deref())),
                        ("state", state(&job).to_owned()),
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
            let (client, ws) = api::connect(&api).await?;
            client.abort_job(&ws, &job_id).await?;
            if api.json {
                print_json(&json!({"jobId": job_id, "aborted": true}))?;
            }
            say(format!("asked Roboflow to abort job {job_id}"));
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Restart(args) => {
            refgen::roboflow::validate_job_id(&args.job_id)?;
            let (client, ws) = api::connect(&args.api).await?;
            let options = RestartOptions {
                machine_type: args.machine_type.clone(),
                workers_per_machine: args.workers_per_machine,
                max_parallel_tasks: args.max_parallel_tasks,
                processing_timeout_seconds: args.processing_timeout,
                max_image_failure_rate: args.max_image_failure_rate,
            };
            client.restart_job(&ws, &args.job_id, &options).await?;
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
            let (client, ws) = api::connect(&api).await?;
            let mut token: Option<String> = None;
            let mut first = true;
            loop {
                let page = client
                    .job_logs_page(&ws, &job_id, severity.map(Into::into), token.as_deref())
                    .await?;
                // Printed a page at a time: a long log starts showing at once.
                if api.json {
                    for entry in &page.items {
                        print_json_line(entry)?;
                    }
                } else if !page.items.is_empty() {
                    if !first {
                        println!();
                    }
                    first = false;
                    print_table(
                        &["at", "severity", "module", "type", "payload"],
                        page.items.iter().map(|e| {
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
                    )?;
                }
                match page.next_after(token.as_deref()) {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
