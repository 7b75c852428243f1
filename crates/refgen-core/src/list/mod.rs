//! Listing: the one-method page client a provider implements, and the engine
//! that lists a prefix concurrently while keeping key order.
//!
//! Listing dominates on real clouds (one page of 1,000 keys per 30–200 ms round
//! trip), and a listing is sequential by nature (each page names the next). So the
//! key space is split into disjoint parts, listed at the same time, and their pages
//! handed on strictly in key order:
//!
//! 1. **Plan** ([`plan`](self::plan)): one-level listings discover sub-prefixes
//!    ("folders"), breadth first, until there are enough parts for the
//!    concurrency. A level that holds a single folder (a bucket with one top-level
//!    folder, a chain `a/b/c/`) is gone through too, a chain's levels all at once
//!    once its first key is known, so where the listing starts does not decide
//!    whether it is split.
//! 2. **Sample and chunk** ([`sample`](self::sample), [`chunk`](self::chunk),
//!    [`split`](self::split)): a part whose first page is full and flat is listed
//!    in key ranges `(after, until]` with "start after": an open-ended chunk, and
//!    more cut from it at boundaries guessed from that page's keys, on permits
//!    no other request waits for; a bad guess costs requests, never keys.
//! 3. **Window** ([`window`](self::window)): parts and chunks form an ordered
//!    window of units, each a task feeding a small channel; pages are taken from
//!    the first unit only.
//!
//! Trust, checked: the plan relies on one-level listings naming every folder. One
//! flat page of the prefix, fetched once the first level has answered, must be covered by the
//! plan (each of its keys among the plan's objects or under one of its parts);
//! when it is not, the store's folder listing is not whole and the prefix is
//! listed flat, with one warning. (Its keys also give the plan a lone folder's
//! first key.)
//!
//! Every request of all three (planning included) takes a permit of one semaphore
//! of `concurrency` permits, so that many requests are in flight at most; a
//! request made on speculation (a chunk that may lie past its part's end) takes
//! only a permit nothing else is queued for. Memory stays bounded by the window,
//! whatever the size of the bucket. With every request one round trip long, the
//! benchmark's shapes of 100 pages list in 8 to 10 round trips on 16 permits:
//! 100 ÷ 16 rounded up, plus the levels that find where to split.

//! Ranges ([`range`](self::range)): a listing of one key range `(after, until]`
//! of a prefix, the engine's own over a page client that clips every page to
//! the range; [`divide`](self::divide) cuts a prefix into N such ranges, for N
//! workers that each list one (`refgen plan`).
//!
//! Order: at one level, an object key and a sub-prefix compare as strings, and all
//! keys under a sub-prefix sort together right where the prefix sorts (they start
//! with it, and nothing else at that level does). So merging a level's objects and
//! prefixes by string and expanding each prefix in place gives exactly the byte
//! order of a plain listing, which is S3's, GCS's and Azure's listing order. Chunks
//! are disjoint key ranges in order, so they keep it too. Where a server does not
//! list in byte order, a chunk notices and the listing fails with
//! [`Error::ListingOrder`] rather than losing keys.

mod chunk;
mod client;
mod divide;
mod paginate;
mod plan;
mod range;
mod sample;
mod split;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod window;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{StreamExt, TryStreamExt, stream};
use tokio::sync::{Notify, Semaphore, mpsc};

pub use client::{
    Capabilities, LevelEntry, LevelPage, LevelStream, ListClient, ListClientExt, ListPage, ListRequest, PageStream,
    merge_level,
};
pub use divide::{Budget, Division, divide};
pub use paginate::{continues, paginate};
pub use range::{KeyRange, list_range};

use crate::{Error, ObjectMeta};

/// The default number of listing requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Pages each running part may list ahead of the consumer.
pub const PAGES_AHEAD: usize = 2;

/// A page, or the listing error that ends a part.
type PageResult = Result<Vec<ObjectMeta>, Error>;

