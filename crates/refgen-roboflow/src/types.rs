//! Request and answer shapes of the contract.

use serde::{Deserialize, Serialize};

/// Images or videos: decides the ingest endpoint, the body's field names and the job type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MediaKind {
    /// `image-references`, `imageReferences…`, `simple-image-processing-v1`.
    Images,
    /// `video-references`, `videoReferences…`, `simple-video-processing-v1`.
    Videos,
}

impl MediaKind {
    /// The ingest path segment.
    pub fn endpoint(self) -> &'static str {
        match self {
            MediaKind::Images => "image-references",
            MediaKind::Videos => "video-references",
        }
    }

    /// Most references per inline request: the official client's 20,000 for images;
    /// videos are kept at 5,000.
    pub fn inline_limit(self) -> usize {
        match self {
            MediaKind::Images => 20_000,
            MediaKind::Videos => 5_000,
        }
    }
}

/// One reference of an inline ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// Unique name.
    pub name: String,
    /// Signed GET URL.
    pub url: String,
}

/// What to ingest: a references file by URL, or references inline.
#[derive(Debug, Clone)]
pub enum References {
    /// `imageReferencesURL` / `videoReferencesURL`.
    Url(String),
    /// `imageReferences` / `videoReferences`.
    Inline(Vec<Reference>),
}

/// One ingest request.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// Images or videos.
    pub kind: MediaKind,
    /// Target batch.
    pub batch_id: String,
    /// `displayName` (defaults to the batch id).
    pub display_name: Option<String>,
    /// The references.
    pub references: References,
    /// `ingestId`.
    pub ingest_id: String,
    /// `notificationsURL`.
    pub notifications_url: Option<String>,
    /// `notificationCategories`.
    pub notification_categories: Vec<String>,
}

/// Answer to an ingest.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IngestResponse {
    /// The ingest id.
    #[serde(rename = "ingestId", default)]
    pub ingest_id: String,
    /// Shards created.
    #[serde(rename = "shardIds", default)]
    pub shard_ids: Vec<String>,
    /// A repeat of an earlier request, recognised as such.
    #[serde(default)]
    pub duplicated: bool,
}

/// A batch shard's status.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Shard {
    /// Id.
    #[serde(rename = "shardId")]
    pub shard_id: String,
    /// Status name.
    #[serde(rename = "statusName", default)]
    pub status_name: String,
    /// Status type; contains `error` for a failed shard.
    #[serde(rename = "statusType", default)]
    pub status_type: String,
    /// Objects in the shard.
    #[serde(rename = "shardObjectsCount", default)]
    pub objects: u64,
    /// When the status was set.
    #[serde(rename = "eventTimestamp", default)]
    pub event_timestamp: Option<String>,
    /// Details.
    #[serde(rename = "statusMetadata", default)]
    pub status_metadata: Option<serde_json::Value>,
}

impl Shard {
    /// A shard whose status type says error.
    pub fn failed(&self) -> bool {
        self.status_type.to_ascii_lowercase().contains("error")
    }
}

/// The job's state.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Job {
    /// Id.
    #[serde(rename = "jobId", default)]
    pub job_id: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// When it was created.
    #[serde(rename = "createdAt", default)]
    pub created_at: Option<String>,
    /// When it last changed.
    #[serde(rename = "lastUpdate", default)]
    pub last_update: Option<String>,
    /// Current stage, if any.
    #[serde(rename = "currentStage", default)]
    pub current_stage: Option<String>,
    /// Planned stages.
    #[serde(rename = "plannedStages", default)]
    pub planned_stages: Option<Vec<String>>,
    /// Failed.
    #[serde(default)]
    pub error: bool,
    /// Done (successfully or not).
    #[serde(rename = "isTerminal", default)]
    pub is_terminal: bool,
    /// Last notification, free form.
    #[serde(rename = "lastNotification", default)]
    pub last_notification: Option<serde_json::Value>,
}

/// One processing stage of a job.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Stage {
    /// Id.
    #[serde(rename = "processingStageId", default)]
    pub id: String,
    /// Name (`export` holds the results).
    #[serde(rename = "processingStageName", default)]
    pub name: String,
    /// Tasks in the stage.
    #[serde(rename = "tasksNumber", default)]
    pub tasks: u64,
    /// Batches produced.
    #[serde(rename = "outputBatches", default)]
    pub output_batches: Vec<String>,
    /// Status.
    #[serde(rename = "statusType", default)]
    pub status_type: String,
}

