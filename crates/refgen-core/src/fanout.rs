//! Concurrent listing that keeps key order.
//!
//! Listing dominates on real clouds (one page of 1,000 keys per 30–200 ms round
//! trip), and a listing is sequential by nature (each page names the next). So the
//! key space is split into disjoint parts, listed at the same time, and their pages
//! handed on strictly in key order:
//!
//! 1. **Plan**: starting from the prefix, one-level (delimited) listings discover
//!    sub-prefixes ("folders"), breadth first, until there are enough parts for the
//!    concurrency or [`MAX_DEPTH`] is reached. Objects met directly at a level stay
//!    in the plan, in place. A level whose first page holds only files, with more
//!    pages to come, is flat: one part, chunked (below). A level with more than
//!    [`MAX_DIRECT_PAGES`] pages of direct objects among its folders is not split
//!    (it would hold them all in memory): it stays one part.
//! 2. **Chunk**: a flat part (a first page with more to come and no `/` below the
//!    part's prefix) is cut into chunks of just under [`PAGES_AHEAD`] + 1 pages,
//!    `(after, until]`, listed with "start after" on stores that seek to a key. The
//!    boundaries are guessed from the first page's keys (see `split`); a bad guess
//!    costs requests, never keys. Chunks start as earlier ones find keys, so a
//!    small folder costs one extra request; a chunk that finds no keys tells where
//!    the next key is, so a gap costs one request; an open-ended last chunk (past
//!    every boundary the sample could guess: sub-folders after the files, longer
//!    names) hands its last page back to be cut again. Each chunk checks that the
//!    server lists in byte order.
//! 3. **List**: the parts and chunks form an ordered window of at most
//!    `2 × concurrency` units, each a task feeding a channel of a few pages; pages
//!    are taken from the first unit only, and a semaphore keeps `concurrency`
//!    requests in flight. Memory stays bounded by the window, whatever the size of
//!    the bucket.
//!
//! Order: at one level, an object key and a sub-prefix compare as strings, and all
//! keys under a sub-prefix sort together right where the prefix sorts (they start
//! with it, and nothing else at that level does). So merging a level's objects and
//! prefixes by string and expanding each prefix in place gives exactly the byte
//! order of a plain listing, which is S3's, GCS's and Azure's listing order. Chunks
//! are disjoint key ranges in order, so they keep it too.

use std::collections::VecDeque;
use std::sync::Arc;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::{StreamExt, TryStreamExt, stream};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use crate::split::Splitter;
use crate::{Error, LevelEntry, LevelPage, Lister, ObjectMeta, PageStream};

/// The default number of listing requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// How deep the planner looks for sub-prefixes.
pub const MAX_DEPTH: usize = 4;
/// A level with more pages of direct objects than this is one part, not split.
pub const MAX_DIRECT_PAGES: usize = 2;
/// Pages each running part may list ahead of the consumer.
pub const PAGES_AHEAD: usize = 2;
/// Chunks a flat part starts with, before any has found keys: a folder known to
/// hold more than a page most likely holds a few. A listing that is one flat
/// part starts with half the concurrency instead: at most that many requests
/// wasted, once, against two round trips of ramping up.
const FIRST_CHUNKS: usize = 2;

/// One piece of the plan, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Objects found while planning, handed on as they are.
    Objects(Vec<ObjectMeta>),
    /// Everything under this prefix, listed as one part.
    Prefix(String),
    /// A prefix whose first pages (held here) are full and hold no folders: the
    /// rest goes in chunks, with no need to list those pages again.
    Flat { prefix: String, first: Vec<ObjectMeta> },
}

/// Lists everything under `prefix` in key order, with up to `concurrency` requests
/// in flight. With a concurrency of 1, or a provider without one-level listings,
/// this is the plain sequential listing.
pub fn list_concurrently(lister: Arc<dyn Lister>, prefix: String, concurrency: usize) -> PageStream<'static> {
    let concurrency = concurrency.max(1);
    if concurrency == 1 || lister.list_level(&prefix).is_none() {
        return sequential(lister, prefix);
    }
    let planned = {
        let lister = Arc::clone(&lister);
        async move { plan(lister.as_ref(), &prefix, concurrency * 4).await }
    };
    stream::once(planned)
        .map_ok(move |parts| run(Arc::clone(&lister), parts, concurrency))
        .try_flatten()
        .boxed()
}

fn sequential(lister: Arc<dyn Lister>, prefix: String) -> PageStream<'static> {
    let (tx, rx) = mpsc::channel(PAGES_AHEAD);
    let context = TaskContext {
        lister,
        requests: Arc::new(Semaphore::new(1)),
        wake: Arc::new(Notify::new()),
        first_chunks: FIRST_CHUNKS,
    };
    tokio::spawn(async move { list_whole(&context, &prefix, 0, &tx).await });
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|page| (page, rx)) }).boxed()
}

/// Splits `prefix` into parts, breadth first, until there are at least `want`.
async fn plan(lister: &dyn Lister, prefix: &str, want: usize) -> Result<Vec<Part>, Error> {
    let mut parts = vec![Part::Prefix(prefix.to_owned())];
    for _ in 0..MAX_DEPTH {
        let splittable = parts.iter().filter(|p| matches!(p, Part::Prefix(_))).count();
        if splittable == 0 || splittable >= want {
            break;
        }
        // Expand every prefix of this depth, a few at a time.
        let expanded: Vec<Vec<Part>> = stream::iter(parts)
            .map(|part| async move {
                match part {
                    Part::Prefix(p) => expand(lister, p).await,
                    objects => Ok(vec![objects]),
                }
            })
            .buffered(want)
            .try_collect()
            .await?;
        let next: Vec<Part> = expanded.into_iter().flatten().collect();
        let grew = next.iter().filter(|p| matches!(p, Part::Prefix(_))).count() > splittable;
        parts = next;
        if !grew {
            break;
        }
    }
    Ok(parts)
}

