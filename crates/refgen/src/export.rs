//! Downloading every file of a batch (a job's output, or an input batch) into a
//! folder, resumably.
//!
//! A multipart batch (a job's output) goes part by part into a subfolder per
//! part, as `inference-cli rf-cloud data-staging export-batch` lays it out; a
//! simple or sharded batch goes straight into the folder. Each file is streamed
//! into a hidden temporary file beside its target and renamed into place once
//! whole, so a file that exists under its final name is complete: running the
//! export again skips it (unless `overwrite`). Listing pages are fetched one at a
//! time and each page's files are downloaded a few at once, so memory does not
//! grow with the batch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::stream::{self, StreamExt, TryStreamExt};
use refgen_core::writer::TargetFile;
use refgen_roboflow::{Client, FileMetadata};
use serde::{Deserialize, Serialize};

use crate::Error;

/// How an export runs.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Only these parts of a multipart batch (all when empty).
    pub parts: Vec<String>,
    /// Download files that are already there again.
    pub overwrite: bool,
    /// Downloads at once.
    pub concurrency: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            parts: Vec::new(),
            overwrite: false,
            concurrency: 8,
        }
    }
}

/// Counts kept up to date while an export runs (for a progress display).
#[derive(Debug, Default)]
pub struct ExportProgress {
    /// Files in the batch, once known (the batch's count; 0 until then).
    pub total: AtomicU64,
    /// Files done: downloaded or skipped.
    pub done: AtomicU64,
    /// Bytes downloaded.
    pub bytes: AtomicU64,
}

/// What an export did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExportSummary {
    /// The batch.
    pub batch_id: String,
    /// Its type (`multipart-batch`, `simple-batch`, …).
    pub batch_type: String,
    /// Where the files went.
    pub dir: PathBuf,
    /// Files listed.
    pub files: u64,
    /// Files downloaded by this run.
    pub downloaded: u64,
    /// Files already there, left as they were.
    pub skipped: u64,
    /// Bytes downloaded by this run.
    pub bytes: u64,
    /// Every file of the batch, relative to `dir`.
    pub paths: Vec<PathBuf>,
}

