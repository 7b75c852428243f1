//! The references file: one JSON object per line, `{"name": "...", "url": "..."}`.
//!
//! Lines are written as JSON (quotes, backslashes and control characters escaped by
//! serde_json; non-ASCII kept as UTF-8) into a large buffer, whose full chunks a
//! thread of the writer's own writes out (and, for a regular file, syncs as it
//! goes), so the run's one sequential step does not wait on the disk.
//!
//! A regular file target is written atomically: lines go to a temporary file in the
//! target's folder, which is renamed over the target only by
//! [`ReferenceWriter::finish`] (keeping an existing file's permissions; a new file
//! is readable by its owner only, since its URLs grant access to the objects). If the run
//! fails, or the writer is dropped (an interrupt ends the run by dropping it), the
//! temporary file is removed and the target is left untouched.
//!
//! With a number of lines per part, a file target is written as numbered parts
//! (`refs.jsonl` → `refs-00000.jsonl`, `refs-00001.jsonl`, …), each a whole
//! references file in a temporary file of its own; [`ReferenceWriter::finish`]
//! renames them all into place, and removes parts of an earlier run numbered past
//! this run's last, so the parts present are exactly this run's.
//!
//! A resumable run ([`ReferenceWriter::create_parts_resumable`]) puts each part in
//! place as soon as it is full and then records, in a small checkpoint file beside
//! the target, how many parts are done, the key of the last line written and the
//! settings of the run; a run started again with the same settings continues after
//! that key. Its keys must come in byte order, which it checks.
//!
//! Other targets are treated as a shell redirection would: a symlink is followed,
//! and the file it points to is replaced (the link stays a link); a FIFO, a device
//! or a socket is written in place, never replaced; a read-only file and a folder
//! are refused before anything is listed.
//!
//! Every other file refgen writes (a retry file, a checkpoint, an exported
//! download) goes through [`TargetFile`], which applies the same rules: nothing
//! refgen writes is ever put in place by a rename of its own.
//!
//! The one file refgen adds to rather than replaces is a log of what an upload
//! has done ([`AppendLog`]): whole lines, each write synced before it counts, a
//! torn last line (a crash mid-write) set apart from the next and ignored.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tempfile::TempPath;

use crate::Error;

/// One line of a references file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceLine {
    /// Unique name of the file within the batch.
    pub name: String,
    /// Signed GET URL of the object.
    pub url: String,
}

#[derive(Serialize)]
struct ReferenceLineRef<'a> {
    name: &'a str,
    url: &'a str,
}

/// Where the references go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// Standard output.
    Stdout,
    /// A file, replaced atomically on success.
    File(PathBuf),
}

impl OutputTarget {
    /// `-` means standard output; anything else is a file path.
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            OutputTarget::Stdout
        } else {
            OutputTarget::File(PathBuf::from(arg))
        }
    }

    fn display_path(&self) -> PathBuf {
        match self {
            OutputTarget::Stdout => PathBuf::from("-"),
            OutputTarget::File(p) => p.clone(),
        }
    }
}

const BUFFER_BYTES: usize = 256 * 1024;

/// A buffer whose full chunks are written by a thread of its own: the write
/// system calls (copying every byte into the kernel's page cache, about a third
/// of the writer's time on a million lines) leave the run's one sequential step.
/// Chunks change hands without a copy and come back to be filled again. A write
/// error is returned by the next write or by [`Write::flush`], which waits until
/// everything handed over is written and flushed.
struct Background {
    buffer: Vec<u8>,
    to_thread: std::sync::mpsc::SyncSender<ToThread>,
    from_thread: std::sync::mpsc::Receiver<io::Result<FromThread>>,
}

enum ToThread {
    Write(Vec<u8>),
    Flush,
}

/// The thread that syncs a file while it is written (see [`Background::new`]).
struct Syncer {
    /// `None` asks for a sync; `Some` waits for the syncs asked for so far.
    orders: std::sync::mpsc::SyncSender<Option<std::sync::mpsc::SyncSender<io::Result<()>>>>,
}

impl Syncer {
    fn start(file: File) -> io::Result<Syncer> {
        let (orders, incoming) =
            std::sync::mpsc::sync_channel::<Option<std::sync::mpsc::SyncSender<io::Result<()>>>>(1);
        std::thread::Builder::new().name("refgen-sync".into()).spawn(move || {
            let mut failed: Option<io::Error> = None;
            for order in incoming {
                match order {
                    None if failed.is_none() => failed = file.sync_data().err(),
                    None => {}
                    Some(reply) => {
                        let _ = reply.send(failed.take().map_or(Ok(()), Err));
                    }
                }
            }
        })?;
        Ok(Syncer { orders })
    }

    /// Asks for a sync, unless one is already waiting to start.
    fn kick(&self) {
        let _ = self.orders.try_send(None);
    }

    /// Waits for the syncs asked for so far; the error of one that failed.
    fn wait(&self) -> io::Result<()> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.orders
            .send(Some(reply))
            .map_err(|_| io::Error::other("the syncing thread stopped"))?;
        answer
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the syncing thread stopped")))
    }
}

enum FromThread {
    /// A chunk written, emptied, to be filled again.
    Written(Vec<u8>),
    Flushed,
}

/// How much a regular file takes between the writing thread's syncs.
const SYNC_EVERY_BYTES: u64 = 16 * 1024 * 1024;

