//! A worker's share of a listing: the keys of a prefix in one key range
//! `(after, until]`, listed alone and concurrently.
//!
//! A plan (see [`divide`](super::divide)) cuts a prefix's key space into ranges
//! that are disjoint and cover it whole by construction: range `k` is
//! `(boundary k-1, boundary k]`, the first open below and the last open above.
//! Whatever objects are added or removed between the plan and the runs, each key
//! falls in exactly one range. A range is listed with "start after" on the server,
//! so it costs what it holds, and stops at the first key past its end.
//!
//! That relies on the server listing in byte order. Every key a range's listing
//! hands on is checked to come after the one before and after the range's start;
//! a server that walks folders instead (SeaweedFS, for names that sort before
//! `/`) fails the listing with [`Error::RangeOrder`] rather than losing keys.

use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Capabilities, ListClient, ListPage, ListRequest, PageStream};
use crate::Error;

/// The keys after `after` (exclusive) up to `until` (inclusive); `None` leaves
/// that side open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyRange {
    /// Keys after this one; `None`: from the first.
    pub after: Option<String>,
    /// Keys up to and including this one; `None`: to the last.
    pub until: Option<String>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> KeyRange {
        KeyRange::default()
    }

    /// Whether `key` is in this range.
    pub fn contains(&self, key: &str) -> bool {
        self.after.as_deref().is_none_or(|a| key > a) && self.until.as_deref().is_none_or(|u| key <= u)
    }

    /// Whether no key can be in this range (`after` at or past `until`).
    pub fn is_empty(&self) -> bool {
        matches!((&self.after, &self.until), (Some(a), Some(u)) if a >= u)
    }
}

impl std::fmt::Display for KeyRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.after {
            Some(after) => write!(f, "(`{after}`, ")?,
            None => f.write_str("(first key, ")?,
        }
        match &self.until {
            Some(until) => write!(f, "`{until}`]"),
            None => f.write_str("last key]"),
        }
    }
}

/// Lists the keys of `prefix` in `range`, with up to `concurrency` requests in
/// flight: the range's first page decides, as a flat part's does, whether the
/// rest goes in concurrent chunks. Keys come in byte order, or the listing fails
/// with [`Error::RangeOrder`].
pub fn list_range(
    client: Arc<dyn ListClient>,
    prefix: String,
    range: KeyRange,
    concurrency: usize,
) -> PageStream<'static> {
    let start = range.after.clone();
    let client: Arc<dyn ListClient> = Arc::new(RangeClient { inner: client, range });
    in_byte_order(super::list_concurrently(client, prefix, concurrency), start)
}

