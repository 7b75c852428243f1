//! The two traits a storage provider implements.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::{Error, ObjectMeta};

/// A stream of listing pages, each in key order, pages in key order.
pub type PageStream<'a> = BoxStream<'a, Result<Vec<ObjectMeta>, Error>>;

/// A listing's first page, and whether more pages follow it.
pub type FirstPage<'a> = BoxFuture<'a, Result<(Vec<ObjectMeta>, bool), Error>>;

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

/// Pages of a one-level listing, each in key order, pages in key order.
pub type LevelStream<'a> = BoxStream<'a, Result<LevelPage, Error>>;

/// Lists the objects of one bucket (or container).
pub trait Lister: Send + Sync {
    /// Lists objects whose keys start with `prefix`, in lexicographic (byte) key
    /// order, one server page at a time. With `start_after`, the listing begins
    /// after that key, so a key space can be split into ranges listed apart.
    fn list<'a>(&'a self, prefix: &'a str, start_after: Option<&'a str>) -> PageStream<'a>;

    /// Lists one level below `prefix`: the objects directly under it and the
    /// sub-prefixes that end at the next `/`, merged in key order. Lets a listing
    /// be split into parts listed concurrently; `None` when the provider cannot.
    fn list_level<'a>(&'a self, prefix: &'a str) -> Option<LevelStream<'a>> {
        let _ = prefix;
        None
    }

    /// Whether `list` with `start_after` starts at that key on the server, so a
    /// range of keys costs what it holds (rather than a walk from the prefix's
    /// start). Lets a flat folder be listed in chunks, concurrently.
    fn seeks(&self) -> bool {
        false
    }

    /// The first page under `prefix` and whether the listing goes on after it,
    /// which a page stream only tells by asking for the next page. `None` when the
    /// provider cannot say.
    fn first_page<'a>(&'a self, prefix: &'a str) -> Option<FirstPage<'a>> {
        let _ = prefix;
        None
    }

    /// The most keys one listing page holds (the server's page size).
    fn page_len(&self) -> usize {
        1000
    }
}

/// Turns objects into signed GET URLs.
///
/// Signing works a page at a time: local signers loop over the page cheaply, and
/// signers that call a remote service can run the calls of a page concurrently.
#[async_trait::async_trait]
pub trait Signer: Send + Sync {
    /// The longest expiry the provider accepts for a signed URL.
    fn max_expiry(&self) -> Duration;

    /// Signs one GET URL per object, in the same order, each valid for `expires_in`.
    async fn sign_page(&self, objects: &[ObjectMeta], expires_in: Duration) -> Result<Vec<String>, Error>;
}

/// Uploads one file as an object (for the references file of a submission).
#[async_trait::async_trait]
pub trait Uploader: Send + Sync {
    /// Streams the file at `path` to `key`, with this content type.
    async fn upload_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), Error>;
}
