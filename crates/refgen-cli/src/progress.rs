//! Progress of a `generate` run on stderr.
//!
//! On a terminal: one live line (listed, matched, written, rate, elapsed), drawn
//! by indicatif and cleared when the run ends, so only the summary stays. Anywhere
//! else (a CI log): nothing for a short run, and a plain line every interval for a
//! long one, as `submit --wait` does.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use refgen::core::pipeline::Progress;

/// How often the terminal line is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// A progress display that runs until it is finished or dropped.
pub struct Live {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Live {
    /// Shows `progress` while a run goes: a live line on a terminal, else a line
    /// every `interval`; nothing at all when `quiet`.
    pub fn start(progress: Arc<Progress>, quiet: bool, interval: Duration) -> Live {
        let started = Instant::now();
        if quiet {
            return Live { bar: None, task: None };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(TICK);
            let shown = bar.clone();
            let task = tokio::spawn(async move {
                loop {
                    shown.set_message(line(&progress, started));
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
                    eprintln!("refgen: {}", line(&progress, started));
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

fn line(progress: &Progress, started: Instant) -> String {
    let (listed, matched, written) = progress.counts();
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { matched as f64 / secs } else { 0.0 };
    format!("listed {listed}, matched {matched}, written {written} ({rate:.0}/s, {secs:.0}s)")
}
