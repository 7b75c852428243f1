//! Local files into a batch: the other two ways in that Roboflow offers, beside
//! signed-URL references (the contract's "Local files").
//!
//! - **Images, a few** (at most [`SINGLE_MAX`]): one `POST …/upload/image` each
//!   (multipart), which makes a *simple* batch.
//! - **Images, more**: tar archives of at most [`SHARD_DEFAULT`] images (the
//!   member names are the files' names), each `PUT` to a signed URL that
//!   `POST …/bulk-upload/image-files` hands out, with exactly its headers; a
//!   *sharded* batch. With a webhook, each archive carries
//!   `notification_config.json` (its ingest id and the webhook).
//! - **Videos**: `POST …/upload/video` for a signed URL, then `PUT` the video.
//!
//! A batch made one way cannot take the other, so an existing batch decides the
//! mode, and a mode asked for that does not fit it is refused before anything
//! is sent. Names are made from the files' keys as a bucket's would be (see
//! [`refgen_core::local`]): unique, whatever the folders hold.
//!
//! Uploads run several at once; every request goes through the shared transport
//! (retries, timeouts; a PUT sends its file whole again on each attempt). Each
//! upload the service confirmed is appended to a small state file (outside the
//! source folders: the user's state folder, or one given), so running the same
//! command again sends only the rest; an archive cut short is sent again whole.
//! The walk streams on a thread of its own and archives are built on disk, one
//! per upload in flight: memory stays flat, whatever the number of files.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::stream::{self, StreamExt};
use refgen_core::local::{LocalFile, LocalSelection, LocalSkip, LocalSources, Walked};
use refgen_core::naming::{NameMode, Namer};
use refgen_core::writer::AppendLog;
use refgen_roboflow::{Client, MediaKind, RoboflowError};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Error;

/// At most this many images go one by one in the automatic mode (as the
/// official client decides); more go as archives.
pub const SINGLE_MAX: usize = 32;
/// Images per archive by default (the official client's shard size).
pub const SHARD_DEFAULT: usize = 256;
/// The most images an archive may hold (Roboflow's documented limit).
pub const SHARD_MAX: usize = 500;
/// Images larger than this fail at ingest (`Max size of single image is 20971520B.`).
pub const IMAGE_MAX_BYTES: u64 = 20 * 1024 * 1024;
/// Above this many videos in one batch, a warning (the official client's suggestion).
pub const VIDEOS_SUGGESTED_MAX: u64 = 1_000;

/// How images travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UploadMode {
    /// As the batch already holds them; else one by one up to [`SINGLE_MAX`], archives above.
    #[default]
    Auto,
    /// One request per image (a simple batch).
    Single,
    /// Tar archives (a sharded batch).
    Bulk,
}

/// What to upload, and how.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Folders, files or globs, as given.
    pub sources: Vec<String>,
    /// Which files.
    pub select: LocalSelection,
    /// How names are made from the keys.
    pub name_mode: NameMode,
    /// Stop after this many files (already uploaded ones count).
    pub limit: Option<u64>,
    /// How images travel.
    pub mode: UploadMode,
    /// Images per archive (1 to [`SHARD_MAX`]).
    pub images_per_shard: usize,
    /// Uploads at once.
    pub concurrency: usize,
    /// Where the state file goes (default: `$XDG_STATE_HOME/refgen`, else `~/.local/state/refgen`).
    pub state_dir: Option<PathBuf>,
}

impl LocalOptions {
    /// `sources` with the defaults: every file, flat names, automatic mode,
    /// archives of 256, 8 uploads at once (as the official client), the user's state folder.
    pub fn new(sources: Vec<String>) -> Self {
        LocalOptions {
            sources,
            select: LocalSelection::default(),
            name_mode: NameMode::Flat,
            limit: None,
            mode: UploadMode::Auto,
            images_per_shard: SHARD_DEFAULT,
            concurrency: 8,
            state_dir: None,
        }
    }
}