/// One level of `prefix`: its direct objects and sub-prefixes, in key order; or the
/// prefix itself, unsplit, when it holds too many direct objects to keep.
async fn expand(lister: &dyn Lister, prefix: String) -> Result<Vec<Part>, Error> {
    let unsplit = || Ok(vec![Part::Prefix(prefix.clone())]);
    let Some(mut level) = lister.list_level(&prefix) else {
        return unsplit();
    };
    let mut parts = Vec::new();
    let (mut direct, mut first_page) = (0, true);
    while let Some(page) = level.try_next().await? {
        // (An empty page with more to come, which GCS may send, says nothing.)
        let starts_flat = std::mem::take(&mut first_page)
            && lister.seeks()
            && page.more
            && !page.entries.is_empty()
            && page.entries.iter().all(|e| matches!(e, LevelEntry::Object(_)));
        if starts_flat {
            // A first page of files only, with more to come: a flat folder, or one
            // that starts flat. The page is handed on and the rest goes in chunks;
            // deciding on the first page rather than the second starts them a
            // round trip sooner. Folders further on are listed within the chunks,
            // and a tail the boundaries do not reach is cut again (`ChunkEnd::Handoff`).
            let first = page
                .entries
                .into_iter()
                .filter_map(|e| match e {
                    LevelEntry::Object(o) => Some(o),
                    LevelEntry::Prefix(_) => None,
                })
                .collect();
            return Ok(vec![Part::Flat {
                prefix: prefix.clone(),
                first,
            }]);
        }
        for entry in page.entries {
            match entry {
                LevelEntry::Object(o) => {
                    direct += 1;
                    if direct > MAX_DIRECT_PAGES * lister.page_len() {
                        return unsplit();
                    }
                    match parts.last_mut() {
                        Some(Part::Objects(v)) => v.push(o),
                        _ => parts.push(Part::Objects(vec![o])),
                    }
                }
                LevelEntry::Prefix(p) => parts.push(Part::Prefix(p)),
            }
        }
    }
    Ok(parts)
}

/// A page, or the listing error that ends a part.
type PageResult = Result<Vec<ObjectMeta>, Error>;

/// What a part's first page says about the rest of it.
enum Sampled {
    /// Listed whole, by the task that listed the sample (it goes on by itself).
    Whole,
    /// A full, flat first page on a store that seeks: the rest is listed in
    /// chunks after `after`, with boundaries from `splitter`.
    Chunked { splitter: Splitter, after: String },
}

/// Shared between a chunked part's chunk tasks and the window that starts them.
struct ChunkProgress {
    /// Some chunk reached the end of the listing: later chunks would be empty.
    ended: AtomicBool,
    /// Chunks started but not finished.
    outstanding: AtomicUsize,
    /// How many chunks may be outstanding: starts at [`FIRST_CHUNKS`] (or more, see
    /// there) and grows by two per chunk that finds keys (doubling each round trip
    /// while they do), so a small folder costs few empty requests and a big one
    /// soon fills the window.
    allowed: AtomicUsize,
    /// Keys held by the latest chunk to finish (or to overflow), for rescaling.
    latest: Mutex<Option<usize>>,
    /// The first key after a chunk that found none: no key lies between the
    /// boundaries handed out so far and it, so the next chunk reaches past it.
    skip_to: Mutex<Option<String>>,
    /// The last page of an open-ended chunk that stopped early to have the rest
    /// of the part cut again (see [`ChunkEnd::Handoff`]).
    handoff: Mutex<Option<Vec<ObjectMeta>>>,
}

impl ChunkProgress {
    fn new(first_chunks: usize) -> Arc<ChunkProgress> {
        Arc::new(ChunkProgress {
            ended: AtomicBool::new(false),
            outstanding: AtomicUsize::new(0),
            allowed: AtomicUsize::new(first_chunks),
            latest: Mutex::new(None),
            skip_to: Mutex::new(None),
            handoff: Mutex::new(None),
        })
    }

    /// Starts listing `(after, until]` under `prefix`; the unit its pages come through.
    fn spawn_chunk(
        self: &Arc<Self>,
        context: &TaskContext,
        prefix: &str,
        after: &str,
        until: Option<String>,
        target: usize,
    ) -> Unit {
        // Room for a chunk a page over target, so that it is listed to its end (its
        // last request runs past the boundary) ahead.
        let (tx, rx) = mpsc::channel(PAGES_AHEAD + 2);
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        let chunk = Chunk {
            prefix: prefix.to_owned(),
            after: after.to_owned(),
            until,
            target,
            progress: Arc::clone(self),
        };
        tokio::spawn(list_chunk(context.clone(), chunk, tx));
        Unit::Listing(rx)
    }
}

/// Where a part's units come from, after the ones it has.
enum Source {
    /// Nothing more: the part's units are all there.
    Done,
    /// The part's first page is being listed; its verdict decides what follows.
    Sampling {
        prefix: String,
        verdict: oneshot::Receiver<Sampled>,
    },
    /// A flat part being cut into chunks, `after` the last boundary handed out.
    Chunking {
        prefix: String,
        splitter: Splitter,
        after: String,
        progress: Arc<ChunkProgress>,
        /// Chunks started so far, for the log.
        started: usize,
    },
    /// A flat part whose last chunk is open-ended (the boundaries ran out, or
    /// there were none to guess): it may hand the rest back to be cut again.
    Tail {
        prefix: String,
        progress: Arc<ChunkProgress>,
        started: usize,
    },
}

impl Source {
    fn chunking(prefix: String, splitter: Splitter, after: String, first_chunks: usize) -> Source {
        Source::Chunking {
            prefix,
            splitter,
            after,
            progress: ChunkProgress::new(first_chunks),
            started: 0,
        }
    }
}

/// One unit of the window, in key order.
enum Unit {
    Ready(Vec<ObjectMeta>),
    Listing(mpsc::Receiver<PageResult>),
}

/// What every listing task shares.
#[derive(Clone)]
struct TaskContext {
    lister: Arc<dyn Lister>,
    requests: Arc<Semaphore>,
    /// Wakes the consumer when a sample or chunk reports, so the window refills.
    wake: Arc<Notify>,
    /// Chunks a flat part starts with (see [`FIRST_CHUNKS`]).
    first_chunks: usize,
}

impl TaskContext {
    /// The next page of `pages`, holding one of the request permits meanwhile.
    async fn next_page(&self, pages: &mut PageStream<'_>) -> Option<PageResult> {
        let _permit = self.requests.acquire().await.ok()?;
        pages.next().await
    }
}

/// One planned part in the window: its units in key order, and where more come
/// from. Parts are independent, so a part still sampling or ramping up does not
/// hold back the parts after it.
struct Segment {
    units: VecDeque<Unit>,
    source: Source,
}

