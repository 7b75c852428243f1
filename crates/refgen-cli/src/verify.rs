//! `refgen verify FILE` (and `submit --verify`): the library's check of a
//! references file, shown as a table or JSON.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use refgen::roboflow::MediaKind;
use refgen::verify::{Report, VerifyOptions, verify};

use crate::api::print_json;
use crate::args::{RequestArgs, VerifyArgs, VerifyCheckArgs};
use crate::exit::usage;

/// The library's options from these flags.
pub fn options(check: &VerifyCheckArgs, requests: &RequestArgs, kind: Option<MediaKind>) -> VerifyOptions {
    VerifyOptions {
        sample: (!check.all).then_some(check.sample),
        min_valid: check.min_valid,
        concurrency: check.verify_concurrency.into(),
        kind,
        retry: requests.retry_config(),
    }
}

/// Verifies `file`; prints the problems (a table on stderr) unless `quiet`.
pub async fn run(file: &Path, options: &VerifyOptions, quiet: bool) -> Result<Report> {
    let report = verify(file, options).await?;
    if !quiet {
        if !report.ok {
            print_problems(&report);
        }
        eprintln!(
            "refgen: verified {}: {} references, {} fetched, {}",
            file.display(),
            report.references,
            report.fetched,
            if report.ok {
                "no problem found".to_owned()
            } else {
                report.describe()
            }
        );
    }
    Ok(report)
}

/// The problems as a table on stderr (stdout stays for --json).
fn print_problems(report: &Report) {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(["PROBLEM", "COUNT", "NAMES"]);
    for (problem, found) in &report.problems {
        let mut names = found
            .names
            .iter()
            .take(5)
            .map(|n| crate::api::shown(n))
            .collect::<Vec<_>>()
            .join(", ");
        if found.count > 5 {
            names.push_str(", …");
        }
        table.add_row(vec![problem.as_str().to_owned(), found.count.to_string(), names]);
    }
    crate::api::unpadded(&mut table);
    for line in table.to_string().lines() {
        eprintln!("{}", line.trim_end());
    }
}

pub async fn command(args: VerifyArgs, quiet: bool) -> Result<ExitCode> {
    let kind = match (args.images, args.videos) {
        (true, _) => Some(MediaKind::Images),
        (_, true) => Some(MediaKind::Videos),
        _ => None,
    };
    if !args.file.is_file() {
        return Err(usage!("{}: not a file", args.file.display()));
    }
    let options = options(&args.check, &args.requests, kind);
    let report = run(&args.file, &options, quiet || args.json).await?;
    if args.json {
        print_json(&report)?;
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
