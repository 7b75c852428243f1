//! `refgen webhook-check URL`: the library's check of a notification receiver,
//! shown as a table or JSON; `--print` shows the notifications instead.

use std::process::ExitCode;

use anyhow::Result;

use crate::flags::WebhookArgs;
use crate::render::{print_json, print_json_line, print_table};

pub async fn command(args: WebhookArgs, quiet: bool) -> Result<ExitCode> {
    let Some(url) = &args.url else {
        for (_, body) in refgen::webhook::samples(&args.batch_id, &args.job_id) {
            print_json_line(&body)?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    // A check wants a fast answer: 3 attempts unless asked for more.
    let mut retry = args.requests.retry_config();
    if args.requests.max_attempts.is_none() {
        retry = retry.with_max_attempts(3);
    }
    let key = args.publishable_key.as_deref();
    let report = refgen::webhook::check(url, key, retry, &args.batch_id, &args.job_id).await?;
    if args.json {
        print_json(&report)?;
    } else if !quiet {
        print_table(
            &["notification", "status", "result"],
            report.results.iter().map(|r| {
                vec![
                    r.notification_type.clone().unwrap_or_default(),
                    r.status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    r.error.clone().unwrap_or_else(|| "accepted".to_owned()),
                ]
            }),
        )?;
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
