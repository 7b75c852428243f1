//! Configuration: endpoint and credential mode for one container.
//!
//! [`AzureBuilder::new`] reads nothing from the environment; [`AzureBuilder::from_env`]
//! reads what the Azure CLI reads: `AZURE_STORAGE_SAS_TOKEN`, `AZURE_STORAGE_KEY`
//! (or `AZURE_STORAGE_ACCOUNT_KEY`), `AZURE_STORAGE_CONNECTION_STRING`, and the Entra
//! ID chain (see `credential.rs`). The first mode given wins: SAS token, account key,
//! connection string, Entra ID.

use std::collections::BTreeMap;
use std::time::SystemTime;

use refgen_core::{Error, Secret, StorageErrorKind};
use refgen_http::{RetryConfig, Transport};

use crate::credential::CredentialChain;
use crate::error::storage;
use crate::signer::AccountKey;
use crate::{AzureStore, Mode};

/// Credential modes, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialMode {
    /// A SAS token given by the user, appended to every URL.
    SasToken,
    /// The account key: per-blob service SAS signed here.
    AccountKey,
    /// Entra ID: user-delegation SAS.
    EntraId,
}

/// Builds an [`AzureStore`].
/// Its `Debug` shows no secret (SAS tokens, keys and connection strings are [`Secret`]s).
#[derive(Clone, Debug, Default)]
pub struct AzureBuilder {
    account: String,
    container: String,
    from_env: bool,
    endpoint: Option<String>,
    sas_token: Option<Secret>,
    account_key: Option<Secret>,
    connection_string: Option<Secret>,
    page_size: Option<u32>,
    retry: RetryConfig,
    url_endpoint: Option<String>,
    pin_versions: bool,
}

impl AzureBuilder {
    /// A builder that reads nothing from the environment.
    pub fn new(account: impl Into<String>, container: impl Into<String>) -> Self {
        AzureBuilder {
            account: account.into(),
            container: container.into(),
            ..Default::default()
        }
    }

    /// A builder that reads the Azure CLI's environment variables and the Entra chain.
    pub fn from_env(account: impl Into<String>, container: impl Into<String>) -> Self {
        AzureBuilder {
            from_env: true,
            ..AzureBuilder::new(account, container)
        }
    }

    /// The Blob service endpoint, e.g. `https://acct.blob.core.windows.net` or
    /// Azurite's `http://127.0.0.1:10000/devstoreaccount1`.
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Lists every version and signs each current blob's own (`versionid`, a SAS
    /// for that version), so that a URL reads the bytes listed even after the
    /// blob is overwritten. An account without blob versioning is refused at the
    /// first blob listed.
    pub fn with_pin_versions(mut self) -> Self {
        self.pin_versions = true;
        self
    }

    /// Writes URLs for this endpoint instead of the one listed through (a custom
    /// domain, or a reverse proxy's public name): a SAS does not cover the host,
    /// so the same signature serves there. Its scheme decides the SAS's
    /// protocol (`spr=https` only on an https URL endpoint).
    pub fn with_url_endpoint(mut self, url: impl Into<String>) -> Self {
        self.url_endpoint = Some(url.into());
        self
    }

    /// A SAS token (with or without the leading `?`).
    pub fn with_sas_token(mut self, token: impl Into<String>) -> Self {
        self.sas_token = Some(Secret::new(token));
        self
    }

    /// The storage account key (base64).
    pub fn with_account_key(mut self, key: impl Into<String>) -> Self {
        self.account_key = Some(Secret::new(key));
        self
    }

    /// A connection string (`AccountName=…;AccountKey=…;BlobEndpoint=…`).
    pub fn with_connection_string(mut self, value: impl Into<String>) -> Self {
        self.connection_string = Some(Secret::new(value));
        self
    }

    /// Asks for pages of at most this many blobs (the service's maximum, 5,000, by default).
    pub fn with_page_size(mut self, blobs: u32) -> Self {
        self.page_size = Some(blobs.clamp(1, 5000));
        self
    }

