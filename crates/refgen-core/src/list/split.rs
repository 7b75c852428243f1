//! Guessing where to cut a flat key range into chunks of about N keys.
//!
//! A flat folder (a million `images/000123.jpg`) has no sub-prefixes to list apart,
//! and a listing can only *start after* a key, not skip N keys. So the chunk
//! boundaries have to be guessed: a sample page's keys are read as numbers, in a
//! base made of the characters that vary across the sample (`0`–`9` for numbered
//! files, `0`–`9a`–`f` for hashes), and boundaries are placed a step apart, the step
//! being the sample's spread scaled to the wanted chunk size.
//!
//! A guess only costs speed, never keys: chunks are `(previous boundary, boundary]`,
//! every boundary is strictly greater than the one before, and the last chunk is
//! open-ended. [`Splitter::rescale`] corrects the step from chunks as they finish.

use crate::ObjectMeta;

/// How many positions after the sample's common prefix feed the alphabet.
const VARYING_POSITIONS: usize = 3;
/// How many alphabet characters of the common prefix may take a carry.
const MAX_CARRY: usize = 8;
/// The most digits a number has (fewer when the base is large).
const MAX_DIGITS: usize = 24;

/// Places chunk boundaries in a flat key range.
#[derive(Debug, Clone)]
pub(crate) struct Splitter {
    /// The part every boundary starts with.
    fixed: String,
    /// The digits, in byte order (all ASCII, so boundaries are valid UTF-8).
    alphabet: Vec<u8>,
    digits: u32,
    /// `alphabet.len() ^ digits`: the first number with no boundary.
    limit: u128,
    /// The distance between boundaries, in numbers.
    step: u128,
}

impl Splitter {
    /// A splitter for keys under `prefix`, learnt from a sample page in key order,
    /// aiming at `target` keys per chunk. `None` when the sample gives no handle
    /// (fewer than two keys, nothing varies in ASCII, …).
    pub(crate) fn from_sample(prefix: &str, sample: &[ObjectMeta], target: usize) -> Option<Splitter> {
        let (first, last) = (sample.first()?.key.as_bytes(), sample.last()?.key.as_bytes());
        if sample.len() < 2 || !first.starts_with(prefix.as_bytes()) {
            return None;
        }
        let common = first.iter().zip(last).take_while(|(a, b)| a == b).count();
        // The digits: the ASCII characters met at positions that vary across the
        // sample (a constant `.` before an extension is not a digit).
        let mut seen = [false; 128];
        for position in common..common + VARYING_POSITIONS {
            let mut here = [false; 128];
            for b in sample.iter().filter_map(|o| o.key.as_bytes().get(position)) {
                if let Some(h) = here.get_mut(usize::from(*b)) {
                    *h = true;
                }
            }
            if here.iter().filter(|&&h| h).count() > 1 {
                seen.iter_mut().zip(here).for_each(|(s, h)| *s |= h);
            }
        }
        let alphabet: Vec<u8> = (0..128u8).filter(|&b| seen[usize::from(b)]).collect();
        if alphabet.len() < 2 {
            return None;
        }
        // Let the number reach back into the common prefix while it is made of
        // digits, so that `img0999` can carry into `img1000`.
        let mut start = common;
        while start > prefix.len() && common - start < MAX_CARRY && alphabet.contains(&first[start - 1]) {
            start -= 1;
        }
        let fixed = std::str::from_utf8(&first[..start]).ok()?.to_owned();
        let base = alphabet.len() as u128;
        let (mut digits, mut limit) = (0u32, 1u128);
        while (digits as usize) < MAX_DIGITS && limit * base < 1 << 100 {
            digits += 1;
            limit *= base;
        }
        let mut splitter = Splitter {
            fixed,
            alphabet,
            digits,
            limit,
            step: 1,
        };
        let spread = splitter.ceil(last)?.checked_sub(splitter.ceil(first)?)?;
        if spread == 0 {
            return None;
        }
        splitter.step = (spread * target as u128 / (sample.len() as u128 - 1)).max(1);
        Some(splitter)
    }

    /// The next boundary, about one step after `after` and strictly greater than
    /// it; `None` when the numbers run out (the rest is one open-ended chunk).
    pub(crate) fn boundary_after(&self, after: &str) -> Option<String> {
        let at = self.ceil(after.as_bytes())?.checked_add(self.step - 1)?;
        (at < self.limit).then(|| self.key_of(at))
    }

