//! Chunks: one key range `(after, until]` of a flat part, listed with "start
//! after", and the state its part's chunks share with the window.
//!
//! A chunk checks that the server lists in byte order (ranges only partition a
//! listing that does), stops at its upper boundary, and reports how it went: how
//! many keys it held (to rescale the boundaries), where the next key is when it
//! held none (so a gap costs one request), or, for an open-ended last chunk, a
//! page to cut the rest from again. The shared state is one struct behind one
//! lock, taken briefly and never across an await, so what the window reads is
//! always one consistent moment.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::{Context, ListClientExt, PAGES_AHEAD, PageResult};
use crate::{Error, ObjectMeta};

/// What a flat part's chunks have found so far.
#[derive(Debug, Default)]
pub(super) struct ChunkState {
    /// Some chunk reached the end of the listing: later chunks would be empty.
    pub ended: bool,
    /// Chunks started but not finished.
    pub outstanding: usize,
    /// How many chunks may be outstanding: starts at the context's first chunks
    /// and grows by two per chunk that finds keys (doubling each round trip while
    /// they do), so a small folder costs few empty requests and a big one soon
    /// fills the window.
    pub allowed: usize,
    /// Keys held by the latest chunk to finish (or to overflow), for rescaling.
    pub latest: Option<usize>,
    /// The first key after a chunk that found none: no key lies between the
    /// boundaries handed out so far and it, so the next chunk reaches past it.
    pub skip_to: Option<String>,
    /// The last page of an open-ended chunk that stopped early to have the rest
    /// of the part cut again (see [`ChunkEnd::Handoff`]).
    pub handoff: Option<Vec<ObjectMeta>>,
}

/// The state a flat part's chunks share, behind one lock.
#[derive(Debug)]
pub(super) struct ChunkProgress(Mutex<ChunkState>);

impl ChunkProgress {
    pub fn new(first_chunks: usize) -> Arc<ChunkProgress> {
        Arc::new(ChunkProgress(Mutex::new(ChunkState {
            allowed: first_chunks,
            ..ChunkState::default()
        })))
    }

    /// The state; a panicked holder cannot leave it half-updated in a way that
    /// loses keys (every field is a hint or a count), so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, ChunkState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts listing `(after, until]` under `prefix`; the receiver its pages
    /// come through.
    pub fn spawn_chunk(
        self: &Arc<Self>,
        context: &Context,
        prefix: &str,
        after: &str,
        until: Option<String>,
    ) -> mpsc::Receiver<PageResult> {
        // Room for a chunk a page over target, so that it is listed to its end (its
        // last request runs past the boundary) ahead.
        let (tx, rx) = mpsc::channel(PAGES_AHEAD + 2);
        self.lock().outstanding += 1;
        let chunk = Chunk {
            prefix: prefix.to_owned(),
            after: after.to_owned(),
            until,
            target: context.chunk_target(),
            progress: Arc::clone(self),
        };
        tokio::spawn(list_chunk(context.clone(), chunk, tx));
        rx
    }
}

/// Keys `(after, until]` under `prefix`; with no `until`, everything after `after`.
pub(super) struct Chunk {
    pub prefix: String,
    pub after: String,
    pub until: Option<String>,
    pub target: usize,
    pub progress: Arc<ChunkProgress>,
}

/// How a chunk ended.
#[derive(Debug)]
pub(super) enum ChunkEnd {
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

/// Lists one chunk into its channel, and reports how it went.
async fn list_chunk(context: Context, chunk: Chunk, tx: mpsc::Sender<PageResult>) {
    let outcome = list_chunk_pages(&context, &chunk, &tx).await;
    if let Ok(end) = &outcome {
        tracing::trace!(after = chunk.after, until = chunk.until, "chunk listed: {end:?}");
    }
    let error = {
        // One update: the report and the end of `outstanding` are seen together.
        let mut state = chunk.progress.lock();
        state.outstanding -= 1;
        match outcome {
            Ok(ChunkEnd::Boundary { listed, next }) => {
                state.latest = Some(listed);
                if listed == 0 && state.skip_to.as_ref().is_none_or(|known| *known < next) {
                    state.skip_to = Some(next);
                }
                None
            }
            Ok(ChunkEnd::EndOfListing) => {
                state.ended = true;
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
    let mut pages = context.client.list(&chunk.prefix, Some(&chunk.after));
    let (mut listed, mut previous) = (0usize, chunk.after.clone());
    let mut reported_growth = false;
    while let Some(page) = context.next(&mut pages).await {
        let mut page = page?;
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
            chunk.progress.lock().allowed += 2;
            context.wake.notify_one();
        }
        if listed > chunk.target * 2 {
            // Far bigger than wanted: let the next boundaries be closer now.
            chunk.progress.lock().latest = Some(listed);
        }
        let full = page.len() >= context.capabilities.page_len;
        let handoff = (chunk.until.is_none() && listed >= chunk.target && full).then(|| page.clone());
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