/// Lists everything under `prefix` in key order, with up to `concurrency` requests
/// in flight. With a concurrency of 1, or a client without one-level listings,
/// this is the plain sequential listing.
pub fn list_concurrently(client: Arc<dyn ListClient>, prefix: String, concurrency: usize) -> PageStream<'static> {
    let concurrency = concurrency.max(1);
    let context = Context::new(client, concurrency);
    if concurrency == 1 || !context.capabilities.delimiter {
        let (tx, rx) = mpsc::channel(PAGES_AHEAD);
        tokio::spawn(async move { sample::list_whole(&context, &prefix, 0, &tx).await });
        return receive(rx);
    }
    let planned = {
        let context = context.clone();
        async move {
            // The folder walk is checked against one flat page of the same prefix: a
            // store whose one-level listings leave out folders (s3rver drops a
            // folder that holds only folders) would otherwise lose their keys
            // without a word. The page is asked for once the first level has
            // answered (so a server that fails gets no second request to fail),
            // beside the plan's further rounds; its keys also give the plan the
            // first key under a lone folder (see `plan::expand_chain`), which
            // then needs no request of its own. A plan that is the prefix itself,
            // unsplit or flat, covers every key and needs no check.
            let (answered, first_level) = tokio::sync::oneshot::channel();
            let (hint_tx, hint) = tokio::sync::oneshot::channel();
            let mut flat = AbortOnDrop(tokio::spawn({
                let context = context.clone();
                let prefix = prefix.clone();
                async move {
                    if first_level.await.is_err() {
                        return Ok(Vec::new());
                    }
                    let _permit = context.permit().await;
                    let (page, _) = context.client.first_page(&prefix).await?;
                    let _ = hint_tx.send(page.iter().map(|o| o.key.clone()).collect());
                    Ok::<_, Error>(page)
                }
            }));
            let parts = plan::plan(&context, &prefix, concurrency, Some(answered), Some(hint)).await?;
            // The parts start listing as soon as the plan is made, while the flat
            // page may still be on its way (waiting for it first cost a round trip
            // on every listing); no page is handed on before it has shown the plan
            // whole, and a plan it does not show whole is dropped, unlisted pages and all.
            let started = start(window::run(context.clone(), parts.clone(), concurrency));
            let flat = (&mut flat.0).await.map_err(|source| Error::Task {
                doing: "checking the folder listing",
                source,
            })??;
            Ok::<_, Error>(match plan::uncovered(&parts, &flat) {
                None => started,
                Some(key) => {
                    drop(started);
                    let shown = if prefix.is_empty() {
                        "the bucket".to_owned()
                    } else {
                        format!("`{prefix}`")
                    };
                    tracing::warn!(
                        "the server's folder listing of {shown} leaves out `{key}`, which its flat listing holds: \
                         listing flat instead, one request at a time"
                    );
                    let (tx, rx) = mpsc::channel(PAGES_AHEAD);
                    let context = context.clone();
                    tokio::spawn(async move { sample::list_whole(&context, &prefix, 0, &tx).await });
                    receive(rx)
                }
            })
        }
    };
    stream::once(planned).try_flatten().boxed()
}

/// A task aborted when this is dropped (a listing given up on stops its requests).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `pages`, listed from now on by a task of their own rather than once polled;
/// dropping the stream stops the task, and with it the listing.
fn start(mut pages: PageStream<'static>) -> PageStream<'static> {
    let (tx, rx) = mpsc::channel(PAGES_AHEAD);
    let task = AbortOnDrop(tokio::spawn(async move {
        while let Some(page) = pages.next().await {
            let failed = page.is_err();
            if tx.send(page).await.is_err() || failed {
                return;
            }
        }
    }));
    stream::unfold((rx, task), |(mut rx, task)| async move {
        rx.recv().await.map(|page| (page, (rx, task)))
    })
    .boxed()
}

/// The pages a task sends, as a stream.
fn receive(rx: mpsc::Receiver<PageResult>) -> PageStream<'static> {
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|page| (page, rx)) }).boxed()
}

