//! Writing a references file for a source: the plan (everything checked before
//! any request, the one place an expiry is checked) and [`run`], the one entry
//! point of a run: store or inventory report, one file or resumable parts, a
//! shard, a limit, or a dry run that only counts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use refgen_core::expiry::display_duration;
use refgen_core::filter::{MediaPreset, Selection, SelectionBuilder};
use refgen_core::naming::{NameMode, Namer};
pub use refgen_core::pipeline::Skipped;
use refgen_core::pipeline::{Objects, Output as PipelineOutput, Progress, RunOptions, Summary};
use refgen_core::shard::Shard;
use refgen_core::size::{ROBOFLOW_IMAGE_LIMIT, display_size};
use refgen_core::source::SourceUrl;
use refgen_core::writer::{Checkpoint, OutputTarget, ReferenceWriter};
use serde::Serialize;

use crate::Error;
use crate::store::{Store, StoreOptions, max_expiry};

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
    /// Sign for the time the credentials have left when they expire before
    /// `expires_in` would (refused otherwise).
    pub allow_short_expiry: bool,
    /// Skip objects larger than this; by default, with `images`, Roboflow's limit
    /// on an image ([`ROBOFLOW_IMAGE_LIMIT`], 20 MiB).
    pub max_size: Option<u64>,
    /// Keep only this worker's share: with `range_plan`, the plan's part of that
    /// index (listed alone); else a hash of the key picks it (every worker lists
    /// the whole source).
    pub shard: Option<Shard>,
    /// A plan of key ranges (`refgen plan`): the run lists only the range of its
    /// shard. The source and the selection must be the plan's.
    pub range_plan: Option<Arc<crate::ranges::RangePlan>>,
    /// An inventory report to read instead of listing (its manifest or folder URL).
    pub inventory: Option<String>,
    /// Each URL names the version listed (S3 `versionId`, GCS `generation`, Azure
    /// `versionid`), so the batch reads the bytes that were listed.
    pub pin_versions: bool,
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
            allow_short_expiry: false,
            max_size: None,
            shard: None,
            range_plan: None,
            inventory: None,
            pin_versions: false,
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
    /// Whether URLs may be signed for less than `expires_in` when the
    /// credentials end sooner.
    pub allow_short_expiry: bool,
    /// The inventory report to read instead of listing, if any.
    pub inventory: Option<SourceUrl>,
    /// This worker's share, if only a share is kept.
    pub shard: Option<Shard>,
    /// The key range listed, for a run of a plan's part.
    pub range: Option<refgen_core::list::KeyRange>,
    /// The fingerprint of that plan.
    pub plan_fingerprint: Option<String>,
    /// URLs name the version listed.
    pub pin_versions: bool,
    /// What makes two runs the same run (the URLs' signatures aside): a
    /// resumable run continues only a checkpoint written with these.
    settings: serde_json::Value,
}

impl Plan {
    /// Parses `source` and checks the options against it.
    pub fn new(source: &str, options: &GenerateOptions) -> Result<Plan, Error> {
        let source_text = source;
        let source: SourceUrl = source.parse()?;
        check_expiry(&source, options.expires_in)?;
        let max_size = options
            .max_size
            .or((options.images && !options.videos).then_some(ROBOFLOW_IMAGE_LIMIT));
        let range = match &options.range_plan {
            Some(plan) => Some(planned_range(source_text, plan, options)?),
            None => None,
        };
        let mut selection = SelectionBuilder::new(&source.pattern)
            .include(&options.include)
            .exclude(&options.exclude)
            .case_insensitive(options.ignore_case)
            .max_size(max_size)
            .shard(options.shard.filter(|_| range.is_none()));
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
            allow_short_expiry: options.allow_short_expiry,
            inventory,
            shard: options.shard,
            range,
            plan_fingerprint: options.range_plan.as_ref().map(|p| p.fingerprint.clone()),
            pin_versions: options.pin_versions,
            settings: serde_json::json!({
                "plan": options.range_plan.as_ref().map(|p| p.fingerprint.clone()),
                "source": source_text, "include": options.include, "exclude": options.exclude,
                "images": options.images, "videos": options.videos, "ignore_case": options.ignore_case,
                "name": format!("{:?}", options.name_mode), "expires_in": options.expires_in.as_secs(),
                "max_size": options.max_size, "shard": options.shard.map(|s| s.to_string()),
                "inventory": options.inventory, "pin_versions": options.pin_versions,
            }),
        })
    }

    /// Keeps `progress` up to date while the run goes (for a progress display).
    pub fn with_progress(mut self, progress: Arc<Progress>) -> Self {
        self.run.progress = Some(progress);
        self
    }
}

