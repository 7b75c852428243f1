//! The command line's definition, as clap structs: one file per command group
//! ([`generate`], [`submit`], [`lifecycle`], [`verify`]) over the options they
//! share ([`common`]). Nothing here runs anything: `settings` turns these into
//! the library's options.

mod common;
mod generate;
mod lifecycle;
mod plan;
mod submit;
mod verify;

use clap::{Parser, Subcommand};

pub use common::*;
use generate::GENERATE_EXAMPLES;
pub use generate::*;
pub use lifecycle::*;
use plan::PLAN_EXAMPLES;
pub use plan::*;
use submit::SUBMIT_EXAMPLES;
pub use submit::*;
pub use verify::*;

/// Turn the contents of a bucket into a signed-URL references file (JSON Lines,
/// `{"name": …, "url": …}` per object) for Roboflow Batch Processing.
#[derive(Debug, Parser)]
#[command(name = "refgen", version, about, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Nothing on stderr but errors and warnings: no progress, no summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a bucket or prefix, keep matching objects, write one signed URL per object.
    #[command(after_help = GENERATE_EXAMPLES)]
    Generate(Box<GenerateArgs>),
    /// Cut a source's listing into N key ranges that N workers list apart (generate --plan).
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(Box<PlanArgs>),
    /// Make (or take) a references file and submit it to Roboflow Batch Processing; follow it.
    #[command(after_help = SUBMIT_EXAMPLES)]
    Submit(Box<SubmitArgs>),
    /// Check a references file: every line, and a ranged GET of a sample of its URLs.
    Verify(Box<VerifyArgs>),
    /// Look at batches: list, show, and which references failed to ingest.
    #[command(subcommand)]
    Batches(BatchesCommand),
    /// Download every file of a batch (a job's results) into a folder, resumably.
    Export(Box<ExportArgs>),
    /// Look at and control jobs: list, show, abort, restart, logs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// POST the notifications Roboflow sends to a webhook receiver, to test it.
    WebhookCheck(Box<WebhookArgs>),
    /// Print a shell completion script: refgen completions bash > ~/.local/share/bash-completion/completions/refgen
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): refgen man > ~/.local/share/man/man1/refgen.1
    Man,
}

/// inference-cli's options with two-letter short names (`-bn NAME`), which clap
/// cannot declare, become refgen's long names. Only whole arguments are changed.
pub fn inference_cli_names(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const NAMES: &[(&str, &str)] = &[
        ("-bn", "--batch-name"),
        ("-jn", "--job-name"),
        ("-mt", "--machine-type"),
        ("-ms", "--machine-size"),
        ("-imp", "--images-metadata-part-name"),
        ("-mm", "--metadata-mapping"),
        ("-ib", "--inference-backend"),
    ];
    args.map(
        |arg| match NAMES.iter().find(|(short, _)| arg.to_str() == Some(short)) {
            Some((_, long)) => (*long).into(),
            None => arg,
        },
    )
    .collect()
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// A shell's split of one command line: words, single quotes, `VAR=value`
    /// prefixes and a `> file` redirection (all the examples use).
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut quoted = false;
        let mut in_word = false;
        for c in line.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    in_word = true;
                }
                c if c.is_whitespace() && !quoted => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                c => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(word);
        }
        words
    }

    /// clap's own consistency checks (unique ids, valid defaults and conflicts) for
    /// every subcommand; without it a clash only shows as a panic at run time.
    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every example in each command's `--help`, rendered for 80 and 100 columns,
    /// pasted as it is shown (continuations joined): each is one command that
    /// parses. A wrapped line would break its `\\` continuation.
    #[test]
    fn help_examples_parse_as_pasted() {
        let subs: [&[&str]; 7] = [
            &["generate"],
            &["submit"],
            &["batches", "failures"],
            &["export"],
            &["webhook-check"],
            &["verify"],
            &["plan"],
        ];
        for sub in subs {
            for width in [80, 100] {
                let mut args = vec!["refgen"];
                args.extend(sub);
                args.push("--help");
                let err = Cli::command()
                    .term_width(width)
                    .try_get_matches_from(args)
                    .expect_err("help");
                let help = err.render().to_string();
                let examples = help
                    .split("Examples:\n")
                    .nth(1)
                    .and_then(|s| s.split("\n\n").next())
                    .expect("an Examples block");
                let mut commands = Vec::new();
                let mut current = String::new();
                for line in examples.lines() {
                    let line = line.trim();
                    match line.strip_suffix('\\') {
                        Some(head) => current.push_str(head),
                        None => {
                            current.push_str(line);
                            commands.push(std::mem::take(&mut current));
                        }
                    }
                }
                assert!(
                    current.is_empty() && commands.len() >= 2,
                    "{sub:?} at {width}: {examples}"
                );
                for command in commands {
                    let mut words = shell_words(&command);
                    words.retain(|w| !(w.contains('=') && w.chars().next().is_some_and(|c| c.is_ascii_uppercase())));
                    if let Some(i) = words.iter().position(|w| w == ">") {
                        words.truncate(i);
                    }
                    assert_eq!(
                        words.first().map(String::as_str),
                        Some("refgen"),
                        "{sub:?} at {width}: {command}"
                    );
                    let parsed = Cli::try_parse_from(&words);
                    assert!(parsed.is_ok(), "{sub:?} at {width}: {command}: {:?}", parsed.err());
                }
            }
        }
    }

    /// The selection options have a heading of their own in submit's help, not the
    /// job options' (they used to land under "Job options (with --workflow-id)").
    #[test]
    fn submit_help_groups_options_by_heading() {
        let help = Cli::command()
            .term_width(100)
            .try_get_matches_from(["refgen", "submit", "--help"])
            .expect_err("help")
            .render()
            .to_string();
        let section = |heading: &str| {
            help.split(heading)
                .nth(1)
                .and_then(|s| s.split("\n\n").next())
                .unwrap_or_default()
                .to_owned()
        };
        let job = section("Job options (with --workflow-id):");
        let selection = section("Selection options:");
        assert!(job.contains("--workflow-id") && !job.contains("--include"), "{job}");
        for flag in [
            "--include",
            "--exclude",
            "--images",
            "--videos",
            "--expires-in",
            "--name",
            "--limit",
        ] {
            assert!(selection.contains(flag), "{flag} in {selection}");
        }
    }

    #[test]
    fn inference_cli_short_names_become_long_ones() {
        let args = super::inference_cli_names(
            ["refgen", "submit", "-bn", "My batch", "-jn", "Nightly", "-mt", "gpu"]
                .into_iter()
                .map(Into::into),
        );
        let shown: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
        assert_eq!(
            shown,
            [
                "refgen",
                "submit",
                "--batch-name",
                "My batch",
                "--job-name",
                "Nightly",
                "--machine-type",
                "gpu"
            ]
        );
    }
}