/// A part of an output batch.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BatchPart {
    /// Name.
    #[serde(rename = "partName")]
    pub name: String,
    /// Type.
    #[serde(rename = "partType", default)]
    pub part_type: String,
    /// Content type.
    #[serde(rename = "contentType", default)]
    pub content_type: String,
}

/// A downloadable file of an output batch.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FileMetadata {
    /// Where to GET it.
    #[serde(rename = "downloadURL")]
    pub download_url: String,
    /// File name.
    #[serde(rename = "fileName")]
    pub file_name: String,
    /// Part.
    #[serde(rename = "partName", default)]
    pub part_name: Option<String>,
    /// Shard.
    #[serde(rename = "shardId", default)]
    pub shard_id: Option<String>,
    /// Content type.
    #[serde(rename = "contentType", default)]
    pub content_type: Option<String>,
}

/// A batch of the workspace (`GET …/batches/{id}`, and each of `GET …/batches`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Batch {
    /// Id.
    #[serde(rename = "batchId")]
    pub batch_id: String,
    /// Display name.
    #[serde(rename = "displayName", default)]
    pub display_name: String,
    /// `simple-batch`, `sharded-batch` or `multipart-batch` (a job's output).
    #[serde(rename = "batchType", default)]
    pub batch_type: String,
    /// What it holds (images, videos, …).
    #[serde(rename = "batchContentType", default)]
    pub batch_content_type: String,
    /// When it was created.
    #[serde(rename = "createdDate", default)]
    pub created_date: Option<String>,
    /// When it expires.
    #[serde(rename = "expiryDate", default)]
    pub expiry_date: Option<String>,
}

impl Batch {
    /// A job's output, in parts (listed by part name).
    pub fn is_multipart(&self) -> bool {
        self.batch_type == "multipart-batch"
    }
}

/// One page of a paged listing, and the token of the next.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// The next page's token; none on the last page.
    pub next_page_token: Option<String>,
}

impl<T> Page<T> {
    /// The token of the page after this one, fetched with `current`: none on the
    /// last page, and none when the service hands back the same token (which
    /// would page forever).
    pub fn next_after(&self, current: Option<&str>) -> Option<String> {
        self.next_page_token.clone().filter(|t| current != Some(t.as_str()))
    }
}

/// A task of a job's stage.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Task {
    /// Id.
    #[serde(rename = "taskId", default)]
    pub task_id: String,
    /// Status.
    #[serde(rename = "statusType", default)]
    pub status_type: String,
    /// Progress (0 to 1), when told.
    #[serde(default)]
    pub progress: Option<f64>,
    /// Last notification, free form.
    #[serde(default)]
    pub notification: Option<serde_json::Value>,
    /// When the status was set.
    #[serde(rename = "eventTimestamp", default)]
    pub event_timestamp: Option<String>,
}

/// One log entry of a job.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LogEntry {
    /// When.
    #[serde(rename = "createdAt", default)]
    pub created_at: String,
    /// `info`, `warning` or `error`.
    #[serde(default)]
    pub severity: String,
    /// The stage it is about.
    #[serde(rename = "processingStageId", default, skip_serializing_if = "Option::is_none")]
    pub processing_stage_id: Option<String>,
    /// The task it is about.
    #[serde(rename = "taskId", default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Which part of the service wrote it.
    #[serde(rename = "reportingModule", default)]
    pub reporting_module: String,
    /// Its kind.
    #[serde(rename = "logType", default)]
    pub log_type: String,
    /// Its content, free form.
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// Log severities `jobs logs` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Everything.
    Info,
    /// Warnings and errors.
    Warning,
    /// Errors only.
    Error,
}

impl Severity {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a restart changes (`parameters-override-v1`); all empty restarts the job
/// as it was, and then no body is sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestartOptions {
    /// `computeConfiguration.machineType`: `cpu` or `gpu`.
    pub machine_type: Option<String>,
    /// `computeConfiguration.workersPerMachine`.
    pub workers_per_machine: Option<u32>,
    /// `maxParallelTasks`.
    pub max_parallel_tasks: Option<u32>,
    /// `processingTimeoutSeconds`.
    pub processing_timeout_seconds: Option<u64>,
    /// `maxImageFailureRate`.
    pub max_image_failure_rate: Option<f64>,
}

