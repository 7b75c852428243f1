//! The generate pipeline: list → filter → sign → write, as one stream.
//!
//! Pages flow through with bounded look-ahead: while page *n* is written, up to
//! [`SIGN_AHEAD`] later pages may be listed and signed, each page signed in a task
//! of its own (so signing runs on every core, beside the writing). Order is kept
//! (the output is in listing order, so the same bucket gives the same file) and
//! memory is bounded by a few pages, whatever the size of the bucket.

use std::time::{Duration, Instant};

use std::sync::Arc;

use futures::TryStreamExt;

use crate::expiry::display_duration;
use crate::filter::Selection;
use crate::list::{ListClient, list_concurrently};
use crate::naming::Namer;
use crate::writer::ReferenceWriter;
use crate::{Error, Signer, StorageErrorKind};

/// How many pages may be signed ahead of the one being written.
pub const SIGN_AHEAD: usize = 4;

/// Counts from one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects the listing returned.
    pub listed: u64,
    /// Objects that passed the filters.
    pub matched: u64,
    /// Lines written.
    pub written: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Writes one reference line per selected object.
///
/// The listing is split into parts listed concurrently (up to `concurrency` requests
/// in flight; see [`crate::list`]), and pages still arrive in key order. When the
/// server turns out not to list in byte order (which splitting relies on) and the
/// output can still be taken back (a file not yet in place), the run starts over
/// with a sequential listing.
pub async fn generate(
    lister: Arc<dyn ListClient>,
    signer: Arc<dyn Signer>,
    selection: &Selection,
    expires_in: Duration,
    concurrency: usize,
    namer: &mut Namer,
    out: &mut ReferenceWriter,
) -> Result<Summary, Error> {
    if expires_in > signer.max_expiry() {
        return Err(Error::InvalidExpiry {
            input: display_duration(expires_in),
            reason: format!(
                "longer than the provider's limit of {}",
                display_duration(signer.max_expiry())
            ),
        });
    }
    let started = Instant::now();
    let first = write_all(
        Arc::clone(&lister),
        Arc::clone(&signer),
        selection,
        expires_in,
        concurrency,
        namer,
        out,
    )
    .await;
    let mut summary = match first {
        Err(e) if concurrency > 1 && e.storage_kind() == Some(StorageErrorKind::ListingOrder) && out.rewind()? => {
            tracing::warn!("{e}: listing again, sequentially");
            namer.restart();
            write_all(lister, signer, selection, expires_in, 1, namer, out).await?
        }
        other => other?,
    };
    summary.written = out.lines();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// One pass of list → filter → sign → write.
async fn write_all(
    lister: Arc<dyn ListClient>,
    signer: Arc<dyn Signer>,
    selection: &Selection,
    expires_in: Duration,
    concurrency: usize,
    namer: &mut Namer,
    out: &mut ReferenceWriter,
) -> Result<Summary, Error> {
    let mut summary = Summary::default();
    let mut signed_pages = list_concurrently(lister, selection.prefix().to_owned(), concurrency)
        .map_ok(|page| {
            let listed = page.len() as u64;
            let kept: Vec<_> = page
                .into_iter()
                .filter(|o| !o.is_folder_marker() && selection.matches(&o.key))
                .collect();
            let signer = Arc::clone(&signer);
            // A task per page: the writer, on this task, is the one sequential
            // step, and signing would otherwise share its core.
            let signing = tokio::spawn(async move {
                let urls = signer.sign_page(&kept, expires_in).await?;
                Ok::<_, Error>((listed, kept, urls))
            });
            async move {
                signing.await.map_err(|source| Error::Task {
                    doing: "signing a page",
                    source,
                })?
            }
        })
        .try_buffered(SIGN_AHEAD);
    while let Some((listed, kept, urls)) = signed_pages.try_next().await? {
        summary.listed += listed;
        summary.matched += kept.len() as u64;
        for (object, url) in kept.iter().zip(&urls) {
            out.write_line(&namer.name(&object.key), url)?;
        }
    }
    Ok(summary)
}
