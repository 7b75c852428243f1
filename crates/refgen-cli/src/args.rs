//! The command-line interface definition.

use clap::{Args, Parser, Subcommand, ValueEnum};
use refgen::core::naming::NameMode;

pub use crate::lifecycle_args::*;

/// Turn the contents of a bucket into a signed-URL references file (JSON Lines,
/// `{"name": …, "url": …}` per object) for Roboflow Batch Processing.
#[derive(Debug, Parser)]
#[command(name = "refgen", version, about, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Nothing on stderr but errors and warnings: no progress, no summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a bucket or prefix, keep matching objects, write one signed URL per object.
    #[command(after_help = GENERATE_EXAMPLES)]
    Generate(Box<GenerateArgs>),
    /// Make (or take) a references file and submit it to Roboflow Batch Processing; follow it.
    #[command(after_help = SUBMIT_EXAMPLES)]
    Submit(Box<SubmitArgs>),
    /// Check a references file: every line, and a ranged GET of a sample of its URLs.
    Verify(Box<VerifyArgs>),
    /// Look at batches: list, show, and which references failed to ingest.
    #[command(subcommand)]
    Batches(BatchesCommand),
    /// Download every file of a batch (a job's results) into a folder, resumably.
    Export(Box<ExportArgs>),
    /// Look at and control jobs: list, show, abort, restart, logs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// POST the notifications Roboflow sends to a webhook receiver, to test it.
    WebhookCheck(Box<WebhookArgs>),
    /// Print a shell completion script: refgen completions bash > ~/.local/share/bash-completion/completions/refgen
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): refgen man > ~/.local/share/man/man1/refgen.1
    Man,
}

/// Every line at most 76 columns: clap wraps longer ones at the terminal's width,
/// which would break a `\\` continuation (a test pastes each example).
const SUBMIT_EXAMPLES: &str = "Examples:
  refgen submit 's3://bucket/imgs/**/*.jpg' --batch-id my-batch \\
      --upload-to s3://bucket/refs/my-batch.jsonl --wait
  refgen submit --references refs.jsonl --batch-id my-batch
  refgen submit s3://bucket/clips/ --videos --batch-id clips \\
      --upload-to s3://bucket/refs/clips.jsonl \\
      --workflow-id my-workflow --job-id clips-1 --download-results out/

Exit codes: 0 success, 1 failure, 2 bad command line, 124 --timeout reached.";

const GENERATE_EXAMPLES: &str = "Examples:
  refgen generate 's3://my-bucket/images/**/*.jpg' -o refs.jsonl
  refgen generate s3://media/ --images --expires-in 12h > refs.jsonl
  refgen generate s3://media/raw/ --include '*.png' --exclude 'tmp/**' \\
      -o refs.jsonl
  AWS_ENDPOINT_URL=http://127.0.0.1:9000 refgen generate s3://bucket/ \\
      -o refs.jsonl
  refgen generate 'gs://my-bucket/frames/**/*.png' \\
      --credentials-file key.json -o refs.jsonl
  refgen generate 'https://acct.blob.core.windows.net/media/clips/*.mp4' \\
      --videos -o refs.jsonl

Source patterns: the literal part before the first wildcard is the listing
prefix; `*` and `?` stay within one folder, `**` crosses folders, `\\`
escapes a wildcard. --include/--exclude globs are relative to the source.

Exit codes: 0 success, 1 failure, 2 bad command line.";

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Bucket and optional prefix or glob: s3://bucket/prefix/**/*.jpg
    pub source: String,

    /// Write to this file (atomically: replaced only when the run succeeds). `-` or none: stdout.
    #[arg(short, long, value_name = "FILE", value_parser = not_empty)]
    pub output: Option<String>,

    /// Print a JSON summary on stdout at the end (with -o FILE or --dry-run): listed, matched, written, ….
    #[arg(long)]
    pub json: bool,

    /// Seconds between progress lines when stderr is not a terminal (shown only for long runs).
    #[arg(long, value_name = "DURATION", default_value = "30s", hide = true, value_parser = short_duration)]
    pub progress_interval: std::time::Duration,

    /// List and filter, but sign and write nothing: print the counts (-v: the first keys).
    #[arg(long, conflicts_with = "output")]
    pub dry_run: bool,

    /// Selecting no object is a success, with an empty file (by default it is an error).
    #[arg(long)]
    pub allow_empty: bool,

    /// Write the output as numbered parts of at most N lines (refs.jsonl → refs-00000.jsonl,
    /// refs-00001.jsonl, …), each a whole references file; needs -o FILE.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub part_lines: Option<u64>,

    /// With --part-lines: put each part in place as it fills and keep a checkpoint
    /// beside the target; the same command run again after an interruption continues
    /// after the last part done (the store must list in byte order, as S3, GCS and Azure do).
    #[arg(long, requires = "part_lines")]
    pub resume: bool,

    #[command(flatten)]
    pub references: ReferenceArgs,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Bucket and optional prefix or glob to make the references from (or use --references).
    #[arg(required_unless_present = "references_file", conflicts_with = "references_file")]
    pub source: Option<String>,

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
    pub references: ReferenceArgs,

    #[command(flatten)]
    pub roboflow: RoboflowArgs,

    #[command(flatten)]
    pub job: JobArgs,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Roboflow options")]
