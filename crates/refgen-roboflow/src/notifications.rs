//! The notifications Roboflow POSTs to a `notificationsURL`, as the contract
//! describes them: built here so a receiver can be tested before a batch is
//! spent (`refgen webhook-check`).

use serde_json::{Value, json};

/// One notification of each kind Roboflow sends, naming `batch_id` and
/// `job_id`: ingest status, files status (one file ingested, one failed), and a
/// job's end. Each is `(kind, body)`; `event_id` makes each unique.
pub fn sample_notifications(batch_id: &str, job_id: &str, event_prefix: &str) -> Vec<(&'static str, Value)> {
    let envelope = |n: u32, notification: Value| {
        json!({
            "type": "roboflow-data-staging-notification-v1",
            "event_id": format!("{event_prefix}-{n}"),
            "ingest_id": format!("{batch_id}-webhook-check"),
            "batch_id": batch_id,
            "shard_id": format!("{batch_id}-shard-0"),
            "notification": notification,
            "delivery_attempt": 1,
        })
    };
    vec![
        (
            "ingest-status",
            envelope(1, json!({"type": "ingest-status-notification-v1", "success": true})),
        ),
        (
            "files-status",
            envelope(
                2,
                json!({"type": "ingest-files-status-notification-v1", "success": true,
                    "ingested_files": ["images__a.jpg"],
                    "failed_files": [{"type": "download-error", "file_name": "images__b.jpg",
                        "reason": "Could not download the file (HTTP 403)"}],
                    "content_truncated": false}),
            ),
        ),
        (
            "job",
            json!({
                "type": "roboflow-batch-job-notification-v1",
                "event_id": format!("{event_prefix}-3"),
                "job_id": job_id,
                "job_state": "success",
                "delivery_attempt": 1,
            }),
        ),
    ]
}
