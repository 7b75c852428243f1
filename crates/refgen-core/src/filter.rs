//! Selecting objects: the source glob, `--include`/`--exclude` and media presets.
//!
//! The source pattern is split the way s5cmd does it: the literal part before the
//! first wildcard becomes the server-side listing prefix, and the whole pattern is
//! compiled once into a matcher applied to each full key.
//!
//! Glob syntax (globset): `*` and `?` do not cross `/`; `**` crosses any number of
//! folders; `[abc]`, `[!a-z]` and `{jpg,png}` work as in shells; a backslash makes
//! the next character literal (`photo\*.jpg` matches the key `photo*.jpg`).
//!
//! `--include`/`--exclude` globs are relative to the source, as aws-cli's and
//! rclone's filters are: a glob that contains a `/` is matched against the key
//! with the source's folder taken off (for `s3://media/raw/`, `tmp/**` matches
//! `raw/tmp/y.png`); a glob without one is matched against the key's last segment
//! (its basename), so `--exclude '*.tmp'` works in every folder. The source's
//! folder is its literal part up to its last `/` (`raw/` for `raw/` and for
//! `raw/*.png`); a source without wildcards or a final `/` (`raw`) names the
//! folder `raw/` for the keys below it, and its parent for keys beside it
//! (`raw-old/x.png` is `raw-old/x.png`).

use std::collections::HashSet;

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::shard::Shard;
use crate::{Error, ObjectMeta};

/// Image extensions accepted by Roboflow Batch Processing (case-insensitive).
pub const IMAGE_EXTENSIONS: &[&str] = &["bmp", "dib", "jpeg", "jpg", "jpe", "jp2", "png", "webp"];
/// Video extensions accepted by Roboflow Batch Processing (case-insensitive).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4a", "m4p", "m4b", "m4r", "m4v", "avi", "mov", "mkv", "flv", "wmv", "mpeg", "mpg", "3gp", "webm", "ogg",
];

/// A media-type preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaPreset {
    /// [`IMAGE_EXTENSIONS`].
    Images,
    /// [`VIDEO_EXTENSIONS`].
    Videos,
}

impl MediaPreset {
    /// The extensions of this preset, lower case, without dots.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            MediaPreset::Images => IMAGE_EXTENSIONS,
            MediaPreset::Videos => VIDEO_EXTENSIONS,
        }
    }

    /// True when `key`'s extension belongs to this preset.
    pub fn matches(self, key: &str) -> bool {
        extension_of(key).is_some_and(|ext| self.extensions().iter().any(|e| e.eq_ignore_ascii_case(ext)))
    }
}

/// The extension of a key's last segment, without the dot (`a/b.tar.gz` → `gz`).
pub fn extension_of(key: &str) -> Option<&str> {
    let base = basename(key);
    match base.rfind('.') {
        Some(i) if i > 0 && i + 1 < base.len() => Some(&base[i + 1..]),
        _ => None,
    }
}

/// The last `/`-separated segment of a key.
pub fn basename(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(_, b)| b)
}

/// Splits a pattern into its literal prefix (unescaped) and whether a wildcard follows.
///
/// `images/2024/**/*.jpg` → (`images/2024/`, true); `a\*b/c` → (`a*b/c`, false).
pub fn literal_prefix(pattern: &str) -> (String, bool) {
    let mut prefix = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => prefix.push(escaped),
                None => prefix.push('\\'),
            },
            '*' | '?' | '[' | '{' => return (prefix, true),
            _ => prefix.push(c),
        }
    }
    (prefix, false)
}

/// Which objects to keep: built once, then asked about every key.
#[derive(Debug, Clone)]
pub struct Selection {
    prefix: String,
    /// The source's folder: what `--include`/`--exclude` globs are relative to.
    folder: String,
    /// A source named without wildcards or a final `/`: also a folder for the keys below it.
    prefix_is_folder: bool,
    key_glob: Option<GlobMatcher>,
    includes: PathGlobs,
    excludes: PathGlobs,
    extensions: Option<HashSet<String>>,
    max_size: Option<u64>,
    shard: Option<Shard>,
    /// Keys up to this one were written by an interrupted run.
    resume_after: Option<String>,
}

