//! The exit-code policy and the one line a failure ends with: usage errors
//! (exit 2, as clap's own), a clap error cut to one line, the chain of causes
//! as one redacted line with the hint in this command line's flag names, a
//! closed pipe as a quiet success, and what an interrupt leaves.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::flags::Cli;

/// Exit code of a bad command line (as clap's own).
pub const USAGE_EXIT: u8 = 2;

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
macro_rules! usage {
    ($($arg:tt)*) => {
        anyhow::Error::new($crate::exit::UsageError(format!($($arg)*)))
    };
}
pub(crate) use usage;

/// What an interrupted run leaves: nothing changed, or the files already put in
/// place (a references file made before submit's upload, a resumable run's parts).
pub fn interrupted_state() -> String {
    let placed = refgen::core::writer::files_in_place();
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

/// Help and version go to stdout as clap prints them; a parsing error is one line
/// on stderr (clap's first line, with its tip when it has one) and exits with 2.
pub fn clap_error(e: clap::Error) -> ExitCode {
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
pub fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause
                .downcast_ref::<refgen::core::Error>()
                .is_some_and(refgen::core::Error::is_usage)
            || cause
                .downcast_ref::<refgen::Error>()
                .is_some_and(refgen::Error::is_usage)
            || matches!(
                cause.downcast_ref::<refgen::roboflow::RoboflowError>(),
                Some(refgen::roboflow::RoboflowError::InvalidId { .. })
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
pub fn error_line(err: &anyhow::Error) -> String {
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
        } else if let Some(e) = cause.downcast_ref::<refgen::core::Error>() {
            Some(e.hint())
        } else {
            cause
                .downcast_ref::<refgen::roboflow::RoboflowError>()
                .map(|e| e.hint())
        };
        if let Some(found) = library {
            hint = found;
            break;
        }
    }
    // The one redaction step, once more at the last place a text passes.
    let mut line = refgen::core::redact::redact(&line.replace('\n', " "));
    if let Some(hint) = hint {
        line.push_str("; ");
        line.push_str(crate::flags::hint_text(hint));
    }
    line
}

/// `refgen … | head` closes the pipe early: that is the reader's choice, not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<refgen::core::Error>()
            .is_some_and(refgen::core::Error::is_broken_pipe)
            || matches!(cause.downcast_ref::<refgen::Error>(), Some(refgen::Error::Core(e)) if e.is_broken_pipe())
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
