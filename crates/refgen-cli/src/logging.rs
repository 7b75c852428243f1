//! Logging to stderr, with the libraries that could print secrets held back.
//!
//! At trace level the AWS signing and HTTP crates log whole requests and canonical
//! requests. aws-sdk-s3 1.157 redacts tokens and Authorization headers there (checked
//! with `RUST_LOG=trace`), but that is a promise of other crates' Debug output; so
//! those targets are capped at info whatever RUST_LOG says, and `-vv` shows refgen's
//! own tracing only. The e2e test `logs_never_show_secrets` checks the result.
//! Every line goes out through the redaction step ([`refgen::core::redact`]) as
//! well, so a server's text quoted in a log line cannot carry a secret.

use std::io::{IsTerminal, Write as _};

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::prelude::*;

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
    "google_cloud_auth",
    "azure_core",
    "azure_identity",
    "typespec_client_core",
];

fn may_carry_secrets(target: &str) -> bool {
    SECRET_BEARING_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

pub fn init(verbose: u8) {
    let spec = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec,
        _ => match verbose {
            // Other crates' warnings stay out by default: the SDKs warn, several
            // lines each, about every step of their chains that fails on the way
            // (instance metadata on a laptop, say), while refgen's own error line
            // already says what went wrong.
            0 => "error,refgen=warn,refgen_cli=warn,refgen_core=warn,refgen_http=warn,refgen_s3=warn,refgen_gcs=warn,refgen_azure=warn,refgen_roboflow=warn"
                .to_owned(),
            1 => "warn,refgen=debug,refgen_cli=debug,refgen_core=debug,refgen_http=debug,refgen_s3=debug,refgen_gcs=debug,refgen_azure=debug,refgen_roboflow=debug".to_owned(),
            _ => "info,refgen=trace,refgen_cli=trace,refgen_core=trace,refgen_http=trace,refgen_s3=trace,refgen_gcs=trace,refgen_azure=trace,refgen_roboflow=trace".to_owned(),
        },
    };
    let wanted = EnvFilter::builder().parse_lossy(spec);
    // ANDed with what was asked for: it can only take output away, never add it.
    let cap = filter_fn(|meta| !(may_carry_secrets(meta.target()) && *meta.level() > Level::INFO));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| RedactedLine(Vec::new()))
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false)
                .without_time()
                .with_filter(wanted.and(cap)),
        )
        .init();
}

/// One log event, written to stderr redacted when the formatter is done with it.
struct RedactedLine(Vec<u8>);

impl std::io::Write for RedactedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        let text = refgen::core::redact::redact(&String::from_utf8_lossy(&self.0));
        // A log line that cannot be written has nowhere else to go.
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_bearing_targets_match_by_module_path() {
        assert!(may_carry_secrets("aws_sigv4"));
        assert!(may_carry_secrets("aws_sigv4::http_request::sign"));
        assert!(!may_carry_secrets("aws_sigv4_extra"));
        assert!(!may_carry_secrets("refgen::s3::store"));
    }
}
