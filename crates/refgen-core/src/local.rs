//! Local files as a source: folders, single files and globs on this machine,
//! walked as a stream of files with the names a bucket's keys would get.
//!
//! Every file gets a *key*: its path relative to the sources' common folder,
//! with `/` between segments, so one source folder gives the keys a bucket
//! holding that folder would (`./frames` → `a/x.jpg`), and several sources
//! (`./day1 ./day2`) keep their folder in the key (`day1/x.jpg`, `day2/x.jpg`):
//! names made from keys never collide. A source with wildcards
//! (`'./frames/**/*.jpg'`) walks its literal folder and keeps the keys the
//! pattern matches; `--include`/`--exclude`, presets and the size limit are the
//! bucket's [`Selection`].
//!
//! The walk streams (one folder's entries at a time, sorted by name, so the
//! order is the same on every run), follows symbolic links to files and to
//! folders, and reports a link that loops back to a folder above it instead of
//! following it. Hidden entries (a name starting with `.`) are skipped unless
//! asked for; a file that cannot be opened, a name that is not UTF-8 and
//! anything that is not a plain file are skipped with their reason.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use walkdir::WalkDir;

use crate::filter::{Selection, SelectionBuilder, Verdict};
use crate::{Error, ObjectMeta};

/// A source argument: a folder, a file, or a glob under a folder.
#[derive(Debug, Clone)]
struct Root {
    /// What is walked: a folder, or one file.
    walk: PathBuf,
    /// Which keys are kept.
    selection: Selection,
}

/// Local sources, resolved: each walk, the common folder the keys are relative to.
#[derive(Debug, Clone)]
pub struct LocalSources {
    roots: Vec<Root>,
    base: PathBuf,
    hidden: bool,
}

/// How to select among the files (as for a bucket).
#[derive(Debug, Clone, Default)]
pub struct LocalSelection {
    /// `--include` globs.
    pub include: Vec<String>,
    /// `--exclude` globs.
    pub exclude: Vec<String>,
    /// Presets (extensions).
    pub presets: Vec<crate::filter::MediaPreset>,
    /// Case-insensitive globs.
    pub ignore_case: bool,
    /// Larger files are skipped.
    pub max_size: Option<u64>,
    /// Hidden files and folders are walked too.
    pub hidden: bool,
}

/// A file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its key: the path below the sources' common folder, `/`-separated.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Why a file is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LocalSkip {
    /// Not selected by the pattern, `--include`/`--exclude` or a preset.
    Filtered,
    /// Larger than the size limit.
    TooLarge,
    /// A hidden file or folder (its name starts with `.`).
    Hidden,
    /// It cannot be read (permissions, a dangling link, an I/O error), or its name
    /// is not UTF-8.
    Unreadable,
    /// A symbolic link to a folder above it.
    SymlinkLoop,
    /// A FIFO, socket or device.
    NotAFile,
}

impl LocalSkip {
    /// Its name in reports: `filtered`, `too-large`, `hidden`, `unreadable`, `symlink-loop`, `not-a-file`.
    pub fn name(self) -> &'static str {
        match self {
            LocalSkip::Filtered => "filtered",
            LocalSkip::TooLarge => "too-large",
            LocalSkip::Hidden => "hidden",
            LocalSkip::Unreadable => "unreadable",
            LocalSkip::SymlinkLoop => "symlink-loop",
            LocalSkip::NotAFile => "not-a-file",
        }
    }
}

impl fmt::Display for LocalSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One step of the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walked {
    /// A file to send.
    File(LocalFile),
    /// A path not sent, and why (`detail`: the error, for unreadable ones).
    Skipped {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: LocalSkip,
        /// What went wrong, when something did.
        detail: Option<String>,
    },
}

/// Whether `arg` names a local path rather than a bucket URL.
pub fn is_local(arg: &str) -> bool {
    !arg.contains("://")
}

fn has_wildcard(segment: &str) -> bool {
    segment.contains(['*', '?', '[', '{'])
}

/// An I/O error's words, without Rust's ` (os error N)` tail.
fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_owned(),
        _ => text,
    }
}

