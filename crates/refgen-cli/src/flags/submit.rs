//! `refgen submit`'s flags.

use clap::Args;

use super::common::{ReferenceArgs, RoboflowArgs, StoreArgs, duration, http_url, key_value, not_empty, rate};
use super::verify::VerifyCheckArgs;

/// Every line at most 76 columns: clap wraps longer ones at the terminal's width,
/// which would break a `\\` continuation (a test pastes each example).
pub(super) const SUBMIT_EXAMPLES: &str = "Examples:
  refgen submit 's3://bucket/imgs/**/*.jpg' --batch-id my-batch \\
      --upload-to s3://bucket/refs/my-batch.jsonl --wait
  refgen submit --references refs.jsonl --batch-id my-batch
  refgen submit s3://bucket/clips/ --videos --batch-id clips \\
      --upload-to s3://bucket/refs/clips.jsonl \\
      --workflow-id my-workflow --job-id clips-1 --download-results out/
  refgen submit ./frames --images --batch-id frames --wait
  refgen submit './day1/**/*.jpg' ./day2 --images --batch-id days

Exit codes: 0 success, 1 failure, 2 bad command line, 124 --timeout reached.";

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Bucket and optional prefix or glob to make the references from (or use --references);
    /// or local folders, files or globs ('./frames/**/*.jpg') whose files are uploaded.
    #[arg(
        required_unless_present = "references_file",
        conflicts_with = "references_file",
        value_name = "SOURCE"
    )]
    pub sources: Vec<String>,

    /// A references file made earlier (JSON Lines of name and url); repeat it for the
    /// parts of a run (--part-lines, --shard), all into the one batch.
    #[arg(long = "references", value_name = "FILE", id = "references_file")]
    pub references_file: Vec<std::path::PathBuf>,

    /// Keep the references file made from the source here (atomically, as generate -o does).
    #[arg(short, long, value_name = "FILE", conflicts_with = "references_file", value_parser = not_empty)]
    pub output: Option<String>,

    /// The batch to create or add to: 1-64 of a-z 0-9 _ -.
    #[arg(short = 'b', long, value_name = "ID")]
    pub batch_id: String,

    /// The batch's display name (default: the batch id). inference-cli's -bn works too.
    #[arg(long, value_name = "NAME")]
    pub batch_name: Option<String>,

    /// Upload the references file here (s3://, gs://, az://) and send its signed URL; without it,
    /// references go inline (20,000 images or 5,000 videos per request).
    #[arg(long, value_name = "URL")]
    pub upload_to: Option<String>,

    /// Base of the ingest ids (default: the batch id and the time); requests get BASE-0, BASE-1, ….
    #[arg(long, value_name = "ID")]
    pub ingest_id: Option<String>,

    /// Webhook that Roboflow notifies about the ingest.
    #[arg(long, value_name = "URL", value_parser = http_url)]
    pub notifications_url: Option<String>,

    /// Notification category (repeatable): ingest-status, files-status.
    #[arg(long, value_name = "CATEGORY", value_parser = ["ingest-status", "files-status"])]
    pub notification_category: Vec<String>,

    /// Wait until every reference is ingested (and, with --workflow-id, until the job ends).
    #[arg(long)]
    pub wait: bool,

    /// Give up waiting after this long (exit code 124), counted from the end of the ingest
    /// requests: 90m, 2h, 1h30m, ….
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = duration)]
    pub timeout: std::time::Duration,

    /// Time between status checks.
    #[arg(long, value_name = "DURATION", default_value = "10s", hide = true, value_parser = duration)]
    pub poll_interval: std::time::Duration,

    /// Print a JSON summary on stdout at the end.
    #[arg(long)]
    pub json: bool,

    /// Do everything up to the first Roboflow request (no upload) and print what would be sent.
    #[arg(long)]
    pub dry_run: bool,

    /// Verify the references file (as `refgen verify` does) before the first Roboflow
    /// request, and stop there when anything is wrong.
    #[arg(long)]
    pub verify: bool,

    #[command(flatten)]
    pub verify_check: VerifyCheckArgs,

    #[command(flatten)]
    pub local: LocalArgs,

    #[command(flatten)]
    pub references: ReferenceArgs,

    #[command(flatten)]
    pub roboflow: RoboflowArgs,

    #[command(flatten)]
    pub job: JobArgs,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Local files (a folder, files or a glob as the source)")]
pub struct LocalArgs {
    /// How images go: auto (one by one up to 32, tar archives above; an existing batch's own
    /// mode), single, or bulk. --concurrency uploads run at once.
    #[arg(long, value_enum, default_value_t = UploadModeArg::Auto)]
    pub upload_mode: UploadModeArg,

