//! One worker's share of a run: `--shard K/N`.
//!
//! A key belongs to shard `xxh3_64(key) mod N`: the N shards are disjoint, their
//! union is every key, and the split is even for any set of keys (a hash, not
//! ranges of key space, which a bucket of one prefix would fill unevenly). The
//! hash is xxHash's XXH3 (seed 0), fixed by its specification, so every worker,
//! on any machine and any version of refgen, agrees. With a listing every worker
//! lists the whole source and keeps its share.
//!
//! `--shard auto` takes the index (and, where the scheduler gives it, the count)
//! from the environment of the usual batch schedulers.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Where schedulers put a worker's index, and its count where they give one.
const SCHEDULERS: &[(&str, &str, Option<&str>)] = &[
    ("Kubernetes Indexed Job", "JOB_COMPLETION_INDEX", None),
    ("AWS Batch array job", "AWS_BATCH_JOB_ARRAY_INDEX", None),
    ("Cloud Run job", "CLOUD_RUN_TASK_INDEX", Some("CLOUD_RUN_TASK_COUNT")),
];

impl Shard {
    /// Shard `index` of `count`; `index` must be below `count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, Error> {
        if count == 0 || index >= count {
            return Err(invalid(
                &format!("{index}/{count}"),
                "K/N needs 0 <= K < N (shards are numbered from 0)",
            ));
        }
        Ok(Shard { index, count })
    }

    /// This worker's shard from the scheduler's environment (`env` looks a variable
    /// up): the index from `JOB_COMPLETION_INDEX`, `AWS_BATCH_JOB_ARRAY_INDEX` or
    /// `CLOUD_RUN_TASK_INDEX`; the count is `count` when given (Kubernetes and AWS
    /// Batch do not tell it), else `CLOUD_RUN_TASK_COUNT`.
    pub fn from_scheduler(count: Option<u32>, env: impl Fn(&str) -> Option<String>) -> Result<Shard, Error> {
        let typed = match count {
            Some(n) => format!("auto/{n}"),
            None => "auto".to_owned(),
        };
        let Some((scheduler, index_var, count_var, index)) = SCHEDULERS
            .iter()
            .find_map(|(name, var, count_var)| env(var).map(|v| (*name, *var, *count_var, v)))
        else {
            return Err(invalid(
                &typed,
                "none of JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX or CLOUD_RUN_TASK_INDEX is set; give K/N",
            ));
        };
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| invalid(&typed, &format!("{index_var} is `{index}`, not a whole number")))?;
        let count = match (count, count_var.and_then(|v| env(v).map(|n| (v, n)))) {
            (Some(n), _) => n,
            (None, Some((var, n))) => n
                .trim()
                .parse()
                .map_err(|_| invalid(&typed, &format!("{var} is `{n}`, not a whole number")))?,
            (None, None) => {
                return Err(invalid(
                    &typed,
                    &format!("a {scheduler} does not say how many workers there are; give it as auto/N"),
                ));
            }
        };
        Shard::new(index, count)
            .map_err(|_| invalid(&typed, &format!("{index_var} is {index}, not below the count {count}")))
    }

    /// Whether `key` is in this shard.
    pub fn contains(&self, key: &str) -> bool {
        self.of(key) == self.index
    }

    /// The shard `key` belongs to.
    pub fn of(&self, key: &str) -> u32 {
        (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % u64::from(self.count)) as u32
    }

    /// This shard's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(&self) -> u32 {
        self.count
    }
}

fn invalid(input: &str, reason: &str) -> Error {
    Error::InvalidShard {
        input: input.to_owned(),
        reason: reason.to_owned(),
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// `K/N`.
    fn from_str(text: &str) -> Result<Shard, Error> {
        let parsed = text
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((k, n)) => {
                Shard::new(k, n).map_err(|_| invalid(text, "K/N needs 0 <= K < N (shards are numbered from 0)"))
            }
            None => Err(invalid(text, "expected K/N, like 0/4, or auto")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn shards_are_disjoint_cover_everything_and_are_even() {
        let keys: Vec<String> = (0..4000)
            .map(|i| format!("images/2024/cam-{}/{i:05}.jpg", i % 3))
            .collect();
        for n in [1u32, 2, 3, 7, 16] {
            let shards: Vec<Shard> = (0..n).map(|k| Shard::new(k, n).expect("shard")).collect();
            let mut sizes = vec![0usize; n as usize];
            for key in &keys {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.contains(key)).collect();
                assert_eq!(owners.len(), 1, "{key} has exactly one shard of {n}");
                sizes[owners[0].index() as usize] += 1;
            }
            // A hash spreads like a fair die: within four standard deviations.
            let even = keys.len() / n as usize;
            let spread = 4.0 * (even as f64).sqrt();
            for (k, size) in sizes.iter().enumerate() {
                assert!(
                    (size.abs_diff(even) as f64) <= spread,
                    "shard {k}/{n} holds {size} of {} keys",
                    keys.len()
                );
            }
        }
    }

    /// The hash is part of the contract between workers: it must never change.
    #[test]
    fn the_hash_is_xxh3_with_seed_zero() {
        let shard = Shard::new(0, 1000).expect("shard");
        assert_eq!(shard.of(""), (0x2D06_8005_38D3_94C2u64 % 1000) as u32);
    }

    #[test]
    fn parsing() {
        assert_eq!(
            "2/8".parse::<Shard>().expect("parses"),
            Shard::new(2, 8).expect("shard")
        );
        for bad in ["8/8", "1/0", "x/2", "3", "-1/4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn schedulers() {
        let k8s = Shard::from_scheduler(Some(4), env(&[("JOB_COMPLETION_INDEX", "3")])).expect("k8s");
        assert_eq!(k8s, Shard::new(3, 4).expect("shard"));
        let batch = Shard::from_scheduler(Some(10), env(&[("AWS_BATCH_JOB_ARRAY_INDEX", "0")])).expect("batch");
        assert_eq!(batch, Shard::new(0, 10).expect("shard"));
        let run = Shard::from_scheduler(
            None,
            env(&[("CLOUD_RUN_TASK_INDEX", "1"), ("CLOUD_RUN_TASK_COUNT", "5")]),
        )
        .expect("cloud run");
        assert_eq!(run, Shard::new(1, 5).expect("shard"));
        for (count, vars, says) in [
            (None, vec![], "none of JOB_COMPLETION_INDEX"),
            (None, vec![("JOB_COMPLETION_INDEX", "1")], "give it as auto/N"),
            (Some(2), vec![("JOB_COMPLETION_INDEX", "2")], "not below the count 2"),
            (Some(2), vec![("JOB_COMPLETION_INDEX", "one")], "not a whole number"),
        ] {
            let err = Shard::from_scheduler(count, env(&vars)).expect_err(says).to_string();
            assert!(err.contains(says), "{err}");
        }
    }
}