impl Background {
    /// `sync` is the file behind `out` when it is a regular file to be synced
    /// before it is put in place: a second thread syncs it every
    /// [`SYNC_EVERY_BYTES`] while writing goes on, so the disk takes the file as it
    /// comes and the last sync waits for the tail only (a 363 MB file waited half a
    /// second for its one sync). A flush waits for the sync under way and returns
    /// its error, if any: an error one sync reports is not reported again.
    fn new(mut out: Box<dyn Write + Send>, sync: Option<File>) -> io::Result<Self> {
        let (to_thread, incoming) = std::sync::mpsc::sync_channel::<ToThread>(1);
        let (answer, from_thread) = std::sync::mpsc::sync_channel(4);
        let syncer = sync.map(Syncer::start).transpose()?;
        // Not joined: a failed run drops its writer and goes on (a FIFO with no
        // reader must not hold it); a run that succeeds has flushed, and so waited.
        std::thread::Builder::new()
            .name("refgen-writer".into())
            .spawn(move || {
                let mut unsynced = 0u64;
                for order in incoming {
                    let result = match order {
                        ToThread::Write(mut chunk) => out.write_all(&chunk).map(|()| {
                            unsynced += chunk.len() as u64;
                            if let Some(syncer) = &syncer
                                && unsynced >= SYNC_EVERY_BYTES
                            {
                                unsynced = 0;
                                syncer.kick();
                            }
                            chunk.clear();
                            FromThread::Written(chunk)
                        }),
                        ToThread::Flush => out
                            .flush()
                            .and_then(|()| syncer.as_ref().map_or(Ok(()), Syncer::wait))
                            .map(|()| FromThread::Flushed),
                    };
                    let failed = result.is_err();
                    if answer.send(result).is_err() || failed {
                        return;
                    }
                }
            })?;
        Ok(Background {
            buffer: Vec::with_capacity(BUFFER_BYTES),
            to_thread,
            from_thread,
        })
    }

    /// Hands the buffer to the thread, taking an emptied chunk (or a new one) back.
    fn hand_over(&mut self) -> io::Result<()> {
        let next = match self.from_thread.try_recv() {
            Ok(Ok(FromThread::Written(chunk))) => chunk,
            Ok(Err(e)) => return Err(e),
            _ => Vec::with_capacity(BUFFER_BYTES),
        };
        let full = std::mem::replace(&mut self.buffer, next);
        self.to_thread.send(ToThread::Write(full)).map_err(|_| self.stopped())
    }

    /// Why the thread stopped: the error it answered with, if there is one.
    fn stopped(&self) -> io::Error {
        while let Ok(answer) = self.from_thread.try_recv() {
            if let Err(e) = answer {
                return e;
            }
        }
        io::Error::other("the writing thread stopped")
    }
}

impl Write for Background {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= BUFFER_BYTES {
            self.hand_over()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            self.hand_over()?;
        }
        self.to_thread.send(ToThread::Flush).map_err(|_| self.stopped())?;
        // Every chunk handed over is answered for, in order, the flush last.
        loop {
            match self.from_thread.recv() {
                Ok(Ok(FromThread::Flushed)) => return Ok(()),
                Ok(Ok(FromThread::Written(_))) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("the writing thread stopped")),
            }
        }
    }
}

/// Streams reference lines to standard output or a file.
pub struct ReferenceWriter {
    out: Background,
    target: OutputTarget,
    /// The temporary file and the path it is renamed to on success (regular files).
    pending: Option<(File, TempPath, PathBuf)>,
    lines: u64,
    /// Output in numbered parts, when asked for.
    parts: Option<Parts>,
}

/// Numbered parts of at most `lines_per_part` lines each.
struct Parts {
    /// The target as given; parts are named from it.
    base: PathBuf,
    lines_per_part: u64,
    /// Lines in the part being written.
    in_part: u64,
    /// Parts written whole, still temporary, with the paths they get.
    done: Vec<(TempPath, PathBuf)>,
    /// The number of the part being written.
    index: usize,
    /// The number of this run's first part (a resumed run starts past the parts done).
    first: usize,
    /// Set for a resumable run: parts go in place as they fill.
    resume: Option<Resume>,
}

/// What a resumable run records beside its target.
struct Resume {
    /// The checkpoint file.
    checkpoint: PathBuf,
    /// The run's settings, as the caller describes them.
    settings: String,
    /// The key of the last line written (keys come in byte order).
    last_key: String,
    /// The position (a report's row) of the last line written.
    last_position: u64,
    /// The run resumes by position (a report, in row order), not by key.
    by_position: bool,
}

/// A resumable run's checkpoint: the parts done and the key after which the run
/// continues, for these settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The settings of the run that wrote it.
    pub settings: String,
    /// Parts put in place, numbered from 0.
    pub parts: usize,
    /// The key of the last line of the last part done.
    pub last_key: String,
    /// For a run in a report's row order: the rows gone through up to the last
    /// line of the last part done.
    #[serde(default)]
    pub position: Option<u64>,
}

impl Checkpoint {
    /// The checkpoint file of a target: `refs.jsonl` → `refs.jsonl.refgen-resume`.
    pub fn path(target: &Path) -> PathBuf {
        let mut name = target.file_name().unwrap_or_default().to_owned();
        name.push(".refgen-resume");
        target.with_file_name(name)
    }

    /// The checkpoint of `target`, if a resumable run left one.
    pub fn read(target: &Path) -> Result<Option<Checkpoint>, Error> {
        let path = Checkpoint::path(target);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Output {
                path,
                source: io::Error::new(io::ErrorKind::InvalidData, format!("not a refgen checkpoint: {e}")),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Output { path, source }),
        }
    }
}

/// The path of part `index` of `base`: `refs.jsonl` → `refs-00003.jsonl`.
pub fn part_path(base: &Path, index: usize) -> PathBuf {
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let numbered = match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{}-{index:05}{}", &name[..dot], &name[dot..]),
        _ => format!("{name}-{index:05}"),
    };
    base.with_file_name(numbered)
}

impl std::fmt::Debug for ReferenceWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceWriter")
            .field("target", &self.target)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

