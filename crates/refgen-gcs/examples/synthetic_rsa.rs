//! GCS RSA signing through the whole pipeline, over a synthetic bucket: how close
//! refgen comes to the crypto library's raw RSA-2048 rate on all cores
//! (`scripts/bench.sh` runs it). The store is the real `GcsStore`, pointed at an
//! unreachable emulator address: signing needs no network.
//!
//! Usage: synthetic_rsa N KEY_FILE

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::{rand, signature};
use refgen_core::filter::SelectionBuilder;
use refgen_core::list::{Capabilities, ListClient, ListPage, ListRequest};
use refgen_core::naming::{NameMode, Namer};
use refgen_core::pipeline::{Objects, Output, RunOptions, generate};
use refgen_core::writer::{OutputTarget, ReferenceWriter};
use refgen_core::{Error, ObjectMeta};

struct SyntheticBucket {
    objects: u64,
}

#[async_trait::async_trait]
impl ListClient for SyntheticBucket {
    fn capabilities(&self) -> Capabilities {
        // A plain listing: the pipeline's signing is what is measured.
        Capabilities {
            delimiter: false,
            start_after: false,
            page_len: 1000,
        }
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        let p: u64 = request.token.map_or(Ok(0), str::parse).unwrap_or(u64::MAX);
        let end = ((p + 1) * 1000).min(self.objects);
        let objects = (p.saturating_mul(1000)..end)
            .map(|i| ObjectMeta {
                key: format!("data/c{:02}/{i:08}.jpg", i % 100),
                size: 1,
                last_modified: None,
                archived: false,
                superseded: false,
                folder: false,
                version: None,
                customer_key: false,
            })
            .collect();
        let next = (end < self.objects).then(|| (p + 1).to_string());
        Ok(ListPage {
            objects,
            prefixes: Vec::new(),
            next,
        })
    }
}

/// Raw RSA-2048 signatures per second on `threads` threads, for the same key.
fn raw_rate(der: &[u8], threads: usize, per_thread: usize) -> f64 {
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let pair = signature::RsaKeyPair::from_pkcs8(der).expect("pkcs8");
                let rng = rand::SystemRandom::new();
                let mut out = vec![0; pair.public_modulus_len()];
                for _ in 0..per_thread {
                    pair.sign(&signature::RSA_PKCS1_SHA256, &rng, &[b'x'; 150], &mut out)
                        .expect("signs");
                }
            });
        }
    });
    (threads * per_thread) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: synthetic_rsa N KEY_FILE";
    let objects: u64 = args.next().ok_or(usage)?.parse()?;
    let key_file = args.next().ok_or(usage)?;
    let store = refgen_gcs::GcsBuilder::new("bench")
        .with_credentials_file(&key_file)
        .with_endpoint_url("http://127.0.0.1:1")
        .build()
        .await?;
    let dir = tempfile_dir()?;
    let mut writer = ReferenceWriter::create(OutputTarget::File(dir.join("rsa.jsonl")))?;
    let lister: Arc<dyn ListClient> = Arc::new(SyntheticBucket { objects });
    let selection = SelectionBuilder::new("").build()?;
    let summary = generate(
        Objects::Listing(lister),
        Arc::new(store),
        &selection,
        Duration::from_secs(3600),
        &RunOptions {
            concurrency: 16,
            ..RunOptions::default()
        },
        &mut Namer::new(NameMode::Flat),
        Output::Write(&mut writer),
    )
    .await?;
    writer.finish()?;
    let pipeline = summary.written as f64 / summary.elapsed.as_secs_f64();

    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&key_file)?)?;
    let pem = json["private_key"].as_str().ok_or("no private_key")?;
    let der = {
        use base64::Engine as _;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(body)?
    };
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let raw = raw_rate(&der, cores, (objects as usize / cores).max(100));
    println!(
        "GCS RSA through the pipeline: {pipeline:.0} URLs/s; raw RSA-2048 on {cores} cores: {raw:.0}/s; {:.0} %",
        100.0 * pipeline / raw
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("refgen-synthetic-rsa-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
