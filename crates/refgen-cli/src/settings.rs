//! Flags → the library's options, resolved once per command: every check that
//! needs two flags, or a flag's name in its message, is here, and returns a
//! usage error (exit 2) before any request. The commands take what this
//! returns and make one library call.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use refgen::api::ApiOptions;
use refgen::core::filter::MediaPreset;
use refgen::core::local::LocalSelection;
use refgen::core::source::SourceUrl;
use refgen::core::writer::{OutputTarget, TargetFile};
use refgen::failures::FailuresOptions;
use refgen::generate::{GenerateOptions, Output, Plan};
use refgen::ranges::RangePlan;
use refgen::roboflow::{JobOptions, MediaKind};
use refgen::store::StoreOptions;
use refgen::submit::{JobRequest, SubmitOptions, SubmitReferences};
use refgen::upload::{LocalOptions, UploadMode};
use refgen::verify::VerifyOptions;
use serde_json::Value;

use crate::exit::{io_text, usage};
use crate::flags::{
    ApiArgs, FailuresArgs, GenerateArgs, NameArg, PlanArgs, ReferenceArgs, RequestArgs, RoboflowArgs, StoreArgs,
    SubmitArgs, UploadModeArg, VerifyCheckArgs,
};

/// The store options these flags describe.
pub fn store(args: &StoreArgs) -> Result<StoreOptions> {
    let gcs_hmac = match (&args.gcs.hmac_access_id, &args.gcs.hmac_secret) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.as_str().into())),
        (None, None) => None,
        _ => return Err(usage!("--hmac-access-id and --hmac-secret go together")),
    };
    Ok(StoreOptions {
        endpoint_url: args.endpoint_url.clone(),
        url_endpoint: args.url_endpoint.clone(),
        url_endpoint_bucket_bound: args.bucket_bound,
        page_size: args.page_size,
        retry: args.requests.retry_config(),
        max_attempts: args.requests.max_attempts,
        s3_profile: args.s3.profile.clone(),
        s3_region: args.s3.region.clone(),
        s3_addressing: args.s3.addressing.map(Into::into),
        s3_request_payer: args.s3.request_payer.is_some(),
        gcs_user_project: args.gcs.user_project.clone(),
        gcs_credentials_file: args.gcs.credentials_file.clone(),
        gcs_hmac,
        gcs_service_account: args.gcs.service_account.clone(),
        gcs_iam_endpoint: args.gcs.iam_endpoint.clone(),
        azure_sas_token: args.azure.sas_token.as_deref().map(Into::into),
        azure_account_key: args.azure.account_key.as_deref().map(Into::into),
        azure_connection_string: args.azure.connection_string.as_deref().map(Into::into),
        pin_versions: false,
    })
}

/// How to reach Roboflow with these flags.
pub fn api(roboflow: &RoboflowArgs, requests: &RequestArgs) -> ApiOptions {
    ApiOptions {
        api_key: roboflow.api_key.clone(),
        workspace: roboflow.workspace.clone(),
        retry: requests.retry_config(),
        backoff_base: requests.retry_delay,
    }
}

/// How to reach Roboflow with a lifecycle command's flags.
pub fn lifecycle_api(args: &ApiArgs) -> ApiOptions {
    api(&args.roboflow, &args.requests)
}

/// The library's plan for a source and these selection flags: everything,
/// the expiry too, checked before any request.
pub fn plan(
    source: &str,
    args: &ReferenceArgs,
    concurrency: u16,
    allow_empty: bool,
    range_plan: Option<Arc<RangePlan>>,
) -> Result<Plan> {
    let count = range_plan.as_ref().map(|p| p.count());
    let shard = args
        .shard
        .map(|s| s.resolve(count))
        .transpose()
        .map_err(|e| usage!("{e}"))?;
    let mut options = GenerateOptions {
        include: args.selection.include.clone(),
        exclude: args.selection.exclude.clone(),
        ignore_case: args.selection.ignore_case,
        images: args.selection.images,
        videos: args.selection.videos,
        expires_in: refgen::core::expiry::parse_expiry(&args.expires_in)?,
        name_mode: args.name.into(),
        concurrency: usize::from(concurrency),
        limit: args.limit,
        allow_empty,
        allow_short_expiry: args.allow_short_expiry,
        max_size: args.selection.max_size,
        shard,
        range_plan: range_plan.clone(),
        inventory: args.inventory.clone(),
        pin_versions: args.pin_versions,
    };
    if let Some(range_plan) = &range_plan {
        range_plan.selection.apply(&mut options);
    }
    Ok(Plan::new(source, &options)?)
}