impl ReferenceWriter {
    /// Opens the target. For a file, this checks at once that it can be written
    /// (creating the temporary file, or opening a special file), before any listing
    /// starts.
    pub fn create(target: OutputTarget) -> Result<Self, Error> {
        let (out, sync, pending): (Box<dyn Write + Send>, _, _) = match &target {
            OutputTarget::Stdout if stdout_was_closed() => {
                return Err(Error::Output {
                    path: PathBuf::from("-"),
                    source: io::Error::new(io::ErrorKind::NotConnected, "standard output is closed"),
                });
            }
            OutputTarget::Stdout => (Box::new(io::stdout()), None, None),
            OutputTarget::File(path) => {
                let fail = |source| Error::Output {
                    path: path.clone(),
                    source,
                };
                match open_file_target(path).map_err(fail)? {
                    Opened::InPlace(file) => (Box::new(file), None, None),
                    Opened::Atomic { file, temp, dest } => {
                        let writer = file.try_clone().map_err(fail)?;
                        let sync = file.try_clone().map_err(fail)?;
                        (Box::new(writer), Some(sync), Some((file, temp, dest)))
                    }
                }
            }
        };
        Ok(ReferenceWriter {
            out: Background::new(out, sync).map_err(|source| Error::Output {
                path: target.display_path(),
                source,
            })?,
            target,
            pending,
            lines: 0,
            parts: None,
        })
    }

    /// Opens `path` for output in numbered parts of at most `lines_per_part` lines
    /// (see the module docs). Each part is a plain file written atomically.
    pub fn create_parts(path: PathBuf, lines_per_part: u64) -> Result<Self, Error> {
        ReferenceWriter::open_parts(path, lines_per_part, 0, None)
    }

    /// Opens `path` for a resumable run in parts (see the module docs), starting at
    /// part `first` (0, or the parts a [`Checkpoint`] says are done); `settings`
    /// describes the run, so that a run with other settings is not taken for this
    /// one; `by_position` records rows (a report's order) instead of keys.
    pub fn create_parts_resumable(
        path: PathBuf,
        lines_per_part: u64,
        first: usize,
        settings: String,
        by_position: bool,
    ) -> Result<Self, Error> {
        let resume = Resume {
            checkpoint: Checkpoint::path(&path),
            settings,
            last_key: String::new(),
            last_position: 0,
            by_position,
        };
        ReferenceWriter::open_parts(path, lines_per_part, first, Some(resume))
    }

