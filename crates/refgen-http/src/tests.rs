//! The transport against a scripted server on 127.0.0.1: one answer per request, in
//! order, written as raw bytes so that cut bodies, resets and stalls are real.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

#[derive(Clone)]
enum Answer {
    /// Raw bytes, then close.
    Raw(Vec<u8>),
    /// Read the request and never answer.
    Stall,
}

fn http(status: u16, headers: &str, body: &str) -> Answer {
    Answer::Raw(
        format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// Serves `script` in order (the last answer repeats); returns the base URL and
/// the count of requests seen.
async fn serve(script: Vec<Answer>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let answer = script[n.min(script.len() - 1)].clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                match answer {
                    Answer::Raw(bytes) => {
                        let _ = socket.write_all(&bytes).await;
                        let _ = socket.shutdown().await;
                    }
                    Answer::Stall => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (base, seen)
}

fn quick() -> RetryConfig {
    RetryConfig::default()
        .with_max_attempts(4)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .with_attempt_timeout(Duration::from_millis(400))
}

/// A parse that wants a body ending in `END` (a stand-in for "a whole document").
fn whole(r: Response) -> Result<String, Reject<String>> {
    let text = r.raw_text().into_owned();
    match r.status {
        200 if text.ends_with("END") => Ok(text),
        200 => Err(Reject::Retry(format!("cut: {text}"))),
        s => Err(Reject::Fail(format!("HTTP {s}: {text}"))),
    }
}

async fn get(base: &str, config: RetryConfig) -> (Result<String, SendError<String>>, Duration) {
    let transport = Transport::new(config).expect("client");
    let url = format!("{base}/list?secret=abc");
    let started = std::time::Instant::now();
    let result = transport
        .call("listing")
        .send(|| async { Ok(transport.client().get(&url)) }, whole)
        .await;
    (result, started.elapsed())
}

#[tokio::test]
async fn retryable_statuses_are_retried_until_a_whole_answer() {
    for status in [408, 429, 500, 502, 503, 504] {
        let (base, seen) = serve(vec![http(status, "", "busy"), http(200, "", "page END")]).await;
        let (result, _) = get(&base, quick()).await;
        assert_eq!(result.expect("retried"), "page END", "status {status}");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test]
async fn a_final_status_is_not_retried() {
    let (base, seen) = serve(vec![http(404, "", "no such bucket")]).await;
    let (result, _) = get(&base, quick()).await;
    let err = result.expect_err("404 is final");
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.to_string(), "HTTP 404: no such bucket");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bodies_cut_short_or_not_whole_are_retried() {
    let cut_length = Answer::Raw(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npage EN".to_vec());
    let cut_close = Answer::Raw(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\npage EN".to_vec());
    let consistent = http(200, "", "page EN");
    let (base, seen) = serve(vec![cut_length, cut_close, consistent, http(200, "", "page END")]).await;
    let (result, _) = get(&base, quick()).await;
    assert_eq!(result.expect("retried"), "page END");
    assert_eq!(seen.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_stalled_answer_times_out_and_is_retried() {
    let (base, seen) = serve(vec![Answer::Stall, http(200, "", "page END")]).await;
    let (result, elapsed) = get(&base, quick()).await;
    assert_eq!(result.expect("retried"), "page END");
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (base, _) = serve(vec![
        http(503, "x-ms-retry-after-ms: 600\r\n", "busy"),
        http(200, "", "page END"),
    ])
    .await;
    let (result, elapsed) = get(&base, quick()).await;
    assert_eq!(result.expect("retried"), "page END");
    assert!(elapsed >= Duration::from_millis(600), "waited only {elapsed:?}");
}

#[tokio::test]
async fn every_attempt_failing_says_what_how_often_and_how_long() {
    let (base, seen) = serve(vec![Answer::Raw(Vec::new())]).await;
    let (result, _) = get(&base, quick()).await;
    let err = result.expect_err("never answered");
    assert_eq!(seen.load(Ordering::SeqCst), 4);
    let text = err.to_string();
    assert!(text.starts_with(&format!("cannot reach {base}: ")), "{text}");
    assert!(text.contains("(after 4 attempts over "), "{text}");
    assert!(!text.contains("secret=abc") && !text.contains("/list"), "{text}");

    let (base, seen) = serve(vec![http(503, "", "SlowDown")]).await;
    let (result, _) = get(&base, quick()).await;
    let text = result.expect_err("always busy").to_string();
    assert_eq!(seen.load(Ordering::SeqCst), 4);
    assert!(text.starts_with("HTTP 503: SlowDown (after 4 attempts over "), "{text}");
}

#[tokio::test]
async fn the_budget_ends_retries_before_the_attempts_do() {
    let (base, seen) = serve(vec![http(503, "retry-after: 2\r\n", "busy")]).await;
    let config = quick().with_max_attempts(10).with_budget(Duration::from_secs(1));
    let (result, elapsed) = get(&base, config).await;
    assert!(result.is_err());
    // The server's 2 s wait does not fit in the 1 s budget: no second attempt.
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

#[tokio::test]
async fn connection_refused_is_retried_and_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let (result, _) = get(&base, quick()).await;
    let text = result.expect_err("refused").to_string();
    assert!(
        // 3 attempts, not the 4 allowed: nothing listening now is rarely
        // listening a moment later.
        text.contains("connection failed (connection refused)") && text.contains("after 3 attempts"),
        "{text}"
    );
}

#[tokio::test]
async fn a_401_refreshes_the_token_once() {
    let (base, seen) = serve(vec![
        http(401, "", "expired"),
        http(200, "", "page END"),
        http(401, "", "expired"),
        http(401, "", "expired"),
    ])
    .await;
    let transport = Transport::new(quick()).expect("client");
    let refreshed = AtomicUsize::new(0);
    let hook = || {
        refreshed.fetch_add(1, Ordering::SeqCst);
    };
    let url = format!("{base}/x");
    let call = || {
        transport
            .call("listing")
            .on_unauthorized(&hook)
            .send(|| async { Ok(transport.client().get(&url)) }, whole)
    };
    assert_eq!(call().await.expect("second try"), "page END");
    assert_eq!(refreshed.load(Ordering::SeqCst), 1);
    let err = call().await.expect_err("a second 401 is final");
    assert_eq!(err.attempts(), 2);
    assert_eq!(refreshed.load(Ordering::SeqCst), 2);
    assert_eq!(seen.load(Ordering::SeqCst), 4);
}

#[test]
fn retry_after_reads_seconds_dates_and_milliseconds() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    };
    assert_eq!(
        retry_after(&headers(&[("retry-after", "7")]), now),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        retry_after(&headers(&[("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT")]), now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        retry_after(&headers(&[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")]), now),
        Some(Duration::ZERO)
    );
    assert_eq!(
        retry_after(&headers(&[("retry-after", "9"), ("x-ms-retry-after-ms", "250")]), now),
        Some(Duration::from_millis(250))
    );
    assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
    assert_eq!(
        retry_after(&headers(&[("retry-after", "86400")]), now),
        Some(Duration::from_secs(300))
    );
}

#[test]
fn full_jitter_stays_under_each_step() {
    let config = RetryConfig::default()
        .with_max_attempts(8)
        .with_backoff(Duration::from_millis(100), Duration::from_secs(1));
    let waits: Vec<Duration> = config.backoff().collect();
    assert_eq!(waits.len(), 7);
    let steps = [100, 200, 400, 800, 1000, 1000, 1000];
    for (wait, step) in waits.iter().zip(steps) {
        assert!(*wait <= Duration::from_millis(step), "{wait:?} > {step} ms");
    }
}

#[tokio::test]
async fn tokens_are_fetched_once_and_renewed_when_due() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fetches);
    let cache: TokenCache<String> = TokenCache::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(Token {
                secret: format!("token-{n}"),
                expires_at: Some(SystemTime::now() + Duration::from_millis(600)),
            })
        }
    });
    let firsts = futures::future::join_all((0..8).map(|_| cache.get())).await;
    assert!(firsts.iter().all(|t| t.as_deref() == Ok("token-0")), "{firsts:?}");
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "one fetch for concurrent requests");
    // Half the 600 ms life is the margin: at 400 ms the token is due.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cache.get().await.as_deref(), Ok("token-1"));
    cache.invalidate("token-0");
    assert_eq!(
        cache.get().await.as_deref(),
        Ok("token-1"),
        "a stale token's refusal keeps the new one"
    );
    cache.invalidate("token-1");
    assert_eq!(cache.get().await.as_deref(), Ok("token-2"));
    assert!(
        !format!(
            "{:?}",
            Token {
                secret: "s3cr3t".into(),
                expires_at: None
            }
        )
        .contains("s3cr3t")
    );
}

/// A probe reads a body only up to its limit: an answer far longer than asked
/// for (here also cut short after 64 KiB) is a status, headers and the first
/// bytes, not a failed attempt, and the rest is never waited for.
#[tokio::test]
async fn a_probe_reads_only_the_start_of_a_body() {
    let mut raw = b"HTTP/1.1 200 X\r\ncontent-length: 10000000\r\nconnection: close\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 64 * 1024));
    let (base, seen) = serve(vec![Answer::Raw(raw)]).await;
    let transport = Transport::new(quick()).expect("client");
    let url = format!("{base}/object");
    let body = transport
        .call("probing")
        .max_body(1024)
        .send(
            || async { Ok::<_, String>(transport.client().get(&url)) },
            |r| Ok::<_, Reject<String>>((r.status, r.body.len())),
        )
        .await
        .expect("an answer");
    assert_eq!(body, (200, 1024));
    assert_eq!(seen.load(Ordering::SeqCst), 1, "one attempt");
    // Without the limit the same answer is cut short: retried, then failed.
    let (result, _) = get(&base, quick()).await;
    assert!(matches!(result, Err(SendError::Transport { .. })), "{result:?}");
}

/// A download that ends with its connection and no length cannot tell a cut
/// from an end: it is fetched again, and kept once two answers hold the same
/// bytes; one with a length is kept at once.
#[tokio::test]
async fn a_download_without_a_length_is_kept_once_two_answers_agree() {
    let unframed = |body: &str| Answer::Raw(format!("HTTP/1.1 200 X\r\nconnection: close\r\n\r\n{body}").into_bytes());
    let download = |base: String| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("file");
        let transport = Transport::new(quick()).expect("client");
        let result = transport
            .call("downloading")
            .into_file(&path, None)
            .send(
                || async { Ok::<_, String>(transport.client().get(&base)) },
                |r| match r.status {
                    200 => Ok(()),
                    s => Err(Reject::Fail(format!("HTTP {s}"))),
                },
            )
            .await;
        result.map(|()| std::fs::read_to_string(&path).expect("file"))
    };
    // Cut to half by a closed connection, then whole twice: the whole one is kept.
    let (base, seen) = serve(vec![
        unframed("hal"),
        unframed("half and half"),
        unframed("half and half"),
    ])
    .await;
    assert_eq!(download(base).await.expect("whole"), "half and half");
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    // A server that never sends a length: two requests, the same bytes, kept.
    let (base, seen) = serve(vec![unframed("always")]).await;
    assert_eq!(download(base).await.expect("whole"), "always");
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    // With a length: one request.
    let (base, seen) = serve(vec![http(200, "", "framed")]).await;
    assert_eq!(download(base).await.expect("whole"), "framed");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}
