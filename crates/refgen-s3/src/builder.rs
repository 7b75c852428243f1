//! Configuration: where the bucket is, how to reach it, which credentials sign.
//!
//! Shaped like object_store's builders: [`S3Builder::new`] reads nothing from the
//! environment, [`S3Builder::from_env`] opts in to the AWS CLI's chain (env vars,
//! profiles, SSO, web identity, ECS and IMDS), `with_*` setters override, and
//! [`S3Builder::build`] validates and resolves everything once.
//!
//! Two settings the AWS CLI reads and the Rust SDK does not are read here, from
//! the same places: the CA bundle (`AWS_CA_BUNDLE`, then the profile's
//! `ca_bundle`), which replaces the trusted roots for every request, credentials
//! included, as the CLI's does; and the profile's `s3 = addressing_style =
//! virtual|path|auto`.

use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::config::SharedHttpClient;
use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sdk_s3::config::retry::{RetryPartition, TokenBucket};
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_types::SdkConfig;
use aws_types::service_config::ServiceConfigKey;
use refgen_core::{Error, StorageErrorKind};

use crate::S3Store;
use crate::error::{PROVIDER, from_credentials, from_sdk};
use crate::retry::{MarkUnreachable, RetryMore, WholePage, sdk_timeouts};
use crate::signer::{SigV4Presigner, SigningCredentials};

/// How bucket names go into URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `https://bucket.host/key`.
    Virtual,
    /// `https://host/bucket/key`.
    Path,
}

/// Builds an [`S3Store`] for one bucket.
/// Its `Debug` shows no secret (`Credentials` redacts its own).
#[derive(Clone, Debug, Default)]
pub struct S3Builder {
    bucket: String,
    from_env: bool,
    profile: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    addressing: Option<Addressing>,
    credentials: Option<Credentials>,
    page_size: Option<i32>,
    retry: refgen_http::RetryConfig,
    max_attempts_explicit: bool,
    ca_bundle: Option<std::path::PathBuf>,
    request_payer: bool,
    url_endpoint: Option<String>,
    pin_versions: bool,
}