/// The range of `options.shard` in `plan`, once the run is checked to be the
/// plan's: its source, its selection, a shard of its count, no inventory.
fn planned_range(
    source: &str,
    plan: &crate::ranges::RangePlan,
    options: &GenerateOptions,
) -> Result<refgen_core::list::KeyRange, Error> {
    let refuse = |setting: &str, value: String, reason: String| -> Error {
        refgen_core::Error::setting(setting, value, reason).into()
    };
    if source != plan.source {
        return Err(refuse(
            "source",
            source.to_owned(),
            format!("the plan was made for {}", plan.source),
        ));
    }
    if crate::ranges::PlanSelection::of(options) != plan.selection {
        return Err(refuse(
            "selection",
            "other globs or filters".to_owned(),
            "the plan's runs keep what the plan was made with (its `selection`)".to_owned(),
        ));
    }
    if let Some(inventory) = &options.inventory {
        return Err(refuse(
            "inventory",
            inventory.clone(),
            "a plan cuts a listing; an inventory report is split by its data files".to_owned(),
        ));
    }
    let count = plan.count();
    match options.shard {
        Some(shard) if shard.count() == count => Ok(plan.range(shard.index()).unwrap_or_default()),
        Some(shard) => Err(refuse(
            "shard",
            shard.to_string(),
            format!("the plan has {count} parts: give K/{count}"),
        )),
        None => Err(refuse(
            "shard",
            "none".to_owned(),
            format!("a plan's run lists one of its {count} parts: give K/{count}"),
        )),
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

/// Where a run's references go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Nowhere: list and count only, signing and writing nothing.
    DryRun,
    /// Handed on as they are signed, a page at a time, through a bounded
    /// channel (the run goes at its taker's pace and stops when it is gone).
    Stream(tokio::sync::mpsc::Sender<Vec<refgen_core::pipeline::Reference>>),
    /// One file (replaced atomically when whole) or standard output.
    Target(OutputTarget),
    /// Numbered parts of at most `lines` lines beside `path`; with `resume`, a
    /// rerun of the same run starts after the parts its checkpoint says are done.
    Parts {
        /// The first part's name (`refs.jsonl` → `refs-00000.jsonl`, …).
        path: PathBuf,
        /// Lines per part.
        lines: u64,
        /// Continue after a checkpoint this run's settings wrote.
        resume: bool,
    },
}

/// What a run did: its counts, where the references went, and for how long they
/// are valid. Serialized, it is `refgen generate --json`'s document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerateReport {
    /// The parts written (a `--part-lines` run), first to last.
    pub parts: Vec<PathBuf>,
    /// The worker's share (`K/N`), if only a share was kept.
    pub shard: Option<String>,
    /// The plan's fingerprint, for a run of one of its parts.
    pub plan: Option<String>,
    /// The key range listed, for a run of a plan's part.
    pub range: Option<refgen_core::list::KeyRange>,
    /// Objects the listing (or the report) returned.
    pub listed: u64,
    /// Objects that passed the filters.
    pub matched: u64,
    /// References written.
    pub written: u64,
    /// References whose URL names the exact version listed (`--pin-versions`).
    pub pinned: u64,
    /// Objects not written, by reason.
    pub skipped: Skipped,
    /// Whether the run stopped at its limit.
    pub limited: bool,
    /// Whether nothing was signed or written.
    pub dry_run: bool,
    /// The file written (none for standard output or a dry run).
    pub output: Option<PathBuf>,
    /// How long each URL is valid (less than asked for when the credentials end
    /// sooner and that was allowed).
    pub expires_in_seconds: u64,
    /// When the first URL signed expires (RFC 3339); later ones, signed later,
    /// last as long from their own signing. None for a dry run.
    pub expires_at: Option<String>,
    /// What bounds the expiry: the signer's cap ("7d (SigV4's limit on a
    /// presigned URL)"), or the signing credentials when they cut it short.
    pub expiry_limit: String,
    /// How long the run took.
    pub elapsed_seconds: f64,
}

