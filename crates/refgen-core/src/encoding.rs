//! Percent-encoding sets shared by the signers: every cloud's canonical form encodes
//! all but the unreserved characters (RFC 3986: `A-Z a-z 0-9 - . _ ~`).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// For object paths: everything but the unreserved set and `/`.
pub const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// For query names and values: everything but the unreserved set.
pub const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `value` encoded for a URL path (slashes kept).
pub fn path(value: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(value, PATH)
}

/// `value` encoded for a query string.
pub fn query(value: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(value, QUERY)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unreserved_stay_and_everything_else_is_encoded() {
        assert_eq!(super::path("a b/c~d_e-f.g+h%").to_string(), "a%20b/c~d_e-f.g%2Bh%25");
        assert_eq!(super::query("a/b c=").to_string(), "a%2Fb%20c%3D");
        assert_eq!(super::path("é").to_string(), "%C3%A9");
    }
}
