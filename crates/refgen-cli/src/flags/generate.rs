//! `refgen generate`'s flags.

use clap::Args;

use super::common::{ReferenceArgs, StoreArgs, not_empty, short_duration};

pub(super) const GENERATE_EXAMPLES: &str = "Examples:
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
  refgen plan s3://media/frames/ --parts 8 -o plan.json
  refgen generate --plan plan.json --shard auto -o part.jsonl

Source patterns: the literal part before the first wildcard is the listing
prefix; `*` and `?` stay within one folder, `**` crosses folders, `\\`
escapes a wildcard. --include/--exclude globs are relative to the source.

Exit codes: 0 success, 1 failure, 2 bad command line.";

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Bucket and optional prefix or glob: s3://bucket/prefix/**/*.jpg (with --plan: the plan's)
    #[arg(required_unless_present = "plan")]
    pub source: Option<String>,

    /// List one part of this plan (`refgen plan`), the one --shard K/N names: its source and
    /// selection are the plan's
    #[arg(long, value_name = "FILE", requires = "shard",
          conflicts_with_all = ["inventory", "include", "exclude", "images", "videos", "ignore_case", "max_size"])]
    pub plan: Option<std::path::PathBuf>,

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