    /// Images per tar archive (bulk mode): 1 to 500.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub images_per_shard: u16,

    /// Where the record of what was uploaded is kept, so that running the same command again
    /// sends only the rest (default: $XDG_STATE_HOME/refgen or ~/.local/state/refgen).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<std::path::PathBuf>,

    /// Upload hidden files and the files of hidden folders too (names starting with a dot).
    #[arg(long)]
    pub hidden: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum UploadModeArg {
    Auto,
    Single,
    Bulk,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Job options (with --workflow-id)")]
pub struct JobArgs {
    /// Run this workflow on the batch once it is ingested.
    #[arg(short = 'w', long, value_name = "ID")]
    pub workflow_id: Option<String>,

    /// The job's id: 1-20 of a-z 0-9 _ - (default: the batch id, cut to 20).
    #[arg(short = 'j', long, value_name = "ID")]
    pub job_id: Option<String>,

    /// The job's name (inference-cli's -jn works too).
    #[arg(long, value_name = "NAME")]
    pub job_name: Option<String>,

    /// cpu or gpu (inference-cli's -mt works too).
    #[arg(long, value_parser = ["cpu", "gpu"])]
    pub machine_type: Option<String>,

    /// Workers per machine.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub workers_per_machine: Option<u32>,

    /// Processing timeout of the job, in seconds (inference-cli: --max-runtime-seconds).
    #[arg(long, value_name = "SECONDS", visible_alias = "max-runtime-seconds", value_parser = clap::value_parser!(u64).range(1..))]
    pub processing_timeout: Option<u64>,

    /// Most tasks in parallel.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel_tasks: Option<u32>,

    /// Highest tolerated share of failed images (0 to 1).
    #[arg(long, value_name = "RATE", value_parser = rate)]
    pub max_image_failure_rate: Option<f64>,

    /// Workflow parameters as a JSON object.
    #[arg(long, value_name = "JSON", conflicts_with = "workflow_params")]
    pub workflow_parameters: Option<String>,

    /// Workflow parameters from a file holding a JSON object (as inference-cli's --workflow-params).
    #[arg(long, value_name = "FILE")]
    pub workflow_params: Option<std::path::PathBuf>,

    /// The workflow's image input name.
    #[arg(long, value_name = "NAME")]
    pub image_input_name: Option<String>,

    /// csv or jsonl.
    #[arg(long, value_parser = ["csv", "jsonl"])]
    pub aggregation_format: Option<String>,

    /// Frames per second to process (videos).
    #[arg(long, value_name = "FPS")]
    pub max_video_fps: Option<f64>,

    /// Keep the workflow's outputs that are images (persistImagesOutputs).
    #[arg(long, overrides_with = "no_save_image_outputs")]
    pub save_image_outputs: bool,

    /// Do not keep them (the default; inference-cli's spelling).
    #[arg(long, hide = true, overrides_with = "save_image_outputs")]
    pub no_save_image_outputs: bool,

    /// Only these image outputs are kept (repeatable; with --save-image-outputs).
    #[arg(long, value_name = "NAME")]
    pub image_outputs_to_save: Vec<String>,

    /// The part of a multipart batch to process (inference-cli's -p works too).
    #[arg(short = 'p', long, value_name = "NAME")]
    pub part_name: Option<String>,

    /// The part of a multipart batch that holds per-image metadata (inference-cli's -imp works too).
    #[arg(long, value_name = "NAME")]
    pub images_metadata_part_name: Option<String>,

    /// Workflow input fed from an image's metadata field, INPUT=FIELD (repeatable;
    /// inference-cli's -mm works too).
    #[arg(long, value_name = "INPUT=FIELD", value_parser = key_value)]
    pub metadata_mapping: Vec<(String, String)>,

    /// old-inference or inference-models (inference-cli's -ib works too).
    #[arg(long, value_parser = ["old-inference", "inference-models"])]
    pub inference_backend: Option<String>,

    /// Deprecated in inference-cli: xs, s, m, l, xl = 8, 4, 2, 1, 1 workers per machine
    /// (inference-cli's -ms works too).
    #[arg(long, value_name = "SIZE", value_parser = ["xs", "s", "m", "l", "xl"], conflicts_with = "workers_per_machine")]
    pub machine_size: Option<String>,

    /// Download the job's results into this folder (waits for the job).
    #[arg(long, value_name = "DIR")]
    pub download_results: Option<std::path::PathBuf>,
}