/// What an upload did. Serialized, it is the `upload` field of `refgen submit --json`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadReport {
    /// `single`, `bulk` or `videos`.
    pub mode: &'static str,
    /// Files selected (sent now, or by an earlier run).
    pub found: u64,
    /// Paths not sent, by reason (`filtered`, `too-large`, `hidden`, `unreadable`, …).
    pub skipped: BTreeMap<&'static str, u64>,
    /// Files an earlier run of the same command uploaded.
    pub already_uploaded: u64,
    /// Files sent by this run.
    pub uploaded: u64,
    /// Single image uploads.
    pub single: u64,
    /// Archives.
    pub shards: u64,
    /// Videos.
    pub videos: u64,
    /// Bytes of the files sent.
    pub bytes: u64,
    /// The state file.
    pub state_file: Option<PathBuf>,
    /// Seconds the uploads took.
    pub elapsed_seconds: f64,
}

/// One upload done, as told to the caller.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// `shard 3 (256 files)`, or the file's name.
    pub what: String,
    /// Files confirmed so far (this run and earlier ones).
    pub done: u64,
}

/// What the batch is, when it exists.
fn batch_type_mode(batch_id: &str, batch_type: &str, asked: UploadMode) -> Result<UploadMode, Error> {
    let refuse = |holds: &str, other: &str| {
        Error::UploadMode(format!(
            "batch {batch_id} is a {batch_type} ({holds}): Roboflow does not add {other} to it; \
             upload to another batch id, or in the batch's own mode"
        ))
    };
    match (batch_type, asked) {
        ("simple-batch", UploadMode::Bulk) => Err(refuse("made by single image uploads", "archives")),
        ("simple-batch", _) => Ok(UploadMode::Single),
        ("sharded-batch", UploadMode::Single) => Err(refuse("made by archives or references", "single uploads")),
        ("sharded-batch", _) => Ok(UploadMode::Bulk),
        (other, _) => Err(Error::UploadMode(format!(
            "batch {batch_id} is a {other}: local files go into a new batch, or one made by uploads"
        ))),
    }
}

/// The state folder: given, else `$XDG_STATE_HOME/refgen`, else `~/.local/state/refgen`.
fn state_dir(given: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(dir) = given {
        return Ok(dir.to_owned());
    }
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    from_env("XDG_STATE_HOME")
        .map(|d| d.join("refgen"))
        .or_else(|| from_env("HOME").map(|h| h.join(".local/state/refgen")))
        .ok_or_else(|| {
            Error::UploadMode("no folder for the upload's state: HOME is not set (give a state folder)".to_owned())
        })
}

/// The state file of one upload: named by the batch and a digest of what makes
/// its names (the sources, the kind, the naming).
fn state_path(dir: &Path, batch_id: &str, kind: MediaKind, mode: NameMode, sources: &LocalSources) -> PathBuf {
    let mut digest = xxhash_rust::xxh3::Xxh3::new();
    digest.update(batch_id.as_bytes());
    digest.update(format!("{kind:?} {mode:?}").as_bytes());
    for path in sources.walked_paths() {
        digest.update(b"\0");
        digest.update(path.as_os_str().as_encoded_bytes());
    }
    dir.join("uploads")
        .join(format!("{batch_id}-{:016x}.jsonl", digest.digest()))
}

