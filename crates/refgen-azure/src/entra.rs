//! Entra ID: a credential chain for storage tokens, and user delegation keys.
//!
//! `azure_identity` 1.0 has no `DefaultAzureCredential`, so the chain is built here,
//! in the order the Azure SDKs use: environment service principal
//! (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`), workload identity
//! (`AZURE_FEDERATED_TOKEN_FILE`), managed identity (App Service's
//! `IDENTITY_ENDPOINT`, else the instance metadata service), then the Azure CLI.
//! `AZURE_TOKEN_CREDENTIALS=dev` keeps only the CLI, `=prod` drops it, as in the SDKs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ExponentialRetryOptions, RetryOptions};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    WorkloadIdentityCredential,
};
use refgen_core::{Error, StorageErrorKind};
use serde::Deserialize;

use crate::error::{from_reqwest, from_status, storage};
use crate::sas::{AccountKey, SERVICE_VERSION, UserDelegationKey, sas_time};

const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// The credentials tried, in order, with a name for messages.
pub(crate) struct CredentialChain {
    links: Vec<(&'static str, Arc<dyn TokenCredential>)>,
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
        Ok(CredentialChain { links })
    }

    /// A bearer token for Azure Storage from the first credential that gives one.
    pub(crate) async fn token(&self) -> Result<String, Error> {
        let mut tried = Vec::new();
        for (name, credential) in &self.links {
            match credential.get_token(&[STORAGE_SCOPE], None).await {
                Ok(token) => return Ok(token.token.secret().to_owned()),
                Err(e) => tried.push(format!("{name}: {}", first_line(&e.to_string()))),
            }
        }
        Err(storage(
            StorageErrorKind::NoCredentials,
            format!(
                "no Azure credentials found: give --sas-token, --account-key or a connection string \
                 (or AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_KEY, AZURE_STORAGE_CONNECTION_STRING), or sign in for Entra ID \
                 (tried {})",
                tried.join("; ")
            ),
        ))
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
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    start: SystemTime,
    expiry: SystemTime,
) -> Result<UserDelegationKey, Error> {
    let url = format!("{endpoint}/?restype=service&comp=userdelegationkey");
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><KeyInfo><Start>{}</Start><Expiry>{}</Expiry></KeyInfo>"#,
        sas_time(start),
        sas_time(expiry)
    );
    let doing = "getting a user delegation key";
    let response = http
        .post(&url)
        .bearer_auth(token)
        .header("x-ms-version", SERVICE_VERSION)
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await
        .map_err(|e| from_reqwest(doing, endpoint, &e))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| from_reqwest(doing, endpoint, &e))?;
    if status != 200 {
        return Err(from_status(doing, status, &text));
    }
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
