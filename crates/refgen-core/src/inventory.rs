//! Inventory reports instead of a listing.
//!
//! The clouds write a bucket's listing as files (S3 Inventory, Azure Blob
//! Inventory, GCS Storage Insights). A provider crate reads its cloud's manifest
//! and says how the report is laid out ([`Report`]: data files, [`FileFormat`],
//! [`Layout`]); this module reads each data file, once it is downloaded whole to a
//! local file, row by row into pages of [`ObjectMeta`], which go through the same
//! selection, signing and writing as a listing's pages. Memory stays flat: a CSV
//! file is streamed (through gzip when compressed), a Parquet file is read by row
//! groups with only the needed columns projected.
//!
//! Rows that are not an object a GET reads are marked, not dropped, so the run
//! counts them: older versions and delete markers ([`ObjectMeta::superseded`]),
//! archive classes ([`ObjectMeta::archived`]).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::{Error, ObjectMeta};

/// Rows per page handed to the pipeline.
pub const PAGE_ROWS: usize = 1000;

/// How a data file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated values, gzip-compressed or not, with a header row or not.
    Csv {
        /// The file is gzip.
        gzip: bool,
        /// The first row names the columns.
        header: bool,
    },
    /// Apache Parquet.
    Parquet,
    /// Apache ORC.
    Orc,
}

/// How a key is written in its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncoding {
    /// As it is.
    Raw,
    /// URL-encoded form style (S3 Inventory CSV): `+` is a space, `%2B` a `+`.
    Form,
}

/// Which columns of a report mean what.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Column names in file order, for CSV files without a header row.
    pub columns: Vec<String>,
    /// The object key (or `container/blob` with [`Layout::container_in_key`]).
    pub key: String,
    /// The size in bytes.
    pub size: Option<String>,
    /// `true` for the current version.
    pub latest: Option<String>,
    /// `true` for a delete marker.
    pub delete_marker: Option<String>,
    /// The storage class or access tier.
    pub class: Option<String>,
    /// Classes a plain GET cannot read (compared without regard to case).
    pub archived_classes: Vec<String>,
    /// How keys are written.
    pub key_encoding: KeyEncoding,
    /// The key column holds `container/blob` for every container of the account
    /// (Azure): only rows of the source's container are kept, without its name.
    pub container_in_key: bool,
    /// Rows may repeat a key (Azure): only its first row is kept. This keeps an
    /// 8-byte fingerprint per key, so memory grows with the report (about 16 MB a
    /// million keys), as `--name basename` does.
    pub unique_keys: bool,
}

/// One report: its data files, in order, and how to read them.
#[derive(Debug, Clone)]
pub struct Report {
    /// The data files: object key in the report's bucket and its size in bytes.
    pub files: Vec<(String, Option<u64>)>,
    /// How they are stored.
    pub format: FileFormat,
    /// What their columns mean.
    pub layout: Layout,
    /// A name for messages (the manifest's URL).
    pub name: String,
}

impl Report {
    /// Keeps only the data files of `shard` (file `i` is worker `i mod N`'s), when
    /// the report has at least as many files as there are workers; `true` when it
    /// did, so that the keys need no hash test. With fewer files each worker reads
    /// them all and keeps its keys by hash, so no worker is left without work.
    pub fn take_shard(&mut self, shard: crate::shard::Shard) -> bool {
        let count = shard.count() as usize;
        if self.files.len() < count {
            return false;
        }
        let index = shard.index() as usize;
        self.files = std::mem::take(&mut self.files)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % count == index)
            .map(|(_, f)| f)
            .collect();
        true
    }
}

