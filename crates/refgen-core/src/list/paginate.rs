//! Token-driven pagination as a stream, shared by every provider's listings.

use std::future::Future;

use futures::stream::{self, BoxStream, StreamExt};

use crate::Error;

/// Whether a listing goes on after a page that came with this continuation
/// token: an absent or empty token ends it.
pub fn continues(token: Option<&str>) -> bool {
    token.is_some_and(|t| !t.is_empty())
}

/// Turns "fetch the page after this token" into a stream of pages. `fetch` gets
/// `None` for the first page and returns the page and the next token, if any.
pub fn paginate<'a, P, F, Fut>(fetch: F) -> BoxStream<'a, Result<P, Error>>
where
    P: Send + 'a,
    F: Fn(Option<String>) -> Fut + Send + 'a,
    Fut: Future<Output = Result<(P, Option<String>), Error>> + Send + 'a,
{
    enum State {
        Next(Option<String>),
        Done,
    }
    stream::try_unfold((State::Next(None), fetch), |(state, fetch)| async move {
        let State::Next(token) = state else { return Ok(None) };
        let (page, next) = fetch(token).await?;
        let state = match next {
            Some(t) if continues(Some(&t)) => State::Next(Some(t)),
            _ => State::Done,
        };
        Ok(Some((page, (state, fetch))))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    #[tokio::test]
    async fn follows_tokens_until_none_or_empty() {
        let pages: Vec<Vec<u32>> = paginate(|token: Option<String>| async move {
            Ok(match token.as_deref() {
                None => (vec![1, 2], Some("a".to_owned())),
                Some("a") => (vec![3], Some(String::new())),
                Some(other) => panic!("unexpected token {other}"),
            })
        })
        .try_collect()
        .await
        .expect("pages");
        assert_eq!(pages, vec![vec![1, 2], vec![3]]);
    }

    #[tokio::test]
    async fn stops_at_the_first_error() {
        let mut s = paginate(|_token: Option<String>| async move {
            Err::<(Vec<u32>, Option<String>), _>(Error::storage("X", crate::StorageErrorKind::Other, "boom"))
        });
        assert!(s.try_next().await.is_err());
    }
}
