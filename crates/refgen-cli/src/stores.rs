//! The store options of the command line, for the library's `refgen::store::open`.

use anyhow::Result;
use refgen::core::source::SourceUrl;
use refgen::store::{Store, StoreOptions};

use crate::args::StoreArgs;

/// The options these flags describe.
pub fn options(args: &StoreArgs) -> Result<StoreOptions> {
    let gcs_hmac = match (&args.gcs.hmac_access_id, &args.gcs.hmac_secret) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.as_str().into())),
        (None, None) => None,
        _ => return Err(crate::exit::usage!("--hmac-access-id and --hmac-secret go together")),
    };
    Ok(StoreOptions {
        endpoint_url: args.endpoint_url.clone(),
        page_size: args.page_size,
        retry: args.requests.retry_config(),
        max_attempts: args.requests.max_attempts,
        s3_profile: args.s3.profile.clone(),
        s3_region: args.s3.region.clone(),
        s3_addressing: args.s3.addressing.map(Into::into),
        gcs_credentials_file: args.gcs.credentials_file.clone(),
        gcs_hmac,
        gcs_service_account: args.gcs.service_account.clone(),
        gcs_iam_endpoint: args.gcs.iam_endpoint.clone(),
        azure_sas_token: args.azure.sas_token.as_deref().map(Into::into),
        azure_account_key: args.azure.account_key.as_deref().map(Into::into),
        azure_connection_string: args.azure.connection_string.as_deref().map(Into::into),
    })
}

/// Opens the store `source` names.
pub async fn open(source: &SourceUrl, args: &StoreArgs) -> Result<Store> {
    Ok(refgen::store::open(source, &options(args)?).await?)
}
