//! The options several commands share: selection and naming, the store and its
//! credentials, request timeouts and retries, Roboflow access; their value
//! parsers; and the words a library hint becomes in this command line's flags.

use clap::{Args, ValueEnum};
use refgen::core::naming::NameMode;

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

/// Roboflow access, and how hard each request is tried.
#[derive(Debug, Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub roboflow: RoboflowArgs,

    #[command(flatten)]
    pub requests: RequestArgs,

    /// Print JSON on stdout (a document, or JSON Lines where the command says so) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Which objects are kept: `generate`'s and `plan`'s selection.
#[derive(Debug, Args)]
#[command(next_help_heading = "Selection options")]
pub struct SelectionArgs {
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

    /// Skip objects larger than this: 20MiB, 500MB, 20971520B [default with --images:
    /// 20MiB, Roboflow's limit on an image]
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub max_size: Option<u64>,
}

/// What goes into a references file: which objects, how named, how long the URLs last.
#[derive(Debug, Args)]
#[command(next_help_heading = "Selection options")]
pub struct ReferenceArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,

    /// How long the URLs stay valid: 3600, 90m, 12h, 1h30m, 7d (S3, GCS, Azure Entra ID:
    /// at most 7d; GCS signBlob as another account: 12h).
    #[arg(long, value_name = "DURATION", default_value = "24h", allow_hyphen_values = true)]
    pub expires_in: String,

    /// Sign even when the credentials expire before the URLs would: the URLs are
    /// then signed for the time the credentials have left (refused by default).
    #[arg(long)]
    pub allow_short_expiry: bool,

    /// Each URL names the exact version listed (S3 versionId, GCS generation, Azure
    /// versionid), so the batch reads the bytes listed even if the object is overwritten
    /// meanwhile. Needs versioning (S3, Azure); from an S3 inventory, its VersionId column.
    #[arg(long)]
    pub pin_versions: bool,

    /// How names are made: flat (key with / as __, unique), key (raw key), basename (unique).
    #[arg(long, value_enum, default_value_t = NameArg::Flat)]
    pub name: NameArg,

    /// Stop after N references (a quick trial on a big bucket).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,

    /// Write only worker K's share of N (0 <= K < N), split by a hash of the key; every
    /// worker lists the whole source. `auto` reads the scheduler's index (and count):
    /// auto/N on Kubernetes (JOB_COMPLETION_INDEX) and AWS Batch (AWS_BATCH_JOB_ARRAY_INDEX),
    /// auto on Cloud Run (CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT).
    /// With --plan: the plan's part K of N, listed alone (auto takes N from the plan).
    #[arg(long, value_name = "K/N", value_parser = shard)]
    pub shard: Option<ShardArg>,

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

/// `--shard`: `K/N`, or `auto` / `auto/N` (the index from the scheduler's
/// environment, resolved with the count a plan may give).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    /// `K/N`.
    Fixed(refgen::core::shard::Shard),
    /// `auto`, or `auto/N`.
    Auto(Option<u32>),
}

impl ShardArg {
    /// The shard, the count taken from `count` (a plan's parts) when `auto`
    /// gives none; an error names the flag.
    pub fn resolve(self, count: Option<u32>) -> Result<refgen::core::shard::Shard, String> {
        use refgen::core::shard::Shard;
        match self {
            ShardArg::Fixed(shard) => Ok(shard),
            ShardArg::Auto(given) => Shard::from_scheduler(given.or(count), refgen_http_env).map_err(|e| match e {
                refgen::core::Error::InvalidShard { input, reason } => format!("--shard {input}: {reason}"),
                other => other.to_string(),
            }),
        }
    }
}

fn shard(text: &str) -> Result<ShardArg, String> {
    match text.strip_prefix("auto") {
        Some("") => Ok(ShardArg::Auto(None)),
        Some(rest) => match rest.strip_prefix('/').and_then(|n| n.parse().ok()) {
            Some(n) => Ok(ShardArg::Auto(Some(n))),
            None => Err("expected K/N, auto or auto/N".to_owned()),
        },
        None => text.parse().map(ShardArg::Fixed).map_err(|e| match e {
            refgen::core::Error::InvalidShard { reason, .. } => reason,
            other => other.to_string(),
        }),
    }
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

    /// Sign the URLs for this endpoint instead of --endpoint-url's (listing still goes
    /// there): a reverse proxy's public name, a custom domain. The signature covers the host.
    #[arg(long, value_name = "URL", value_parser = endpoint_url)]
    pub url_endpoint: Option<String>,

    /// GCS: --url-endpoint serves the bucket at its root (URL/OBJECT), a bucket-bound
    /// hostname (a load balancer's backend bucket); assumed when the host is the bucket's name (a CNAME).
    #[arg(long, requires = "url_endpoint")]
    pub bucket_bound: bool,

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

/// `INPUT=FIELD`: split at the first `=`, so a field may hold one.
pub(crate) fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !value.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err("must be INPUT=FIELD (a workflow input, =, a metadata field)".to_owned()),
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
pub(super) fn short_duration(text: &str) -> Result<std::time::Duration, String> {
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

    /// Project billed for a requester-pays bucket: sent as userProject on listings,
    /// reads and uploads, and signed into every URL (as gsutil's -u and gcloud's --billing-project).
    #[arg(long, value_name = "PROJECT")]
    pub user_project: Option<String>,

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

    /// Requester pays: listings, reads and uploads say so, and every URL carries
    /// x-amz-request-payer=requester in its signed query (the reader is billed).
    #[arg(long, value_enum, value_name = "WHO")]
    pub request_payer: Option<RequestPayerArg>,
}

/// Who pays for a requester-pays bucket's requests (only `requester`, as in the AWS CLI).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RequestPayerArg {
    Requester,
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

impl From<AddressingArg> for refgen::store::Addressing {
    fn from(a: AddressingArg) -> Self {
        match a {
            AddressingArg::Virtual => refgen::store::Addressing::Virtual,
            AddressingArg::Path => refgen::store::Addressing::Path,
        }
    }
}

/// What to do about an error, in this command line's flag names.
pub fn hint_text(hint: refgen::core::Hint) -> &'static str {
    use refgen::core::Hint;
    match hint {
        Hint::ListSequentially => "rerun with --concurrency 1",
        Hint::ShardByHash => "rerun without --plan: --shard K/N alone splits by a hash of the key",
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
        Hint::PayAsRequester => "if the bucket is requester pays, pass --request-payer requester",
        Hint::GiveUserProject => "the bucket is requester pays: pass --user-project PROJECT (the project billed)",
        Hint::AllowShortExpiry => {
            "pass --allow-short-expiry to sign for the time the credentials have, a shorter --expires-in, or sign with \
             longer-lived credentials (an IAM user's keys, a longer session)"
        }
        _ => "see refgen --help",
    }
}

/// `--endpoint-url`: an http(s) URL with a host, checked as it is typed (exit 2).
fn endpoint_url(value: &str) -> Result<String, String> {
    refgen::http::check_endpoint_url(value).map(|_| value.to_owned())
}

/// A path that is not empty (`-o ''` is a slip, not a file name).
pub(super) fn not_empty(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err("an empty path names no file (use - for standard output)".to_owned())
    } else {
        Ok(value.to_owned())
    }
}