/// The report's objects as pages, file after file in the report's order: each data
/// file is downloaded whole to a temporary file (its size checked against the
/// manifest's), then read on a blocking thread while the pipeline takes its pages
/// (a few pages ahead at most). `container` is the source's container, for
/// [`Layout::container_in_key`].
pub fn pages(
    report: Report,
    downloader: std::sync::Arc<dyn crate::Downloader>,
    container: String,
) -> crate::list::PageStream<'static> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<ObjectMeta>, Error>>(4);
    // The temporary folder belongs to the stream, not to the task: a task still
    // running when the runtime shuts down is never dropped, and the folder (with a
    // data file in it) was left behind; the stream is dropped with the run on
    // every path, an error or an interrupt included.
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            let error = Error::Inventory {
                file: report.name.clone(),
                reason: format!("no temporary folder: {e}"),
            };
            return Box::pin(futures::stream::once(async move { Err(error) }));
        }
    };
    let folder = dir.path().to_path_buf();
    tokio::spawn(async move {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::<u64>::new()));
        for (key, size) in report.files {
            let path = folder.join("data");
            // The download checks the size the manifest gives, so a short answer
            // is fetched again rather than read.
            if let Err(e) = downloader.download_file(&key, &path, size).await {
                let _ = tx.send(Err(e)).await;
                return;
            }
            let (layout, container, sender) = (report.layout.clone(), container.clone(), tx.clone());
            let format = report.format;
            let seen = std::sync::Arc::clone(&seen);
            let read = tokio::task::spawn_blocking(move || {
                read_file(&path, format, &layout, &container, |mut page| {
                    if layout.unique_keys
                        && let Ok(mut seen) = seen.lock()
                    {
                        page.retain(|o| seen.insert(xxhash_rust::xxh3::xxh3_64(o.key.as_bytes())));
                    }
                    sender.blocking_send(Ok(page)).is_ok()
                })
            })
            .await;
            let error = match read {
                Ok(Ok(())) => continue,
                // Named by the report's object, not by the temporary file it was read from.
                Ok(Err(Error::Inventory { reason, .. })) => Error::Inventory { file: key, reason },
                Ok(Err(e)) => e,
                Err(source) => Error::Task {
                    doing: "reading an inventory file",
                    source,
                },
            };
            let _ = tx.send(Err(error)).await;
            return;
        }
    });
    Box::pin(futures::stream::unfold((rx, dir), |(mut rx, dir)| async move {
        rx.recv().await.map(|item| (item, (rx, dir)))
    }))
}

fn bad(file: &Path, reason: impl Into<String>) -> Error {
    Error::Inventory {
        file: file.display().to_string(),
        reason: reason.into(),
    }
}

/// Reads the data file at `path` into pages of at most [`PAGE_ROWS`] objects of the
/// container `container` (used with [`Layout::container_in_key`]), calling `emit`
/// with each; `emit` returns `false` to stop early.
pub fn read_file(
    path: &Path,
    format: FileFormat,
    layout: &Layout,
    container: &str,
    mut emit: impl FnMut(Vec<ObjectMeta>) -> bool,
) -> Result<(), Error> {
    let mut page = Vec::with_capacity(PAGE_ROWS);
    let mut push = |row: Row| -> bool {
        if let Some(object) = row.into_object(layout, container) {
            page.push(object);
        }
        if page.len() == PAGE_ROWS {
            return emit(std::mem::replace(&mut page, Vec::with_capacity(PAGE_ROWS)));
        }
        true
    };
    match format {
        FileFormat::Csv { gzip, header } => {
            let file = File::open(path).map_err(|e| bad(path, format!("cannot open it: {e}")))?;
            let reader: Box<dyn Read> = if gzip {
                Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
            } else {
                Box::new(BufReader::new(file))
            };
            read_csv(path, reader, header, layout, &mut push)?;
        }
        FileFormat::Parquet => read_parquet(path, layout, &mut push)?,
        FileFormat::Orc => read_orc(path, layout, &mut push)?,
    }
    if !page.is_empty() {
        emit(page);
    }
    Ok(())
}

/// The fields of one row that matter.
#[derive(Debug, Default)]
struct Row {
    key: String,
    size: Option<u64>,
    latest: Option<bool>,
    delete_marker: Option<bool>,
    class: Option<String>,
}

impl Row {
    fn into_object(self, layout: &Layout, container: &str) -> Option<ObjectMeta> {
        let key = if layout.container_in_key {
            let (c, blob) = self.key.split_once('/')?;
            if c != container {
                return None;
            }
            blob.to_owned()
        } else {
            self.key
        };
        let archived = self
            .class
            .as_deref()
            .is_some_and(|c| layout.archived_classes.iter().any(|a| a.eq_ignore_ascii_case(c)));
        Some(ObjectMeta {
            key,
            size: self.size.unwrap_or(0),
            last_modified: None,
            archived,
            superseded: self.latest == Some(false) || self.delete_marker == Some(true),
        })
    }
}