    /// The first boundary of the grid that steps from `start` (as
    /// [`boundary_after`](Self::boundary_after) does) that lies past `reached`:
    /// where a chunk listing from `start`, now at `reached`, is cut. The same
    /// places from run to run, whatever the timing.
    pub(crate) fn grid_after(&self, start: &str, reached: &str) -> Option<String> {
        let mut at = self.boundary_after(start)?;
        while at.as_str() <= reached {
            at = self.boundary_after(&at)?;
        }
        Some(at)
    }

    /// The key about `keys` keys after `reached`, at the density the step says.
    pub(crate) fn ahead(&self, reached: &str, keys: usize, target: usize) -> Option<String> {
        let ahead = (self.step.saturating_mul(keys as u128) / target.max(1) as u128).max(1);
        let at = self.ceil(reached.as_bytes())?.checked_add(ahead)?;
        (at < self.limit).then(|| self.key_of(at))
    }

    /// Boundaries that cut `(from, until]` into equal pieces of fewer than
    /// `keys` keys each, in order (none when it is that small already). A piece
    /// under a page is listed in one request that also shows its end.
    pub(crate) fn pieces(&self, from: &str, until: &str, keys: usize, target: usize) -> Vec<String> {
        let (Some(from), Some(to)) = (self.ceil(from.as_bytes()), self.ceil(until.as_bytes())) else {
            return Vec::new();
        };
        let per = (self.step.saturating_mul(keys as u128) / target.max(1) as u128).max(1);
        let span = to.saturating_sub(from);
        let n = span.div_ceil(per).min(64);
        (1..n).map(|j| self.key_of(from + span * j / n)).collect()
    }

    /// Adjusts the step from a finished chunk that held `listed` keys where
    /// `target` were wanted, by a factor of at most 4 either way, unless it is
    /// within 5 % already. An empty chunk (a gap, or the end) doubles it.
    pub(crate) fn rescale(&mut self, listed: usize, target: usize) {
        let (listed, target) = (listed as u128, target.max(1) as u128);
        self.step = match listed {
            0 => self.step.saturating_mul(2),
            // Within 5 %: close enough (the target leaves a quarter page of room),
            // and boundaries that stay put keep the chunks' requests the same
            // from run to run.
            _ if listed.abs_diff(target) * 20 <= target => self.step,
            _ => (self.step.saturating_mul(target) / listed).clamp(self.step / 4, self.step.saturating_mul(4)),
        }
        .clamp(1, self.limit);
    }

    /// The smallest number whose key is greater than `key`; `None` when there is
    /// none (the key lies past every boundary this splitter can make).
    fn ceil(&self, key: &[u8]) -> Option<u128> {
        let base = self.alphabet.len() as u128;
        let rest = key.strip_prefix(self.fixed.as_bytes())?;
        let mut value = 0u128;
        for i in 0..self.digits {
            let scale = base.pow(self.digits - i - 1);
            let Some(&b) = rest.get(i as usize) else {
                // `key` is a proper prefix of this number's key padded with the
                // lowest digit: that padded key is the next one up.
                return Some(value * scale * base);
            };
            match self.alphabet.binary_search(&b) {
                Ok(d) => value = value * base + d as u128,
                // The first digit above `b`, then the lowest digits.
                Err(d) if d < self.alphabet.len() => return Some((value * base + d as u128) * scale),
                // No digit is above `b`: carry into the digits before it.
                Err(_) => {
                    let carried = (value + 1) * scale * base;
                    return (carried < self.limit).then_some(carried);
                }
            }
        }
        // Every digit matched: this number's key is `key` itself or a prefix of it.
        (value + 1 < self.limit).then_some(value + 1)
    }