fn name_digest(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// Names the state file says were uploaded (a digest each: 16 bytes a file in memory).
fn confirmed(path: &Path) -> Result<HashSet<u64>, Error> {
    let mut done = HashSet::new();
    for line in AppendLog::lines(path)? {
        // A line cut short by a crash is not JSON: its upload was not confirmed.
        if let Ok(Value::Object(entry)) = serde_json::from_str::<Value>(&line?)
            && let Some(name) = entry.get("name").and_then(Value::as_str)
        {
            done.insert(name_digest(name));
        }
    }
    Ok(done)
}

/// What the walk hands over: a file to send, with its name.
#[derive(Debug)]
struct ToSend {
    file: LocalFile,
    name: String,
}

/// What the walk counted.
#[derive(Debug, Default)]
struct Walk {
    found: u64,
    already: u64,
    skipped: BTreeMap<&'static str, u64>,
}

/// Walks on a blocking thread: names every file, leaves out those already
/// uploaded, counts the rest, and hands files over a bounded channel.
fn start_walk(
    sources: LocalSources,
    name_mode: NameMode,
    limit: Option<u64>,
    done: HashSet<u64>,
    kind: MediaKind,
) -> (tokio::sync::mpsc::Receiver<ToSend>, tokio::task::JoinHandle<Walk>) {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let handle = tokio::task::spawn_blocking(move || {
        let mut walk = Walk::default();
        let mut namer = Namer::new(name_mode);
        for step in sources.walk() {
            match step {
                Walked::Skipped { path, reason, detail } => {
                    *walk.skipped.entry(reason.name()).or_default() += 1;
                    match (reason, detail) {
                        (LocalSkip::SymlinkLoop, _) => {
                            tracing::warn!("{} is a link to a folder above it: not followed", path.display())
                        }
                        (_, Some(detail)) => tracing::debug!("skipped {} ({reason}: {detail})", path.display()),
                        (_, None) => tracing::debug!("skipped {} ({reason})", path.display()),
                    }
                }
                Walked::File(file) => {
                    if limit.is_some_and(|l| walk.found >= l) {
                        break;
                    }
                    walk.found += 1;
                    if kind == MediaKind::Videos && walk.found == VIDEOS_SUGGESTED_MAX + 1 {
                        tracing::warn!(
                            "more than {VIDEOS_SUGGESTED_MAX} videos in one batch: Roboflow suggests at most \
                             {VIDEOS_SUGGESTED_MAX} (split them over several batches)"
                        );
                    }
                    let name = namer.name(&file.key);
                    if done.contains(&name_digest(&name)) {
                        walk.already += 1;
                        continue;
                    }
                    // The receiver is gone when the upload failed: stop walking.
                    if tx.blocking_send(ToSend { file, name }).is_err() {
                        break;
                    }
                }
            }
        }
        walk
    });
    (rx, handle)
}

/// One unit of work: a file, or an archive's files.
enum Unit {
    One(ToSend),
    Shard(Vec<ToSend>),
}

impl Unit {
    fn files(&self) -> u64 {
        match self {
            Unit::One(_) => 1,
            Unit::Shard(files) => files.len() as u64,
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            Unit::One(f) => f.file.size,
            Unit::Shard(files) => files.iter().map(|f| f.file.size).sum(),
        }
    }

    fn names(&self) -> Vec<&str> {
        match self {
            Unit::One(f) => vec![f.name.as_str()],
            Unit::Shard(files) => files.iter().map(|f| f.name.as_str()).collect(),
        }
    }

    fn describe(&self, number: usize) -> String {
        match self {
            Unit::One(f) => format!("{} ({})", f.name, f.file.path.display()),
            Unit::Shard(files) => format!(
                "shard {number} ({} files, the first {})",
                files.len(),
                files
                    .first()
                    .map(|f| f.file.path.display().to_string())
                    .unwrap_or_default()
            ),
        }
    }
}

/// Where the uploads go: the batch and its ingest settings.
#[derive(Debug, Clone)]
pub(crate) struct Destination<'a> {
    pub batch_id: &'a str,
    pub display_name: &'a str,
    pub kind: MediaKind,
    pub base_ingest_id: &'a str,
    pub notifications_url: Option<&'a str>,
    /// The workspace given, for a dry run's paths.
    pub workspace: Option<&'a str>,
}

/// Builds the tar archive of `files` in `dir`: members named by the files'
/// names, and the webhook's `notification_config.json` when there is one.
fn build_archive(
    dir: &Path,
    files: &[(PathBuf, String)],
    notification: Option<&Value>,
) -> Result<tempfile::TempPath, Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let temp = tempfile::Builder::new()
        .prefix("shard-")
        .suffix(".tar")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    let (file, temp_path) = temp.into_parts();
    let mut archive = tar::Builder::new(std::io::BufWriter::new(file));
    for (path, name) in files {
        archive.append_path_with_name(path, name).map_err(io(path))?;
    }
    if let Some(config) = notification {
        let body = config.to_string().into_bytes();
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, "notification_config.json", body.as_slice())
            .map_err(io(dir))?;
    }
    let writer = archive.into_inner().map_err(io(&temp_path))?;
    writer
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .map_err(io(&temp_path))?;
    Ok(temp_path)
}

