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
}