impl S3Builder {
    /// A builder that reads nothing from the environment: give it credentials and a region.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Builder {
            bucket: bucket.into(),
            ..Default::default()
        }
    }

    /// A builder that finds credentials, region and endpoint as the AWS CLI does.
    pub fn from_env(bucket: impl Into<String>) -> Self {
        S3Builder {
            from_env: true,
            ..S3Builder::new(bucket)
        }
    }

    /// Uses this named profile of `~/.aws/config` and `~/.aws/credentials`.
    pub fn with_profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// Signs and lists for this region (otherwise the bucket's region is looked up).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Talks to this endpoint (an S3-compatible store) instead of AWS.
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Trusts only the certificates of this PEM file (a private CA), as the AWS
    /// CLI's `--ca-bundle` does; over `AWS_CA_BUNDLE` and the profile's `ca_bundle`.
    pub fn with_ca_bundle(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }

    /// The requester pays (a requester-pays bucket, as the AWS CLI's
    /// `--request-payer requester`): every listing, read and upload says so, and
    /// every signed URL carries `x-amz-request-payer=requester` in its signed query.
    pub fn with_request_payer(mut self) -> Self {
        self.request_payer = true;
        self
    }

    /// Lists versions (ListObjectVersions: the latest of each key, not a delete
    /// marker) and signs each URL with the `versionId` listed, so that it reads
    /// the bytes listed even after the key is overwritten. A bucket whose
    /// versioning was never enabled is refused when first listed: its one
    /// `null` version is overwritten in place.
    pub fn with_pin_versions(mut self) -> Self {
        self.pin_versions = true;
        self
    }

    /// Signs URLs for this endpoint instead of the one listed through (a reverse
    /// proxy's public name in front of an internal store, a VPC endpoint's
    /// counterpart): the signature covers the host, so it is signed for this one,
    /// with the same addressing.
    pub fn with_url_endpoint(mut self, url: impl Into<String>) -> Self {
        self.url_endpoint = Some(url.into());
        self
    }

    /// Chooses virtual-hosted or path-style URLs.
    pub fn with_addressing(mut self, addressing: Addressing) -> Self {
        self.addressing = Some(addressing);
        self
    }

    /// Uses these credentials instead of the chain.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Asks for pages of at most this many keys (S3's maximum, 1,000, by default;
    /// more is taken as 1,000).
    pub fn with_page_size(mut self, keys: u32) -> Self {
        self.page_size = Some(i32::try_from(keys.clamp(1, 1000)).unwrap_or(1000));
        self
    }

    /// Timeouts and the retry budget (see [`refgen_http::RetryConfig`]); its attempts
    /// apply unless `AWS_MAX_ATTEMPTS` or the profile's `max_attempts` say otherwise.
    pub fn with_retry(mut self, retry: refgen_http::RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// This many attempts per request, over `AWS_MAX_ATTEMPTS` and the profile.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.retry.max_attempts = attempts.max(1);
        self.max_attempts_explicit = true;
        self
    }

    /// Loads configuration and credentials, finds the bucket's region and endpoint,
    /// and prepares the signer. Makes at most one request to the store (HeadBucket,
    /// to learn the region when it is not given).
    pub async fn build(self) -> Result<S3Store, Error> {
        if let Some(url) = &self.endpoint_url {
            check_endpoint(url)?;
        }
        if !self.from_env && self.credentials.is_none() {
            return Err(Error::storage(
                PROVIDER,
                StorageErrorKind::NoCredentials,
                "no credentials given (use S3Builder::from_env to look them up as the AWS CLI does)",
            ));
        }
        let settings = if self.from_env {
            ProfileSettings::load(self.profile.as_deref(), &aws_types::os_shim_internal::Env::real()).await?
        } else {
            ProfileSettings::default()
        };
        let ca_bundle = self
            .ca_bundle
            .clone()
            .map(|p| (p, "the CA bundle"))
            .or_else(|| refgen_http::env_var(self.from_env, "AWS_CA_BUNDLE").map(|p| (p.into(), "AWS_CA_BUNDLE")))
            .or_else(|| settings.ca_bundle.clone().map(|p| (p, "the profile's ca_bundle")));
        let http_client = ca_bundle
            .map(|(path, from)| https_client_trusting(&path, from))
            .transpose()?;
        let retry_config = crate::retry::sdk_retry_config(
            self.retry.max_attempts,
            self.max_attempts_explicit,
            settings.max_attempts,
            settings.retry_mode,
        );
        let sdk = self.load_sdk_config(http_client, retry_config.clone()).await;
        let endpoint_url = self.endpoint_url.clone().or_else(|| configured_endpoint(&sdk));
        if let Some(url) = &endpoint_url {
            check_endpoint(url)?;
        }
        let provider = sdk.credentials_provider().ok_or_else(|| {
            Error::storage(
                PROVIDER,
                StorageErrorKind::NoCredentials,
                "no AWS credentials configured: pass credentials or use the environment",
            )
        })?;
        let credentials = provider.provide_credentials().await.map_err(|e| from_credentials(&e))?;

        let access_point = access_point_region(&self.bucket);
        if access_point == Some("") {
            return Err(Error::InvalidSource {
                url: format!("s3://{}", self.bucket),
                reason: "a Multi-Region Access Point needs SigV4A signatures, which refgen does not make: give a regional access point's ARN or the bucket itself".to_owned(),
            });
        }
        if access_point.is_some() && self.addressing == Some(Addressing::Path) {
            return Err(Error::InvalidSource {
                url: format!("s3://{}", self.bucket),
                reason: "an access point is reached at its own host name: path-style addressing cannot name it"
                    .to_owned(),
            });
        }
        if is_directory_bucket(&self.bucket)
            && (credentials.session_token().is_some() || credentials.expiry().is_some())
        {
            return Err(Error::InvalidSource {
                url: format!("s3://{}", self.bucket),
                reason: "an S3 Express One Zone directory bucket's URLs are signed with the credentials' own lifetime, and these are temporary (a session's last 5 minutes): sign with long-lived credentials (an IAM user's access keys)".to_owned(),
            });
        }
        let addressing = match access_point {
            // Access points and directory buckets are virtual-hosted only.
            Some(_) => Addressing::Virtual,
            None if is_directory_bucket(&self.bucket) => Addressing::Virtual,
            None => self.addressing.or(settings.addressing).unwrap_or(
                if endpoint_url.is_some() || self.bucket.contains('.') {
                    // S3-compatible stores rarely have wildcard DNS for buckets, and dotted
                    // bucket names break TLS certificates on virtual-hosted AWS URLs.
                    Addressing::Path
                } else {
                    Addressing::Virtual
                },
            ),
        };
        let shown_endpoint = endpoint_url.clone().unwrap_or_else(|| "AWS S3".to_owned());
        // An empty AWS_REGION is unset, as the AWS CLI takes it (the SDK keeps "").
        // An access point's ARN names its region.
        let mut region = access_point
            .map(str::to_owned)
            .or_else(|| self.region.clone())
            .or_else(|| sdk.region().map(|r| r.to_string()).filter(|r| !r.is_empty()));
        let s3_config = |region: &str| {
            let mut builder = aws_sdk_s3::config::Builder::from(&sdk)
                .region(Region::new(region.to_owned()))
                .force_path_style(addressing == Addressing::Path);
            if let Some(url) = &endpoint_url {
                builder = builder.endpoint_url(url);
            }
            builder
                .retry_config(retry_config.clone())
                .timeout_config(sdk_timeouts(&self.retry))
                .retry_partition(
                    RetryPartition::custom("refgen")
                        .token_bucket(TokenBucket::unlimited())
                        .build(),
                )
                .interceptor(crate::pages::FastPages::new())
                .interceptor(WholePage)
                .interceptor(MarkUnreachable {
                    unreachable_attempts: self.retry.unreachable_attempts,
                    max_attempts: retry_config.max_attempts(),
                })
                .retry_classifier(RetryMore)
                .build()
        };
        // On AWS a bucket lives in one region and URLs must be signed for it; asking
        // is one cheap request. A custom endpoint with a configured region is trusted.
        if access_point.is_none() && self.region.is_none() && (endpoint_url.is_none() || region.is_none()) {
            let probe_region = region.clone().unwrap_or_else(|| "us-east-1".to_owned());
            let client = aws_sdk_s3::Client::from_conf(s3_config(&probe_region));
            if let Some(found) = bucket_region(
                &client,
                &self.bucket,
                &shown_endpoint,
                (retry_config.max_attempts(), self.retry.unreachable_attempts),
            )
            .await?
            {
                tracing::debug!(bucket = %self.bucket, region = %found, "found the bucket's region");
                region = Some(found);
            }
        }
        let region = region.unwrap_or_else(|| "us-east-1".to_owned());
        let client = aws_sdk_s3::Client::from_conf(s3_config(&region));

        if let Some(url) = &self.url_endpoint {
            check_endpoint(url)?;
        }
        let url_endpoint = self.url_endpoint.as_deref().or(endpoint_url.as_deref());
        let target = signing_target(&sdk, &self.bucket, &region, addressing, url_endpoint).await?;
        tracing::debug!(base = %target.base, service = %target.service, region = %target.region, ?addressing, "signing target resolved");
        let signing = SigningCredentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            credentials.session_token().map(str::to_owned),
        );
        let mut store = S3Store::new(
            client,
            self.bucket,
            shown_endpoint,
            self.page_size,
            (
                {
                    let presigner =
                        SigV4Presigner::new(&target.base, target.region, signing).with_service(&target.service);
                    if self.request_payer {
                        presigner.with_request_payer()
                    } else {
                        presigner
                    }
                },
                credentials.expiry(),
            ),
            provider,
            refgen_http::RetryConfig {
                max_attempts: retry_config.max_attempts(),
                ..self.retry
            },
        );
        store.request_payer = self.request_payer.then_some(aws_sdk_s3::types::RequestPayer::Requester);
        store.pin_versions = self.pin_versions;
        Ok(store)
    }

    async fn load_sdk_config(
        &self,
        http_client: Option<SharedHttpClient>,
        retry: aws_sdk_s3::config::retry::RetryConfig,
    ) -> SdkConfig {
        let mut loader = if self.from_env {
            aws_config::defaults(BehaviorVersion::latest())
        } else {
            aws_config::defaults(BehaviorVersion::latest()).empty_test_environment()
        };
        if let Some(client) = http_client {
            loader = loader.http_client(client);
        }
        if let Some(profile) = &self.profile {
            // An explicit profile is used as the AWS CLI's --profile is: its
            // credentials, not the environment's keys ahead of it in the chain.
            loader = loader.profile_name(profile);
            if self.credentials.is_none() {
                loader = loader.credentials_provider(
                    aws_config::profile::ProfileFileCredentialsProvider::builder()
                        .profile_name(profile)
                        .build(),
                );
            }
        }
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(creds) = &self.credentials {
            loader = loader.credentials_provider(creds.clone());
        }
        // Given here, so that aws-config never reads AWS_MAX_ATTEMPTS or
        // AWS_RETRY_MODE itself: it panics on a value it cannot use, and refgen has
        // already read and checked them (ProfileSettings).
        loader = loader.retry_config(retry);
        // Several S3-compatible stores refuse the SDK's default checksum headers.
        loader = loader
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        loader.load().await
    }
}