/// What becomes of one listed object, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Referenced.
    Keep,
    /// Not selected: the source glob, `--include`/`--exclude`, a preset, or a folder marker.
    Filtered,
    /// Selected, but another worker's (`--shard`).
    OtherShard,
    /// Selected, but in an archive a GET cannot read.
    Archived,
    /// Selected, but encrypted with a customer-provided key (SSE-C): a plain GET
    /// is refused, and a URL cannot carry the key.
    CustomerKey,
    /// An inventory row of an older version or a delete marker.
    Superseded,
    /// At or before the key an interrupted run stopped after: already written.
    Resumed,
    /// Selected, but larger than the size limit.
    TooLarge,
}

/// Globs split by what they are matched against.
#[derive(Debug, Clone, Default)]
struct PathGlobs {
    full_key: Option<GlobSet>,
    basename: Option<GlobSet>,
}

impl PathGlobs {
    fn is_empty(&self) -> bool {
        self.full_key.is_none() && self.basename.is_none()
    }

    /// `relative` is the key with the source's folder taken off.
    fn matches(&self, relative: &str) -> bool {
        self.full_key.as_ref().is_some_and(|set| set.is_match(relative))
            || self
                .basename
                .as_ref()
                .is_some_and(|set| set.is_match(basename(relative)))
    }
}

/// Builds a [`Selection`].
#[derive(Debug, Clone, Default)]
pub struct SelectionBuilder {
    pattern: String,
    includes: Vec<String>,
    excludes: Vec<String>,
    presets: Vec<MediaPreset>,
    case_insensitive: bool,
    max_size: Option<u64>,
    shard: Option<Shard>,
}

impl SelectionBuilder {
    /// Starts from the source pattern (the part of the source after the bucket).
    pub fn new(pattern: impl Into<String>) -> Self {
        SelectionBuilder {
            pattern: pattern.into(),
            ..Default::default()
        }
    }

    /// Keeps only objects matching at least one of these globs (when any are given).
    pub fn include(mut self, globs: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.includes.extend(globs.into_iter().map(Into::into));
        self
    }

    /// Drops objects matching any of these globs.
    pub fn exclude(mut self, globs: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.excludes.extend(globs.into_iter().map(Into::into));
        self
    }

    /// Keeps only objects whose extension is in one of the given presets.
    pub fn preset(mut self, preset: MediaPreset) -> Self {
        self.presets.push(preset);
        self
    }

    /// Matches globs without regard to letter case (presets always ignore case).
    pub fn case_insensitive(mut self, yes: bool) -> Self {
        self.case_insensitive = yes;
        self
    }

    /// Skips objects larger than this many bytes.
    pub fn max_size(mut self, bytes: Option<u64>) -> Self {
        self.max_size = bytes;
        self
    }

    /// Keeps only this worker's share of the objects.
    pub fn shard(mut self, shard: Option<Shard>) -> Self {
        self.shard = shard;
        self
    }

    /// Compiles every glob once.
    pub fn build(self) -> Result<Selection, Error> {
        let (prefix, has_wildcard) = literal_prefix(&self.pattern);
        let key_glob = if has_wildcard {
            Some(self.compile(&self.pattern)?.compile_matcher())
        } else {
            None
        };
        let extensions = (!self.presets.is_empty()).then(|| {
            self.presets
                .iter()
                .flat_map(|p| p.extensions().iter().map(|e| e.to_string()))
                .collect()
        });
        let folder = match prefix.rfind('/') {
            Some(i) => prefix[..=i].to_owned(),
            None => String::new(),
        };
        Ok(Selection {
            prefix_is_folder: !has_wildcard && !prefix.is_empty() && !prefix.ends_with('/'),
            folder,
            prefix,
            key_glob,
            includes: self.path_globs(&self.includes)?,
            excludes: self.path_globs(&self.excludes)?,
            extensions,
            max_size: self.max_size,
            shard: self.shard,
            resume_after: None,
        })
    }

    fn compile(&self, pattern: &str) -> Result<Glob, Error> {
        GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .case_insensitive(self.case_insensitive)
            .build()
            .map_err(|e| Error::InvalidGlob {
                pattern: pattern.to_owned(),
                reason: e.kind().to_string(),
            })
    }

