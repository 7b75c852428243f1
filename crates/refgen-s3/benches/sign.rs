//! Cost of one presigned S3 URL (SigV4 query signing, everything per-run derived once).
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use refgen_s3::{SigV4Presigner, SigningCredentials};

fn sign(c: &mut Criterion) {
    let endpoint = url::Url::parse("https://examplebucket.s3.eu-central-1.amazonaws.com").expect("url");
    let creds = SigningCredentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None);
    let presigner = SigV4Presigner::new(&endpoint, "eu-central-1", creds);
    let batch = presigner.batch(SystemTime::now(), Duration::from_secs(86_400));
    let mut group = c.benchmark_group("sign");
    group.throughput(Throughput::Elements(1));
    group.bench_function("s3_sigv4_url", |b| {
        b.iter(|| batch.presign(black_box("datasets/2024/train/class_07/img_000123.jpg")))
    });
    group.finish();
}

criterion_group!(benches, sign);
criterion_main!(benches);
