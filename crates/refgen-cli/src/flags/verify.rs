//! `refgen verify`'s flags, and the check `submit --verify` shares.

use clap::Args;

use super::common::{RequestArgs, duration};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  refgen verify refs.jsonl
  refgen verify refs.jsonl --all --min-valid 48h --json

Every line is checked (name, extension, https, the signature's own validity
dates); a sample of the URLs (or --all) is fetched with a one-byte ranged GET.
Problems: bad-line, duplicate-name, bad-extension, plain-http, expired,
not-yet-valid, expires-soon, signature-refused, missing, too-large (an image
over 20 MiB), unreachable. Exit codes: 0 none, 1 some, 2 bad command line.")]
pub struct VerifyArgs {
    /// The references file.
    pub file: std::path::PathBuf,

    #[command(flatten)]
    pub check: VerifyCheckArgs,

    /// Images or videos (default: either extension list passes).
    #[arg(long, conflicts_with = "videos")]
    pub images: bool,

    /// Videos.
    #[arg(long)]
    pub videos: bool,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub requests: RequestArgs,
}

/// What `verify` (and `submit --verify`) fetches and requires.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Verify options")]
pub struct VerifyCheckArgs {
    /// Fetch a sample of N URLs (spread over the file, the same on every run).
    #[arg(long, value_name = "N", default_value_t = 100, conflicts_with = "all")]
    pub sample: usize,

    /// Fetch every URL.
    #[arg(long)]
    pub all: bool,

    /// URLs must stay valid at least this long [default: 24h, the batch's processing window].
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = duration)]
    pub min_valid: std::time::Duration,

    /// Requests at once.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub verify_concurrency: u16,
}