    fn path_globs(&self, patterns: &[String]) -> Result<PathGlobs, Error> {
        let mut full_key = GlobSetBuilder::new();
        let mut base = GlobSetBuilder::new();
        let (mut any_full, mut any_base) = (false, false);
        for pattern in patterns {
            if pattern.is_empty() {
                return Err(Error::InvalidGlob {
                    pattern: String::new(),
                    reason: "empty pattern".into(),
                });
            }
            let glob = self.compile(pattern)?;
            if pattern.contains('/') {
                full_key.add(glob);
                any_full = true;
            } else {
                base.add(glob);
                any_base = true;
            }
        }
        let finish = |builder: GlobSetBuilder, used: bool| -> Result<Option<GlobSet>, Error> {
            if !used {
                return Ok(None);
            }
            builder.build().map(Some).map_err(|e| Error::InvalidGlob {
                pattern: patterns.join(" "),
                reason: e.kind().to_string(),
            })
        };
        Ok(PathGlobs {
            full_key: finish(full_key, any_full)?,
            basename: finish(base, any_base)?,
        })
    }
}

impl Selection {
    /// The literal prefix to send to the server as the listing prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// What becomes of `object`: the filters first, then this worker's share, then
    /// whether a GET can read it (archived, too large).
    pub fn verdict(&self, object: &ObjectMeta) -> Verdict {
        if self
            .resume_after
            .as_deref()
            .is_some_and(|after| object.key.as_str() <= after)
        {
            Verdict::Resumed
        } else if object.is_folder_marker() || !self.matches(&object.key) {
            Verdict::Filtered
        } else if self.shard.is_some_and(|s| !s.contains(&object.key)) {
            Verdict::OtherShard
        } else if object.superseded {
            Verdict::Superseded
        } else if object.archived {
            Verdict::Archived
        } else if object.customer_key {
            Verdict::CustomerKey
        } else if self.max_size.is_some_and(|max| object.size > max) {
            Verdict::TooLarge
        } else {
            Verdict::Keep
        }
    }

    /// The size limit, if any.
    pub fn max_size(&self) -> Option<u64> {
        self.max_size
    }

    /// The same selection, for a run that continues an interrupted one: keys up to
    /// `after` (in byte order) were written by it.
    pub fn resuming_after(&self, after: Option<String>) -> Selection {
        Selection {
            resume_after: after,
            ..self.clone()
        }
    }

    /// The same selection for every shard (a report's files already are one shard's).
    pub fn without_shard(&self) -> Selection {
        Selection {
            shard: None,
            ..self.clone()
        }
    }

