//! Inventory reports instead of a listing.
//!
//! The clouds write a bucket's listing as files (S3 Inventory, Azure Blob
//! Inventory, GCS Storage Insights). A provider crate reads its cloud's manifest
//! and says how the report is laid out ([`Report`]: data files, [`FileFormat`],
//! [`Layout`]); this module reads each data file, once it is downloaded whole to a
//! local file, row by row into pages of [`ObjectMeta`], which go through the same
//! selection, signing and writing as a listing's pages. Memory stays flat: a CSV
//! file is streamed (through gzip when compressed), a Parquet file is read by row
//! groups, a thousand rows at a time from each needed column only, and an ORC
//! file a thousand rows at a time with only the needed columns projected.
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
    /// The version id, read only when versions are pinned (the caller sets it
    /// then; a report without that column is refused rather than read unpinned).
    pub version: Option<String>,
    /// The column and the value that mark an object encrypted with a
    /// customer-provided key (S3's `EncryptionStatus` = `SSE-C`): a plain GET
    /// cannot read it ([`ObjectMeta::customer_key`]).
    pub customer_key: Option<(String, String)>,
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
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<ObjectMeta>, Error>>(8);
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
    /// In a class a plain GET cannot read ([`Layout::archived_classes`]).
    archived: bool,
    version: Option<String>,
    customer_key: bool,
}

impl Layout {
    /// Whether `class` is one a plain GET cannot read.
    fn is_archived(&self, class: Option<&str>) -> bool {
        class.is_some_and(|c| self.archived_classes.iter().any(|a| a.eq_ignore_ascii_case(c)))
    }

    /// Whether an encryption status says the object needs a customer key.
    fn is_customer_key(&self, status: Option<&str>) -> bool {
        status.is_some_and(|s| {
            self.customer_key
                .as_ref()
                .is_some_and(|(_, value)| value.eq_ignore_ascii_case(s.trim()))
        })
    }

    /// The one error for a pinned read of a report without version ids.
    fn no_versions(&self, path: &Path) -> Error {
        bad(
            path,
            format!(
                "no `{}` column: the report lists current versions only, so versions cannot be pinned (include all versions in the inventory, or drop --pin-versions)",
                self.version.as_deref().unwrap_or_default()
            ),
        )
    }
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
        Some(ObjectMeta {
            key,
            size: self.size.unwrap_or(0),
            last_modified: None,
            archived: self.archived,
            superseded: self.latest == Some(false) || self.delete_marker == Some(true),
            folder: false,
            version: self.version,
            customer_key: self.customer_key,
        })
    }
}

fn truth(text: &str) -> Option<bool> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn decode_key(path: &Path, raw: &str, encoding: KeyEncoding) -> Result<String, Error> {
    match encoding {
        // Most keys have nothing to decode.
        KeyEncoding::Form if raw.bytes().any(|b| b == b'+' || b == b'%') => {
            percent_encoding::percent_decode_str(&raw.replace('+', " "))
                .decode_utf8()
                .map(|k| k.into_owned())
                .map_err(|_| bad(path, format!("the key `{raw}` is not UTF-8 once decoded")))
        }
        KeyEncoding::Form | KeyEncoding::Raw => Ok(raw.to_owned()),
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
    let encryption = find(&layout.customer_key.as_ref().map(|(column, _)| column.clone()));
    let version = match &layout.version {
        Some(_) => Some(find(&layout.version).ok_or_else(|| layout.no_versions(path))?),
        None => None,
    };
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
            archived: layout.is_archived(field(class)),
            version: field(version).map(str::to_owned),
            customer_key: layout.is_customer_key(field(encryption)),
        };
        if !push(row) {
            return Ok(());
        }
    }
}

