//! Object metadata as listings report it.

use std::time::SystemTime;

/// One object from a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The full key (object name), exactly as the store holds it.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, when the store reports it.
    pub last_modified: Option<SystemTime>,
    /// In an archive a plain GET cannot read until it is restored: S3 `GLACIER` and
    /// `DEEP_ARCHIVE` not restored, Azure's `Archive` tier. Never referenced: the
    /// batch would fail on it, far from the cause. Each provider decides.
    pub archived: bool,
    /// An inventory row of a version that is not the current one, or of a delete
    /// marker: the object a plain GET reads is another (or none).
    pub superseded: bool,
    /// The store says this is a folder, not a file (a Data Lake folder: a blob
    /// with the metadata `hdi_isfolder=true`, whatever its name).
    pub folder: bool,
    /// The version listed, when the listing was asked to pin versions (S3's
    /// `versionId`, GCS's `generation`, Azure's `versionid`): the URL then reads
    /// exactly these bytes, even after the object is overwritten. `None`: the URL
    /// reads whatever the key holds when it is fetched.
    pub version: Option<String>,
    /// Encrypted with a key the reader must send (S3 SSE-C, known from an
    /// inventory's `EncryptionStatus`): a plain GET is refused, and a
    /// references file cannot carry the key, so it is never referenced.
    pub customer_key: bool,
}

impl ObjectMeta {
    /// A zero-byte object whose key ends in `/` is a "folder" placeholder made by
    /// consoles and sync tools, not a file, as is an object the store says is a
    /// folder: references to them are never wanted.
    pub fn is_folder_marker(&self) -> bool {
        self.folder || (self.size == 0 && self.key.ends_with('/'))
    }
}
