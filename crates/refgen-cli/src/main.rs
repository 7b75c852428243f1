//! `refgen`: turn the contents of a bucket into a signed-URL references file, and
//! hand it to Roboflow Batch Processing.
//!
//! A thin front end: parse the command line, build the stores and the selection,
//! call the libraries, print. All behaviour lives in the library crates.

mod args;
mod generate;
mod logging;
mod signals;
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
    let outcome = runtime.block_on(async {
        let signals = match signals::Signals::listen() {
            Ok(s) => s,
            Err(e) => return Ok(Err(anyhow::anyhow!("cannot listen for signals: {e}"))),
        };
        let work = async {
            match cli.command {
                Command::Generate(args) => generate::command(*args).await.map(|()| ExitCode::SUCCESS),
                Command::Submit(args) => submit::command(*args).await,
            }
        };
        // An interrupt drops `work` where it stands: its writer's temporary file and
        // submit's temporary folder are removed as they drop.
        tokio::select! {
            result = work => Ok(result),
            signal = signals.next() => Err(signal),
        }
    });
    // Tasks still running (a page being signed, a request in flight) are not waited for.
    runtime.shutdown_background();
    let result = match outcome {
        Ok(result) => result,
        Err(signal) => {
            eprintln!(
                "refgen: interrupted by {}: stopped before the end (an output file is left as it was)",
                signal.name
            );
            return ExitCode::from(signal.exit_code);
        }
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// One line: the chain of causes joined with ": ", down to the first library
/// error (whose message already says what its sources were), and what to do
/// about it in this command line's flag names.
fn error_line(err: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    let mut hint = None;
    for cause in err.chain() {
        parts.push(cause.to_string());
        let library = if let Some(e) = cause.downcast_ref::<refgen::Error>() {
            Some(e.hint())
        } else if let Some(e) = cause.downcast_ref::<refgen_core::Error>() {
            Some(e.hint())
        } else {
            cause.downcast_ref::<refgen_roboflow::RoboflowError>().map(|e| e.hint())
        };
        if let Some(found) = library {
            hint = found;
            break;
        }
    }
    let mut line = parts.join(": ").replace('\n', " ");
    if let Some(hint) = hint {
        line.push_str("; ");
        line.push_str(args::hint_text(hint));
    }
    line
}

/// `refgen … | head` closes the pipe early: that is the reader's choice, not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<refgen_core::Error>()
            .is_some_and(refgen_core::Error::is_broken_pipe)
            || matches!(cause.downcast_ref::<refgen::Error>(), Some(refgen::Error::Core(e)) if e.is_broken_pipe())
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
