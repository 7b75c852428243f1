//! A workspace's batches: listed, or one shown whole (its count, shards and
//! parts), as library calls returning plain data.

use refgen_roboflow::{Batch, BatchPart, Client, FileMetadata, Shard, collect_pages};
use serde::Serialize;

use crate::Error;

/// Up to `limit` batches of `workspace`, a page at a time.
pub async fn list(client: &Client, workspace: &str, limit: Option<usize>) -> Result<Vec<Batch>, Error> {
    Ok(collect_pages(limit.unwrap_or(usize::MAX), |token| async move {
        client.batches_page(workspace, token.as_deref()).await
    })
    .await?)
}

/// One batch, whole. Serialized, it is `refgen batches show --json`'s document
/// (with the workspace's name beside it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDetails {
    /// The batch.
    pub batch: Batch,
    /// Files in it.
    pub count: u64,
    /// Its ingestion shards.
    pub shards: Vec<Shard>,
    /// How many of them failed.
    pub failed_shards: usize,
    /// Its parts (a multipart batch's), else none.
    pub parts: Vec<BatchPart>,
}

/// The batch `batch_id` of `workspace`, with its count, shards and parts.
///
/// ```no_run
/// # async fn go() -> Result<(), refgen::Error> {
/// let (client, workspace) = refgen::api::ApiOptions::default().connect().await?;
/// let batch = refgen::batches::show(&client, &workspace, "my-batch").await?;
/// println!("{} files, {} failed shards", batch.count, batch.failed_shards);
/// # Ok(())
/// # }
/// ```
pub async fn show(client: &Client, workspace: &str, batch_id: &str) -> Result<BatchDetails, Error> {
    refgen_roboflow::validate_batch_id(batch_id)?;
    let batch = client.batch(workspace, batch_id).await?;
    let count = client.batch_count(workspace, batch_id).await?;
    let shards = client.shards(workspace, batch_id).await?;
    let failed_shards = shards.iter().filter(|s| s.failed()).count();
    let parts = if batch.is_multipart() {
        client.batch_parts(workspace, batch_id).await?
    } else {
        Vec::new()
    };
    Ok(BatchDetails {
        batch,
        count,
        shards,
        failed_shards,
        parts,
    })
}

/// Every file of the batch `batch_id`, page after page, handed to `each` as it
/// comes (so a batch of any size takes one page of memory): of `part` only when
/// given, else of every part of a multipart batch in turn, else of the batch.
/// Stops after `limit` files. Returns how many were handed over. Server text
/// (names, URLs) goes through the redaction step first.
pub async fn content(
    client: &Client,
    workspace: &str,
    batch_id: &str,
    part: Option<&str>,
    limit: Option<u64>,
    each: &mut (dyn FnMut(FileMetadata) -> Result<(), Error> + Send),
) -> Result<u64, Error> {
    refgen_roboflow::validate_batch_id(batch_id)?;
    let parts: Vec<Option<String>> = match part {
        Some(p) => vec![Some(p.to_owned())],
        None => {
            let batch = client.batch(workspace, batch_id).await?;
            if batch.is_multipart() {
                let parts = client.batch_parts(workspace, batch_id).await?;
                parts.into_iter().map(|p| Some(p.name)).collect()
            } else {
                vec![None]
            }
        }
    };
    let limit = limit.unwrap_or(u64::MAX);
    let mut handed = 0u64;
    for part in &parts {
        let mut token: Option<String> = None;
        loop {
            if handed >= limit {
                return Ok(handed);
            }
            let page = client
                .files_page(workspace, batch_id, part.as_deref(), token.as_deref())
                .await?;
            let next = page.next_after(token.as_deref());
            for file in page.items {
                if handed >= limit {
                    return Ok(handed);
                }
                let redact = |s: &str| refgen_core::redact::redact(s);
                each(FileMetadata {
                    download_url: redact(&file.download_url),
                    file_name: redact(&file.file_name),
                    part_name: file.part_name.as_deref().map(redact).or_else(|| part.clone()),
                    shard_id: file.shard_id.as_deref().map(redact),
                    content_type: file.content_type.as_deref().map(redact),
                })?;
                handed += 1;
            }
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    Ok(handed)
}
