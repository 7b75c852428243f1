//! Planning: splitting a prefix into parts at its folders, breadth first.
//!
//! Each round lists one level of every prefix still in the plan (one-level,
//! delimited listings) and puts its objects and sub-prefixes in its place, in key
//! order. Rounds go on while there are fewer prefixes than wanted and the last
//! round went somewhere: a level that holds one folder (a bucket with one
//! top-level folder, a chain `a/b/c/d/e/`, a few files beside one big folder)
//! still goes deeper, so the split does not depend on where the listing starts.
//! A lone prefix is checked for a chain of single folders, which is gone down in
//! two round trips whatever its length (see [`expand_chain`]). Rounds that
//! multiply the prefixes are bounded by [`MAX_DEPTH`], rounds in all by
//! [`MAX_ROUNDS`].
//!
//! A level whose first page holds only files, with more pages to come, is flat:
//! one part, chunked later. A level with more than [`MAX_DIRECT_PAGES`] pages of
//! direct objects among its folders stays one part (it would hold them all in
//! memory). Level requests take the same permits as every other request.

use futures::{StreamExt, TryStreamExt, stream};

use super::{Context, LevelEntry, ListClientExt};
use crate::{Error, ObjectMeta};

/// How many rounds may multiply the prefixes (each one a level deeper).
pub const MAX_DEPTH: usize = 4;
/// How many rounds there may be in all, single-folder levels included.
pub const MAX_ROUNDS: usize = 16;
/// A level with more pages of direct objects than this is one part, not split.
pub const MAX_DIRECT_PAGES: usize = 2;

/// One piece of the plan, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    /// Objects found while planning, handed on as they are.
    Objects(Vec<ObjectMeta>),
    /// Everything under this prefix, listed as one part.
    Prefix(String),
    /// A prefix whose first page (held here) is full and holds no folders: the
    /// rest goes in chunks, with no need to list that page again.
    Flat { prefix: String, first: Vec<ObjectMeta> },
}

impl Part {
    fn is_prefix(&self) -> bool {
        matches!(self, Part::Prefix(_))
    }
}

/// Splits `prefix` into parts, breadth first, until there are at least `want`.
/// `answered` is told once the first level has answered, unless the plan is
/// already the prefix itself (unsplit or flat), which covers every key. `hint`:
/// the keys of the prefix's first flat page, on their way once told, for the
/// first chain of single folders (see [`expand_chain`]).
pub(super) async fn plan(
    context: &Context,
    prefix: &str,
    want: usize,
    mut answered: Option<tokio::sync::oneshot::Sender<()>>,
    mut hint: Option<tokio::sync::oneshot::Receiver<Vec<String>>>,
) -> Result<Vec<Part>, Error> {
    let mut parts = vec![Part::Prefix(prefix.to_owned())];
    let mut depth = 0;
    for round in 0..MAX_ROUNDS {
        let prefixes = parts.iter().filter(|p| p.is_prefix()).count();
        if prefixes == 0 || prefixes >= want || depth >= MAX_DEPTH {
            break;
        }
        // Every prefix of this round, a few at a time (each request takes a permit).
        // A lone prefix that a level gave (one folder where a split was hoped for)
        // may head a chain of single folders: it is gone down in one go. Not the
        // listing's own prefix: its level alone is usually enough.
        let lone = prefixes == 1 && round > 0;
        let mut hint = if lone { hint.take() } else { None };
        let expanded: Vec<(bool, Vec<Part>)> = stream::iter(parts)
            .map(|part| {
                let hint = hint.take();
                async move {
                    match part {
                        Part::Prefix(p) if lone => expand_chain(context, p, hint).await,
                        Part::Prefix(p) => expand(context, p).await,
                        other => Ok((false, vec![other])),
                    }
                }
            })
            .buffered(want)
            .try_collect()
            .await?;
        let went_deeper = expanded.iter().any(|(deeper, _)| *deeper);
        parts = expanded.into_iter().flat_map(|(_, parts)| parts).collect();
        let whole = matches!(&parts[..], [Part::Prefix(p)] | [Part::Flat { prefix: p, .. }] if p == prefix);
        if let Some(tell) = answered.take()
            && !whole
        {
            let _ = tell.send(());
        }
        if parts.iter().filter(|p| p.is_prefix()).count() > prefixes {
            depth += 1;
        }
        if !went_deeper {
            break;
        }
    }
    Ok(parts)
}

/// The first key of `flat` (a flat listing's page of the planned prefix) that the
/// plan does not cover: not among its objects and under none of its parts. None
/// when the plan holds every key the flat page does.
pub(super) fn uncovered<'a>(parts: &[Part], flat: &'a [ObjectMeta]) -> Option<&'a str> {
    let objects: std::collections::HashSet<&str> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Objects(v) => Some(v.iter().map(|o| o.key.as_str())),
            _ => None,
        })
        .flatten()
        .collect();
    let prefixes: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Prefix(prefix) | Part::Flat { prefix, .. } => Some(prefix.as_str()),
            Part::Objects(_) => None,
        })
        .collect();
    flat.iter()
        .map(|o| o.key.as_str())
        .find(|key| !objects.contains(key) && !prefixes.iter().any(|p| key.starts_with(p)))
}

