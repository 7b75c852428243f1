//! Parsing of source URLs: which cloud, which bucket, which keys.
//!
//! Accepted forms:
//! - `s3://bucket[/pattern]`
//! - `gs://bucket[/pattern]`
//! - `az://account/container[/pattern]`
//! - `https://account.blob.core.windows.net/container[/pattern]` (and the sovereign
//!   clouds' `blob.core.*` hosts)
//!
//! The pattern (everything after the bucket and its `/`) is taken literally: it is
//! **not** percent-decoded, because object keys may contain `%`. It may hold glob
//! wildcards; see [`crate::filter`].

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The storage service a source lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// AWS S3 and S3-compatible stores.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::S3 => "S3",
            Provider::Gcs => "GCS",
            Provider::Azure => "Azure",
        })
    }
}

/// A parsed source: provider, bucket and the key pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUrl {
    /// The storage service.
    pub provider: Provider,
    /// Azure storage account (only for Azure sources).
    pub account: Option<String>,
    /// Bucket (S3, GCS) or container (Azure).
    pub bucket: String,
    /// The key pattern: a literal prefix, optionally followed by glob wildcards.
    pub pattern: String,
    /// The service endpoint a URL-form source names (`https://acct.blob.core.windows.net`).
    pub endpoint: Option<String>,
}

const EXPECTED: &str = "expected s3://bucket/prefix, gs://bucket/prefix, az://account/container/prefix \
     or https://account.blob.core.windows.net/container/prefix";

impl FromStr for SourceUrl {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidSource {
            url: input.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = input.split_once("://") else {
            return Err(invalid(format!("no scheme; {EXPECTED}")));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "s3" => s3_bucket_and_pattern(rest)
                .map(|(bucket, pattern)| SourceUrl {
                    provider: Provider::S3,
                    account: None,
                    bucket,
                    pattern,
                    endpoint: None,
                })
                .map_err(invalid),
            "gs" => bucket_and_pattern(rest, "bucket")
                .map(|(bucket, pattern)| SourceUrl {
                    provider: Provider::Gcs,
                    account: None,
                    bucket,
                    pattern,
                    endpoint: None,
                })
                .map_err(invalid),
            "az" => {
                let (account, rest) = rest.split_once('/').unwrap_or((rest, ""));
                if account.is_empty() {
                    return Err(invalid("missing storage account name after az://".into()));
                }
                let (container, pattern) = bucket_and_pattern(rest, "container").map_err(invalid)?;
                Ok(SourceUrl {
                    provider: Provider::Azure,
                    account: Some(account.to_owned()),
                    bucket: container,
                    pattern,
                    endpoint: None,
                })
            }
            "https" | "http" => {
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                let Some((account, suffix)) = host.split_once('.') else {
                    return Err(invalid(format!("not an Azure Blob Storage URL; {EXPECTED}")));
                };
                if !suffix.to_ascii_lowercase().starts_with("blob.core.") || account.is_empty() {
                    return Err(invalid(format!(
                        "only Azure Blob Storage hosts (account.blob.core.windows.net) are accepted as https sources; {EXPECTED}"
                    )));
                }
                let (container, pattern) = bucket_and_pattern(path, "container").map_err(invalid)?;
                Ok(SourceUrl {
                    provider: Provider::Azure,
                    account: Some(account.to_owned()),
                    bucket: container,
                    pattern,
                    endpoint: Some(format!("{}://{host}", scheme.to_ascii_lowercase())),
                })
            }
            other => Err(invalid(format!("unknown scheme `{other}://`; {EXPECTED}"))),
        }
    }
}

/// The source as it would be typed: `s3://bucket/pattern`, `az://account/container/pattern`,
/// or the Azure URL form it was given in.
impl fmt::Display for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.provider, &self.endpoint, &self.account) {
            (Provider::Azure, Some(endpoint), _) => write!(f, "{endpoint}/{}/{}", self.bucket, self.pattern),
            (Provider::Azure, None, account) => write!(
                f,
                "az://{}/{}/{}",
                account.as_deref().unwrap_or_default(),
                self.bucket,
                self.pattern
            ),
            (Provider::S3, ..) => write!(f, "s3://{}/{}", self.bucket, self.pattern),
            (Provider::Gcs, ..) => write!(f, "gs://{}/{}", self.bucket, self.pattern),
        }
    }
}

