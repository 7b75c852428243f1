//! The window: planned parts and their chunks as an ordered queue of units, each
//! a task listing ahead into a small channel, pages taken from the first only.
//!
//! The window holds at most `3 × concurrency` listing units of at most
//! `PAGES_AHEAD + 2` pages each (pages the plan found are held already and do
//! not count); units are added in key order as room frees, part by part, so a
//! part still sampling or ramping up does not hold back the parts after it.
//!
//! A flat part is listed by an open-ended chunk; more chunks are cut from the
//! running ones only on permits no request waits for (see [`Context::spare`]),
//! ahead of the open chunk while the end is unknown, and within the chunks still
//! listing once it is (pieces of under a page, one request each), so the last
//! round trips are not spent on one chunk's pages one after another. Chunks
//! started past the end are dropped from the window when a chunk reaches it.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::{StreamExt, stream};
use tokio::sync::{mpsc, oneshot};

use super::chunk::{BoundCell, ChunkProgress};
use super::plan::Part;
use super::sample::{Sampled, list_whole, sample};
use super::split::Splitter;
use super::{Context, PAGES_AHEAD, PageResult, PageStream};
use crate::ObjectMeta;

/// Lists the parts in key order with up to `concurrency` requests in flight.
pub(super) fn run(mut context: Context, parts: Vec<Part>, concurrency: usize) -> PageStream<'static> {
    // A part's share of half the permits: how many of its chunks may be listing
    // at once before they have found keys (a part listed alone: 8 of 16). At most
    // that many requests are wasted past its end, against round trips of ramping
    // up; the other half keeps the chunks that found keys going.
    let listing = parts.iter().filter(|p| !matches!(p, Part::Objects(_))).count();
    context.first_chunks = (concurrency / 2 / listing.max(1)).max(1);
    let window = Window {
        context,
        waiting: parts.into(),
        segments: VecDeque::new(),
        max_units: concurrency * 3,
    };
    stream::unfold(window, |mut window| async move {
        let page = window.next().await?;
        Some((page, window))
    })
    .boxed()
}

/// One unit of the window, in key order.
enum Unit {
    Ready(Vec<ObjectMeta>),
    /// A listing task's pages; a chunk's comes with its bound, which the window
    /// may cut to start another chunk in the rest of its range.
    Listing(mpsc::Receiver<PageResult>, Option<Arc<BoundCell>>),
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
    /// A flat part listed in chunks: its first starts `after` the part's first
    /// page; more are cut ahead of the open one on spare permits, at boundaries
    /// from `splitter` (when there is none yet, the open chunk hands back a page
    /// to learn them from).
    Chunking {
        prefix: String,
        splitter: Option<Splitter>,
        after: String,
        progress: Arc<ChunkProgress>,
        /// Chunks started so far, for the log.
        started: usize,
    },
}

impl Source {
    fn chunking(prefix: String, splitter: Option<Splitter>, after: String, context: &Context) -> Source {
        Source::Chunking {
            prefix,
            splitter,
            after,
            progress: ChunkProgress::new(context.first_chunks),
            started: 0,
        }
    }
}

/// One planned part in the window: its units in key order, and where more come from.
struct Segment {
    units: VecDeque<Unit>,
    source: Source,
}

