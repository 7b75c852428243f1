//! `refgen`: turn the contents of a bucket into a signed-URL references file, and
//! hand it to Roboflow Batch Processing.
//!
//! The binary parses, renders and exits; every workflow is the `refgen`
//! library's. `flags` defines the command line, `settings` turns it into the
//! library's options (every cross-flag check), one module per command makes
//! one library call and shows its events and report (`render`, `progress`),
//! and `exit` owns the exit codes and the one line a failure ends with. This
//! file only dispatches.

mod batches;
mod exit;
mod export;
mod flags;
mod generate;
mod jobs;
mod logging;
mod plan;
mod progress;
mod render;
mod settings;
mod signals;
mod submit;
mod verify;
mod webhook;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::exit::{USAGE_EXIT, clap_error, error_line, interrupted_state, io_text, is_broken_pipe, is_usage};
use crate::flags::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(flags::inference_cli_names(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    logging::init(cli.verbose);
    let quiet = cli.quiet;
    let page = match cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "refgen", &mut script);
            Some(Ok(script))
        }
        Command::Man => {
            let mut roff = Vec::new();
            Some(clap_mangen::Man::new(Cli::command()).render(&mut roff).map(|()| roff))
        }
        _ => None,
    };
    if let Some(page) = page {
        use std::io::Write;
        let written = page.and_then(|bytes| std::io::stdout().write_all(&bytes));
        return match written {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("error: cannot write to standard output: {}", io_text(&e));
                ExitCode::FAILURE
            }
            _ => ExitCode::SUCCESS,
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {}", io_text(&e));
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
                Command::Generate(args) => generate::command(*args, quiet).await.map(|()| ExitCode::SUCCESS),
                Command::Plan(args) => plan::command(*args, quiet).await.map(|()| ExitCode::SUCCESS),
                Command::Submit(args) => submit::command(*args, quiet).await,
                Command::Verify(args) => verify::command(*args, quiet).await,
                Command::Batches(command) => batches::command(command, quiet).await,
                Command::Export(args) => export::command(*args, quiet).await,
                Command::Jobs(command) => jobs::command(command, quiet).await,
                Command::WebhookCheck(args) => webhook::command(*args, quiet).await,
                Command::Completions { .. } | Command::Man => Ok(ExitCode::SUCCESS),
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
            eprintln!("refgen: interrupted by {}: {}", signal.name, interrupted_state());
            return ExitCode::from(signal.exit_code);
        }
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_line(&err));
            if is_usage(&err) {
                ExitCode::from(USAGE_EXIT)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