pub struct RoboflowArgs {
    /// Roboflow API key (also ROBOFLOW_API_KEY).
    #[arg(short = 'a', long, value_name = "KEY")]
    pub api_key: Option<String>,

    /// Workspace (default: the API key's own, looked up).
    #[arg(long, value_name = "NAME")]
    pub workspace: Option<String>,

    /// Most references per inline request (default 20,000 for images, 5,000 for videos).
    #[arg(long, value_name = "N", hide = true)]
    pub inline_limit: Option<usize>,
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

    /// Download the job's results into this folder (waits for the job).
    #[arg(long, value_name = "DIR")]
    pub download_results: Option<std::path::PathBuf>,
}

/// What goes into a references file: which objects, how named, how long the URLs last.
#[derive(Debug, Args)]
#[command(next_help_heading = "Selection options")]
pub struct ReferenceArgs {
    /// Keep only keys matching this glob (repeatable), relative to the source's folder
    /// (`tmp/**`); without `/`, it matches the basename in any folder (`*.png`).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Drop keys matching this glob (repeatable), relative to the source's folder;
    /// without `/`, it matches the basename in any folder.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Keep only images: bmp dib jpeg jpg jpe jp2 png webp (any case).
    #[arg(long)]
    pub images: bool,

    /// Keep only videos: mp4 m4a m4p m4b m4r m4v avi mov mkv flv wmv mpeg mpg 3gp webm ogg (any case).
    #[arg(long)]
    pub videos: bool,

    /// Match globs without regard to letter case.
    #[arg(long)]
    pub ignore_case: bool,

    /// How long the URLs stay valid: 3600, 90m, 12h, 1h30m, 7d (S3, GCS, Azure Entra ID:
    /// at most 7d; GCS signBlob as another account: 12h).
    #[arg(long, value_name = "DURATION", default_value = "24h", allow_hyphen_values = true)]
    pub expires_in: String,

    /// How names are made: flat (key with / as __, unique), key (raw key), basename (unique).
    #[arg(long, value_enum, default_value_t = NameArg::Flat)]
    pub name: NameArg,

    /// Stop after N references (a quick trial on a big bucket).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,

    /// Skip objects larger than this: 20MiB, 500MB, 20971520B [default with --images:
    /// 20MiB, Roboflow's limit on an image]
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub max_size: Option<u64>,

    /// Write only worker K's share of N (0 <= K < N), split by a hash of the key; every
    /// worker lists the whole source. `auto` reads the scheduler's index (and count):
    /// auto/N on Kubernetes (JOB_COMPLETION_INDEX) and AWS Batch (AWS_BATCH_JOB_ARRAY_INDEX),
    /// auto on Cloud Run (CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT).
    #[arg(long, value_name = "K/N", value_parser = shard)]
    pub shard: Option<refgen::core::shard::Shard>,

    /// Read this inventory report instead of listing the source: an S3 Inventory manifest.json
    /// (s3://DEST/SRC/CONFIG/2026-11-30T01-00Z/manifest.json) or configuration folder (the
    /// newest complete report), an Azure Blob Inventory <rule>-manifest.json, or a GCS
    /// Storage Insights manifest or glob of shard files. The source still names the bucket.
    #[arg(long, value_name = "URL")]
    pub inventory: Option<String>,
}

fn size(text: &str) -> Result<u64, String> {
    refgen::core::size::parse_size(text).map_err(|e| match e {
        refgen::core::Error::InvalidSize { reason, .. } => reason,
        other => other.to_string(),
    })
}