    fn key_of(&self, mut value: u128) -> String {
        let base = self.alphabet.len() as u128;
        let mut digits = vec![0u8; self.digits as usize];
        for d in digits.iter_mut().rev() {
            *d = self.alphabet[(value % base) as usize];
            value /= base;
        }
        let mut key = self.fixed.clone();
        key.extend(digits.into_iter().map(char::from));
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(keys: impl IntoIterator<Item = String>) -> Vec<ObjectMeta> {
        keys.into_iter()
            .map(|key| ObjectMeta {
                key,
                size: 1,
                last_modified: None,
                archived: false,
                superseded: false,
                folder: false,
                version: None,
                customer_key: false,
            })
            .collect()
    }

    /// Walks boundaries from the sample's last key over `all`, returning how many
    /// keys each chunk holds, and checks the chunks cover everything once.
    fn chunk_sizes(splitter: &Splitter, all: &[String], from: &str) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut after = from.to_owned();
        let mut covered = all.iter().filter(|k| k.as_str() <= from).count();
        while let Some(boundary) = splitter.boundary_after(&after) {
            assert!(boundary > after, "{boundary:?} must be after {after:?}");
            let n = all.iter().filter(|k| **k > after && **k <= boundary).count();
            sizes.push(n);
            covered += n;
            after = boundary;
            if covered == all.len() {
                break;
            }
        }
        covered += all.iter().filter(|k| **k > after).count();
        assert_eq!(covered, all.len());
        sizes
    }

    #[test]
    fn numbered_files_split_into_chunks_of_about_the_target() {
        let all: Vec<String> = (0..100_000).map(|i| format!("images/img{i:07}.jpg")).collect();
        let splitter = Splitter::from_sample("images/", &objects(all[..1000].to_vec()), 3000).expect("splits");
        let sizes = chunk_sizes(&splitter, &all, &all[999]);
        assert!(sizes.len() >= 25, "{} chunks", sizes.len());
        let full = &sizes[..sizes.len() - 1];
        assert!(full.iter().all(|&n| (1500..=6000).contains(&n)), "{full:?}");
    }

    #[test]
    fn hashed_names_split_evenly() {
        let mut all: Vec<String> = (0u64..50_000)
            .map(|i| format!("h/{:016x}.png", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect();
        all.sort();
        let splitter = Splitter::from_sample("h/", &objects(all[..1000].to_vec()), 3000).expect("splits");
        let sizes = chunk_sizes(&splitter, &all, &all[999]);
        let full = &sizes[..sizes.len() - 1];
        assert!(full.len() >= 10, "{sizes:?}");
        assert!(full.iter().all(|&n| (1000..=9000).contains(&n)), "{full:?}");
    }

    #[test]
    fn boundaries_step_past_keys_with_characters_outside_the_alphabet() {
        let sample = objects((0..100).map(|i| format!("p/{i:03}")));
        let splitter = Splitter::from_sample("p/", &sample, 10).expect("splits");
        for after in ["p/099", "p/099~", "p/09~", "p/0990", "p/0", "p/1é", "p/999", "p/99"] {
            if let Some(b) = splitter.boundary_after(after) {
                assert!(b.as_str() > after, "{b:?} after {after:?}");
            }
        }
        assert_eq!(splitter.boundary_after("q"), None, "outside the fixed part");
    }

    #[test]
    fn a_sample_without_a_handle_gives_no_splitter() {
        assert!(Splitter::from_sample("", &objects(["a".to_owned()]), 10).is_none());
        let same = objects(["aé1".to_owned(), "aé2".to_owned()]);
        assert!(Splitter::from_sample("", &same, 10).is_some());
        let unicode = objects(["é".to_owned(), "è".to_owned()]);
        assert!(
            Splitter::from_sample("", &unicode, 10).is_none(),
            "differs inside a character"
        );
    }

    #[test]
    fn rescaling_moves_the_step_at_most_fourfold_and_not_for_a_small_miss() {
        let sample = objects((0..100).map(|i| format!("{i:04}")));
        let mut splitter = Splitter::from_sample("", &sample, 10).expect("splits");
        let step = splitter.step;
        splitter.rescale(1000, 10);
        assert_eq!(splitter.step, step / 4);
        splitter.rescale(0, 10);
        assert_eq!(splitter.step, step / 2);
        splitter.rescale(5, 10);
        assert_eq!(splitter.step, step);
        splitter.rescale(2_080, 2_000);
        assert_eq!(splitter.step, step, "within 5 %: kept");
        splitter.rescale(2_500, 2_000);
        assert_eq!(splitter.step, step * 4 / 5, "25 % over: scaled down");
    }
}
