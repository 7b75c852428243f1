//! Submitting references to Roboflow Batch Processing, as a library: checking a
//! references file, the ingest ids, inline chunks or an uploaded file's signed
//! URL, and waiting for ingestion and a job as streams of events.
//!
//! [`run`] is the whole submission in order, as `refgen submit` runs it; a caller
//! that wants another order uses the pieces the same way. Nothing here reads a references file whole: it is checked and
//! chunked line by line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{self, BoxStream, StreamExt};
use refgen_core::ObjectMeta;
use refgen_core::filter::MediaPreset;
use refgen_roboflow::{Client, IngestRequest, Job, MediaKind, Reference, References, Shard};

use crate::Error;
use crate::store::Store;

mod workflow;

pub use workflow::{JobRequest, Outcome, SubmitEvent, SubmitOptions, SubmitReferences, SubmitReport, run};

/// A references file, checked: every line a `{name, url}` object with a URL
/// Roboflow can fetch, names unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferencesFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its references.
    pub count: u64,
    /// What they are: given, or told from every name's extension.
    pub kind: MediaKind,
    /// Whether the kind was told from the names rather than given.
    pub kind_inferred: bool,
}

/// Reads and checks the references file at `path`, line by line; blank lines are
/// ignored. With no `kind`, it is told from the names, when they all agree.
pub fn inspect_references(path: &Path, kind: Option<MediaKind>) -> Result<ReferencesFile, Error> {
    let (mut count, mut images, mut videos) = (0u64, 0u64, 0u64);
    // Names must be unique in a batch; the map costs about a name's length per line.
    let mut names = HashMap::new();
    let mut warned_http = false;
    for line in crate::references::lines(path)? {
        let line = line?;
        let n = line.number - 1;
        let bad = |reason: String| Error::References {
            path: path.to_owned(),
            line: n + 1,
            reason,
        };
        let r = line.reference(path)?;
        match fetchable(&r.url) {
            Ok(true) if !std::mem::replace(&mut warned_http, true) => tracing::warn!(
                "{} line {}: plain http on a local server; Roboflow itself only fetches https URLs",
                path.display(),
                n + 1
            ),
            Ok(_) => {}
            Err(why) => return Err(bad(format!("the url {why}"))),
        }
        if MediaPreset::Images.matches(&r.name) {
            images += 1;
        } else if MediaPreset::Videos.matches(&r.name) {
            videos += 1;
        }
        if let Some(&first) = names.get(&r.name) {
            return Err(bad(format!(
                "the name `{}` is already used on line {first}: names must be unique in a batch",
                r.name
            )));
        }
        names.insert(r.name, n + 1);
        count += 1;
    }
    if count == 0 {
        return Err(Error::NoReferences { path: path.to_owned() });
    }
    let (kind, kind_inferred) = match kind {
        Some(kind) => (kind, false),
        // Only when every name says it: a file of images and notes is not told to be images.
        None if images == count => (MediaKind::Images, true),
        None if videos == count => (MediaKind::Videos, true),
        None => {
            return Err(Error::UnknownKind {
                path: path.to_owned(),
                images,
                videos,
                others: count - images - videos,
            });
        }
    };
    Ok(ReferencesFile {
        path: path.to_owned(),
        count,
        kind,
        kind_inferred,
    })
}

/// Whether Roboflow can fetch `url`: https, or plain http on this machine (the
/// local test servers), for which `Ok(true)` asks for a warning. The error says why not.
pub fn fetchable(url: &str) -> Result<bool, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
    match parsed.scheme() {
        "https" => Ok(false),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(true),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(true),
            Some(url::Host::Domain("localhost")) => Ok(true),
            host => Err(format!(
                "is plain http ({}); Roboflow only fetches https URLs",
                host.map(|h| h.to_string()).unwrap_or_default()
            )),
        },
        other => Err(format!("is a {other}: URL; Roboflow only fetches https URLs")),
    }
}

