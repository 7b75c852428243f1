//! `refgen`: turn the contents of a bucket into a signed-URL references file, and
//! hand it to Roboflow Batch Processing.
//!
//! A thin front end: parse the command line, build the stores and the selection,
//! call the libraries, print. All behaviour lives in the library crates.

mod args;
mod generate;
mod logging;
mod stores;
mod submit;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Generate(args) => generate::command(*args).await.map(|()| ExitCode::SUCCESS),
            Command::Submit(args) => submit::command(*args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the chain of causes joined with ": ".
            eprintln!("error: {}", format!("{err:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// `refgen … | head` closes the pipe early: that is the reader's choice, not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<refgen_core::Error>()
            .is_some_and(refgen_core::Error::is_broken_pipe)
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