impl Segment {
    /// Starts a part: objects are ready; a prefix starts with its sample.
    fn start(part: Part, context: &TaskContext, chunk_target: usize) -> Segment {
        match part {
            Part::Objects(objects) => Segment {
                units: VecDeque::from([Unit::Ready(objects)]),
                source: Source::Done,
            },
            Part::Prefix(prefix) => {
                let (tx, rx) = mpsc::channel(PAGES_AHEAD);
                let (verdict_tx, verdict) = oneshot::channel();
                let task = sample(context.clone(), prefix.clone(), chunk_target, verdict_tx, tx);
                tokio::spawn(task);
                Segment {
                    units: VecDeque::from([Unit::Listing(rx)]),
                    source: Source::Sampling { prefix, verdict },
                }
            }
            Part::Flat { prefix, first } => {
                let splitter = Splitter::from_sample(&prefix, &first, chunk_target);
                let after = first.last().map(|o| o.key.clone());
                let mut units = VecDeque::from([Unit::Ready(first)]);
                let source = match (splitter, after) {
                    (Some(splitter), Some(after)) => {
                        tracing::debug!(
                            prefix,
                            chunk_target,
                            "listing in chunks: the first page is full and flat"
                        );
                        Source::chunking(prefix, splitter, after, context.first_chunks)
                    }
                    // No boundaries to guess from that page: the rest as one
                    // open-ended chunk, which may hand a sample back for more.
                    (None, Some(after)) => {
                        let progress = ChunkProgress::new(context.first_chunks);
                        units.push_back(progress.spawn_chunk(context, &prefix, &after, None, chunk_target));
                        Source::Tail {
                            prefix,
                            progress,
                            started: 1,
                        }
                    }
                    // Nothing to start after (never so for a plan's flat part):
                    // the whole prefix, as a plain listing.
                    (_, None) => {
                        let (tx, rx) = mpsc::channel(PAGES_AHEAD);
                        let context = context.clone();
                        tokio::spawn(async move { list_whole(&context, &prefix, 0, &tx).await });
                        units.push_back(Unit::Listing(rx));
                        Source::Done
                    }
                };
                Segment { units, source }
            }
        }
    }

    /// Adds up to `room` units; returns how many it added.
    fn advance(&mut self, context: &TaskContext, chunk_target: usize, room: usize) -> usize {
        let mut added = 0;
        while added < room {
            match &mut self.source {
                Source::Done => break,
                Source::Sampling { prefix, verdict } => match verdict.try_recv() {
                    Err(oneshot::error::TryRecvError::Empty) => break,
                    // A failed sample reports through its pages; either way the part
                    // needs no more units.
                    Ok(Sampled::Whole) | Err(oneshot::error::TryRecvError::Closed) => self.source = Source::Done,
                    Ok(Sampled::Chunked { splitter, after }) => {
                        self.source = Source::chunking(std::mem::take(prefix), splitter, after, context.first_chunks);
                    }
                },
                Source::Chunking {
                    prefix,
                    splitter,
                    after,
                    progress,
                    started,
                } => {
                    if progress.ended.load(Ordering::SeqCst) {
                        tracing::debug!(prefix, chunks = *started, "chunked listing: the end is reached");
                        self.source = Source::Done;
                        continue;
                    }
                    if progress.outstanding.load(Ordering::SeqCst) >= progress.allowed.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Some(listed) = progress.latest.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        splitter.rescale(listed, chunk_target);
                    }
                    // After an empty chunk, from the next key listed: a gap (or a
                    // run of names the sample said nothing of) costs one request.
                    let skip_to = progress.skip_to.lock().unwrap_or_else(|p| p.into_inner()).take();
                    let until = match skip_to {
                        Some(next) if next > *after => splitter.boundary_after(&next),
                        _ => splitter.boundary_after(after),
                    };
                    let unit = progress.spawn_chunk(context, prefix, after, until.clone(), chunk_target);
                    self.units.push_back(unit);
                    *started += 1;
                    added += 1;
                    match until {
                        Some(boundary) => *after = boundary,
                        // The numbers ran out: that chunk is open-ended, the part's last.
                        None => {
                            tracing::debug!(
                                prefix,
                                chunks = *started,
                                "chunked listing: the last chunk is open-ended"
                            );
                            self.source = Source::Tail {
                                prefix: std::mem::take(prefix),
                                progress: Arc::clone(progress),
                                started: *started,
                            };
                        }
                    }
                }
                Source::Tail {
                    prefix,
                    progress,
                    started,
                } => {
                    // Read before the handoff: a chunk leaves its handoff before it
                    // stops counting as outstanding, so none is missed.
                    let idle = progress.outstanding.load(Ordering::SeqCst) == 0;
                    let handoff = progress.handoff.lock().unwrap_or_else(|p| p.into_inner()).take();
                    let Some((sample, after)) = handoff.and_then(|page| {
                        let after = page.last()?.key.clone();
                        Some((page, after))
                    }) else {
                        if idle {
                            self.source = Source::Done;
                        }
                        break;
                    };
                    match Splitter::from_sample(prefix, &sample, chunk_target) {
                        Some(splitter) => {
                            tracing::debug!(prefix, after, "chunked listing: cutting the tail again");
                            self.source = Source::Chunking {
                                prefix: std::mem::take(prefix),
                                splitter,
                                after,
                                progress: Arc::clone(progress),
                                started: *started,
                            };
                        }
                        None => {
                            let unit = progress.spawn_chunk(context, prefix, &after, None, chunk_target);
                            self.units.push_back(unit);
                            *started += 1;
                            added += 1;
                        }
                    }
                }
            }
        }
        added
    }
}

/// Runs the listing as an ordered window of units (planned objects, whole parts,
/// chunks of flat parts): pages are taken from the first unit only, while the units
/// after it list ahead. The window holds at most `2 × concurrency` units of at most
/// `PAGES_AHEAD + 2` pages each, and a semaphore keeps `concurrency` requests in
/// flight.
struct Window {
    context: TaskContext,
    waiting: VecDeque<Part>,
    segments: VecDeque<Segment>,
    max_units: usize,
    /// Keys per chunk wanted: what a chunk's task lists ahead in full.
    chunk_target: usize,
}

impl Window {
    /// Adds units in key order, part by part, until the window is full.
    fn fill(&mut self) {
        let mut units: usize = self.segments.iter().map(|s| s.units.len()).sum();
        for segment in &mut self.segments {
            units += segment.advance(&self.context, self.chunk_target, self.max_units.saturating_sub(units));
        }
        while units < self.max_units {
            let Some(part) = self.waiting.pop_front() else { break };
            let mut segment = Segment::start(part, &self.context, self.chunk_target);
            units += segment.units.len();
            units += segment.advance(&self.context, self.chunk_target, self.max_units.saturating_sub(units));
            self.segments.push_back(segment);
        }
    }

