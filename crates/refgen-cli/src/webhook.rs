//! `refgen webhook-check URL`: POSTs one notification of each kind Roboflow
//! sends to a receiver (through the shared transport), and says how it answered.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use refgen::http::{Reject, SendError, Transport};
use refgen::roboflow::notifications::sample_notifications;
use serde_json::json;

use crate::api::{print_json, print_json_line, print_table};
use crate::args::WebhookArgs;

pub async fn command(args: WebhookArgs, quiet: bool) -> Result<ExitCode> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let notifications = sample_notifications(&args.batch_id, &args.job_id, &format!("refgen-check-{stamp}"));
    let Some(url) = &args.url else {
        for (_, body) in &notifications {
            print_json_line(body)?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    // A receiver may echo the request: its key and the URL's token are never shown.
    refgen::core::redact::register_query_values(url);
    if let Some(key) = &args.publishable_key {
        refgen::core::redact::register(key);
    }
    // A check wants a fast answer: 3 attempts unless asked for more.
    let mut config = args.requests.retry_config();
    if args.requests.max_attempts.is_none() {
        config = config.with_max_attempts(3);
    }
    let transport = Transport::new(config)?;
    let mut results = Vec::new();
    for (kind, body) in &notifications {
        let doing = format!("POSTing a {kind} notification");
        let answer = transport
            .call(&doing)
            .max_body(4096)
            .send(
                || async {
                    let mut request = transport.client().post(url.as_str()).json(body);
                    if let Some(key) = &args.publishable_key {
                        request = request.header("authorization", key.as_str());
                    }
                    Ok::<_, Refused>(request)
                },
                |response| match response.status {
                    200..=299 => Ok(response.status),
                    status => Err(Reject::Fail(Refused {
                        status,
                        text: response.text().chars().take(200).collect::<String>().replace('\n', " "),
                    })),
                },
            )
            .await;
        let (status, error) = match answer {
            Ok(status) => (Some(status), None),
            Err(SendError::Answer { error, .. }) => (Some(error.status), Some(error.to_string())),
            Err(e) => (None, Some(e.to_string())),
        };
        results.push(
            json!({"kind": kind, "type": body["notification"]["type"].as_str().or(body["type"].as_str()),
            "status": status, "ok": error.is_none(), "error": error}),
        );
    }
    let ok = results.iter().all(|r| r["ok"] == true);
    if args.json {
        print_json(&json!({"url": refgen::submit::without_signature(url), "ok": ok, "results": results}))?;
    } else if !quiet {
        print_table(
            &["notification", "status", "result"],
            results.iter().map(|r| {
                vec![
                    r["type"].as_str().unwrap_or_default().to_owned(),
                    r["status"]
                        .as_u64()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r["error"].as_str().unwrap_or("accepted").to_owned(),
                ]
            }),
        )?;
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A receiver's answer other than 2xx.
struct Refused {
    status: u16,
    text: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if !self.text.trim().is_empty() {
            write!(f, ": {}", self.text.trim())?;
        }
        Ok(())
    }
}
