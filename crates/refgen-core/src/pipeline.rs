//! The generate pipeline: list → filter → sign → write, as one stream.
//!
//! Pages flow through with bounded look-ahead: while page *n* is written, up to
//! [`SIGN_AHEAD`] later pages may be listed and signed, each page signed in a task
//! of its own (so signing runs on every core, beside the writing). Order is kept
//! (the output is in listing order, so the same bucket gives the same file) and
//! memory is bounded by a few pages, whatever the size of the bucket.
//!
//! A run may stop at a limit of references, count without signing or writing (a
//! dry run), and keep [`Progress`] counts that another task reads while it goes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::TryStreamExt;

use crate::filter::{Selection, Verdict};
use crate::list::{ListClient, PageStream, list_concurrently};
use crate::naming::Namer;
use crate::writer::ReferenceWriter;
use crate::{Error, Signer, StorageErrorKind};

/// How many pages may be signed ahead of the one being written.
pub const SIGN_AHEAD: usize = 8;

/// Counts from one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects the listing returned.
    pub listed: u64,
    /// Objects that passed the filters.
    pub matched: u64,
    /// Lines written.
    pub written: u64,
    /// References whose URL names the exact version listed (`version` set).
    pub pinned: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The run stopped at its limit of references, before the listing's end.
    pub limited: bool,
    /// Listed objects that were not referenced, by reason.
    pub skipped: Skipped,
}

/// Listed objects that were not referenced, by reason (see [`Verdict`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Not selected by the source glob, the filters or a preset, or folder markers.
    pub filtered: u64,
    /// Another worker's share (`--shard`).
    pub other_shards: u64,
    /// In an archive a GET cannot read.
    pub archived: u64,
    /// Over the size limit.
    pub too_large: u64,
    /// Encrypted with a customer-provided key (SSE-C), which a URL cannot carry.
    pub customer_key: u64,
    /// Inventory rows of older versions and delete markers.
    pub superseded: u64,
    /// Written by the interrupted run this one resumes.
    pub resumed: u64,
}

impl Skipped {
    fn add(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Filtered => self.filtered += 1,
            Verdict::OtherShard => self.other_shards += 1,
            Verdict::Archived => self.archived += 1,
            Verdict::TooLarge => self.too_large += 1,
            Verdict::CustomerKey => self.customer_key += 1,
            Verdict::Superseded => self.superseded += 1,
            Verdict::Resumed => self.resumed += 1,
            Verdict::Keep => {}
        }
    }
}

/// Keys of objects skipped as unreadable (archived, too large) that are shown, at
/// debug level (`-v`), for each reason.
pub const SKIPPED_SHOWN: u64 = 5;

/// The counts of a run while it goes: the pipeline adds to them page by page, and
/// a progress display reads them from another task.
#[derive(Debug, Default)]
pub struct Progress {
    listed: AtomicU64,
    matched: AtomicU64,
    written: AtomicU64,
}

impl Progress {
    /// Objects listed, matched and referenced so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.listed.load(Ordering::Relaxed),
            self.matched.load(Ordering::Relaxed),
            self.written.load(Ordering::Relaxed),
        )
    }

    fn reset(&self) {
        for count in [&self.listed, &self.matched, &self.written] {
            count.store(0, Ordering::Relaxed);
        }
    }
}

/// How a run goes, beyond what it selects and how it names.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Listing requests in flight at once (1 lists sequentially).
    pub concurrency: usize,
    /// Stop after this many references (a trial on a big bucket).
    pub limit: Option<u64>,
    /// Counts to keep up to date while the run goes.
    pub progress: Option<Arc<Progress>>,
    /// Objects (rows of a report) at the start of the run that an interrupted run
    /// already went through: counted as resumed, not referenced again.
    pub skip_rows: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: crate::list::DEFAULT_CONCURRENCY,
            limit: None,
            progress: None,
            skip_rows: 0,
        }
    }
}