/// [`expand`] for a prefix that may head a chain of single folders (`a/` holding
/// only `a/b/`, holding only `a/b/c/`…): its first key, found beside its level,
/// names the folders the chain can go through, and their levels are listed all
/// at once. So a chain costs two round trips, not one per level. The first key
/// comes from `hint` (the listing's first flat page, asked for once the first
/// level has answered, which holds it when it holds any key under `prefix`), and
/// else from a request of its own.
async fn expand_chain(
    context: &Context,
    prefix: String,
    hint: Option<tokio::sync::oneshot::Receiver<Vec<String>>>,
) -> Result<(bool, Vec<Part>), Error> {
    let first_key = async {
        let hinted = match hint {
            Some(hint) => hint
                .await
                .ok()
                .and_then(|keys| keys.into_iter().find(|k| k.starts_with(&prefix))),
            None => None,
        };
        if hinted.is_some() {
            return Ok(hinted);
        }
        let _permit = context.permit().await;
        let (page, _) = context.client.first_page(&prefix).await?;
        Ok::<_, Error>(page.into_iter().next().map(|o| o.key))
    };
    let (level, first_key) = futures::try_join!(expand(context, prefix.clone()), first_key)?;
    let Some(key) = first_key else { return Ok(level) };
    let folders = folders_to(&prefix, &key);
    if !matches!(level.1.as_slice(), [Part::Prefix(only)] if folders.first() == Some(only)) {
        return Ok(level);
    }
    let levels: Vec<(bool, Vec<Part>)> = stream::iter(folders.iter().cloned())
        .map(|folder| expand(context, folder))
        .buffered(folders.len().max(1))
        .try_collect()
        .await?;
    Ok(down(level, levels.into_iter(), &folders))
}

/// The folders between `prefix` and `key`'s own folder, in order.
fn folders_to(prefix: &str, key: &str) -> Vec<String> {
    key[prefix.len()..]
        .match_indices('/')
        .map(|(i, _)| key[..prefix.len() + i + 1].to_owned())
        .take(MAX_ROUNDS)
        .collect()
}

/// Down a chain from `level` (the prefix's), through `levels` (those of
/// `folders`, in order), while each level holds only the next folder: the
/// deepest such level's parts.
fn down(
    level: (bool, Vec<Part>),
    levels: impl Iterator<Item = (bool, Vec<Part>)>,
    folders: &[String],
) -> (bool, Vec<Part>) {
    let mut deepest = level;
    for (level, folder) in levels.zip(folders) {
        if !matches!(deepest.1.as_slice(), [Part::Prefix(p)] if p == folder) {
            break;
        }
        deepest = (true, level.1);
    }
    deepest
}

/// One level of `prefix`: its direct objects and sub-prefixes, in key order, and
/// `true`; or the prefix itself, unsplit, and `false`, when it holds too many
/// direct objects to keep.
async fn expand(context: &Context, prefix: String) -> Result<(bool, Vec<Part>), Error> {
    let client = &context.client;
    let mut level = client.list_level(&prefix);
    let page_len = context.capabilities.page_len;
    let mut parts = Vec::new();
    let (mut direct, mut first_page) = (0, true);
    while let Some(page) = context.next(&mut level).await.transpose()? {
        // (An empty page with more to come, which GCS may send, says nothing.)
        let starts_flat = std::mem::take(&mut first_page)
            && context.capabilities.start_after
            && page.more
            && !page.entries.is_empty()
            && page.entries.iter().all(|e| matches!(e, LevelEntry::Object(_)));
        if starts_flat {
            // A first page of files only, with more to come: a flat folder, or one
            // that starts flat. The page is handed on and the rest goes in chunks;
            // deciding on the first page rather than the second starts them a
            // round trip sooner. Folders further on are listed within the chunks,
            // and a tail the boundaries do not reach is cut again (see `chunk`).
            let first = page
                .entries
                .into_iter()
                .filter_map(|e| match e {
                    LevelEntry::Object(o) => Some(o),
                    LevelEntry::Prefix(_) => None,
                })
                .collect();
            return Ok((
                true,
                vec![Part::Flat {
                    prefix: prefix.clone(),
                    first,
                }],
            ));
        }
        for entry in page.entries {
            match entry {
                LevelEntry::Object(o) => {
                    direct += 1;
                    if direct > MAX_DIRECT_PAGES * page_len {
                        return Ok((false, vec![Part::Prefix(prefix.clone())]));
                    }
                    match parts.last_mut() {
                        Some(Part::Objects(v)) => v.push(o),
                        _ => parts.push(Part::Objects(vec![o])),
                    }
                }
                LevelEntry::Prefix(p) => parts.push(Part::Prefix(p)),
            }
        }
    }
    Ok((true, parts))
}