    /// This worker's shard, if the run is sharded.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// The key as `--include`/`--exclude` globs see it: relative to the source's folder.
    pub fn relative<'k>(&self, key: &'k str) -> &'k str {
        if self.prefix_is_folder
            && let Some(below) = key.strip_prefix(self.prefix.as_str()).and_then(|r| r.strip_prefix('/'))
        {
            return below;
        }
        if self.folder.is_empty() {
            return key;
        }
        key.strip_prefix(self.folder.as_str()).unwrap_or(key)
    }

    /// True when the object with this key is wanted.
    pub fn matches(&self, key: &str) -> bool {
        // (An empty prefix, a whole bucket, is common: no call to compare nothing.)
        if !self.prefix.is_empty() && !key.starts_with(&self.prefix) {
            return false;
        }
        if let Some(glob) = &self.key_glob
            && !glob.is_match(key)
        {
            return false;
        }
        let relative = self.relative(key);
        if !self.includes.is_empty() && !self.includes.matches(relative) {
            return false;
        }
        if self.excludes.matches(relative) {
            return false;
        }
        match &self.extensions {
            None => true,
            Some(allowed) => extension_of(key).is_some_and(|ext| allowed.contains(&ext.to_ascii_lowercase())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(b: SelectionBuilder) -> Selection {
        b.build().expect("selection builds")
    }

    /// The images of [`KEYS`], in order.
    const IMAGES: [&str; 5] = [
        "images/a.jpg",
        "images/b.PNG",
        "images/sub/c.jpg",
        "images-old/e.jpg",
        "top.jpg",
    ];

    const KEYS: &[&str] = &[
        "images/a.jpg",
        "images/b.PNG",
        "images/sub/c.jpg",
        "images/sub/d.txt",
        "images-old/e.jpg",
        "videos/v.MP4",
        "top.jpg",
        "x.tmp",
        "images/sub/f.tmp",
    ];

    fn kept(s: &Selection) -> Vec<&'static str> {
        KEYS.iter().copied().filter(|k| s.matches(k)).collect()
    }

    #[test]
    fn literal_prefix_stops_at_first_wildcard_and_unescapes() {
        assert_eq!(literal_prefix("images/2024/**/*.jpg"), ("images/2024/".into(), true));
        assert_eq!(literal_prefix("images/"), ("images/".into(), false));
        assert_eq!(literal_prefix(""), ("".into(), false));
        assert_eq!(literal_prefix("a\\*b/c"), ("a*b/c".into(), false));
        assert_eq!(literal_prefix("a\\*b/*.png"), ("a*b/".into(), true));
        assert_eq!(literal_prefix("x{a,b}"), ("x".into(), true));
        assert_eq!(literal_prefix("x[0-9]"), ("x".into(), true));
    }

    #[test]
    fn plain_prefix_keeps_everything_below_it() {
        let s = sel(SelectionBuilder::new("images"));
        assert_eq!(s.prefix(), "images");
        assert_eq!(
            kept(&s),
            [
                "images/a.jpg",
                "images/b.PNG",
                "images/sub/c.jpg",
                "images/sub/d.txt",
                "images-old/e.jpg",
                "images/sub/f.tmp"
            ]
        );
    }

    #[test]
    fn star_does_not_cross_folders_but_double_star_does() {
        let s = sel(SelectionBuilder::new("images/*.jpg"));
        assert_eq!(s.prefix(), "images/");
        assert_eq!(kept(&s), ["images/a.jpg"]);
        let s = sel(SelectionBuilder::new("images/**/*.jpg"));
        assert_eq!(kept(&s), ["images/a.jpg", "images/sub/c.jpg"]);
        let s = sel(SelectionBuilder::new("**/*.{jpg,PNG}"));
        assert_eq!(s.prefix(), "");
        assert_eq!(kept(&s), IMAGES);
    }

    #[test]
    fn case_insensitive_globs() {
        let s = sel(SelectionBuilder::new("images/*.png").case_insensitive(true));
        assert_eq!(kept(&s), ["images/b.PNG"]);
        let s = sel(SelectionBuilder::new("images/*.png"));
        assert!(kept(&s).is_empty());
    }

    #[test]
    fn presets_use_roboflow_lists_ignoring_case() {
        let s = sel(SelectionBuilder::new("").preset(MediaPreset::Images));
        assert_eq!(kept(&s), IMAGES);
        let s = sel(SelectionBuilder::new("").preset(MediaPreset::Videos));
        assert_eq!(kept(&s), ["videos/v.MP4"]);
        let s = sel(SelectionBuilder::new("")
            .preset(MediaPreset::Videos)
            .preset(MediaPreset::Images));
        assert_eq!(kept(&s).len(), 6);
        assert!(!MediaPreset::Images.matches("jpg"), "a bare name has no extension");
        assert!(!MediaPreset::Images.matches(".jpg"), "a dotfile has no extension");
        assert!(MediaPreset::Images.matches("a/b.JPEG"));
    }

    #[test]
    fn include_and_exclude() {
        let s = sel(SelectionBuilder::new("").exclude(["*.tmp"]));
        assert!(!kept(&s).contains(&"x.tmp") && !kept(&s).contains(&"images/sub/f.tmp"));
        let s = sel(SelectionBuilder::new("").include(["images/sub/**"]).exclude(["*.txt"]));
        assert_eq!(kept(&s), ["images/sub/c.jpg", "images/sub/f.tmp"]);
        let s = sel(SelectionBuilder::new("images/")
            .include(["*.jpg", "*.PNG"])
            .exclude(["sub/*"]));
        assert_eq!(kept(&s), ["images/a.jpg", "images/b.PNG"]);
    }

    /// As aws-cli and rclone do: a glob with a `/` is relative to the source's folder.
    #[test]
    fn globs_with_a_slash_are_relative_to_the_source() {
        let keys = [
            "raw/x.png",
            "raw/tmp/y.png",
            "raw/a/tmp/z.png",
            "raw-old/tmp/w.png",
            "tmp/v.png",
        ];
        let kept = |s: &Selection| -> Vec<&str> { keys.iter().copied().filter(|k| s.matches(k)).collect() };
        // The README's example: `s3://media/raw/ --include '*.png' --exclude 'tmp/**'`.
        let s = sel(SelectionBuilder::new("raw/").include(["*.png"]).exclude(["tmp/**"]));
        assert_eq!(kept(&s), ["raw/x.png", "raw/a/tmp/z.png"]);
        // The same source without its final slash names the same folder.
        let s = sel(SelectionBuilder::new("raw").exclude(["tmp/**"]));
        assert_eq!(kept(&s), ["raw/x.png", "raw/a/tmp/z.png", "raw-old/tmp/w.png"]);
        // A glob source: relative to the folder of its literal part.
        let s = sel(SelectionBuilder::new("raw/**/*.png").exclude(["*/tmp/*"]));
        assert_eq!(kept(&s), ["raw/x.png", "raw/tmp/y.png"]);
        let s = sel(SelectionBuilder::new("raw/**").include(["tmp/*"]));
        assert_eq!(kept(&s), ["raw/tmp/y.png"]);
        // The whole bucket: relative to its root, as before.
        let s = sel(SelectionBuilder::new("").exclude(["tmp/**"]));
        assert_eq!(
            kept(&s),
            ["raw/x.png", "raw/tmp/y.png", "raw/a/tmp/z.png", "raw-old/tmp/w.png"]
        );
        assert_eq!(s.relative("raw/tmp/y.png"), "raw/tmp/y.png");
        let s = sel(SelectionBuilder::new("ra"));
        assert_eq!(s.relative("raw/tmp/y.png"), "raw/tmp/y.png");
    }

    #[test]
    fn verdicts_say_why_an_object_is_skipped() {
        let object = |key: &str, size: u64, archived: bool| ObjectMeta {
            key: key.to_owned(),
            size,
            archived,
            ..ObjectMeta::default()
        };
        let s = sel(SelectionBuilder::new("")
            .preset(MediaPreset::Images)
            .max_size(Some(100)));
        assert_eq!(s.verdict(&object("a.jpg", 100, false)), Verdict::Keep);
        assert_eq!(s.verdict(&object("a.jpg", 101, false)), Verdict::TooLarge);
        assert_eq!(s.verdict(&object("a.jpg", 1, true)), Verdict::Archived);
        assert_eq!(
            s.verdict(&object("a.txt", 1, true)),
            Verdict::Filtered,
            "filters come first"
        );
        assert_eq!(s.verdict(&object("dir/", 0, false)), Verdict::Filtered);
        let shard = Shard::new(0, 2).expect("shard");
        let s = sel(SelectionBuilder::new("").shard(Some(shard)));
        let (mine, theirs) = (0..100)
            .map(|i| format!("{i}.jpg"))
            .partition::<Vec<_>, _>(|k| shard.contains(k));
        assert!(mine.iter().all(|k| s.verdict(&object(k, 1, false)) == Verdict::Keep));
        assert!(
            theirs
                .iter()
                .all(|k| s.verdict(&object(k, 1, true)) == Verdict::OtherShard)
        );
    }

    #[test]
    fn escaped_wildcards_match_literally() {
        let s = sel(SelectionBuilder::new("star\\*glob\\?.jpg"));
        assert!(s.matches("star*glob?.jpg"));
        assert!(!s.matches("starXglobY.jpg"));
        let s = sel(SelectionBuilder::new("brackets\\[1\\]*"));
        assert_eq!(s.prefix(), "brackets[1]");
        assert!(s.matches("brackets[1](2){3}.jpg"));
    }

    #[test]
    fn bad_globs_are_refused_with_the_pattern() {
        let err = SelectionBuilder::new("images/[a-")
            .build()
            .expect_err("unclosed class")
            .to_string();
        assert!(err.contains("images/[a-"), "{err}");
        let err = SelectionBuilder::new("")
            .include(["{a,b"])
            .build()
            .expect_err("unclosed alternate");
        assert!(err.to_string().contains("{a,b"), "{err}");
        assert!(SelectionBuilder::new("").exclude([""]).build().is_err());
    }
}