    fn open_parts(path: PathBuf, lines_per_part: u64, first: usize, resume: Option<Resume>) -> Result<Self, Error> {
        let mut writer = ReferenceWriter::create(OutputTarget::File(part_path(&path, first)))?;
        if writer.pending.is_none() {
            return Err(writer.error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "numbered parts need plain files, not a device, FIFO or socket",
            )));
        }
        writer.target = OutputTarget::File(path.clone());
        writer.parts = Some(Parts {
            base: path,
            lines_per_part: lines_per_part.max(1),
            in_part: 0,
            done: Vec::new(),
            index: first,
            first,
            resume,
        });
        Ok(writer)
    }

    /// The files this writer puts in place on [`finish`](Self::finish): the target,
    /// or each part so far.
    pub fn outputs(&self) -> Vec<PathBuf> {
        match (&self.parts, &self.target) {
            (Some(parts), _) => (parts.first..=parts.index).map(|i| part_path(&parts.base, i)).collect(),
            (None, OutputTarget::File(p)) => vec![p.clone()],
            (None, OutputTarget::Stdout) => Vec::new(),
        }
    }

    /// Closes the full part and opens the next one.
    fn next_part(&mut self) -> Result<(), Error> {
        self.out.flush().map_err(|source| self.error(source))?;
        let Some(parts) = self.parts.as_mut() else {
            return Ok(());
        };
        let next = part_path(&parts.base, parts.index + 1);
        let fail = |source| Error::Output {
            path: next.clone(),
            source,
        };
        let Opened::Atomic { file, temp, dest } = open_file_target(&next).map_err(fail)? else {
            return Err(fail(io::Error::new(
                io::ErrorKind::InvalidInput,
                "numbered parts need plain files, not a device, FIFO or socket",
            )));
        };
        let writer = file.try_clone().map_err(fail)?;
        if let Some((full, full_temp, full_dest)) = self.pending.replace((file, temp, dest)) {
            let failed = |source| Error::Output {
                path: full_dest.clone(),
                source,
            };
            full.sync_all().map_err(failed)?;
            match &parts.resume {
                // Resumable: the part goes in place now, then the checkpoint says so.
                Some(resume) => {
                    full_temp.persist(&full_dest).map_err(|e| failed(e.error))?;
                    placed(&full_dest);
                    let checkpoint = Checkpoint {
                        settings: resume.settings.clone(),
                        parts: parts.index + 1,
                        last_key: resume.last_key.clone(),
                        position: resume.by_position.then_some(resume.last_position + 1),
                    };
                    write_checkpoint(&resume.checkpoint, &checkpoint)?;
                }
                None => parts.done.push((full_temp, full_dest)),
            }
        }
        let sync = writer.try_clone().map_err(fail)?;
        self.out = Background::new(Box::new(writer), Some(sync)).map_err(fail)?;
        parts.in_part = 0;
        parts.index += 1;
        Ok(())
    }

    /// Writes one line.
    pub fn write_line(&mut self, name: &str, url: &str) -> Result<(), Error> {
        if let Some(parts) = &self.parts
            && parts.in_part == parts.lines_per_part
        {
            self.next_part()?;
        }
        if let Some(parts) = &mut self.parts {
            parts.in_part += 1;
        }
        // Most names and every signed URL need no escaping: those are copied as they
        // are (serde_json's byte-by-byte escaping was a tenth of a run's CPU time);
        // any other goes through serde_json.
        let plain = |s: &str| {
            // Whole chunks without an early exit, so the compiler checks them
            // many bytes at a time.
            s.as_bytes().chunks(32).all(|chunk| {
                chunk
                    .iter()
                    .fold(true, |plain, &b| plain & (b >= 0x20) & (b != b'"') & (b != b'\\'))
            })
        };
        let result = if plain(name) && plain(url) {
            let out = &mut self.out;
            [
                b"{\"name\":\"".as_slice(),
                name.as_bytes(),
                b"\",\"url\":\"",
                url.as_bytes(),
                b"\"}\n",
            ]
            .into_iter()
            .try_for_each(|piece| out.write_all(piece))
        } else {
            serde_json::to_writer(&mut self.out, &ReferenceLineRef { name, url })
                .map_err(io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"))
        };
        result.map_err(|source| self.error(source))?;
        self.lines += 1;
        Ok(())
    }

    /// Writes the line of the object `key`. A resumable run records the key (for
    /// its checkpoint) and refuses one that does not come after the last in byte
    /// order: the run continues after its last key, so it relies on that order.
    pub fn write_keyed(&mut self, key: &str, name: &str, url: &str) -> Result<(), Error> {
        self.write_at(key, 0, name, url)
    }

    /// Writes the line of the object `key` at `position` in the run's order (a
    /// report's row): a resumable run in row order records the position instead
    /// of relying on key order.
    pub fn write_at(&mut self, key: &str, position: u64, name: &str, url: &str) -> Result<(), Error> {
        let Some(parts) = &self.parts else {
            return self.write_line(name, url);
        };
        if let Some(resume) = &parts.resume {
            if !resume.by_position && !resume.last_key.is_empty() && key <= resume.last_key.as_str() {
                return Err(Error::ResumeOrder {
                    key: key.to_owned(),
                    previous: resume.last_key.clone(),
                });
            }
            // A full part goes in place, with the checkpoint of its own last key,
            // before this line (the next part's first) is taken.
            if parts.in_part == parts.lines_per_part {
                self.next_part()?;
            }
        }
        if let Some(resume) = self.parts.as_mut().and_then(|p| p.resume.as_mut()) {
            resume.last_key.clear();
            resume.last_key.push_str(key);
            resume.last_position = position;
        }
        self.write_line(name, url)
    }

    /// Throws away what was written, for a run that starts over: `true` for a
    /// regular file (still a temporary file, so nobody has seen it), `false` for
    /// standard output or a special file, which cannot take lines back.
    pub fn rewind(&mut self) -> Result<bool, Error> {
        if self.parts.as_ref().is_some_and(|p| p.resume.is_some()) {
            // A resumable run's parts are in place as they fill: nothing to take back.
            return Ok(false);
        }
        if let Some(parts) = self.parts.take() {
            // The parts already closed are dropped (their temporary files go with
            // them) and the run starts again at part 0.
            let mut fresh = ReferenceWriter::create_parts(parts.base, parts.lines_per_part)?;
            std::mem::swap(self, &mut fresh);
            return Ok(true);
        }
        let Some((file, _, _)) = &mut self.pending else {
            return Ok(false);
        };
        // The buffer goes out first so that nothing lands after the truncation; the
        // writer's handle shares `file`'s offset, which the seek moves back.
        let flushed = self.out.flush();
        let truncated = flushed.and_then(|()| file.set_len(0)).and_then(|()| file.rewind());
        truncated.map_err(|source| self.error(source))?;
        self.lines = 0;
        Ok(true)
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes everything and, for a regular file, syncs it and renames it over the
    /// target.
    pub fn finish(mut self) -> Result<u64, Error> {
        self.out.flush().map_err(|source| self.error(source))?;
        let done = self
            .parts
            .as_mut()
            .map(|p| std::mem::take(&mut p.done))
            .unwrap_or_default();
        let count = self.parts.as_ref().map_or(0, |p| p.index) + 1;
        if let Some((file, temp, dest)) = self.pending.take() {
            file.sync_all().map_err(|source| self.error(source))?;
            // Every part is whole before any is put in place.
            for (part, part_dest) in done {
                part.persist(&part_dest).map_err(|e| Error::Output {
                    path: part_dest.clone(),
                    source: e.error,
                })?;
                placed(&part_dest);
            }
            temp.persist(&dest).map_err(|e| self.error(e.error))?;
            placed(&dest);
        }
        if let Some(parts) = &self.parts {
            // Parts of an earlier, longer run would otherwise read as this run's.
            let mut stale = count;
            while let Ok(meta) = std::fs::symlink_metadata(part_path(&parts.base, stale)) {
                if !meta.is_file() {
                    break;
                }
                std::fs::remove_file(part_path(&parts.base, stale)).map_err(|source| Error::Output {
                    path: part_path(&parts.base, stale),
                    source,
                })?;
                stale += 1;
            }
            if let Some(resume) = &parts.resume {
                // The run is whole: nothing is left to resume. Only a regular
                // file is removed: a link or a device named like a checkpoint is
                // the user's, not refgen's.
                let regular = std::fs::symlink_metadata(&resume.checkpoint).is_ok_and(|m| m.is_file());
                if regular && let Err(e) = std::fs::remove_file(&resume.checkpoint) {
                    return Err(Error::Output {
                        path: resume.checkpoint.clone(),
                        source: e,
                    });
                }
            }
        }
        Ok(self.lines)
    }

    fn error(&self, source: io::Error) -> Error {
        Error::Output {
            path: self.target.display_path(),
            source,
        }
    }
}

/// Files this process has put in place, in order: what an interrupted run leaves
/// behind (the parts of a resumable run, a references file already whole), for
/// the message that says so.
static PLACED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn placed(path: &Path) {
    let mut list = PLACED.lock().unwrap_or_else(|e| e.into_inner());
    if !list.iter().any(|p| p == path) {
        list.push(path.to_owned());
    }
}

/// The files refgen has put in place so far in this process (references files,
/// parts, checkpoints, retry files, exported files), in order.
pub fn files_in_place() -> Vec<PathBuf> {
    PLACED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Replaces the checkpoint file whole, under the target rules of every file
/// refgen writes ([`TargetFile`]).
fn write_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), Error> {
    let mut file = TargetFile::create(path)?;
    serde_json::to_writer(&mut file, checkpoint)
        .map_err(io::Error::from)
        .map_err(|source| Error::Output {
            path: path.to_owned(),
            source,
        })?;
    file.commit()
}

/// A file that refgen writes whole, under the target rules of the module docs: a
/// regular (or new) file is written to a temporary file beside it and renamed over
/// it by [`TargetFile::commit`] (the mode of an existing file kept; a new one
/// readable by its owner only); a symlink is followed, so the link stays a link; a
/// FIFO, a device or a socket is written in place, never replaced; a read-only
/// file, a folder and a missing folder are refused by [`TargetFile::create`], with
/// the target named. Dropped without a commit, it leaves the target as it was.
pub struct TargetFile {
    /// The path as given, for messages.
    path: PathBuf,
    file: File,
    /// For a regular file: the temporary file and where it goes.
    staged: Option<(TempPath, PathBuf)>,
}

impl std::fmt::Debug for TargetFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetFile")
            .field("path", &self.path)
            .field("in_place", &self.staged.is_none())
            .finish()
    }
}