impl Segment {
    /// Starts a part: objects are ready; a prefix starts with its sample.
    fn start(part: Part, context: &Context) -> Segment {
        match part {
            Part::Objects(objects) => Segment {
                units: VecDeque::from([Unit::Ready(objects)]),
                source: Source::Done,
            },
            Part::Prefix(prefix) => {
                let (tx, rx) = mpsc::channel(PAGES_AHEAD);
                let (verdict_tx, verdict) = oneshot::channel();
                tokio::spawn(sample(context.clone(), prefix.clone(), verdict_tx, tx));
                Segment {
                    units: VecDeque::from([Unit::Listing(rx, None)]),
                    source: Source::Sampling { prefix, verdict },
                }
            }
            Part::Flat { prefix, first } => {
                let splitter = Splitter::from_sample(&prefix, &first, context.chunk_target());
                let after = first.last().map(|o| o.key.clone());
                let mut units = VecDeque::from([Unit::Ready(first)]);
                let source = match after {
                    Some(after) => {
                        tracing::debug!(prefix, "listing in chunks: the first page is full and flat");
                        Source::chunking(prefix, splitter, after, context)
                    }
                    // Nothing to start after (never so for a plan's flat part):
                    // the whole prefix, as a plain listing.
                    None => {
                        let (tx, rx) = mpsc::channel(PAGES_AHEAD);
                        let context = context.clone();
                        tokio::spawn(async move { list_whole(&context, &prefix, 0, &tx).await });
                        units.push_back(Unit::Listing(rx, None));
                        Source::Done
                    }
                };
                Segment { units, source }
            }
        }
    }

