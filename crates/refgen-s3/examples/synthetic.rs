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

use refgen_core::filter::SelectionBuilder;
use refgen_core::list::{Capabilities, ListClient, ListPage, ListRequest};
use refgen_core::naming::{NameMode, Namer};
use refgen_core::pipeline::{Objects, Output, RunOptions, generate};
use refgen_core::writer::{OutputTarget, ReferenceWriter};
use refgen_core::{Error, ObjectMeta, Signer};
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
                archived: false,
                superseded: false,
                folder: false,
                version: None,
                customer_key: false,
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl ListClient for SyntheticBucket {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            delimiter: true,
            start_after: true,
            page_len: PAGE as usize,
        }
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        let prefix = request.prefix;
        if request.delimited && prefix != FOLDER {
            // The root holds the one folder.
            let prefixes = FOLDER
                .starts_with(prefix)
                .then(|| FOLDER.to_owned())
                .into_iter()
                .collect();
            return Ok(ListPage {
                prefixes,
                ..ListPage::default()
            });
        }
        let start = if FOLDER.starts_with(prefix) || prefix.starts_with(FOLDER) {
            self.first_after(request.token.or(request.start_after))
        } else {
            self.objects
        };
        let objects = self.page_from(start);
        let more = start + (objects.len() as u64) < self.objects;
        let next = objects.last().filter(|_| more).map(|o| o.key.clone());
        Ok(ListPage {
            objects,
            prefixes: Vec::new(),
            next,
        })
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
        .map_or(Ok(refgen_core::list::DEFAULT_CONCURRENCY), |c| c.parse())?;
    let endpoint = url::Url::parse("https://bucket.s3.eu-central-1.amazonaws.com")?;
    let signer = Arc::new(Presign(SigV4Presigner::new(
        &endpoint,
        "eu-central-1",
        SigningCredentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None),
    )));
    let selection = SelectionBuilder::new("").build()?;
    let mut writer = ReferenceWriter::create(OutputTarget::File(output.into()))?;
    let mut namer = Namer::new(NameMode::Flat);
    let lister: Arc<dyn ListClient> = Arc::new(SyntheticBucket { objects });
    let summary = generate(
        Objects::Listing(lister),
        signer,
        &selection,
        Duration::from_secs(86_400),
        &RunOptions {
            concurrency,
            ..RunOptions::default()
        },
        &mut namer,
        Output::Write(&mut writer),
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
