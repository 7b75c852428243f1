//! Which references of a batch failed to ingest, and why; and a references file
//! to submit them again.
//!
//! The service reports ingest progress per shard (`GET …/batches/{id}/shards`,
//! what `inference-cli data-staging list-ingest-details` prints). A shard's
//! `statusMetadata` is free form; refgen reads from it, when present, a list of
//! failed files shaped like the files-status webhook's `failed_files`
//! (`[{"type", "file_name", "reason"}]`, camelCase spellings accepted too), and
//! for a shard whose `statusType` says error without such a list, one failure
//! for the whole shard with the reason it gives. When the original references
//! file is given, every name in it that the batch's own listing
//! (`GET …/batches/{id}/list`) does not hold is reported as well (`not-in-batch`):
//! that catches failures the shards do not name.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use refgen_core::writer::TargetFile;
use refgen_roboflow::{Client, Shard};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use refgen_core::writer::OutputTarget;

use crate::Error;
use crate::api::ApiOptions;
use crate::generate::{GenerateEvent, Output, Plan};
use crate::store::StoreOptions;

/// One failure: a reference (or a whole shard) that did not make it into the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestFailure {
    /// The batch.
    pub batch_id: String,
    /// The shard that reported it; none for a name found missing from the batch.
    pub shard_id: Option<String>,
    /// The reference's name; none when a whole shard failed without naming its files.
    pub name: Option<String>,
    /// The kind the service gave (or `shard-error`, `not-in-batch`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Why, in the service's words.
    pub reason: String,
}

/// The failures the batch's shards report.
pub async fn shard_failures(client: &Client, workspace: &str, batch_id: &str) -> Result<Vec<IngestFailure>, Error> {
    let shards = client.shards(workspace, batch_id).await?;
    Ok(shards.iter().flat_map(|s| failures_of(batch_id, s)).collect())
}

/// The failures one shard reports (see the module doc).
pub fn failures_of(batch_id: &str, shard: &Shard) -> Vec<IngestFailure> {
    let meta = shard.status_metadata.clone().unwrap_or(Value::Null);
    let text = |v: &Value, keys: &[&str]| {
        keys.iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let listed = ["failed_files", "failedFiles", "failures"]
        .iter()
        .find_map(|k| meta.get(*k).and_then(Value::as_array));
    if let Some(files) = listed
        && !files.is_empty()
    {
        return files
            .iter()
            .map(|f| IngestFailure {
                batch_id: batch_id.to_owned(),
                shard_id: Some(shard.shard_id.clone()),
                name: text(f, &["file_name", "fileName", "name"]),
                kind: text(f, &["type"]).unwrap_or_else(|| "failed".to_owned()),
                reason: text(f, &["reason", "error", "message"]).unwrap_or_default(),
            })
            .collect();
    }
    if shard.failed() {
        return vec![IngestFailure {
            batch_id: batch_id.to_owned(),
            shard_id: Some(shard.shard_id.clone()),
            name: None,
            kind: "shard-error".to_owned(),
            reason: text(&meta, &["reason", "error", "message", "details"]).unwrap_or_else(|| {
                format!(
                    "shard status {} ({}), {} objects",
                    shard.status_name, shard.status_type, shard.objects
                )
            }),
        }];
    }
    Vec::new()
}

/// Every name of the references file at `references` that the batch's listing
/// does not hold and `known` does not already name.
pub async fn missing_from_batch(
    client: &Client,
    workspace: &str,
    batch_id: &str,
    references: &Path,
    known: &HashSet<String>,
) -> Result<Vec<IngestFailure>, Error> {
    // The batch's names, a page at a time: about a name's length per file.
    let mut held = HashSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = client.files_page(workspace, batch_id, None, token.as_deref()).await?;
        let next = page.next_after(token.as_deref());
        held.extend(page.items.into_iter().map(|f| f.file_name));
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let mut missing = Vec::new();
    crate::references::for_each(references, |line, _| {
        if !held.contains(&line.name) && !known.contains(&line.name) {
            missing.push(IngestFailure {
                batch_id: batch_id.to_owned(),
                shard_id: None,
                name: Some(line.name.clone()),
                kind: "not-in-batch".to_owned(),
                reason: "the references file names it, but the batch holds no file of that name".to_owned(),
            });
        }
        Ok(())
    })?;
    Ok(missing)
}

/// What [`write_retry_file`] wrote.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RetryFile {
    /// Where.
    pub path: PathBuf,
    /// References written.
    pub references: u64,
    /// Failed names that `from` does not hold (no longer in the source, when it
    /// was listed again).
    pub not_found: Vec<String>,
}

/// Writes the lines of `from` whose names are in `names` to `file`, a target
/// opened (and so checked) before the run's requests under the rules of every
/// file refgen writes ([`TargetFile`]): a regular file is replaced atomically
/// when whole, a device or FIFO is written in place, a symlink is followed, a
/// read-only file is refused.
pub fn write_retry_file(from: &Path, names: &HashSet<String>, mut file: TargetFile) -> Result<RetryFile, Error> {
    let target = file.path().to_owned();
    let failed = |source| {
        Error::Core(refgen_core::Error::Output {
            path: target.clone(),
            source,
        })
    };
    let mut written = HashSet::new();
    {
        let mut out = std::io::BufWriter::new(&mut file);
        crate::references::for_each(from, |line, raw| {
            if names.contains(&line.name) && written.insert(line.name.clone()) {
                writeln!(out, "{}", raw.text).map_err(failed)?;
            }
            Ok(())
        })?;
        out.flush().map_err(failed)?;
    }
    file.commit()?;
    let mut not_found: Vec<String> = names.difference(&written).cloned().collect();
    not_found.sort();
    Ok(RetryFile {
        path: target,
        references: written.len() as u64,
        not_found,
    })
}