fn shard(text: &str) -> Result<refgen::core::shard::Shard, String> {
    use refgen::core::shard::Shard;
    let parsed = match text.strip_prefix("auto") {
        Some("") => Shard::from_scheduler(None, refgen_http_env),
        Some(rest) => match rest.strip_prefix('/').and_then(|n| n.parse().ok()) {
            Some(n) => Shard::from_scheduler(Some(n), refgen_http_env),
            None => return Err("expected K/N, auto or auto/N".to_owned()),
        },
        None => text.parse(),
    };
    parsed.map_err(|e| match e {
        refgen::core::Error::InvalidShard { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// A variable of the environment, unset when empty.
fn refgen_http_env(name: &str) -> Option<String> {
    refgen::http::env_var(true, name)
}

/// How to reach and authenticate to the storage services.
#[derive(Debug, Args)]
#[command(next_help_heading = "Storage options")]
pub struct StoreArgs {
    /// Storage endpoint: an S3-compatible store, a GCS emulator, an Azure Blob endpoint such as
    /// Azurite's http://127.0.0.1:10000/devstoreaccount1 (S3 also reads AWS_ENDPOINT_URL_S3 /
    /// AWS_ENDPOINT_URL; GCS reads STORAGE_EMULATOR_HOST; Azure, a connection string's BlobEndpoint).
    #[arg(long, value_name = "URL", value_parser = endpoint_url)]
    pub endpoint_url: Option<String>,

    /// Listing requests in flight at once: the key space is split by folder, and flat folders
    /// into key ranges, listed in parts with the output still in key order. 1 lists
    /// sequentially (for servers that do not list in byte order).
    #[arg(long, value_name = "N", default_value_t = refgen::core::list::DEFAULT_CONCURRENCY as u16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Objects per listing request (default: each service's maximum). For tests and debugging.
    #[arg(long, value_name = "N", hide = true, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub page_size: Option<u32>,

    #[command(flatten)]
    pub requests: RequestArgs,

    #[command(flatten)]
    pub s3: S3Args,

    #[command(flatten)]
    pub gcs: GcsArgs,

    #[command(flatten)]
    pub azure: AzureArgs,
}

/// How hard each request is tried: every listing page, upload, token and API call.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Request options")]
pub struct RequestArgs {
    /// Attempts per request, the first included [default: 10, or AWS_MAX_ATTEMPTS /
    /// the profile's max_attempts for S3]
    #[arg(long, value_name = "N", env = "REFGEN_MAX_ATTEMPTS",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: Option<u32>,

    /// Longest wait for one attempt's whole answer (then it is retried)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub request_timeout: std::time::Duration,

    /// Longest wait to open a connection
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub connect_timeout: std::time::Duration,

    /// No retry starts this long after a request's first attempt
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = duration)]
    pub retry_budget: std::time::Duration,

    /// The first wait before a retry; later waits double, each a random part of its bound
    /// [default: 100ms for storage, 500ms for Roboflow]
    #[arg(long, value_name = "DURATION", env = "REFGEN_RETRY_DELAY", value_parser = short_duration)]
    pub retry_delay: Option<std::time::Duration>,
}

impl RequestArgs {
    /// The retry policy these flags describe.
    pub fn retry_config(&self) -> refgen::http::RetryConfig {
        let mut config = refgen::http::RetryConfig::default()
            .with_attempt_timeout(self.request_timeout)
            .with_connect_timeout(self.connect_timeout)
            .with_budget(self.retry_budget);
        if let Some(n) = self.max_attempts {
            config = config.with_max_attempts(n);
        }
        if let Some(first) = self.retry_delay {
            let max = config.max_backoff.max(first);
            config = config.with_backoff(first, max);
        }
        config
    }
}

pub(crate) fn http_url(text: &str) -> Result<String, String> {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(text.to_owned()),
        Ok(u) => Err(format!("must be an http(s) URL, not {}:", u.scheme())),
        Err(e) => Err(format!("not a URL ({e})")),
    }
}

pub(crate) fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        Ok(_) => Err("must be between 0 and 1 (0.05 is 5 %)".to_owned()),
        Err(_) => Err("not a number (0.05 is 5 %)".to_owned()),
    }
}