/// Sends one unit; returns the state lines its files take.
async fn send(
    client: &Client,
    workspace: &str,
    to: &Destination<'_>,
    temp: &Path,
    number: usize,
    unit: &Unit,
) -> Result<(), Error> {
    match (unit, to.kind) {
        (Unit::One(f), MediaKind::Images) => {
            client
                .upload_image(
                    workspace,
                    to.batch_id,
                    to.display_name,
                    &f.name,
                    &f.file.path,
                    f.file.size,
                )
                .await?;
        }
        (Unit::One(f), MediaKind::Videos) => {
            let signed = client
                .video_upload_url(workspace, to.batch_id, to.display_name, &f.name)
                .await?;
            let doing = format!("uploading {} into batch `{}`", f.name, to.batch_id);
            client.put_signed(&signed, &f.file.path, &doing).await?;
        }
        (Unit::Shard(files), _) => {
            let members: Vec<(PathBuf, String)> = files.iter().map(|f| (f.file.path.clone(), f.name.clone())).collect();
            let notification = to
                .notifications_url
                .map(|url| json!({"ingestId": format!("{}-{number}", to.base_ingest_id), "notificationsURL": url}));
            let dir = temp.to_owned();
            let archive = tokio::task::spawn_blocking(move || build_archive(&dir, &members, notification.as_ref()))
                .await
                .map_err(|e| Error::UploadMode(format!("building an archive stopped: {e}")))??;
            let signed = client.bulk_upload_url(workspace, to.batch_id, to.display_name).await?;
            let doing = format!("uploading shard {number} into batch `{}`", to.batch_id);
            client.put_signed(&signed, &archive, &doing).await?;
            drop(archive);
        }
    }
    Ok(())
}

/// The request a dry run shows for one unit.
fn dry_run_line(workspace: &str, to: &Destination<'_>, number: usize, unit: &Unit) -> Value {
    // A placeholder is shown as it is; a workspace is escaped as it is sent.
    let workspace = if workspace.starts_with('<') {
        workspace.to_owned()
    } else {
        url_part(workspace)
    };
    let batch = format!(
        "/data-staging/v1/external/{workspace}/batches/{}",
        url_part(to.batch_id)
    );
    match (unit, to.kind) {
        (Unit::One(f), MediaKind::Images) => json!({"method": "POST", "path": format!("{batch}/upload/image"),
            "fileName": f.name, "file": f.file.path, "bytes": f.file.size}),
        (Unit::One(f), MediaKind::Videos) => json!({"method": "POST", "path": format!("{batch}/upload/video"),
            "fileName": f.name, "file": f.file.path, "bytes": f.file.size, "then": "PUT uploadURL"}),
        (Unit::Shard(files), _) => json!({"method": "POST", "path": format!("{batch}/bulk-upload/image-files"),
            "then": "PUT uploadURL", "shard": number, "files": files.len(), "bytes": unit.bytes(),
            "first": files.first().map(|f| &f.name), "last": files.last().map(|f| &f.name),
            "notificationConfig": to.notifications_url.is_some()}),
    }
}

