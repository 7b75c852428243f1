//! Chunks: one key range `(after, until]` of a flat part, listed with "start
//! after", and the state its part's chunks share with the window.
//!
//! The newest chunk of a part is open-ended: it goes on with continuation tokens,
//! one page per request, none wasted. When a request permit is spare, the window
//! starts another chunk a step ahead, at a guessed boundary, and bounds the open
//! one there ([`Bound`]); so a part is split only as far as there are permits to
//! list it with, and a chunk that a boundary cuts costs at most the part of its
//! last page past it. (Chunks fixed in advance ran past a folder's end and
//! stopped at boundaries that no other chunk had started from: a fifth of the
//! requests wasted when 20 folders shared 16 permits.)
//!
//! A chunk checks that the server lists in byte order (ranges only partition a
//! listing that does), stops at its upper boundary, and reports how it went: how
//! many keys it held (to rescale the boundaries) or, when asked, a page to learn
//! boundaries from. The shared state is behind locks taken briefly and never
//! across an await, so what the window reads is always one consistent moment.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::{Context, ListClientExt, PAGES_AHEAD, PageResult};
use crate::{Error, ObjectMeta};

/// What a flat part's chunks have found so far.
#[derive(Debug, Default)]
pub(super) struct ChunkState {
    /// Some chunk reached the end of the listing: later chunks would be empty.
    pub ended: bool,
    /// The last key of the listing, once a chunk has reached it: a chunk that
    /// starts there or after is empty.
    pub end: Option<String>,
    /// Chunks started but not finished.
    pub outstanding: usize,
    /// Keys held by the latest bounded chunk to finish (or to overflow), for
    /// rescaling.
    pub latest: Option<usize>,
    /// The page an open-ended chunk handed back, asked for by its bound's
    /// `want_sample` (see [`ChunkEnd::Handoff`]).
    pub handoff: Option<Vec<ObjectMeta>>,
    /// How many chunks may be listing at once without having found keys: the
    /// part's share of the permits. Chunks started past the part's end (which
    /// speculation cannot tell apart before they answer) stay that few.
    pub credit: usize,
    /// Chunks started that have found nothing yet and are still listing.
    pub unproven: usize,
}

impl ChunkState {
    /// Whether another chunk may be started on speculation.
    pub fn may_speculate(&self) -> bool {
        self.unproven < self.credit
    }
}

/// Where a chunk stops, which the window may set while it lists.
#[derive(Debug, Default)]
pub(super) struct Bound {
    /// The chunk's upper boundary; `None` while it is the part's last.
    pub until: Option<String>,
    /// Where the chunk starts.
    pub after: String,
    /// The last key it has handed on (or `after`).
    pub reached: String,
    /// It has stopped, or will stop without listing further: no bound may be
    /// set any more.
    pub done: bool,
    /// Hand back the next full page (no boundaries could be guessed yet).
    pub want_sample: bool,
    /// It has found keys (and no longer counts in [`ChunkState::unproven`]).
    pub proven: bool,
}

/// A chunk's [`Bound`], shared with the window.
#[derive(Debug, Default)]
pub(super) struct BoundCell(Mutex<Bound>);

impl BoundCell {
    /// The bound; every field is a hint or a position written under this one
    /// lock, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, Bound> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bounds the chunk at `until` if it has not listed that far and has not
    /// stopped; `true` when it is bounded (the range above is free to list).
    /// Bounds the chunk at `until` if it has not listed that far, has not
    /// stopped and was bounded further on (or not at all); returns the bound
    /// it had (`Some(None)` when it was open-ended), so the range between is
    /// free to list. `None` when it cannot be cut there.
    pub fn cut(&self, until: &str) -> Option<Option<String>> {
        let mut bound = self.lock();
        let free =
            !bound.done && bound.reached.as_str() < until && bound.until.as_deref().is_none_or(|old| until < old);
        free.then(|| bound.until.replace(until.to_owned()))
    }
}