/// What refgen reads itself from the environment and the active profile: what
/// the Rust SDK does not read, and what it would panic on (`max_attempts` of 0 or
/// not a number, an unknown `retry_mode`), checked here so that a bad value is one
/// line naming where it came from.
#[derive(Debug, Default)]
struct ProfileSettings {
    /// `ca_bundle = PATH`.
    ca_bundle: Option<std::path::PathBuf>,
    /// `s3 =` / `addressing_style = virtual|path` (`auto` is refgen's own choice).
    addressing: Option<Addressing>,
    /// `AWS_MAX_ATTEMPTS`, else the profile's `max_attempts`.
    max_attempts: Option<u32>,
    /// `AWS_RETRY_MODE`, else the profile's `retry_mode`.
    retry_mode: Option<aws_sdk_s3::config::retry::RetryMode>,
}

/// The value of the variable `name`, with an empty one taken as unset (as the AWS
/// CLI takes it: CI templates often set variables to nothing).
fn env_value(env: &aws_types::os_shim_internal::Env, name: &str) -> Option<String> {
    env.get(name).ok().filter(|v| !v.is_empty())
}

/// `AWS_MAX_ATTEMPTS` or a profile's `max_attempts`: a whole number, 1 or more.
fn parse_max_attempts(setting: &str, value: &str) -> Result<u32, Error> {
    match value.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Error::setting(
            setting,
            value,
            "the attempts per request must be a whole number, 1 or more",
        )),
    }
}