fn truth(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn decode_key(path: &Path, raw: &str, encoding: KeyEncoding) -> Result<String, Error> {
    match encoding {
        KeyEncoding::Raw => Ok(raw.to_owned()),
        KeyEncoding::Form => percent_encoding::percent_decode_str(&raw.replace('+', " "))
            .decode_utf8()
            .map(|k| k.into_owned())
            .map_err(|_| bad(path, format!("the key `{raw}` is not UTF-8 once decoded"))),
    }
}

fn read_csv(
    path: &Path,
    reader: impl Read,
    header: bool,
    layout: &Layout,
    push: &mut impl FnMut(Row) -> bool,
) -> Result<(), Error> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(header)
        .flexible(false)
        .from_reader(reader);
    let names: Vec<String> = if header {
        csv.headers()
            .map_err(|e| bad(path, format!("cannot read the header row: {e}")))?
            .iter()
            .map(str::to_owned)
            .collect()
    } else {
        layout.columns.clone()
    };
    let find = |name: &Option<String>| -> Option<usize> {
        let name = name.as_deref()?;
        names.iter().position(|n| n.trim().eq_ignore_ascii_case(name))
    };
    let key = find(&Some(layout.key.clone())).ok_or_else(|| {
        bad(
            path,
            format!("no `{}` column (columns: {})", layout.key, names.join(", ")),
        )
    })?;
    let (size, latest, marker, class) = (
        find(&layout.size),
        find(&layout.latest),
        find(&layout.delete_marker),
        find(&layout.class),
    );
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(bad(path, format!("a row cannot be read: {e}"))),
        }
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).filter(|v| !v.is_empty());
        let raw = record.get(key).ok_or_else(|| bad(path, "a row has no key column"))?;
        let row = Row {
            key: decode_key(path, raw, layout.key_encoding)?,
            size: field(size).and_then(|s| s.trim().parse().ok()),
            latest: field(latest).and_then(truth),
            delete_marker: field(marker).and_then(truth),
            class: field(class).map(str::to_owned),
        };
        if !push(row) {
            return Ok(());
        }
    }
}