/// The state a flat part's chunks share, behind one lock.
#[derive(Debug, Default)]
pub(super) struct ChunkProgress(Mutex<ChunkState>);

impl ChunkProgress {
    /// `credit`: chunks that may be started before any has found keys.
    pub fn new(credit: usize) -> Arc<ChunkProgress> {
        Arc::new(ChunkProgress(Mutex::new(ChunkState {
            credit: credit.max(1),
            ..ChunkState::default()
        })))
    }

    /// The state; a panicked holder cannot leave it half-updated in a way that
    /// loses keys (every field is a hint or a count), so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, ChunkState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts listing `(after, until]` under `prefix`; with no `until`, as the
    /// part's new open-ended chunk. Returns the receiver its pages come
    /// through, and its bound.
    pub fn spawn_chunk(
        self: &Arc<Self>,
        context: &Context,
        prefix: &str,
        (after, until): (&str, Option<String>),
        want_sample: bool,
        speculative: bool,
    ) -> (mpsc::Receiver<PageResult>, Arc<BoundCell>) {
        // Room for a chunk a page over target, so that it is listed to its end (its
        // last request runs past the boundary) ahead.
        let (tx, rx) = mpsc::channel(PAGES_AHEAD + 2);
        let bound = Arc::new(BoundCell(Mutex::new(Bound {
            after: after.to_owned(),
            reached: after.to_owned(),
            until,
            want_sample,
            ..Bound::default()
        })));
        {
            let mut state = self.lock();
            state.outstanding += 1;
            state.unproven += 1;
        }
        let chunk = Chunk {
            prefix: prefix.to_owned(),
            speculative,
            bound,
            target: context.chunk_target(),
            progress: Arc::clone(self),
        };
        let handle = Arc::clone(&chunk.bound);
        tokio::spawn(list_chunk(context.clone(), chunk, tx));
        (rx, handle)
    }
}

/// Keys after its bound's `after` under `prefix`, up to its `until` once set.
pub(super) struct Chunk {
    pub prefix: String,
    /// Started ahead of the open chunk, where keys may not be.
    pub speculative: bool,
    pub bound: Arc<BoundCell>,
    pub target: usize,
    pub progress: Arc<ChunkProgress>,
}

/// How a chunk ended.
#[derive(Debug)]
pub(super) enum ChunkEnd {
    /// Stopped at the chunk's upper boundary, having listed this many keys.
    Boundary { listed: usize },
    /// The listing itself ended within the chunk.
    EndOfListing,
    /// An open-ended chunk asked for a sample stopped after about a chunk's worth
    /// of keys and this full page, its last: the rest of the part is cut from it.
    /// Without this, a part whose first page gave no boundaries (names the
    /// splitter cannot read as numbers yet, or past the numbers it had) would be
    /// one sequential listing.
    Handoff(Vec<ObjectMeta>),
    /// The consumer went away.
    Abandoned,
}

/// Lists one chunk into its channel, and reports how it went.
async fn list_chunk(context: Context, chunk: Chunk, tx: mpsc::Sender<PageResult>) {
    let outcome = list_chunk_pages(&context, &chunk, &tx).await;
    chunk.bound.lock().done = true;
    if let Ok(end) = &outcome {
        tracing::trace!(after = chunk.bound.lock().after, "chunk listed: {end:?}");
    }
    let error = {
        // One update: the report and the end of `outstanding` are seen together.
        let mut state = chunk.progress.lock();
        state.outstanding -= 1;
        if !chunk.bound.lock().proven {
            state.unproven = state.unproven.saturating_sub(1);
        }
        match outcome {
            Ok(ChunkEnd::Boundary { listed, .. }) => {
                state.latest = Some(listed);
                None
            }
            Ok(ChunkEnd::EndOfListing) => {
                state.ended = true;
                let last = chunk.bound.lock().reached.clone();
                if state.end.as_ref().is_none_or(|end| last < *end) {
                    state.end = Some(last);
                }
                None
            }
            Ok(ChunkEnd::Handoff(page)) => {
                state.handoff = Some(page);
                None
            }
            Ok(ChunkEnd::Abandoned) => None,
            Err(e) => Some(e),
        }
    };
    if let Some(e) = error {
        let _ = tx.send(Err(e)).await;
    }
    context.wake.notify_one();
}

