//! `refgen plan`'s flags.

use clap::Args;

use super::common::{SelectionArgs, StoreArgs, not_empty};

pub(super) const PLAN_EXAMPLES: &str = "Examples:
  refgen plan s3://media/frames/ --parts 8 -o plan.json
  refgen generate --plan plan.json --shard 3/8 -o refs-3.jsonl
  refgen generate --plan plan.json --shard auto -o part.jsonl

On a Kubernetes Indexed Job, --shard auto reads JOB_COMPLETION_INDEX and
takes the count from the plan.
The plan cuts the source's listing into N key ranges of about as many objects
each: exactly when the source lists within 256 pages, else estimated from a
sample (folders of very different sizes make the parts less even). The ranges
cover every key whatever the estimate, and objects added after the plan are
listed by exactly one part. The store must list in byte order (S3, GCS, Azure).

Exit codes: 0 success, 1 failure, 2 bad command line.";

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Bucket and optional prefix or glob: s3://bucket/prefix/**/*.jpg
    pub source: String,

    /// How many parts (workers)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(refgen::ranges::MAX_PARTS)))]
    pub parts: u32,

    /// Write the plan to this file (atomically). `-` or none: stdout.
    #[arg(short, long, value_name = "FILE", value_parser = not_empty)]
    pub output: Option<String>,

    /// Print a JSON summary on stdout at the end (with -o FILE): parts, estimated objects, requests, ….
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub selection: SelectionArgs,

    #[command(flatten)]
    pub store: StoreArgs,
}
