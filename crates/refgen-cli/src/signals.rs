//! Ending on a signal the way shells expect: SIGINT, SIGTERM and SIGHUP stop the
//! run (the caller drops the work in progress, which removes temporary files) and
//! exit with 128 + the signal's number. SIGXFSZ (a file-size limit reached) is
//! caught too, so that it does not kill the process outright: the write that passed
//! the limit then fails with EFBIG and the run ends with one line and no temporary
//! file, like a full disk.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// A signal that ended the run.
pub struct Caught {
    /// `SIGINT`, …
    pub name: &'static str,
    /// 128 + the signal's number.
    pub exit_code: u8,
}

/// The signals refgen answers.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
    /// Held only so that SIGXFSZ has a handler (and so its default action, a core
    /// dump, does not happen).
    _file_size: Signal,
}

impl Signals {
    /// Installs the handlers.
    pub fn listen() -> std::io::Result<Self> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
            _file_size: signal(SignalKind::from_raw(libc::SIGXFSZ))?,
        })
    }

    /// The next of SIGINT, SIGTERM or SIGHUP.
    pub async fn next(mut self) -> Caught {
        let caught = |name, number: i32| Caught {
            name,
            exit_code: u8::try_from(128 + number).unwrap_or(1),
        };
        tokio::select! {
            _ = self.interrupt.recv() => caught("SIGINT", libc::SIGINT),
            _ = self.terminate.recv() => caught("SIGTERM", libc::SIGTERM),
            _ = self.hangup.recv() => caught("SIGHUP", libc::SIGHUP),
        }
    }
}
