//! A workspace's batches: listed, or one shown whole (its count, shards and
//! parts), as library calls returning plain data.

use refgen_roboflow::{Batch, BatchPart, Client, Shard, collect_pages};
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