/// `pages`, checked to hand on keys in strictly increasing byte order, each
/// after `start`.
fn in_byte_order(pages: PageStream<'static>, start: Option<String>) -> PageStream<'static> {
    pages
        .scan(start, |previous, page| {
            let page = page
                .map_err(|e| match e {
                    Error::ListingOrder { key, previous } => Error::RangeOrder { key, previous },
                    other => other,
                })
                .and_then(|page| {
                    for object in &page {
                        if let Some(before) = previous.as_deref()
                            && object.key.as_str() <= before
                        {
                            return Err(Error::RangeOrder {
                                key: object.key.clone(),
                                previous: before.to_owned(),
                            });
                        }
                        *previous = Some(object.key.clone());
                    }
                    Ok(page)
                });
            std::future::ready(Some(page))
        })
        .boxed()
}

/// A client whose every listing is clipped to a key range: it starts at the
/// range's start (or later, where asked) and ends at the first key past the
/// range's end; a one-level listing keeps the folders that reach into the range.
/// So the listing engine, folders, chunks and all, lists one range as it would
/// a whole prefix.
struct RangeClient {
    inner: Arc<dyn ListClient>,
    range: KeyRange,
}

impl RangeClient {
    /// Where the server starts a listing of `prefix`: after the range's start,
    /// for a flat listing; for a one-level listing, just below the name (folder
    /// or object) at that level that the start lies in, so that a folder
    /// holding the start is listed whatever the server compares "start after"
    /// with (the keys, or the folder names).
    fn start(&self, prefix: &str, delimited: bool) -> Option<String> {
        let after = self.range.after.as_deref()?;
        if !delimited {
            return Some(after.to_owned());
        }
        let rest = after.strip_prefix(prefix)?;
        let name = match rest.find('/') {
            Some(end) => &after[..prefix.len() + end],
            None => after,
        };
        just_below(name)
    }

    /// Whether the folder `folder` holds keys in the range.
    fn reaches(&self, folder: &str) -> bool {
        let below_end = self.range.until.as_deref().is_none_or(|u| folder <= u);
        let above_start = self
            .range
            .after
            .as_deref()
            .is_none_or(|a| folder > a || a.starts_with(folder));
        below_end && above_start
    }
}

/// A string just below `name` and above everything below it that does not
/// start with it: its last character one less, then U+10FFFF (which no key
/// holds); `name` without its last character when that is U+0000.
fn just_below(name: &str) -> Option<String> {
    let mut chars: Vec<char> = name.chars().collect();
    let last = u32::from(chars.pop()?);
    let below = match last {
        0 => return Some(chars.into_iter().collect()),
        0xE000 => '\u{D7FF}',
        n => char::from_u32(n - 1)?,
    };
    chars.extend([below, '\u{10FFFF}']);
    Some(chars.into_iter().collect())
}

#[async_trait::async_trait]
impl ListClient for RangeClient {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        let ours = self.start(request.prefix, request.delimited);
        // The later of the two starts; a continuation carries its own place, but
        // the start goes with it as the listings derived from `list_page` send it.
        let start = match (request.start_after, ours.as_deref()) {
            (Some(asked), Some(after)) => Some(asked.max(after)),
            (asked, after) => asked.or(after),
        };
        if let (Some(start), Some(until)) = (start, self.range.until.as_deref())
            && start >= until
        {
            return Ok(ListPage::default());
        }
        let mut page = self
            .inner
            .list_page(ListRequest {
                start_after: start,
                ..request
            })
            .await?;
        // Past the end: the last key or folder the server sent lies after the
        // range's end, so nothing after it is in the range.
        let beyond = self.range.until.as_deref().is_some_and(|until| {
            page.objects.last().is_some_and(|o| o.key.as_str() > until)
                || page.prefixes.last().is_some_and(|p| p.as_str() > until)
        });
        // Keys at or before the range's start: the start itself (an inclusive
        // start: GCS, Azure), or a level's names below it; anything else out of
        // order is the listing's to find.
        if let Some(after) = self.range.after.as_deref() {
            let before = page.objects.partition_point(|o| o.key.as_str() <= after);
            page.objects.drain(..before);
        }
        if let Some(until) = self.range.until.as_deref() {
            let past = page.objects.partition_point(|o| o.key.as_str() <= until);
            page.objects.truncate(past);
        }
        page.prefixes.retain(|p| self.reaches(p));
        if beyond {
            page.next = None;
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::super::testing::{FolderWalk, MemoryBucket};
    use super::*;

    async fn keys(stream: PageStream<'static>) -> Result<Vec<String>, Error> {
        stream
            .map_ok(|p| p.into_iter().map(|o| o.key).collect::<Vec<_>>())
            .try_concat()
            .await
    }

    fn ranges(boundaries: &[&str]) -> Vec<KeyRange> {
        let mut edges: Vec<Option<String>> = vec![None];
        edges.extend(boundaries.iter().map(|b| Some((*b).to_owned())));
        edges.push(None);
        edges
            .windows(2)
            .map(|w| KeyRange {
                after: w[0].clone(),
                until: w[1].clone(),
            })
            .collect()
    }

    /// Whatever the boundaries (keys, not keys, inside folders, past the end,
    /// equal), the ranges' listings are disjoint, in order, and together every key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn ranges_list_every_key_once_whatever_the_boundaries() {
        let keys_in: Vec<String> = (0..2000)
            .map(|i| format!("d{}/{i:05}.jpg", i % 7))
            .chain((0..1500).map(|i| format!("flat{i:05}")))
            .chain(["a", "a/", "a-b/c", "a.b", "a0", "é/x", "😀/y"].map(String::from))
            .collect();
        let bucket = MemoryBucket::new(keys_in.clone(), 100);
        let mut sorted = keys_in.clone();
        sorted.sort();
        for boundaries in [
            vec![],
            vec!["d3/"],
            vec!["a", "d2/00100.jpg", "d5/zzz", "flat00700"],
            vec!["d1", "d1", "e", "flat01499", "zzzz"],
            vec!["0", "a-b/c", "é"],
        ] {
            let mut all = Vec::new();
            for range in ranges(&boundaries) {
                for concurrency in [1, 8] {
                    let listed = keys(list_range(bucket.clone(), String::new(), range.clone(), concurrency))
                        .await
                        .expect("lists");
                    let want: Vec<String> = sorted.iter().filter(|k| range.contains(k)).cloned().collect();
                    assert_eq!(listed, want, "{range} at {concurrency}");
                    if concurrency == 1 {
                        all.extend(listed);
                    }
                }
            }
            assert_eq!(all, sorted, "{boundaries:?}");
        }
    }

    /// A range costs about what it holds, not the listing before it.
    #[tokio::test]
    async fn a_range_lists_only_its_own_pages() {
        let bucket = MemoryBucket::new((0..10_000).map(|i| format!("img{i:05}.jpg")), 100);
        let range = KeyRange {
            after: Some("img07499.jpg".into()),
            until: Some("img09999.jpg".into()),
        };
        let listed = keys(list_range(bucket.clone(), String::new(), range, 16))
            .await
            .expect("lists");
        assert_eq!(listed.len(), 2500);
        assert!(bucket.requests() <= 35, "{} requests for 25 pages", bucket.requests());
    }

    /// A server that walks folders lists `x/a/…` before `x/a-b`: a range that
    /// would lose keys to that fails instead.
    #[tokio::test]
    async fn a_store_out_of_byte_order_fails_the_range() {
        let keys_in: Vec<String> = ["x/a-b", "x/a.c", "x/a/1", "x/a/2", "x/b"].map(String::from).to_vec();
        let store = FolderWalk::new(keys_in, 2);
        let range = KeyRange {
            after: Some("x/a".into()),
            until: None,
        };
        let err = keys(list_range(store, "x/".into(), range, 1))
            .await
            .expect_err("out of order");
        assert!(matches!(err, Error::RangeOrder { .. }), "{err}");
    }

    #[test]
    fn contains_and_display() {
        let range = KeyRange {
            after: Some("b".into()),
            until: Some("d".into()),
        };
        assert!(!range.contains("b") && range.contains("b0") && range.contains("d") && !range.contains("d0"));
        assert!(KeyRange::all().contains(""));
        assert_eq!(range.to_string(), "(`b`, `d`]");
        assert!(
            KeyRange {
                after: Some("d".into()),
                until: Some("d".into())
            }
            .is_empty()
        );
    }
}
