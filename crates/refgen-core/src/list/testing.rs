//! Store models for testing listings (feature `test-util`): an in-memory bucket
//! with S3's listing semantics, a store that walks folders as SeaweedFS does, and
//! one whose one-level listings leave out folders that hold only folders, as
//! s3rver's do.
//! Both count requests and the most in flight at once.

use std::collections::BTreeSet;
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{Capabilities, ListClient, ListPage, ListRequest};
use crate::{Error, ObjectMeta};

/// Marks a continuation token that stands for a sub-prefix: resume past every key
/// under it. (No key holds U+10FFFF in these models.)
const PAST: char = '\u{10FFFF}';

/// An in-memory bucket: keys in byte order, pages of `page` entries, one-level
/// listings, "start after" on the server; each request sleeps `latency`.
#[derive(Debug)]
pub struct MemoryBucket {
    /// Every key, in byte order.
    pub keys: BTreeSet<String>,
    /// Entries per page.
    pub page: usize,
    /// How long each request takes.
    pub latency: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: AtomicUsize,
    idle_starts: AtomicUsize,
}

impl MemoryBucket {
    /// A bucket of `keys`, listed `page` entries at a time, 2 ms per request.
    pub fn new(keys: impl IntoIterator<Item = String>, page: usize) -> Arc<Self> {
        Self::with_latency(keys, page, Duration::from_millis(2))
    }

    /// The same, with each request taking `latency`.
    pub fn with_latency(keys: impl IntoIterator<Item = String>, page: usize, latency: Duration) -> Arc<Self> {
        Arc::new(MemoryBucket {
            keys: keys.into_iter().collect(),
            page,
            latency,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            idle_starts: AtomicUsize::new(0),
        })
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The most requests that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Requests that started with none in flight: the round trips a caller waited
    /// for one after another (requests started together overlap).
    pub fn idle_starts(&self) -> usize {
        self.idle_starts.load(Ordering::SeqCst)
    }

    /// Keys under `prefix`, in byte order.
    pub fn keys_under(&self, prefix: &str) -> Vec<String> {
        self.keys.iter().filter(|k| k.starts_with(prefix)).cloned().collect()
    }

    async fn request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        if now == 1 {
            self.idle_starts.fetch_add(1, Ordering::SeqCst);
        }
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// An object of size 1 at `key`.
    pub fn object(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size: 1,
            last_modified: None,
            archived: false,
            superseded: false,
            folder: false,
            version: None,
            customer_key: false,
        }
    }

    fn answer(&self, request: &ListRequest<'_>) -> ListPage {
        let prefix = request.prefix;
        let mut from = match (request.token, request.start_after) {
            (Some(token), _) => Excluded(token.to_owned()),
            (None, Some(after)) if after >= prefix => Excluded(after.to_owned()),
            _ => Included(prefix.to_owned()),
        };
        let mut page = ListPage::default();
        let mut entries = 0;
        loop {
            let next = self
                .keys
                .range::<String, _>((from.clone(), Unbounded))
                .next()
                .filter(|k| k.starts_with(prefix));
            let Some(key) = next else { return page };
            if entries == self.page {
                let last = page.objects.last().map(|o| &o.key);
                let last = match page.prefixes.last() {
                    Some(p) if last.is_none_or(|k| k < p) => format!("{p}{PAST}"),
                    _ => last.cloned().unwrap_or_default(),
                };
                page.next = Some(last);
                return page;
            }
            entries += 1;
            let folder = request
                .delimited
                .then(|| key[prefix.len()..].find('/').map(|i| &key[..prefix.len() + i + 1]))
                .flatten();
            match folder {
                Some(folder) => {
                    page.prefixes.push(folder.to_owned());
                    from = Excluded(format!("{folder}{PAST}"));
                }
                None => {
                    page.objects.push(Self::object(key));
                    from = Excluded(key.clone());
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl ListClient for MemoryBucket {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            delimiter: true,
            start_after: true,
            page_len: self.page,
        }
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        self.request().await;
        Ok(self.answer(&request))
    }
}

/// A store that lists folder by folder, as SeaweedFS does: keys ordered by their
/// `/`-separated components (`f/a/x` before `f/a-b`, though `-` sorts before
/// `/`), and "start after" a key resumes at that place in the walk. One-level
/// listings are the bucket's.
#[derive(Debug)]
pub struct FolderWalk {
    /// The same keys in byte order, for one-level listings and counts.
    pub bucket: Arc<MemoryBucket>,
    walk: Vec<String>,
}

impl FolderWalk {
    /// A store of `keys`, listed `page` keys at a time.
    pub fn new(keys: Vec<String>, page: usize) -> Arc<Self> {
        let mut walk = keys.clone();
        walk.sort_by(|a, b| components(a).cmp(&components(b)));
        Arc::new(FolderWalk {
            bucket: MemoryBucket::new(keys, page),
            walk,
        })
    }
}

fn components(key: &str) -> Vec<&str> {
    key.split('/').collect()
}

#[async_trait::async_trait]
impl ListClient for FolderWalk {
    fn capabilities(&self) -> Capabilities {
        self.bucket.capabilities()
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        if request.delimited {
            return self.bucket.list_page(request).await;
        }
        let after = request.token.or(request.start_after);
        let start = after.map_or(0, |a| self.walk.partition_point(|k| components(k) <= components(a)));
        let mut keys = self.walk[start..].iter().filter(|k| k.starts_with(request.prefix));
        let objects: Vec<ObjectMeta> = keys
            .by_ref()
            .take(self.bucket.page)
            .map(|k| MemoryBucket::object(k))
            .collect();
        let next = keys.next().and(objects.last()).map(|o| o.key.clone());
        Ok(ListPage {
            objects,
            prefixes: Vec::new(),
            next,
        })
    }
}

/// A store whose one-level listings leave out a folder that holds only folders (no
/// object directly in it), as s3rver does; its flat listings are whole.
#[derive(Debug)]
pub struct DropsFolderOnly {
    /// The keys, in byte order.
    pub bucket: Arc<MemoryBucket>,
}

impl DropsFolderOnly {
    /// A store of `keys`, listed `page` entries at a time.
    pub fn new(keys: Vec<String>, page: usize) -> Arc<Self> {
        Arc::new(DropsFolderOnly {
            bucket: MemoryBucket::new(keys, page),
        })
    }
}

#[async_trait::async_trait]
impl ListClient for DropsFolderOnly {
    fn capabilities(&self) -> Capabilities {
        self.bucket.capabilities()
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        let mut page = self.bucket.list_page(request).await?;
        let keys = &self.bucket.keys;
        page.prefixes.retain(|p| {
            keys.iter()
                .any(|k| k.starts_with(p.as_str()) && !k[p.len()..].contains('/'))
        });
        Ok(page)
    }
}
