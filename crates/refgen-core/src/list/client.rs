//! The one method a provider implements to be listed, and what is derived from it.
//!
//! A provider answers one request: "the page of `prefix` after this token",
//! optionally one level deep (delimited) and optionally starting after a key. What
//! it can do is data ([`Capabilities`]), read before any request, not found out by
//! trying. Everything the listing engine needs (the whole listing as a stream of
//! pages, a one-level listing merged in key order, the first page and whether more
//! follow) is derived from that one method by [`ListClientExt`], so every provider
//! paginates, merges and stops the same way.

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use super::paginate::{continues, paginate};
use crate::{Error, ObjectMeta};

/// A stream of listing pages, each in key order, pages in key order.
pub type PageStream<'a> = BoxStream<'a, Result<Vec<ObjectMeta>, Error>>;

/// Pages of a one-level listing, each in key order, pages in key order.
pub type LevelStream<'a> = BoxStream<'a, Result<LevelPage, Error>>;

/// One page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRequest<'a> {
    /// Only keys that start with this.
    pub prefix: &'a str,
    /// Only keys after this one (exclusive), on this page and every later page of
    /// the same listing; sent only when [`Capabilities::start_after`] is true.
    pub start_after: Option<&'a str>,
    /// One level only: the objects directly under `prefix`, and the sub-prefixes
    /// that end at the next `/` in place of the keys under them.
    pub delimited: bool,
    /// The continuation token of the page before; `None` for the first page.
    pub token: Option<&'a str>,
}

/// One page as the server sent it, once it parsed whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects, in key order.
    pub objects: Vec<ObjectMeta>,
    /// Sub-prefixes, in key order (delimited requests only).
    pub prefixes: Vec<String>,
    /// The token of the next page; `None` (or empty) on the last page.
    pub next: Option<String>,
}

impl ListPage {
    /// Whether more pages follow this one (a full page may be the last).
    pub fn more(&self) -> bool {
        continues(self.next.as_deref())
    }
}

/// What a provider's listing can do, as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// One-level (delimited) listings: lets a listing be split at its folders.
    pub delimiter: bool,
    /// "Start after a key" starts there on the server, so a key range costs what
    /// it holds: lets a flat folder be split into chunks.
    pub start_after: bool,
    /// The most keys one page holds (the server's page size).
    pub page_len: usize,
}

impl Capabilities {
    /// Delimited listings and "start after" on the server, pages of `page_len`:
    /// what S3, GCS and Azure all do.
    pub fn full(page_len: usize) -> Capabilities {
        Capabilities {
            delimiter: true,
            start_after: true,
            page_len,
        }
    }
}

/// One entry of a one-level (delimited) listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LevelEntry {
    /// An object directly at this level.
    Object(ObjectMeta),
    /// A sub-prefix ("folder"), ending with the delimiter.
    Prefix(String),
}

/// One page of a one-level listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelPage {
    /// Objects and sub-prefixes, merged in key order.
    pub entries: Vec<LevelEntry>,
    /// Whether more pages follow (a full page may be the last).
    pub more: bool,
}

/// Lists the objects of one bucket (or container), a page per call.
///
/// Keys come in lexicographic (byte) order, as S3, GCS and Azure list them; the
/// listing engine checks that where it relies on it.
#[async_trait::async_trait]
pub trait ListClient: Send + Sync {
    /// What this client's listing can do.
    fn capabilities(&self) -> Capabilities;

    /// One page. A page is returned only once it parsed whole: a body cut short
    /// must be an error (retried below this call), never a shorter last page.
    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error>;
}

/// The listings derived from [`ListClient::list_page`].
pub trait ListClientExt: ListClient {
    /// Every object under `prefix` (after `start_after`, if given), a page at a
    /// time. Where the client cannot start after a key on the server, the keys up
    /// to it are listed and dropped here; where it can, only the key itself is
    /// dropped (an inclusive start lists it).
    fn list<'a>(&'a self, prefix: &'a str, start_after: Option<&'a str>) -> PageStream<'a> {
        self.list_telling_more(prefix, start_after)
            .map_ok(|(page, _)| page)
            .boxed()
    }

    /// [`list`](ListClientExt::list), each page with whether more follow: a
    /// caller that holds a permit per request need not take one to learn that
    /// the listing has ended.
    fn list_telling_more<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
    ) -> BoxStream<'a, Result<(Vec<ObjectMeta>, bool), Error>> {
        let seeks = self.capabilities().start_after;
        paginate(move |token| async move {
            let request = ListRequest {
                prefix,
                start_after: start_after.filter(|_| seeks),
                delimited: false,
                token: token.as_deref(),
            };
            let mut page = self.list_page(request).await?;
            match start_after {
                // Only the key itself, which an inclusive start (GCS's
                // `startOffset`, Azure's `startFrom`) lists first: anything else
                // below it is the server's order, which the engine checks, not
                // hides. One comparison a page, not one per key.
                Some(after) if seeks && page.objects.first().is_some_and(|o| o.key == after) => {
                    page.objects.remove(0);
                }
                Some(_) if seeks => {}
                Some(after) => page.objects.retain(|o| o.key.as_str() > after),
                None => {}
            }
            let more = continues(page.next.as_deref());
            Ok(((page.objects, more), page.next))
        })
    }

    /// One level below `prefix`: objects and sub-prefixes merged in key order.
    /// Only for clients with [`Capabilities::delimiter`].
    fn list_level<'a>(&'a self, prefix: &'a str) -> LevelStream<'a> {
        paginate(move |token| async move {
            let request = ListRequest {
                prefix,
                start_after: None,
                delimited: true,
                token: token.as_deref(),
            };
            let page = self.list_page(request).await?;
            let more = page.more();
            Ok((merge_level(page.objects, page.prefixes, more), page.next))
        })
    }

    /// The first page under `prefix`, and whether more pages follow it (which a
    /// page stream only tells by asking for the next).
    fn first_page<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<(Vec<ObjectMeta>, bool), Error>> {
        Box::pin(async move {
            let request = ListRequest {
                prefix,
                start_after: None,
                delimited: false,
                token: None,
            };
            let page = self.list_page(request).await?;
            let more = page.more();
            Ok((page.objects, more))
        })
    }
}

impl<T: ListClient + ?Sized> ListClientExt for T {}

/// A one-level page from a delimited page's objects and prefixes (each sorted),
/// merged into key order; `more` when further pages follow.
pub fn merge_level(objects: Vec<ObjectMeta>, prefixes: Vec<String>, more: bool) -> LevelPage {
    let mut entries = Vec::with_capacity(objects.len() + prefixes.len());
    let (mut objects, mut prefixes) = (objects.into_iter().peekable(), prefixes.into_iter().peekable());
    loop {
        let take_object = match (objects.peek(), prefixes.peek()) {
            (Some(o), Some(p)) => o.key.as_str() < p.as_str(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return LevelPage { entries, more },
        };
        if take_object {
            entries.extend(objects.next().map(LevelEntry::Object));
        } else {
            entries.extend(prefixes.next().map(LevelEntry::Prefix));
        }
    }
}