    /// Adds up to `room` units, speculative chunks only while `spare` permits
    /// last (each takes one); returns how many it added.
    fn advance(&mut self, context: &Context, room: usize, spare: &mut usize) -> usize {
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
                        self.source = Source::chunking(std::mem::take(prefix), Some(splitter), after, context);
                    }
                },
                Source::Chunking {
                    prefix,
                    splitter,
                    after,
                    progress,
                    started,
                } => {
                    let target = context.chunk_target();
                    let (ended, outstanding, latest, handoff, may_speculate, end) = {
                        let mut state = progress.lock();
                        let may = state.may_speculate();
                        let end = state.end.clone();
                        (
                            state.ended,
                            state.outstanding,
                            state.latest.take(),
                            state.handoff.take(),
                            may,
                            end,
                        )
                    };
                    if let Some(end) = end {
                        // Chunks started past the end on speculation hold nothing:
                        // the listing does not wait for their answers.
                        self.units.retain(|unit| match unit {
                            Unit::Listing(_, Some(bound)) => bound.lock().after < end,
                            _ => true,
                        });
                    }
                    // Once the end is known, the part is listed when none of its
                    // chunks left in the window is still listing (the ones
                    // dropped above may be, on their own).
                    let running = || {
                        self.units
                            .iter()
                            .any(|u| matches!(u, Unit::Listing(_, Some(b)) if !b.lock().done))
                    };
                    if ended && handoff.is_none() && !running() {
                        tracing::debug!(prefix, chunks = *started, "chunked listing: the end is reached");
                        self.source = Source::Done;
                        continue;
                    }
                    if let (Some(listed), Some(splitter)) = (latest, splitter.as_mut()) {
                        splitter.rescale(listed, target);
                    }
                    // The first chunk, or the one after a page handed back: the
                    // part goes on from there, whatever the permits.
                    let from = match handoff {
                        Some(page) => {
                            let Some(last) = page.last() else { continue };
                            *splitter = Splitter::from_sample(prefix, &page, target);
                            tracing::debug!(prefix, after = last.key, "chunked listing: cutting the tail again");
                            Some(last.key.clone())
                        }
                        None if *started == 0 => Some(std::mem::take(after)),
                        None => None,
                    };
                    if let Some(from) = from {
                        let (rx, bound) =
                            progress.spawn_chunk(context, prefix, (&from, None), splitter.is_none(), false);
                        self.units.push_back(Unit::Listing(rx, Some(bound)));
                        (*started, added, *spare) = (*started + 1, added + 1, spare.saturating_sub(1));
                        continue;
                    }
                    if outstanding == 0 {
                        // Nothing runs and nothing was handed back: the part is listed.
                        self.source = Source::Done;
                        continue;
                    }
                    // A chunk in the rest of a running one's range, on a permit no
                    // one waits for: the first (in key order) with more than a
                    // page and a half still to list, else ahead of the open one.
                    if *spare == 0 || !may_speculate {
                        break;
                    }
                    let Some(splitter_now) = splitter.as_ref() else { break };
                    let page_len = context.capabilities.page_len;
                    let mut cut = None;
                    for (i, unit) in self.units.iter().enumerate() {
                        let Unit::Listing(_, Some(bound)) = unit else { continue };
                        let (after, reached, until) = {
                            let b = bound.lock();
                            if b.done {
                                continue;
                            }
                            (b.after.clone(), b.reached.clone(), b.until.clone())
                        };
                        // Cuts fall on boundaries from the chunk's start, not from
                        // where it happens to be: a run makes the same requests as
                        // the one before it.
                        let mut points = match &until {
                            // Once the end is known, the chunks still listing are what
                            // is left: the rest of one, past the page its request in
                            // flight brings, is cut into pieces of under a page, each
                            // listed in one request while permits are spare.
                            Some(until) if ended => {
                                let Some(ahead) = splitter_now.ahead(&reached, page_len * 19 / 20, target) else {
                                    continue;
                                };
                                let pieces = splitter_now.pieces(&after, until, page_len * 9 / 10, target);
                                // The chunk keeps what its request in flight brings: it
                                // is cut at the last piece that page reaches, else at
                                // the first past where it is.
                                let past = pieces.partition_point(|p| p.as_str() <= reached.as_str());
                                let within = pieces.partition_point(|p| *p <= ahead);
                                let first = if within > past { within - 1 } else { past };
                                if first >= pieces.len() {
                                    continue;
                                }
                                pieces[first..].to_vec()
                            }
                            Some(_) => continue,
                            // Past the listing's end, once a chunk has reached it.
                            None if ended => continue,
                            // Past the page its request in flight brings.
                            None => match splitter_now
                                .ahead(&reached, page_len * 19 / 20, target)
                                .and_then(|ahead| splitter_now.grid_after(&after, &ahead))
                            {
                                Some(at) => vec![at],
                                None => {
                                    // Past the numbers the boundaries came from: the
                                    // open chunk hands back a page to learn new ones.
                                    tracing::debug!(
                                        prefix,
                                        after = reached,
                                        "chunked listing: past the guessed boundaries"
                                    );
                                    bound.lock().want_sample = true;
                                    continue;
                                }
                            },
                        };
                        points.truncate((*spare).min(room - added).max(1));
                        if let Some(old) = bound.cut(&points[0]) {
                            cut = Some((i, points, old));
                            break;
                        }
                    }
                    let Some((i, points, old)) = cut else {
                        if self
                            .units
                            .iter()
                            .any(|u| matches!(u, Unit::Listing(_, Some(b)) if b.lock().want_sample))
                        {
                            *splitter = None;
                        }
                        break;
                    };
                    for (j, at) in points.iter().enumerate() {
                        let until = points.get(j + 1).cloned().or_else(|| old.clone());
                        let (rx, bound) = progress.spawn_chunk(context, prefix, (at, until), false, true);
                        self.units.insert(i + 1 + j, Unit::Listing(rx, Some(bound)));
                        (*started, added, *spare) = (*started + 1, added + 1, spare.saturating_sub(1));
                    }
                }
            }
        }
        added
    }
}

/// The ordered window of units.
struct Window {
    context: Context,
    waiting: VecDeque<Part>,
    segments: VecDeque<Segment>,
    max_units: usize,
}

impl Window {
    /// Adds units in key order, part by part, until the window is full.
    fn fill(&mut self) {
        // Units that list count; a ready one holds a page the plan held already.
        let listing = |s: &Segment| s.units.iter().filter(|u| matches!(u, Unit::Listing(..))).count();
        let mut units: usize = self.segments.iter().map(listing).sum();
        let mut spare = self.context.spare();
        for segment in &mut self.segments {
            units += segment.advance(&self.context, self.max_units.saturating_sub(units), &mut spare);
        }
        while units < self.max_units {
            let Some(part) = self.waiting.pop_front() else { break };
            let mut segment = Segment::start(part, &self.context);
            units += listing(&segment);
            spare = spare.saturating_sub(listing(&segment));
            units += segment.advance(&self.context, self.max_units.saturating_sub(units), &mut spare);
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
                Some(Unit::Listing(rx, _)) => tokio::select! {
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
