//! Connecting to Roboflow: the client every workflow that talks to the API
//! builds the same way, and the workspace it works in.

use std::time::Duration;

use refgen_http::RetryConfig;
use refgen_roboflow::{Client, ClientBuilder};

use crate::Error;

/// How to reach Roboflow. Unset fields follow the environment
/// (`ROBOFLOW_API_KEY`, `API_BASE_URL`, `ROBOFLOW_REGION`), as the official client does.
#[derive(Clone, Default)]
pub struct ApiOptions {
    /// The API key (else `ROBOFLOW_API_KEY`).
    pub api_key: Option<String>,
    /// The workspace (else the API key's own, asked of the API).
    pub workspace: Option<String>,
    /// Timeouts, attempts and the retry budget of every request.
    pub retry: RetryConfig,
    /// The first pause between attempts (then doubled), else the client's own.
    pub backoff_base: Option<Duration>,
}

impl std::fmt::Debug for ApiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiOptions")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

impl ApiOptions {
    /// The client these options describe; no request is made.
    pub fn client(&self) -> Result<Client, Error> {
        let mut builder = ClientBuilder::from_env().with_retry(self.retry);
        if let Some(key) = &self.api_key {
            builder = builder.with_api_key(key);
        }
        if let Some(first) = self.backoff_base {
            builder = builder.with_backoff_base(first);
        }
        Ok(builder.build()?)
    }

    /// The client and the workspace it works in.
    pub async fn connect(&self) -> Result<(Client, String), Error> {
        let client = self.client()?;
        let workspace = client.resolve_workspace(self.workspace.as_deref()).await?;
        Ok((client, workspace))
    }
}
