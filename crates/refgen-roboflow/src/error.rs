//! Errors of the Roboflow client: one line each, the API's own `{"error"}` text
//! shown, the API key never.

use refgen_http::retry_note;

/// What went wrong talking to Roboflow.
#[derive(Debug, thiserror::Error)]
pub enum RoboflowError {
    /// An id broke the API's rules (checked before any request).
    #[error("invalid {what} `{id}`: use {rule}")]
    InvalidId {
        /// `batch id` or `job id`.
        what: &'static str,
        /// The id as given.
        id: String,
        /// The rule.
        rule: String,
    },
    /// A local file to upload could not be read.
    #[error("{0}")]
    Local(String),
    /// No API key was given.
    #[error("no Roboflow API key (ROBOFLOW_API_KEY is not set)")]
    NoApiKey,
    /// 401.
    #[error("Roboflow refused the API key (HTTP 401, unauthorised): check the API key{}", detail(.0))]
    Unauthorized(String),
    /// 402.
    #[error("Roboflow: batch processing is not enabled for this workspace (HTTP 402){}", detail(.0))]
    PaymentRequired(String),
    /// 404.
    #[error("Roboflow: not found (HTTP 404) while {doing}{}", detail(.message))]
    NotFound {
        /// The call.
        doing: String,
        /// The API's text.
        message: String,
    },
    /// 409.
    #[error("Roboflow: conflict (HTTP 409) while {doing}: the id is already used with a different definition{}", detail(.message))]
    Conflict {
        /// The call.
        doing: String,
        /// The API's text.
        message: String,
    },
    /// Any other error status.
    #[error("Roboflow answered HTTP {status} while {doing}{}{}", detail(.message), retry_note(*.attempts, *.elapsed))]
    Api {
        /// The call.
        doing: String,
        /// HTTP status.
        status: u16,
        /// The API's text.
        message: String,
        /// Attempts made.
        attempts: u32,
        /// Time taken.
        elapsed: std::time::Duration,
    },
    /// The connection failed or timed out.
    #[error("cannot reach Roboflow at {base} while {doing}: {cause}{}", retry_note(*.attempts, *.elapsed))]
    Transport {
        /// The API base URL (no key).
        base: String,
        /// The call.
        doing: String,
        /// The cause.
        cause: String,
        /// Attempts made.
        attempts: u32,
        /// Time taken.
        elapsed: std::time::Duration,
    },
    /// The answer could not be read.
    #[error("Roboflow's answer to {doing} was not understood: {cause}")]
    BadAnswer {
        /// The call.
        doing: String,
        /// The parser's words.
        cause: String,
    },
    /// A configuration value was unusable.
    #[error("{0}")]
    Config(String),
}

impl RoboflowError {
    /// What to do about this error, if refgen knows (flag names are the caller's).
    pub fn hint(&self) -> Option<refgen_core::Hint> {
        match self {
            RoboflowError::NoApiKey => Some(refgen_core::Hint::GiveApiKey),
            _ => None,
        }
    }
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}
