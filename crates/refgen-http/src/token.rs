//! A cached OAuth bearer token, fetched once and refreshed before it expires.
//!
//! A long listing outlives a token (Entra ID and GCS tokens last about an hour;
//! workload-identity tokens can be minutes), and fetching one per request would
//! walk a credential chain tens of thousands of times. The cache keeps one token,
//! hands it to every request, and fetches the next one when the current one is
//! within its refresh margin: five minutes, or half its lifetime when it lives less
//! than ten. One fetch runs at a time; requests waiting meanwhile share its result.
//! A 401 drops the token it was sent with ([`TokenCache::invalidate`]), so the
//! retry gets a fresh one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// A bearer token and when it stops working.
#[derive(Clone)]
pub struct Token {
    /// The token itself.
    pub secret: String,
    /// Its expiry, when the issuer said.
    pub expires_at: Option<SystemTime>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("secret", &"** redacted **")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

type Fetch<E> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Token, E>> + Send>> + Send + Sync>;

struct Held {
    token: Token,
    fetched_at: SystemTime,
}

/// One token, shared by every request of a store.
pub struct TokenCache<E> {
    fetch: Fetch<E>,
    held: Mutex<Option<Held>>,
    /// Held across a fetch, so that one fetch runs at a time.
    refreshing: tokio::sync::Mutex<()>,
}

impl<E> std::fmt::Debug for TokenCache<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

/// Tokens with this much left (or half their life, if that is less) are renewed.
const MARGIN: Duration = Duration::from_secs(300);

impl<E> TokenCache<E> {
    /// A cache over `fetch`, which gets a new token (and does its own retrying).
    pub fn new<F, Fut>(fetch: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Token, E>> + Send + 'static,
    {
        TokenCache {
            fetch: Box::new(move || Box::pin(fetch())),
            held: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The current token, fetching a new one first when it is missing or due.
    pub async fn get(&self) -> Result<String, E> {
        if let Some(secret) = self.fresh(SystemTime::now()) {
            return Ok(secret);
        }
        let _one_fetch = self.refreshing.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(secret) = self.fresh(SystemTime::now()) {
            return Ok(secret);
        }
        let fetched_at = SystemTime::now();
        let token = (self.fetch)().await?;
        refgen_core::redact::register(&token.secret);
        tracing::debug!(expires_at = ?token.expires_at, "fetched a bearer token");
        let secret = token.secret.clone();
        *self.lock() = Some(Held { token, fetched_at });
        Ok(secret)
    }

    /// Drops `stale` (the token a request was refused with), unless it was already
    /// replaced.
    pub fn invalidate(&self, stale: &str) {
        let mut held = self.lock();
        if held.as_ref().is_some_and(|h| h.token.secret == stale) {
            *held = None;
        }
    }

    /// Drops whatever token is held.
    pub fn clear(&self) {
        *self.lock() = None;
    }

    fn fresh(&self, now: SystemTime) -> Option<String> {
        let held = self.lock();
        let held = held.as_ref()?;
        let Some(expires_at) = held.token.expires_at else {
            return Some(held.token.secret.clone());
        };
        let life = expires_at.duration_since(held.fetched_at).unwrap_or_default();
        let margin = MARGIN.min(life / 2);
        let due = expires_at.checked_sub(margin).unwrap_or(expires_at);
        (now < due).then(|| held.token.secret.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