/// Where a run's objects come from.
pub enum Objects {
    /// A listing of the selection's prefix: split and listed concurrently, and
    /// listed again sequentially when the server turns out not to list in byte order.
    Listing(Arc<dyn ListClient>),
    /// A listing of one key range of the selection's prefix (a plan's part):
    /// concurrent, and failed rather than listed again when the server does not
    /// list in byte order (which the range's ends rely on).
    Range(Arc<dyn ListClient>, crate::list::KeyRange),
    /// Pages from elsewhere (an inventory report), in their own order, read once.
    Pages(std::sync::Mutex<Option<PageStream<'static>>>),
}

impl Objects {
    /// Pages read once, in their own order.
    pub fn pages(stream: PageStream<'static>) -> Objects {
        Objects::Pages(std::sync::Mutex::new(Some(stream)))
    }

    fn stream(&self, prefix: &str, concurrency: usize) -> PageStream<'static> {
        match self {
            Objects::Listing(lister) => list_concurrently(Arc::clone(lister), prefix.to_owned(), concurrency),
            Objects::Range(lister, range) => {
                crate::list::list_range(Arc::clone(lister), prefix.to_owned(), range.clone(), concurrency)
            }
            Objects::Pages(once) => {
                let taken = once.lock().ok().and_then(|mut s| s.take());
                taken.unwrap_or_else(|| {
                    Box::pin(futures::stream::once(async {
                        Err(Error::Inventory {
                            file: "pages".into(),
                            reason: "read twice".into(),
                        })
                    }))
                })
            }
        }
    }
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Objects::Listing(_) => "Objects::Listing",
            Objects::Range(..) => "Objects::Range",
            Objects::Pages(_) => "Objects::Pages",
        })
    }
}

/// A signed reference handed on as it is made (see [`Output::Send`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Its name (as in a references file).
    pub name: String,
    /// The signed GET URL.
    pub url: String,
    /// The object's key.
    pub key: String,
    /// The object's size in bytes.
    pub size: u64,
}

/// Where the selected objects go: signed into a references file, handed on as
/// they are signed, or (a dry run) only counted, with nothing signed or written.
#[derive(Debug)]
pub enum Output<'a> {
    /// Sign each object and write its line.
    Write(&'a mut ReferenceWriter),
    /// Sign each object and send its reference, a page at a time, through a
    /// bounded channel: the run goes at the pace its taker takes them, and
    /// stops when the taker is gone.
    Send(tokio::sync::mpsc::Sender<Vec<Reference>>),
    /// Count the objects; the first [`DRY_RUN_SHOWN`] keys are logged at debug level.
    DryRun,
}

/// Keys a dry run shows (at debug level, `-v`).
pub const DRY_RUN_SHOWN: u64 = 20;

/// Writes one reference line per selected object.
///
/// The listing is split into parts listed concurrently (up to `concurrency` requests
/// in flight; see [`crate::list`]), and pages still arrive in key order. When the
/// server turns out not to list in byte order (which splitting relies on) and the
/// output can still be taken back (a file not yet in place), the run starts over
/// with a sequential listing. `expires_in` is checked against the provider's
/// limit by the caller, once, before any request (the facade's `Plan` does).
pub async fn generate(
    objects: Objects,
    signer: Arc<dyn Signer>,
    selection: &Selection,
    expires_in: Duration,
    options: &RunOptions,
    namer: &mut Namer,
    mut out: Output<'_>,
) -> Result<Summary, Error> {
    let started = Instant::now();
    let pass = Pass {
        objects: &objects,
        signer: &signer,
        selection,
        expires_in,
        options,
    };
    let first = pass.write_all(options.concurrency, namer, &mut out).await;
    let mut summary = match first {
        Err(e)
            if options.concurrency > 1
                && matches!(objects, Objects::Listing(_))
                && e.storage_kind() == Some(StorageErrorKind::ListingOrder)
                && out.rewind()? =>
        {
            tracing::warn!("{e}: listing again, sequentially");
            namer.restart();
            if let Some(progress) = &options.progress {
                progress.reset();
            }
            pass.write_all(1, namer, &mut out).await?
        }
        other => other?,
    };
    if let Output::Write(writer) = &out {
        summary.written = writer.lines();
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

impl Output<'_> {
    /// Throws away what was written, for a run that starts over (see
    /// [`ReferenceWriter::rewind`]); a dry run has nothing to take back.
    fn rewind(&mut self) -> Result<bool, Error> {
        match self {
            Output::Write(writer) => writer.rewind(),
            // What was sent cannot be taken back.
            Output::Send(_) => Ok(false),
            Output::DryRun => Ok(true),
        }
    }
}

/// What one pass of list → filter → sign → write needs.
struct Pass<'a> {
    objects: &'a Objects,
    signer: &'a Arc<dyn Signer>,
    selection: &'a Selection,
    expires_in: Duration,
    options: &'a RunOptions,
}