impl GenerateReport {
    /// Where the references went, for a summary line (none: a dry run).
    pub fn destination(&self) -> Option<String> {
        match (self.dry_run, self.parts.as_slice(), &self.output) {
            (true, ..) => None,
            (false, [first, .., last], _) => Some(format!(
                "{} … {} ({} parts)",
                first.display(),
                last.display(),
                self.parts.len()
            )),
            (false, _, Some(path)) => Some(path.display().to_string()),
            (false, _, None) => Some("standard output".to_owned()),
        }
    }
}

/// What a run says while it goes, besides its progress counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerateEvent {
    /// A resumable run continues after the parts an earlier run put in place.
    Resuming {
        /// The last part done, numbered from 0.
        last_part: usize,
        /// The key of its last line.
        last_key: String,
    },
}

/// Runs `plan`: opens its store with `store`, lists it (or reads its inventory
/// report), filters, signs and writes the references to `output`, which appears
/// only when whole. Selecting no object is [`Error::Empty`] unless the plan
/// allows it; a failed run leaves `output` as it was. `events` hears what the
/// run says besides its counts (which [`Plan::with_progress`] shares).
///
/// ```no_run
/// use refgen::core::writer::OutputTarget;
/// use refgen::generate::{GenerateOptions, Output, Plan, run};
/// use refgen::store::StoreOptions;
///
/// # async fn go() -> Result<(), refgen::Error> {
/// let options = GenerateOptions { images: true, ..GenerateOptions::default() };
/// let mut plan = Plan::new("s3://my-bucket/photos/**", &options)?;
/// let output = Output::Target(OutputTarget::File("refs.jsonl".into()));
/// let report = run(&mut plan, &StoreOptions::default(), output, &mut |_| {}).await?;
/// println!("{} references", report.written);
/// # Ok(())
/// # }
/// ```
pub async fn run(
    plan: &mut Plan,
    store: &StoreOptions,
    output: Output,
    events: &mut (dyn FnMut(GenerateEvent) + Send),
) -> Result<GenerateReport, Error> {
    let mut writer = match &output {
        Output::DryRun | Output::Stream(_) => None,
        Output::Target(target) => Some(ReferenceWriter::create(target.clone())?),
        Output::Parts {
            path,
            lines,
            resume: false,
        } => Some(ReferenceWriter::create_parts(path.clone(), *lines)?),
        Output::Parts {
            path,
            lines,
            resume: true,
        } => Some(resumable(plan, path, *lines, events)?),
    };
    let store = &StoreOptions {
        pin_versions: plan.pin_versions,
        ..store.clone()
    };
    let opened = crate::store::open(&plan.source, store).await?;
    let asked = plan.expires_in;
    plan.expires_in = effective_expiry(&opened, plan.expires_in, plan.allow_short_expiry)?;
    // What bounds this run's expiry: the credentials when they cut it short,
    // else the signer's own cap.
    let signer = opened.signer();
    let expiry_limit = match signer.credentials_expire_at() {
        Some(end) if plan.expires_in < asked => {
            format!(
                "the signing credentials, which expire at {}",
                refgen_core::expiry::format_rfc3339(end)
            )
        }
        _ => format!("{} ({})", display_duration(signer.max_expiry()), signer.expiry_limit()),
    };
    // The first URL's expiry: every later one is signed later, for as long.
    let expires_at = refgen_core::expiry::format_rfc3339(SystemTime::now() + plan.expires_in);
    let objects = match plan.inventory.clone() {
        Some(location) => {
            let report = if location.bucket == plan.source.bucket {
                opened.clone()
            } else {
                crate::store::open(&location, store).await?
            };
            inventory(plan, &report, &location.pattern).await?
        }
        None => match &plan.range {
            Some(range) => Objects::Range(opened.lister(), range.clone()),
            None => Objects::Listing(opened.lister()),
        },
    };
    let out = match (writer.as_mut(), &output) {
        (Some(writer), _) => refgen_core::pipeline::Output::Write(writer),
        (None, Output::Stream(tx)) => refgen_core::pipeline::Output::Send(tx.clone()),
        (None, _) => refgen_core::pipeline::Output::DryRun,
    };
    let summary = write(plan, &opened, objects, out).await?;
    let parts = match (&output, &writer) {
        (Output::Parts { .. }, Some(writer)) => writer.outputs(),
        _ => Vec::new(),
    };
    if let Some(writer) = writer {
        writer.finish()?;
    }
    Ok(GenerateReport {
        parts,
        shard: plan.shard.map(|s| s.to_string()),
        plan: plan.plan_fingerprint.clone(),
        range: plan.range.clone(),
        listed: summary.listed,
        matched: summary.matched,
        written: summary.written,
        pinned: summary.pinned,
        skipped: summary.skipped,
        limited: summary.limited,
        dry_run: matches!(output, Output::DryRun),
        expires_at: (!matches!(output, Output::DryRun)).then_some(expires_at),
        output: match output {
            Output::Target(OutputTarget::File(path)) | Output::Parts { path, .. } => Some(path),
            _ => None,
        },
        expires_in_seconds: plan.expires_in.as_secs(),
        expiry_limit,
        elapsed_seconds: summary.elapsed.as_secs_f64(),
    })
}

