//! A workspace's jobs: listed, shown with their stages' tasks counted by
//! status, aborted, restarted, and their logs read a page at a time.

use std::collections::BTreeMap;

use refgen_roboflow::{Client, Job, LogEntry, RestartOptions, Severity, Stage, collect_pages};
use serde::Serialize;

use crate::Error;

/// A job's state in one word: `running`, `failing`, `succeeded` or `failed`.
pub fn state(job: &Job) -> &'static str {
    match (job.is_terminal, job.error) {
        (true, true) => "failed",
        (true, false) => "succeeded",
        (false, true) => "failing",
        (false, false) => "running",
    }
}

/// Up to `limit` jobs of `workspace`, a page at a time.
pub async fn list(client: &Client, workspace: &str, limit: Option<usize>) -> Result<Vec<Job>, Error> {
    Ok(collect_pages(limit.unwrap_or(usize::MAX), |token| async move {
        client.jobs_page(workspace, token.as_deref()).await
    })
    .await?)
}

/// A stage of a job, with its tasks counted by status.
#[derive(Debug, Clone, Serialize)]
pub struct StageDetails {
    /// The stage, as the API describes it.
    #[serde(flatten)]
    pub stage: Stage,
    /// Its tasks by status type.
    #[serde(rename = "tasksByStatus")]
    pub tasks_by_status: BTreeMap<String, u64>,
}

/// A job, whole. Serialized, it is `refgen jobs show --json`'s document.
#[derive(Debug, Clone, Serialize)]
pub struct JobDetails {
    /// The job.
    pub job: Job,
    /// Its [`state`].
    pub state: &'static str,
    /// Its stages.
    pub stages: Vec<StageDetails>,
}

/// The job `job_id` of `workspace`, with its stages and their tasks by status.
///
/// ```no_run
/// # async fn go() -> Result<(), refgen::Error> {
/// let (client, workspace) = refgen::api::ApiOptions::default().connect().await?;
/// let job = refgen::jobs::show(&client, &workspace, "my-job").await?;
/// for stage in &job.stages {
///     println!("{}: {:?}", stage.stage.name, stage.tasks_by_status);
/// }
/// # Ok(())
/// # }
/// ```
pub async fn show(client: &Client, workspace: &str, job_id: &str) -> Result<JobDetails, Error> {
    refgen_roboflow::validate_job_id(job_id)?;
    let job = client.job(workspace, job_id).await?;
    let mut stages = Vec::new();
    for stage in client.job_stages(workspace, job_id).await? {
        let mut tasks_by_status = BTreeMap::new();
        for task in client.stage_tasks(workspace, job_id, &stage.id).await? {
            *tasks_by_status.entry(task.status_type).or_default() += 1;
        }
        stages.push(StageDetails { stage, tasks_by_status });
    }
    Ok(JobDetails {
        state: state(&job),
        job,
        stages,
    })
}

/// Asks Roboflow to abort the job.
pub async fn abort(client: &Client, workspace: &str, job_id: &str) -> Result<(), Error> {
    refgen_roboflow::validate_job_id(job_id)?;
    Ok(client.abort_job(workspace, job_id).await?)
}

/// Asks Roboflow to restart the job, with `options` overriding its settings
/// (no body when nothing is overridden).
pub async fn restart(client: &Client, workspace: &str, job_id: &str, options: &RestartOptions) -> Result<(), Error> {
    refgen_roboflow::validate_job_id(job_id)?;
    Ok(client.restart_job(workspace, job_id, options).await?)
}

/// Reads the job's logs a page at a time, handing each page to `page` as it
/// comes (a long log starts showing at once).
pub async fn logs(
    client: &Client,
    workspace: &str,
    job_id: &str,
    severity: Option<Severity>,
    mut page: impl FnMut(&[LogEntry]) -> Result<(), Error>,
) -> Result<(), Error> {
    refgen_roboflow::validate_job_id(job_id)?;
    let mut token: Option<String> = None;
    loop {
        let got = client
            .job_logs_page(workspace, job_id, severity, token.as_deref())
            .await?;
        page(&got.items)?;
        match got.next_after(token.as_deref()) {
            Some(t) => token = Some(t),
            None => return Ok(()),
        }
    }
}
