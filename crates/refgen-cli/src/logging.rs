//! Logging to stderr, with the libraries that could print secrets held back.
//!
//! At trace level the AWS signing and HTTP crates log whole requests and canonical
//! requests. aws-sdk-s3 1.157 redacts tokens and Authorization headers there (checked
//! with `RUST_LOG=trace`), but that is a promise of other crates' Debug output; so
//! those targets are capped at info whatever RUST_LOG says, and `-vv` shows refgen's
//! own tracing only. The e2e test `logs_never_show_secrets` checks the result.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Targets whose verbose output can contain credentials or signatures.
const SECRET_BEARING_TARGETS: &[&str] = &[
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_http",
    "aws_runtime",
    "aws_sdk_s3",
    "aws_sdk_sts",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "reqwest",
];

pub fn init(verbose: u8) {
    let base = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec,
        _ => match verbose {
            0 => "warn".to_owned(),
            1 => "warn,refgen=debug,refgen_core=debug,refgen_s3=debug".to_owned(),
            _ => "info,refgen=trace,refgen_core=trace,refgen_s3=trace".to_owned(),
        },
    };
    let mut filter = EnvFilter::builder().parse_lossy(base);
    for target in SECRET_BEARING_TARGETS {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}