/// The writer of a resumable run: it starts after the parts its checkpoint says
/// are done, when the checkpoint was written with the same settings.
fn resumable(
    plan: &mut Plan,
    path: &Path,
    lines: u64,
    events: &mut (dyn FnMut(GenerateEvent) + Send),
) -> Result<ReferenceWriter, Error> {
    // A report resumes by row: it must be the same report, named by its manifest.
    let by_row = plan.inventory.is_some();
    let mut settings = plan.settings.clone();
    settings["part_lines"] = lines.into();
    let settings = settings.to_string();
    let (first, after) = match Checkpoint::read(path)? {
        Some(done) if done.settings == settings => {
            events(GenerateEvent::Resuming {
                last_part: done.parts.saturating_sub(1),
                last_key: done.last_key.clone(),
            });
            (done.parts, Some(done))
        }
        Some(_) => {
            return Err(Error::ResumeMismatch {
                checkpoint: Checkpoint::path(path),
            });
        }
        None => (0, None),
    };
    match after {
        Some(done) if by_row => plan.run.skip_rows = done.position.unwrap_or(0),
        Some(done) => plan.selection = plan.selection.resuming_after(Some(done.last_key)),
        None => {}
    }
    Ok(ReferenceWriter::create_parts_resumable(
        path.to_owned(),
        lines,
        first,
        settings,
        by_row,
    )?)
}

