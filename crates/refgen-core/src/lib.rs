//! Provider-neutral core of refgen.
//!
//! refgen turns the objects of a bucket into a *references file*: one JSON line
//! `{"name": …, "url": …}` per object, with a signed GET URL. This crate holds
//! everything that does not depend on a cloud:
//!
//! - [`source`]: parsing `s3://`, `gs://`, `az://` and Azure `https://` sources;
//! - [`filter`]: glob selection (literal prefix sent to the server, the rest matched
//!   locally), `--include`/`--exclude` and the media presets;
//! - [`naming`]: the rules that turn keys into unique names;
//! - [`expiry`]: parsing `--expires-in`; [`size`]: parsing `--max-size`;
//! - [`shard`]: one worker's share of a run (`--shard K/N`);
//! - [`list::ListClient`], [`Signer`] and [`Uploader`]: the traits each provider
//!   implements (listing is one method, [`list::ListClient::list_page`]);
//! - [`writer`]: the streaming, atomic JSON Lines writer, and [`writer::TargetFile`],
//!   the target rules of every other file refgen writes;
//! - [`redact`]: the one redaction step for every text a server sends back;
//! - [`inventory`]: reading a cloud's inventory report (CSV, Parquet, ORC) instead of listing;
//! - [`list`]: one listing split into parts listed concurrently, in key order;
//! - [`pipeline`]: list → filter → sign → write as one bounded stream.

pub mod encoding;
mod error;
pub mod expiry;
pub mod filter;
pub mod inventory;
pub mod list;
pub mod local;
pub mod naming;
mod object;
pub mod pipeline;
pub mod redact;
mod secret;
pub mod shard;
pub mod size;
pub mod source;
mod traits;
pub mod writer;

pub use error::{BoxError, Error, Hint, StorageErrorKind};
pub use list::{ListClient, PageStream};
pub use object::ObjectMeta;
pub use secret::Secret;
pub use traits::{Downloader, Signer, Uploader};
