//! The whole generate pipeline over a synthetic bucket of N objects, with the real
//! SigV4 presigner and the real writer: for measuring throughput and peak memory at
//! sizes a local server cannot hold (`scripts/bench.sh` runs it at 1,000,000).
//!
//! The bucket is one flat folder that answers like S3 (byte order, pages of 1,000,
//! start-after, one-level listings), so the run goes through the concurrent listing
//! as a real flat bucket would: planned, cut into chunks, listed 16 requests at a
//! time in an ordered window.
//!
//! Usage: synthetic N OUTPUT_FILE [CONCURRENCY]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, stream};
use refgen_core::filter::SelectionBuilder;
use refgen_core::naming::{NameMode, Namer};
use refgen_core::pipeline::generate;
use refgen_core::writer::{OutputTarget, ReferenceWriter};
use refgen_core::{Error, FirstPage, LevelEntry, LevelPage, LevelStream, Lister, ObjectMeta, PageStream, Signer};
use refgen_s3::{SigV4Presigner, SigningCredentials};

const PAGE: u64 = 1000;
const FOLDER: &str = "data/";

/// Keys `data/NNNNNNNN.jpg`, made page by page: nothing is stored.
struct SyntheticBucket {
    objects: u64,
}

impl SyntheticBucket {
    fn key(i: u64) -> String {
        format!("{FOLDER}{i:08}.jpg")
    }

    /// The index of the first key after `after` (keys are fixed-width, so their
    /// string order is their index order).
    fn first_after(&self, after: Option<&str>) -> u64 {
        let Some(after) = after else { return 0 };
        let (mut lo, mut hi) = (0, self.objects);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if Self::key(mid).as_str() > after {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    fn page_from(&self, start: u64) -> Vec<ObjectMeta> {
        (start..(start + PAGE).min(self.objects))
            .map(|i| ObjectMeta {
                key: Self::key(i),
                size: 1,
                last_modified: None,
            })
            .collect()
    }
}

impl Lister for SyntheticBucket {
    fn list<'a>(&'a self, prefix: &'a str, after: Option<&'a str>) -> PageStream<'a> {
        let start = if FOLDER.starts_with(prefix) || prefix.starts_with(FOLDER) {
            self.first_after(after)
        } else {
            self.objects
        };
        stream::iter((start..self.objects).step_by(PAGE as usize))
            .map(move |from| Ok(self.page_from(from)))
            .boxed()
    }

    fn list_level<'a>(&'a self, prefix: &'a str) -> Option<LevelStream<'a>> {
        Some(if prefix == FOLDER {
            self.list(prefix, None)
                .map(move |page| {
                    page.map(|p| LevelPage {
                        more: p.last().is_some_and(|o| self.first_after(Some(&o.key)) < self.objects),
                        entries: p.into_iter().map(LevelEntry::Object).collect(),
                    })
                })
                .boxed()
        } else {
            let only_folder = LevelPage {
                entries: vec![LevelEntry::Prefix(FOLDER.to_owned())],
                more: false,
            };
            stream::iter([Ok(only_folder)]).boxed()
        })
    }

    fn seeks(&self) -> bool {
        true
    }

    fn page_len(&self) -> usize {
        PAGE as usize
    }

    fn first_page<'a>(&'a self, prefix: &'a str) -> Option<FirstPage<'a>> {
        Some(Box::pin(async move {
            let start = if prefix == FOLDER || prefix.is_empty() {
                0
            } else {
                self.objects
            };
            let page = self.page_from(start);
            let more = page.len() as u64 == PAGE && self.objects > PAGE;
            Ok((page, more))
        }))
    }
}

struct Presign(SigV4Presigner);

#[async_trait::async_trait]
impl Signer for Presign {
    fn max_expiry(&self) -> Duration {
        refgen_s3::MAX_PRESIGN_EXPIRY
    }
    async fn sign_page(&self, objects: &[ObjectMeta], expires_in: Duration) -> Result<Vec<String>, Error> {
        let batch = self.0.batch(SystemTime::now(), expires_in);
        Ok(objects.iter().map(|o| batch.presign(&o.key)).collect())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let objects: u64 = args
        .next()
        .ok_or("usage: synthetic N OUTPUT_FILE [CONCURRENCY]")?
        .parse()?;
    let output = args.next().ok_or("usage: synthetic N OUTPUT_FILE [CONCURRENCY]")?;
    let concurrency = args
        .next()
        .map_or(Ok(refgen_core::fanout::DEFAULT_CONCURRENCY), |c| c.parse())?;
    let endpoint = url::Url::parse("https://bucket.s3.eu-central-1.amazonaws.com")?;
    let signer = Arc::new(Presign(SigV4Presigner::new(
        &endpoint,
        "eu-central-1",
        SigningCredentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None),
    )));
    let selection = SelectionBuilder::new("").build()?;
    let mut writer = ReferenceWriter::create(OutputTarget::File(output.into()))?;
    let mut namer = Namer::new(NameMode::Flat);
    let lister: Arc<dyn Lister> = Arc::new(SyntheticBucket { objects });
    let summary = generate(
        lister,
        signer,
        &selection,
        Duration::from_secs(86_400),
        concurrency,
        &mut namer,
        &mut writer,
    )
    .await?;
    writer.finish()?;
    let secs = summary.elapsed.as_secs_f64();
    println!(
        "{} references in {secs:.2}s: {:.0} URLs/s",
        summary.written,
        summary.written as f64 / secs
    );
    Ok(())
}
