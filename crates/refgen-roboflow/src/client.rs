//! The HTTP client: one method per call of the contract.

use std::time::Duration;

use refgen_core::Secret;
use refgen_http::{Reject, RetryConfig, SendError, Transport};
use serde_json::{Value, json};

use crate::error::RoboflowError;
use crate::types::*;

const US: &str = "https://api.roboflow.com";
const EU: &str = "https://api.roboflow.eu";

/// Builds a [`Client`].
#[derive(Debug, Default)]
pub struct ClientBuilder {
    api_key: Option<Secret>,
    base: Option<String>,
    from_env: bool,
    retry: Option<RetryConfig>,
    backoff_base: Option<Duration>,
}

impl ClientBuilder {
    /// Reads nothing from the environment.
    pub fn new() -> Self {
        ClientBuilder::default()
    }

    /// Reads `ROBOFLOW_API_KEY`, `API_BASE_URL` and `ROBOFLOW_REGION` (`us`, `eu`).
    pub fn from_env() -> Self {
        ClientBuilder {
            from_env: true,
            ..ClientBuilder::default()
        }
    }

    /// The API key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(Secret::new(key));
        self
    }

    /// The API base URL.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base = Some(url.into());
        self
    }

    /// How calls are retried and timed out (see [`RetryConfig`]; 500 ms to 8 s
    /// between attempts by default).
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The first retry delay (500 ms by default); tests make it short.
    pub fn with_backoff_base(mut self, delay: Duration) -> Self {
        self.backoff_base = Some(delay);
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Client, RoboflowError> {
        let env = |k: &str| refgen_http::env_var(self.from_env, k);
        let api_key = self
            .api_key
            .map(|k| k.expose().to_owned())
            .or_else(|| env("ROBOFLOW_API_KEY"))
            .ok_or(RoboflowError::NoApiKey)?;
        // Known to the redaction step, so an API that echoes the request never shows it.
        refgen_core::redact::register(&api_key);
        let base = match (
            self.base,
            env("API_BASE_URL"),
            env("ROBOFLOW_REGION").map(|r| r.to_ascii_lowercase()),
        ) {
            (Some(b), _, _) | (None, Some(b), _) => b,
            (None, None, Some(r)) if r == "eu" => EU.to_owned(),
            (None, None, Some(r)) if r != "us" => {
                return Err(RoboflowError::Config(format!(
                    "ROBOFLOW_REGION `{r}` is not known (use us or eu)"
                )));
            }
            _ => US.to_owned(),
        };
        let parsed = url::Url::parse(&base)
            .map_err(|e| RoboflowError::Config(format!("the Roboflow API base URL `{base}` is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(RoboflowError::Config(format!(
                "the Roboflow API base URL `{base}` must be http(s)"
            )));
        }
        let base_delay = self.backoff_base.unwrap_or(Duration::from_millis(500));
        let retry = self.retry.unwrap_or_default().with_backoff(base_delay, base_delay * 16);
        let transport =
            Transport::new(retry).map_err(|e| RoboflowError::Config(format!("cannot start the HTTP client: {e}")))?;
        Ok(Client {
            transport,
            base: base.trim_end_matches('/').to_owned(),
            api_key,
        })
    }
}

/// A Roboflow API client.
pub struct Client {
    transport: Transport,
    base: String,
    api_key: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("api_key", &"** redacted **")
            .finish()
    }
}

/// The path of the references-ingest call for a batch, escaped as it is sent.
pub fn ingest_path(workspace: &str, batch_id: &str, kind: MediaKind) -> String {
    format!(
        "/data-staging/v1/external/{}/batches/{}/bulk-upload/{}",
        enc(workspace),
        enc(batch_id),
        kind.endpoint()
    )
}