/// `AWS_RETRY_MODE` or a profile's `retry_mode`: `standard` or `adaptive`, and
/// `legacy`, which the AWS CLI still takes, as `standard`.
fn parse_retry_mode(setting: &str, value: &str) -> Result<aws_sdk_s3::config::retry::RetryMode, Error> {
    use aws_sdk_s3::config::retry::RetryMode;
    match value.trim().to_ascii_lowercase().as_str() {
        "standard" | "legacy" => Ok(RetryMode::Standard),
        "adaptive" => Ok(RetryMode::Adaptive),
        _ => Err(Error::setting(setting, value, "use standard, adaptive or legacy")),
    }
}

/// A region name as AWS and S3-compatible stores spell them (`us-east-1`,
/// `auto`, `garage`): letters, digits, `-` and `_`.
fn check_region(setting: &str, value: &str) -> Result<(), Error> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::setting(
            setting,
            value,
            "not a region name (letters, digits and dashes, as us-east-1)",
        ))
    }
}

impl ProfileSettings {
    /// Reads the config files (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE` or
    /// their defaults) for `profile`, else `AWS_PROFILE`, else `default`. A named
    /// `profile` that the files do not hold is refused, as the AWS CLI refuses
    /// it, instead of falling back to other credentials.
    async fn load(profile: Option<&str>, env: &aws_types::os_shim_internal::Env) -> Result<ProfileSettings, Error> {
        use aws_types::os_shim_internal::Fs;
        // aws-config only re-exports this under its deprecated name (the new one is in
        // aws-runtime, not a direct dependency); it is the same type.
        #[allow(deprecated)]
        let files = aws_config::profile::profile_file::ProfileFiles::default();
        let set = aws_config::profile::load(&Fs::real(), env, &files, None)
            .await
            .map_err(|e| {
                Error::storage(
                    PROVIDER,
                    StorageErrorKind::InvalidConfig,
                    format!("cannot read the AWS config files: {}", e.to_string().replace('\n', " ")),
                )
            })?;
        if let Some(profile) = profile
            && set.get_profile(profile).is_none()
        {
            let known: Vec<&str> = set.profiles().collect();
            return Err(Error::storage(
                PROVIDER,
                StorageErrorKind::InvalidConfig,
                format!(
                    "the profile `{profile}` is not in the AWS config or credentials files{}",
                    if known.is_empty() {
                        " (they hold no profile)".to_owned()
                    } else {
                        format!(" (they hold: {})", known.join(", "))
                    }
                ),
            ));
        }
        let name = profile
            .map(str::to_owned)
            .or_else(|| env.get("AWS_PROFILE").ok().filter(|p| !p.is_empty()))
            .unwrap_or_else(|| "default".to_owned());
        for variable in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            if let Some(value) = env_value(env, variable) {
                check_region(variable, &value)?;
            }
        }
        let mut max_attempts = env_value(env, "AWS_MAX_ATTEMPTS")
            .map(|v| parse_max_attempts("AWS_MAX_ATTEMPTS", &v))
            .transpose()?;
        let mut retry_mode = env_value(env, "AWS_RETRY_MODE")
            .map(|v| parse_retry_mode("AWS_RETRY_MODE", &v))
            .transpose()?;
        let Some(active) = set.get_profile(&name) else {
            return Ok(ProfileSettings {
                max_attempts,
                retry_mode,
                ..ProfileSettings::default()
            });
        };
        let key = |k: &str| format!("`{k}` of the AWS profile `{name}`");
        if let Some(value) = active.get("region").filter(|v| !v.trim().is_empty()) {
            check_region(&key("region"), value.trim())?;
        }
        if let Some(value) = active.get("max_attempts").filter(|v| !v.trim().is_empty()) {
            let n = parse_max_attempts(&key("max_attempts"), value)?;
            max_attempts = max_attempts.or(Some(n));
        }
        if let Some(value) = active.get("retry_mode").filter(|v| !v.trim().is_empty()) {
            let mode = parse_retry_mode(&key("retry_mode"), value)?;
            retry_mode = retry_mode.or(Some(mode));
        }
        let addressing = match active
            .get("s3")
            .and_then(|nested| sub_property(nested, "addressing_style"))
        {
            Some(style) if style.eq_ignore_ascii_case("virtual") => Some(Addressing::Virtual),
            Some(style) if style.eq_ignore_ascii_case("path") => Some(Addressing::Path),
            Some(style) if style.eq_ignore_ascii_case("auto") => None,
            Some(other) => {
                return Err(Error::storage(
                    PROVIDER,
                    StorageErrorKind::InvalidConfig,
                    format!("the profile `{name}` has s3 addressing_style = {other}: use virtual, path or auto"),
                ));
            }
            None => None,
        };
        Ok(ProfileSettings {
            ca_bundle: active
                .get("ca_bundle")
                .filter(|p| !p.trim().is_empty())
                .map(|p| expand_home(p.trim(), env)),
            addressing,
            max_attempts,
            retry_mode,
        })
    }
}