    /// How requests are retried and timed out (see [`RetryConfig`]).
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Resolves the endpoint and the credential mode; checks a SAS token's grants.
    /// Entra ID tokens and keys are fetched later, once.
    pub async fn build(self) -> Result<AzureStore, Error> {
        let env = |name: &str| refgen_http::env_var(self.from_env, name);
        let connection = self
            .connection_string
            .as_ref()
            .map(|s| s.expose().to_owned())
            .or_else(|| env("AZURE_STORAGE_CONNECTION_STRING"))
            .map(|s| parse_connection_string(&s))
            .transpose()?;
        if let Some(conn) = &connection
            && let Some(name) = conn.get("AccountName")
            && name != &self.account
        {
            return Err(storage(
                StorageErrorKind::InvalidConfig,
                format!(
                    "the connection string is for account `{name}`, but the source names `{}`",
                    self.account
                ),
            ));
        }
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| connection.as_ref().and_then(connection_endpoint))
            .unwrap_or_else(|| format!("https://{}.blob.core.windows.net", self.account));
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let parsed =
            refgen_http::check_endpoint_url(&endpoint).map_err(|why| storage(StorageErrorKind::InvalidConfig, why))?;
        let url_endpoint = match &self.url_endpoint {
            Some(url) => {
                let url = url.trim_end_matches('/').to_owned();
                refgen_http::check_endpoint_url(&url).map_err(|why| storage(StorageErrorKind::InvalidConfig, why))?;
                Some(url)
            }
            None => None,
        };
        // The protocol the URLs are read over: the URL endpoint's when there is one.
        let https = url_endpoint
            .as_deref()
            .map_or(parsed.scheme() == "https", |u| u.starts_with("https://"));
        if let Some(named) = endpoint_account(&parsed)
            && named != self.account
        {
            return Err(storage(
                StorageErrorKind::InvalidConfig,
                format!(
                    "the endpoint `{endpoint}` is for account `{named}`, but the source names `{}`",
                    self.account
                ),
            ));
        }
        if let Some(conn) = &connection
            && !conn.contains_key("AccountKey")
            && !conn.contains_key("SharedAccessSignature")
            && self.sas_token.is_none()
            && self.account_key.is_none()
        {
            return Err(storage(
                StorageErrorKind::InvalidConfig,
                "the connection string has neither AccountKey nor SharedAccessSignature: add one of them, \
                 or give a SAS token or an account key instead",
            ));
        }

        let sas = self
            .sas_token
            .as_ref()
            .map(|s| s.expose().to_owned())
            .or_else(|| env("AZURE_STORAGE_SAS_TOKEN"))
            .or_else(|| {
                connection
                    .as_ref()
                    .and_then(|c| c.get("SharedAccessSignature").cloned())
            });
        let key = self
            .account_key
            .as_ref()
            .map(|s| s.expose().to_owned())
            .or_else(|| env("AZURE_STORAGE_KEY"))
            .or_else(|| env("AZURE_STORAGE_ACCOUNT_KEY"))
            .or_else(|| connection.as_ref().and_then(|c| c.get("AccountKey").cloned()));

        let mode = if let Some(token) = sas {
            Mode::SasToken(check_sas_token(&token)?)
        } else if let Some(key) = key {
            let key = AccountKey::from_base64(&key)
                .ok_or_else(|| storage(StorageErrorKind::InvalidConfig, "the account key is not valid base64"))?;
            Mode::AccountKey(key)
        } else if self.from_env {
            Mode::Entra(CredentialChain::from_env()?.into_tokens())
        } else {
            return Err(storage(StorageErrorKind::NoCredentials, "no Azure credentials given"));
        };
        let transport = Transport::new(self.retry)
            .map_err(|e| storage(StorageErrorKind::Other, format!("cannot start the HTTP client: {e}")))?;
        tracing::debug!(endpoint = %endpoint, container = %self.container, mode = ?mode.kind(), "Azure store ready");
        Ok(AzureStore {
            transport,
            endpoint,
            https,
            account: self.account,
            container: self.container,
            page_size: self.page_size,
            mode,
            delegation: Default::default(),
            warned: Default::default(),
            url_endpoint,
            pin_versions: self.pin_versions,
        })
    }
}

/// The account an endpoint URL names: `ACCOUNT.blob.…` on Azure, the first path
/// segment on an IP address or `localhost` (Azurite's path style); none for other
/// hosts (a custom domain says nothing about the account).
fn endpoint_account(url: &url::Url) -> Option<String> {
    match url.host()? {
        url::Host::Domain(host) if host != "localhost" => {
            let (account, rest) = host.split_once('.')?;
            rest.starts_with("blob.").then(|| account.to_owned())
        }
        _ => url.path_segments()?.next().filter(|s| !s.is_empty()).map(str::to_owned),
    }
}

/// `Key=Value;Key=Value` (values may contain `=`).
fn parse_connection_string(s: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut map = BTreeMap::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            storage(
                StorageErrorKind::InvalidConfig,
                "the connection string is malformed (expected Key=Value pairs separated by ;)",
            )
        })?;
        map.insert(k.to_owned(), v.to_owned());
    }
    if map
        .get("UseDevelopmentStorage")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        map.entry("AccountName".into())
            .or_insert_with(|| "devstoreaccount1".into());
        map.entry("AccountKey".into()).or_insert_with(|| {
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==".into()
        });
        map.entry("BlobEndpoint".into())
            .or_insert_with(|| "http://127.0.0.1:10000/devstoreaccount1".into());
    }
    Ok(map)
}