/// `path` made absolute and clean of `.` and `..` (by its text: a link is not
/// resolved, so keys follow the path as given).
fn absolute(path: &Path) -> Result<PathBuf, Error> {
    let joined = std::path::absolute(path).map_err(|e| Error::InvalidSource {
        url: path.display().to_string(),
        reason: io_text(&e),
    })?;
    let mut clean = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    Ok(clean)
}

/// `(folder, pattern)`: the literal folder of a source, and the glob below it
/// (empty for a plain folder or file).
fn split_glob(arg: &str) -> (PathBuf, String) {
    let segments: Vec<&str> = arg.split('/').collect();
    match segments.iter().position(|s| has_wildcard(s)) {
        None => (PathBuf::from(arg), String::new()),
        Some(i) => {
            let folder = segments[..i].join("/");
            let folder = if folder.is_empty() && arg.starts_with('/') {
                "/".to_owned()
            } else if folder.is_empty() {
                ".".to_owned()
            } else {
                folder
            };
            (PathBuf::from(folder), segments[i..].join("/"))
        }
    }
}

fn key_of(base: &Path, path: &Path) -> Option<String> {
    let below = path.strip_prefix(base).ok()?;
    let mut key = String::new();
    for part in below.components() {
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str(part.as_os_str().to_str()?);
    }
    Some(key)
}

impl LocalSources {
    /// Resolves the source arguments: each must exist; none may lie inside another
    /// (a file would be sent twice).
    pub fn new(args: &[String], select: &LocalSelection) -> Result<Self, Error> {
        let invalid = |url: &str, reason: String| Error::InvalidSource {
            url: url.to_owned(),
            reason,
        };
        if args.is_empty() {
            return Err(invalid("", "no local path given".into()));
        }
        let mut walks = Vec::new();
        for arg in args {
            let (folder, pattern) = split_glob(arg);
            let walk = absolute(&folder)?;
            let meta =
                std::fs::metadata(&walk).map_err(|e| invalid(arg, format!("{}: {}", walk.display(), io_text(&e))))?;
            if !pattern.is_empty() && !meta.is_dir() {
                return Err(invalid(arg, format!("{} is not a folder", folder.display())));
            }
            if !meta.is_dir() && !meta.is_file() {
                return Err(invalid(arg, "not a folder or a plain file".into()));
            }
            walks.push((arg.clone(), walk, pattern, meta.is_dir()));
        }
        for (i, (a, x, _, _)) in walks.iter().enumerate() {
            for (b, y, _, _) in &walks[i + 1..] {
                if x.starts_with(y) || y.starts_with(x) {
                    return Err(invalid(
                        a,
                        format!("it overlaps {b}: one lies inside the other, so files would be sent twice"),
                    ));
                }
            }
        }
        // The keys' common folder: a folder source's own when alone, else the
        // deepest folder holding every source.
        let folder_of = |walk: &Path, is_dir: bool| {
            if is_dir {
                walk.to_owned()
            } else {
                walk.parent().map(Path::to_owned).unwrap_or_default()
            }
        };
        let mut base = match walks.as_slice() {
            [(_, walk, _, is_dir)] => folder_of(walk, *is_dir),
            _ => walks[0].1.parent().map(Path::to_owned).unwrap_or_default(),
        };
        for (_, walk, _, _) in &walks {
            while !walk.starts_with(&base) {
                if !base.pop() {
                    break;
                }
            }
        }
        let mut roots = Vec::new();
        for (arg, walk, pattern, is_dir) in walks {
            let folder = key_of(&base, &folder_of(&walk, is_dir))
                .ok_or_else(|| invalid(&arg, "its path is not UTF-8".into()))?;
            let mut full = String::new();
            if !folder.is_empty() {
                full.push_str(&folder);
                full.push('/');
            }
            full.push_str(&pattern);
            let selection = SelectionBuilder::new(full)
                .include(select.include.clone())
                .exclude(select.exclude.clone())
                .case_insensitive(select.ignore_case)
                .max_size(select.max_size);
            let selection = select.presets.iter().fold(selection, |s, p| s.preset(*p)).build()?;
            roots.push(Root { walk, selection });
        }
        Ok(LocalSources {
            roots,
            base,
            hidden: select.hidden,
        })
    }