/// `plan`'s source, parts, selection, store options and where the plan goes.
pub fn range_plan(args: &PlanArgs) -> Result<(GenerateOptions, StoreOptions, OutputTarget)> {
    let target = OutputTarget::from_arg(args.output.as_deref().unwrap_or("-"));
    if args.json && target == OutputTarget::Stdout {
        return Err(usage!(
            "--json prints its summary on stdout, where the plan goes without -o: pass -o FILE"
        ));
    }
    if !refgen::core::local::is_local(&args.source) {
        let source: SourceUrl = args.source.parse()?;
        check_provider_flags(&args.store, source.provider)?;
    }
    let selection = &args.selection;
    let options = GenerateOptions {
        include: selection.include.clone(),
        exclude: selection.exclude.clone(),
        ignore_case: selection.ignore_case,
        images: selection.images,
        videos: selection.videos,
        max_size: selection.max_size,
        concurrency: usize::from(args.store.concurrency),
        ..GenerateOptions::default()
    };
    Ok((options, store(&args.store)?, target))
}

/// Refuses an output name that promises compression: refgen writes plain JSON Lines,
/// and a `.gz` name holding plain text would mislead whoever reads it.
fn check_output_name(path: &str) -> Result<()> {
    let lower = path.to_ascii_lowercase();
    if let Some(ext) = [".gz", ".bz2", ".xz", ".zst", ".zip"]
        .iter()
        .find(|e| lower.ends_with(*e))
    {
        return Err(usage!(
            "-o {path}: refgen writes plain JSON Lines, not {ext} (Roboflow reads plain files); name it .jsonl"
        ));
    }
    Ok(())
}

/// `generate`'s plan, store options and output.
pub fn generate(args: &GenerateArgs) -> Result<(Plan, StoreOptions, Output)> {
    if args.json && args.output.as_deref().is_none_or(|o| o == "-") && !args.dry_run {
        return Err(usage!(
            "--json prints its summary on stdout, where the references go without -o: pass -o FILE (or --dry-run)"
        ));
    }
    if let Some(path) = &args.output {
        check_output_name(path)?;
    }
    let range_plan = args.plan.as_deref().map(RangePlan::read).transpose()?.map(Arc::new);
    let source = match (&args.source, &range_plan, &args.plan) {
        (Some(given), Some(planned), Some(path)) if *given != planned.source => {
            return Err(usage!(
                "{given}: the plan {} was made for {}; give no source with --plan",
                path.display(),
                planned.source
            ));
        }
        (Some(given), ..) => given.clone(),
        (None, Some(planned), _) => planned.source.clone(),
        (None, None, _) => return Err(usage!("give a source, or --plan FILE")),
    };
    let plan = plan(
        &source,
        &args.references,
        args.store.concurrency,
        args.allow_empty,
        range_plan,
    )?;
    let target = OutputTarget::from_arg(args.output.as_deref().unwrap_or("-"));
    let output = match (target, args.part_lines) {
        _ if args.dry_run => Output::DryRun,
        (OutputTarget::File(path), Some(lines)) => {
            if args.resume {
                check_resume(&args.references)?;
            }
            Output::Parts {
                path,
                lines,
                resume: args.resume,
            }
        }
        (_, Some(_)) => return Err(usage!("--part-lines writes numbered files: give -o FILE")),
        (target, None) => Output::Target(target),
    };
    check_provider_flags(&args.store, plan.source.provider)?;
    Ok((plan, store(&args.store)?, output))
}

