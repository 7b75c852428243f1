//! The one reader of a references file: `submit` checks and chunks it, `verify`
//! samples it, `batches failures` compares it with a batch and copies its failed
//! lines. Each reads it a line at a time through [`lines`], so a file of any
//! size costs a line of memory, and a bad line is described the same way
//! wherever it is met.

use std::io::BufRead;
use std::path::{Path, PathBuf};

pub use refgen_core::writer::ReferenceLine;

use crate::Error;

/// One non-blank line of a references file, as it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its number in the file, from 1.
    pub number: usize,
    /// The text, without its line ending.
    pub text: String,
}

impl Line {
    /// The `{name, url}` reference the line holds; the error names `path` and the line.
    pub fn reference(&self, path: &Path) -> Result<ReferenceLine, Error> {
        serde_json::from_str(&self.text).map_err(|e| Error::References {
            path: path.to_owned(),
            line: self.number,
            reason: format!("not a JSON object with name and url: {e}"),
        })
    }
}

/// The non-blank lines of the file at `path`, read as they are asked for. A
/// line that is not UTF-8 is an error naming it; so is a read that fails.
pub fn lines(path: &Path) -> Result<impl Iterator<Item = Result<Line, Error>> + use<>, Error> {
    let owned: PathBuf = path.to_owned();
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: owned.clone(),
        source,
    })?;
    let mut read = std::io::BufReader::new(file).lines().enumerate();
    Ok(std::iter::from_fn(move || {
        loop {
            let (n, line) = read.next()?;
            let text = match line {
                Ok(text) => text,
                Err(source) if source.kind() == std::io::ErrorKind::InvalidData => {
                    return Some(Err(Error::References {
                        path: owned.clone(),
                        line: n + 1,
                        reason: "is not UTF-8 text".to_owned(),
                    }));
                }
                Err(source) => {
                    return Some(Err(Error::Io {
                        path: owned.clone(),
                        source,
                    }));
                }
            };
            if !text.trim().is_empty() {
                return Some(Ok(Line { number: n + 1, text }));
            }
        }
    }))
}

/// Calls `f` with each reference of the file at `path` and its line's text,
/// stopping at the first bad line or the first error `f` returns.
pub fn for_each(path: &Path, mut f: impl FnMut(&ReferenceLine, &Line) -> Result<(), Error>) -> Result<(), Error> {
    for line in lines(path)? {
        let line = line?;
        f(&line.reference(path)?, &line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn blank_lines_are_skipped_and_a_bad_line_is_named_by_its_number() {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(b"{\"name\":\"a\",\"url\":\"https://x/a\"}\n\n  \n{\"name\":1}\n\xff\n")
            .expect("writes");
        let read: Vec<Result<Line, Error>> = lines(f.path()).expect("opens").collect();
        let first = read[0].as_ref().expect("first line");
        assert_eq!(first.number, 1);
        assert_eq!(first.reference(f.path()).expect("parses").name, "a");
        let second = read[1].as_ref().expect("line 4");
        let err = second.reference(f.path()).expect_err("not a reference");
        assert!(
            err.to_string().contains("line 4: not a JSON object with name and url"),
            "{err}"
        );
        let err = read[2].as_ref().expect_err("not UTF-8");
        assert!(err.to_string().contains("line 5: is not UTF-8 text"), "{err}");
        assert_eq!(read.len(), 3);
    }
}
