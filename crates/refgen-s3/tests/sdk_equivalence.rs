//! The fast presigner gives the same URL as aws-sdk-s3's own `presigned()` for random
//! keys, regions and addressing styles, at the same signing time. (The SDK adds an
//! `x-id=GetObject` marker to the query; it is removed before signing so that both
//! sign the same request.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::presigning::PresigningConfig;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use refgen_s3::{SigV4Presigner, SigningCredentials};

const ALPHABET: &[&str] = &[
    "a", "Z", "0", "/", "//", " ", "+", "%", "%2F", "#", "?", "&", "=", ";", ",", "~", "_", "-", ".", "..", "\"", "'",
    "\\", "[", "]", "(", ")", "{", "}", "*", ":", "@", "$", "^", "|", "<", ">", "\t", "\n", "é", "e\u{301}", "日本",
    "😀", "!",
];

fn random_key(rng: &mut StdRng) -> String {
    loop {
        let len = rng.random_range(1..40);
        let key: String = (0..len)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect();
        // The SDK refuses keys made only of whitespace as "missing"; S3 itself takes them.
        if !key.trim().is_empty() {
            return key;
        }
    }
}

fn sorted_pairs(url: &str) -> (String, Vec<String>) {
    let (base, query) = url.split_once('?').expect("query");
    let mut pairs: Vec<String> = query.split('&').map(str::to_owned).collect();
    pairs.sort();
    (base.to_owned(), pairs)
}

async fn sdk_url(client: &aws_sdk_s3::Client, bucket: &str, key: &str, at: SystemTime, expires: Duration) -> String {
    let config = PresigningConfig::builder()
        .start_time(at)
        .expires_in(expires)
        .build()
        .expect("presigning config");
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .customize()
        .mutate_request(|req| {
            let uri = req.uri().replace("?x-id=GetObject", "").replace("&x-id=GetObject", "");
            req.set_uri(uri).expect("uri");
        })
        .presigned(config)
        .await
        .unwrap_or_else(|e| panic!("SDK presigns {key:?}: {e:?}"))
        .uri()
        .to_owned()
}

#[tokio::test]
async fn same_urls_as_the_sdk_presigner_on_random_keys() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let (akid, secret) = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    let scenarios = [
        // (endpoint, region, path style, bucket, base URL our config resolves)
        (
            Some("http://127.0.0.1:9000"),
            "us-east-1",
            true,
            "test-bucket",
            "http://127.0.0.1:9000/test-bucket",
        ),
        (
            None,
            "eu-central-1",
            false,
            "examplebucket",
            "https://examplebucket.s3.eu-central-1.amazonaws.com",
        ),
        (
            None,
            "us-west-2",
            true,
            "my.dotted.bucket",
            "https://s3.us-west-2.amazonaws.com/my.dotted.bucket",
        ),
        (
            Some("https://acc.r2.cloudflarestorage.com"),
            "auto",
            true,
            "media",
            "https://acc.r2.cloudflarestorage.com/media",
        ),
    ];
    for (endpoint, region, path_style, bucket, base) in scenarios {
        for session_token in [None, Some("FQoGZXIvYXdzEXAMPLE//+/=token")] {
            let mut config = aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(region))
                .credentials_provider(Credentials::new(
                    akid,
                    secret,
                    session_token.map(str::to_owned),
                    None,
                    "test",
                ))
                .force_path_style(path_style);
            if let Some(url) = endpoint {
                config = config.endpoint_url(url);
            }
            let client = aws_sdk_s3::Client::from_conf(config.build());
            let ours = SigV4Presigner::new(
                &url::Url::parse(base).expect("base"),
                region,
                SigningCredentials::new(akid, secret, session_token.map(str::to_owned)),
            );
            for _ in 0..60 {
                let key = random_key(&mut rng);
                let at = UNIX_EPOCH + Duration::from_secs(rng.random_range(1_600_000_000..1_900_000_000));
                let expires = Duration::from_secs(rng.random_range(1..=604_800));
                let want = sdk_url(&client, bucket, &key, at, expires).await;
                let got = ours.presign(&key, at, expires);
                assert_eq!(sorted_pairs(&got), sorted_pairs(&want), "key {key:?} on {base}");
            }
        }
    }
}