impl TargetFile {
    /// Opens `path` for writing under the target rules; nothing is replaced yet.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let fail = |source| Error::Output {
            path: path.to_owned(),
            source,
        };
        match open_file_target(path).map_err(fail)? {
            Opened::InPlace(file) => Ok(TargetFile {
                path: path.to_owned(),
                file,
                staged: None,
            }),
            Opened::Atomic { file, temp, dest } => Ok(TargetFile {
                path: path.to_owned(),
                file,
                staged: Some((temp, dest)),
            }),
        }
    }

    /// True when the target is a FIFO, a device or a socket, written in place.
    pub fn is_in_place(&self) -> bool {
        self.staged.is_none()
    }

    /// The temporary file that becomes the target on commit (none for a target
    /// written in place), for a writer that needs a path (a download).
    pub fn staging_path(&self) -> Option<&Path> {
        self.staged.as_ref().map(|(temp, _)| temp.as_ref())
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies the whole file at `from` into this target (for a target written in
    /// place, whose content was made elsewhere).
    pub fn fill_from(&mut self, from: &Path) -> Result<u64, Error> {
        let fail = |source| Error::Output {
            path: self.path.clone(),
            source,
        };
        let mut source = File::open(from).map_err(fail)?;
        if self.staged.is_some() {
            self.file.set_len(0).and_then(|()| self.file.rewind()).map_err(fail)?;
        }
        io::copy(&mut source, &mut self.file).map_err(fail)
    }

    /// Puts the file in place: syncs a regular file's temporary file and renames it
    /// over the target; flushes a special file.
    pub fn commit(mut self) -> Result<(), Error> {
        let path = self.path.clone();
        let fail = |source| Error::Output {
            path: path.clone(),
            source,
        };
        self.file.flush().map_err(fail)?;
        if let Some((temp, dest)) = self.staged.take() {
            self.file.sync_all().map_err(fail)?;
            temp.persist(&dest).map_err(|e| fail(e.error))?;
        }
        placed(&self.path);
        Ok(())
    }
}

impl Write for TargetFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

enum Opened {
    /// A FIFO, device or socket: written as it is.
    InPlace(File),
    /// A temporary file renamed to `dest` on success.
    Atomic { file: File, temp: TempPath, dest: PathBuf },
}

/// Whether the process started with its standard output closed (`refgen … >&-`).
/// Rust's runtime then opens /dev/null in its place, read-write, so every line
/// would be "written" and the run would report references that went nowhere. A
/// shell's own `> /dev/null` opens it write-only, and stays a quiet success.
/// (rustix, which tempfile already brings, because this crate forbids unsafe code.)
fn stdout_was_closed() -> bool {
    use rustix::fs::{FileType, OFlags};
    let stdout = io::stdout();
    let Ok(stat) = rustix::fs::fstat(&stdout) else {
        return true;
    };
    let null = FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice
        && rustix::fs::major(stat.st_rdev) == 1
        && rustix::fs::minor(stat.st_rdev) == 3;
    let read_write = rustix::fs::fcntl_getfl(&stdout).is_ok_and(|flags| flags.contains(OFlags::RDWR));
    null && read_write
}

/// Symlinks followed at most this deep (as the kernel's own limit).
const MAX_LINKS: usize = 40;

fn open_file_target(path: &Path) -> io::Result<Opened> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dest = resolve_links(path)?;
    let existing = match std::fs::metadata(&dest) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mode = match &existing {
        Some(meta) if meta.is_dir() => {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a folder, not a file"));
        }
        Some(meta) if !meta.is_file() => {
            let kind = meta.file_type();
            let what = if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_char_device() || kind.is_block_device() {
                "a device"
            } else {
                "a special file"
            };
            tracing::debug!("{} is {what}: writing into it in place", dest.display());
            let file = std::fs::OpenOptions::new().write(true).open(&dest)?;
            return Ok(Opened::InPlace(file));
        }
        Some(meta) => {
            // Root may write anything, so the mode is the test that holds for all.
            if meta.permissions().readonly() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "is read-only (refusing to replace it)",
                ));
            }
            // Opening for writing (without truncating) asks the system whether this
            // user may write it.
            std::fs::OpenOptions::new().write(true).open(&dest)?;
            meta.permissions().mode() & 0o7777
        }
        // A new file is readable by its owner only: its URLs grant access to objects.
        None => 0o600,
    };
    let folder = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("folder `{}` does not exist", folder.display()),
        ));
    }
    let file = tempfile::Builder::new()
        .prefix(".refgen-")
        .suffix(".partial")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(folder)
        // tempfile's own text names its random file; say which folder and why.
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create a file in folder `{}`: {}", folder.display(), e.kind()),
            )
        })?;
    if existing.is_some() {
        // The umask applied at creation; an existing file's mode is kept exactly.
        file.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    let (file, temp) = file.into_parts();
    Ok(Opened::Atomic { file, temp, dest })
}

