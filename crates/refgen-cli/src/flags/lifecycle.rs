//! The flags of what comes after `submit`: batches, exports, jobs, webhooks.

use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand, ValueEnum};

use super::common::{ApiArgs, ReferenceArgs, RequestArgs, RoboflowArgs, StoreArgs, http_url, rate};

/// A workspace's list: how long, and how to reach it.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show at most N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Subcommand)]
pub enum BatchesCommand {
    /// The workspace's batches, newest first as the API gives them.
    List(ListArgs),
    /// A batch's details, its file count and its shards with their status.
    Show {
        /// The batch id.
        batch_id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Every file of a batch, all pages and every part (--json: JSON Lines with download URLs).
    Content {
        /// The batch id.
        batch_id: String,
        /// Only this part of a multipart batch.
        #[arg(long, value_name = "NAME")]
        part: Option<String>,
        /// Stop after this many files.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The references that failed to ingest, and why (--json: JSON Lines). Exit 1 when any did.
    #[command(after_help = FAILURES_EXAMPLES)]
    Failures(Box<FailuresArgs>),
}

const FAILURES_EXAMPLES: &str = "Examples:
  refgen batches failures my-batch --json > failures.jsonl
  refgen batches failures my-batch --references refs.jsonl \\
      --retry-file retry.jsonl
  refgen batches failures my-batch --source 's3://bucket/imgs/**' \\
      --images --retry-file retry.jsonl

Exit codes: 0 none failed, 1 some failed (or an error), 2 bad command line.";

#[derive(Debug, Args)]
pub struct FailuresArgs {
    /// The batch id.
    pub batch_id: String,

    /// The references file the batch was made from: names in it that the batch does not
    /// hold are failures too, and --retry-file takes its lines from it.
    #[arg(long = "references", value_name = "FILE", id = "references_file")]
    pub references_file: Option<std::path::PathBuf>,

    /// The source the batch was made from, listed again with the same selection and naming
    /// options: --retry-file then gets freshly signed URLs, only for objects still there.
    #[arg(long, value_name = "URL", conflicts_with = "references_file")]
    pub source: Option<String>,

    /// Write the failed references here, as a references file to submit again.
    #[arg(long, value_name = "FILE")]
    pub retry_file: Option<std::path::PathBuf>,

    /// Print the failures as JSON Lines on stdout instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub roboflow: RoboflowArgs,

    #[command(flatten)]
    pub references: ReferenceArgs,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  refgen export out-batch-1 --to results/
  refgen export out-batch-1 --to results/ --part results --json

A file already in the folder under its name is complete (files are renamed
into place when whole), so running the same export again downloads only what
is missing. Exit codes: 0 success, 1 failure, 2 bad command line.")]
pub struct ExportArgs {
    /// The batch to download (a job's output batch: see `refgen jobs show`).
    pub batch_id: String,

    /// The folder to download into (created if needed); a multipart batch gets a subfolder per part.
    #[arg(long, value_name = "DIR")]
    pub to: std::path::PathBuf,

    /// Only this part of a multipart batch (repeatable).
    #[arg(long, value_name = "NAME")]
    pub part: Vec<String>,

    /// Download files that are already there again.
    #[arg(long)]
    pub overwrite: bool,

    /// Downloads at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// The workspace's jobs.
    List(ListArgs),
    /// A job's state, its stages and their tasks by status.
    Show {
        /// The job id.
        job_id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Stop a running job.
    Abort {
        /// The job id.
        job_id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Start a job again, optionally with other compute settings.
    Restart(Box<RestartArgs>),
    /// A job's logs (--json: JSON Lines, one entry per line).
    Logs {
        /// The job id.
        job_id: String,
        /// Only entries of this severity and above.
        #[arg(long, value_enum)]
        severity: Option<SeverityArg>,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The job id.
    pub job_id: String,

    /// cpu or gpu.
    #[arg(long, value_parser = ["cpu", "gpu"])]
    pub machine_type: Option<String>,

    /// Workers per machine.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub workers_per_machine: Option<u32>,

    /// Most tasks in parallel.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel_tasks: Option<u32>,

    /// Processing timeout of the job, in seconds (inference-cli: --max-runtime-seconds).
    #[arg(long, value_name = "SECONDS", visible_alias = "max-runtime-seconds", value_parser = clap::value_parser!(u64).range(1..))]
    pub processing_timeout: Option<u64>,

    /// Highest tolerated share of failed images (0 to 1).
    #[arg(long, value_name = "RATE", value_parser = rate)]
    pub max_image_failure_rate: Option<f64>,

    /// Deprecated in inference-cli: xs, s, m, l, xl = 8, 4, 2, 1, 1 workers per machine.
    #[arg(long, value_name = "SIZE", value_parser = ["xs", "s", "m", "l", "xl"], conflicts_with = "workers_per_machine")]
    pub machine_size: Option<String>,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SeverityArg {
    Info,
    Warning,
    Error,
}

impl From<SeverityArg> for refgen::roboflow::Severity {
    fn from(s: SeverityArg) -> Self {
        match s {
            SeverityArg::Info => refgen::roboflow::Severity::Info,
            SeverityArg::Warning => refgen::roboflow::Severity::Warning,
            SeverityArg::Error => refgen::roboflow::Severity::Error,
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  refgen webhook-check https://hooks.example.com/roboflow
  refgen webhook-check http://127.0.0.1:8080/hook --json
  refgen webhook-check --print > notifications.jsonl

Each notification is POSTed as Roboflow sends it (JSON, with an Authorization
header holding the publishable key when one is given). Exit codes: 0 every POST
was answered 2xx, 1 otherwise, 2 bad command line.")]
pub struct WebhookArgs {
    /// The receiver to POST the three kinds of notification to.
    #[arg(value_parser = http_url, required_unless_present = "print")]
    pub url: Option<String>,

    /// Print the notifications as JSON Lines instead of sending them.
    #[arg(long, conflicts_with = "url")]
    pub print: bool,

    /// The batch id the notifications name.
    #[arg(long, value_name = "ID", default_value = "webhook-check")]
    pub batch_id: String,

    /// The job id the job notification names.
    #[arg(long, value_name = "ID", default_value = "webhook-check")]
    pub job_id: String,

    /// The workspace's publishable key, sent as the Authorization header as Roboflow does
    /// (also ROBOFLOW_PUBLISHABLE_KEY).
    #[arg(long, value_name = "KEY", env = "ROBOFLOW_PUBLISHABLE_KEY", hide_env_values = true)]
    pub publishable_key: Option<String>,

    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub requests: RequestArgs,
}