/// Downloads every file of `batch_id` into `dir` (see the module doc).
///
/// ```no_run
/// use refgen::export::{ExportOptions, export_batch};
///
/// # async fn go() -> Result<(), refgen::Error> {
/// let (client, workspace) = refgen::api::ApiOptions::default().connect().await?;
/// let options = ExportOptions::default();
/// let summary = export_batch(&client, &workspace, "my-batch", "out".as_ref(), &options, None).await?;
/// println!("{} files", summary.files);
/// # Ok(())
/// # }
/// ```
pub async fn export_batch(
    client: &Client,
    workspace: &str,
    batch_id: &str,
    dir: &Path,
    options: &ExportOptions,
    progress: Option<Arc<ExportProgress>>,
) -> Result<ExportSummary, Error> {
    let progress = progress.unwrap_or_default();
    let batch = client.batch(workspace, batch_id).await?;
    let parts: Vec<Option<String>> = if batch.is_multipart() {
        let all = client.batch_parts(workspace, batch_id).await?;
        let unknown: Vec<&String> = options
            .parts
            .iter()
            .filter(|p| !all.iter().any(|a| &a.name == *p))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::Export(format!(
                "batch `{batch_id}` has no part named {} (its parts: {})",
                unknown.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "),
                all.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        all.into_iter()
            .map(|p| p.name)
            .filter(|p| options.parts.is_empty() || options.parts.contains(p))
            .map(Some)
            .collect()
    } else if !options.parts.is_empty() {
        return Err(Error::Export(format!(
            "batch `{batch_id}` is a {}, which has no parts to choose from",
            batch.batch_type
        )));
    } else {
        vec![None]
    };
    if let Ok(count) = client.batch_count(workspace, batch_id).await {
        progress.total.store(count, Ordering::Relaxed);
    }
    let mut summary = ExportSummary {
        batch_id: batch_id.to_owned(),
        batch_type: batch.batch_type.clone(),
        dir: dir.to_owned(),
        ..ExportSummary::default()
    };
    for part in parts {
        let folder = match &part {
            Some(name) => dir.join(safe_name(name).ok_or_else(|| {
                Error::Export(format!(
                    "batch `{batch_id}` has a part named `{name}`, which is not a folder name"
                ))
            })?),
            None => dir.to_owned(),
        };
        create_dir(&folder)?;
        // Names already used in this folder by this run: a second file of the same
        // name (from another shard) gets its shard id in front instead of replacing it.
        let mut used = HashSet::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .files_page(workspace, batch_id, part.as_deref(), token.as_deref())
                .await?;
            let next = page.next_after(token.as_deref());
            let mut jobs = Vec::with_capacity(page.items.len());
            for file in page.items {
                let Some(name) = target_name(&file, &mut used) else {
                    tracing::warn!(
                        "skipped a file of batch `{batch_id}` named `{}`: not a file name",
                        file.file_name
                    );
                    continue;
                };
                let relative = match &part {
                    Some(p) => PathBuf::from(safe_name(p).unwrap_or_default()).join(&name),
                    None => PathBuf::from(&name),
                };
                summary.paths.push(relative);
                jobs.push((file, folder.join(name)));
            }
            summary.files += jobs.len() as u64;
            let results: Vec<Option<u64>> = stream::iter(jobs)
                .map(|(file, target)| {
                    let progress = Arc::clone(&progress);
                    async move {
                        let got = fetch(client, &file, &target, options.overwrite).await;
                        if let Ok(bytes) = &got {
                            progress.done.fetch_add(1, Ordering::Relaxed);
                            progress.bytes.fetch_add(bytes.unwrap_or(0), Ordering::Relaxed);
                        }
                        got
                    }
                })
                .buffered(options.concurrency.max(1))
                .try_collect()
                .await?;
            for result in results {
                match result {
                    Some(bytes) => {
                        summary.downloaded += 1;
                        summary.bytes += bytes;
                    }
                    None => summary.skipped += 1,
                }
            }
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    Ok(summary)
}

/// Downloads one file unless it is there already: the bytes downloaded, or none
/// when skipped. The file is written under the target rules of every file refgen
/// writes ([`TargetFile`]): a download lands in a temporary file that replaces the
/// target only when whole (also when this download is dropped because another
/// one failed, nothing partial is left), a symlink is followed, a device or FIFO
/// is written in place, a read-only file is refused.
async fn fetch(client: &Client, file: &FileMetadata, target: &Path, overwrite: bool) -> Result<Option<u64>, Error> {
    if !overwrite && target.is_file() {
        return Ok(None);
    }
    let mut out = TargetFile::create(target)?;
    let download = |path: std::path::PathBuf| async move {
        client
            .download_to(&file.download_url, &path)
            .await
            .map_err(|e| Error::Export(format!("cannot download `{}`: {e}", file.file_name)))
    };
    let bytes = match out.staging_path() {
        Some(staged) => {
            download(staged.to_owned()).await?;
            std::fs::metadata(staged)
                .map_err(|source| Error::Io {
                    path: staged.to_owned(),
                    source,
                })?
                .len()
        }
        None => {
            // A special file takes the bytes once they are all here.
            let folder = target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let temp = tempfile::Builder::new()
                .prefix(".refgen-")
                .suffix(".partial")
                .tempfile_in(folder)
                .map_err(|source| Error::Io {
                    path: folder.to_owned(),
                    source,
                })?
                .into_temp_path();
            download(temp.to_path_buf()).await?;
            out.fill_from(&temp)?
        }
    };
    out.commit()?;
    Ok(Some(bytes))
}

fn create_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })
}

/// The last segment of a name the service gave, if it is a usable file name:
/// nothing is written outside the export folder.
fn safe_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    (!last.is_empty() && last != "." && last != ".." && !last.contains('\0')).then(|| last.to_owned())
}

/// The name a file is saved under in its folder, unique within the run.
fn target_name(file: &FileMetadata, used: &mut HashSet<String>) -> Option<String> {
    let name = safe_name(&file.file_name)?;
    if used.insert(name.clone()) {
        return Some(name);
    }
    let prefix = file.shard_id.as_deref().and_then(safe_name);
    let mut n = 1u64;
    loop {
        let candidate = match &prefix {
            Some(shard) if n == 1 => format!("{shard}__{name}"),
            _ => format!("{n}__{name}"),
        };
        if used.insert(candidate.clone()) {
            return Some(candidate);
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, shard: Option<&str>) -> FileMetadata {
        FileMetadata {
            download_url: "https://x/y".into(),
            file_name: name.into(),
            part_name: None,
            shard_id: shard.map(str::to_owned),
            content_type: None,
        }
    }

    #[test]
    fn names_stay_in_the_folder_and_repeats_get_the_shard_in_front() {
        let mut used = HashSet::new();
        assert_eq!(
            target_name(&file("a/b/../r.jsonl", None), &mut used).as_deref(),
            Some("r.jsonl")
        );
        assert_eq!(target_name(&file("../..", None), &mut used), None);
        assert_eq!(target_name(&file("x/", None), &mut used), None);
        assert_eq!(
            target_name(&file("r.jsonl", Some("s7")), &mut used).as_deref(),
            Some("s7__r.jsonl")
        );
        assert_eq!(
            target_name(&file("r.jsonl", Some("s7")), &mut used).as_deref(),
            Some("2__r.jsonl")
        );
    }
}