/// Splits `bucket/pattern`, refusing an empty or malformed bucket name.
/// An S3 source's bucket, which may be an access point's ARN
/// (`arn:PARTITION:s3:REGION:ACCOUNT:accesspoint/NAME`, whose `/` does not end
/// it): the SDK lists through it, and URLs are signed for its host.
fn s3_bucket_and_pattern(rest: &str) -> Result<(String, String), String> {
    if rest.to_ascii_lowercase().starts_with("arn:") {
        let (resource, after) = rest.split_once('/').unwrap_or((rest, ""));
        let (name, pattern) = after.split_once('/').unwrap_or((after, ""));
        let fields: Vec<&str> = resource.split(':').collect();
        if fields.len() != 6 || fields[2] != "s3" || fields[5] != "accesspoint" || name.is_empty() {
            return Err(format!(
                "`{resource}/{name}` is not an S3 access point ARN (arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME)"
            ));
        }
        // The same characters are refused as in a bucket name.
        bucket_and_pattern(&format!("{resource}:{name}"), "access point")?;
        return Ok((format!("{resource}/{name}"), pattern.to_owned()));
    }
    bucket_and_pattern(rest, "bucket")
}

fn bucket_and_pattern(rest: &str, what: &str) -> Result<(String, String), String> {
    let (bucket, pattern) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("missing {what} name"));
    }
    if let Some(bad) = bucket
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "*?[]{}\\".contains(*c))
    {
        return Err(format!(
            "{what} name `{bucket}` contains {bad:?}, which no store allows"
        ));
    }
    Ok((bucket.to_owned(), pattern.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> SourceUrl {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn s3_access_point_arns_are_one_bucket() {
        let s = parse("s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/photos/**/*.jpg");
        assert_eq!(
            (s.bucket.as_str(), s.pattern.as_str()),
            ("arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap", "photos/**/*.jpg")
        );
        assert_eq!(
            s.to_string(),
            "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/photos/**/*.jpg"
        );
        assert_eq!(parse("s3://arn:aws:s3:us-west-2:1:accesspoint/ap").pattern, "");
        for bad in [
            "s3://arn:aws:s3:us-west-2:123456789012:accesspoint",
            "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/",
            "s3://arn:aws:s3:us-west-2:123456789012:bucket/b/x",
            "s3://arn:aws:s3-object-lambda:us-west-2:1:accesspoint/x/y",
        ] {
            let err = bad.parse::<SourceUrl>().expect_err(bad).to_string();
            assert!(err.contains("is not an S3 access point ARN"), "{bad}: {err}");
        }
    }

    #[test]
    fn s3_forms() {
        let s = parse("s3://media");
        assert_eq!(
            (s.provider, s.bucket.as_str(), s.pattern.as_str()),
            (Provider::S3, "media", "")
        );
        let s = parse("s3://media/images/**/*.jpg");
        assert_eq!((s.bucket.as_str(), s.pattern.as_str()), ("media", "images/**/*.jpg"));
        // the pattern is literal: no percent-decoding
        assert_eq!(parse("s3://b/a%20b").pattern, "a%20b");
        assert_eq!(parse("S3://b/x").provider, Provider::S3);
    }

    #[test]
    fn display_is_the_typed_form() {
        for typed in [
            "s3://media/images/**/*.jpg",
            "gs://b/",
            "az://acct/cont/pre/fix",
            "https://acct.blob.core.windows.net/cont/x/*.png",
        ] {
            assert_eq!(parse(typed).to_string(), typed);
        }
        assert_eq!(parse("s3://media").to_string(), "s3://media/");
    }

    #[test]
    fn gcs_and_azure_forms() {
        assert_eq!(parse("gs://bkt/p").provider, Provider::Gcs);
        let a = parse("az://acct/cont/pre/fix");
        assert_eq!(
            (a.account.as_deref(), a.bucket.as_str(), a.pattern.as_str()),
            (Some("acct"), "cont", "pre/fix")
        );
        let h = parse("https://acct.blob.core.windows.net/cont/x/*.png");
        assert_eq!(
            (h.provider, h.account.as_deref(), h.bucket.as_str(), h.pattern.as_str()),
            (Provider::Azure, Some("acct"), "cont", "x/*.png")
        );
        assert_eq!(h.endpoint.as_deref(), Some("https://acct.blob.core.windows.net"));
    }

    #[test]
    fn refusals_say_why() {
        for (input, needle) in [
            ("ftp://b/x", "unknown scheme `ftp://`"),
            ("bucket/key", "no scheme"),
            ("s3://", "missing bucket name"),
            ("s3:///key", "missing bucket name"),
            ("az://acct", "missing container name"),
            ("az:///c", "missing storage account"),
            ("https://example.com/c/x", "only Azure Blob Storage hosts"),
            ("s3://my bucket/x", "contains ' '"),
        ] {
            let err = input.parse::<SourceUrl>().expect_err(input).to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }
}
