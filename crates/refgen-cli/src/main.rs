//! `refgen`: turn the contents of a bucket into a signed-URL references file, and
//! hand it to Roboflow Batch Processing.
//!
//! A thin front end: parse the command line, build the stores and the selection,
//! call the libraries, print. All behaviour lives in the library crates.

mod api;
mod args;
mod batches;
mod export;
mod generate;
mod jobs;
mod lifecycle_args;
mod logging;
mod progress;
mod signals;
mod stores;
mod submit;
mod verify;
mod webhook;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::args::{Cli, Command};

/// Exit code of a bad command line (as clap's own).
const USAGE_EXIT: u8 = 2;

/// An error in what was typed: a value or a combination of options that cannot
/// work. It exits with 2, as clap's own parsing errors do.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `usage!("…", args)`: an [`anyhow::Error`] that exits with 2.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        anyhow::Error::new($crate::UsageError(format!($($arg)*)))
    };
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(inference_cli_names(std::env::args_os())) {
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

/// What an interrupted run leaves: nothing changed, or the files already put in
/// place (a references file made before submit's upload, a resumable run's parts).
fn interrupted_state() -> String {
    let placed = refgen_core::writer::files_in_place();
    match placed.as_slice() {
        [] => "stopped before the end (an output file is left as it was)".to_owned(),
        [one] => format!("stopped before the end; already in place: {}", one.display()),
        [first, .., last] => format!(
            "stopped before the end; {} files already in place ({} … {})",
            placed.len(),
            first.display(),
            last.display()
        ),
    }
}

/// inference-cli's options with two-letter short names (`-bn NAME`), which clap
/// cannot declare, become refgen's long names. Only whole arguments are changed.
fn inference_cli_names(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const NAMES: &[(&str, &str)] = &[
        ("-bn", "--batch-name"),
        ("-jn", "--job-name"),
        ("-mt", "--machine-type"),
    ];
    args.map(
        |arg| match NAMES.iter().find(|(short, _)| arg.to_str() == Some(short)) {
            Some((_, long)) => (*long).into(),
            None => arg,
        },
    )
    .collect()
}

/// Help and version go to stdout as clap prints them; a parsing error is one line
/// on stderr (clap's first line, with its tip when it has one) and exits with 2.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(if e.exit_code() == 0 { 0 } else { USAGE_EXIT });
    }
    let text = e.render().to_string();
    // clap's message runs to the first blank line (a list of missing arguments
    // follows on lines of its own); a tip is kept when it names a similar option.
    let message: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with("tip:"))
        .collect();
    let joined = message.join(" ");
    let mut line = joined.strip_prefix("error: ").unwrap_or(&joined).to_owned();
    // A value that came from a REFGEN_* variable, not from the command line: name
    // the variable, or the person looks for a flag they never typed.
    if let Some((arg, var)) = value_from_env(&e) {
        line = line.replacen(&format!("'{arg}'"), &format!("{var} (the value of '{arg}')"), 1);
    }
    if let Some(tip) = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        .find(|t| t.contains("similar"))
    {
        line.push_str(&format!(" ({tip})"));
    }
    // `Usage: refgen submit --batch-id <ID> …` names the subcommand first.
    let command: Vec<&str> = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(|usage| {
            usage
                .split_whitespace()
                .take_while(|w| !w.starts_with(['-', '<', '[']))
                .collect()
        })
        .unwrap_or_default();
    let command = if command.is_empty() {
        "refgen".to_owned()
    } else {
        command.join(" ")
    };
    eprintln!("error: {line}; see '{command} --help'");
    ExitCode::from(USAGE_EXIT)
}

/// For an invalid value: the argument as clap names it (`--max-attempts <N>`) and
/// the environment variable its value came from, when it was not typed.
fn value_from_env(e: &clap::Error) -> Option<(String, String)> {
    use clap::error::{ContextKind, ContextValue};
    let ContextValue::String(arg) = e.get(ContextKind::InvalidArg)? else {
        return None;
    };
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let typed = std::env::args().any(|a| a == format!("--{long}") || a.starts_with(&format!("--{long}=")));
    if typed {
        return None;
    }
    fn env_of(command: &clap::Command, long: &str) -> Option<String> {
        command
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_env())
            .map(|v| v.to_string_lossy().into_owned())
            .or_else(|| command.get_subcommands().find_map(|c| env_of(c, long)))
    }
    let var = env_of(&Cli::command(), long)?;
    std::env::var_os(&var)?;
    Some((arg.clone(), var))
}

/// Whether an error is about what was typed (exit code 2): a malformed source,
/// glob, duration or id, or options that do not go together.
fn is_usage(err: &anyhow::Error) -> bool {
    use refgen_core::Error as Core;
    let core_usage = |e: &Core| e.is_usage();
    err.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause.downcast_ref::<Core>().is_some_and(core_usage)
            || match cause.downcast_ref::<refgen::Error>() {
                Some(refgen::Error::Core(e)) => core_usage(e),
                Some(refgen::Error::UnknownKind { .. }) => true,
                Some(refgen::Error::Roboflow(refgen_roboflow::RoboflowError::InvalidId { .. })) => true,
                _ => false,
            }
            || matches!(
                cause.downcast_ref::<refgen_roboflow::RoboflowError>(),
                Some(refgen_roboflow::RoboflowError::InvalidId { .. })
            )
    })
}

/// An I/O error's text without Rust's " (os error N)" tail, which says nothing
/// more to a person than the words before it.
pub fn io_text(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_owned(),
        _ => text,
    }
}

/// One line: the chain of causes joined with ": ", down to the first library
/// error (whose message already says what its sources were), and what to do
/// about it in this command line's flag names. A cause whose words the line
/// already holds is not repeated.
fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut hint = None;
    for cause in err.chain() {
        let text = io_text(cause);
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
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
    // The one redaction step, once more at the last place a text passes.
    let mut line = refgen_core::redact::redact(&line.replace('\n', " "));
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
