//! Shared access signatures for Blob Storage, pinned to one service version.
//!
//! Service SAS (blob `sr=b` and container `sr=c`), account SAS, and user-delegation
//! SAS, all HMAC-SHA256 over a newline-joined string whose layout depends on the
//! service version (`sv`). refgen pins [`SERVICE_VERSION`], and the layouts below are
//! those of that version, checked against the official Python SDK's answers
//! (`shared/vectors/azure/sas_vectors.json` and `tests/user_delegation_vectors.json`,
//! made by `scripts/azure-sas-vectors.py`).
//!
//! Blob names are signed in their canonical (decoded) form, `/blob/account/container/name`,
//! and percent-encoded only in the URL path.

use std::time::SystemTime;

use aws_lc_rs::hmac;
use base64::Engine as _;
use refgen_core::encoding;

/// The storage service version refgen signs for and sends.
pub const SERVICE_VERSION: &str = "2026-10-06";

/// An account key, decoded once. Never shown by `Debug`. Shared, because a prepared
/// HMAC key is over a kilobyte and every URL of a run signs with the same one.
#[derive(Clone)]
pub struct AccountKey(std::sync::Arc<hmac::Key>);

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountKey(** redacted **)")
    }
}

impl AccountKey {
    /// From the base64 key the portal shows.
    pub fn from_base64(key: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(key.trim()).ok()?;
        (!bytes.is_empty()).then(|| AccountKey(std::sync::Arc::new(hmac::Key::new(hmac::HMAC_SHA256, &bytes))))
    }

    /// Base64 HMAC-SHA256 of a string to sign.
    pub fn sign(&self, string_to_sign: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(hmac::sign(&self.0, string_to_sign.as_bytes()))
    }
}

/// A user delegation key, as Get User Delegation Key returns it.
#[derive(Clone)]
pub struct UserDelegationKey {
    /// `SignedOid`.
    pub signed_oid: String,
    /// `SignedTid`.
    pub signed_tid: String,
    /// `SignedStart`.
    pub signed_start: String,
    /// `SignedExpiry`.
    pub signed_expiry: String,
    /// `SignedService`.
    pub signed_service: String,
    /// `SignedVersion`.
    pub signed_version: String,
    /// `SignedDelegatedUserTid`, when the key carries one.
    pub signed_delegated_user_tid: Option<String>,
    /// The key itself.
    pub key: AccountKey,
}

impl std::fmt::Debug for UserDelegationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserDelegationKey")
            .field("signed_oid", &self.signed_oid)
            .field("signed_expiry", &self.signed_expiry)
            .field("key", &"** redacted **")
            .finish_non_exhaustive()
    }
}

/// What a service SAS grants, and on what.
#[derive(Debug, Clone, Default)]
pub struct SasFields<'a> {
    /// `sp`: permissions, e.g. `r`, `rl`, `cw`.
    pub permissions: &'a str,
    /// `st`: optional start.
    pub start: Option<&'a str>,
    /// `se`: expiry.
    pub expiry: &'a str,
    /// `spr`: `https` or `https,http`.
    pub protocol: Option<&'a str>,
    /// `rscd`: Content-Disposition override.
    pub content_disposition: Option<&'a str>,
    /// `rsct`: Content-Type override.
    pub content_type: Option<&'a str>,
}

impl<'a> SasFields<'a> {
    /// The query parameters every SAS starts with: `st`, `se`, `sp`, `spr`, `sv`.
    fn query_head(&self) -> [(&'static str, Option<&'a str>); 5] {
        [
            ("st", self.start),
            ("se", Some(self.expiry)),
            ("sp", Some(self.permissions)),
            ("spr", self.protocol),
            ("sv", Some(SERVICE_VERSION)),
        ]
    }

    /// The signed IP (refgen signs none), protocol and service version, in the
    /// middle of every string to sign.
    fn ip_protocol_version(&self) -> [&'a str; 3] {
        ["", self.protocol.unwrap_or(""), SERVICE_VERSION]
    }

    /// A service or user-delegation string to sign: `head`, the signed IP,
    /// protocol and version, `after_version`, and the response-header overrides.
    fn string_to_sign(&self, head: &[&str], after_version: &[&str]) -> String {
        let middle = self.ip_protocol_version();
        [head, &middle, after_version, &self.response_headers()]
            .concat()
            .join("\n")
    }

    /// The response-header overrides a service or user-delegation string to sign
    /// ends with: `rscc`, `rscd`, `rsce`, `rscl`, `rsct` (refgen sets two).
    fn response_headers(&self) -> [&'a str; 5] {
        let (rscd, rsct) = (self.content_disposition.unwrap_or(""), self.content_type.unwrap_or(""));
        ["", rscd, "", "", rsct]
    }
}

/// A SAS: the string that was signed and the query to append (without `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sas {
    /// The string to sign (for tests and diagnostics; it holds no secret).
    pub string_to_sign: String,
    /// `sp=…&…&sig=…`, values percent-encoded.
    pub query: String,
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form SAS times take (RFC 3339 to the second).
pub fn sas_time(t: SystemTime) -> String {
    refgen_core::expiry::format_rfc3339(t)
}