/// A URL without its query, so without its signature: for output and logs.
pub fn without_signature(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

/// The ingest id refgen uses when none is given: the batch id and the time, so
/// a rerun is a new ingest and a retried request (same id) is not.
pub fn default_ingest_id(batch_id: &str, at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{batch_id}-{secs}")
}

/// [`default_ingest_id`] followed by a digest of the references files: two
/// submissions into one batch in the same second (the parts of a sharded run,
/// say) then get ids of their own, where equal ids would make the second look
/// like a repeat of the first and be dropped; a retry of the same file keeps its id.
pub fn default_ingest_id_for(batch_id: &str, at: SystemTime, references: &[PathBuf]) -> Result<String, Error> {
    let mut digest = xxhash_rust::xxh3::Xxh3::new();
    let mut buffer = vec![0u8; 64 * 1024];
    for path in references {
        let unreadable = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(unreadable)?;
        loop {
            let n = std::io::Read::read(&mut file, &mut buffer).map_err(unreadable)?;
            if n == 0 {
                break;
            }
            digest.update(&buffer[..n]);
        }
    }
    Ok(format!(
        "{}-{:08x}",
        default_ingest_id(batch_id, at),
        digest.digest() as u32
    ))
}

/// What every ingest request of one submission shares.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The batch.
    pub batch_id: String,
    /// Its display name (the batch id if none).
    pub display_name: Option<String>,
    /// Images or videos.
    pub kind: MediaKind,
    /// Request `i` has the ingest id `{base_ingest_id}-{i}`.
    pub base_ingest_id: String,
    /// Where Roboflow posts notifications.
    pub notifications_url: Option<String>,
    /// Which notifications.
    pub notification_categories: Vec<String>,
}

impl Submission {
    /// The `i`-th ingest request, carrying `references`.
    pub fn request(&self, i: usize, references: References) -> IngestRequest {
        IngestRequest {
            kind: self.kind,
            batch_id: self.batch_id.clone(),
            display_name: self.display_name.clone(),
            references,
            ingest_id: format!("{}-{i}", self.base_ingest_id),
            notifications_url: self.notifications_url.clone(),
            notification_categories: self.notification_categories.clone(),
        }
    }
}

/// How many inline requests `count` references take at `limit` each.
pub fn inline_request_count(count: u64, limit: usize) -> usize {
    usize::try_from(count.div_ceil(limit.max(1) as u64)).unwrap_or(usize::MAX)
}

/// The references of a (checked) file, `limit` at a time, read as they are asked for.
pub fn inline_chunks(
    path: &Path,
    limit: usize,
) -> Result<impl Iterator<Item = Result<Vec<Reference>, Error>> + use<>, Error> {
    let owned = path.to_owned();
    let mut lines = crate::references::lines(path)?;
    let limit = limit.max(1);
    Ok(std::iter::from_fn(move || {
        let mut chunk = Vec::new();
        for line in lines.by_ref() {
            match line.and_then(|line| line.reference(&owned)) {
                Ok(r) => chunk.push(Reference {
                    name: r.name,
                    url: r.url,
                }),
                Err(e) => return Some(Err(e)),
            }
            if chunk.len() == limit {
                break;
            }
        }
        (!chunk.is_empty()).then_some(Ok(chunk))
    }))
}

/// Uploads the references file to `key` in `store` (unless `dry_run`) and signs
/// a GET URL for it, checked to be one Roboflow can fetch.
pub async fn upload_references(
    store: &Store,
    key: &str,
    path: &Path,
    expires_in: Duration,
    dry_run: bool,
) -> Result<String, Error> {
    if !dry_run {
        store.uploader().upload_file(key, path, "application/x-ndjson").await?;
    }
    let object = ObjectMeta {
        key: key.to_owned(),
        size: 0,
        last_modified: None,
        archived: false,
        superseded: false,
        folder: false,
        version: None,
        customer_key: false,
    };
    let url = store
        .signer()
        .sign_page(std::slice::from_ref(&object), expires_in)
        .await?
        .pop()
        .ok_or_else(|| Error::ReferencesUrl("was not signed".into()))?;
    if fetchable(&url).map_err(Error::ReferencesUrl)? {
        tracing::warn!("the references URL is plain http on a local server: Roboflow itself only fetches https URLs");
    }
    Ok(url)
}

/// What waiting for ingestion sees.
#[derive(Debug, Clone)]
pub enum IngestEvent {
    /// So many of the expected references are in the batch (more to come).
    Progress {
        /// In the batch so far.
        ingested: u64,
        /// Submitted.
        expected: u64,
    },
    /// A shard failed: the batch will not complete. The last event.
    ShardFailed(Shard),
    /// Every reference is in the batch. The last event.
    Ingested {
        /// In the batch.
        count: u64,
        /// Submitted.
        expected: u64,
    },
}

