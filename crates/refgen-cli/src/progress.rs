//! Progress on stderr, for every command that runs long: listing and signing,
//! uploading local files, waiting for ingestion, exporting.
//!
//! The library keeps counts as it goes; a [`Live`] display reads them. On a
//! terminal: one live line (a bar when there is a total), drawn by indicatif
//! and cleared when the work ends, so only the summary stays. Anywhere else (a
//! CI log): nothing for short work, and a plain line every interval for long
//! work.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use refgen::core::pipeline::Progress;
use refgen::export::ExportProgress;

/// How often the terminal line is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// What a display shows at one moment: the line, and `(done, total)` for a bar.
pub struct Reading {
    line: String,
    bar: Option<(u64, u64)>,
}

/// Something whose progress can be read at any moment.
pub trait Source: Send + Sync + 'static {
    /// What to show now, `elapsed` after the start.
    fn read(&self, elapsed: Duration) -> Reading;
}

impl Source for Progress {
    fn read(&self, elapsed: Duration) -> Reading {
        let (listed, matched, written) = self.counts();
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 { matched as f64 / secs } else { 0.0 };
        Reading {
            line: format!("listed {listed}, matched {matched}, written {written} ({rate:.0}/s, {secs:.0}s)"),
            bar: None,
        }
    }
}

impl Source for ExportProgress {
    fn read(&self, _elapsed: Duration) -> Reading {
        let (done, total) = (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed));
        Reading {
            line: format!("exported {done} of {total} files"),
            bar: Some((done, total)),
        }
    }
}

/// References ingested of those submitted, as waiting for ingestion sees them.
#[derive(Debug)]
pub struct Ingesting {
    /// In the batch so far.
    pub ingested: AtomicU64,
    /// Submitted.
    pub expected: u64,
}

impl Source for Ingesting {
    fn read(&self, _elapsed: Duration) -> Reading {
        let done = self.ingested.load(Ordering::Relaxed).min(self.expected);
        Reading {
            line: format!("ingested {done} of {} references", self.expected),
            bar: Some((done, self.expected)),
        }
    }
}

/// Local files uploaded, as the uploads are confirmed.
#[derive(Debug, Default)]
pub struct Uploading {
    /// Files in the batch from these sources (this run's and earlier runs').
    pub files: AtomicU64,
    /// Uploads done by this run (files, or archives).
    pub uploads: AtomicU64,
}

impl Source for Uploading {
    fn read(&self, elapsed: Duration) -> Reading {
        let (files, uploads) = (self.files.load(Ordering::Relaxed), self.uploads.load(Ordering::Relaxed));
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 { uploads as f64 / secs } else { 0.0 };
        Reading {
            line: format!("{files} files in the batch, {uploads} uploads done ({rate:.1}/s, {secs:.0}s)"),
            bar: None,
        }
    }
}

/// A progress display that runs until it is finished or dropped.
pub struct Live {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Live {
    /// Shows `source` while work goes: a live line on a terminal (with a bar,
    /// `what` names the units counted), else a line every `interval`; nothing at
    /// all when `quiet`.
    pub fn start(source: Arc<dyn Source>, what: &str, quiet: bool, interval: Duration) -> Live {
        let started = Instant::now();
        if quiet {
            return Live { bar: None, task: None };
        }
        if std::io::stderr().is_terminal() {
            let with_bar = source.read(Duration::ZERO).bar.is_some();
            let bar = if with_bar {
                ProgressBar::new(0)
            } else {
                ProgressBar::new_spinner()
            };
            let template = if with_bar {
                "[{bar:40}] {pos}/{len} {msg} ({elapsed})"
            } else {
                "{spinner} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(TICK);
            let (shown, what) = (bar.clone(), what.to_owned());
            let task = tokio::spawn(async move {
                loop {
                    let now = source.read(started.elapsed());
                    match now.bar {
                        Some((done, total)) => {
                            shown.set_length(total);
                            shown.set_position(done);
                            shown.set_message(what.clone());
                        }
                        None => shown.set_message(now.line),
                    }
                    tokio::time::sleep(TICK).await;
                }
            });
            Live {
                bar: Some(bar),
                task: Some(task),
            }
        } else {
            let task = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(interval).await;
                    eprintln!("refgen: {}", source.read(started.elapsed()).line);
                }
            });
            Live {
                bar: None,
                task: Some(task),
            }
        }
    }

    /// Stops the display and clears the live line.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop();
    }
}