/// Parquet files are read a row group at a time, [`PAGE_ROWS`] rows at once from
/// each needed column (the low-level column readers: the row API built a map of
/// named fields per row and was the slowest part of a run).
fn read_parquet(path: &Path, layout: &Layout, push: &mut impl FnMut(Row) -> bool) -> Result<(), Error> {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let file = File::open(path).map_err(|e| bad(path, format!("cannot open it: {e}")))?;
    let reader = SerializedFileReader::new(file).map_err(|e| bad(path, format!("not a Parquet file: {e}")))?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    // The report's columns are flat: a top-level leaf of that name.
    let find = |name: Option<&str>| -> Option<usize> {
        let name = name?;
        (0..schema.num_columns()).find(|&i| {
            let column = schema.column(i);
            column.path().parts().len() == 1 && column.name().eq_ignore_ascii_case(name)
        })
    };
    let key = find(Some(&layout.key)).ok_or_else(|| bad(path, format!("no `{}` column", layout.key)))?;
    let version = match layout.version.as_deref() {
        Some(name) => Some(find(Some(name)).ok_or_else(|| layout.no_versions(path))?),
        None => None,
    };
    let wanted = [
        Some(key),
        find(layout.size.as_deref()),
        find(layout.latest.as_deref()),
        find(layout.delete_marker.as_deref()),
        find(layout.class.as_deref()),
        version,
        find(layout.customer_key.as_ref().map(|(column, _)| column.as_str())),
    ];
    let failed = |e: parquet::errors::ParquetError| bad(path, format!("a row group cannot be read: {e}"));
    let mut chunks: [Chunk; 7] = Default::default();
    for group in 0..reader.num_row_groups() {
        let group = reader.get_row_group(group).map_err(failed)?;
        let rows = usize::try_from(group.metadata().num_rows()).unwrap_or(0);
        let mut columns = Vec::with_capacity(wanted.len());
        for index in wanted {
            columns.push(match index {
                Some(i) => Some((
                    ParquetColumn::new(group.get_column_reader(i).map_err(failed)?),
                    schema.column(i).max_def_level(),
                )),
                None => None,
            });
        }
        let mut done = 0;
        while done < rows {
            let n = (rows - done).min(PAGE_ROWS);
            for (column, chunk) in columns.iter_mut().zip(chunks.iter_mut()) {
                match column {
                    Some((column, max_def)) => column.read(n, *max_def, chunk).map_err(failed)?,
                    None => chunk.clear(n),
                }
            }
            if chunks[0].records != n {
                return Err(bad(path, format!("a row group holds fewer keys than its {rows} rows")));
            }
            let [keys, sizes, latest, markers, classes, versions, encryption] = &mut chunks;
            for row in 0..n {
                let raw = keys.text(row).ok_or_else(|| bad(path, "a row has no key"))?;
                let row = Row {
                    key: decode_key(path, raw, layout.key_encoding)?,
                    size: sizes.number(row),
                    latest: latest.flag(row),
                    delete_marker: markers.flag(row),
                    archived: layout.is_archived(classes.text(row)),
                    version: versions.text(row).map(str::to_owned),
                    customer_key: layout.is_customer_key(encryption.text(row)),
                };
                if !push(row) {
                    return Ok(());
                }
            }
            done += n;
        }
    }
    Ok(())
}

/// A Parquet column of one of the types an inventory uses; other types read as absent.
enum ParquetColumn {
    Bytes(parquet::column::reader::ColumnReaderImpl<parquet::data_type::ByteArrayType>),
    Int32(parquet::column::reader::ColumnReaderImpl<parquet::data_type::Int32Type>),
    Int64(parquet::column::reader::ColumnReaderImpl<parquet::data_type::Int64Type>),
    Bool(parquet::column::reader::ColumnReaderImpl<parquet::data_type::BoolType>),
    Other,
}

/// [`PAGE_ROWS`] rows of one column: the values present, in order, and (for a
/// column that may be null) each row's definition level.
#[derive(Default)]
struct Chunk {
    records: usize,
    /// The definition level of a present value; 0 for a required column (no levels).
    max_def: i16,
    defs: Vec<i16>,
    bytes: Vec<parquet::data_type::ByteArray>,
    ints: Vec<i64>,
    bools: Vec<bool>,
    /// The next value to hand out (rows are taken in order).
    next: usize,
}

impl ParquetColumn {
    fn new(reader: parquet::column::reader::ColumnReader) -> Self {
        use parquet::column::reader::ColumnReader as R;
        match reader {
            R::ByteArrayColumnReader(r) => ParquetColumn::Bytes(r),
            R::Int32ColumnReader(r) => ParquetColumn::Int32(r),
            R::Int64ColumnReader(r) => ParquetColumn::Int64(r),
            R::BoolColumnReader(r) => ParquetColumn::Bool(r),
            _ => ParquetColumn::Other,
        }
    }

    fn read(&mut self, rows: usize, max_def: i16, chunk: &mut Chunk) -> parquet::errors::Result<()> {
        chunk.clear(rows);
        chunk.max_def = max_def;
        let defs = &mut chunk.defs;
        let (records, _, _) = match self {
            ParquetColumn::Bytes(r) => r.read_records(rows, Some(defs), None, &mut chunk.bytes)?,
            ParquetColumn::Int64(r) => r.read_records(rows, Some(defs), None, &mut chunk.ints)?,
            ParquetColumn::Int32(r) => {
                let mut values = Vec::with_capacity(rows);
                let read = r.read_records(rows, Some(defs), None, &mut values)?;
                chunk.ints.extend(values.into_iter().map(i64::from));
                read
            }
            ParquetColumn::Bool(r) => r.read_records(rows, Some(defs), None, &mut chunk.bools)?,
            ParquetColumn::Other => return Ok(()),
        };
        chunk.records = records;
        Ok(())
    }
}

