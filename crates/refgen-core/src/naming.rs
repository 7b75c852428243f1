//! Naming rules: how an object key becomes the `name` of its reference line.
//!
//! Roboflow identifies files in ingest results and webhooks by `name`, so names must
//! be unique within a batch and keep the file extension. Three modes:
//!
//! - [`NameMode::Flat`] (default): the full key with `/` written as `__`, what Roboflow's
//!   reference scripts do (`images/2024/a.jpg` → `images__2024__a.jpg`). Plain `__`
//!   replacement is not one-to-one (`a/b__c.jpg` and `a__b/c.jpg` would both become
//!   `a__b__c.jpg`), so two characters are escaped where, and only where, they could
//!   make names ambiguous:
//!   - `~` is always written `~~`;
//!   - an `_` that touches a `/` or another `_` in the key is written `~u`.
//!
//!   Then every run of underscores in a name is either a single literal `_` or an even
//!   run standing for that many `/` divided by two, and `~` always starts an escape,
//!   so a name decodes back to exactly one key: names are unique for any set of keys,
//!   without keeping any state. Ordinary keys (`images/2024/my_photo.jpg`) come out
//!   exactly as Roboflow's scripts name them.
//! - [`NameMode::Key`]: the key itself (unique because keys are).
//! - [`NameMode::Basename`]: the key's last segment, with `~` written `~~`. A basename
//!   seen before gets `~2`, `~3`, … before its extension (`a.jpg`, `a~2.jpg`), which
//!   escaping can never produce; this mode keeps an 8-byte fingerprint per name
//!   emitted, so its memory grows with the number of objects (about 16 MB per million).
//!
//! Names depend only on the keys and the listing order, which is the key order, so the
//! same bucket always gives the same names.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use crate::filter::basename;

/// How names are made from keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameMode {
    /// Full key, `/` → `__`, with the escapes above.
    #[default]
    Flat,
    /// The raw key.
    Key,
    /// The last key segment, disambiguated with `~N`.
    Basename,
}

/// Produces names for keys given in listing order.
#[derive(Debug, Default)]
pub struct Namer {
    mode: NameMode,
    /// Fingerprints of basenames already emitted (basename mode only). The hasher has
    /// fixed keys so runs are reproducible; a fingerprint collision only adds a suffix.
    seen: HashSet<u64, BuildHasherDefault<IdentityHasher>>,
}

impl Namer {
    /// A namer for one references file.
    pub fn new(mode: NameMode) -> Self {
        Namer {
            mode,
            seen: HashSet::default(),
        }
    }

    /// Forgets the names given so far, for a run that starts over.
    pub fn restart(&mut self) {
        self.seen.clear();
    }

    /// How to name a key, when a name depends on its key alone (so names can be
    /// made anywhere, in any order); `None` when they depend on the names before.
    pub fn stateless(&self) -> Option<fn(&str) -> String> {
        match self.mode {
            NameMode::Flat => Some(flat_name),
            NameMode::Key => Some(str::to_owned),
            NameMode::Basename => None,
        }
    }

    /// The name for the next key.
    pub fn name(&mut self, key: &str) -> String {
        match self.mode {
            NameMode::Flat => flat_name(key),
            NameMode::Key => key.to_owned(),
            NameMode::Basename => {
                let base = basename(key).replace('~', "~~");
                if self.seen.insert(fingerprint(&base)) {
                    return base;
                }
                let (stem, ext) = split_extension(&base);
                (2u64..)
                    .map(|n| format!("{stem}~{n}{ext}"))
                    .find(|candidate| self.seen.insert(fingerprint(candidate)))
                    .unwrap_or_default()
            }
        }
    }
}