/// The expiry the URLs get: `expires_in`, checked against the signer's limit
/// ([`check_signer_expiry`]) and against the lifetime of the credentials that
/// sign (a batch reads its URLs for up to its processing window, so a URL that
/// dies with its credentials fails the batch later, far from its cause).
/// Credentials that end first are refused, or, with `allow_short`, the URLs are
/// signed for the whole seconds they have left, with a warning.
pub fn effective_expiry(store: &Store, expires_in: Duration, allow_short: bool) -> Result<Duration, Error> {
    check_signer_expiry(store, expires_in)?;
    let Some(end) = store.signer().credentials_expire_at() else {
        return Ok(expires_in);
    };
    let now = SystemTime::now();
    if now + expires_in <= end {
        return Ok(expires_in);
    }
    let left = end.duration_since(now).unwrap_or_default();
    if !allow_short || left.as_secs() == 0 {
        return Err(refgen_core::Error::ShortCredentials {
            credentials_expire: refgen_core::expiry::format_rfc3339(end),
            expires_in: display_duration(expires_in),
            urls_expire: refgen_core::expiry::format_rfc3339(now + expires_in),
        }
        .into());
    }
    let left = Duration::from_secs(left.as_secs());
    tracing::warn!(
        "the signing credentials expire at {}: the URLs are signed for {} instead of {}",
        refgen_core::expiry::format_rfc3339(end),
        display_duration(left),
        display_duration(expires_in)
    );
    Ok(left)
}

/// Refuses an expiry longer than this store's signer can sign with the
/// credentials it found (a GCS impersonated token: 12 hours): checked once the
/// store is open, before any listing. [`check_expiry`] checks the provider's own
/// limit before any request; the two are the only expiry checks.
pub fn check_signer_expiry(store: &Store, expires_in: Duration) -> Result<(), Error> {
    let max = store.signer().max_expiry();
    if expires_in > max {
        return Err(refgen_core::Error::InvalidExpiry {
            input: display_duration(expires_in),
            reason: format!(
                "longer than {} of {}",
                store.signer().expiry_limit(),
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
async fn inventory(plan: &mut Plan, report: &Store, location: &str) -> Result<Objects, Error> {
    if report.provider() != plan.source.provider {
        return Err(refgen_core::Error::Inventory {
            file: location.to_owned(),
            reason: "the report must be on the same cloud as the source".to_owned(),
        }
        .into());
    }
    let (mut found, downloader) = report.inventory_report(location, &plan.source.bucket).await?;
    if found.files.is_empty() && !plan.allow_empty {
        // Not "is the prefix right?": the report was found, and it is empty.
        return Err(refgen_core::Error::Inventory {
            file: found.name.clone(),
            reason: "the report lists no data file: it is empty (of an empty bucket, or not yet written)".to_owned(),
        }
        .into());
    }
    if !plan.pin_versions {
        found.layout.version = None;
    } else if found.layout.version.is_none() {
        return Err(refgen_core::Error::Inventory {
            file: found.name.clone(),
            reason: format!(
                "versions can be pinned from S3 Inventory reports only, not from {}'s: list the bucket instead",
                plan.source.provider
            ),
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

/// Signs and writes `objects` (or counts them, for a dry run), with the warnings
/// of what was skipped and the refusal of an empty selection.
async fn write(plan: &mut Plan, store: &Store, objects: Objects, out: PipelineOutput<'_>) -> Result<Summary, Error> {
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
    if summary.skipped.customer_key > 0 {
        tracing::warn!(
            "skipped {} encrypted with a customer-provided key (SSE-C): a URL cannot carry the key",
            plural(summary.skipped.customer_key, "object", "objects")
        );
    }
    if summary.matched == 0 && plan.range.is_some() && !plan.allow_empty {
        // The plan, not the person running it, drew this part's bounds: an
        // empty part (objects removed since, a bucket smaller than the plan's
        // parts) is a part done, not a failure of the whole job.
        tracing::warn!(
            "part {} of the plan holds no object to reference: the file is empty",
            plan.shard.map(|s| s.to_string()).unwrap_or_default()
        );
    } else if summary.matched == 0 && !plan.allow_empty {
        return Err(Error::Empty {
            url: plan.source.to_string(),
            listed: summary.listed,
            unreadable: summary.skipped.archived + summary.skipped.too_large + summary.skipped.customer_key,
            other_shards: summary.skipped.other_shards,
        });
    }
    Ok(summary)
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