/// One provider's flags given for another's source: refused rather than
/// ignored, since the run would not do what they ask.
pub(crate) fn check_provider_flags(args: &StoreArgs, provider: refgen::core::source::Provider) -> Result<()> {
    use refgen::core::source::Provider;
    if args.s3.request_payer.is_some() && provider != Provider::S3 {
        return Err(usage!(
            "--request-payer is for s3:// sources, not {provider} (a requester-pays GCS bucket takes --user-project)"
        ));
    }
    if args.gcs.user_project.is_some() && provider != Provider::Gcs {
        return Err(usage!(
            "--user-project is for gs:// sources, not {provider} (a requester-pays S3 bucket takes --request-payer requester)"
        ));
    }
    let (s3, gcs, azure) = (&args.s3, &args.gcs, &args.azure);
    let given = |flags: &[(&'static str, bool)]| flags.iter().find(|(_, set)| *set).map(|(name, _)| *name);
    let others = [
        (
            Provider::S3,
            "s3://",
            given(&[
                ("--profile", s3.profile.is_some()),
                ("--region", s3.region.is_some()),
                ("--addressing", s3.addressing.is_some()),
            ]),
        ),
        (
            Provider::Gcs,
            "gs://",
            given(&[
                ("--credentials-file", gcs.credentials_file.is_some()),
                ("--hmac-access-id", gcs.hmac_access_id.is_some()),
                ("--hmac-secret", gcs.hmac_secret.is_some()),
                ("--service-account", gcs.service_account.is_some()),
                ("--bucket-bound", args.bucket_bound),
            ]),
        ),
        (
            Provider::Azure,
            "azure:// (or https://ACCOUNT.blob…)",
            given(&[
                ("--sas-token", azure.sas_token.is_some()),
                ("--account-key", azure.account_key.is_some()),
                ("--connection-string", azure.connection_string.is_some()),
            ]),
        ),
    ];
    for (owner, scheme, flag) in others {
        if let Some(flag) = flag
            && owner != provider
        {
            return Err(usage!("{flag} is for {scheme} sources, not {provider}"));
        }
    }
    Ok(())
}

/// What `--resume` cannot go with.
fn check_resume(r: &ReferenceArgs) -> Result<()> {
    if matches!(r.name, NameArg::Basename) || r.limit.is_some() {
        return Err(usage!(
            "--resume continues after the last line of the last part done: it does not go with --name basename or --limit"
        ));
    }
    // A report resumes by row: it must be the same report, named by its manifest.
    if r.inventory.as_deref().is_some_and(|i| !i.ends_with("manifest.json")) {
        return Err(usage!(
            "--resume with --inventory needs the report's manifest.json, not a folder (a newer report could appear between the runs)"
        ));
    }
    Ok(())
}

/// The library's verify options from these flags.
pub fn verify(check: &VerifyCheckArgs, requests: &RequestArgs, kind: Option<MediaKind>) -> VerifyOptions {
    VerifyOptions {
        sample: (!check.all).then_some(check.sample),
        min_valid: check.min_valid,
        concurrency: check.verify_concurrency.into(),
        kind,
        retry: requests.retry_config(),
    }
}

/// `submit`'s options; the path of the kept references file, if `-o` gave one.
pub fn submit(args: SubmitArgs) -> Result<(SubmitOptions, Option<PathBuf>)> {
    refgen::roboflow::validate_batch_id(&args.batch_id)?;
    if let Some(id) = &args.job.job_id {
        refgen::roboflow::validate_job_id(id)?;
    }
    let wants_job = args.job.workflow_id.is_some();
    if args.job.download_results.is_some() && !wants_job {
        return Err(usage!(
            "--download-results needs --workflow-id (results come from a job)"
        ));
    }
    let workflow_parameters = workflow_parameters(&args)?;
    if !args.job.image_outputs_to_save.is_empty() && !args.job.save_image_outputs {
        // Sent as given, as inference-cli does; the service keeps nothing without the switch.
        tracing::warn!("--image-outputs-to-save names outputs to keep, but only --save-image-outputs keeps any");
    }
    let expires_in = refgen::core::expiry::parse_expiry(&args.references.expires_in)?;
    let upload_to = args.upload_to.as_deref().map(upload_target).transpose()?;
    let kind = match (args.references.selection.images, args.references.selection.videos) {
        (true, true) => {
            return Err(usage!(
                "give --images or --videos, not both: a Roboflow batch holds one kind of media \
                 (for a bucket of both, submit twice, to two batches)"
            ));
        }
        (true, false) => Some(MediaKind::Images),
        (false, true) => Some(MediaKind::Videos),
        (false, false) => None,
    };
    let kept = args.output.as_deref().map(kept_file).transpose()?;
    if let Some(shard) = args
        .references
        .shard
        .map(|s| s.resolve(None))
        .transpose()
        .map_err(|e| usage!("{e}"))?
        && (args.wait || wants_job)
    {
        return Err(usage!(
            "--shard {shard} submits one worker's share: the batch is whole only when every worker is done, \
             so --wait and --workflow-id belong to one step after them all"
        ));
    }
    let local = !args.sources.is_empty() && args.sources.iter().all(|s| refgen::core::local::is_local(s));
    let references = match (args.sources.as_slice(), args.references_file.as_slice()) {
        (_, _) if local && args.references.pin_versions => {
            return Err(usage!(
                "--pin-versions is for bucket sources: a local folder has no versions"
            ));
        }
        (sources, _) if local => SubmitReferences::Local(Box::new(local_options(&args, sources, kind)?)),
        ([source], _) => {
            let plan = plan(source, &args.references, args.store.concurrency, false, None)?;
            check_provider_flags(&args.store, plan.source.provider)?;
            SubmitReferences::Generate {
                plan: Box::new(plan),
                keep: kept.clone(),
            }
        }
        ([], []) => return Err(usage!("give a source or --references FILE")),
        ([], given) => SubmitReferences::Files(given.to_vec()),
        (many, _) => {
            return Err(usage!(
                "{} sources: give one bucket source per submission (several sources are for local folders)",
                many.len()
            ));
        }
    };
    let job = args.job.workflow_id.clone().map(|workflow_id| JobRequest {
        workflow_id,
        job_id: args.job.job_id.clone(),
        options: JobOptions {
            name: args.job.job_name.clone(),
            machine_type: args.job.machine_type.clone(),
            workers_per_machine: workers_per_machine(args.job.workers_per_machine, args.job.machine_size.as_deref()),
            processing_timeout_seconds: args.job.processing_timeout,
            max_parallel_tasks: args.job.max_parallel_tasks,
            max_image_failure_rate: args.job.max_image_failure_rate,
            workflow_parameters,
            image_input_name: args.job.image_input_name.clone(),
            aggregation_format: args.job.aggregation_format.clone(),
            max_video_fps: args.job.max_video_fps,
            notifications_url: args.notifications_url.clone(),
            persist_images_outputs: args.job.save_image_outputs && !args.job.no_save_image_outputs,
            images_outputs_to_be_persisted: args.job.image_outputs_to_save.clone(),
            part_name: args.job.part_name.clone(),
            images_metadata_part: args.job.images_metadata_part_name.clone(),
            images_metadata_inputs_mapping: args.job.metadata_mapping.clone(),
            inference_backend: args.job.inference_backend.clone(),
        },
        download_results: args.job.download_results.clone(),
    });
    let options = SubmitOptions {
        store: store(&args.store)?,
        api: api(&args.roboflow, &args.store.requests),
        verify: args
            .verify
            .then(|| verify(&args.verify_check, &args.store.requests, None)),
        batch_id: args.batch_id,
        batch_name: args.batch_name,
        ingest_id: args.ingest_id,
        notifications_url: args.notifications_url,
        notification_categories: args.notification_category,
        references,
        kind,
        upload_to,
        expires_in,
        inline_limit: args.roboflow.inline_limit,
        job,
        wait: args.wait,
        timeout: args.timeout,
        poll: args.poll_interval,
        dry_run: args.dry_run,
    };
    Ok((options, kept))
}

/// Workers per machine: given, or from inference-cli's deprecated `--machine-size`
/// (which clap keeps from going with `--workers-per-machine`), said so once.
pub fn workers_per_machine(workers: Option<u32>, machine_size: Option<&str>) -> Option<u32> {
    let from_size = machine_size.and_then(refgen::roboflow::workers_for_machine_size);
    if let (Some(size), Some(n)) = (machine_size, from_size) {
        tracing::warn!(
            "--machine-size is deprecated (as in inference-cli): {size} means --workers-per-machine {n}, which is sent"
        );
    }
    workers.or(from_size)
}

/// A local source's options; what a bucket source's flags cannot do with it is refused.
fn local_options(args: &SubmitArgs, sources: &[String], kind: Option<MediaKind>) -> Result<LocalOptions> {
    let refuse = |flag: &str, why: &str| Err(usage!("{flag} does not go with local files: {why}"));
    if args.upload_to.is_some() {
        return refuse(
            "--upload-to",
            "the files themselves are uploaded, not a references file",
        );
    }
    if args.output.is_some() {
        return refuse("-o", "no references file is made");
    }
    if args.verify {
        return refuse("--verify", "there is no references file to verify");
    }
    if args.references.shard.is_some() {
        return refuse("--shard", "give each worker its own folders instead");
    }
    if args.references.inventory.is_some() {
        return refuse("--inventory", "an inventory lists a bucket");
    }
    if args.references.expires_in != "24h" {
        return refuse("--expires-in", "nothing is signed");
    }
    let Some(kind) = kind else {
        return Err(usage!(
            "give --images or --videos: local files go up as one kind (images one by one or in tar archives, videos one by one)"
        ));
    };
    let mode = match args.local.upload_mode {
        UploadModeArg::Auto => UploadMode::Auto,
        UploadModeArg::Single => UploadMode::Single,
        UploadModeArg::Bulk => UploadMode::Bulk,
    };
    if kind == MediaKind::Videos && mode != UploadMode::Auto {
        return Err(usage!("--upload-mode is for images: videos go one by one"));
    }
    let r = &args.references;
    // Roboflow refuses images over 20 MiB at ingest: they are not sent.
    let max_size = r
        .selection
        .max_size
        .or((kind == MediaKind::Images).then_some(refgen::upload::IMAGE_MAX_BYTES));
    Ok(LocalOptions {
        sources: sources.to_vec(),
        select: LocalSelection {
            include: r.selection.include.clone(),
            exclude: r.selection.exclude.clone(),
            presets: vec![match kind {
                MediaKind::Images => MediaPreset::Images,
                MediaKind::Videos => MediaPreset::Videos,
            }],
            ignore_case: r.selection.ignore_case,
            max_size,
            hidden: args.local.hidden,
        },
        name_mode: r.name.into(),
        limit: r.limit,
        mode,
        images_per_shard: usize::from(args.local.images_per_shard),
        concurrency: usize::from(args.store.concurrency),
        state_dir: args.local.state_dir.clone(),
    })
}

/// The workflow parameters, from --workflow-parameters JSON or a --workflow-params file.
fn workflow_parameters(args: &SubmitArgs) -> Result<Option<Value>> {
    let (text, from) = match (&args.job.workflow_parameters, &args.job.workflow_params) {
        (Some(text), _) => (text.clone(), "--workflow-parameters".to_owned()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage!("--workflow-params {}: cannot read it: {}", path.display(), io_text(&e)))?;
            (text, format!("--workflow-params {}", path.display()))
        }
        (None, None) => return Ok(None),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => Ok(Some(v)),
        _ => Err(usage!("{from} must hold a JSON object, like '{{\"confidence\": 0.5}}'")),
    }
}

/// `submit -o FILE`: the references file is kept there, and read back, so it must
/// be a plain file (or a new one), not standard output or a device.
fn kept_file(text: &str) -> Result<PathBuf> {
    if text == "-" {
        return Err(usage!(
            "submit -o needs a file name: the references are read back from it"
        ));
    }
    check_output_name(text)?;
    let path = PathBuf::from(text);
    match std::fs::metadata(&path) {
        Ok(meta) if !meta.is_file() => Err(usage!(
            "submit -o {text}: not a plain file (the references are read back from it)"
        )),
        _ => Ok(path),
    }
}

/// `s3://bucket/refs/x.jsonl`: a full object key, no wildcards.
fn upload_target(text: &str) -> Result<SourceUrl> {
    let target: SourceUrl = text.parse().context("--upload-to")?;
    if target.pattern.is_empty() || target.pattern.ends_with('/') {
        return Err(usage!(
            "--upload-to `{text}` must name an object (…/refs.jsonl), not a bucket or folder"
        ));
    }
    if refgen::core::filter::literal_prefix(&target.pattern).1 {
        return Err(usage!(
            "--upload-to `{text}` must be a plain object name, without wildcards"
        ));
    }
    Ok(target)
}

/// `batches failures`' options. The retry file's target is opened here, so it
/// is checked before anything is listed or asked.
pub fn failures(args: &FailuresArgs) -> Result<FailuresOptions> {
    refgen::roboflow::validate_batch_id(&args.batch_id)?;
    if args.retry_file.is_some() && args.references_file.is_none() && args.source.is_none() {
        return Err(usage!(
            "--retry-file needs --references FILE (the file the batch was made from) or --source URL \
             (to list and sign again)"
        ));
    }
    let retry_file = args.retry_file.as_deref().map(TargetFile::create).transpose()?;
    let source = match &args.source {
        Some(source) => Some(Box::new(plan(
            source,
            &args.references,
            args.store.concurrency,
            false,
            None,
        )?)),
        None => None,
    };
    Ok(FailuresOptions {
        batch_id: args.batch_id.clone(),
        references: args.references_file.clone(),
        source,
        store: store(&args.store)?,
        retry_file,
        api: api(&args.roboflow, &args.store.requests),
    })
}