/// The pages of one chunk, checked for byte order and cut at its boundary.
pub(super) async fn list_chunk_pages(
    context: &Context,
    chunk: &Chunk,
    tx: &mpsc::Sender<PageResult>,
) -> Result<ChunkEnd, Error> {
    let after = chunk.bound.lock().after.clone();
    let mut pages = context.client.list_telling_more(&chunk.prefix, Some(&after));
    let (mut listed, mut previous) = (0usize, after.clone());
    let mut more = true;
    while more {
        // A chunk started on speculation waits for a spare permit until it has
        // found keys (it may lie past the part's end).
        let speculative = chunk.speculative && !chunk.bound.lock().proven;
        let page = if speculative {
            context.next_spare(&mut pages).await
        } else {
            context.next(&mut pages).await
        };
        let Some(page) = page else { break };
        let (mut page, more_after): (Vec<ObjectMeta>, bool) = page?;
        more = more_after;
        for key in page.iter().map(|o| &o.key) {
            if *key <= previous {
                return Err(out_of_order(key, &previous));
            }
            previous.clone_from(key);
        }
        // The bound as it is now, and what this page hands on, in one moment: a
        // boundary set later lies past every key handed on.
        let (until, next, handoff) = {
            let mut bound = chunk.bound.lock();
            let until = bound.until.clone();
            let past = until
                .as_deref()
                .and_then(|until| page.iter().position(|o| o.key.as_str() > until));
            let next = past.map(|i| {
                let next = page[i].key.clone();
                page.truncate(i);
                next
            });
            let full = page.len() >= context.capabilities.page_len;
            let handoff = until.is_none() && bound.want_sample && listed + page.len() >= chunk.target && full;
            if let Some(last) = page.last() {
                bound.reached.clone_from(&last.key);
                if !std::mem::replace(&mut bound.proven, true) {
                    let mut state = chunk.progress.lock();
                    state.unproven = state.unproven.saturating_sub(1);
                }
            }
            // Stopping here: no boundary may be set past what it listed.
            bound.done |= next.is_some() || handoff || !more;
            (until, next, handoff.then(|| page.clone()))
        };
        if let (Some(next), Some(until)) = (&next, &until) {
            check_folder_gap(context, chunk, until, next).await?;
        }
        listed += page.len();
        if until.is_some() && listed > chunk.target * 2 {
            // Far bigger than wanted: let the next boundaries be closer now.
            chunk.progress.lock().latest = Some(listed);
        }
        if !page.is_empty() && tx.send(Ok(page)).await.is_err() {
            return Ok(ChunkEnd::Abandoned);
        }
        if next.is_some() {
            return Ok(ChunkEnd::Boundary { listed });
        }
        if let Some(page) = handoff {
            return Ok(ChunkEnd::Handoff(page));
        }
    }
    Ok(ChunkEnd::EndOfListing)
}

fn out_of_order(key: &str, previous: &str) -> Error {
    Error::ListingOrder {
        key: key.to_owned(),
        previous: previous.to_owned(),
    }
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
async fn check_folder_gap(context: &Context, chunk: &Chunk, until: &str, next: &str) -> Result<(), Error> {
    let mut next = next.to_owned();
    while let Some(folder) = folder_gap(until, &next) {
        let past_folder = format!("{folder}\u{10FFFF}");
        let mut pages = context.client.list(&chunk.prefix, Some(&past_folder));
        // The first key, past any empty pages (GCS may send some).
        let first = loop {
            match context.next(&mut pages).await.transpose()? {
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