impl Pass<'_> {
    async fn write_all(&self, concurrency: usize, namer: &mut Namer, out: &mut Output<'_>) -> Result<Summary, Error> {
        let mut summary = Summary::default();
        let sign = matches!(out, Output::Write(_) | Output::Send(_));
        // Everything a page needs is moved into its own task: selecting, signing and
        // (when a name depends on its key alone) naming run beside the writer, which
        // is the one sequential step.
        let selection = Arc::new(self.selection.clone());
        let stateless = namer.stateless();
        let skip_rows = self.options.skip_rows;
        let mut rows: u64 = 0;
        let expires_in = self.expires_in;
        let mut signed_pages = self
            .objects
            .stream(self.selection.prefix(), concurrency)
            .map_ok(|page| {
                // The page's first object's place in the run's order (a report's
                // row), for a checkpoint that resumes by position.
                let first = rows;
                rows += page.len() as u64;
                let signer = Arc::clone(self.signer);
                let selection = Arc::clone(&selection);
                let signing = tokio::spawn(async move {
                    let mut page = select(page, first, skip_rows, &selection);
                    if sign {
                        page.urls = signer.sign_page(&page.kept, expires_in).await?;
                    }
                    if sign && let Some(name) = stateless {
                        page.names = page.kept.iter().map(|o| name(&o.key)).collect();
                    }
                    Ok::<_, Error>(page)
                });
                async move {
                    signing.await.map_err(|source| Error::Task {
                        doing: "signing a page",
                        source,
                    })?
                }
            })
            .try_buffered(SIGN_AHEAD);
        let limit = self.options.limit.unwrap_or(u64::MAX);
        let (mut shown_archived, mut shown_too_large) = (0, 0);
        let progress = self.options.progress.as_deref();
        while let Some(SelectedPage {
            listed,
            skipped,
            unreadable,
            kept,
            positions,
            urls,
            names,
        }) = signed_pages.try_next().await?
        {
            summary.listed += listed;
            for (verdict, object) in unreadable {
                let shown = match verdict {
                    Verdict::Archived => &mut shown_archived,
                    _ => &mut shown_too_large,
                };
                if *shown < SKIPPED_SHOWN {
                    *shown += 1;
                    show_skipped(&object, verdict);
                }
            }
            summary.skipped.filtered += skipped.filtered;
            summary.skipped.other_shards += skipped.other_shards;
            summary.skipped.archived += skipped.archived;
            summary.skipped.too_large += skipped.too_large;
            summary.skipped.customer_key += skipped.customer_key;
            summary.skipped.superseded += skipped.superseded;
            summary.skipped.resumed += skipped.resumed;
            let room = usize::try_from(limit - summary.matched).unwrap_or(usize::MAX);
            let taken = kept.len().min(room);
            summary.matched += taken as u64;
            summary.pinned += kept.iter().take(taken).filter(|o| o.version.is_some()).count() as u64;
            match out {
                Output::Write(writer) => {
                    let lines = kept.iter().zip(&urls).zip(&positions).enumerate();
                    for (i, ((object, url), position)) in lines.take(taken) {
                        let name = match names.get(i) {
                            Some(name) => std::borrow::Cow::Borrowed(name.as_str()),
                            None => std::borrow::Cow::Owned(namer.name(&object.key)),
                        };
                        writer.write_at(&object.key, *position, &name, url)?;
                    }
                }
                Output::Send(tx) => {
                    let references: Vec<Reference> = kept
                        .into_iter()
                        .zip(urls)
                        .enumerate()
                        .take(taken)
                        .map(|(i, (object, url))| Reference {
                            name: match names.get(i) {
                                Some(name) => name.clone(),
                                None => namer.name(&object.key),
                            },
                            url,
                            key: object.key,
                            size: object.size,
                        })
                        .collect();
                    summary.written += references.len() as u64;
                    if tx.send(references).await.is_err() {
                        // The taker is gone: nothing more is wanted.
                        break;
                    }
                }
                Output::DryRun => {
                    let shown = DRY_RUN_SHOWN.saturating_sub(summary.matched - taken as u64);
                    for object in kept.iter().take(taken.min(usize::try_from(shown).unwrap_or(0))) {
                        tracing::debug!("would reference {:?} as {:?}", object.key, namer.name(&object.key));
                    }
                }
            }
            if let Some(progress) = progress {
                progress.listed.fetch_add(listed, Ordering::Relaxed);
                progress.matched.fetch_add(taken as u64, Ordering::Relaxed);
                if sign {
                    progress.written.fetch_add(taken as u64, Ordering::Relaxed);
                }
            }
            if summary.matched >= limit {
                // Dropping the stream cancels the listing still in flight.
                summary.limited = true;
                break;
            }
        }
        Ok(summary)
    }
}