    /// The next page in key order; `None` at the end.
    async fn next(&mut self) -> Option<PageResult> {
        loop {
            self.fill();
            while self
                .segments
                .front()
                .is_some_and(|s| s.units.is_empty() && matches!(s.source, Source::Done))
            {
                self.segments.pop_front();
            }
            // Registered before looking at the units, so no report is missed.
            let wake = Arc::clone(&self.context.wake);
            let woken = wake.notified();
            let segment = self.segments.front_mut()?;
            match segment.units.front_mut() {
                // The part waits for its sample's verdict or a chunk's report.
                None => woken.await,
                Some(Unit::Ready(objects)) => {
                    let page = std::mem::take(objects);
                    segment.units.pop_front();
                    if !page.is_empty() {
                        return Some(Ok(page));
                    }
                }
                Some(Unit::Listing(rx)) => tokio::select! {
                    biased;
                    page = rx.recv() => match page {
                        Some(Ok(page)) => return Some(Ok(page)),
                        Some(Err(e)) => {
                            self.segments.clear();
                            self.waiting.clear();
                            return Some(Err(e));
                        }
                        None => {
                            segment.units.pop_front();
                        }
                    },
                    () = woken => {}
                },
            }
        }
    }
}

/// Lists the parts in key order with up to `concurrency` requests in flight.
fn run(lister: Arc<dyn Lister>, parts: Vec<Part>, concurrency: usize) -> PageStream<'static> {
    // A chunk of n keys takes n / page_len + 1 requests: the last one finds the
    // boundary. Aiming a quarter page under a whole number of pages lets that
    // last page hold the chunk's end and the boundary both, with room for the
    // guess to be off a little (4 requests for 3 pages' worth would waste a
    // third). Bigger chunks waste less, smaller ones spread better.
    let page_len = lister.page_len().max(1);
    let chunk_target = page_len * (PAGES_AHEAD + 1) - page_len / 4;
    let first_chunks = match parts.as_slice() {
        [_] => (concurrency / 2).max(FIRST_CHUNKS),
        _ => FIRST_CHUNKS,
    };
    let window = Window {
        context: TaskContext {
            lister,
            requests: Arc::new(Semaphore::new(concurrency)),
            wake: Arc::new(Notify::new()),
            first_chunks,
        },
        waiting: parts.into(),
        segments: VecDeque::new(),
        max_units: concurrency * 2,
        chunk_target,
    };
    stream::unfold(window, |mut window| async move {
        let page = window.next().await?;
        Some((page, window))
    })
    .boxed()
}

/// Lists a part's first page and decides how the rest is listed: in chunks when
/// more pages follow, the page is flat (no `/` below the prefix) and the store
/// seeks to a start key; otherwise whole, by this task, as a plain listing.
async fn sample(
    context: TaskContext,
    prefix: String,
    chunk_target: usize,
    verdict: oneshot::Sender<Sampled>,
    tx: mpsc::Sender<PageResult>,
) {
    let lister = Arc::clone(&context.lister);
    let first = match lister.first_page(&prefix) {
        Some(first) if lister.seeks() => {
            let _permit = context.requests.acquire().await;
            first.await
        }
        // Without a first page that says what follows: a plain listing.
        _ => {
            let _ = verdict.send(Sampled::Whole);
            context.wake.notify_one();
            return list_whole(&context, &prefix, 0, &tx).await;
        }
    };
    let (page, more) = match first {
        Ok(first) => first,
        Err(e) => {
            // No verdict: the error ends the listing.
            drop(verdict);
            context.wake.notify_one();
            let _ = tx.send(Err(e)).await;
            return;
        }
    };
    let flat = || {
        page.iter()
            .all(|o| !o.key[prefix.len().min(o.key.len())..].contains('/'))
    };
    let splitter = (more && flat())
        .then(|| Splitter::from_sample(&prefix, &page, chunk_target))
        .flatten();
    let last = page.last().map(|o| o.key.clone());
    match splitter.zip(last) {
        Some((splitter, after)) => {
            tracing::debug!(
                prefix,
                chunk_target,
                "listing in chunks: the first page is full and flat"
            );
            let _ = verdict.send(Sampled::Chunked { splitter, after });
            context.wake.notify_one();
            let _ = tx.send(Ok(page)).await;
        }
        None => {
            let _ = verdict.send(Sampled::Whole);
            context.wake.notify_one();
            let listed = page.len();
            if tx.send(Ok(page)).await.is_ok() && more {
                // The rest as a plain listing from the start (the first page again,
                // skipped): a start key would rely on byte order, which a part with
                // folders may not have on every server.
                list_whole(&context, &prefix, listed, &tx).await;
            }
        }
    }
}

/// Lists all of `prefix` into `tx`, leaving out its first `skip` keys (already
/// handed on). Counting keys, not comparing them, keeps this right on servers that
/// do not list in byte order.
async fn list_whole(context: &TaskContext, prefix: &str, mut skip: usize, tx: &mpsc::Sender<PageResult>) {
    let lister = Arc::clone(&context.lister);
    let mut pages = lister.list(prefix, None);
    while let Some(page) = context.next_page(&mut pages).await {
        let page = page.map(|mut page| {
            let dropped = skip.min(page.len());
            page.drain(..dropped);
            skip -= dropped;
            page
        });
        if matches!(&page, Ok(p) if p.is_empty()) {
            continue;
        }
        let failed = page.is_err();
        if tx.send(page).await.is_err() || failed {
            return;
        }
    }
}

/// Keys `(after, until]` under `prefix`; with no `until`, everything after `after`.
struct Chunk {
    prefix: String,
    after: String,
    until: Option<String>,
    target: usize,
    progress: Arc<ChunkProgress>,
}

/// Lists one chunk into its channel, and reports how it went to the window.
async fn list_chunk(context: TaskContext, chunk: Chunk, tx: mpsc::Sender<PageResult>) {
    let progress = Arc::clone(&chunk.progress);
    let outcome = list_chunk_pages(&context, &chunk, &tx).await;
    if let Ok(end) = &outcome {
        tracing::trace!(after = chunk.after, until = chunk.until, "chunk listed: {end:?}");
    }
    match outcome {
        Ok(ChunkEnd::Boundary { listed, next }) => {
            *progress.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(listed);
            if listed == 0 {
                let mut skip_to = progress.skip_to.lock().unwrap_or_else(|p| p.into_inner());
                if skip_to.as_ref().is_none_or(|known| *known < next) {
                    *skip_to = Some(next);
                }
            }
        }
        Ok(ChunkEnd::EndOfListing) => progress.ended.store(true, Ordering::SeqCst),
        Ok(ChunkEnd::Handoff(page)) => {
            *progress.handoff.lock().unwrap_or_else(|p| p.into_inner()) = Some(page);
        }
        Ok(ChunkEnd::Abandoned) => {}
        Err(e) => {
            let _ = tx.send(Err(e)).await;
        }
    }
    progress.outstanding.fetch_sub(1, Ordering::SeqCst);
    context.wake.notify_one();
}