/// What every listing task shares.
#[derive(Clone)]
struct Context {
    client: Arc<dyn ListClient>,
    capabilities: Capabilities,
    /// One permit per request in flight, planning included.
    requests: Arc<Semaphore>,
    /// Wakes the consumer when a sample or chunk reports, so the window refills.
    wake: Arc<Notify>,
    /// Chunks of a flat part that may be listing at once before they have found
    /// keys (see [`chunk::ChunkState::credit`]).
    first_chunks: usize,
    /// Requests waiting for a permit.
    waiting: Arc<AtomicUsize>,
    /// Told when a permit is given back (see [`Context::spare_permit`]).
    freed: Arc<Notify>,
}

/// A request permit; its return wakes the window and the speculative requests
/// waiting for a spare permit.
struct Permit<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    context: &'a Context,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.context.wake.notify_one();
        self.context.freed.notify_waiters();
    }
}

impl Context {
    fn new(client: Arc<dyn ListClient>, concurrency: usize) -> Context {
        let mut capabilities = client.capabilities();
        capabilities.page_len = capabilities.page_len.max(1);
        Context {
            client,
            capabilities,
            requests: Arc::new(Semaphore::new(concurrency)),
            wake: Arc::new(Notify::new()),
            first_chunks: 1,
            waiting: Arc::default(),
            freed: Arc::default(),
        }
    }

    /// The next item of a paginated stream, holding a request permit meanwhile:
    /// each `next` of a page stream is one request.
    async fn next<T>(&self, pages: &mut futures::stream::BoxStream<'_, Result<T, Error>>) -> Option<Result<T, Error>> {
        let _permit = self.permit().await?;
        pages.next().await
    }

    /// The next page of a chunk started on speculation, which has found no key
    /// yet: its request waits for a permit no other request waits for.
    async fn next_spare<T>(
        &self,
        pages: &mut futures::stream::BoxStream<'_, Result<T, Error>>,
    ) -> Option<Result<T, Error>> {
        let _permit = self.spare_permit().await?;
        pages.next().await
    }

    /// A request permit. Waiting for one is counted (see [`Context::spare`]), and
    /// giving one back wakes the window, which may have a chunk to start.
    async fn permit(&self) -> Option<Permit<'_>> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = self.requests.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        Some(Permit {
            _permit: permit.ok()?,
            context: self,
        })
    }

    /// A permit that no request queued for a permit wants: a speculative
    /// request never delays one known to list keys. (The semaphore hands a
    /// returned permit to the first in its queue; only one nobody queued for is
    /// free to take.)
    async fn spare_permit(&self) -> Option<Permit<'_>> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.requests.try_acquire() {
                Ok(permit) => break Some(permit),
                Err(tokio::sync::TryAcquireError::Closed) => break None,
                Err(tokio::sync::TryAcquireError::NoPermits) => freed.await,
            }
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        Some(Permit {
            _permit: permit?,
            context: self,
        })
    }

    /// Permits no request holds or waits for.
    fn spare(&self) -> usize {
        self.requests
            .available_permits()
            .saturating_sub(self.waiting.load(Ordering::SeqCst))
    }

    /// Keys per chunk wanted. A chunk of n keys takes n / page_len + 1 requests:
    /// the last one finds the boundary. Aiming a quarter page under a whole number
    /// of pages lets that last page hold the chunk's end and the boundary both,
    /// with room for the guess to be off a little (4 requests for 3 pages' worth
    /// would waste a third). Bigger chunks waste less, smaller ones spread better.
    fn chunk_target(&self) -> usize {
        let page_len = self.capabilities.page_len;
        page_len * (PAGES_AHEAD + 1) - page_len / 4
    }
}
