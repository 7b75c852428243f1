//! Writing a references file for a source: the plan (everything checked before
//! any request) and the run.

use std::sync::Arc;
use std::time::Duration;

use refgen_core::expiry::display_duration;
use refgen_core::filter::{MediaPreset, Selection, SelectionBuilder};
use refgen_core::naming::{NameMode, Namer};
use refgen_core::pipeline::{Objects, Output, Progress, RunOptions, Summary};
use refgen_core::shard::Shard;
use refgen_core::size::{ROBOFLOW_IMAGE_LIMIT, display_size};
use refgen_core::source::SourceUrl;
use refgen_core::writer::ReferenceWriter;

use crate::Error;
use crate::store::{Store, max_expiry};

/// What to select and how to name and sign it.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Globs an object's key must match (relative as `refgen_core::filter` says).
    pub include: Vec<String>,
    /// Globs that drop an object.
    pub exclude: Vec<String>,
    /// Match globs without regard to case.
    pub ignore_case: bool,
    /// Only image files (Roboflow's image extensions).
    pub images: bool,
    /// Only video files.
    pub videos: bool,
    /// How long each URL is valid.
    pub expires_in: Duration,
    /// How names are made from keys.
    pub name_mode: NameMode,
    /// Listing requests in flight.
    pub concurrency: usize,
    /// Stop after this many references.
    pub limit: Option<u64>,
    /// A run that selects no object succeeds (with an empty file) instead of failing.
    pub allow_empty: bool,
    /// Skip objects larger than this; by default, with `images`, Roboflow's limit
    /// on an image ([`ROBOFLOW_IMAGE_LIMIT`], 20 MiB).
    pub max_size: Option<u64>,
    /// Keep only this worker's share (every worker lists the whole source).
    pub shard: Option<Shard>,
    /// An inventory report to read instead of listing (its manifest or folder URL).
    pub inventory: Option<String>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            include: Vec::new(),
            exclude: Vec::new(),
            ignore_case: false,
            images: false,
            videos: false,
            expires_in: Duration::from_secs(86_400),
            name_mode: NameMode::default(),
            concurrency: refgen_core::list::DEFAULT_CONCURRENCY,
            limit: None,
            allow_empty: false,
            max_size: None,
            shard: None,
            inventory: None,
        }
    }
}

/// A run checked before any request: the source, the selection, the names.
#[derive(Debug)]
pub struct Plan {
    /// The source.
    pub source: SourceUrl,
    /// Which keys are kept.
    pub selection: Selection,
    /// How long each URL is valid.
    pub expires_in: Duration,
    /// Names from keys, unique within the run.
    pub namer: Namer,
    /// Concurrency, limit and progress counts.
    pub run: RunOptions,
    /// Whether selecting no object is a success.
    pub allow_empty: bool,
    /// The inventory report to read instead of listing, if any.
    pub inventory: Option<SourceUrl>,
}

impl Plan {
    /// Parses `source` and checks the options against it.
    pub fn new(source: &str, options: &GenerateOptions) -> Result<Plan, Error> {
        let source: SourceUrl = source.parse()?;
        check_expiry(&source, options.expires_in)?;
        let max_size = options
            .max_size
            .or((options.images && !options.videos).then_some(ROBOFLOW_IMAGE_LIMIT));
        let mut selection = SelectionBuilder::new(&source.pattern)
            .include(&options.include)
            .exclude(&options.exclude)
            .case_insensitive(options.ignore_case)
            .max_size(max_size)
            .shard(options.shard);
        if options.images {
            selection = selection.preset(MediaPreset::Images);
        }
        if options.videos {
            selection = selection.preset(MediaPreset::Videos);
        }
        let inventory: Option<SourceUrl> = options.inventory.as_deref().map(str::parse).transpose()?;
        if let Some(report) = &inventory
            && report.provider != source.provider
        {
            // The report is read with the source's store and credentials: a report
            // in another cloud would only meet that cloud's credential chain (a
            // metadata server probe, say) and fail far from its cause.
            return Err(refgen_core::Error::InvalidSource {
                url: options.inventory.clone().unwrap_or_default(),
                reason: format!(
                    "an inventory report is read from the source's own cloud ({}), not from {}",
                    source.provider, report.provider
                ),
            }
            .into());
        }
        Ok(Plan {
            selection: selection.build()?,
            source,
            expires_in: options.expires_in,
            namer: Namer::new(options.name_mode),
            run: RunOptions {
                concurrency: options.concurrency.max(1),
                limit: options.limit,
                progress: None,
                skip_rows: 0,
            },
            allow_empty: options.allow_empty,
            inventory,
        })
    }

    /// Keeps `progress` up to date while the run goes (for a progress display).
    pub fn with_progress(mut self, progress: Arc<Progress>) -> Self {
        self.run.progress = Some(progress);
        self
    }
}

