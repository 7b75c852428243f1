//! `refgen`: turn the contents of a bucket into a signed-URL references file.
//!
//! A thin front end: parse the command line, build the provider and the selection,
//! call the library, print a summary. All behaviour lives in the library crates.

mod args;
mod logging;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Parser;
use refgen_core::expiry::{display_duration, parse_expiry};
use refgen_core::filter::{MediaPreset, SelectionBuilder};
use refgen_core::naming::Namer;
use refgen_core::pipeline::{Summary, generate};
use refgen_core::source::{Provider, SourceUrl};
use refgen_core::writer::{OutputTarget, ReferenceWriter};

use crate::args::{Cli, Command, GenerateArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Generate(args) => generate_command(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the chain of causes joined with ": ".
            eprintln!("error: {}", format!("{err:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// `refgen … | head` closes the pipe early: that is the reader's choice, not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<refgen_core::Error>()
            .is_some_and(refgen_core::Error::is_broken_pipe)
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn generate_command(args: GenerateArgs) -> Result<()> {
    // Everything that can be checked locally is checked before any request.
    let source: SourceUrl = args.source.parse()?;
    let expires_in = parse_expiry(&args.expires_in)?;
    let max_expiry = match source.provider {
        Provider::S3 => refgen_s3::MAX_PRESIGN_EXPIRY,
        Provider::Gcs => refgen_gcs::MAX_SIGNED_URL_EXPIRY,
        Provider::Azure => refgen_azure::MAX_SAS_EXPIRY,
    };
    if expires_in > max_expiry {
        bail!(
            "invalid expiry `{}`: {} URLs can be valid for at most {}",
            args.expires_in,
            source.provider,
            display_duration(max_expiry)
        );
    }
    let mut selection = SelectionBuilder::new(&source.pattern)
        .include(&args.include)
        .exclude(&args.exclude)
        .case_insensitive(args.ignore_case);
    if args.images {
        selection = selection.preset(MediaPreset::Images);
    }
    if args.videos {
        selection = selection.preset(MediaPreset::Videos);
    }
    let selection = selection.build()?;
    let target = OutputTarget::from_arg(args.output.as_deref().unwrap_or("-"));
    let mut writer = ReferenceWriter::create(target.clone())?;

    let mut namer = Namer::new(args.name.into());
    let summary = match source.provider {
        Provider::S3 => {
            let store = build_s3(&source, &args).await?;
            generate(&store, &store, &selection, expires_in, &mut namer, &mut writer).await?
        }
        Provider::Gcs => {
            let store = build_gcs(&source, &args).await?;
            generate(&store, &store, &selection, expires_in, &mut namer, &mut writer).await?
        }
        Provider::Azure => {
            let store = build_azure(&source, &args).await?;
            generate(&store, &store, &selection, expires_in, &mut namer, &mut writer).await?
        }
    };
    writer.finish()?;
    if !args.quiet {
        print_summary(&summary, &target, expires_in);
    }
    if summary.matched == 0 && summary.listed > 0 {
        tracing::warn!("no object matched the filters ({} listed)", summary.listed);
    }
    Ok(())
}

async fn build_s3(source: &SourceUrl, args: &GenerateArgs) -> Result<refgen_s3::S3Store> {
    let mut builder = refgen_s3::S3Builder::from_env(&source.bucket);
    if let Some(profile) = &args.s3.profile {
        builder = builder.with_profile(profile);
    }
    if let Some(region) = &args.s3.region {
        builder = builder.with_region(region);
    }
    if let Some(url) = &args.endpoint_url {
        builder = builder.with_endpoint_url(url);
    }
    if let Some(n) = args.page_size {
        builder = builder.with_page_size(i32::try_from(n.min(1000)).unwrap_or(1000));
    }
    if let Some(addressing) = args.s3.addressing {
        builder = builder.with_addressing(addressing.into());
    }
    Ok(builder.build().await?)
}

async fn build_gcs(source: &SourceUrl, args: &GenerateArgs) -> Result<refgen_gcs::GcsStore> {
    let mut builder = refgen_gcs::GcsBuilder::from_env(&source.bucket);
    if let Some(url) = &args.endpoint_url {
        builder = builder.with_endpoint_url(url);
    }
    if let Some(path) = &args.gcs.credentials_file {
        builder = builder.with_credentials_file(path);
    }
    match (&args.gcs.hmac_access_id, &args.gcs.hmac_secret) {
        (Some(id), Some(secret)) => builder = builder.with_hmac(id, secret),
        (None, None) => {}
        _ => bail!("--hmac-access-id and --hmac-secret go together"),
    }
    if let Some(email) = &args.gcs.service_account {
        builder = builder.with_service_account(email);
    }
    if let Some(n) = args.page_size {
        builder = builder.with_page_size(n);
    }
    if let Some(url) = &args.gcs.iam_endpoint {
        builder = builder.with_iam_endpoint(url);
    }
    Ok(builder.build().await?)
}

async fn build_azure(source: &SourceUrl, args: &GenerateArgs) -> Result<refgen_azure::AzureStore> {
    let account = source.account.as_deref().unwrap_or_default();
    let mut builder = refgen_azure::AzureBuilder::from_env(account, &source.bucket);
    if let Some(url) = args.endpoint_url.as_ref().or(source.endpoint.as_ref()) {
        builder = builder.with_endpoint(url);
    }
    if let Some(n) = args.page_size {
        builder = builder.with_page_size(n);
    }
    if let Some(token) = &args.azure.sas_token {
        builder = builder.with_sas_token(token);
    }
    if let Some(key) = &args.azure.account_key {
        builder = builder.with_account_key(key);
    }
    if let Some(conn) = &args.azure.connection_string {
        builder = builder.with_connection_string(conn);
    }
    Ok(builder.build().await?)
}

fn print_summary(summary: &Summary, target: &OutputTarget, expires_in: std::time::Duration) {
    let secs = summary.elapsed.as_secs_f64();
    let rate = if secs > 0.0 { summary.written as f64 / secs } else { 0.0 };
    let destination = match target {
        OutputTarget::Stdout if std::io::stdout().is_terminal() => "the terminal".to_owned(),
        OutputTarget::Stdout => "standard output".to_owned(),
        OutputTarget::File(p) => p.display().to_string(),
    };
    eprintln!(
        "refgen: listed {} objects, matched {}, wrote {} references to {destination} in {secs:.2}s ({rate:.0}/s); URLs valid for {}",
        summary.listed,
        summary.matched,
        summary.written,
        display_duration(expires_in)
    );
}
