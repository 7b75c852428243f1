//! How answers are shown: a JSON document or JSON Lines for scripts, aligned
//! columns for people, and the words of a count.

use std::io::Write;

use std::time::Duration;

use anyhow::Result;
use refgen::core::expiry::display_duration;
use refgen::generate::{GenerateEvent, GenerateReport};
use serde::Serialize;

/// Prints one JSON document on stdout.
pub fn print_json(value: &impl Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A workspace's list (batches, jobs): `{"workspace": …, "<key>": [...]}` as
/// JSON, else a table of `header` with a row of each item.
pub fn print_listing<T: Serialize>(
    json: bool,
    workspace: &str,
    key: &str,
    items: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> Result<()> {
    if json {
        print_json(&serde_json::json!({"workspace": workspace, key: items}))
    } else {
        print_table(header, items.iter().map(row))
    }
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

/// `1 reference`, `2 references`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Prints `line` after `refgen: ` on stderr, unless `quiet`.
pub fn say(quiet: bool, line: impl std::fmt::Display) {
    if !quiet {
        eprintln!("refgen: {line}");
    }
}

/// What a generate run says, on stderr.
pub fn generate_event(event: &GenerateEvent, quiet: bool) {
    match event {
        GenerateEvent::Resuming { last_part, last_key } => say(
            quiet,
            format!("resuming after part {last_part} (the last key written was {last_key:?})"),
        ),
    }
}

/// The one-line summary on stderr, naming where the references went (none: a dry run).
/// `plan`'s summary line.
pub fn plan_summary(plan: &refgen::ranges::RangePlan, destination: &str, secs: f64) {
    let (least, most) = plan
        .parts
        .iter()
        .map(|p| p.estimated_objects)
        .fold((u64::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
    eprintln!(
        "refgen: planned {} of {} to {destination} in {secs:.2}s ({} objects{}, {} to {} a part; {}); fingerprint {}",
        plural(plan.parts.len() as u64, "part", "parts"),
        plan.source,
        plan.estimated_objects,
        if plan.exact { "" } else { " estimated" },
        least,
        most,
        plural(plan.requests, "listing request", "listing requests"),
        plan.fingerprint
    );
}

pub fn generate_summary(report: &GenerateReport, destination: Option<&str>) {
    let secs = report.elapsed_seconds;
    let listed = plural(report.listed, "object", "objects");
    let mut limited = if report.limited {
        " (stopped at --limit)".to_owned()
    } else {
        String::new()
    };
    let skipped = &report.skipped;
    let reasons: Vec<String> = [
        (skipped.archived, "archived"),
        (skipped.too_large, "too large"),
        (skipped.customer_key, "encrypted with a customer key"),
        (skipped.other_shards, "in other shards"),
        (skipped.superseded, "older versions or delete markers"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, why)| format!("{n} {why}"))
    .collect();
    if !reasons.is_empty() {
        limited.push_str(&format!(" (skipped {})", reasons.join(", ")));
    }
    match destination {
        Some(destination) => {
            let rate = if secs > 0.0 { report.written as f64 / secs } else { 0.0 };
            eprintln!(
                "refgen: listed {listed}, matched {}, wrote {}{} to {destination} in {secs:.2}s ({rate:.0}/s){limited}; URLs valid for {}{}",
                report.matched,
                plural(report.written, "reference", "references"),
                if report.pinned > 0 {
                    format!(" ({} pinned to the version listed)", report.pinned)
                } else {
                    String::new()
                },
                display_duration(Duration::from_secs(report.expires_in_seconds)),
                report
                    .expires_at
                    .as_deref()
                    .map(|at| format!(" (the first until {at})"))
                    .unwrap_or_default()
            );
        }
        None => eprintln!(
            "refgen: dry run: listed {listed}, matched {} in {secs:.2}s{limited}; nothing was signed or written",
            report.matched
        ),
    }
}

/// What verifying `file` found, on stderr (stdout stays for `--json`): the
/// problems as a table, then one line; nothing when `quiet`.
pub fn verified(file: &std::path::Path, report: &refgen::verify::Report, quiet: bool) {
    if quiet {
        return;
    }
    if !report.ok {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::NOTHING)
            .set_header(["PROBLEM", "COUNT", "NAMES"]);
        for (problem, found) in &report.problems {
            let mut names = found
                .names
                .iter()
                .take(5)
                .map(|n| shown(n))
                .collect::<Vec<_>>()
                .join(", ");
            if found.count > 5 {
                names.push_str(", …");
            }
            table.add_row(vec![problem.as_str().to_owned(), found.count.to_string(), names]);
        }
        unpadded(&mut table);
        for line in table.to_string().lines() {
            eprintln!("{}", line.trim_end());
        }
    }
    eprintln!(
        "refgen: verified {}: {} references, {} fetched, {}{}",
        file.display(),
        report.references,
        report.fetched,
        if report.ok {
            "no problem found".to_owned()
        } else {
            report.describe()
        },
        report
            .expires_at
            .as_deref()
            .map(|at| format!("; the first URL expires at {at}"))
            .unwrap_or_default()
    );
}

/// What uploading local files did (or, in a dry run, would do), in one line.
pub fn upload_summary(upload: &refgen::upload::UploadReport, dry_run: bool) -> String {
    let how = match upload.mode {
        "bulk" => plural(upload.shards, "tar archive", "tar archives"),
        "videos" => plural(upload.videos, "video upload", "video uploads"),
        _ => plural(upload.single, "single upload", "single uploads"),
    };
    let mut line = format!(
        "{} {} ({}) in {how}",
        if dry_run { "would upload" } else { "uploaded" },
        plural(upload.uploaded, "file", "files"),
        refgen::core::size::display_size(upload.bytes)
    );
    if upload.already_uploaded > 0 {
        line.push_str(&format!(
            "; {} uploaded by an earlier run",
            plural(upload.already_uploaded, "file was", "files were")
        ));
    }
    let skipped: Vec<String> = upload.skipped.iter().map(|(why, n)| format!("{n} {why}")).collect();
    if !skipped.is_empty() {
        line.push_str(&format!("; skipped {} (-v names them)", skipped.join(", ")));
    }
    line
}