/// Polls the batch every `poll` until it holds `expected` references or a shard
/// fails; the stream ends after that event. A deadline is the caller's (a
/// timeout around each `next`), so the wait lasts exactly as long as it allows.
pub fn ingest_events<'a>(
    client: &'a Client,
    workspace: &'a str,
    batch_id: &'a str,
    expected: u64,
    poll: Duration,
) -> BoxStream<'a, Result<IngestEvent, Error>> {
    stream::unfold(Some(false), move |state| async move {
        let waited = state?;
        if waited {
            tokio::time::sleep(poll).await;
        }
        let event = async {
            let count = client.batch_count(workspace, batch_id).await?;
            let shards = client.shards(workspace, batch_id).await?;
            Ok::<_, Error>(match shards.into_iter().find(Shard::failed) {
                Some(bad) => IngestEvent::ShardFailed(bad),
                None if count >= expected => IngestEvent::Ingested { count, expected },
                None => IngestEvent::Progress {
                    ingested: count,
                    expected,
                },
            })
        }
        .await;
        let next = match &event {
            Ok(IngestEvent::Progress { .. }) => Some(true),
            _ => None,
        };
        Some((event, next))
    })
    .boxed()
}

/// What waiting for a job sees.
#[derive(Debug, Clone)]
pub enum JobEvent {
    /// The job entered a stage with this many tasks.
    Stage {
        /// The stage's name.
        name: String,
        /// Its tasks.
        tasks: u64,
    },
    /// The job ended well. The last event.
    Succeeded(Job),
    /// The job ended in an error. The last event.
    Failed(Job),
}

/// Polls the job every `poll` until it ends, with an event per new stage; the
/// stream ends after the job's last event. A deadline is the caller's.
pub fn job_events<'a>(
    client: &'a Client,
    workspace: &'a str,
    job_id: &'a str,
    poll: Duration,
) -> BoxStream<'a, Result<JobEvent, Error>> {
    struct Polling {
        /// Whether to wait before the next poll (not before the first).
        wait: bool,
        /// The stage last reported.
        stage: String,
        /// An answer still to look at for its end (after reporting its stage).
        pending: Option<Job>,
    }
    let start = Polling {
        wait: false,
        stage: String::new(),
        pending: None,
    };
    stream::unfold(Some(start), move |state| async move {
        let mut state = state?;
        loop {
            let job = match state.pending.take() {
                Some(job) => job,
                None => {
                    if std::mem::replace(&mut state.wait, true) {
                        tokio::time::sleep(poll).await;
                    }
                    match client.job(workspace, job_id).await {
                        Ok(job) => job,
                        Err(e) => return Some((Err(e.into()), None)),
                    }
                }
            };
            let stage = job.current_stage.clone().unwrap_or_default();
            if stage != state.stage && !stage.is_empty() {
                let tasks = match client.job_stages(workspace, job_id).await {
                    Ok(stages) => stages.iter().filter(|s| s.name == stage).map(|s| s.tasks).sum(),
                    Err(e) => return Some((Err(e.into()), None)),
                };
                state.stage.clone_from(&stage);
                state.pending = Some(job);
                return Some((Ok(JobEvent::Stage { name: stage, tasks }), Some(state)));
            }
            if job.is_terminal {
                let event = if job.error {
                    JobEvent::Failed(job)
                } else {
                    JobEvent::Succeeded(job)
                };
                return Some((Ok(event), None));
            }
        }
    })
    .boxed()
}