/// What `batches failures` asks: the batch, what it was made from, and where
/// to write the failed references again.
#[derive(Debug)]
pub struct FailuresOptions {
    /// The batch.
    pub batch_id: String,
    /// The references file the batch was made from.
    pub references: Option<PathBuf>,
    /// Or the source to list and sign again (the same selection and naming).
    pub source: Option<Box<Plan>>,
    /// The store options of the source.
    pub store: StoreOptions,
    /// Where the failed references go, opened (and so checked) before any request.
    pub retry_file: Option<TargetFile>,
    /// How to reach Roboflow.
    pub api: ApiOptions,
}

/// What `batches failures` found.
#[derive(Debug, Clone, Default)]
pub struct FailuresReport {
    /// Every failure: named files, and failed shards that name none.
    pub failures: Vec<IngestFailure>,
    /// The retry file written, if one was asked for (and could be: it needs
    /// the references or the source).
    pub retry_file: Option<RetryFile>,
    /// Whether the references were made again from the source.
    pub signed_again: bool,
    /// Whether the failures were compared with the references (so every
    /// missing name was found).
    pub compared: bool,
}

/// Finds which references of a batch failed to ingest (see the module doc), and
/// writes the retry file. Listing the source comes first: a bad source or
/// selection fails before any Roboflow call. `events` hears the listing's events.
///
/// ```no_run
/// use refgen::failures::FailuresOptions;
///
/// # async fn go() -> Result<(), refgen::Error> {
/// let retry_file = refgen::core::writer::TargetFile::create("retry.jsonl".as_ref())?;
/// let options = FailuresOptions {
///     batch_id: "my-batch".into(),
///     references: Some("refs.jsonl".into()),
///     source: None,
///     store: Default::default(),
///     retry_file: Some(retry_file),
///     api: Default::default(),
/// };
/// let found = refgen::failures::run(options, &mut |_| {}).await?;
/// println!("{} failed", found.failures.len());
/// # Ok(())
/// # }
/// ```
pub async fn run(
    options: FailuresOptions,
    events: &mut (dyn FnMut(GenerateEvent) + Send),
) -> Result<FailuresReport, Error> {
    refgen_roboflow::validate_batch_id(&options.batch_id)?;
    let temp = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let regenerated = match options.source {
        Some(mut plan) => {
            let path = temp.path().join("references.jsonl");
            let output = Output::Target(OutputTarget::File(path.clone()));
            crate::generate::run(&mut plan, &options.store, output, events).await?;
            Some(path)
        }
        None => None,
    };
    let original = regenerated.as_deref().or(options.references.as_deref());
    let (client, workspace) = options.api.connect().await?;
    let batch_id = &options.batch_id;
    let mut failures = shard_failures(&client, &workspace, batch_id).await?;
    if let Some(original) = original {
        let named: HashSet<String> = failures.iter().filter_map(|f| f.name.clone()).collect();
        let missing = missing_from_batch(&client, &workspace, batch_id, original, &named).await?;
        failures.extend(missing);
    }
    let retry_file = match (options.retry_file, original) {
        (Some(out), Some(original)) => {
            let names: HashSet<String> = failures.iter().filter_map(|f| f.name.clone()).collect();
            Some(write_retry_file(original, &names, out)?)
        }
        _ => None,
    };
    Ok(FailuresReport {
        failures,
        retry_file,
        signed_again: regenerated.is_some(),
        compared: original.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shard(status_type: &str, meta: Option<Value>) -> Shard {
        serde_json::from_value(json!({"shardId": "s1", "statusName": "x", "statusType": status_type,
            "shardObjectsCount": 3, "statusMetadata": meta}))
        .expect("shard")
    }

    #[test]
    fn failed_files_are_read_in_either_spelling_and_a_failed_shard_counts_once() {
        let listed = shard(
            "info",
            Some(json!({"failed_files": [{"type": "download-error", "file_name": "a.jpg", "reason": "404"}]})),
        );
        let got = failures_of("b", &listed);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].name.as_deref(), got[0].kind.as_str()),
            (Some("a.jpg"), "download-error")
        );
        let camel = shard(
            "info",
            Some(json!({"failedFiles": [{"type": "t", "fileName": "b.jpg", "reason": "r"}]})),
        );
        assert_eq!(failures_of("b", &camel)[0].name.as_deref(), Some("b.jpg"));
        let whole = shard("error", Some(json!({"reason": "archive corrupted"})));
        let got = failures_of("b", &whole);
        assert_eq!(
            (got[0].name.clone(), got[0].reason.as_str()),
            (None, "archive corrupted")
        );
        assert!(failures_of("b", &shard("info", None)).is_empty());
    }
}
