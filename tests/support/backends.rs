//! The three storage servers behind one face, so a scenario is written once and
//! run on each: fixtures, the source URL, and a `refgen` pointed at the server (or
//! at a proxy in front of it). A server whose settings are missing is skipped with
//! a message, not a panic.

use std::time::{Duration, SystemTime};

use crate::faults::Service;
use crate::*;

/// One test per backend for each scenario named (an `async fn(Backend)`), in a
/// module of the scenario's name (`listing_survives_every_fault::gcs`), so the
/// servers run in parallel and a failure names its server. A scenario returns at
/// once on a backend that is not running or lacks what it needs.
#[macro_export]
macro_rules! on_every_backend {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                use $crate::backends::Backend;

                #[tokio::test(flavor = "multi_thread")]
                async fn s3() {
                    super::$scenario(Backend::S3).await;
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn gcs() {
                    super::$scenario(Backend::Gcs).await;
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn azure() {
                    super::$scenario(Backend::Azure).await;
                }
            }
        )+
    };
}

/// Every local storage server, for a scenario to run on each.
pub const ALL: [Backend; 3] = [Backend::S3, Backend::Gcs, Backend::Azure];

/// One of the local storage servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SeaweedFS (S3).
    S3,
    /// fake-gcs-server.
    Gcs,
    /// Azurite.
    Azure,
}

