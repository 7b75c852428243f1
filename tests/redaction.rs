//! No secret in any text a server sends back: stores, receivers and the Roboflow
//! API that echo the request (its signature, token, key, query) in their error
//! texts. Every output (stdout and stderr, tables, `--json`, `-vv` logs) is
//! scanned for every secret in every encoding a server may use.

use base64::Engine as _;
use refgen_e2e::backends::Backend;
use refgen_e2e::roboflow::FakeRoboflow;
use refgen_e2e::stub::{Recorded, StubServer};
use refgen_e2e::*;

/// The request as a server would echo it: request line, then every header.
fn echo(request: &Recorded) -> String {
    let mut text = format!("{} {}\n", request.method, request.target);
    for (name, value) in &request.headers {
        text.push_str(&format!("{name}: {value}\n"));
    }
    text
}

/// Every form of `secret` a server might send back.
fn forms(secret: &str) -> Vec<String> {
    let percent: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    vec![
        secret.to_owned(),
        percent.clone(),
        percent.to_lowercase(),
        percent.replace("%20", "+"),
        serde_json::to_string(secret)
            .expect("json")
            .trim_matches('"')
            .replace('/', "\\/"),
        b64.trim_end_matches('=').to_owned(),
    ]
}

fn assert_clean(what: &str, output: &str, secrets: &[&str]) {
    for secret in secrets {
        for form in forms(secret) {
            assert!(!output.contains(&form), "{what} holds `{form}`:\n{output}");
        }
    }
}

/// An S3-compatible store (or a proxy) whose 403 `<Message>` echoes the request:
/// its session token and signature never reach the error line or the logs.
#[test]
fn an_echoing_store_shows_no_secret() {
    let store = StubServer::start(|request| {
        let body = format!(
            "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>denied: {}</Message></Error>",
            echo(request).replace('&', "&amp;").replace('<', "&lt;")
        );
        (
            403,
            vec![("content-type".into(), "application/xml".into())],
            body.into_bytes(),
        )
    });
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let token = "IQoJb3JpZ2luX2VjEJ3//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token/with=chars";
    for verbosity in [None, Some("-vv")] {
        let mut args = vec!["generate", "s3://echo-bucket/"];
        args.extend(verbosity);
        let run = Refgen::new(&args)
            .s3_credentials("AKIAECHOEXAMPLE", secret)
            .env("AWS_SESSION_TOKEN", token)
            .env("AWS_ENDPOINT_URL", format!("http://{}", store.addr))
            .env("AWS_REGION", "us-east-1")
            .run();
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        assert!(run.stderr.contains("AccessDenied"), "{}", run.stderr);
        let output = format!("{}{}", String::from_utf8_lossy(&run.stdout), run.stderr);
        assert_clean("generate's output", &output, &[secret, token]);
        // The echoed signature value itself (never seen by refgen as such).
        let sent = store.requests();
        let signature = sent
            .iter()
            .filter_map(|r| r.header("authorization"))
            .filter_map(|a| a.split("Signature=").nth(1))
            .next()
            .expect("a signed request")
            .to_owned();
        assert!(!output.contains(&signature), "the signature is shown:\n{output}");
    }
}

/// `webhook-check` against a receiver that echoes the request in a 500: the
/// `error` field (table and `--json`) holds neither the publishable key nor the
/// URL's token.
#[test]
fn an_echoing_webhook_receiver_shows_no_secret() {
    let receiver = StubServer::start(|request| (500, vec![], format!("oops: {}", echo(request)).into_bytes()));
    let key = "rf_pub_9f8e7d6c5b4a3210";
    let token = "hook-token+with/odd=chars";
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let url = format!("http://{}/h?token={encoded}&v=1", receiver.addr);
    for json in [false, true] {
        let mut args = vec![
            "webhook-check",
            url.as_str(),
            "--publishable-key",
            key,
            "--max-attempts",
            "1",
        ];
        if json {
            args.push("--json");
        }
        let run = Refgen::new(&args).run();
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        let output = format!("{}{}", String::from_utf8_lossy(&run.stdout), run.stderr);
        assert!(output.contains("HTTP 500"), "{output}");
        assert!(
            output.contains("oops"),
            "the receiver's words are still shown: {output}"
        );
        assert_clean("webhook-check's output", &output, &[key, token]);
    }
}

/// A Roboflow API (or a gateway before it) that echoes the request in its error:
/// the API key, sent in the query, is never shown, in a table, in `--json` or in
/// `-vv` logs, whichever call failed and however the echo encodes it.
#[test]
fn an_echoing_api_shows_no_key() {
    let api = StubServer::start(|request| {
        let echoed = echo(request);
        let body = serde_json::json!({"error": {"message": format!("bad request: {echoed}")}});
        (
            400,
            vec![("content-type".into(), "application/json".into())],
            body.to_string().into_bytes(),
        )
    });
    let key = "rf_api_Key+with/odd=chars_0123";
    for args in [
        &["batches", "list"][..],
        &["batches", "list", "--json"],
        &["jobs", "show", "job-1", "-vv"],
        &["batches", "show", "b1", "--json"],
    ] {
        let run = Refgen::new(args)
            .env("API_BASE_URL", format!("http://{}", api.addr))
            .env("ROBOFLOW_API_KEY", key)
            .env("REFGEN_RETRY_DELAY", "10ms")
            .run();
        assert_ne!(run.code, Some(0), "{args:?}: {}", run.stderr);
        let output = format!("{}{}", String::from_utf8_lossy(&run.stdout), run.stderr);
        assert!(
            output.contains("bad request"),
            "{args:?}: the API's words are still shown: {output}"
        );
        assert_clean("the lifecycle commands' output", &output, &[key]);
    }
}

/// A shard that failed with a reason quoting the request (its API key, as an
/// echoing server would): `submit --wait` says the shard failed, and the key is
/// in no form on stderr.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_shards_reason_shows_no_key() {
    require!(S3);
    let env = s3_env();
    let bucket = Backend::S3
        .bucket_with(&["imgs/a.jpg".to_owned(), "imgs/b.jpg".to_owned()])
        .await;
    let rf = FakeRoboflow::start();
    let reason = format!("cannot read https://api.example.com/x?api_key={} (403)", rf.api_key());
    rf.state
        .lock()
        .expect("lock")
        .broken_shards
        .insert("leaky".into(), reason);
    let run = Refgen::new([
        "submit",
        &format!("s3://{bucket}/imgs/"),
        "--images",
        "--batch-id",
        "leaky",
        "--wait",
        "--poll-interval",
        "1s",
    ])
    .s3_admin(&env)
    .env("API_BASE_URL", rf.base_url())
    .env("ROBOFLOW_API_KEY", rf.api_key())
    .run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let run = run.assert_stderr_has("shard leaky-broken of batch leaky failed");
    assert_clean("stderr", &run.stderr, &[rf.api_key()]);
}