    /// The folder the keys are relative to.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// What is walked, one path per source.
    pub fn walked_paths(&self) -> Vec<PathBuf> {
        self.roots.iter().map(|r| r.walk.clone()).collect()
    }

    /// Walks every source in turn, one step at a time (see the module doc).
    pub fn walk(&self) -> impl Iterator<Item = Walked> + Send + '_ {
        self.roots.iter().flat_map(move |root| {
            let hidden = self.hidden;
            let top = root.walk.clone();
            let mut entries = WalkDir::new(&root.walk)
                .follow_links(true)
                .sort_by_file_name()
                .into_iter();
            std::iter::from_fn(move || {
                loop {
                    let entry = entries.next()?;
                    // A hidden folder is reported once (below); its files are not walked.
                    if let Ok(e) = &entry
                        && e.file_type().is_dir()
                        && !hidden
                        && is_hidden(e)
                    {
                        entries.skip_current_dir();
                    }
                    if let Some(step) = self.step(root, &top, hidden, entry) {
                        return Some(step);
                    }
                }
            })
        })
    }

    fn step(&self, root: &Root, top: &Path, hidden: bool, entry: walkdir::Result<walkdir::DirEntry>) -> Option<Walked> {
        let skipped = |path: &Path, reason, detail| {
            Some(Walked::Skipped {
                path: path.to_owned(),
                reason,
                detail,
            })
        };
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let path = e.path().map(Path::to_owned).unwrap_or_else(|| top.to_owned());
                if e.loop_ancestor().is_some() {
                    return skipped(&path, LocalSkip::SymlinkLoop, None);
                }
                let detail = e.io_error().map(io_text).unwrap_or_else(|| e.to_string());
                return skipped(&path, LocalSkip::Unreadable, Some(detail));
            }
        };
        let path = entry.path();
        if !hidden && is_hidden(&entry) {
            return skipped(path, LocalSkip::Hidden, None);
        }
        let file_type = entry.file_type();
        if file_type.is_dir() {
            return None;
        }
        if !file_type.is_file() {
            return skipped(path, LocalSkip::NotAFile, None);
        }
        let Some(key) = key_of(&self.base, path) else {
            return skipped(path, LocalSkip::Unreadable, Some("the name is not UTF-8".into()));
        };
        let size = match entry.metadata() {
            Ok(meta) => meta.len(),
            Err(e) => {
                let detail = e.io_error().map(io_text).unwrap_or_else(|| e.to_string());
                return skipped(path, LocalSkip::Unreadable, Some(detail));
            }
        };
        let object = ObjectMeta {
            key,
            size,
            last_modified: None,
            archived: false,
            superseded: false,
            folder: false,
            version: None,
            customer_key: false,
        };
        match root.selection.verdict(&object) {
            Verdict::Keep => {}
            Verdict::TooLarge => return skipped(path, LocalSkip::TooLarge, None),
            _ => return skipped(path, LocalSkip::Filtered, None),
        }
        // Opened (and closed) now, so an unreadable file is named here rather than
        // failing an upload later.
        if let Err(e) = std::fs::File::open(path) {
            return skipped(path, LocalSkip::Unreadable, Some(io_text(&e)));
        }
        Some(Walked::File(LocalFile {
            path: path.to_owned(),
            key: object.key,
            size,
        }))
    }
}