/// The path `path` ends at once its symlinks are followed (the last one may point
/// to a file that does not exist yet, which is then created there).
fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)?;
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "too many levels of symbolic links",
    ))
}

/// A log refgen appends to: an upload's record of what the service confirmed, so
/// a rerun sends only the rest. Each [`AppendLog::append`] writes whole lines in
/// one write and syncs them before it returns; a line cut short by a crash is
/// ended before the next write, and [`AppendLog::lines`] leaves it out. Only a
/// regular (or new) file is a log: a folder, a FIFO, a device or a socket is refused.
#[derive(Debug)]
pub struct AppendLog {
    path: PathBuf,
    file: File,
}

impl AppendLog {
    /// Refuses what cannot be a log: anything but a regular file (a FIFO would
    /// block the read, a device swallow the lines), and a read-only file (which
    /// root could otherwise write).
    fn check(path: &Path) -> Result<(), Error> {
        let refuse = |why: &str| Error::Output {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()),
        };
        match std::fs::metadata(path) {
            Ok(meta) if !meta.is_file() => Err(refuse(
                "not a plain file (a log of what was uploaded is kept in a plain file)",
            )),
            Ok(meta) if meta.permissions().readonly() => Err(refuse("is read-only (refusing to add to it)")),
            _ => Ok(()),
        }
    }

    /// Opens (or creates, readable by its owner only) the log at `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let fail = |source| Error::Output {
            path: path.to_owned(),
            source,
        };
        Self::check(path)?;
        let mut options = std::fs::OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(fail)?;
        // A last line without its end was cut short: end it, so it stays apart.
        let length = file.metadata().map_err(fail)?.len();
        if length > 0 {
            use std::io::Read;
            let mut last = [0u8; 1];
            file.seek(io::SeekFrom::Start(length - 1)).map_err(fail)?;
            file.read_exact(&mut last).map_err(fail)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(fail)?;
            }
        }
        Ok(AppendLog {
            path: path.to_owned(),
            file,
        })
    }

    /// Appends `lines` (each without its end) in one write, and syncs them.
    pub fn append<S: AsRef<str>>(&mut self, lines: &[S]) -> Result<(), Error> {
        let mut buffer = String::new();
        for line in lines {
            buffer.push_str(line.as_ref());
            buffer.push('\n');
        }
        let fail = |source| Error::Output {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(buffer.as_bytes()).map_err(fail)?;
        self.file.sync_data().map_err(fail)
    }

    /// The whole lines of the log at `path`, read as they are asked for (none
    /// when there is no log yet); a last line without its end is left out.
    pub fn lines(path: &Path) -> Result<impl Iterator<Item = Result<String, Error>> + use<>, Error> {
        Self::check(path)?;
        let owned = path.to_owned();
        let file = match File::open(path) {
            Ok(file) => Some(io::BufReader::new(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(Error::Output { path: owned, source }),
        };
        let mut reader = file;
        Ok(std::iter::from_fn(move || {
            use std::io::BufRead;
            let reader = reader.as_mut()?;
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => return None,
                    // Cut short by a crash: not a line.
                    Ok(_) if line.last() != Some(&b'\n') => return None,
                    Ok(_) if line.len() == 1 => continue,
                    Ok(_) => {
                        line.pop();
                        return Some(Ok(String::from_utf8_lossy(&line).into_owned()));
                    }
                    Err(source) => {
                        return Some(Err(Error::Output {
                            path: owned.clone(),
                            source,
                        }));
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that takes `room` bytes, then fails: a full disk, a closed pipe.
    struct Sink {
        got: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
        room: usize,
    }

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut got = self.got.lock().expect("lock");
            if got.len() + bytes.len() > self.room {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
            }
            got.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The writing thread writes every chunk in order, and its error reaches the
    /// writer: at a later write, or at the flush that ends a run.
    #[test]
    fn the_writing_thread_keeps_order_and_reports_its_error() {
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut out = Background::new(
            Box::new(Sink {
                got: std::sync::Arc::clone(&got),
                room: usize::MAX,
            }),
            None,
        )
        .expect("thread");
        let mut want = Vec::new();
        for i in 0..200_000u32 {
            let line = format!("{i}\n");
            out.write_all(line.as_bytes()).expect("written");
            want.extend_from_slice(line.as_bytes());
        }
        out.flush().expect("flushed");
        assert_eq!(*got.lock().expect("lock"), want);

        // Full after 1 MB: a write soon after, or the flush, fails with the sink's error.
        let mut out = Background::new(
            Box::new(Sink {
                got: std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
                room: 1 << 20,
            }),
            None,
        )
        .expect("thread");
        let line = [b'x'; 1000];
        let failed = (0..10_000)
            .map(|_| out.write_all(&line))
            .find_map(Result::err)
            .or_else(|| out.flush().err())
            .expect("the error reaches the writer");
        assert_eq!(failed.kind(), io::ErrorKind::StorageFull, "{failed}");
        assert!(out.flush().is_err(), "a writer whose thread failed stays failed");
    }

    #[test]
    fn a_rewound_file_holds_only_what_came_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("refs.jsonl");
        let mut w = ReferenceWriter::create(OutputTarget::File(path.clone())).expect("create");
        for i in 0..5000 {
            w.write_line(&format!("old-{i}"), "https://x/old").expect("write");
        }
        assert!(w.rewind().expect("rewinds"));
        assert_eq!(w.lines(), 0);
        w.write_line("new", "https://x/new").expect("write");
        assert_eq!(w.finish().expect("finish"), 1);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "{\"name\":\"new\",\"url\":\"https://x/new\"}\n");
        assert!(
            !ReferenceWriter::create(OutputTarget::Stdout)
                .expect("stdout")
                .rewind()
                .expect("ok")
        );
    }

    #[test]
    fn parts_are_numbered_whole_files_put_in_place_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("refs.jsonl");
        assert_eq!(part_path(&base, 7), dir.path().join("refs-00007.jsonl"));
        assert_eq!(part_path(&dir.path().join("refs"), 0), dir.path().join("refs-00000"));
        // An earlier run left four parts; this one makes three.
        for i in 0..4 {
            std::fs::write(part_path(&base, i), "old\n").expect("seed");
        }
        let mut w = ReferenceWriter::create_parts(base.clone(), 4).expect("create");
        for i in 0..10 {
            w.write_line(&format!("n{i}"), "https://x/u").expect("write");
            assert_eq!(std::fs::read_to_string(part_path(&base, 0)).expect("old part"), "old\n");
        }
        assert_eq!(w.outputs(), (0..3).map(|i| part_path(&base, i)).collect::<Vec<_>>());
        assert_eq!(w.finish().expect("finish"), 10);
        let lines = |i| {
            std::fs::read_to_string(part_path(&base, i))
                .expect("part")
                .lines()
                .count()
        };
        assert_eq!((lines(0), lines(1), lines(2)), (4, 4, 2));
        assert!(!part_path(&base, 3).exists(), "the earlier run's fourth part is gone");
        let files: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(files.len(), 3, "no temporary file left");

        // A run that fails leaves the parts as they were.
        let mut w = ReferenceWriter::create_parts(base.clone(), 2).expect("create");
        for i in 0..7 {
            w.write_line(&format!("x{i}"), "https://x/u").expect("write");
        }
        drop(w);
        assert_eq!(lines(0), 4);
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 3);
    }

    #[test]
    fn file_appears_only_on_finish_and_lines_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("refs.jsonl");
        let mut w = ReferenceWriter::create(OutputTarget::File(path.clone())).expect("create");
        let tricky = [
            "quote\"double.jpg",
            "back\\slash",
            "new\nline\ttab",
            "日本語😀",
            "\u{1}ctl",
        ];
        for name in tricky {
            w.write_line(name, "https://h/x?a=1&b=2").expect("write");
        }
        assert!(!path.exists(), "target must not exist before finish");
        assert_eq!(w.finish().expect("finish"), 5);
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<ReferenceLine> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, tricky);
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("ls").count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn dropped_writer_leaves_target_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("refs.jsonl");
        std::fs::write(&path, "old\n").expect("seed");
        let mut w = ReferenceWriter::create(OutputTarget::File(path.clone())).expect("create");
        w.write_line("a", "u").expect("write");
        drop(w);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old\n");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn a_symlink_stays_a_link_and_its_file_is_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real.jsonl");
        std::fs::write(&real, "old\n").expect("seed");
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        std::fs::create_dir(dir.path().join("links")).expect("mkdir");
        let link = dir.path().join("links/refs.jsonl");
        std::os::unix::fs::symlink("../real.jsonl", &link).expect("symlink");
        let mut w = ReferenceWriter::create(OutputTarget::File(link.clone())).expect("create");
        w.write_line("a", "https://x/a").expect("write");
        assert_eq!(w.finish().expect("finish"), 1);
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("lstat")
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(&real).expect("read"),
            "{\"name\":\"a\",\"url\":\"https://x/a\"}\n"
        );
        let mode = std::fs::metadata(&real).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "the replaced file keeps its mode");
        // A dangling link: the file is created where it points.
        let dangling = dir.path().join("dangling.jsonl");
        std::os::unix::fs::symlink("made.jsonl", &dangling).expect("symlink");
        ReferenceWriter::create(OutputTarget::File(dangling.clone()))
            .expect("create")
            .finish()
            .expect("finish");
        assert!(dir.path().join("made.jsonl").is_file());
        assert!(
            std::fs::symlink_metadata(&dangling)
                .expect("lstat")
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_fifo_is_written_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("refs.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).expect("read the fifo"))
        };
        let mut w = ReferenceWriter::create(OutputTarget::File(fifo.clone())).expect("create");
        w.write_line("a", "https://x/a").expect("write");
        assert!(!w.rewind().expect("rewind"), "a FIFO cannot take lines back");
        w.finish().expect("finish");
        assert_eq!(
            reader.join().expect("reader"),
            "{\"name\":\"a\",\"url\":\"https://x/a\"}\n"
        );
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::symlink_metadata(&fifo).expect("lstat").file_type().is_fifo());
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("ls").count(),
            1,
            "no temporary file"
        );
    }

    #[test]
    fn a_read_only_file_is_refused_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("refs.jsonl");
        std::fs::write(&path, "old\n").expect("seed");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        let err = ReferenceWriter::create(OutputTarget::File(path.clone())).expect_err("read-only");
        assert!(err.to_string().contains("read-only"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old\n");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn missing_folder_is_refused_at_create() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = ReferenceWriter::create(OutputTarget::File(dir.path().join("nope/refs.jsonl")))
            .expect_err("missing folder");
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = ReferenceWriter::create(OutputTarget::File(dir.path().to_path_buf())).expect_err("a folder");
        assert!(err.to_string().contains("is a folder"), "{err}");
    }

    #[test]
    fn every_target_file_follows_the_target_rules() {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |path: &Path, text: &str| -> Result<(), Error> {
            let mut file = TargetFile::create(path)?;
            file.write_all(text.as_bytes()).expect("write");
            file.commit()
        };
        // A character device made here (never the system's), when allowed.
        let null = dir.path().join("null");
        let made = std::process::Command::new("mknod")
            .arg(&null)
            .args(["c", "1", "3"])
            .status()
            .is_ok_and(|s| s.success());
        if made {
            write(&null, "x\n").expect("a device is written in place");
            assert!(
                std::fs::symlink_metadata(&null)
                    .expect("lstat")
                    .file_type()
                    .is_char_device()
            );
        }
        // A symlink: followed; the link stays.
        std::fs::write(dir.path().join("real"), "old\n").expect("seed");
        std::os::unix::fs::symlink("real", dir.path().join("link")).expect("symlink");
        write(&dir.path().join("link"), "new\n").expect("through the link");
        assert_eq!(std::fs::read_to_string(dir.path().join("real")).expect("read"), "new\n");
        assert!(
            std::fs::symlink_metadata(dir.path().join("link"))
                .expect("lstat")
                .file_type()
                .is_symlink()
        );
        // Read-only: refused and kept.
        let ro = dir.path().join("ro");
        std::fs::write(&ro, "kept\n").expect("seed");
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        let err = write(&ro, "x").expect_err("read-only");
        assert!(err.to_string().contains("read-only"), "{err}");
        assert_eq!(std::fs::read_to_string(&ro).expect("read"), "kept\n");
        // A missing folder: the target named, no tempfile text.
        let err = write(&dir.path().join("nope/retry.jsonl"), "x").expect_err("missing folder");
        let text = err.to_string();
        assert!(
            text.contains("nope/retry.jsonl") && text.contains("does not exist"),
            "{text}"
        );
        assert!(!text.contains("os error") && !text.contains(".refgen-"), "{text}");
        // Dropped before commit: nothing changes, nothing is left.
        let mut file = TargetFile::create(&dir.path().join("real")).expect("create");
        file.write_all(b"lost").expect("write");
        drop(file);
        assert_eq!(std::fs::read_to_string(dir.path().join("real")).expect("read"), "new\n");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".refgen")), "{names:?}");
    }

    #[test]
    fn a_checkpoint_named_like_a_special_file_is_kept() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("refs.jsonl");
        // The checkpoint's name is a link to a file elsewhere: written through it,
        // and the link is not removed when the run ends.
        let elsewhere = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, Checkpoint::path(&base)).expect("symlink");
        let mut w = ReferenceWriter::create_parts_resumable(base.clone(), 1, 0, "s".into(), false).expect("create");
        w.write_keyed("a", "a", "https://x/a").expect("write");
        w.write_keyed("b", "b", "https://x/b").expect("write");
        assert!(elsewhere.is_file(), "the checkpoint went through the link");
        w.finish().expect("finish");
        assert!(
            std::fs::symlink_metadata(Checkpoint::path(&base))
                .expect("lstat")
                .file_type()
                .is_symlink(),
            "the link is the user's"
        );
        // A FIFO in its place is never replaced by a regular file.
        std::fs::remove_file(Checkpoint::path(&base)).expect("rm");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(Checkpoint::path(&base))
                .status()
                .expect("mkfifo")
                .success()
        );
        let reader = {
            let fifo = Checkpoint::path(&base);
            std::thread::spawn(move || std::fs::read_to_string(fifo).expect("read"))
        };
        let mut w = ReferenceWriter::create_parts_resumable(base.clone(), 1, 0, "s".into(), false).expect("create");
        w.write_keyed("a", "a", "https://x/a").expect("write");
        w.write_keyed("b", "b", "https://x/b").expect("write");
        assert!(reader.join().expect("reader").contains("\"last_key\":\"a\""));
        w.finish().expect("finish");
        assert!(
            std::fs::symlink_metadata(Checkpoint::path(&base))
                .expect("lstat")
                .file_type()
                .is_fifo()
        );
    }

    #[test]
    fn an_append_log_keeps_whole_lines_and_sets_a_torn_one_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.jsonl");
        assert_eq!(AppendLog::lines(&path).expect("no log yet").count(), 0);
        AppendLog::open(&path)
            .expect("opens")
            .append(&["one", "two"])
            .expect("appends");
        // A crash in the middle of a write leaves a line without its end.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"thr"))
            .expect("torn write");
        let read = |p: &Path| -> Vec<String> {
            AppendLog::lines(p)
                .expect("reads")
                .collect::<Result<_, _>>()
                .expect("lines")
        };
        assert_eq!(read(&path), ["one", "two"]);
        AppendLog::open(&path)
            .expect("opens again")
            .append(&["four"])
            .expect("appends");
        assert_eq!(read(&path), ["one", "two", "thr", "four"]);
        let err = AppendLog::open(dir.path()).expect_err("a folder is not a log");
        assert!(err.to_string().contains("not a plain file"), "{err}");
        // A FIFO is refused before it is opened: reading it would wait for a writer.
        let fifo = dir.path().join("fifo.jsonl");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .expect("mkfifo")
                .success()
        );
        let err = AppendLog::lines(&fifo).map(|_| ()).expect_err("a FIFO is not a log");
        assert!(err.to_string().contains("not a plain file"), "{err}");
        assert!(AppendLog::open(&fifo).is_err());
        let read_only = dir.path().join("read-only.jsonl");
        std::fs::write(&read_only, "").expect("write");
        std::fs::set_permissions(&read_only, std::os::unix::fs::PermissionsExt::from_mode(0o444)).expect("chmod");
        let err = AppendLog::open(&read_only).expect_err("read-only");
        assert!(err.to_string().contains("read-only"), "{err}");
    }
}
