//! The references file: one JSON object per line, `{"name": "...", "url": "..."}`.
//!
//! Lines are written with serde_json (full escaping of quotes, backslashes, control
//! characters; non-ASCII kept as UTF-8) through a large buffer. A file target is
//! written atomically: lines go to a temporary file in the target's folder, which is
//! renamed over the target only by [`ReferenceWriter::finish`]. If the run fails or
//! is interrupted, the temporary file is removed and the target is left untouched.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
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

/// Streams reference lines to standard output or, atomically, to a file.
pub struct ReferenceWriter {
    out: BufWriter<Box<dyn Write + Send>>,
    target: OutputTarget,
    /// The temporary file renamed over the target on success (file targets only).
    pending: Option<(File, TempPath)>,
    lines: u64,
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
    /// Opens the target. For a file, this checks at once that its folder exists and
    /// is writable (by creating the temporary file), before any listing starts.
    pub fn create(target: OutputTarget) -> Result<Self, Error> {
        let (out, pending): (Box<dyn Write + Send>, _) = match &target {
            OutputTarget::Stdout => (Box::new(io::stdout()), None),
            OutputTarget::File(path) => {
                let (file, temp) = temp_file_beside(path).map_err(|source| Error::Output {
                    path: path.clone(),
                    source,
                })?;
                let writer = file.try_clone().map_err(|source| Error::Output {
                    path: path.clone(),
                    source,
                })?;
                (Box::new(writer), Some((file, temp)))
            }
        };
        Ok(ReferenceWriter {
            out: BufWriter::with_capacity(BUFFER_BYTES, out),
            target,
            pending,
            lines: 0,
        })
    }

    /// Writes one line.
    pub fn write_line(&mut self, name: &str, url: &str) -> Result<(), Error> {
        let result = serde_json::to_writer(&mut self.out, &ReferenceLineRef { name, url })
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        result.map_err(|source| self.error(source))?;
        self.lines += 1;
        Ok(())
    }

    /// Throws away what was written, for a run that starts over: `true` for a file
    /// (still a temporary file, so nobody has seen it), `false` for standard output,
    /// which cannot take lines back.
    pub fn rewind(&mut self) -> Result<bool, Error> {
        let Some((file, _)) = &mut self.pending else {
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

    /// Flushes everything and, for a file, syncs it and renames it over the target.
    pub fn finish(mut self) -> Result<u64, Error> {
        self.out.flush().map_err(|source| self.error(source))?;
        if let Some((file, temp)) = self.pending.take() {
            file.sync_all().map_err(|source| self.error(source))?;
            let OutputTarget::File(path) = &self.target else {
                unreachable!("only file targets have a pending temporary file")
            };
            temp.persist(path).map_err(|e| self.error(e.error))?;
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

fn temp_file_beside(path: &Path) -> io::Result<(File, TempPath)> {
    if path.is_dir() {
        return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a folder, not a file"));
    }
    let folder = match path.parent() {
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
        .tempfile_in(folder)?;
    Ok(file.into_parts())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn missing_folder_is_refused_at_create() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = ReferenceWriter::create(OutputTarget::File(dir.path().join("nope/refs.jsonl")))
            .expect_err("missing folder");
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = ReferenceWriter::create(OutputTarget::File(dir.path().to_path_buf())).expect_err("a folder");
        assert!(err.to_string().contains("is a folder"), "{err}");
    }
}