/// Downloads every file of the job's export stage's output batches into `dir`
/// (a subfolder per batch when there are several), as [`crate::export`] does:
/// resumably, a folder per part. Returns the files, relative to `dir`.
pub async fn download_results(
    client: &Client,
    workspace: &str,
    job_id: &str,
    dir: &Path,
) -> Result<Vec<PathBuf>, Error> {
    let stages = client.job_stages(workspace, job_id).await?;
    let batches: Vec<String> = stages
        .iter()
        .filter(|s| s.name == "export")
        .flat_map(|s| s.output_batches.clone())
        .collect();
    if batches.is_empty() {
        return Err(Error::NoResults { job_id: job_id.into() });
    }
    let mut written = Vec::new();
    for batch in &batches {
        let (into, prefix) = match batches.len() {
            1 => (dir.to_owned(), PathBuf::new()),
            _ => (dir.join(batch), PathBuf::from(batch)),
        };
        let options = crate::export::ExportOptions::default();
        let summary = crate::export::export_batch(client, workspace, batch, &into, &options, None).await?;
        written.extend(summary.paths.into_iter().map(|p| prefix.join(p)));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use refgen_core::Hint;

    fn file(lines: &[&str]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        for l in lines {
            writeln!(f, "{l}").expect("writes");
        }
        f
    }

    #[test]
    fn a_references_file_is_checked_line_by_line_and_its_kind_told_from_the_names() {
        let f = file(&[
            r#"{"name":"a.jpg","url":"https://x/a.jpg?sig=1"}"#,
            "",
            r#"{"name":"b.png","url":"https://x/b.png?sig=1"}"#,
        ]);
        let checked = inspect_references(f.path(), None).expect("checks");
        assert_eq!(
            (checked.count, checked.kind, checked.kind_inferred),
            (2, MediaKind::Images, true)
        );
        let given = inspect_references(f.path(), Some(MediaKind::Videos)).expect("checks");
        assert_eq!((given.kind, given.kind_inferred), (MediaKind::Videos, false));
        // One name that is neither: the kind is not told, it is asked for.
        let mixed = file(&[
            r#"{"name":"a.jpg","url":"https://x/a.jpg?sig=1"}"#,
            r#"{"name":"notes.txt","url":"https://x/notes.txt?sig=1"}"#,
        ]);
        let err = inspect_references(mixed.path(), None).expect_err("ambiguous");
        assert!(
            err.to_string().contains("1 image names, 0 video names, 1 others"),
            "{err}"
        );
        assert_eq!(err.hint(), Some(Hint::ChooseMediaKind));
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        let cases: [(&[&str], &str); 5] = [
            (&[r#"{"name":"a.jpg"}"#], "line 1: not a JSON object"),
            (
                &[r#"{"name":"a.jpg","url":"http://example.com/a"}"#],
                "line 1: the url is plain http",
            ),
            (&[r#"{"name":"a.jpg","url":"ftp://x/a"}"#], "is a ftp: URL"),
            (
                &[
                    r#"{"name":"a.jpg","url":"https://x/1"}"#,
                    r#"{"name":"a.jpg","url":"https://x/2"}"#,
                ],
                "line 2: the name `a.jpg` is already used on line 1",
            ),
            (
                &[
                    r#"{"name":"a.jpg","url":"https://x/1"}"#,
                    r#"{"name":"b.mp4","url":"https://x/2"}"#,
                ],
                "cannot tell",
            ),
        ];
        for (lines, expected) in cases {
            let err = inspect_references(file(lines).path(), None).expect_err("refused");
            assert!(err.to_string().contains(expected), "{err} (wanted {expected})");
        }
        let err = inspect_references(file(&["", " "]).path(), None).expect_err("empty");
        assert!(matches!(err, Error::NoReferences { .. }), "{err}");
    }

    #[test]
    fn inline_chunks_hold_at_most_the_limit_and_every_reference_once() {
        let lines: Vec<String> = (0..7)
            .map(|i| format!(r#"{{"name":"{i}.jpg","url":"https://x/{i}"}}"#))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let f = file(&refs);
        let chunks: Vec<Vec<Reference>> = inline_chunks(f.path(), 3)
            .expect("opens")
            .collect::<Result<_, _>>()
            .expect("reads");
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 3, 1]);
        assert_eq!(inline_request_count(7, 3), 3);
        let names: Vec<&str> = chunks.iter().flatten().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["0.jpg", "1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg", "6.jpg"]);
    }

    #[test]
    fn ingest_ids_number_the_requests_of_one_submission() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let submission = Submission {
            batch_id: "b1".into(),
            display_name: None,
            kind: MediaKind::Images,
            base_ingest_id: default_ingest_id("b1", at),
            notifications_url: None,
            notification_categories: Vec::new(),
        };
        let ids: Vec<String> = (0..2)
            .map(|i| submission.request(i, References::Inline(Vec::new())).ingest_id)
            .collect();
        assert_eq!(ids, ["b1-1700000000-0", "b1-1700000000-1"]);
        assert_eq!(without_signature("https://h/k?X-Amz-Signature=s"), "https://h/k");
    }
}
