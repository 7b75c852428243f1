//! Plans of key ranges: `refgen plan` cuts a source's listing into N ranges
//! that N workers list apart (`generate --plan plan.json --shard K/N`), so that
//! together they list the source once instead of N times.
//!
//! The ranges come from [`refgen_core::list::divide`]: exact when the source
//! lists within a few hundred pages, else estimated from a sample. They are
//! disjoint and cover the key space by construction (each starts where the one
//! before ends, the first and last are open), so objects added or removed
//! between the plan and the runs are listed by exactly one worker, whatever the
//! estimate. The plan file holds the source, the selection, the ranges and a
//! fingerprint of them; a run refuses a plan whose fingerprint does not match
//! (a file edited or cut short) and a source or selection other than the plan's.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use refgen_core::list::{Budget, KeyRange};
use refgen_core::source::SourceUrl;
use refgen_core::writer::TargetFile;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::generate::GenerateOptions;
use crate::store::StoreOptions;

/// The plan file's format, written in its `format` field.
pub const FORMAT: &str = "refgen-plan/1";
/// The most parts a plan may have.
pub const MAX_PARTS: u32 = 10_000;

/// What a plan selects: the selection options of the run it was made for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSelection {
    /// Globs a key must match.
    pub include: Vec<String>,
    /// Globs that drop a key.
    pub exclude: Vec<String>,
    /// Only images.
    pub images: bool,
    /// Only videos.
    pub videos: bool,
    /// Globs match without regard to case.
    pub ignore_case: bool,
    /// Objects larger than this are skipped.
    pub max_size: Option<u64>,
}

impl PlanSelection {
    /// The selection of `options`.
    pub fn of(options: &GenerateOptions) -> PlanSelection {
        PlanSelection {
            include: options.include.clone(),
            exclude: options.exclude.clone(),
            images: options.images,
            videos: options.videos,
            ignore_case: options.ignore_case,
            max_size: options.max_size,
        }
    }

    /// `options` with this selection.
    pub fn apply(&self, options: &mut GenerateOptions) {
        options.include = self.include.clone();
        options.exclude = self.exclude.clone();
        options.images = self.images;
        options.videos = self.videos;
        options.ignore_case = self.ignore_case;
        options.max_size = self.max_size;
    }
}

/// One part of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPart {
    /// Keys after this one (none: from the first).
    pub after: Option<String>,
    /// Keys up to this one (none: to the last).
    pub until: Option<String>,
    /// Objects the plan expects in it (listed, before the selection).
    pub estimated_objects: u64,
}

impl PlannedPart {
    /// Its key range.
    pub fn range(&self) -> KeyRange {
        KeyRange {
            after: self.after.clone(),
            until: self.until.clone(),
        }
    }
}

/// A plan: the source, its selection, and the ranges its listing is cut into.
/// Serialized, it is the plan file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangePlan {
    /// [`FORMAT`].
    pub format: String,
    /// The source, as given.
    pub source: String,
    /// The selection the runs apply.
    pub selection: PlanSelection,
    /// The parts, in key order.
    pub parts: Vec<PlannedPart>,
    /// Objects listed under the source's prefix, in all.
    pub estimated_objects: u64,
    /// Whether the counts are exact (the whole prefix was listed).
    pub exact: bool,
    /// Listing requests the plan made.
    pub requests: u64,
    /// When the plan was made (RFC 3339).
    pub created_at: String,
    /// A hash of the source, the selection and the ranges (`xxh3:` and 16 hex digits).
    pub fingerprint: String,
}

impl RangePlan {
    /// The hash of what the runs rely on: the source, the selection and the ranges.
    fn compute_fingerprint(&self) -> String {
        let ranges: Vec<(&Option<String>, &Option<String>)> = self.parts.iter().map(|p| (&p.after, &p.until)).collect();
        let relied_on = serde_json::json!([self.format, self.source, self.selection, ranges]);
        format!(
            "xxh3:{:016x}",
            xxhash_rust::xxh3::xxh3_64(relied_on.to_string().as_bytes())
        )
    }

    /// How many parts.
    pub fn count(&self) -> u32 {
        self.parts.len() as u32
    }

    /// Part `index`'s range.
    pub fn range(&self, index: u32) -> Option<KeyRange> {
        self.parts.get(index as usize).map(PlannedPart::range)
    }

    /// Reads and checks a plan file.
    pub fn read(path: &Path) -> Result<RangePlan, Error> {
        let text = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |reason: String| Error::Plan {
            path: path.display().to_string(),
            reason,
        };
        let plan: RangePlan =
            serde_json::from_slice(&text).map_err(|e| invalid(format!("not a plan that `refgen plan` wrote ({e})")))?;
        plan.check().map_err(invalid)?;
        Ok(plan)
    }

    /// Whether this plan is whole and unchanged: its format, its ranges (each
    /// starting where the one before ends, open at both ends) and its fingerprint.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("its format is `{}`, not {FORMAT}", self.format));
        }
        let (Some(first), Some(last)) = (self.parts.first(), self.parts.last()) else {
            return Err("it has no parts".to_owned());
        };
        let follow = self.parts.windows(2).all(|w| w[0].until == w[1].after);
        if first.after.is_some() || last.until.is_some() || !follow {
            return Err("its ranges do not cover the key space (each must start where the one before ends)".to_owned());
        }
        if self.compute_fingerprint() != self.fingerprint {
            return Err(
                "its fingerprint does not match its contents: it was changed after `refgen plan` wrote it".to_owned(),
            );
        }
        Ok(())
    }
}

