//! The window: planned parts and their chunks as an ordered queue of units, each
//! a task listing ahead into a small channel, pages taken from the first only.
//!
//! The window holds at most `2 × concurrency` units of at most `PAGES_AHEAD + 2`
//! pages each; units are added in key order as room frees, part by part, so a
//! part still sampling or ramping up does not hold back the parts after it.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::{StreamExt, stream};
use tokio::sync::{mpsc, oneshot};

use super::chunk::ChunkProgress;
use super::plan::Part;
use super::sample::{Sampled, list_whole, sample};
use super::split::Splitter;
use super::{Context, FIRST_CHUNKS, PAGES_AHEAD, PageResult, PageStream};
use crate::ObjectMeta;

/// Lists the parts in key order with up to `concurrency` requests in flight.
pub(super) fn run(mut context: Context, parts: Vec<Part>, concurrency: usize) -> PageStream<'static> {
    let listing = parts.iter().filter(|p| !matches!(p, Part::Objects(_))).count();
    context.first_chunks = match listing {
        1 => (concurrency / 2).max(FIRST_CHUNKS),
        _ => FIRST_CHUNKS,
    };
    let window = Window {
        context,
        waiting: parts.into(),
        segments: VecDeque::new(),
        max_units: concurrency * 2,
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
    Listing(mpsc::Receiver<PageResult>),
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
                    units: VecDeque::from([Unit::Listing(rx)]),
                    source: Source::Sampling { prefix, verdict },
                }
            }
            Part::Flat { prefix, first } => {
                let splitter = Splitter::from_sample(&prefix, &first, context.chunk_target());
                let after = first.last().map(|o| o.key.clone());
                let mut units = VecDeque::from([Unit::Ready(first)]);
                let source = match (splitter, after) {
                    (Some(splitter), Some(after)) => {
                        tracing::debug!(prefix, "listing in chunks: the first page is full and flat");
                        Source::chunking(prefix, splitter, after, context.first_chunks)
                    }
                    // No boundaries to guess from that page: the rest as one
                    // open-ended chunk, which may hand a sample back for more.
                    (None, Some(after)) => {
                        let progress = ChunkProgress::new(context.first_chunks);
                        units.push_back(Unit::Listing(progress.spawn_chunk(context, &prefix, &after, None)));
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
    fn advance(&mut self, context: &Context, room: usize) -> usize {
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
                    let (latest, skip_to) = {
                        let mut state = progress.lock();
                        if state.ended {
                            drop(state);
                            tracing::debug!(prefix, chunks = *started, "chunked listing: the end is reached");
                            self.source = Source::Done;
                            continue;
                        }
                        if state.outstanding >= state.allowed {
                            break;
                        }
                        (state.latest.take(), state.skip_to.take())
                    };
                    if let Some(listed) = latest {
                        splitter.rescale(listed, context.chunk_target());
                    }
                    // After an empty chunk, from the next key listed: a gap (or a
                    // run of names the sample said nothing of) costs one request.
                    let until = match skip_to {
                        Some(next) if next > *after => splitter.boundary_after(&next),
                        _ => splitter.boundary_after(after),
                    };
                    let rx = progress.spawn_chunk(context, prefix, after, until.clone());
                    self.units.push_back(Unit::Listing(rx));
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
                    // One look at the state: a chunk leaves its handoff and stops
                    // counting as outstanding in one update, so none is missed.
                    let (idle, handoff) = {
                        let mut state = progress.lock();
                        (state.outstanding == 0, state.handoff.take())
                    };
                    let Some((sample, after)) = handoff.and_then(|page| {
                        let after = page.last()?.key.clone();
                        Some((page, after))
                    }) else {
                        if idle {
                            self.source = Source::Done;
                        }
                        break;
                    };
                    match Splitter::from_sample(prefix, &sample, context.chunk_target()) {
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
                            let rx = progress.spawn_chunk(context, prefix, &after, None);
                            self.units.push_back(Unit::Listing(rx));
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
        let mut units: usize = self.segments.iter().map(|s| s.units.len()).sum();
        for segment in &mut self.segments {
            units += segment.advance(&self.context, self.max_units.saturating_sub(units));
        }
        while units < self.max_units {
            let Some(part) = self.waiting.pop_front() else { break };
            let mut segment = Segment::start(part, &self.context);
            units += segment.units.len();
            units += segment.advance(&self.context, self.max_units.saturating_sub(units));
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