fn connection_endpoint(conn: &BTreeMap<String, String>) -> Option<String> {
    if let Some(blob) = conn.get("BlobEndpoint") {
        return Some(blob.clone());
    }
    let account = conn.get("AccountName")?;
    let protocol = conn.get("DefaultEndpointsProtocol").map_or("https", String::as_str);
    let suffix = conn.get("EndpointSuffix").map_or("core.windows.net", String::as_str);
    Some(format!("{protocol}://{account}.blob.{suffix}"))
}

/// A user SAS token after its grants were checked.
#[derive(Clone)]
pub(crate) struct SasToken {
    /// Without the leading `?`.
    pub query: String,
    /// `se`, when it parses.
    pub expiry: Option<SystemTime>,
}

fn check_sas_token(token: &str) -> Result<SasToken, Error> {
    let query = token.trim().trim_start_matches('?').to_owned();
    let fields: BTreeMap<String, String> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned(),
            )
        })
        .collect();
    let refuse = |why: String| storage(StorageErrorKind::InvalidConfig, format!("the SAS token {why}"));
    if !fields.contains_key("sig") {
        return Err(refuse("has no signature (sig=); paste the whole token".into()));
    }
    let permissions = fields.get("sp").map(String::as_str).unwrap_or_default();
    if !permissions.contains('r') {
        return Err(refuse(format!(
            "does not grant read (sp={permissions}): the URLs would be refused"
        )));
    }
    if fields.get("sr").is_some_and(|sr| sr == "b") {
        return Err(refuse(
            "is for a single blob (sr=b) and cannot list a container: use a container or account SAS with sp=rl".into(),
        ));
    }
    if !permissions.contains('l') {
        return Err(refuse(format!(
            "does not grant list (sp={permissions}): a container or account SAS with sp=rl is needed"
        )));
    }
    if let Some(srt) = fields.get("srt")
        && !(srt.contains('c') && srt.contains('o'))
    {
        return Err(refuse(format!(
            "is an account SAS without container and object access (srt={srt}; srt=co is needed)"
        )));
    }
    let expiry = fields.get("se").and_then(|se| parse_sas_time(se));
    if let Some(se) = expiry
        && se <= SystemTime::now()
    {
        return Err(refuse(format!("expired at {}", fields["se"])));
    }
    Ok(SasToken { query, expiry })
}

/// `2030-01-02T03:04:05Z` (also with fractional seconds, or a date alone).
fn parse_sas_time(s: &str) -> Option<SystemTime> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .or_else(|| time::OffsetDateTime::parse(&format!("{s}T00:00:00Z"), &Rfc3339).ok())
        .map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_tokens_must_grant_read_and_list() {
        let future = "se=2999-01-01T00%3A00%3A00Z";
        assert!(check_sas_token(&format!("?sp=rl&sr=c&{future}&sig=x")).is_ok());
        assert!(check_sas_token(&format!("sv=1&ss=b&srt=co&sp=rl&{future}&sig=x")).is_ok());
        for (token, why) in [
            (format!("sp=l&sr=c&{future}&sig=x"), "does not grant read"),
            (format!("sp=r&sr=c&{future}&sig=x"), "does not grant list"),
            (format!("sp=rl&sr=b&{future}&sig=x"), "single blob"),
            (format!("sp=rl&ss=b&srt=s&{future}&sig=x"), "srt=co"),
            (format!("sp=rl&sr=c&{future}"), "no signature"),
            ("sp=rl&sr=c&se=2001-01-01T00%3A00%3A00Z&sig=x".to_owned(), "expired"),
        ] {
            let err = check_sas_token(&token).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(why), "{token}: {err}");
        }
    }

    #[test]
    fn connection_strings() {
        let c = parse_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5==;EndpointSuffix=core.chinacloudapi.cn",
        )
        .expect("parses");
        assert_eq!(c["AccountKey"], "a2V5==");
        assert_eq!(
            connection_endpoint(&c).as_deref(),
            Some("https://acct.blob.core.chinacloudapi.cn")
        );
        let dev = parse_connection_string("UseDevelopmentStorage=true").expect("parses");
        assert_eq!(
            connection_endpoint(&dev).as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert!(parse_connection_string("garbage").is_err());
    }
}
