//! A part's first page, which decides how the rest of it is listed, and the plain
//! listing of a whole prefix.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::split::Splitter;
use super::{Context, ListClientExt, PageResult};

/// What a part's first page says about the rest of it.
pub(super) enum Sampled {
    /// Listed whole, by the task that listed the sample (it goes on by itself).
    Whole,
    /// A full, flat first page on a store that seeks: the rest is listed in
    /// chunks after `after`, with boundaries from `splitter`.
    Chunked { splitter: Splitter, after: String },
}

/// Lists a part's first page into `tx` and decides how the rest is listed: in
/// chunks when more pages follow, the page is flat (no `/` below the prefix) and
/// the store seeks to a start key; otherwise whole, by this task, as a plain
/// listing. The verdict goes to `verdict` before the page is sent; a failure
/// sends no verdict, and its error through `tx`.
pub(super) async fn sample(
    context: Context,
    prefix: String,
    verdict: oneshot::Sender<Sampled>,
    tx: mpsc::Sender<PageResult>,
) {
    if !context.capabilities.start_after {
        // Chunks need a start key: a plain listing.
        let _ = verdict.send(Sampled::Whole);
        context.wake.notify_one();
        return list_whole(&context, &prefix, 0, &tx).await;
    }
    let first = {
        let _permit = context.permit().await;
        context.client.first_page(&prefix).await
    };
    let (page, more) = match first {
        Ok(first) => first,
        Err(e) => {
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
        .then(|| Splitter::from_sample(&prefix, &page, context.chunk_target()))
        .flatten();
    let last = page.last().map(|o| o.key.clone());
    match splitter.zip(last) {
        Some((splitter, after)) => {
            tracing::debug!(prefix, "listing in chunks: the first page is full and flat");
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
pub(super) async fn list_whole(context: &Context, prefix: &str, mut skip: usize, tx: &mpsc::Sender<PageResult>) {
    let client = Arc::clone(&context.client);
    let mut pages = client.list(prefix, None);
    while let Some(page) = context.next(&mut pages).await {
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