/// A value of a nested section (`s3 =` followed by indented `key = value` lines),
/// which the config parser keeps as the raw text of those lines.
fn sub_property<'a>(nested: &'a str, key: &str) -> Option<&'a str> {
    nested.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// `~/…` as the AWS CLI expands it in file settings.
fn expand_home(path: &str, env: &aws_types::os_shim_internal::Env) -> std::path::PathBuf {
    match (path.strip_prefix("~/"), env.get("HOME").ok()) {
        (Some(rest), Some(home)) => std::path::Path::new(&home).join(rest),
        _ => std::path::PathBuf::from(path),
    }
}

/// The SDK's own HTTPS client (rustls with aws-lc, proxies from the environment),
/// trusting only the certificates in the PEM file at `path`.
fn https_client_trusting(path: &std::path::Path, from: &str) -> Result<SharedHttpClient, Error> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig};
    let invalid = |why: String| {
        Error::storage(
            PROVIDER,
            StorageErrorKind::InvalidConfig,
            format!("{from} `{}` {why}", path.display()),
        )
    };
    let pem = std::fs::read(path).map_err(|e| invalid(format!("cannot be read: {}", io_reason(&e))))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(invalid("holds no PEM certificate".to_owned()));
    }
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .map_err(|e| invalid(format!("cannot be used: {e}")))?;
    Ok(Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
            .tls_context(context.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    }))
}

/// An I/O error's words without Rust's " (os error N)".
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    text.split(" (os error ").next().unwrap_or(&text).to_owned()
}

/// The endpoint the AWS CLI would use for S3: `AWS_ENDPOINT_URL_S3`, the profile's
/// `services` section, then `AWS_ENDPOINT_URL` / the profile's `endpoint_url`.
fn configured_endpoint(sdk: &SdkConfig) -> Option<String> {
    let key = ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk.service_config()
        .and_then(|conf| conf.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_owned))
}

fn check_endpoint(url: &str) -> Result<(), Error> {
    refgen_http::check_endpoint_url(url)
        .map(drop)
        .map_err(|why| Error::storage(PROVIDER, StorageErrorKind::InvalidConfig, why))
}