impl Chunk {
    fn clear(&mut self, rows: usize) {
        self.records = rows;
        self.max_def = 0;
        self.next = 0;
        self.defs.clear();
        self.bytes.clear();
        self.ints.clear();
        self.bools.clear();
    }

    /// The index of row `row`'s value, if it has one (called for every row, in order).
    fn take(&mut self, row: usize) -> Option<usize> {
        // A required column has no levels: every row has its value. An absent
        // column (no reader) has neither levels nor values.
        if self.max_def > 0 && self.defs.get(row).is_none_or(|&d| d < self.max_def) {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some(index)
    }

    fn text(&mut self, row: usize) -> Option<&str> {
        let index = self.take(row)?;
        self.bytes.get(index).and_then(|b| std::str::from_utf8(b.data()).ok())
    }

    fn number(&mut self, row: usize) -> Option<u64> {
        let index = self.take(row)?;
        match self.ints.get(index) {
            Some(n) => u64::try_from(*n).ok(),
            None => self
                .bytes
                .get(index)
                .and_then(|b| std::str::from_utf8(b.data()).ok())
                .and_then(|t| t.trim().parse().ok()),
        }
    }

    fn flag(&mut self, row: usize) -> Option<bool> {
        let index = self.take(row)?;
        match self.bools.get(index) {
            Some(b) => Some(*b),
            None => self
                .bytes
                .get(index)
                .and_then(|b| std::str::from_utf8(b.data()).ok())
                .and_then(truth),
        }
    }
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
        layout.version.as_ref(),
        layout.customer_key.as_ref().map(|(column, _)| column),
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
    if let Some(version) = &layout.version
        && !present.iter().any(|n| n.eq_ignore_ascii_case(version))
    {
        return Err(layout.no_versions(path));
    }
    let encryption_column = layout.customer_key.as_ref().map(|(column, _)| column.clone());
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
    fn text(array: &Option<ArrayRef>, i: usize) -> Option<&str> {
        let array = array.as_ref()?;
        if array.is_null(i) {
            return None;
        }
        array.as_string_opt::<i32>().map(|a| a.value(i)).or_else(|| {
            array
                .as_binary_opt::<i32>()
                .and_then(|a| std::str::from_utf8(a.value(i)).ok())
        })
    }
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
        let versions = column(&batch, &layout.version);
        let encryption = column(&batch, &encryption_column);
        for i in 0..batch.num_rows() {
            let raw = text(&key, i).ok_or_else(|| bad(path, "a row has no key"))?;
            let row = Row {
                key: decode_key(path, raw, layout.key_encoding)?,
                size: size
                    .as_ref()
                    .filter(|a| !a.is_null(i))
                    .and_then(|a| a.as_primitive_opt::<Int64Type>().map(|a| a.value(i)))
                    .and_then(|n| u64::try_from(n).ok()),
                latest: flag(&latest, i),
                delete_marker: flag(&marker, i),
                archived: layout.is_archived(text(&class, i)),
                version: text(&versions, i).map(str::to_owned),
                customer_key: layout.is_customer_key(text(&encryption, i)),
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
            version: None,
            customer_key: None,
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

    /// Pinned versions need the report's version ids: a report of current
    /// versions only (no `VersionId` column) is refused, not read unpinned; with
    /// the column, each object carries its row's version.
    #[test]
    fn versions_are_read_only_from_a_report_that_has_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data.csv");
        std::fs::write(
            &path,
            "\"b\",\"a.jpg\",\"5\",\"SSE-C\"\n\"b\",\"b.jpg\",\"6\",\"SSE-S3\"\n",
        )
        .expect("write");
        let csv = FileFormat::Csv {
            gzip: false,
            header: false,
        };
        let mut layout = s3_layout(&["Bucket", "Key", "Size", "EncryptionStatus"]);
        layout.customer_key = Some(("EncryptionStatus".into(), "SSE-C".into()));
        let objects = read(&path, csv, &layout);
        let shown: Vec<(&str, bool, Option<&str>)> = objects
            .iter()
            .map(|o| (o.key.as_str(), o.customer_key, o.version.as_deref()))
            .collect();
        assert_eq!(shown, [("a.jpg", true, None), ("b.jpg", false, None)]);
        layout.version = Some("VersionId".into());
        let err = read_file(&path, csv, &layout, "c", |_| true).expect_err("refused");
        assert!(err.to_string().contains("current versions only"), "{err}");
        std::fs::write(&path, "\"b\",\"a.jpg\",\"v1\",\"5\"\n").expect("write");
        let layout = Layout {
            version: Some("VersionId".into()),
            ..s3_layout(&["Bucket", "Key", "VersionId", "Size"])
        };
        assert_eq!(read(&path, csv, &layout)[0].version.as_deref(), Some("v1"));
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
            version: None,
            customer_key: None,
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