/// A name starting with `.`, below the source itself (`./frames` is not hidden).
fn is_hidden(entry: &walkdir::DirEntry) -> bool {
    entry.depth() > 0 && entry.file_name().as_encoded_bytes().first() == Some(&b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::MediaPreset;

    fn files(sources: &LocalSources) -> (Vec<String>, Vec<(String, LocalSkip)>) {
        let (mut kept, mut skipped) = (Vec::new(), Vec::new());
        for step in sources.walk() {
            match step {
                Walked::File(f) => kept.push(f.key),
                Walked::Skipped { path, reason, .. } => {
                    let shown = path.strip_prefix(sources.base()).unwrap_or(&path).display().to_string();
                    skipped.push((shown, reason));
                }
            }
        }
        (kept, skipped)
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, body) in [
            ("frames/a.jpg", "a"),
            ("frames/sub/a.jpg", "sub a"),
            ("frames/sub/deeper/b.png", "b"),
            ("frames/notes.txt", "n"),
            ("frames/.hidden/c.jpg", "c"),
            ("frames/.d.jpg", "d"),
            ("other/a.jpg", "other a"),
        ] {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, body).expect("write");
        }
        std::os::unix::fs::symlink(dir.path().join("frames"), dir.path().join("frames/sub/loop")).expect("link");
        // A link to a file elsewhere is followed: the file is sent under the link's name.
        std::os::unix::fs::symlink(dir.path().join("other/a.jpg"), dir.path().join("frames/link.jpg")).expect("link");
        dir
    }

    fn select() -> LocalSelection {
        LocalSelection {
            presets: vec![MediaPreset::Images],
            ..LocalSelection::default()
        }
    }

    #[test]
    fn a_folder_gives_keys_below_it_and_every_skip_its_reason() {
        let dir = tree();
        let arg = dir.path().join("frames").display().to_string();
        let sources = LocalSources::new(&[arg], &select()).expect("resolves");
        let (kept, skipped) = files(&sources);
        assert_eq!(kept, ["a.jpg", "link.jpg", "sub/a.jpg", "sub/deeper/b.png"]);
        let mut reasons: Vec<(String, LocalSkip)> = skipped;
        reasons.sort();
        assert_eq!(
            reasons,
            [
                (".d.jpg".to_owned(), LocalSkip::Hidden),
                (".hidden".to_owned(), LocalSkip::Hidden),
                ("notes.txt".to_owned(), LocalSkip::Filtered),
                ("sub/loop".to_owned(), LocalSkip::SymlinkLoop),
            ]
        );
        let all = LocalSources::new(
            &[dir.path().join("frames").display().to_string()],
            &LocalSelection {
                hidden: true,
                ..select()
            },
        )
        .expect("resolves");
        assert_eq!(
            files(&all).0,
            [
                ".d.jpg",
                ".hidden/c.jpg",
                "a.jpg",
                "link.jpg",
                "sub/a.jpg",
                "sub/deeper/b.png"
            ]
        );
    }

    #[test]
    fn several_sources_keep_their_folder_and_globs_select_below_theirs() {
        let dir = tree();
        let frames = dir.path().join("frames").display().to_string();
        let other = dir.path().join("other").display().to_string();
        let sources = LocalSources::new(&[frames.clone(), other], &select()).expect("resolves");
        let (kept, _) = files(&sources);
        assert_eq!(
            kept,
            [
                "frames/a.jpg",
                "frames/link.jpg",
                "frames/sub/a.jpg",
                "frames/sub/deeper/b.png",
                "other/a.jpg"
            ]
        );

        let glob = format!("{frames}/sub/**/*.png");
        let sources = LocalSources::new(&[glob], &LocalSelection::default()).expect("resolves");
        assert_eq!(files(&sources).0, ["deeper/b.png"]);

        let file = dir.path().join("other/a.jpg").display().to_string();
        let sources = LocalSources::new(&[file], &LocalSelection::default()).expect("resolves");
        assert_eq!(files(&sources).0, ["a.jpg"]);

        let inside = dir.path().join("frames/sub").display().to_string();
        let err = LocalSources::new(&[frames, inside], &select()).expect_err("overlap");
        assert!(err.to_string().contains("one lies inside the other"), "{err}");
        let err = LocalSources::new(&["/no/such/folder".to_owned()], &select()).expect_err("missing");
        assert!(err.to_string().contains("/no/such/folder"), "{err}");
    }

    #[test]
    fn the_size_limit_and_excludes_apply_as_for_a_bucket() {
        let dir = tree();
        let frames = dir.path().join("frames").display().to_string();
        let sources = LocalSources::new(
            &[frames],
            &LocalSelection {
                max_size: Some(2),
                exclude: vec!["sub/deeper/**".into()],
                ..select()
            },
        )
        .expect("resolves");
        let (kept, skipped) = files(&sources);
        assert_eq!(kept, ["a.jpg"]);
        assert!(
            skipped.contains(&("sub/a.jpg".to_owned(), LocalSkip::TooLarge)),
            "{skipped:?}"
        );
        assert!(
            skipped.contains(&("sub/deeper/b.png".to_owned(), LocalSkip::Filtered)),
            "{skipped:?}"
        );
    }
}
