//! Azure Blob Inventory: a rule's manifest, and how its data files are laid out.
//!
//! A run of an inventory rule writes `<rule>-manifest.json` beside its data files
//! in the destination container: `files[{blob, size}]`, `ruleDefinition.format`
//! (`csv` or `parquet`), `ruleDefinition.schemaFields`, and `status` (only a
//! `Succeeded` report is whole). CSV files have a header row. A rule covers the
//! whole account, so `Name` is `container/blob`: only the source's container is
//! kept. Rows may repeat; one reference is made per blob.

use refgen_core::Error;
use refgen_core::inventory::{FileFormat, KeyEncoding, Layout, Report};
use serde::Deserialize;

use crate::AzureStore;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    files: Vec<DataFile>,
    rule_definition: RuleDefinition,
    status: String,
}

#[derive(Debug, Deserialize)]
struct DataFile {
    blob: String,
    size: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleDefinition {
    format: String,
    #[serde(default)]
    schema_fields: Vec<String>,
}

fn invalid(file: &str, reason: impl Into<String>) -> Error {
    Error::Inventory {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

/// Reads the report whose manifest is the blob `location` of this (the
/// destination) container, for the objects of `source_container`.
pub async fn open_report(store: &AzureStore, location: &str, source_container: &str) -> Result<Report, Error> {
    let shown = format!("{}/{}/{location}", store.endpoint(), store.container);
    if !location.ends_with("manifest.json") {
        return Err(invalid(&shown, "name the rule's <rule>-manifest.json"));
    }
    let dir = tempfile::tempdir().map_err(|e| invalid(&shown, format!("no temporary folder: {e}")))?;
    let path = dir.path().join("manifest.json");
    store.get_file(location, &path, None).await?;
    let bytes = std::fs::read(&path).map_err(|e| invalid(&shown, e.to_string()))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(&shown, format!("not an Azure Blob Inventory manifest: {e}")))?;
    if manifest.status != "Succeeded" {
        return Err(invalid(
            &shown,
            format!(
                "the report's status is {}, not Succeeded: it is not whole",
                manifest.status
            ),
        ));
    }
    let has = |field: &str| {
        manifest
            .rule_definition
            .schema_fields
            .iter()
            .any(|f| f.eq_ignore_ascii_case(field))
            .then(|| field.to_owned())
    };
    let format = match manifest.rule_definition.format.to_ascii_lowercase().as_str() {
        "csv" => FileFormat::Csv {
            gzip: false,
            header: true,
        },
        "parquet" => FileFormat::Parquet,
        other => {
            return Err(invalid(
                &shown,
                format!("its format is {other}; refgen reads csv and parquet"),
            ));
        }
    };
    let layout = Layout {
        columns: Vec::new(),
        key: "Name".into(),
        size: Some("Content-Length".into()),
        latest: has("IsCurrentVersion"),
        delete_marker: has("Deleted"),
        class: Some("AccessTier".into()),
        archived_classes: vec!["Archive".into()],
        version: None,
        customer_key: None,
        key_encoding: KeyEncoding::Raw,
        container_in_key: true,
        unique_keys: true,
    };
    tracing::debug!("reading the Azure Blob Inventory report {shown} for container `{source_container}`");
    Ok(Report {
        files: manifest.files.into_iter().map(|f| (f.blob, f.size)).collect(),
        format,
        layout,
        name: shown,
    })
}