/// The bucket's region from HeadBucket's `x-amz-bucket-region`, which S3 also sends
/// on the 301 and 403 answers of a request signed for the wrong region.
async fn bucket_region(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    endpoint: &str,
    (attempts, unreachable_attempts): (u32, u32),
) -> Result<Option<String>, Error> {
    let started = std::time::Instant::now();
    match client.head_bucket().bucket(bucket).send().await {
        Ok(out) => Ok(out.bucket_region().map(str::to_owned)),
        Err(err) => {
            let header = err
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_owned);
            match (&err, header) {
                (_, Some(region)) => Ok(Some(region)),
                // Unreachable endpoints fail here, clearly; other refusals (403, 404)
                // are left to the listing, whose error bodies say more than HEAD's.
                (aws_sdk_s3::error::SdkError::DispatchFailure(_) | aws_sdk_s3::error::SdkError::TimeoutError(_), _) => {
                    let error = from_sdk(&err, &format!("reaching bucket `{bucket}`"), endpoint);
                    // A refused connection is tried only a few times (MarkUnreachable).
                    let allowed = if crate::retry::gave_up_unreachable(&err) {
                        unreachable_attempts.min(attempts)
                    } else {
                        attempts
                    };
                    Err(error.with_note(&format!(
                        " (gave up after {:.1}s; {allowed} attempts allowed)",
                        started.elapsed().as_secs_f64()
                    )))
                }
                _ => Ok(None),
            }
        }
    }
}

/// Where and how a bucket's URLs are signed: its base URL, and the service
/// name and region of the signature (an access point's own region, `s3express`
/// for a directory bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SigningTarget {
    pub base: url::Url,
    pub service: String,
    pub region: String,
}

/// The bucket's signing target, from the SDK's own endpoint rules (partitions,
/// FIPS, dual-stack, custom endpoints, access point ARNs, directory buckets), so
/// signed URLs point where the SDK itself would and are signed as it would sign
/// them. Rules that call for a signature refgen does not make (SigV4A, for a
/// Multi-Region Access Point) are refused.
async fn signing_target(
    sdk: &SdkConfig,
    bucket: &str,
    region: &str,
    addressing: Addressing,
    endpoint: Option<&str>,
) -> Result<SigningTarget, Error> {
    let mut params = Params::builder()
        .bucket(bucket)
        .region(region)
        .force_path_style(addressing == Addressing::Path)
        // A presigned URL is signed with the caller's own credentials: a
        // directory bucket's session credentials would last minutes.
        .disable_s3_express_session_auth(true)
        .use_arn_region(true)
        .use_fips(sdk.use_fips().unwrap_or(false))
        .use_dual_stack(sdk.use_dual_stack().unwrap_or(false));
    if let Some(url) = endpoint {
        params = params.endpoint(url);
    }
    let invalid = |why: String| {
        Error::storage(
            PROVIDER,
            StorageErrorKind::InvalidConfig,
            format!("cannot form URLs for bucket `{bucket}`: {why}"),
        )
    };
    let params = params.build().map_err(|e| invalid(e.to_string()))?;
    let endpoint = DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map_err(|e| invalid(e.to_string()))?;
    let mut base = url::Url::parse(endpoint.url()).map_err(|e| invalid(e.to_string()))?;
    if addressing == Addressing::Path && !base.path().trim_end_matches('/').ends_with(&format!("/{bucket}")) {
        // The rules put the bucket in the path for path style; make sure of it.
        let path = format!("{}/{bucket}", base.path().trim_end_matches('/'));
        base.set_path(&path);
    }
    let (scheme, service, signing_region) = auth_scheme(&endpoint);
    if scheme.as_deref() == Some("sigv4a") {
        return Err(invalid(
            "it needs SigV4A signatures (a Multi-Region Access Point), which refgen does not make: give a regional access point's ARN or the bucket itself"
                .to_owned(),
        ));
    }
    Ok(SigningTarget {
        base,
        service: service.unwrap_or_else(|| "s3".to_owned()),
        region: signing_region.unwrap_or_else(|| region.to_owned()),
    })
}