/// A duration that may also be in milliseconds (`20ms`): retry waits are short.
fn short_duration(text: &str) -> Result<std::time::Duration, String> {
    match text.strip_suffix("ms") {
        Some(ms) => ms
            .parse()
            .map(std::time::Duration::from_millis)
            .map_err(|_| format!("`{text}` is not a whole number of milliseconds")),
        None => duration(text).map_err(|_| {
            format!("`{text}` is not a duration: give milliseconds (20ms) or a number with s, m, h or d (2s, 1m)")
        }),
    }
}

pub(crate) fn duration(text: &str) -> Result<std::time::Duration, String> {
    refgen::core::expiry::parse_expiry(text).map_err(|e| match e {
        refgen::core::Error::InvalidExpiry { reason, .. } => reason,
        other => other.to_string(),
    })
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Azure options")]
pub struct AzureArgs {
    /// SAS token granting read and list (also AZURE_STORAGE_SAS_TOKEN); appended to every URL.
    #[arg(long, value_name = "TOKEN")]
    pub sas_token: Option<String>,

    /// Storage account key (also AZURE_STORAGE_KEY or AZURE_STORAGE_ACCOUNT_KEY): per-blob read SAS.
    #[arg(long, value_name = "KEY")]
    pub account_key: Option<String>,

    /// Connection string (also AZURE_STORAGE_CONNECTION_STRING).
    #[arg(long, value_name = "STRING")]
    pub connection_string: Option<String>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "GCS options")]
pub struct GcsArgs {
    /// Google credentials file: a service-account key signs locally, any other type authenticates (default: GOOGLE_APPLICATION_CREDENTIALS, then gcloud's ADC file; never replaced by them).
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<std::path::PathBuf>,

    /// HMAC key access id (also GCS_HMAC_ACCESS_ID): fast local signing.
    #[arg(long, value_name = "ID")]
    pub hmac_access_id: Option<String>,

    /// HMAC key secret (also GCS_HMAC_SECRET).
    #[arg(long, value_name = "SECRET")]
    pub hmac_secret: Option<String>,

    /// Service account to sign as through IAM signBlob: when the credentials hold no key, or hold the key of another account.
    #[arg(long, value_name = "EMAIL")]
    pub service_account: Option<String>,

    /// IAM Credentials API endpoint (also REFGEN_GCS_IAM_ENDPOINT); for private endpoints and tests.
    #[arg(long, value_name = "URL", hide = true)]
    pub iam_endpoint: Option<String>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "S3 options")]
pub struct S3Args {
    /// AWS profile from ~/.aws/config and ~/.aws/credentials (also AWS_PROFILE).
    #[arg(long)]
    pub profile: Option<String>,

    /// Region to sign for (default: the bucket's own region, looked up).
    #[arg(long)]
    pub region: Option<String>,

    /// Bucket addressing: path (default with a custom endpoint or a dotted bucket) or virtual.
    #[arg(long, value_enum)]
    pub addressing: Option<AddressingArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NameArg {
    Flat,
    Key,
    Basename,
}

impl From<NameArg> for NameMode {
    fn from(n: NameArg) -> Self {
        match n {
            NameArg::Flat => NameMode::Flat,
            NameArg::Key => NameMode::Key,
            NameArg::Basename => NameMode::Basename,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AddressingArg {
    Virtual,
    Path,
}

impl From<AddressingArg> for refgen::s3::Addressing {
    fn from(a: AddressingArg) -> Self {
        match a {
            AddressingArg::Virtual => refgen::s3::Addressing::Virtual,
            AddressingArg::Path => refgen::s3::Addressing::Path,
        }
    }
}

/// What to do about an error, in this command line's flag names.
pub fn hint_text(hint: refgen::core::Hint) -> &'static str {
    use refgen::core::Hint;
    match hint {
        Hint::ListSequentially => "rerun with --concurrency 1",
        Hint::SetRegion => "pass --region with the bucket's region",
        Hint::GiveS3Credentials => "set them or pass --profile",
        Hint::GiveBothHmacKeys => "pass both --hmac-access-id and --hmac-secret",
        Hint::GiveGcsSigner => {
            "pass --service-account EMAIL (signs through IAM signBlob), --credentials-file with a key, or HMAC keys"
        }
        Hint::GiveAzureCredentials => "give --sas-token, --account-key or --connection-string, or sign in for Entra ID",
        Hint::GiveApiKey => "pass --api-key or set ROBOFLOW_API_KEY",
        Hint::ChooseMediaKind => "pass --images or --videos (a batch holds one kind)",
        Hint::AllowEmpty => "pass --allow-empty to accept an empty references file",
        Hint::RunWithoutResume => "the run works without --resume (which needs a listing in byte order)",
        _ => "see refgen --help",
    }
}

/// `--endpoint-url`: an http(s) URL with a host, checked as it is typed (exit 2).
fn endpoint_url(value: &str) -> Result<String, String> {
    refgen::http::check_endpoint_url(value).map(|_| value.to_owned())
}

/// A path that is not empty (`-o ''` is a slip, not a file name).
fn not_empty(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err("an empty path names no file (use - for standard output)".to_owned())
    } else {
        Ok(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// A shell's split of one command line: words, single quotes, `VAR=value`
    /// prefixes and a `> file` redirection (all the examples use).
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut quoted = false;
        let mut in_word = false;
        for c in line.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    in_word = true;
                }
                c if c.is_whitespace() && !quoted => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                c => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(word);
        }
        words
    }

