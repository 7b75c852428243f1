//! Entra ID: a credential chain for storage tokens, and user delegation keys.
//!
//! `azure_identity` 1.0 has no `DefaultAzureCredential`, so the chain is built here,
//! in the order the Azure SDKs use: environment service principal
//! (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`), workload identity
//! (`AZURE_FEDERATED_TOKEN_FILE`), managed identity (App Service's
//! `IDENTITY_ENDPOINT`, else the instance metadata service), then the Azure CLI.
//! `AZURE_TOKEN_CREDENTIALS=dev` keeps only the CLI, `=prod` drops it, as in the SDKs.
//! The chain is walked once: its token is cached for the run and renewed before it
//! expires, starting from the link that gave the last one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ExponentialRetryOptions, RetryOptions};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    WorkloadIdentityCredential,
};
use refgen_core::{Error, Hint, StorageErrorKind};
use refgen_http::{Reject, Token, TokenCache};
use serde::Deserialize;

use crate::AzureStore;
use crate::error::{from_status, storage};
use crate::signer::{AccountKey, SERVICE_VERSION, UserDelegationKey, sas_time};

const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// The credentials tried, in order, with a name for messages.
pub(crate) struct CredentialChain {
    links: Vec<(&'static str, Arc<dyn TokenCredential>)>,
    /// The link that gave the last token.
    last_good: AtomicUsize,
}

impl CredentialChain {
    pub(crate) fn from_env() -> Result<Self, Error> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let only = var("AZURE_TOKEN_CREDENTIALS").map(|v| v.to_ascii_lowercase());
        let (prod, dev) = match only.as_deref() {
            Some("dev") => (false, true),
            Some("prod") => (true, false),
            _ => (true, true),
        };
        let mut links: Vec<(&'static str, Arc<dyn TokenCredential>)> = Vec::new();
        let failed = |what: &str, e: azure_core::Error| {
            storage(
                StorageErrorKind::InvalidConfig,
                format!("the {what} settings are not usable: {e}"),
            )
        };
        if prod {
            if let (Some(tenant), Some(client), Some(secret)) = (
                var("AZURE_TENANT_ID"),
                var("AZURE_CLIENT_ID"),
                var("AZURE_CLIENT_SECRET"),
            ) {
                let c = ClientSecretCredential::new(&tenant, client, Secret::new(secret), None)
                    .map_err(|e| failed("service principal (AZURE_CLIENT_SECRET)", e))?;
                links.push(("service principal from AZURE_CLIENT_SECRET", c));
            }
            if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
                let c = WorkloadIdentityCredential::new(None).map_err(|e| failed("workload identity", e))?;
                links.push(("workload identity", c));
            }
            // Off Azure nothing answers the managed-identity endpoint: give up after a few
            // quick retries instead of the SDK's default minute.
            let mut options = ManagedIdentityCredentialOptions::default();
            options.client_options.retry = RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::milliseconds(200),
                max_retries: 3,
                max_total_elapsed: azure_core::time::Duration::seconds(10),
                max_delay: azure_core::time::Duration::seconds(2),
            });
            let c = ManagedIdentityCredential::new(Some(options)).map_err(|e| failed("managed identity", e))?;
            links.push(("managed identity", c));
        }
        if dev {
            let c = AzureCliCredential::new(None).map_err(|e| failed("Azure CLI", e))?;
            links.push(("Azure CLI (az login)", c));
        }
        Ok(CredentialChain {
            links,
            last_good: AtomicUsize::new(0),
        })
    }

    /// A bearer token for Azure Storage from the first credential that gives one,
    /// starting with the one that gave the last (so a long run walks the chain once).
    async fn token(&self) -> Result<Token, Error> {
        let first = self.last_good.load(Ordering::Relaxed);
        let order = (0..self.links.len()).map(|i| (first + i) % self.links.len().max(1));
        let mut tried = Vec::new();
        for i in order {
            let (name, credential) = &self.links[i];
            match credential.get_token(&[STORAGE_SCOPE], None).await {
                Ok(token) => {
                    self.last_good.store(i, Ordering::Relaxed);
                    return Ok(Token {
                        secret: token.token.secret().to_owned(),
                        expires_at: Some(SystemTime::from(token.expires_on)),
                    });
                }
                Err(e) => tried.push(format!("{name}: {}", first_line(&e.to_string()))),
            }
        }
        Err(storage(
            StorageErrorKind::NoCredentials,
            format!(
                "no Azure credentials found: none of AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_KEY, \
                 AZURE_STORAGE_CONNECTION_STRING is set, and no Entra ID sign-in worked (tried {})",
                tried.join("; ")
            ),
        )
        .with_hint(Hint::GiveAzureCredentials))
    }

    /// The chain behind a token cache: one token for every request of the run,
    /// renewed before it expires.
    pub(crate) fn into_tokens(self) -> EntraTokens {
        let chain = Arc::new(self);
        EntraTokens(TokenCache::new(move || {
            let chain = Arc::clone(&chain);
            async move { chain.token().await }
        }))
    }
}

