//! Cost of one Azure blob URL with a per-blob service SAS signed by the account key.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use refgen_azure::signer::{AccountKey, Resource, SasFields, encode_blob_path, service_sas};

fn sign(c: &mut Criterion) {
    let key = AccountKey::from_base64(
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    )
    .expect("key");
    let fields = SasFields {
        permissions: "r",
        start: Some("2026-11-28T00:00:00Z"),
        expiry: "2026-11-29T00:00:00Z",
        protocol: Some("https"),
        ..Default::default()
    };
    let mut group = c.benchmark_group("sign");
    group.throughput(Throughput::Elements(1));
    group.bench_function("azure_sas_url", |b| {
        b.iter(|| {
            let name = black_box("datasets/2024/train/class_07/img_000123.jpg");
            let sas = service_sas(&key, "account", "container", Resource::Blob(name), &fields);
            format!(
                "https://account.blob.core.windows.net/container/{}?{}",
                encode_blob_path(name),
                sas.query
            )
        })
    });
    group.finish();
}

criterion_group!(benches, sign);
criterion_main!(benches);