/// The first auth scheme the endpoint rules chose: its name, signing name and
/// signing region, where given.
fn auth_scheme(endpoint: &aws_smithy_types::endpoint::Endpoint) -> (Option<String>, Option<String>, Option<String>) {
    use aws_smithy_types::Document;
    let Some(first) = endpoint.auth_schemes().first() else {
        return (None, None, None);
    };
    let text = |name: &str| match first.get(name) {
        Some(Document::String(s)) => Some(s.clone()),
        _ => None,
    };
    (
        Some(first.name().to_owned()),
        text("signingName"),
        text("signingRegion"),
    )
}

/// An access point ARN's region (`arn:PARTITION:s3:REGION:ACCOUNT:accesspoint/NAME`),
/// empty for a Multi-Region Access Point; `None` for a plain bucket name.
fn access_point_region(bucket: &str) -> Option<&str> {
    let rest = bucket.strip_prefix("arn:")?;
    rest.split(':').nth(2)
}

/// A directory bucket (S3 Express One Zone), named `NAME--ZONE--x-s3`.
fn is_directory_bucket(bucket: &str) -> bool {
    bucket.ends_with("--x-s3")
}

/// Time left on temporary credentials, if they expire.
pub(crate) fn remaining(expiry: Option<SystemTime>) -> Option<Duration> {
    expiry.map(|e| e.duration_since(SystemTime::now()).unwrap_or_default())
}