fn query(pairs: &[(&str, Option<&str>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| {
            v.filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", encoding::query(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Which resource a service SAS covers.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    /// One blob (`sr=b`).
    Blob(&'a str),
    /// One version of a blob (`sr=bv`; the URL carries `versionid`).
    BlobVersion(&'a str, &'a str),
    /// The whole container (`sr=c`).
    Container,
}

/// A service SAS signed with the account key.
pub fn service_sas(key: &AccountKey, account: &str, container: &str, resource: Resource<'_>, f: &SasFields<'_>) -> Sas {
    let (canonical, sr) = canonical_resource(account, container, resource);
    let head = [
        f.permissions,
        f.start.unwrap_or(""),
        f.expiry,
        &canonical,
        "", // signed identifier
    ];
    let after_version = [
        sr,                 // signed resource
        resource.version(), // snapshot time, or the version id
        "",                 // encryption scope
    ];
    let string_to_sign = f.string_to_sign(&head, &after_version);
    let sig = key.sign(&string_to_sign);
    let query = query(
        &[
            &f.query_head()[..],
            &[
                ("sr", Some(sr)),
                ("rscd", f.content_disposition),
                ("rsct", f.content_type),
                ("sig", Some(&sig)),
            ],
        ]
        .concat(),
    );
    Sas { string_to_sign, query }
}

/// A user-delegation SAS signed with a user delegation key.
pub fn user_delegation_sas(
    key: &UserDelegationKey,
    account: &str,
    container: &str,
    resource: Resource<'_>,
    f: &SasFields<'_>,
) -> Sas {
    let (canonical, sr) = canonical_resource(account, container, resource);
    let skdutid = key.signed_delegated_user_tid.as_deref();
    let head = [
        f.permissions,
        f.start.unwrap_or(""),
        f.expiry,
        &canonical,
        &key.signed_oid,
        &key.signed_tid,
        &key.signed_start,
        &key.signed_expiry,
        &key.signed_service,
        &key.signed_version,
        "", // authorized object id
        "", // unauthorized object id
        "", // correlation id
        skdutid.unwrap_or(""),
        "", // delegated user object id
    ];
    let after_version = [
        sr,                 // signed resource
        resource.version(), // snapshot time, or the version id
        "",                 // encryption scope
        "",                 // signed request headers
        "",                 // signed request query
    ];
    let string_to_sign = f.string_to_sign(&head, &after_version);
    let sig = key.key.sign(&string_to_sign);
    let query = query(
        &[
            &f.query_head()[..],
            &[
                ("sr", Some(sr)),
                ("skoid", Some(&key.signed_oid)),
                ("sktid", Some(&key.signed_tid)),
                ("skt", Some(&key.signed_start)),
                ("ske", Some(&key.signed_expiry)),
                ("sks", Some(&key.signed_service)),
                ("skv", Some(&key.signed_version)),
                ("skdutid", skdutid),
                ("rscd", f.content_disposition),
                ("rsct", f.content_type),
                ("sig", Some(&sig)),
            ],
        ]
        .concat(),
    );
    Sas { string_to_sign, query }
}

/// An account SAS for the blob service (`ss=b`).
pub fn account_sas(key: &AccountKey, account: &str, resource_types: &str, f: &SasFields<'_>) -> Sas {
    let head = [
        account,
        f.permissions,
        "b",
        resource_types,
        f.start.unwrap_or(""),
        f.expiry,
    ];
    let tail = ["" /* encryption scope */, ""];
    let string_to_sign = [&head[..], &f.ip_protocol_version(), &tail].concat().join("\n");
    let sig = key.sign(&string_to_sign);
    let query = query(
        &[
            &f.query_head()[..],
            &[("ss", Some("b")), ("srt", Some(resource_types)), ("sig", Some(&sig))],
        ]
        .concat(),
    );
    Sas { string_to_sign, query }
}

impl Resource<'_> {
    /// The version a SAS is for (signed in the snapshot time's place), or "".
    fn version(&self) -> &str {
        match self {
            Resource::BlobVersion(_, version) => version,
            _ => "",
        }
    }
}

fn canonical_resource(account: &str, container: &str, resource: Resource<'_>) -> (String, &'static str) {
    match resource {
        Resource::Blob(name) => (format!("/blob/{account}/{container}/{name}"), "b"),
        Resource::BlobVersion(name, _) => (format!("/blob/{account}/{container}/{name}"), "bv"),
        Resource::Container => (format!("/blob/{account}/{container}"), "c"),
    }
}

/// The URL path of a blob: the name percent-encoded, `/` kept.
pub fn encode_blob_path(name: &str) -> String {
    encoding::path(name).to_string()
}

/// When a SAS starts and stops being valid, read from its query (`st`, `se`;
/// no `st` means valid from the start); `None` for a query without `se`.
pub fn validity(query: &[(String, String)]) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
    use refgen_core::expiry::{parse_rfc3339, query_value};
    let end = parse_rfc3339(query_value(query, "se")?)?;
    let start = query_value(query, "st").and_then(parse_rfc3339);
    Some((start.unwrap_or(std::time::UNIX_EPOCH), end))
}