/// Entra ID bearer tokens for storage requests, cached (see [`TokenCache`]).
pub(crate) struct EntraTokens(TokenCache<Error>);

impl EntraTokens {
    /// The current token.
    pub(crate) async fn get(&self) -> Result<String, Error> {
        self.0.get().await
    }

    /// Drops the held token (the service refused it).
    pub(crate) fn clear(&self) {
        self.0.clear();
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(rename = "UserDelegationKey")]
struct KeyXml {
    #[serde(rename = "SignedOid")]
    signed_oid: String,
    #[serde(rename = "SignedTid")]
    signed_tid: String,
    #[serde(rename = "SignedStart")]
    signed_start: String,
    #[serde(rename = "SignedExpiry")]
    signed_expiry: String,
    #[serde(rename = "SignedService")]
    signed_service: String,
    #[serde(rename = "SignedVersion")]
    signed_version: String,
    #[serde(rename = "SignedDelegatedUserTid", default)]
    signed_delegated_user_tid: Option<String>,
    #[serde(rename = "Value")]
    value: String,
}

/// User delegation keys live at most 7 days from now.
pub(crate) const MAX_DELEGATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Asks the Blob service for a user delegation key valid from `start` to `expiry`.
pub(crate) async fn user_delegation_key(
    store: &AzureStore,
    start: SystemTime,
    expiry: SystemTime,
) -> Result<UserDelegationKey, Error> {
    let url = format!("{}/?restype=service&comp=userdelegationkey", store.endpoint());
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><KeyInfo><Start>{}</Start><Expiry>{}</Expiry></KeyInfo>"#,
        sas_time(start),
        sas_time(expiry)
    );
    let doing = "getting a user delegation key";
    let build = || {
        Ok(store
            .transport()
            .client()
            .post(&url)
            .header("x-ms-version", SERVICE_VERSION)
            .header("content-type", "application/xml")
            .body(body.clone()))
    };
    let text = store
        .send(doing, None, None, build, |response| {
            if response.status != 200 {
                return Err(Reject::Fail(from_status(doing, response.status, &response.text())));
            }
            // Asking again for a key is harmless: a cut answer is retried.
            refgen_http::whole_xml(&response.body, "UserDelegationKey", &["Value"])
                .map(|()| response.raw_text().into_owned())
                .map_err(|e| {
                    Reject::Retry(storage(
                        StorageErrorKind::Other,
                        format!("{doing} failed: unexpected answer ({e})"),
                    ))
                })
        })
        .await?;
    let key: KeyXml = quick_xml::de::from_str(&text).map_err(|e| {
        storage(
            StorageErrorKind::Other,
            format!("{doing} failed: unexpected answer ({e})"),
        )
    })?;
    let value = AccountKey::from_base64(&key.value).ok_or_else(|| {
        storage(
            StorageErrorKind::Other,
            format!("{doing} failed: the key is not base64"),
        )
    })?;
    Ok(UserDelegationKey {
        signed_oid: key.signed_oid,
        signed_tid: key.signed_tid,
        signed_start: key.signed_start,
        signed_expiry: key.signed_expiry,
        signed_service: key.signed_service,
        signed_version: key.signed_version,
        signed_delegated_user_tid: key.signed_delegated_user_tid.filter(|t| !t.is_empty()),
        key: value,
    })
}