    /// clap's own consistency checks (unique ids, valid defaults and conflicts) for
    /// every subcommand; without it a clash only shows as a panic at run time.
    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every example in each command's `--help`, rendered for 80 and 100 columns,
    /// pasted as it is shown (continuations joined): each is one command that
    /// parses. A wrapped line would break its `\\` continuation.
    #[test]
    fn help_examples_parse_as_pasted() {
        let subs: [&[&str]; 6] = [
            &["generate"],
            &["submit"],
            &["batches", "failures"],
            &["export"],
            &["webhook-check"],
            &["verify"],
        ];
        for sub in subs {
            for width in [80, 100] {
                let mut args = vec!["refgen"];
                args.extend(sub);
                args.push("--help");
                let err = Cli::command()
                    .term_width(width)
                    .try_get_matches_from(args)
                    .expect_err("help");
                let help = err.render().to_string();
                let examples = help
                    .split("Examples:\n")
                    .nth(1)
                    .and_then(|s| s.split("\n\n").next())
                    .expect("an Examples block");
                let mut commands = Vec::new();
                let mut current = String::new();
                for line in examples.lines() {
                    let line = line.trim();
                    match line.strip_suffix('\\') {
                        Some(head) => current.push_str(head),
                        None => {
                            current.push_str(line);
                            commands.push(std::mem::take(&mut current));
                        }
                    }
                }
                assert!(
                    current.is_empty() && commands.len() >= 2,
                    "{sub:?} at {width}: {examples}"
                );
                for command in commands {
                    let mut words = shell_words(&command);
                    words.retain(|w| !(w.contains('=') && w.chars().next().is_some_and(|c| c.is_ascii_uppercase())));
                    if let Some(i) = words.iter().position(|w| w == ">") {
                        words.truncate(i);
                    }
                    assert_eq!(
                        words.first().map(String::as_str),
                        Some("refgen"),
                        "{sub:?} at {width}: {command}"
                    );
                    let parsed = Cli::try_parse_from(&words);
                    assert!(parsed.is_ok(), "{sub:?} at {width}: {command}: {:?}", parsed.err());
                }
            }
        }
    }

    /// The selection options have a heading of their own in submit's help, not the
    /// job options' (they used to land under "Job options (with --workflow-id)").
    #[test]
    fn submit_help_groups_options_by_heading() {
        let help = Cli::command()
            .term_width(100)
            .try_get_matches_from(["refgen", "submit", "--help"])
            .expect_err("help")
            .render()
            .to_string();
        let section = |heading: &str| {
            help.split(heading)
                .nth(1)
                .and_then(|s| s.split("\n\n").next())
                .unwrap_or_default()
                .to_owned()
        };
        let job = section("Job options (with --workflow-id):");
        let selection = section("Selection options:");
        assert!(job.contains("--workflow-id") && !job.contains("--include"), "{job}");
        for flag in [
            "--include",
            "--exclude",
            "--images",
            "--videos",
            "--expires-in",
            "--name",
            "--limit",
        ] {
            assert!(selection.contains(flag), "{flag} in {selection}");
        }
    }

    #[test]
    fn inference_cli_short_names_become_long_ones() {
        let args = crate::inference_cli_names(
            ["refgen", "submit", "-bn", "My batch", "-jn", "Nightly", "-mt", "gpu"]
                .into_iter()
                .map(Into::into),
        );
        let shown: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
        assert_eq!(
            shown,
            [
                "refgen",
                "submit",
                "--batch-name",
                "My batch",
                "--job-name",
                "Nightly",
                "--machine-type",
                "gpu"
            ]
        );
    }
}
