//! GCS Storage Insights inventory reports.
//!
//! A report is one or more shard files (`CONFIG_SNAPSHOT_0.csv`, `…_1.csv` or
//! `.parquet`) beside a manifest (`CONFIG_SNAPSHOT_manifest.json`) that names them
//! (`report_shards_file_names`) and holds the report's configuration (whether CSV
//! files have a header row, and the metadata fields in their order). `--inventory`
//! takes the manifest, or a glob of the shard files (then CSV files are taken to
//! have their header row, GCS's default). The column `name` is the object.

use globset::GlobBuilder;
use refgen_core::Error;
use refgen_core::inventory::{FileFormat, KeyEncoding, Layout, Report};
use refgen_core::list::{ListClient, ListRequest};
use serde::Deserialize;
use serde_json::Value;

use crate::GcsStore;

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    report_config: Value,
    report_shards_file_names: Vec<String>,
}

fn invalid(file: &str, reason: impl Into<String>) -> Error {
    Error::Inventory {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

/// Reads the report at `location` of this (the destination) bucket: its manifest
/// (`…_manifest.json`) or a glob of its shard files.
pub async fn open_report(store: &GcsStore, location: &str) -> Result<Report, Error> {
    let shown = format!("gs://{}/{location}", store.bucket_name());
    let (files, header, columns) = if location.ends_with("manifest.json") {
        let dir = tempfile::tempdir().map_err(|e| invalid(&shown, format!("no temporary folder: {e}")))?;
        let path = dir.path().join("manifest.json");
        store.get_file(location, &path, None).await?;
        let bytes = std::fs::read(&path).map_err(|e| invalid(&shown, e.to_string()))?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(&shown, format!("not a Storage Insights manifest: {e}")))?;
        let folder = location
            .rsplit_once('/')
            .map(|(f, _)| format!("{f}/"))
            .unwrap_or_default();
        let config = &manifest.report_config;
        let header = config["csv_options"]["header_required"].as_bool().unwrap_or(true);
        let columns: Vec<String> = config["object_metadata_report_options"]["metadata_fields"]
            .as_array()
            .map(|fields| fields.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let files = manifest
            .report_shards_file_names
            .iter()
            .map(|name| {
                if name.contains('/') {
                    name.clone()
                } else {
                    format!("{folder}{name}")
                }
            })
            .collect();
        (files, header, columns)
    } else {
        (shards_matching(store, location, &shown).await?, true, Vec::new())
    };
    let Some(first) = files.first() else {
        return Err(invalid(&shown, "the report has no shard file"));
    };
    let format = if first.ends_with(".parquet") {
        FileFormat::Parquet
    } else {
        FileFormat::Csv { gzip: false, header }
    };
    if !header && columns.is_empty() && matches!(format, FileFormat::Csv { .. }) {
        return Err(invalid(
            &shown,
            "its CSV files have no header row and the manifest names no fields",
        ));
    }
    Ok(Report {
        files: files.into_iter().map(|f| (f, None)).collect(),
        format,
        layout: Layout {
            columns,
            key: "name".into(),
            size: Some("size".into()),
            latest: None,
            delete_marker: None,
            class: None,
            // Every GCS class, Archive included, is read by a plain GET.
            archived_classes: Vec::new(),
            version: None,
            customer_key: None,
            key_encoding: KeyEncoding::Raw,
            container_in_key: false,
            unique_keys: false,
        },
        name: shown,
    })
}

/// The shard files a glob names, in key order.
async fn shards_matching(store: &GcsStore, pattern: &str, shown: &str) -> Result<Vec<String>, Error> {
    let (prefix, _) = refgen_core::filter::literal_prefix(pattern);
    let glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| invalid(shown, format!("not a glob: {e}")))?
        .compile_matcher();
    let mut files = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store
            .list_page(ListRequest {
                prefix: &prefix,
                start_after: None,
                delimited: false,
                token: token.as_deref(),
            })
            .await?;
        files.extend(
            page.objects
                .into_iter()
                .map(|o| o.key)
                .filter(|k| glob.is_match(k) && !k.ends_with("manifest.json")),
        );
        match page.next {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => break,
        }
    }
    if files.is_empty() {
        return Err(invalid(shown, "no shard file matches"));
    }
    Ok(files)
}