fn url_part(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Checks `options` for files of `kind` before any request: the sources exist
/// and do not overlap, the archive size and the mode fit.
pub fn check(options: &LocalOptions, kind: MediaKind) -> Result<LocalSources, Error> {
    if !(1..=SHARD_MAX).contains(&options.images_per_shard) {
        return Err(Error::UploadMode(format!(
            "an archive holds 1 to {SHARD_MAX} images, not {}",
            options.images_per_shard
        )));
    }
    if kind == MediaKind::Videos && options.mode != UploadMode::Auto {
        return Err(Error::UploadMode(
            "videos are uploaded one by one: the single and bulk modes are for images".to_owned(),
        ));
    }
    Ok(LocalSources::new(&options.sources, &options.select)?)
}

/// Uploads the files `options` select into the batch `to` names (with `client`
/// in `workspace`; without a client, a dry run: the report and the requests
/// that would be sent). `uploaded` hears of each upload done.
pub(crate) async fn run(
    options: &LocalOptions,
    to: &Destination<'_>,
    connection: Option<(&Client, &str)>,
    uploaded: &mut (dyn FnMut(Uploaded) + Send),
) -> Result<(UploadReport, Vec<Value>), Error> {
    let started = Instant::now();
    let sources = check(options, to.kind)?;
    let state = state_path(
        &state_dir(options.state_dir.as_deref())?,
        to.batch_id,
        to.kind,
        options.name_mode,
        &sources,
    );
    let done = confirmed(&state)?;
    let mut confirmed_count = done.len() as u64;

    // The batch, when it exists, decides the mode of images.
    let existing = match connection {
        Some((client, workspace)) if to.kind == MediaKind::Images => match client.batch(workspace, to.batch_id).await {
            Ok(batch) => Some(batch.batch_type),
            Err(RoboflowError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        _ => None,
    };
    let mut mode = match existing.as_deref() {
        Some(batch_type) => batch_type_mode(to.batch_id, batch_type, options.mode)?,
        None => options.mode,
    };

    let shown_sources = options.sources.join(" ");
    let (mut rx, walker) = start_walk(sources, options.name_mode, options.limit, done, to.kind);
    // The automatic mode looks ahead just far enough to count to SINGLE_MAX.
    let mut ahead = Vec::new();
    if to.kind == MediaKind::Images && mode == UploadMode::Auto {
        while ahead.len() <= SINGLE_MAX {
            match rx.recv().await {
                Some(item) => ahead.push(item),
                None => break,
            }
        }
        mode = if ahead.len() <= SINGLE_MAX {
            UploadMode::Single
        } else {
            UploadMode::Bulk
        };
    }
    let mode_name = match (to.kind, mode) {
        (MediaKind::Videos, _) => "videos",
        (_, UploadMode::Bulk) => "bulk",
        _ => "single",
    };
    let items = stream::iter(ahead).chain(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let units = if mode_name == "bulk" {
        items.chunks(options.images_per_shard).map(Unit::Shard).boxed()
    } else {
        items.map(Unit::One).boxed()
    };

    let workspace_shown = connection
        .map(|(_, ws)| ws)
        .or(to.workspace)
        .unwrap_or("<the API key's workspace>")
        .to_owned();
    let mut report = UploadReport {
        mode: mode_name,
        state_file: Some(state.clone()),
        ..UploadReport::default()
    };
    let mut dry_run = Vec::new();
    match connection {
        None => {
            let mut units = units.enumerate();
            while let Some((number, unit)) = units.next().await {
                dry_run.push(dry_run_line(&workspace_shown, to, number, &unit));
                count(&mut report, &unit);
            }
        }
        Some((client, workspace)) => {
            let parent = state.parent().map(Path::to_owned).unwrap_or_default();
            std::fs::create_dir_all(&parent).map_err(|source| Error::Io {
                path: parent.clone(),
                source,
            })?;
            let mut log = AppendLog::open(&state)?;
            // Archives are built beside the state, on a disk rather than a memory-backed /tmp.
            let temp = tempfile::tempdir_in(&parent).map_err(|source| Error::Io {
                path: parent.clone(),
                source,
            })?;
            let temp_path = temp.path().to_owned();
            let concurrency = options.concurrency.max(1);
            let mut sending = units
                .enumerate()
                .map(|(number, unit)| {
                    let temp_path = temp_path.clone();
                    async move {
                        let result = send(client, workspace, to, &temp_path, number, &unit).await;
                        (number, unit, result)
                    }
                })
                .buffer_unordered(concurrency);
            while let Some((number, unit, result)) = sending.next().await {
                if let Err(e) = result {
                    return Err(Error::UploadFailed {
                        unit: unit.describe(number),
                        done: confirmed_count,
                        state,
                        source: Box::new(e),
                    });
                }
                let via = match &unit {
                    Unit::Shard(_) => format!("shard {number}"),
                    Unit::One(_) if to.kind == MediaKind::Videos => "video".to_owned(),
                    Unit::One(_) => "single".to_owned(),
                };
                let lines: Vec<String> = unit
                    .names()
                    .iter()
                    .map(|name| json!({"name": name, "via": via}).to_string())
                    .collect();
                log.append(&lines)?;
                confirmed_count += unit.files();
                count(&mut report, &unit);
                uploaded(Uploaded {
                    what: match &unit {
                        Unit::Shard(files) => format!("shard {number} ({} files)", files.len()),
                        Unit::One(f) => f.name.clone(),
                    },
                    done: confirmed_count,
                });
            }
        }
    }
    let walk = walker
        .await
        .map_err(|e| Error::UploadMode(format!("walking the sources stopped: {e}")))?;
    report.found = walk.found;
    report.already_uploaded = walk.already;
    report.skipped = walk.skipped;
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    if walk.found == 0 {
        let skipped = report
            .skipped
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::NoLocalFiles {
            sources: shown_sources,
            found: 0,
            skipped,
        });
    }
    Ok((report, dry_run))
}

fn count(report: &mut UploadReport, unit: &Unit) {
    report.uploaded += unit.files();
    report.bytes += unit.bytes();
    match unit {
        Unit::Shard(_) => report.shards += 1,
        Unit::One(_) if report.mode == "videos" => report.videos += 1,
        Unit::One(_) => report.single += 1,
    }
}