impl RestartOptions {
    /// The request body, or none when nothing is overridden.
    pub fn body(&self) -> Option<serde_json::Value> {
        use serde_json::json;
        if *self == RestartOptions::default() {
            return None;
        }
        let mut body = json!({"type": "parameters-override-v1"});
        if self.machine_type.is_some() || self.workers_per_machine.is_some() {
            let mut compute = json!({"type": "compute-configuration-v2"});
            if let Some(m) = &self.machine_type {
                compute["machineType"] = json!(m);
            }
            if let Some(w) = self.workers_per_machine {
                compute["workersPerMachine"] = json!(w);
            }
            body["computeConfiguration"] = compute;
        }
        if let Some(t) = self.max_parallel_tasks {
            body["maxParallelTasks"] = json!(t);
        }
        if let Some(t) = self.processing_timeout_seconds {
            body["processingTimeoutSeconds"] = json!(t);
        }
        if let Some(r) = self.max_image_failure_rate {
            body["maxImageFailureRate"] = json!(r);
        }
        Some(body)
    }
}

/// Optional settings of a job, beyond the contract's minimal body.
#[derive(Debug, Clone, Default)]
pub struct JobOptions {
    /// `?name=`.
    pub name: Option<String>,
    /// `computeConfiguration.machineType`: `cpu` or `gpu`.
    pub machine_type: Option<String>,
    /// `computeConfiguration.workersPerMachine`.
    pub workers_per_machine: Option<u32>,
    /// `processingTimeoutSeconds`.
    pub processing_timeout_seconds: Option<u64>,
    /// `maxParallelTasks`.
    pub max_parallel_tasks: Option<u32>,
    /// `maxImageFailureRate` (images only).
    pub max_image_failure_rate: Option<f64>,
    /// `processingSpecification.workflowParameters`.
    pub workflow_parameters: Option<serde_json::Value>,
    /// `processingSpecification.imageInputName`.
    pub image_input_name: Option<String>,
    /// `processingSpecification.aggregationFormat`: `csv` or `jsonl`.
    pub aggregation_format: Option<String>,
    /// `processingSpecification.maxVideoFPS` (videos only).
    pub max_video_fps: Option<f64>,
    /// `notificationsURL`.
    pub notifications_url: Option<String>,
    /// `processingSpecification.persistImagesOutputs`: keep the workflow's image outputs.
    pub persist_images_outputs: bool,
    /// `processingSpecification.imagesOutputsToBePersisted`: which image outputs to keep.
    pub images_outputs_to_be_persisted: Vec<String>,
    /// `jobInput.partName`: the part of a multipart batch to process.
    pub part_name: Option<String>,
    /// `jobInput.imagesMetadataPart`: the part holding per-image metadata.
    pub images_metadata_part: Option<String>,
    /// `processingSpecification.imagesMetadataInputsMapping`: workflow input → metadata
    /// field, in the order given.
    pub images_metadata_inputs_mapping: Vec<(String, String)>,
    /// `inferenceBackend`: `old-inference` or `inference-models`.
    pub inference_backend: Option<String>,
}

/// Where to PUT a local file: a signed URL and the headers to send with it, exactly.
#[derive(Clone)]
pub struct SignedUpload {
    /// The signed URL.
    pub upload_url: String,
    /// Headers to send, as given.
    pub extension_headers: Vec<(String, String)>,
}

impl std::fmt::Debug for SignedUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL's query is a credential.
        f.debug_struct("SignedUpload")
            .field("upload_url", &self.upload_url.split('?').next().unwrap_or_default())
            .field("extension_headers", &self.extension_headers.len())
            .finish()
    }
}

/// The workers per machine of inference-cli's deprecated `--machine-size`
/// (`xs`, `s`, `m`, `l`, `xl`), as that client maps it.
pub fn workers_for_machine_size(size: &str) -> Option<u32> {
    match size {
        "xs" => Some(8),
        "s" => Some(4),
        "m" => Some(2),
        "l" | "xl" => Some(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_stops_on_the_last_page_and_on_a_token_handed_back() {
        let page = |t: Option<&str>| Page::<u8> {
            items: Vec::new(),
            next_page_token: t.map(str::to_owned),
        };
        assert_eq!(page(Some("b")).next_after(Some("a")).as_deref(), Some("b"));
        assert_eq!(page(Some("a")).next_after(Some("a")), None);
        assert_eq!(page(None).next_after(Some("a")), None);
        assert_eq!(page(Some("a")).next_after(None).as_deref(), Some("a"));
    }

    #[test]
    fn a_restart_that_overrides_nothing_has_no_body() {
        assert_eq!(RestartOptions::default().body(), None);
        let body = RestartOptions {
            workers_per_machine: Some(2),
            ..RestartOptions::default()
        }
        .body()
        .expect("a body");
        assert_eq!(
            body,
            serde_json::json!({"type": "parameters-override-v1",
                "computeConfiguration": {"type": "compute-configuration-v2", "workersPerMachine": 2}})
        );
    }
}