pub(crate) type CredentialsSource = SharedCredentialsProvider;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signing_target_follows_the_sdk_endpoint_rules() {
        let sdk = SdkConfig::builder().build();
        let cases = [
            (
                "test-bucket",
                "us-east-1",
                Addressing::Path,
                Some("http://127.0.0.1:9000"),
                "http://127.0.0.1:9000/test-bucket",
            ),
            (
                "examplebucket",
                "eu-central-1",
                Addressing::Virtual,
                None,
                "https://examplebucket.s3.eu-central-1.amazonaws.com/",
            ),
            (
                "my.dotted.bucket",
                "us-west-2",
                Addressing::Path,
                None,
                "https://s3.us-west-2.amazonaws.com/my.dotted.bucket",
            ),
            (
                "media",
                "auto",
                Addressing::Path,
                Some("https://acc.r2.cloudflarestorage.com"),
                "https://acc.r2.cloudflarestorage.com/media",
            ),
            (
                "bucket",
                "cn-north-1",
                Addressing::Virtual,
                None,
                "https://bucket.s3.cn-north-1.amazonaws.com.cn/",
            ),
            // Too short to be a host name: the rules fall back to path style.
            (
                "b",
                "us-east-1",
                Addressing::Virtual,
                None,
                "https://s3.us-east-1.amazonaws.com/b",
            ),
            (
                "b",
                "us-east-1",
                Addressing::Path,
                Some("http://minio.local:9000/base/"),
                "http://minio.local:9000/base/b",
            ),
        ];
        for (bucket, region, addressing, endpoint, want) in cases {
            let got = signing_target(&sdk, bucket, region, addressing, endpoint)
                .await
                .expect("resolves");
            assert_eq!(got.base.as_str(), want, "{bucket} {region} {addressing:?} {endpoint:?}");
            assert_eq!((got.service.as_str(), got.region.as_str()), ("s3", region));
        }
        // An access point signs for its own host and region; a directory bucket
        // for its zonal host, as `s3express`; a Multi-Region Access Point needs
        // SigV4A and is refused.
        let ap = signing_target(
            &sdk,
            "arn:aws:s3:eu-west-1:123456789012:accesspoint/my-ap",
            "eu-west-1",
            Addressing::Virtual,
            None,
        )
        .await
        .expect("resolves");
        assert_eq!(
            (ap.base.as_str(), ap.service.as_str(), ap.region.as_str()),
            (
                "https://my-ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com/",
                "s3",
                "eu-west-1"
            )
        );
        let express = signing_target(&sdk, "media--use1-az4--x-s3", "us-east-1", Addressing::Virtual, None)
            .await
            .expect("resolves");
        assert_eq!(
            (express.base.as_str(), express.service.as_str()),
            (
                "https://media--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com/",
                "s3express"
            )
        );
        let mrap = signing_target(
            &sdk,
            "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap",
            "us-east-1",
            Addressing::Virtual,
            None,
        )
        .await
        .expect_err("SigV4A");
        assert!(mrap.to_string().contains("SigV4A"), "{mrap}");
    }

    /// botocore's own presigned URLs for access point ARNs (offline, fixed time
    /// and credentials: `scripts/s3-access-point-known-answer.py`): refgen's
    /// signing target and signer give the same URL.
    #[tokio::test]
    async fn access_point_urls_are_the_ones_botocore_signs() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../tests/access_point_known_answers.json")).expect("JSON");
        let sdk = SdkConfig::builder().build();
        let cases = doc["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 2, "a missing case would go unnoticed");
        for case in cases {
            let text = |name: &str| case[name].as_str().expect(name).to_owned();
            let bucket = text("bucket");
            let region = access_point_region(&bucket).expect("an ARN");
            let target = signing_target(&sdk, &bucket, region, Addressing::Virtual, None)
                .await
                .expect("resolves");
            let credentials = SigningCredentials::new(
                doc["access_key"].as_str().expect("id"),
                doc["secret_key"].as_str().expect("secret"),
                None,
            );
            let at = time::PrimitiveDateTime::parse(
                &text("at"),
                time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
            )
            .expect("time")
            .assume_utc();
            let url = SigV4Presigner::new(&target.base, target.region, credentials)
                .with_service(&target.service)
                .presign(&text("key"), at.into(), Duration::from_secs(3600));
            assert_eq!(url, text("url"), "{}", text("description"));
        }
    }

    #[test]
    fn nested_s3_settings_are_read_as_the_cli_reads_them() {
        assert_eq!(
            sub_property("\naddressing_style = virtual", "addressing_style"),
            Some("virtual")
        );
        assert_eq!(
            sub_property(
                "\nmax_concurrent_requests = 20\naddressing_style=path",
                "addressing_style"
            ),
            Some("path")
        );
        assert_eq!(sub_property("\nmax_concurrent_requests = 20", "addressing_style"), None);
    }

    /// A profile's `s3 = addressing_style = virtual` and `ca_bundle`, from the files
    /// `AWS_CONFIG_FILE` names (the one test here that sets process variables).
    #[tokio::test]
    async fn profile_settings_come_from_the_config_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[default]\nregion = us-east-1\n\n[profile onprem]\nca_bundle = /etc/ssl/onprem.pem\ns3 =\n    addressing_style = virtual\n\n[profile odd]\ns3 =\n  addressing_style = sideways\n",
        )
        .expect("write config");
        let credentials = dir.path().join("none");
        let env = |profile: Option<&str>| {
            let mut vars = vec![
                ("AWS_CONFIG_FILE", config.to_str().expect("path")),
                ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().expect("path")),
                ("HOME", "/home/someone"),
            ];
            vars.extend(profile.map(|p| ("AWS_PROFILE", p)));
            aws_types::os_shim_internal::Env::from_slice(&vars)
        };
        let onprem = ProfileSettings::load(Some("onprem"), &env(None)).await.expect("loads");
        assert_eq!(onprem.addressing, Some(Addressing::Virtual));
        assert_eq!(
            onprem.ca_bundle.as_deref(),
            Some(std::path::Path::new("/etc/ssl/onprem.pem"))
        );
        // AWS_PROFILE chooses the profile when none is named.
        let chosen = ProfileSettings::load(None, &env(Some("onprem"))).await.expect("loads");
        assert_eq!(chosen.addressing, Some(Addressing::Virtual));
        let default = ProfileSettings::load(None, &env(None)).await.expect("loads");
        assert_eq!((default.addressing, default.ca_bundle), (None, None));
        let err = ProfileSettings::load(Some("odd"), &env(None))
            .await
            .expect_err("bad style")
            .to_string();
        assert!(err.contains("addressing_style = sideways"), "{err}");
        let err = ProfileSettings::load(Some("missing"), &env(None))
            .await
            .expect_err("no such profile")
            .to_string();
        assert!(err.contains("(they hold: "), "{err}");
    }

    #[test]
    fn a_ca_bundle_must_hold_a_certificate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").expect("write");
        let err = https_client_trusting(&empty, "AWS_CA_BUNDLE")
            .expect_err("no cert")
            .to_string();
        assert!(
            err.contains("AWS_CA_BUNDLE") && err.contains("holds no PEM certificate"),
            "{err}"
        );
        let err = https_client_trusting(&dir.path().join("missing.pem"), "AWS_CA_BUNDLE")
            .expect_err("missing")
            .to_string();
        assert!(err.ends_with("cannot be read: No such file or directory"), "{err}");
    }

    #[test]
    fn endpoint_urls_are_checked() {
        assert!(check_endpoint("http://127.0.0.1:9000").is_ok());
        for bad in ["not a url", "ftp://host", "127.0.0.1:9000"] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }
}