/// One page once selected (and signed and named, in its task).
struct SelectedPage {
    listed: u64,
    skipped: Skipped,
    /// A few objects skipped as unreadable, to be shown.
    unreadable: Vec<(Verdict, crate::ObjectMeta)>,
    kept: Vec<crate::ObjectMeta>,
    /// Each kept object's place in the run's order.
    positions: Vec<u64>,
    urls: Vec<String>,
    /// Each kept object's name, when names depend on the key alone and the page is
    /// written; otherwise empty, and the writer's namer names them in order.
    names: Vec<String>,
}

/// Sorts a page's objects into kept and skipped; `first` is the place of its first
/// object in the run's order, and objects before `skip_rows` were done by an
/// interrupted run.
fn select(page: Vec<crate::ObjectMeta>, first: u64, skip_rows: u64, selection: &Selection) -> SelectedPage {
    let listed = page.len() as u64;
    let mut skipped = Skipped::default();
    let mut unreadable = Vec::new();
    let mut kept = Vec::with_capacity(page.len());
    let mut positions = Vec::with_capacity(page.len());
    for (position, object) in (first..).zip(page) {
        let verdict = if position < skip_rows {
            Verdict::Resumed
        } else {
            selection.verdict(&object)
        };
        match verdict {
            Verdict::Keep => {
                kept.push(object);
                positions.push(position);
            }
            verdict => {
                skipped.add(verdict);
                if matches!(verdict, Verdict::Archived | Verdict::TooLarge)
                    && skipped.archived + skipped.too_large <= 2 * SKIPPED_SHOWN
                {
                    unreadable.push((verdict, object));
                }
            }
        }
    }
    SelectedPage {
        listed,
        skipped,
        unreadable,
        kept,
        positions,
        urls: Vec::new(),
        names: Vec::new(),
    }
}

/// Logs (at debug level, `-v`) a key skipped as unreadable.
fn show_skipped(object: &crate::ObjectMeta, verdict: Verdict) {
    match verdict {
        Verdict::Archived => tracing::debug!("skipped {:?}: archived, a GET cannot read it", object.key),
        _ => tracing::debug!("skipped {:?}: {} bytes, over the size limit", object.key, object.size),
    }
}