/// The path of a job (to start it, or to read it), escaped as it is sent.
pub fn job_path(workspace: &str, job_id: &str) -> String {
    format!("/batch-processing/v1/external/{}/jobs/{}", enc(workspace), enc(job_id))
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Client {
    /// The API base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        doing: &str,
        timeout: Duration,
    ) -> Result<Value, RoboflowError> {
        self.call_with(method, path, query, Payload::from(body), doing, timeout)
            .await
    }

    async fn call_with(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Payload<'_>,
        doing: &str,
        timeout: Duration,
    ) -> Result<Value, RoboflowError> {
        let mut url = format!("{}{path}?api_key={}", self.base, enc(&self.api_key));
        for (k, v) in query {
            url.push_str(&format!("&{k}={}", enc(v)));
        }
        tracing::debug!(%path, "Roboflow request");
        // Every call is safe to repeat: reads are reads, and writes carry their own
        // id (ingestId, jobId), which the API treats as the same request again.
        let uploads = matches!(body, Payload::File { .. });
        let build = || async {
            let request = self.transport.client().request(method.clone(), &url);
            Ok(match &body {
                Payload::Empty => request,
                Payload::Json(body) => request.json(body),
                Payload::File { field, path, length } => {
                    // Opened afresh for each attempt: a retry sends the file from its start.
                    let file = tokio::fs::File::open(path)
                        .await
                        .map_err(|e| RoboflowError::Local(format!("cannot read {}: {e}", path.display())))?;
                    // Names go as browsers and Python's requests send them (HTML5):
                    // UTF-8 as it is, only a quote and line ends escaped.
                    let shown = html5_escaped(field);
                    let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::from(file), *length)
                        .file_name(shown.clone());
                    let form = reqwest::multipart::Form::new().percent_encode_noop().part(shown, part);
                    request.multipart(form)
                }
            })
        };
        let parse = |response: refgen_http::Response| {
            // Parsed as it came; only the message below is ever shown.
            let text = response.raw_text();
            let status = response.status;
            // An upload's answer says nothing refgen needs: its status is the answer.
            if response.is_success() && uploads {
                return Ok(Value::Null);
            }
            if response.is_success() {
                return serde_json::from_str(if text.trim().is_empty() { "{}" } else { &text }).map_err(|e| {
                    // A 2xx whose body does not parse was cut short: ask again.
                    Reject::Retry(RoboflowError::BadAnswer {
                        doing: doing.to_owned(),
                        cause: e.to_string(),
                    })
                });
            }
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| match &v["error"] {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_owned),
                    _ => v["message"].as_str().map(str::to_owned),
                })
                .unwrap_or_else(|| text.chars().take(300).collect::<String>().replace('\n', " "));
            let message = refgen_core::redact::redact(&message);
            Err(Reject::Fail(match status {
                401 => RoboflowError::Unauthorized(message),
                402 => RoboflowError::PaymentRequired(message),
                404 => RoboflowError::NotFound {
                    doing: doing.to_owned(),
                    message,
                },
                409 => RoboflowError::Conflict {
                    doing: doing.to_owned(),
                    message,
                },
                _ => RoboflowError::Api {
                    doing: doing.to_owned(),
                    status,
                    message,
                    attempts: 1,
                    elapsed: Duration::ZERO,
                },
            }))
        };
        self.transport
            .call(doing)
            .timeout(timeout)
            .send(build, parse)
            .await
            .map_err(|e| failed(e, &self.base, doing))
    }

    fn parse<T: serde::de::DeserializeOwned>(value: Value, doing: &str) -> Result<T, RoboflowError> {
        serde_json::from_value(value).map_err(|e| RoboflowError::BadAnswer {
            doing: doing.to_owned(),
            cause: e.to_string(),
        })
    }

    /// The workspace the key belongs to (`GET {base}?api_key=`).
    pub async fn workspace(&self) -> Result<String, RoboflowError> {
        let doing = "looking up the workspace of the API key";
        let v = self
            .call(reqwest::Method::GET, "", &[], None, doing, Duration::from_secs(60))
            .await?;
        v["workspace"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| RoboflowError::BadAnswer {
                doing: doing.into(),
                cause: "no `workspace` field".into(),
            })
    }

    /// The workspace to use: `given`, or else the API key's own ([`Client::workspace`]).
    pub async fn resolve_workspace(&self, given: Option<&str>) -> Result<String, RoboflowError> {
        match given {
            Some(workspace) => Ok(workspace.to_owned()),
            None => self.workspace().await,
        }
    }

    /// Creates (or adds to) a batch from references.
    pub async fn ingest(&self, workspace: &str, req: &IngestRequest) -> Result<IngestResponse, RoboflowError> {
        let (url_field, inline_field) = match req.kind {
            MediaKind::Images => ("imageReferencesURL", "imageReferences"),
            MediaKind::Videos => ("videoReferencesURL", "videoReferences"),
        };
        let mut body = serde_json::Map::new();
        match &req.references {
            References::Url(u) => body.insert(url_field.into(), json!(u)),
            References::Inline(refs) => body.insert(inline_field.into(), json!(refs)),
        };
        body.insert("ingestId".into(), json!(req.ingest_id));
        if let Some(n) = &req.notifications_url {
            body.insert("notificationsURL".into(), json!(n));
        }
        if !req.notification_categories.is_empty() {
            body.insert("notificationCategories".into(), json!(req.notification_categories));
        }
        let path = ingest_path(workspace, &req.batch_id, req.kind);
        let display = req.display_name.clone().unwrap_or_else(|| req.batch_id.clone());
        let doing = format!("ingesting references into batch `{}`", req.batch_id);
        let v = self
            .call(
                reqwest::Method::POST,
                &path,
                &[("displayName", display)],
                Some(&Value::Object(body)),
                &doing,
                Duration::from_secs(120),
            )
            .await?;
        Self::parse(v, &doing)
    }

    /// How many files the batch holds so far.
    pub async fn batch_count(&self, workspace: &str, batch_id: &str) -> Result<u64, RoboflowError> {
        let path = format!("{}/count", batch_path(workspace, batch_id));
        let doing = format!("counting batch `{batch_id}`");
        let v = self
            .call(reqwest::Method::GET, &path, &[], None, &doing, Duration::from_secs(60))
            .await?;
        v["count"].as_u64().ok_or(RoboflowError::BadAnswer {
            doing,
            cause: "no `count`".into(),
        })
    }

    /// Every shard of the batch (all pages).
    pub async fn shards(&self, workspace: &str, batch_id: &str) -> Result<Vec<Shard>, RoboflowError> {
        let path = format!("{}/shards", batch_path(workspace, batch_id));
        let doing = format!("listing the shards of batch `{batch_id}`");
        self.all_pages(&path, &[], "shards", &doing).await
    }

    /// One page of the workspace's batches (`token`: the previous page's).
    pub async fn batches_page(&self, workspace: &str, token: Option<&str>) -> Result<Page<Batch>, RoboflowError> {
        let path = format!("/data-staging/v1/external/{}/batches", enc(workspace));
        self.page(&path, &[], "batches", "listing the batches", token).await
    }

    /// A batch's details.
    pub async fn batch(&self, workspace: &str, batch_id: &str) -> Result<Batch, RoboflowError> {
        let doing = format!("reading batch `{batch_id}`");
        let v = self
            .call(
                reqwest::Method::GET,
                &batch_path(workspace, batch_id),
                &[],
                None,
                &doing,
                Duration::from_secs(60),
            )
            .await?;
        Self::parse(v["batch"].clone(), &doing)
    }

    /// One page of a request that answers `{field: [...], nextPageToken}`.
    async fn page<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        field: &str,
        doing: &str,
        token: Option<&str>,
    ) -> Result<Page<T>, RoboflowError> {
        let mut page_query = query.to_vec();
        page_query.push(("pageSize", PAGE_SIZE.to_string()));
        if let Some(t) = token {
            page_query.push(("nextPageToken", t.to_owned()));
        }
        let v = self
            .call(
                reqwest::Method::GET,
                path,
                &page_query,
                None,
                doing,
                Duration::from_secs(60),
            )
            .await?;
        let items = match &v[field] {
            // An empty listing may leave the field out.
            Value::Null => Vec::new(),
            items => Self::parse(items.clone(), doing)?,
        };
        let next_page_token = v["nextPageToken"].as_str().filter(|t| !t.is_empty()).map(str::to_owned);
        Ok(Page { items, next_page_token })
    }

    /// Follows `nextPageToken` through every page, collecting the array in `field`.
    async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        field: &str,
        doing: &str,
    ) -> Result<Vec<T>, RoboflowError> {
        collect_pages(usize::MAX, |token| async move {
            self.page(path, query, field, doing, token.as_deref()).await
        })
        .await
    }

    /// Starts a workflow job on a batch.
    pub async fn start_job(
        &self,
        workspace: &str,
        job_id: &str,
        batch_id: &str,
        kind: MediaKind,
        workflow_id: &str,
        options: &JobOptions,
    ) -> Result<(), RoboflowError> {
        let body = job_body(workspace, batch_id, kind, workflow_id, options);
        let path = job_path(workspace, job_id);
        let query: Vec<(&str, String)> = options.name.iter().map(|n| ("name", n.clone())).collect();
        let doing = format!("starting job `{job_id}`");
        self.call(
            reqwest::Method::POST,
            &path,
            &query,
            Some(&body),
            &doing,
            Duration::from_secs(60),
        )
        .await?;
        Ok(())
    }

    /// The job's state.
    pub async fn job(&self, workspace: &str, job_id: &str) -> Result<Job, RoboflowError> {
        let path = job_path(workspace, job_id);
        let doing = format!("reading job `{job_id}`");
        let v = self
            .call(reqwest::Method::GET, &path, &[], None, &doing, Duration::from_secs(60))
            .await?;
        Self::parse(v["job"].clone(), &doing)
    }

    /// The job's stages.
    pub async fn job_stages(&self, workspace: &str, job_id: &str) -> Result<Vec<Stage>, RoboflowError> {
        let path = format!("{}/stages", job_path(workspace, job_id));
        let doing = format!("reading the stages of job `{job_id}`");
        let v = self
            .call(reqwest::Method::GET, &path, &[], None, &doing, Duration::from_secs(60))
            .await?;
        Self::parse(v["stages"].clone(), &doing)
    }

    /// The parts of an (output) batch.
    pub async fn batch_parts(&self, workspace: &str, batch_id: &str) -> Result<Vec<BatchPart>, RoboflowError> {
        let path = format!("{}/parts", batch_path(workspace, batch_id));
        let doing = format!("listing the parts of batch `{batch_id}`");
        let v = self
            .call(reqwest::Method::GET, &path, &[], None, &doing, Duration::from_secs(60))
            .await?;
        Self::parse(v["batchParts"].clone(), &doing)
    }

    /// One page of a batch's files: of one part of a multipart (output) batch, or
    /// of a simple or sharded batch with no part.
    pub async fn files_page(
        &self,
        workspace: &str,
        batch_id: &str,
        part: Option<&str>,
        token: Option<&str>,
    ) -> Result<Page<FileMetadata>, RoboflowError> {
        let path = format!("{}/list", batch_path(workspace, batch_id));
        let doing = format!("listing the files of batch `{batch_id}`");
        let query: Vec<(&str, String)> = part.iter().map(|p| ("partName", (*p).to_owned())).collect();
        self.page(&path, &query, "filesMetadata", &doing, token).await
    }

    /// One page of the workspace's jobs (`token`: the previous page's).
    pub async fn jobs_page(&self, workspace: &str, token: Option<&str>) -> Result<Page<Job>, RoboflowError> {
        let path = format!("/batch-processing/v1/external/{}/jobs", enc(workspace));
        self.page(&path, &[], "jobs", "listing the jobs", token).await
    }

    /// Every task of a job's stage (all pages).
    pub async fn stage_tasks(&self, workspace: &str, job_id: &str, stage_id: &str) -> Result<Vec<Task>, RoboflowError> {
        let path = format!("{}/stages/{}/tasks", job_path(workspace, job_id), enc(stage_id));
        let doing = format!("listing the tasks of stage `{stage_id}` of job `{job_id}`");
        self.all_pages(&path, &[], "tasks", &doing).await
    }

    /// Stops a running job (`POST …/abort`, no body).
    pub async fn abort_job(&self, workspace: &str, job_id: &str) -> Result<(), RoboflowError> {
        let path = format!("{}/abort", job_path(workspace, job_id));
        let doing = format!("aborting job `{job_id}`");
        self.call(reqwest::Method::POST, &path, &[], None, &doing, Duration::from_secs(60))
            .await?;
        Ok(())
    }

    /// Starts a job again, with what `options` overrides (no body when nothing).
    pub async fn restart_job(
        &self,
        workspace: &str,
        job_id: &str,
        options: &RestartOptions,
    ) -> Result<(), RoboflowError> {
        let path = format!("{}/restart", job_path(workspace, job_id));
        let doing = format!("restarting job `{job_id}`");
        let body = options.body();
        self.call(
            reqwest::Method::POST,
            &path,
            &[],
            body.as_ref(),
            &doing,
            Duration::from_secs(60),
        )
        .await?;
        Ok(())
    }

    /// One page of a job's logs, of `severity` and above when given.
    pub async fn job_logs_page(
        &self,
        workspace: &str,
        job_id: &str,
        severity: Option<Severity>,
        token: Option<&str>,
    ) -> Result<Page<LogEntry>, RoboflowError> {
        let path = format!("{}/logs", job_path(workspace, job_id));
        let doing = format!("reading the logs of job `{job_id}`");
        let query: Vec<(&str, String)> = severity.iter().map(|s| ("severity", s.as_str().to_owned())).collect();
        self.page(&path, &query, "logs", &doing, token).await
    }

    /// Uploads one image into a batch (`POST …/upload/image`, multipart, the file
    /// part named after the file), which makes or adds to a simple batch.
    pub async fn upload_image(
        &self,
        workspace: &str,
        batch_id: &str,
        display_name: &str,
        name: &str,
        path: &std::path::Path,
        length: u64,
    ) -> Result<(), RoboflowError> {
        let route = format!("{}/upload/image", batch_path(workspace, batch_id));
        let doing = format!("uploading {name} into batch `{batch_id}`");
        let query = [("displayName", display_name.to_owned()), ("fileName", name.to_owned())];
        let body = Payload::File {
            field: name,
            path,
            length,
        };
        self.call_with(
            reqwest::Method::POST,
            &route,
            &query,
            body,
            &doing,
            upload_timeout(length),
        )
        .await?;
        Ok(())
    }

    /// A signed URL to PUT one tar archive of images to (`POST …/bulk-upload/image-files`).
    pub async fn bulk_upload_url(
        &self,
        workspace: &str,
        batch_id: &str,
        display_name: &str,
    ) -> Result<SignedUpload, RoboflowError> {
        let route = format!("{}/bulk-upload/image-files", batch_path(workspace, batch_id));
        let doing = format!("asking where to upload images into batch `{batch_id}`");
        self.signed_upload(&route, &[("displayName", display_name.to_owned())], &doing)
            .await
    }

    /// A signed URL to PUT one video to (`POST …/upload/video`).
    pub async fn video_upload_url(
        &self,
        workspace: &str,
        batch_id: &str,
        display_name: &str,
        name: &str,
    ) -> Result<SignedUpload, RoboflowError> {
        let route = format!("{}/upload/video", batch_path(workspace, batch_id));
        let doing = format!("asking where to upload {name} into batch `{batch_id}`");
        let query = [("displayName", display_name.to_owned()), ("fileName", name.to_owned())];
        self.signed_upload(&route, &query, &doing).await
    }

    /// `POST route` (no body), answered with a signed upload URL and its headers.
    async fn signed_upload(
        &self,
        route: &str,
        query: &[(&str, String)],
        doing: &str,
    ) -> Result<SignedUpload, RoboflowError> {
        let v = self
            .call(
                reqwest::Method::POST,
                route,
                query,
                None,
                doing,
                Duration::from_secs(60),
            )
            .await?;
        signed_upload(v, doing)
    }

    /// PUTs the file at `path` to a signed upload URL with exactly its headers,
    /// through the transport: each attempt sends the file whole, from its start
    /// (a PUT replaces the object, so a repeat is harmless).
    pub async fn put_signed(
        &self,
        upload: &SignedUpload,
        path: &std::path::Path,
        doing: &str,
    ) -> Result<(), RoboflowError> {
        let length = std::fs::metadata(path)
            .map_err(|e| RoboflowError::Local(format!("cannot read {}: {e}", path.display())))?
            .len();
        let host = url::Url::parse(&upload.upload_url)
            .map(|u| refgen_http::origin(&u))
            .unwrap_or_else(|_| "the upload URL".to_owned());
        self.transport
            .call(doing)
            .timeout(upload_timeout(length))
            .send(
                || async {
                    let file = tokio::fs::File::open(path)
                        .await
                        .map_err(|e| RoboflowError::Local(format!("cannot read {}: {e}", path.display())))?;
                    let mut request = self
                        .transport
                        .client()
                        .put(&upload.upload_url)
                        // The length is told, so the body is not sent chunked: signed
                        // upload URLs want it.
                        .header(reqwest::header::CONTENT_LENGTH, length)
                        .body(reqwest::Body::from(file));
                    for (name, value) in &upload.extension_headers {
                        request = request.header(name.as_str(), value.as_str());
                    }
                    Ok(request)
                },
                |response| match response.status {
                    200..=299 => Ok(()),
                    status => Err(Reject::Fail(RoboflowError::Api {
                        doing: doing.to_owned(),
                        status,
                        message: refgen_core::redact::redact(
                            &response.text().chars().take(200).collect::<String>().replace('\n', " "),
                        ),
                        attempts: 1,
                        elapsed: Duration::ZERO,
                    })),
                },
            )
            .await
            .map_err(|e| failed(e, &host, doing))
    }

    /// Downloads one file of a batch (a plain GET of its download URL) into `path`,
    /// streamed, through the shared transport: a download cut short is fetched again.
    pub async fn download_to(&self, url: &str, path: &std::path::Path) -> Result<(), RoboflowError> {
        let doing = "downloading a batch file";
        self.transport
            .call(doing)
            .timeout(Duration::from_secs(300))
            .into_file(path, None)
            .send(
                || async { Ok(self.transport.client().get(url)) },
                |response| match response.status {
                    200..=299 => Ok(()),
                    status => Err(Reject::Fail(RoboflowError::Api {
                        doing: doing.into(),
                        status,
                        message: response.text().chars().take(200).collect(),
                        attempts: 1,
                        elapsed: Duration::ZERO,
                    })),
                },
            )
            .await
            .map_err(|e| failed(e, "the file's download URL", doing))
    }
}

