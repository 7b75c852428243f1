//! The whole generate pipeline over a synthetic bucket of N objects, with the real
//! SigV4 presigner and the real writer: for measuring throughput and peak memory at
//! sizes a local server cannot hold (`scripts/bench.sh` runs it at 1,000,000).
//!
//! Usage: synthetic N OUTPUT_FILE

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, stream};
use refgen_core::filter::SelectionBuilder;
use refgen_core::naming::{NameMode, Namer};
use refgen_core::pipeline::generate;
use refgen_core::writer::{OutputTarget, ReferenceWriter};
use refgen_core::{Error, Lister, ObjectMeta, PageStream, Signer};
use refgen_s3::{SigV4Presigner, SigningCredentials};

/// Keys `data/cNN/NNNNNNNN.jpg`, made page by page: nothing is stored.
struct SyntheticBucket {
    objects: u64,
}

impl Lister for SyntheticBucket {
    fn list<'a>(&'a self, _prefix: &'a str, _after: Option<&'a str>) -> PageStream<'a> {
        let pages = self.objects.div_ceil(1000);
        stream::iter(0..pages)
            .map(move |p| {
                let page = (p * 1000..((p + 1) * 1000).min(self.objects))
                    .map(|i| ObjectMeta {
                        key: format!("data/c{:02}/{i:08}.jpg", i % 100),
                        size: 1,
                        last_modified: None,
                    })
                    .collect();
                Ok(page)
            })
            .boxed()
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
    let objects: u64 = args.next().ok_or("usage: synthetic N OUTPUT_FILE")?.parse()?;
    let output = args.next().ok_or("usage: synthetic N OUTPUT_FILE")?;
    let endpoint = url::Url::parse("https://bucket.s3.eu-central-1.amazonaws.com")?;
    let signer = Presign(SigV4Presigner::new(
        &endpoint,
        "eu-central-1",
        SigningCredentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None),
    ));
    let selection = SelectionBuilder::new("").build()?;
    let mut writer = ReferenceWriter::create(OutputTarget::File(output.into()))?;
    let mut namer = Namer::new(NameMode::Flat);
    let lister: Arc<dyn Lister> = Arc::new(SyntheticBucket { objects });
    let summary = generate(
        lister,
        &signer,
        &selection,
        Duration::from_secs(86_400),
        16,
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