fn read_parquet(path: &Path, layout: &Layout, push: &mut impl FnMut(Row) -> bool) -> Result<(), Error> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    use parquet::schema::types::Type;
    use std::sync::Arc;

    let file = File::open(path).map_err(|e| bad(path, format!("cannot open it: {e}")))?;
    let reader = SerializedFileReader::new(file).map_err(|e| bad(path, format!("not a Parquet file: {e}")))?;
    let schema = reader.metadata().file_metadata().schema();
    let wanted: Vec<&str> = [
        Some(layout.key.as_str()),
        layout.size.as_deref(),
        layout.latest.as_deref(),
        layout.delete_marker.as_deref(),
        layout.class.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Only the columns needed are read (a projection of the file's schema).
    let fields: Vec<Arc<Type>> = schema
        .get_fields()
        .iter()
        .filter(|f| wanted.iter().any(|w| f.name().eq_ignore_ascii_case(w)))
        .cloned()
        .collect();
    if !fields.iter().any(|f| f.name().eq_ignore_ascii_case(&layout.key)) {
        return Err(bad(path, format!("no `{}` column", layout.key)));
    }
    let projection = Type::group_type_builder(schema.name())
        .with_fields(fields)
        .build()
        .map_err(|e| bad(path, format!("cannot project its columns: {e}")))?;
    let rows = reader
        .get_row_iter(Some(projection))
        .map_err(|e| bad(path, format!("cannot read its rows: {e}")))?;
    let is = |name: &str, wanted: &Option<String>| wanted.as_deref().is_some_and(|w| name.eq_ignore_ascii_case(w));
    for row in rows {
        let row = row.map_err(|e| bad(path, format!("a row cannot be read: {e}")))?;
        let mut out = Row::default();
        let mut has_key = false;
        for (name, field) in row.get_column_iter() {
            let text = match field {
                Field::Str(s) => Some(s.clone()),
                Field::Bytes(b) => std::str::from_utf8(b.data()).ok().map(str::to_owned),
                _ => None,
            };
            let number = match field {
                Field::Long(n) => u64::try_from(*n).ok(),
                Field::Int(n) => u64::try_from(*n).ok(),
                Field::ULong(n) => Some(*n),
                Field::UInt(n) => Some(u64::from(*n)),
                _ => text.as_deref().and_then(|t| t.parse().ok()),
            };
            let flag = match field {
                Field::Bool(b) => Some(*b),
                _ => text.as_deref().and_then(truth),
            };
            if name.eq_ignore_ascii_case(&layout.key) {
                if let Some(raw) = text {
                    out.key = decode_key(path, &raw, layout.key_encoding)?;
                    has_key = true;
                }
            } else if is(name, &layout.size) {
                out.size = number;
            } else if is(name, &layout.latest) {
                out.latest = flag;
            } else if is(name, &layout.delete_marker) {
                out.delete_marker = flag;
            } else if is(name, &layout.class) {
                out.class = text;
            }
        }
        if !has_key {
            return Err(bad(path, "a row has no key"));
        }
        if !push(out) {
            return Ok(());
        }
    }
    Ok(())
}

/// ORC files are read a batch at a time (orc-rust, into Arrow arrays), with only
/// the needed columns projected.
fn read_orc(path: &Path, layout: &Layout, push: &mut impl FnMut(Row) -> bool) -> Result<(), Error> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::{Array, ArrayRef};
    use orc_rust::projection::ProjectionMask;

    let file = File::open(path).map_err(|e| bad(path, format!("cannot open it: {e}")))?;
    let builder =
        orc_rust::ArrowReaderBuilder::try_new(file).map_err(|e| bad(path, format!("not an ORC file: {e}")))?;
    let wanted: Vec<String> = [
        Some(&layout.key),
        layout.size.as_ref(),
        layout.latest.as_ref(),
        layout.delete_marker.as_ref(),
        layout.class.as_ref(),
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let root = builder.file_metadata().root_data_type();
    let present: Vec<String> = root
        .children()
        .iter()
        .map(|c| c.name().to_owned())
        .filter(|n| wanted.iter().any(|w| w.eq_ignore_ascii_case(n)))
        .collect();
    if !present.iter().any(|n| n.eq_ignore_ascii_case(&layout.key)) {
        return Err(bad(path, format!("no `{}` column", layout.key)));
    }
    let projection = ProjectionMask::named_roots(root, &present);
    let reader = builder.with_projection(projection).with_batch_size(PAGE_ROWS).build();
    let column = |batch: &arrow_array::RecordBatch, name: &Option<String>| -> Option<ArrayRef> {
        let name = name.as_deref()?;
        let schema = batch.schema();
        let index = schema
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(name))?;
        Some(batch.column(index).clone())
    };
    let text = |array: &Option<ArrayRef>, i: usize| -> Option<String> {
        let array = array.as_ref()?;
        if array.is_null(i) {
            return None;
        }
        array.as_string_opt::<i32>().map(|a| a.value(i).to_owned()).or_else(|| {
            array
                .as_binary_opt::<i32>()
                .and_then(|a| std::str::from_utf8(a.value(i)).ok().map(str::to_owned))
        })
    };
    let flag = |array: &Option<ArrayRef>, i: usize| -> Option<bool> {
        let array = array.as_ref()?;
        (!array.is_null(i)).then(|| array.as_boolean_opt().map(|a| a.value(i)))?
    };
    for batch in reader {
        let batch = batch.map_err(|e| bad(path, format!("a stripe cannot be read: {e}")))?;
        let key = column(&batch, &Some(layout.key.clone()));
        let size = column(&batch, &layout.size);
        let latest = column(&batch, &layout.latest);
        let marker = column(&batch, &layout.delete_marker);
        let class = column(&batch, &layout.class);
        for i in 0..batch.num_rows() {
            let raw = text(&key, i).ok_or_else(|| bad(path, "a row has no key"))?;
            let row = Row {
                key: decode_key(path, &raw, layout.key_encoding)?,
                size: size
                    .as_ref()
                    .filter(|a| !a.is_null(i))
                    .and_then(|a| a.as_primitive_opt::<Int64Type>().map(|a| a.value(i)))
                    .and_then(|n| u64::try_from(n).ok()),
                latest: flag(&latest, i),
                delete_marker: flag(&marker, i),
                class: text(&class, i),
            };
            if !push(row) {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn s3_layout(columns: &[&str]) -> Layout {
        Layout {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            key: "Key".into(),
            size: Some("Size".into()),
            latest: Some("IsLatest".into()),
            delete_marker: Some("IsDeleteMarker".into()),
            class: Some("StorageClass".into()),
            archived_classes: vec!["GLACIER".into(), "DEEP_ARCHIVE".into()],
            key_encoding: KeyEncoding::Form,
            container_in_key: false,
            unique_keys: false,
        }
    }

    fn read(path: &Path, format: FileFormat, layout: &Layout) -> Vec<ObjectMeta> {
        let mut all = Vec::new();
        read_file(path, format, layout, "c", |page| {
            all.extend(page);
            true
        })
        .expect("reads");
        all
    }

    /// S3 Inventory CSV: gzip, no header, columns in fileSchema order, keys form-encoded.
    #[test]
    fn s3_csv_rows_become_objects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(File::create(&path).expect("create"), flate2::Compression::fast());
        writeln!(
            gz,
            "\"b\",\"a+b%2Bc.jpg\",\"v2\",\"true\",\"false\",\"12\",\"STANDARD\""
        )
        .expect("write");
        writeln!(
            gz,
            "\"b\",\"a+b%2Bc.jpg\",\"v1\",\"false\",\"false\",\"10\",\"STANDARD\""
        )
        .expect("write");
        writeln!(gz, "\"b\",\"gone.jpg\",\"v3\",\"true\",\"true\",\"\",\"\"").expect("write");
        writeln!(gz, "\"b\",\"cold/x*y.jpg\",\"v4\",\"true\",\"false\",\"5\",\"GLACIER\"").expect("write");
        gz.finish().expect("finish");
        let layout = s3_layout(&[
            "Bucket",
            "Key",
            "VersionId",
            "IsLatest",
            "IsDeleteMarker",
            "Size",
            "StorageClass",
        ]);
        let objects = read(
            &path,
            FileFormat::Csv {
                gzip: true,
                header: false,
            },
            &layout,
        );
        let shown: Vec<(&str, u64, bool, bool)> = objects
            .iter()
            .map(|o| (o.key.as_str(), o.size, o.archived, o.superseded))
            .collect();
        assert_eq!(
            shown,
            [
                ("a b+c.jpg", 12, false, false),
                ("a b+c.jpg", 10, false, true),
                ("gone.jpg", 0, false, true),
                ("cold/x*y.jpg", 5, true, false),
            ]
        );
    }

    /// Azure: a header row, `container/blob` names, repeated rows, other containers.
    #[test]
    fn azure_csv_keeps_the_sources_container_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data.csv");
        std::fs::write(
            &path,
            "Name,Content-Length,AccessTier\ninv-src/a.jpg,3,Hot\ninv-src2/b.jpg,3,Hot\ninv-src/c d.jpg,4,Archive\n",
        )
        .expect("write");
        let layout = Layout {
            columns: Vec::new(),
            key: "Name".into(),
            size: Some("Content-Length".into()),
            latest: None,
            delete_marker: None,
            class: Some("AccessTier".into()),
            archived_classes: vec!["Archive".into()],
            key_encoding: KeyEncoding::Raw,
            container_in_key: true,
            unique_keys: true,
        };
        let mut all = Vec::new();
        read_file(
            &path,
            FileFormat::Csv {
                gzip: false,
                header: true,
            },
            &layout,
            "inv-src",
            |p| {
                all.extend(p);
                true
            },
        )
        .expect("reads");
        let shown: Vec<(&str, bool)> = all.iter().map(|o| (o.key.as_str(), o.archived)).collect();
        assert_eq!(shown, [("a.jpg", false), ("c d.jpg", true)]);
    }

    #[test]
    fn a_malformed_file_is_one_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data.parquet");
        std::fs::write(&path, "not parquet").expect("write");
        let err = read_file(&path, FileFormat::Parquet, &s3_layout(&[]), "c", |_| true)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("not a Parquet file"), "{err}");
        let csv = dir.path().join("data.csv");
        std::fs::write(&csv, "a,b\n1,2,3\n").expect("write");
        let err = read_file(
            &csv,
            FileFormat::Csv {
                gzip: false,
                header: false,
            },
            &s3_layout(&["Bucket", "Key"]),
            "c",
            |_| true,
        )
        .expect_err("refused")
        .to_string();
        assert!(err.contains("a row cannot be read"), "{err}");
    }
}