#[derive(Debug)]
enum ChunkEnd {
    /// Stopped at the chunk's upper boundary, having listed this many keys; `next`
    /// is the first key past it.
    Boundary { listed: usize, next: String },
    /// The listing itself ended within the chunk.
    EndOfListing,
    /// An open-ended chunk stopped after about a chunk's worth of keys and this
    /// full page, its last: the rest of the part is cut again from it. Without
    /// this, a tail the first boundaries did not reach (a folder of files followed
    /// by big sub-folders, or names longer than the sample's) is one sequential
    /// listing.
    Handoff(Vec<ObjectMeta>),
    /// The consumer went away.
    Abandoned,
}

async fn list_chunk_pages(
    context: &TaskContext,
    chunk: &Chunk,
    tx: &mpsc::Sender<PageResult>,
) -> Result<ChunkEnd, Error> {
    let lister = Arc::clone(&context.lister);
    let mut pages = lister.list(&chunk.prefix, Some(&chunk.after));
    let (mut listed, mut previous) = (0usize, chunk.after.clone());
    let mut reported_growth = false;
    while let Some(page) = context.next_page(&mut pages).await {
        let mut page = page?;
        // Ranges only partition a listing that comes in byte order: check it.
        for key in page.iter().map(|o| &o.key) {
            if *key <= previous {
                return Err(out_of_order(key, &previous));
            }
            previous.clone_from(key);
        }
        let past = chunk
            .until
            .as_deref()
            .and_then(|until| page.iter().position(|o| o.key.as_str() > until));
        let next = past.map(|i| {
            let next = page[i].key.clone();
            page.truncate(i);
            next
        });
        if let (Some(next), Some(until)) = (&next, &chunk.until) {
            check_folder_gap(context, chunk, until, next).await?;
        }
        listed += page.len();
        if !page.is_empty() && !reported_growth {
            reported_growth = true;
            chunk.progress.allowed.fetch_add(2, Ordering::SeqCst);
            context.wake.notify_one();
        }
        if listed > chunk.target * 2 {
            // Far bigger than wanted: let the next boundaries be closer now.
            *chunk.progress.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(listed);
        }
        let handoff =
            (chunk.until.is_none() && listed >= chunk.target && page.len() >= lister.page_len()).then(|| page.clone());
        if !page.is_empty() && tx.send(Ok(page)).await.is_err() {
            return Ok(ChunkEnd::Abandoned);
        }
        if let Some(next) = next {
            return Ok(ChunkEnd::Boundary { listed, next });
        }
        if let Some(page) = handoff {
            return Ok(ChunkEnd::Handoff(page));
        }
    }
    Ok(ChunkEnd::EndOfListing)
}

fn out_of_order(key: &str, previous: &str) -> Error {
    Error::storage(
        "listing",
        crate::StorageErrorKind::ListingOrder,
        format!(
            "the server listed `{key}` after `{previous}`, out of byte order, so the listing cannot be split \
             into ranges; rerun with --concurrency 1"
        ),
    )
}

/// A chunk stopped at `next`, its first key past `until`. When the two part at a
/// `/` in `next` where `until` has a character that sorts before `/` (`until` =
/// `a/k-z`, `next` = `a/k/x`), the boundary lies between the names `a/k-…` and
/// the folder `a/k/`. A server that walks folders (SeaweedFS) lists the folder
/// first: keys such as `a/k-a`, below the boundary, come after `next` (so this
/// chunk, stopping at `next`, never meets them), and the next chunk resumes the
/// walk after the boundary, past them too. Neither chunk sees keys out of order,
/// so the boundary is checked here: a listing that starts after the folder must,
/// in byte order, go on above the boundary. Its first key may open such a folder
/// in turn (`a/k-a/z`), so the check repeats; one request each, and only for a
/// boundary in such a place.
async fn check_folder_gap(context: &TaskContext, chunk: &Chunk, until: &str, next: &str) -> Result<(), Error> {
    let mut next = next.to_owned();
    while let Some(folder) = folder_gap(until, &next) {
        let past_folder = format!("{folder}\u{10FFFF}");
        let mut pages = context.lister.list(&chunk.prefix, Some(&past_folder));
        // The first key, past any empty pages (GCS may send some).
        let first = loop {
            match context.next_page(&mut pages).await.transpose()? {
                Some(page) if page.is_empty() => continue,
                page => break page.and_then(|p| p.into_iter().next()),
            }
        };
        match first {
            None => break,
            Some(o) if o.key.as_str() <= until => return Err(out_of_order(&o.key, &next)),
            Some(o) => next = o.key,
        }
    }
    Ok(())
}

/// The folder of `next` that a boundary `until` falls just before (see
/// [`check_folder_gap`]), if any.
fn folder_gap<'a>(until: &str, next: &'a str) -> Option<&'a str> {
    let part = next.bytes().zip(until.bytes()).take_while(|(a, b)| a == b).count();
    let in_gap = next.as_bytes().get(part) == Some(&b'/') && until.as_bytes().get(part).is_some_and(|&b| b < b'/');
    // `/` is ASCII, so `part + 1` is a character boundary.
    in_gap.then(|| &next[..=part])
}

/// A one-level page from a delimited page's objects and prefixes (each sorted),
/// merged into key order; `more` when further pages follow.
pub fn merge_level(objects: Vec<ObjectMeta>, prefixes: Vec<String>, more: bool) -> LevelPage {
    LevelPage {
        entries: merge_entries(objects, prefixes),
        more,
    }
}