/// The flat name of a key (see the module docs).
pub fn flat_name(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = String::with_capacity(key.len() + 8);
    for (i, c) in key.char_indices() {
        match c {
            '/' => out.push_str("__"),
            '~' => out.push_str("~~"),
            '_' => {
                let touches = |j: Option<usize>| j.and_then(|j| bytes.get(j)).is_some_and(|b| *b == b'/' || *b == b'_');
                if touches(i.checked_sub(1)) || touches(Some(i + 1)) {
                    out.push_str("~u");
                } else {
                    out.push('_');
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Decodes a flat name back to its key; `None` when it is not a flat name.
pub fn key_of_flat_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next()? {
                '~' => out.push('~'),
                'u' => out.push('_'),
                _ => return None,
            },
            '_' => {
                let mut run = 1;
                while chars.next_if_eq(&'_').is_some() {
                    run += 1;
                }
                match run {
                    1 => out.push('_'),
                    n if n % 2 == 0 => out.extend(std::iter::repeat_n('/', n / 2)),
                    _ => return None,
                }
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    }
}

fn fingerprint(name: &str) -> u64 {
    // Fixed-key SipHash: stable within a run and across runs.
    BuildHasherDefault::<DefaultHasher>::default().hash_one(name)
}

/// The set already stores hashes: hashing them again would waste time.
#[derive(Default)]
struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl std::fmt::Debug for IdentityHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityHasher")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_match_roboflow_scripts() {
        assert_eq!(flat_name("images/2024/a.jpg"), "images__2024__a.jpg");
        assert_eq!(flat_name("my_photo.jpg"), "my_photo.jpg");
        assert_eq!(flat_name("set_1/img_2.png"), "set_1__img_2.png");
    }

    #[test]
    fn ambiguous_keys_get_distinct_names() {
        let a = flat_name("a/b__c.jpg");
        let b = flat_name("a__b/c.jpg");
        assert_ne!(a, b);
        assert_eq!(a, "a__b~u~uc.jpg");
        assert_eq!(b, "a~u~ub__c.jpg");
        assert_ne!(flat_name("a/_b"), flat_name("a_/b"));
        assert_ne!(flat_name("x~uy"), flat_name("x__y"));
    }

    #[test]
    fn flat_names_decode_to_their_keys() {
        let keys = [
            "a/b__c.jpg",
            "a__b/c.jpg",
            "double//slash.jpg",
            "/leading.jpg",
            "trailing/",
            "_/_",
            "___",
            "~",
            "~u",
            "~~u_",
            "tilde~under_score-dash.jpg",
            "日本語/画像.png",
            "new\nline_/x",
        ];
        for key in keys {
            let name = flat_name(key);
            assert_eq!(key_of_flat_name(&name).as_deref(), Some(key), "{key:?} -> {name:?}");
        }
    }

    #[test]
    fn flat_names_are_unique_over_every_short_key() {
        // Every key up to 5 characters over the alphabet that matters: if two keys
        // gave one name, the map would lose an entry.
        let alphabet = ['a', '/', '_', '~', 'u'];
        let mut keys = vec![String::new()];
        let mut all = Vec::new();
        for _ in 0..5 {
            keys = keys
                .iter()
                .flat_map(|k| alphabet.iter().map(move |c| format!("{k}{c}")))
                .collect();
            all.extend(keys.iter().cloned());
        }
        let names: HashSet<String> = all.iter().map(|k| flat_name(k)).collect();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn key_mode_is_identity() {
        let mut n = Namer::new(NameMode::Key);
        assert_eq!(n.name("a/b c.jpg"), "a/b c.jpg");
    }

    #[test]
    fn basename_mode_disambiguates_deterministically() {
        let mut n = Namer::new(NameMode::Basename);
        let names: Vec<String> = [
            "x/a.jpg",
            "y/a.jpg",
            "a~2.jpg",
            "z/a.jpg",
            "q/noext",
            "r/noext",
            "s/a~2.jpg",
        ]
        .iter()
        .map(|k| n.name(k))
        .collect();
        assert_eq!(
            names,
            [
                "a.jpg",
                "a~2.jpg",
                "a~~2.jpg",
                "a~3.jpg",
                "noext",
                "noext~2",
                "a~~2~2.jpg"
            ]
        );
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }
}