/// The items of the pages `page` fetches (given the previous page's token), page
/// after page until the last or until `limit` items are in (the page that
/// reaches it is the last one asked for).
pub async fn collect_pages<T, F, Fut>(limit: usize, mut page: F) -> Result<Vec<T>, RoboflowError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, RoboflowError>>,
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    while items.len() < limit {
        let got = page(token.clone()).await?;
        let next = got.next_after(token.as_deref());
        items.extend(got.items);
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    items.truncate(limit);
    Ok(items)
}

/// A request body: none, JSON, or one file as a multipart form.
enum Payload<'a> {
    Empty,
    Json(&'a Value),
    File {
        /// The part's field and file name.
        field: &'a str,
        path: &'a std::path::Path,
        length: u64,
    },
}

impl<'a> From<Option<&'a Value>> for Payload<'a> {
    fn from(body: Option<&'a Value>) -> Self {
        body.map_or(Payload::Empty, Payload::Json)
    }
}

/// A multipart field or file name as HTML5 forms write it: `"`, CR and LF as
/// `%22`, `%0D`, `%0A`, everything else as it is.
fn html5_escaped(name: &str) -> String {
    name.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

/// One upload's time: two minutes, and a minute more per started 8 MiB.
fn upload_timeout(bytes: u64) -> Duration {
    Duration::from_secs(120 + 60 * (bytes / (8 << 20)))
}

/// `{"signedURLDetails": {"uploadURL", "extensionHeaders"}}`, checked.
fn signed_upload(v: Value, doing: &str) -> Result<SignedUpload, RoboflowError> {
    let details = &v["signedURLDetails"];
    let bad = |cause: &str| RoboflowError::BadAnswer {
        doing: doing.to_owned(),
        cause: cause.to_owned(),
    };
    let upload_url = details["uploadURL"]
        .as_str()
        .ok_or_else(|| bad("no signedURLDetails.uploadURL"))?;
    let parsed = url::Url::parse(upload_url).map_err(|_| bad("signedURLDetails.uploadURL is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("signedURLDetails.uploadURL is not http(s)"));
    }
    let mut extension_headers = Vec::new();
    match &details["extensionHeaders"] {
        Value::Null => {}
        Value::Object(headers) => {
            for (name, value) in headers {
                let value = value
                    .as_str()
                    .ok_or_else(|| bad("an extension header is not a string"))?;
                extension_headers.push((name.clone(), value.to_owned()));
            }
        }
        _ => return Err(bad("signedURLDetails.extensionHeaders is not an object")),
    }
    Ok(SignedUpload {
        upload_url: upload_url.to_owned(),
        extension_headers,
    })
}

/// Items asked for per page of a listing.
const PAGE_SIZE: u32 = 100;

/// The path of a batch, escaped as it is sent.
fn batch_path(workspace: &str, batch_id: &str) -> String {
    format!("/data-staging/v1/external/{}/batches/{}", enc(workspace), enc(batch_id))
}

/// A call that failed for good, with the attempts and time the transport spent
/// (`base` names where it went, without the key).
fn failed(e: SendError<RoboflowError>, base: &str, doing: &str) -> RoboflowError {
    match e {
        SendError::Answer {
            error: RoboflowError::Api {
                doing, status, message, ..
            },
            attempts,
            elapsed,
        } => RoboflowError::Api {
            doing,
            status,
            message,
            attempts,
            elapsed,
        },
        SendError::Answer { error, .. } | SendError::Build(error) => error,
        SendError::Transport {
            fault,
            attempts,
            elapsed,
            ..
        } => RoboflowError::Transport {
            base: base.to_owned(),
            doing: doing.to_owned(),
            cause: fault.to_string(),
            attempts,
            elapsed,
        },
    }
}

/// The body of the request that starts a job on a batch (what `start_job` sends;
/// a dry run prints it).
pub fn job_body(workspace: &str, batch_id: &str, kind: MediaKind, workflow_id: &str, options: &JobOptions) -> Value {
    let mut compute = json!({"type": "compute-configuration-v2"});
    if let Some(m) = &options.machine_type {
        compute["machineType"] = json!(m);
    }
    if let Some(w) = options.workers_per_machine {
        compute["workersPerMachine"] = json!(w);
    }
    let mut spec = json!({"type": "workflows-processing-specification-v1", "workspace": workspace,
        "workflowId": workflow_id, "persistImagesOutputs": options.persist_images_outputs});
    if !options.images_outputs_to_be_persisted.is_empty() {
        spec["imagesOutputsToBePersisted"] = json!(options.images_outputs_to_be_persisted);
    }
    if !options.images_metadata_inputs_mapping.is_empty() {
        let mapping: serde_json::Map<String, Value> = options
            .images_metadata_inputs_mapping
            .iter()
            .map(|(input, field)| (input.clone(), json!(field)))
            .collect();
        spec["imagesMetadataInputsMapping"] = Value::Object(mapping);
    }
    if let Some(p) = &options.workflow_parameters {
        spec["workflowParameters"] = p.clone();
    }
    if let Some(n) = &options.image_input_name {
        spec["imageInputName"] = json!(n);
    }
    if let Some(f) = &options.aggregation_format {
        spec["aggregationFormat"] = json!(f);
    }
    if let (Some(fps), MediaKind::Videos) = (options.max_video_fps, kind) {
        spec["maxVideoFPS"] = json!(fps);
    }
    let job_type = match kind {
        MediaKind::Images => "simple-image-processing-v1",
        MediaKind::Videos => "simple-video-processing-v1",
    };
    let mut input = json!({"type": "staging-batch-input-v1", "batchId": batch_id});
    if let Some(part) = &options.part_name {
        input["partName"] = json!(part);
    }
    if let Some(part) = &options.images_metadata_part {
        input["imagesMetadataPart"] = json!(part);
    }
    let mut body = json!({"type": job_type, "jobInput": input,
        "computeConfiguration": compute, "processingSpecification": spec});
    if let Some(backend) = &options.inference_backend {
        body["inferenceBackend"] = json!(backend);
    }
    if let Some(t) = options.processing_timeout_seconds {
        body["processingTimeoutSeconds"] = json!(t);
    }
    if let Some(t) = options.max_parallel_tasks {
        body["maxParallelTasks"] = json!(t);
    }
    if let (Some(r), MediaKind::Images) = (options.max_image_failure_rate, kind) {
        body["maxImageFailureRate"] = json!(r);
    }
    if let Some(n) = &options.notifications_url {
        body["notificationsURL"] = json!(n);
    }
    body
}