/// Makes a plan of `parts` ranges for `source` with the selection of `options`,
/// listing with `store`: the whole prefix when it lists within a few hundred
/// pages, else a sample of it.
///
/// ```no_run
/// use refgen::generate::GenerateOptions;
/// use refgen::store::StoreOptions;
///
/// # async fn go() -> Result<(), refgen::Error> {
/// let plan = refgen::ranges::plan("s3://my-bucket/frames/", 8, &GenerateOptions::default(), &StoreOptions::default()).await?;
/// refgen::ranges::write(&plan, "plan.json".as_ref())?;
/// # Ok(())
/// # }
/// ```
pub async fn plan(
    source: &str,
    parts: u32,
    options: &GenerateOptions,
    store: &StoreOptions,
) -> Result<RangePlan, Error> {
    if refgen_core::local::is_local(source) {
        return Err(refgen_core::Error::InvalidSource {
            url: source.to_owned(),
            reason: "a local folder is not listed in byte order of its keys, which a plan's ranges rely on: \
                     a plan splits a bucket's listing"
                .to_owned(),
        }
        .into());
    }
    if parts == 0 || parts > MAX_PARTS {
        return Err(refgen_core::Error::setting(
            "parts",
            parts.to_string(),
            format!("a plan has 1 to {MAX_PARTS} parts"),
        )
        .into());
    }
    if options.inventory.is_some() {
        return Err(refgen_core::Error::setting(
            "inventory",
            options.inventory.clone().unwrap_or_default(),
            "a plan cuts a listing; an inventory report is split by its data files",
        )
        .into());
    }
    // The run's own checks (the source, the globs, the expiry), before any request.
    let checked = crate::generate::Plan::new(
        source,
        &GenerateOptions {
            shard: None,
            ..options.clone()
        },
    )?;
    let started = Instant::now();
    let opened = crate::store::open(&checked.source, store).await?;
    let prefix = checked.selection.prefix().to_owned();
    let division = refgen_core::list::divide(
        opened.lister(),
        &prefix,
        parts as usize,
        options.concurrency,
        Budget::for_parts(parts as usize),
    )
    .await?;
    tracing::debug!(
        "planned {} parts of `{prefix}` with {} requests in {:.1}s",
        parts,
        division.requests,
        started.elapsed().as_secs_f64()
    );
    let mut plan = RangePlan {
        format: FORMAT.to_owned(),
        source: source.to_owned(),
        selection: PlanSelection::of(options),
        parts: division
            .ranges
            .into_iter()
            .zip(division.estimated.iter())
            .map(|(range, &estimated_objects)| PlannedPart {
                after: range.after,
                until: range.until,
                estimated_objects,
            })
            .collect(),
        estimated_objects: division.estimated.iter().sum(),
        exact: division.exact,
        requests: division.requests as u64,
        created_at: refgen_core::expiry::format_rfc3339(SystemTime::now()),
        fingerprint: String::new(),
    };
    plan.fingerprint = plan.compute_fingerprint();
    Ok(plan)
}

/// Writes `plan` to `path` through the one writer (whole, or not at all).
pub fn write(plan: &RangePlan, path: &Path) -> Result<(), Error> {
    let mut file = TargetFile::create(path)?;
    let mut text = serde_json::to_vec_pretty(plan).map_err(|e| Error::Plan {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    text.push(b'\n');
    std::io::Write::write_all(&mut file, &text).map_err(|source| refgen_core::Error::Output {
        path: path.to_owned(),
        source,
    })?;
    file.commit()?;
    Ok(())
}

/// The source a plan was made for, parsed.
pub fn source_of(plan: &RangePlan) -> Result<SourceUrl, Error> {
    Ok(plan.source.parse()?)
}

/// A plan shared by the runs of its parts.
pub type SharedPlan = Arc<RangePlan>;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RangePlan {
        let mut plan = RangePlan {
            format: FORMAT.to_owned(),
            source: "s3://b/p/".to_owned(),
            selection: PlanSelection::default(),
            parts: vec![
                PlannedPart {
                    after: None,
                    until: Some("p/m".into()),
                    estimated_objects: 5,
                },
                PlannedPart {
                    after: Some("p/m".into()),
                    until: None,
                    estimated_objects: 5,
                },
            ],
            estimated_objects: 10,
            exact: true,
            requests: 1,
            created_at: "2026-12-03T00:00:00Z".to_owned(),
            fingerprint: String::new(),
        };
        plan.fingerprint = plan.compute_fingerprint();
        plan
    }

    #[test]
    fn a_changed_or_broken_plan_is_refused() {
        assert_eq!(sample().check(), Ok(()));
        let mut moved = sample();
        moved.parts[0].until = Some("p/n".into());
        moved.parts[1].after = Some("p/n".into());
        assert!(moved.check().expect_err("changed").contains("fingerprint"));
        let mut gap = sample();
        gap.parts[1].after = Some("p/z".into());
        assert!(gap.check().expect_err("gap").contains("cover"));
        let mut other = sample();
        other.selection.images = true;
        assert!(other.check().is_err());
        // Estimates are not relied on: they may be edited.
        let mut estimate = sample();
        estimate.parts[0].estimated_objects = 7;
        assert_eq!(estimate.check(), Ok(()));
    }
}
