//! Checking a notification receiver before a batch depends on it: one
//! notification of each kind Roboflow sends is POSTed through the shared
//! transport, and each answer is reported.

use std::time::{SystemTime, UNIX_EPOCH};

use refgen_http::{Reject, RetryConfig, SendError, Transport};
use refgen_roboflow::notifications::sample_notifications;
use serde::Serialize;
use serde_json::Value;

use crate::Error;

/// The notifications a check sends, as `(kind, body)`: one ingest status, one
/// files status and one job notification, with event ids of their own.
pub fn samples(batch_id: &str, job_id: &str) -> Vec<(&'static str, Value)> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    sample_notifications(batch_id, job_id, &format!("refgen-check-{stamp}"))
}

/// How the receiver answered one notification.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WebhookResult {
    /// The notification's kind.
    pub kind: String,
    /// Its `type` field.
    #[serde(rename = "type")]
    pub notification_type: Option<String>,
    /// The HTTP status, if the receiver answered.
    pub status: Option<u16>,
    /// Whether it answered 2xx.
    pub ok: bool,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// A receiver's answers. Serialized, it is `refgen webhook-check --json`'s document.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WebhookReport {
    /// The receiver, without its query.
    pub url: String,
    /// Whether every notification was accepted.
    pub ok: bool,
    /// Each notification's answer.
    pub results: Vec<WebhookResult>,
}

/// POSTs [`samples`] to `url` (with `publishable_key` as its `Authorization`,
/// as Roboflow sends it), each through the transport's retries.
///
/// ```no_run
/// # async fn go() -> Result<(), refgen::Error> {
/// let retry = refgen::http::RetryConfig::default();
/// let report = refgen::webhook::check("https://hooks.example.com/rf", None, retry, "my-batch", "my-job").await?;
/// println!("accepted: {}", report.ok);
/// # Ok(())
/// # }
/// ```
pub async fn check(
    url: &str,
    publishable_key: Option<&str>,
    retry: RetryConfig,
    batch_id: &str,
    job_id: &str,
) -> Result<WebhookReport, Error> {
    // A receiver may echo the request: its key and the URL's token are never shown.
    refgen_core::redact::register_query_values(url);
    if let Some(key) = publishable_key {
        refgen_core::redact::register(key);
    }
    let transport = Transport::new(retry).map_err(|e| Error::HttpClient(e.to_string()))?;
    let mut results = Vec::new();
    for (kind, body) in samples(batch_id, job_id) {
        let doing = format!("POSTing a {kind} notification");
        let answer = transport
            .call(&doing)
            .max_body(4096)
            .send(
                || async {
                    let mut request = transport.client().post(url).json(&body);
                    if let Some(key) = publishable_key {
                        request = request.header("authorization", key);
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
        let notification_type = body["notification"]["type"]
            .as_str()
            .or(body["type"].as_str())
            .map(str::to_owned);
        results.push(WebhookResult {
            kind: kind.to_owned(),
            notification_type,
            status,
            ok: error.is_none(),
            error,
        });
    }
    Ok(WebhookReport {
        url: crate::submit::without_signature(url),
        ok: results.iter().all(|r| r.ok),
        results,
    })
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