fn merge_entries(objects: Vec<ObjectMeta>, prefixes: Vec<String>) -> Vec<LevelEntry> {
    let mut merged = Vec::with_capacity(objects.len() + prefixes.len());
    let (mut objects, mut prefixes) = (objects.into_iter().peekable(), prefixes.into_iter().peekable());
    loop {
        let take_object = match (objects.peek(), prefixes.peek()) {
            (Some(o), Some(p)) => o.key.as_str() < p.as_str(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return merged,
        };
        if take_object {
            merged.extend(objects.next().map(LevelEntry::Object));
        } else {
            merged.extend(prefixes.next().map(LevelEntry::Prefix));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// An in-memory bucket with S3's listing semantics (byte order, pages, one-level
    /// listings), counting requests and the most in flight at once.
    struct MemoryBucket {
        keys: BTreeSet<String>,
        page: usize,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        requests: AtomicUsize,
    }

    impl MemoryBucket {
        fn new(keys: impl IntoIterator<Item = String>, page: usize) -> Arc<Self> {
            Arc::new(MemoryBucket {
                keys: keys.into_iter().collect(),
                page,
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
                requests: AtomicUsize::new(0),
            })
        }

        async fn request(&self) {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }

        fn object(key: &str) -> ObjectMeta {
            ObjectMeta {
                key: key.to_owned(),
                size: 1,
                last_modified: None,
            }
        }
    }

    impl Lister for MemoryBucket {
        fn list<'a>(&'a self, prefix: &'a str, after: Option<&'a str>) -> PageStream<'a> {
            // Pages are cut lazily from the sorted set, as a server would.
            use std::ops::Bound::{Excluded, Included, Unbounded};
            let start = match after {
                Some(a) if a >= prefix => Excluded(a.to_owned()),
                _ => Included(prefix.to_owned()),
            };
            stream::unfold(Some(start), move |from| async move {
                let from = from?;
                self.request().await;
                let mut keys = self
                    .keys
                    .range::<String, _>((from, Unbounded))
                    .take_while(|k| k.starts_with(prefix));
                let page: Vec<ObjectMeta> = keys.by_ref().take(self.page).map(|k| Self::object(k)).collect();
                let more = keys.next().is_some();
                let next = page.last().filter(|_| more).map(|o| Excluded(o.key.clone()));
                Some((Ok(page), next))
            })
            .filter(|page| futures::future::ready(!matches!(page, Ok(p) if p.is_empty())))
            .boxed()
        }

        fn seeks(&self) -> bool {
            true
        }

        fn page_len(&self) -> usize {
            self.page
        }

        fn first_page<'a>(&'a self, prefix: &'a str) -> Option<crate::FirstPage<'a>> {
            Some(Box::pin(async move {
                self.request().await;
                let mut keys = self
                    .keys
                    .range::<String, _>((std::ops::Bound::Included(prefix.to_owned()), std::ops::Bound::Unbounded))
                    .take_while(|k| k.starts_with(prefix));
                let page = keys.by_ref().take(self.page).map(|k| Self::object(k)).collect();
                Ok((page, keys.next().is_some()))
            }))
        }

        fn list_level<'a>(&'a self, prefix: &'a str) -> Option<crate::LevelStream<'a>> {
            let mut entries: Vec<LevelEntry> = Vec::new();
            for key in self.keys.iter().filter(|k| k.starts_with(prefix)) {
                let rest = &key[prefix.len()..];
                match rest.find('/') {
                    Some(i) => {
                        let p = format!("{prefix}{}", &rest[..=i]);
                        if entries.last() != Some(&LevelEntry::Prefix(p.clone())) {
                            entries.push(LevelEntry::Prefix(p));
                        }
                    }
                    None => entries.push(LevelEntry::Object(Self::object(key))),
                }
            }
            let count = entries.len().div_ceil(self.page);
            let pages: Vec<LevelPage> = (entries.chunks(self.page).enumerate())
                .map(|(i, chunk)| LevelPage {
                    entries: chunk.to_vec(),
                    more: i + 1 < count,
                })
                .collect();
            Some(
                stream::iter(pages)
                    .then(move |p| async move {
                        self.request().await;
                        Ok(p)
                    })
                    .boxed(),
            )
        }
    }

    async fn keys_of(stream: PageStream<'static>) -> Vec<String> {
        stream
            .map_ok(|p| p.into_iter().map(|o| o.key).collect::<Vec<_>>())
            .try_concat()
            .await
            .expect("lists")
    }

    fn shapes() -> Vec<(&'static str, Vec<String>)> {
        let flat = (0..3000).map(|i| format!("img{i:05}.jpg")).collect();
        let deep = (0..3000)
            .map(|i| format!("d{}/s{}/c{}/{i:05}.jpg", i % 5, i % 7, i % 3))
            .collect();
        let skewed = (0..2500)
            .map(|i| format!("big/{i:05}.jpg"))
            .chain((0..30).map(|i| format!("small{i}/x.jpg")))
            .chain(["big.jpg", "big-0/a.jpg", "big0", "a", "z/"].map(String::from))
            .collect();
        let one_huge = (0..3000).map(|i| format!("data/train/{}/{i:05}.png", i % 40)).collect();
        let hashed = (0u64..5000)
            .map(|i| format!("h/{:016x}.png", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect();
        let flat_with_folders = (0..2500)
            .map(|i| format!("f/{i:05}.jpg"))
            .chain((0..300).map(|i| format!("f/{i:05}/x{i}")))
            .chain((0..300).map(|i| format!("f/zz/{i}")))
            .chain(["f/a-b/c", "f/a/c", "f/é", "f/😀"].map(String::from))
            .collect();
        // One folder per level, deep: the plan cannot split it, and its first
        // page has folders in it, so it is listed whole after that page.
        let narrow = (0..3000)
            .map(|i| format!("n/l1/l2/l3/l4/l5/{}/{i:05}", i % 2))
            .collect();
        let tricky = [
            "a", "a/", "a/b", "a-b/c", "a.b", "a0", "a/b/", "a//c", "/x", "//y", "b~", "é/x", "😀/y",
        ]
        .map(String::from)
        .to_vec();
        vec![
            ("flat", flat),
            ("deep", deep),
            ("skewed", skewed),
            ("one huge prefix", one_huge),
            ("hashed", hashed),
            ("flat with folders", flat_with_folders),
            ("narrow and deep", narrow),
            ("tricky", tricky),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn output_is_identical_to_the_sequential_listing_on_every_shape() {
        for (name, keys) in shapes() {
            let bucket = MemoryBucket::new(keys, 100);
            for prefix in ["", "d1/", "big", "data/train/", "h/", "f/", "f/0", "n/"] {
                let sequential = keys_of(list_concurrently(bucket.clone(), prefix.to_owned(), 1)).await;
                let expected: Vec<String> = bucket.keys.iter().filter(|k| k.starts_with(prefix)).cloned().collect();
                assert_eq!(sequential, expected, "{name} {prefix:?}: sequential is byte order");
                for concurrency in [2, 8, 16] {
                    let concurrent = keys_of(list_concurrently(bucket.clone(), prefix.to_owned(), concurrency)).await;
                    assert_eq!(concurrent, sequential, "{name} {prefix:?} at concurrency {concurrency}");
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn requests_in_flight_stay_within_the_bound_and_do_overlap() {
        let keys = (0..4000).map(|i| format!("p{}/{i:05}.jpg", i % 50));
        let bucket = MemoryBucket::new(keys, 20);
        let listed = keys_of(list_concurrently(bucket.clone(), String::new(), 8)).await;
        assert_eq!(listed.len(), 4000);
        let max = bucket.max_in_flight.load(Ordering::SeqCst);
        assert!(
            max <= 8 * 4,
            "planning may expand up to 4x concurrency levels at once; saw {max}"
        );
        assert!(max > 1, "listing went concurrent");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_flat_folder_is_listed_in_concurrent_chunks_without_many_extra_requests() {
        let bucket = MemoryBucket::new((0..20_000).map(|i| format!("images/{i:06}.jpg")), 100);
        let listed = keys_of(list_concurrently(bucket.clone(), "images/".into(), 16)).await;
        let expected: Vec<String> = bucket.keys.iter().cloned().collect();
        assert_eq!(listed, expected);
        let max = bucket.max_in_flight.load(Ordering::SeqCst);
        let requests = bucket.requests.load(Ordering::SeqCst);
        assert!(max > 8, "chunks were listed concurrently: at most {max} in flight");
        // Sequentially 200 pages. Chunks of 2.75 pages take 3 requests each (the
        // last finds the boundary), and a few start past the end before it is
        // found: about 15 % more in all (chunks of 3 pages took 4, a third more).
        assert!(requests < 200 * 5 / 4, "{requests} requests");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn folders_of_exactly_one_page_cost_no_extra_request() {
        let keys = (0..1000).map(|i| format!("c{}/{i:04}.jpg", i / 100));
        let bucket = MemoryBucket::new(keys, 100);
        let listed = keys_of(list_concurrently(bucket.clone(), String::new(), 16)).await;
        assert_eq!(listed.len(), 1000);
        // One level listing of the root, then one page per folder.
        assert_eq!(bucket.requests.load(Ordering::SeqCst), 1 + 10);
    }

    /// A store whose listing is not in byte order (as some S3-compatible servers
    /// list a folder before a sibling file that sorts first).
    struct FolderFirst(Arc<MemoryBucket>);

    impl Lister for FolderFirst {
        fn list<'a>(&'a self, prefix: &'a str, after: Option<&'a str>) -> PageStream<'a> {
            // Ranged listings (every chunk's) come with two keys swapped.
            self.0
                .list(prefix, after)
                .map_ok(move |mut page| {
                    if after.is_some() && page.len() > 1 {
                        page.swap(0, 1);
                    }
                    page
                })
                .boxed()
        }

        fn list_level<'a>(&'a self, prefix: &'a str) -> Option<crate::LevelStream<'a>> {
            self.0.list_level(prefix)
        }

        fn seeks(&self) -> bool {
            true
        }

        fn page_len(&self) -> usize {
            self.0.page
        }

        fn first_page<'a>(&'a self, prefix: &'a str) -> Option<crate::FirstPage<'a>> {
            self.0.first_page(prefix)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_listing_out_of_byte_order_fails_rather_than_losing_keys() {
        let bucket = MemoryBucket::new((0..3000).map(|i| format!("{i:05}")), 100);
        let err = list_concurrently(Arc::new(FolderFirst(bucket)), String::new(), 8)
            .try_concat()
            .await
            .expect_err("out of order");
        assert!(err.to_string().contains("out of byte order"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flat_level_is_one_part_holding_only_its_first_page() {
        let bucket = MemoryBucket::new((0..5000).map(|i| format!("flat/{i:05}")), 100);
        let parts = plan(bucket.as_ref(), "flat/", 64).await.expect("plans");
        let [Part::Flat { prefix, first }] = &parts[..] else {
            panic!("one flat part: {parts:?}")
        };
        assert_eq!((prefix.as_str(), first.len()), ("flat/", 100));
        assert_eq!(bucket.requests.load(Ordering::SeqCst), 1, "decided on the first page");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_single_page_level_is_not_taken_for_a_flat_one() {
        let bucket = MemoryBucket::new((0..100).map(|i| format!("one/{i:05}")), 100);
        let parts = plan(bucket.as_ref(), "one/", 64).await.expect("plans");
        assert!(matches!(&parts[..], [Part::Objects(o)] if o.len() == 100), "{parts:?}");
    }

    /// Files, then a big sub-folder the first page's names say nothing about: the
    /// chunks skip the gap and the tail is cut again from a sample of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_tail_past_the_first_boundaries_is_split_again() {
        let keys = (0..3000)
            .map(|i| format!("f/{i:05}.jpg"))
            .chain((0..20_000).map(|i| format!("f/labels/{i:06}.txt")));
        let bucket = MemoryBucket::new(keys, 100);
        let listed = keys_of(list_concurrently(bucket.clone(), "f/".into(), 16)).await;
        let expected: Vec<String> = bucket.keys.iter().cloned().collect();
        assert_eq!(listed, expected);
        let requests = bucket.requests.load(Ordering::SeqCst);
        let max = bucket.max_in_flight.load(Ordering::SeqCst);
        eprintln!("{requests} requests, {max} in flight at most");
        // Sequentially 230 pages. Chunked: about 3 requests per 2.75 pages, one
        // for the gap after the files, and the chunks started past the end before
        // it was found (without the skip over the gap, 400 or more).
        assert!(requests < 300, "{requests} requests");
        assert!(max > 8, "the tail was listed concurrently: at most {max} in flight");
    }

    /// A store that lists folder by folder, as SeaweedFS does: keys ordered by
    /// their `/`-separated components (`f/a/x` before `f/a-b`, though `-` sorts
    /// before `/`), and "start after" a key resumes at that place in the walk.
    struct FolderWalk {
        bucket: Arc<MemoryBucket>,
        walk: Vec<String>,
    }

    impl FolderWalk {
        fn new(keys: Vec<String>, page: usize) -> Arc<Self> {
            let mut walk = keys.clone();
            walk.sort_by(|a, b| Self::components(a).cmp(&Self::components(b)));
            Arc::new(FolderWalk {
                bucket: MemoryBucket::new(keys, page),
                walk,
            })
        }

        fn components(key: &str) -> Vec<&str> {
            key.split('/').collect()
        }

        fn page_after(&self, prefix: &str, after: Option<&str>) -> (Vec<ObjectMeta>, bool) {
            let start = after.map_or(0, |a| {
                self.walk
                    .partition_point(|k| Self::components(k) <= Self::components(a))
            });
            let mut keys = self.walk[start..].iter().filter(|k| k.starts_with(prefix));
            let page = keys
                .by_ref()
                .take(self.bucket.page)
                .map(|k| MemoryBucket::object(k))
                .collect();
            (page, keys.next().is_some())
        }
    }

    impl Lister for FolderWalk {
        fn list<'a>(&'a self, prefix: &'a str, after: Option<&'a str>) -> PageStream<'a> {
            stream::unfold(Some(after.map(str::to_owned)), move |from| async move {
                let from = from?;
                let (page, more) = self.page_after(prefix, from.as_deref());
                let next = page.last().filter(|_| more).map(|o| Some(o.key.clone()));
                Some((Ok(page), next))
            })
            .filter(|page| futures::future::ready(!matches!(page, Ok(p) if p.is_empty())))
            .boxed()
        }

        fn list_level<'a>(&'a self, prefix: &'a str) -> Option<crate::LevelStream<'a>> {
            self.bucket.list_level(prefix)
        }

        fn seeks(&self) -> bool {
            true
        }

        fn page_len(&self) -> usize {
            self.bucket.page
        }

        fn first_page<'a>(&'a self, prefix: &'a str) -> Option<crate::FirstPage<'a>> {
            Some(Box::pin(async move { Ok(self.page_after(prefix, None)) }))
        }
    }

    /// On a store that does not list in byte order, a concurrent listing either
    /// notices (and fails, to be rerun sequentially) or lists every key: never
    /// fewer in silence, wherever the chunk boundaries fall.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_folder_walk_listing_fails_or_lists_every_key() {
        let mut failed = 0;
        for seed in 0..20u64 {
            let mut keys = Vec::new();
            for i in 0..1500u64 {
                let name = format!("f/k{i:04}");
                // Past the first pages (which must look flat for chunks to be
                // used), some names are folders with siblings that sort before `/`.
                let pick = (i.wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) % 23;
                match (i > 400 || pick != 0).then_some(pick) {
                    Some(0) => {
                        keys.extend((0..40).map(|j| format!("{name}/x{j:02}")));
                        keys.push(format!("{name}-a"));
                        keys.push(format!("{name}.b"));
                    }
                    // Siblings everywhere, so that `-` and `.` are among the
                    // characters the boundaries are made of.
                    Some(1..=4) => keys.extend([format!("{name}-c"), format!("{name}.d"), name]),
                    _ => keys.push(name),
                }
            }
            let store = FolderWalk::new(keys.clone(), 50 + (seed as usize % 4) * 25);
            let expected: BTreeSet<String> = keys.into_iter().collect();
            for concurrency in [4, 16] {
                match list_concurrently(store.clone(), "f/".into(), concurrency)
                    .try_concat()
                    .await
                {
                    Ok(listed) => {
                        let listed: BTreeSet<String> = listed.into_iter().map(|o| o.key).collect();
                        let missing: Vec<_> = expected.difference(&listed).take(5).collect();
                        assert!(
                            missing.is_empty() && listed.len() == expected.len(),
                            "seed {seed} at {concurrency}: lost {missing:?}"
                        );
                    }
                    Err(e) => {
                        assert!(e.to_string().contains("out of byte order"), "{e}");
                        failed += 1;
                    }
                }
            }
        }
        assert!(failed > 0, "the walk order was noticed at least once");
    }

    /// Lists one chunk `(after, until]` alone, as the window would.
    async fn one_chunk(lister: Arc<dyn Lister>, after: &str, until: Option<&str>) -> Result<Vec<String>, Error> {
        let context = TaskContext {
            lister,
            requests: Arc::new(Semaphore::new(4)),
            wake: Arc::new(Notify::new()),
            first_chunks: FIRST_CHUNKS,
        };
        let chunk = Chunk {
            prefix: "f/".into(),
            after: after.into(),
            until: until.map(str::to_owned),
            target: 1000,
            progress: ChunkProgress::new(FIRST_CHUNKS),
        };
        let (tx, mut rx) = mpsc::channel(64);
        list_chunk_pages(&context, &chunk, &tx).await?;
        drop(tx);
        let mut keys = Vec::new();
        while let Some(page) = rx.recv().await {
            keys.extend(page?.into_iter().map(|o| o.key));
        }
        Ok(keys)
    }

    /// A boundary between `f/k5-a` and `f/k5/…` (`-` < `/`): a folder-walking store
    /// lists the folder first, so the chunk below the boundary meets a key above it
    /// and stops before `f/k5-a`, and the chunk above resumes the walk after the
    /// boundary, past both. Neither sees keys out of order: the boundary itself
    /// has to be checked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_boundary_inside_a_folder_gap_is_caught_on_a_folder_walking_store() {
        let keys: Vec<String> = (0..10)
            .map(|i| format!("f/k{i}"))
            .chain((0..100).map(|j| format!("f/k5/x{j:02}")))
            .chain(["f/k5-a".to_owned(), "f/k5.b".to_owned()])
            .collect();
        let (after, until) = ("f/k0", "f/k5-z");
        let walk = FolderWalk::new(keys.clone(), 20);
        let below = one_chunk(walk.clone(), after, Some(until)).await;
        let err = below.expect_err("the gap is noticed");
        assert!(err.to_string().contains("out of byte order"), "{err}");

        // Folders within the gap: `f/k5-a/` is walked before `f/k5-a-b`.
        let mut nested: Vec<String> = keys.iter().filter(|k| !k.starts_with("f/k5-a")).cloned().collect();
        nested.extend(["f/k5-a/z", "f/k5-a-b"].map(String::from));
        let walk = FolderWalk::new(nested, 20);
        let err = one_chunk(walk, after, Some("f/k5-a-z")).await.expect_err("noticed");
        assert!(err.to_string().contains("`f/k5-a-b`"), "{err}");

        // A store in byte order: the same two chunks list every key once.
        let bytes = MemoryBucket::new(keys.clone(), 20);
        let mut listed = one_chunk(bytes.clone(), after, Some(until)).await.expect("below");
        listed.extend(one_chunk(bytes, until, None).await.expect("above"));
        let mut expected: Vec<String> = keys.into_iter().filter(|k| k.as_str() > after).collect();
        expected.sort();
        assert_eq!(listed, expected);
    }

    /// A store whose one-level listings start with an empty page that says more
    /// follow, as GCS may answer.
    struct EmptyFirstLevelPage(Arc<MemoryBucket>);

    impl Lister for EmptyFirstLevelPage {
        fn list<'a>(&'a self, prefix: &'a str, after: Option<&'a str>) -> PageStream<'a> {
            self.0.list(prefix, after)
        }

        fn list_level<'a>(&'a self, prefix: &'a str) -> Option<crate::LevelStream<'a>> {
            let empty = LevelPage {
                entries: Vec::new(),
                more: true,
            };
            Some(
                stream::once(async { Ok(empty) })
                    .chain(self.0.list_level(prefix)?)
                    .boxed(),
            )
        }

        fn seeks(&self) -> bool {
            true
        }

        fn page_len(&self) -> usize {
            self.0.page
        }

        fn first_page<'a>(&'a self, prefix: &'a str) -> Option<crate::FirstPage<'a>> {
            self.0.first_page(prefix)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_first_level_page_is_not_taken_for_a_flat_folder() {
        for (name, keys) in shapes() {
            let bucket = MemoryBucket::new(keys, 100);
            let store = Arc::new(EmptyFirstLevelPage(bucket.clone()));
            let listed = keys_of(list_concurrently(store, String::new(), 8)).await;
            let expected: Vec<String> = bucket.keys.iter().cloned().collect();
            assert_eq!(listed, expected, "{name}");
        }
    }
}
