//! Small pieces every provider's builder and client needs, written once: reading
//! the environment (or not), checking an endpoint URL, one line from an error
//! chain, and the body and time budget of a file upload.

use std::path::Path;
use std::time::Duration;

use crate::RetryConfig;

/// The variable `name`, when `enabled` (a builder made with `from_env()`) and set
/// to something non-empty.
pub fn env_var(enabled: bool, name: &str) -> Option<String> {
    if enabled {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    } else {
        None
    }
}

/// Checks that `url` is an `http://` or `https://` URL with a host; the error
/// says which, in words for the person who gave it.
pub fn check_endpoint_url(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("endpoint URL `{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("endpoint URL `{url}` must be http:// or https:// with a host"));
    }
    Ok(parsed)
}

/// An error and its sources as one line, each cause once (libraries often repeat
/// their source's text in their own).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ").replace('\n', " ")
}

impl RetryConfig {
    /// One upload attempt's time: the attempt timeout once per started 8 MiB
    /// (a slow link still gets a minute per 8 MiB by default).
    pub fn upload_timeout(&self, bytes: u64) -> Duration {
        self.attempt_timeout * (1 + u32::try_from(bytes / (8 << 20)).unwrap_or(u32::MAX - 1))
    }
}

/// A file to upload: its length, read once, and a body made again for each
/// attempt (an upload replaces the object whole, so each attempt sends the file
/// from its start). Errors say what was being done and which file.
#[derive(Debug, Clone)]
pub struct UploadFile<'a> {
    path: &'a Path,
    provider: &'static str,
    doing: &'a str,
    /// The file's length in bytes.
    pub length: u64,
}

impl<'a> UploadFile<'a> {
    /// Reads the length of the file at `path`, for `doing` on `provider`.
    pub fn open(path: &'a Path, provider: &'static str, doing: &'a str) -> Result<Self, refgen_core::Error> {
        let mut file = UploadFile {
            path,
            provider,
            doing,
            length: 0,
        };
        file.length = std::fs::metadata(path).map_err(|e| file.unreadable(e))?.len();
        Ok(file)
    }

    /// One attempt's time under `config` (see [`RetryConfig::upload_timeout`]).
    pub fn timeout(&self, config: &RetryConfig) -> Duration {
        config.upload_timeout(self.length)
    }

    /// A body streaming the file from its start.
    pub fn body(&self) -> Result<reqwest::Body, refgen_core::Error> {
        let file = std::fs::File::open(self.path).map_err(|e| self.unreadable(e))?;
        Ok(reqwest::Body::from(tokio::fs::File::from_std(file)))
    }

    fn unreadable(&self, e: std::io::Error) -> refgen_core::Error {
        refgen_core::Error::storage(
            self.provider,
            refgen_core::StorageErrorKind::Other,
            format!("{} failed: cannot read {}: {e}", self.doing, self.path.display()),
        )
    }
}