/// Refuses an expiry longer than the source's provider can sign.
pub fn check_expiry(source: &SourceUrl, expires_in: Duration) -> Result<(), Error> {
    let max = max_expiry(source.provider);
    if expires_in > max {
        return Err(refgen_core::Error::InvalidExpiry {
            input: display_duration(expires_in),
            reason: format!(
                "{} URLs can be valid for at most {}",
                source.provider,
                display_duration(max)
            ),
        }
        .into());
    }
    Ok(())
}

/// The objects of the inventory report at `location` of `report` (a bucket of the
/// source's provider), in place of a listing of the source: the report must list
/// the source's bucket. With a shard, a report of at least as many data files as
/// workers is split by file (each worker downloads only its files); a smaller one
/// is read whole by each worker, which keeps its keys by hash.
pub async fn inventory(plan: &mut Plan, report: &Store, location: &str) -> Result<Objects, Error> {
    let unsupported = |why: &str| refgen_core::Error::Inventory {
        file: location.to_owned(),
        reason: why.to_owned(),
    };
    if report.provider() != plan.source.provider {
        return Err(unsupported("the report must be on the same cloud as the source").into());
    }
    let (mut found, downloader): (_, Arc<dyn refgen_core::Downloader>) =
        match (report.s3(), report.azure(), report.gcs()) {
            (Some(s3), ..) => (
                refgen_s3::inventory::open_report(s3, location, &plan.source.bucket).await?,
                s3.clone(),
            ),
            (_, Some(azure), _) => (
                refgen_azure::inventory::open_report(azure, location, &plan.source.bucket).await?,
                azure.clone(),
            ),
            (.., Some(gcs)) => (refgen_gcs::inventory::open_report(gcs, location).await?, gcs.clone()),
            _ => return Err(unsupported("this store has no inventory reports refgen reads").into()),
        };
    if found.files.is_empty() && !plan.allow_empty {
        // Not "is the prefix right?": the report was found, and it is empty.
        return Err(refgen_core::Error::Inventory {
            file: found.name.clone(),
            reason: "the report lists no data file: it is empty (of an empty bucket, or not yet written)".to_owned(),
        }
        .into());
    }
    if let Some(shard) = plan.selection.shard()
        && found.take_shard(shard)
    {
        plan.selection = plan.selection.without_shard();
    }
    tracing::debug!("reading {} ({} data files)", found.name, found.files.len());
    Ok(Objects::pages(refgen_core::inventory::pages(
        found,
        downloader,
        plan.source.bucket.clone(),
    )))
}

/// Signs and writes `objects` (an [`inventory`]'s, or a listing's) as [`generate`]
/// does, or counts them only when `writer` is `None` (a dry run).
pub async fn generate_from(
    plan: &mut Plan,
    store: &Store,
    objects: Objects,
    writer: Option<&mut ReferenceWriter>,
) -> Result<Summary, Error> {
    let out = match writer {
        Some(writer) => Output::Write(writer),
        None => Output::DryRun,
    };
    run_with(plan, store, objects, out).await
}

/// Lists, filters, signs and writes the plan's references into `writer` (which
/// the caller finishes, or drops to leave the target as it was). Selecting no
/// object is [`Error::Empty`] unless the plan allows it.
pub async fn generate(plan: &mut Plan, store: &Store, writer: &mut ReferenceWriter) -> Result<Summary, Error> {
    run(plan, store, Output::Write(writer)).await
}

/// Lists and filters as [`generate`] does, but signs and writes nothing: the
/// counts of a run, and (at debug level) its first keys.
pub async fn dry_run(plan: &mut Plan, store: &Store) -> Result<Summary, Error> {
    run(plan, store, Output::DryRun).await
}

async fn run(plan: &mut Plan, store: &Store, out: Output<'_>) -> Result<Summary, Error> {
    run_with(plan, store, Objects::Listing(store.lister()), out).await
}

async fn run_with(plan: &mut Plan, store: &Store, objects: Objects, out: Output<'_>) -> Result<Summary, Error> {
    let summary = refgen_core::pipeline::generate(
        objects,
        store.signer(),
        &plan.selection,
        plan.expires_in,
        &plan.run,
        &mut plan.namer,
        out,
    )
    .await?;
    if summary.skipped.too_large > 0 {
        tracing::warn!(
            "skipped {} over {}{}",
            plural(summary.skipped.too_large, "object", "objects"),
            display_size(plan.selection.max_size().unwrap_or_default()),
            if plan.selection.max_size() == Some(ROBOFLOW_IMAGE_LIMIT) {
                " (Roboflow's limit on an image)"
            } else {
                ""
            }
        );
    }
    if summary.skipped.archived > 0 {
        tracing::warn!(
            "skipped {} in an archive tier that a GET cannot read (restore them first)",
            plural(summary.skipped.archived, "object", "objects")
        );
    }
    if summary.matched == 0 && !plan.allow_empty {
        return Err(Error::Empty {
            url: plan.source.to_string(),
            listed: summary.listed,
            unreadable: summary.skipped.archived + summary.skipped.too_large,
            other_shards: summary.skipped.other_shards,
        });
    }
    Ok(summary)
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
