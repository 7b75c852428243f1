//! Cost of one V4-signed GCS URL: RSA (key parsed once), HMAC; and, for scale, the
//! raw RSA-2048 PKCS#1 SHA-256 signature of aws-lc-rs alone.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use aws_lc_rs::{rand, signature};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use refgen_gcs::signer::{Endpoint, HmacSigner, RsaSigner, UrlStyle, V4Request, sign_url};

fn key() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/gcs/test_service_account.not-a-test.json");
    let path = std::env::var_os("REFGEN_SHARED_DIR")
        .map(|d| std::path::PathBuf::from(d).join("vectors/gcs/test_service_account.not-a-test.json"))
        .unwrap_or(path);
    serde_json::from_str(&std::fs::read_to_string(path).expect("dummy key")).expect("JSON")
}

fn sign(c: &mut Criterion) {
    let key = key();
    let pem = key["private_key"].as_str().expect("pem");
    let rsa = RsaSigner::from_pem(key["client_email"].as_str().expect("email"), pem).expect("key");
    let hmac = HmacSigner::new("GOOG1EXAMPLE", "secret-secret-secret");
    let endpoint = Endpoint::google();
    let request = |k: &'static str| V4Request {
        method: "GET",
        bucket: "bucket",
        object: Some(k),
        headers: &[],
        query: &[],
        endpoint: &endpoint,
        style: &UrlStyle::Path,
        at: SystemTime::now(),
        expires_in: Duration::from_secs(86_400),
    };
    let object = "datasets/2024/train/class_07/img_000123.jpg";
    let mut group = c.benchmark_group("sign");
    group.throughput(Throughput::Elements(1));
    group.bench_function("gcs_rsa_url", |b| {
        b.iter(|| sign_url(&request(black_box(object)), &rsa).expect("signs"))
    });
    group.bench_function("gcs_hmac_url", |b| {
        b.iter(|| sign_url(&request(black_box(object)), &hmac).expect("signs"))
    });

    // The floor: one raw RSA-2048 signature over a string-to-sign-sized message.
    let der = {
        use base64::Engine as _;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(body).expect("base64")
    };
    let pair = signature::RsaKeyPair::from_pkcs8(&der).expect("pkcs8");
    let rng = rand::SystemRandom::new();
    let message = [b'x'; 150];
    let mut out = vec![0; pair.public_modulus_len()];
    group.bench_function("raw_rsa2048_sign", |b| {
        b.iter(|| {
            pair.sign(&signature::RSA_PKCS1_SHA256, &rng, black_box(&message), &mut out)
                .expect("signs")
        })
    });
    group.finish();
}

criterion_group!(benches, sign);
criterion_main!(benches);
