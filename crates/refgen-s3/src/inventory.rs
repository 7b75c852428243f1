//! S3 Inventory: the report's manifest, and how its data files are laid out.
//!
//! A report is a dated folder of the inventory configuration's destination
//! (`s3://DEST/SRC/CONFIG/2026-11-30T01-00Z/`) holding `manifest.json` and, once
//! the report is complete, `manifest.checksum` (the MD5 of the manifest, in hex).
//! The manifest names the source bucket, the format (CSV, ORC or Parquet), the
//! columns (`fileSchema`) and the data files with their sizes. CSV files are gzip,
//! without a header row, columns in `fileSchema` order, keys URL-encoded form-style;
//! Parquet keys are raw, columns named in snake case (`key`, `is_latest`, …).

use md5::{Digest, Md5};
use refgen_core::Error;
use refgen_core::inventory::{FileFormat, KeyEncoding, Layout, Report};
use refgen_core::list::{ListClient, ListRequest};
use refgen_http::Attempt;
use serde::Deserialize;

use crate::S3Store;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    source_bucket: String,
    file_format: String,
    #[serde(default)]
    file_schema: String,
    files: Vec<DataFile>,
}

#[derive(Debug, Deserialize)]
struct DataFile {
    key: String,
    size: Option<u64>,
}

fn invalid(file: &str, reason: impl Into<String>) -> Error {
    Error::Inventory {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

/// Reads the report at `location` in this (the destination) bucket: a
/// `…/manifest.json`, or the configuration's folder, where the newest dated report
/// whose `manifest.checksum` is present is taken. The manifest's MD5 is checked
/// against its checksum, and its source bucket must be `source_bucket`.
pub async fn open_report(store: &S3Store, location: &str, source_bucket: &str) -> Result<Report, Error> {
    let dir = tempfile::tempdir().map_err(|e| invalid(location, format!("no temporary folder: {e}")))?;
    let manifest_key = if location.ends_with("manifest.json") {
        location.to_owned()
    } else {
        newest_complete_report(store, location, dir.path()).await?
    };
    let shown = format!("s3://{}/{manifest_key}", store.bucket());
    let folder = manifest_key.trim_end_matches("manifest.json");
    let manifest_path = dir.path().join("manifest.json");
    let checksum_path = dir.path().join("manifest.checksum");
    // The manifest and its checksum are read again together when they disagree: an
    // answer cut short (with a length that matches the cut) reads as a changed manifest.
    let read = store
        .retry
        .retry(&format!("reading {shown}"), |_| async {
            store
                .get_file(&manifest_key, &manifest_path, None)
                .await
                .map_err(Attempt::Fail)?;
            if let Err(e) = store
                .get_file(&format!("{folder}manifest.checksum"), &checksum_path, None)
                .await
            {
                return Err(Attempt::Fail(invalid(
                    &shown,
                    format!("the report is incomplete: its manifest.checksum cannot be read (S3 writes it last): {e}"),
                )));
            }
            let bytes = std::fs::read(&manifest_path).map_err(|e| Attempt::Fail(invalid(&shown, e.to_string())))?;
            let want =
                std::fs::read_to_string(&checksum_path).map_err(|e| Attempt::Fail(invalid(&shown, e.to_string())))?;
            let got = Md5::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>();
            if want.trim().eq_ignore_ascii_case(&got) {
                Ok(bytes)
            } else {
                let reason = format!("its MD5 is {got}, not the {} its manifest.checksum says", want.trim());
                Err(Attempt::Retry {
                    error: invalid(&shown, reason.clone()),
                    after: None,
                    reason,
                })
            }
        })
        .await;
    let bytes = read.map_err(|exhausted| exhausted.error)?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| invalid(&shown, format!("not an S3 Inventory manifest: {e}")))?;
    if manifest.source_bucket != source_bucket {
        return Err(invalid(
            &shown,
            format!(
                "it lists the bucket `{}`, not the source's `{source_bucket}`",
                manifest.source_bucket
            ),
        ));
    }
    let columns: Vec<String> = manifest
        .file_schema
        .split(',')
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    let archived_classes = vec!["GLACIER".to_owned(), "DEEP_ARCHIVE".to_owned()];
    let (format, layout) = match manifest.file_format.to_ascii_uppercase().as_str() {
        "CSV" => (
            FileFormat::Csv {
                gzip: true,
                header: false,
            },
            Layout {
                columns,
                key: "Key".into(),
                size: Some("Size".into()),
                latest: Some("IsLatest".into()),
                delete_marker: Some("IsDeleteMarker".into()),
                class: Some("StorageClass".into()),
                archived_classes,
                // Read only when versions are pinned (the run clears it otherwise).
                version: Some("VersionId".into()),
                customer_key: Some(("EncryptionStatus".into(), "SSE-C".into())),
                key_encoding: KeyEncoding::Form,
                container_in_key: false,
                unique_keys: false,
            },
        ),
        // Parquet and ORC reports name their columns in snake case and hold raw keys.
        binary @ ("PARQUET" | "ORC") => (
            if binary == "ORC" {
                FileFormat::Orc
            } else {
                FileFormat::Parquet
            },
            Layout {
                columns: Vec::new(),
                key: "key".into(),
                size: Some("size".into()),
                latest: Some("is_latest".into()),
                delete_marker: Some("is_delete_marker".into()),
                class: Some("storage_class".into()),
                archived_classes,
                version: Some("version_id".into()),
                customer_key: Some(("encryption_status".into(), "SSE-C".into())),
                key_encoding: KeyEncoding::Raw,
                container_in_key: false,
                unique_keys: false,
            },
        ),
        other => {
            return Err(invalid(
                &shown,
                format!("its format is {other}; refgen reads CSV, ORC and Parquet reports"),
            ));
        }
    };
    Ok(Report {
        files: manifest.files.into_iter().map(|f| (f.key, f.size)).collect(),
        format,
        layout,
        name: shown,
    })
}

/// The newest dated report under the configuration folder `location` whose
/// `manifest.checksum` is present (dated folders sort as their dates do).
async fn newest_complete_report(store: &S3Store, location: &str, scratch: &std::path::Path) -> Result<String, Error> {
    let folder = if location.is_empty() || location.ends_with('/') {
        location.to_owned()
    } else {
        format!("{location}/")
    };
    let mut dated = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store
            .list_page(ListRequest {
                prefix: &folder,
                start_after: None,
                delimited: true,
                token: token.as_deref(),
            })
            .await?;
        dated.extend(
            page.prefixes
                .iter()
                .filter(|p| p[folder.len()..].starts_with(|c: char| c.is_ascii_digit()))
                .cloned(),
        );
        match page.next {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => break,
        }
    }
    dated.sort();
    for report in dated.iter().rev() {
        let probe = scratch.join("probe");
        if store
            .get_file(&format!("{report}manifest.checksum"), &probe, None)
            .await
            .is_ok()
        {
            return Ok(format!("{report}manifest.json"));
        }
    }
    Err(invalid(
        &format!("s3://{}/{folder}", store.bucket()),
        if dated.is_empty() {
            "no dated report in this folder".to_owned()
        } else {
            format!(
                "none of its {} dated reports is complete (no manifest.checksum)",
                dated.len()
            )
        },
    ))
}
