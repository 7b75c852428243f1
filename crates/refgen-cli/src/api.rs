//! The Roboflow client and workspace that every command talking to Roboflow
//! builds the same way, and how their answers are shown: a table for people, or
//! JSON for scripts.

use std::io::Write;

use anyhow::Result;
use refgen::roboflow::{Client, ClientBuilder};
use serde::Serialize;

use crate::args::{ApiArgs, RequestArgs, RoboflowArgs};

/// The client these flags describe (the key from --api-key or ROBOFLOW_API_KEY).
pub fn client(roboflow: &RoboflowArgs, requests: &RequestArgs) -> Result<Client> {
    let mut builder = ClientBuilder::from_env().with_retry(requests.retry_config());
    if let Some(key) = &roboflow.api_key {
        builder = builder.with_api_key(key);
    }
    if let Some(first) = requests.retry_delay {
        builder = builder.with_backoff_base(first);
    }
    Ok(builder.build()?)
}

/// The workspace: given, or the API key's own.
pub async fn workspace(client: &Client, roboflow: &RoboflowArgs) -> Result<String> {
    Ok(match &roboflow.workspace {
        Some(w) => w.clone(),
        None => client.workspace().await?,
    })
}

/// The client and workspace of a lifecycle command's flags.
pub async fn connect(api: &ApiArgs) -> Result<(Client, String)> {
    let client = client(&api.roboflow, &api.requests)?;
    let ws = workspace(&client, &api.roboflow).await?;
    Ok((client, ws))
}

/// Prints one JSON document on stdout.
pub fn print_json(value: &impl Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Prints one JSON Lines record on stdout.
pub fn print_json_line(value: &impl Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Prints rows under a header, in aligned columns without borders.
pub fn print_table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Result<()> {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| h.to_uppercase()));
    for row in rows {
        table.add_row(row.iter().map(|cell| shown(cell)).collect::<Vec<_>>());
    }
    unpadded(&mut table);
    let mut out = std::io::stdout().lock();
    for line in table.to_string().lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Characters of a name, URL or server text that a table or a message shows: a
/// line of 20 MB must not become 20 MB on a terminal, nor cost a table layout
/// that grows faster than its length.
pub const SHOWN_CHARS: usize = 200;

/// `text` cut to [`SHOWN_CHARS`] characters, with an ellipsis when cut.
pub fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `-` for a value that is not there.
pub fn or_dash(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => "-".to_owned(),
    }
}

/// Columns two spaces apart and none before the first (the preset pads each
/// cell by one on both sides).
pub fn unpadded(table: &mut comfy_table::Table) {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
}