impl Backend {
    fn settings(self) -> &'static [&'static str] {
        match self {
            Backend::S3 => &["REFGEN_TEST_S3_ENDPOINT", "REFGEN_TEST_S3_ACCESS_KEY"],
            Backend::Gcs => &["REFGEN_TEST_GCS_ENDPOINT"],
            Backend::Azure => &["REFGEN_TEST_AZURE_ENDPOINT", "REFGEN_TEST_AZURE_KEY"],
        }
    }

    /// Whether the server's settings are there; says why not on stderr.
    pub fn available(self) -> bool {
        let missing: Vec<&str> = self
            .settings()
            .iter()
            .copied()
            .filter(|v| std::env::var_os(v).is_none())
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "skipped on {self:?}: {} not set (scripts/test.sh starts the servers)",
                missing.join(", ")
            );
        }
        missing.is_empty()
    }

    /// The fault proxy's service for this server.
    pub fn service(self) -> Service {
        match self {
            Backend::S3 => Service::S3,
            Backend::Gcs => Service::Gcs,
            Backend::Azure => Service::Azure,
        }
    }

    /// The server's base URL (what a proxy forwards to).
    pub fn upstream(self) -> String {
        match self {
            Backend::S3 => s3_env().endpoint,
            Backend::Gcs => gcs_endpoint(),
            Backend::Azure => azure_env().0,
        }
    }

    /// A new bucket (container) holding `keys`, each with the bytes `key`; every
    /// key must be accepted.
    pub async fn bucket_with(self, keys: &[String]) -> String {
        let (bucket, accepted) = self.bucket_holding(keys).await;
        assert_eq!(accepted.len(), keys.len(), "{self:?} refused some keys");
        bucket
    }

    /// A new S3 bucket holding many `keys`, empty (the filer then keeps only
    /// an entry, no volume write). They are written through SeaweedFS's filer
    /// (its HTTP port is the S3 port + 3, as `scripts/s3-server.sh` starts it;
    /// a folder under `/buckets` is a bucket to the S3 gateway), by curl, 32 at
    /// a time: a signed PutObject each, from a debug build of the SDK, took
    /// three minutes for 100,000.
    pub fn bucket_with_many(self, keys: &[String]) -> String {
        assert_eq!(self, Backend::S3, "many objects: S3 only");
        let env = s3_env();
        let bucket = unique_bucket("many");
        let port: u16 = env
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("S3 port");
        let filer = format!("http://127.0.0.1:{}/buckets/{bucket}", port + 3);
        // curl's parallel transfers: a debug build's HTTP client spent a
        // millisecond of CPU on each of 100,000 requests.
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").expect("empty file");
        let mut config = String::new();
        for key in keys {
            config.push_str(&format!(
                "url = \"{filer}/{key}\"\nupload-file = \"{}\"\n",
                empty.display()
            ));
        }
        let config_path = dir.path().join("curl.conf");
        std::fs::write(&config_path, config).expect("curl config");
        let log = std::fs::File::create(dir.path().join("answers")).expect("answers");
        let status = std::process::Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--fail",
                "--parallel",
                "--parallel-max",
                "32",
                "--config",
            ])
            .arg(&config_path)
            .stdout(log)
            .status()
            .expect("curl");
        assert!(status.success(), "curl filled the bucket: {status}");
        bucket
    }

    /// A new bucket (container) with each of `keys` that the server accepts, each
    /// with the bytes `key`; the bucket and the keys it accepted.
    pub async fn bucket_holding(self, keys: &[String]) -> (String, Vec<String>) {
        let bucket = unique_bucket("behave");
        let accepted = match self {
            Backend::S3 => {
                let env = s3_env();
                let client = admin_client(&env);
                create_bucket(&client, &bucket).await;
                let objects = keys.iter().map(|k| (k.clone(), k.as_bytes().to_vec())).collect();
                put_objects(&client, &bucket, objects).await
            }
            Backend::Gcs => {
                let endpoint = gcs_endpoint();
                gcs_create_bucket(&endpoint, &bucket);
                for k in keys {
                    gcs_put(&endpoint, &bucket, k, k.as_bytes().to_vec());
                }
                keys.to_vec()
            }
            Backend::Azure => {
                let (endpoint, _, _) = azure_env();
                let sas = azure_admin_sas();
                let (status, _) = http_send(
                    "PUT",
                    &format!("{endpoint}/{bucket}?restype=container&{sas}"),
                    Vec::new(),
                );
                assert_eq!(status, 201, "create container");
                let put =
                    |k: &&String| azure_put_blob(&azure_blob_url(&endpoint, &bucket, k, &sas), k.as_bytes().to_vec());
                keys.iter().filter(|k| put(k).0 == 201).cloned().collect()
            }
        };
        (bucket, accepted)
    }

    /// Whether the server keeps versions, so that a pinned URL can be shown to
    /// read the bytes listed after an overwrite (SeaweedFS's S3 versioning,
    /// fake-gcs-server's generations; Azurite keeps none).
    pub fn keeps_versions(self) -> bool {
        self != Backend::Azure
    }

    /// A new bucket that keeps every version of its objects (versioning on; a
    /// server without it gets a plain bucket), holding `keys` each with the bytes `key`.
    pub async fn versioned_bucket_with(self, keys: &[String]) -> String {
        let bucket = unique_bucket("versions");
        match self {
            Backend::S3 => {
                let client = admin_client(&s3_env());
                create_bucket(&client, &bucket).await;
                enable_versioning(&client, &bucket).await;
            }
            Backend::Gcs => {
                let (status, body) = http_send(
                    "POST",
                    &format!("{}/storage/v1/b?project=refgen", gcs_endpoint()),
                    format!("{{\"name\":\"{bucket}\",\"versioning\":{{\"enabled\":true}}}}").into_bytes(),
                );
                assert_eq!(status, 200, "create {bucket}: {}", String::from_utf8_lossy(&body));
            }
            Backend::Azure => return self.bucket_with(keys).await,
        }
        for key in keys {
            self.put(&bucket, key, key.as_bytes().to_vec()).await;
        }
        bucket
    }

    /// Puts one object with these bytes into `bucket` (made by [`Backend::bucket_with`]).
    pub async fn put(self, bucket: &str, key: &str, body: Vec<u8>) {
        match self {
            Backend::S3 => {
                let client = admin_client(&s3_env());
                let accepted = put_objects(&client, bucket, vec![(key.to_owned(), body)]).await;
                assert_eq!(accepted.len(), 1, "put {key}");
            }
            Backend::Gcs => gcs_put(&gcs_endpoint(), bucket, key, body),
            Backend::Azure => {
                assert_eq!(azure_put_blob(&azure_admin_url(bucket, key), body).0, 201, "put {key}");
            }
        }
    }

    /// Deletes one object of `bucket`.
    pub async fn delete(self, bucket: &str, key: &str) {
        match self {
            Backend::S3 => {
                let client = admin_client(&s3_env());
                client
                    .delete_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .expect("delete");
            }
            Backend::Gcs => {
                let name = percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC);
                let (status, _) = http_send(
                    "DELETE",
                    &format!("{}/storage/v1/b/{bucket}/o/{name}", gcs_endpoint()),
                    Vec::new(),
                );
                assert!(matches!(status, 200 | 204), "delete {key}: {status}");
            }
            Backend::Azure => {
                let url = azure_admin_url(bucket, key);
                let (status, _) = http_send("DELETE", &url, Vec::new());
                assert_eq!(status, 202, "delete {key}");
            }
        }
    }

    /// Whether the server has a storage tier a plain GET cannot read (S3's
    /// GLACIER, Azure's Archive; GCS's Archive class is read at once).
    pub fn archive_tier(self) -> bool {
        self != Backend::Gcs
    }

    /// Puts `key` into `bucket` in the archive tier ([`Backend::archive_tier`]).
    pub async fn put_archived(self, bucket: &str, key: &str) {
        match self {
            Backend::S3 => {
                admin_client(&s3_env())
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .storage_class(aws_sdk_s3::types::StorageClass::Glacier)
                    .body(aws_sdk_s3::primitives::ByteStream::from(key.as_bytes().to_vec()))
                    .send()
                    .await
                    .expect("put in GLACIER");
            }
            Backend::Azure => {
                let url = azure_admin_url(bucket, key);
                assert_eq!(azure_put_blob(&url, key.as_bytes().to_vec()).0, 201, "put {key}");
                let tier_url = url.replacen('?', "?comp=tier&", 1);
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let request = ureq::http::Request::builder()
                    .method("PUT")
                    .uri(&tier_url)
                    .header("x-ms-access-tier", "Archive")
                    .body(Vec::new())
                    .expect("request");
                let status = agent.run(request).expect("set tier").status().as_u16();
                assert!(status == 200 || status == 202, "set tier Archive: {status}");
            }
            Backend::Gcs => panic!("fake-gcs-server has no tier a GET cannot read"),
        }
    }

    /// The formats of the cloud's inventory report refgen reads, as
    /// `scripts/inventory-fixture.py` names them for this cloud.
    pub fn inventory_formats(self) -> &'static [&'static str] {
        match self {
            Backend::S3 => &["CSV", "Parquet", "ORC"],
            Backend::Gcs | Backend::Azure => &["csv", "parquet"],
        }
    }

    /// The fixture spec of an inventory report in `format`, written to `dest`,
    /// that lists `keys` of `source` as current objects, and the URL to give
    /// `--inventory` (its manifest).
    pub fn inventory_spec(
        self,
        source: &str,
        dest: &str,
        format: &str,
        keys: &[String],
    ) -> (serde_json::Value, String) {
        use serde_json::json;
        let prefix = format!("{source}/{}/", format.to_lowercase());
        match self {
            Backend::S3 => {
                let date = "2026-11-30T01-00Z";
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| json!({"key": k, "size": k.len(), "version": "v1", "latest": true, "class": "STANDARD"}))
                    .collect();
                let spec = json!({"format": format, "source_bucket": source, "destination_bucket": dest,
                                  "prefix": prefix, "date": date, "files": 2, "rows": rows});
                (spec, format!("s3://{dest}/{prefix}{date}/manifest.json"))
            }
            Backend::Gcs => {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| json!({"key": k, "size": k.len(), "class": "STANDARD"}))
                    .collect();
                let spec = json!({"flavor": "gcs", "format": format, "prefix": prefix, "source_bucket": source,
                                  "files": 2, "rows": rows});
                (
                    spec,
                    format!("gs://{dest}/{prefix}cfg_2026-11-30T01:00:00_manifest.json"),
                )
            }
            Backend::Azure => {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| json!({"name": format!("{source}/{k}"), "size": k.len(), "tier": "Hot"}))
                    .collect();
                let spec = json!({"flavor": "azure", "format": format, "status": "Succeeded", "prefix": prefix,
                                  "destination_container": dest, "files": 2, "rows": rows});
                let account = azure_env().1;
                (spec, format!("az://{account}/{dest}/{prefix}Rule_1-manifest.json"))
            }
        }
    }

    /// Whether the server checks signatures (fake-gcs-server does not).
    pub fn checks_signatures(self) -> bool {
        self != Backend::Gcs
    }

    /// The source URL of a prefix of `bucket`.
    pub fn source(self, bucket: &str, prefix: &str) -> String {
        match self {
            Backend::S3 => format!("s3://{bucket}/{prefix}"),
            Backend::Gcs => format!("gs://{bucket}/{prefix}"),
            Backend::Azure => format!("az://{}/{bucket}/{prefix}", azure_env().1),
        }
    }

    /// `refgen generate SOURCE ARGS…` with this server's credentials, reaching it
    /// at `via` (a proxy's `http://127.0.0.1:PORT`) or directly.
    pub fn generate(self, source: &str, via: Option<&str>, args: &[&str]) -> Refgen {
        let mut all = vec!["generate", source];
        all.extend(args);
        self.refgen(&all, via)
    }

    /// `refgen ARGS…` (any command) with this server's credentials, reaching it
    /// at `via` or directly.
    pub fn refgen(self, args: &[&str], via: Option<&str>) -> Refgen {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match self {
            Backend::S3 => {
                let env = s3_env();
                Refgen::new(all)
                    .s3_credentials(&env.access_key, &env.secret_key)
                    .env("AWS_ENDPOINT_URL", via.map_or(env.endpoint.clone(), str::to_owned))
                    .env("AWS_REGION", "us-east-1")
            }
            Backend::Gcs => Refgen::new(all)
                .gcs_emulator()
                .env("STORAGE_EMULATOR_HOST", via.map_or_else(gcs_endpoint, str::to_owned))
                .env("GOOGLE_APPLICATION_CREDENTIALS", gcs_dummy_key()),
            Backend::Azure => {
                let (endpoint, account, key) = azure_env();
                let base = via.map_or(endpoint, |v| format!("{v}/{account}"));
                all.extend(["--endpoint-url".to_owned(), base]);
                Refgen::new(all).env("AZURE_STORAGE_KEY", key)
            }
        }
    }
}

/// A blob's URL on Azurite with the admin SAS.
fn azure_admin_url(bucket: &str, key: &str) -> String {
    azure_blob_url(&azure_env().0, bucket, key, &azure_admin_sas())
}

/// An account SAS with every permission on Azurite, for fixtures.
pub fn azure_admin_sas() -> String {
    let (_, account, key) = azure_env();
    let expiry = refgen_azure::signer::sas_time(SystemTime::now() + Duration::from_secs(3600));
    refgen_azure::signer::account_sas(
        &refgen_azure::signer::AccountKey::from_base64(&key).expect("Azurite's key"),
        &account,
        "sco",
        &refgen_azure::signer::SasFields {
            permissions: "rwdlac",
            expiry: &expiry,
            ..Default::default()
        },
    )
    .query
}
