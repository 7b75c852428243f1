//! The command-line interface definition.

use clap::{Args, Parser, Subcommand, ValueEnum};
use refgen_core::naming::NameMode;

/// Turn the contents of a bucket into a signed-URL references file (JSON Lines,
/// `{"name": …, "url": …}` per object) for Roboflow Batch Processing.
#[derive(Debug, Parser)]
#[command(name = "refgen", version, about, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a bucket or prefix, keep matching objects, write one signed URL per object.
    #[command(after_help = GENERATE_EXAMPLES)]
    Generate(GenerateArgs),
}

const GENERATE_EXAMPLES: &str = "Examples:
  refgen generate 's3://my-bucket/images/**/*.jpg' -o refs.jsonl
  refgen generate s3://media/ --images --expires-in 12h > refs.jsonl
  AWS_ENDPOINT_URL=http://127.0.0.1:9000 refgen generate s3://bucket/ -o refs.jsonl
  refgen generate 'gs://my-bucket/frames/**/*.png' --credentials-file key.json -o refs.jsonl
  refgen generate 'https://acct.blob.core.windows.net/media/clips/*.mp4' --videos -o refs.jsonl

Source patterns: the literal part before the first wildcard is the listing prefix;
`*` and `?` stay within one folder, `**` crosses folders, `\\` escapes a wildcard.";

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Bucket and optional prefix or glob: s3://bucket/prefix/**/*.jpg
    pub source: String,

    /// Write to this file (atomically: replaced only when the run succeeds). `-` or none: stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<String>,

    /// Keep only keys matching this glob (repeatable). Without `/`, it matches the basename.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Drop keys matching this glob (repeatable). Without `/`, it matches the basename.
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

    /// How long the URLs stay valid: 3600, 90m, 12h, 7d (S3, GCS, Azure Entra ID: at most 7d;
    /// GCS signBlob as another account: 12h).
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub expires_in: String,

    /// How names are made: flat (key with / as __, unique), key (raw key), basename (unique).
    #[arg(long, value_enum, default_value_t = NameArg::Flat)]
    pub name: NameArg,

    /// Objects per listing request (default: each service's maximum). For tests and debugging.
    #[arg(long, value_name = "N", hide = true, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub page_size: Option<u32>,

    /// No summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// Storage endpoint: an S3-compatible store, a GCS emulator, an Azure Blob endpoint such as
    /// Azurite's http://127.0.0.1:10000/devstoreaccount1 (S3 also reads AWS_ENDPOINT_URL_S3 /
    /// AWS_ENDPOINT_URL; GCS reads STORAGE_EMULATOR_HOST; Azure, a connection string's BlobEndpoint).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    #[command(flatten)]
    pub s3: S3Args,

    #[command(flatten)]
    pub gcs: GcsArgs,

    #[command(flatten)]
    pub azure: AzureArgs,
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
    /// Service-account key file to sign with (default: GOOGLE_APPLICATION_CREDENTIALS, then gcloud's ADC file).
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<std::path::PathBuf>,

    /// HMAC key access id (also GCS_HMAC_ACCESS_ID): fast local signing.
    #[arg(long, value_name = "ID")]
    pub hmac_access_id: Option<String>,

    /// HMAC key secret (also GCS_HMAC_SECRET).
    #[arg(long, value_name = "SECRET")]
    pub hmac_secret: Option<String>,

    /// Service account to sign as through IAM signBlob, when the credentials hold no key.
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

impl From<AddressingArg> for refgen_s3::Addressing {
    fn from(a: AddressingArg) -> Self {
        match a {
            AddressingArg::Virtual => refgen_s3::Addressing::Virtual,
            AddressingArg::Path => refgen_s3::Addressing::Path,
        }
    }
}
