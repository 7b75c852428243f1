//! `refgen verify FILE`: the library's check of a references file, shown as a
//! table or JSON.

use std::process::ExitCode;

use anyhow::Result;
use refgen::roboflow::MediaKind;

use crate::exit::usage;
use crate::flags::VerifyArgs;
use crate::render::{self, print_json};
use crate::settings;

pub async fn command(args: VerifyArgs, quiet: bool) -> Result<ExitCode> {
    let kind = match (args.images, args.videos) {
        (true, _) => Some(MediaKind::Images),
        (_, true) => Some(MediaKind::Videos),
        _ => None,
    };
    if !args.file.is_file() {
        return Err(usage!("{}: not a file", args.file.display()));
    }
    let options = settings::verify(&args.check, &args.requests, kind);
    let report = refgen::verify::verify(&args.file, &options).await?;
    render::verified(&args.file, &report, quiet || args.json);
    if args.json {
        print_json(&report)?;
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
