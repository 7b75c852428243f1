//! The one redaction step. Every text that comes from a server (an error body, a
//! message, an echoed header or URL) passes through [`redact`] before it reaches a
//! message, a log line, a JSON field or a file; the command line runs its error
//! line and its log output through it once more.
//!
//! It knows two kinds of secret:
//! - **the run's own**, which the code that reads them hands to [`register`] (secret
//!   keys, session tokens, account keys, SAS tokens, OAuth tokens, API and
//!   publishable keys, a webhook URL's query values). Each is replaced in every
//!   encoding a server may echo it in: as it is, percent-encoded (upper- and
//!   lower-case hex), form-encoded, JSON-escaped (with `\/` and `\u00XX` too),
//!   XML-escaped, and base64 (standard and URL-safe, at each of the three
//!   alignments it can take inside a longer base64 text);
//! - **signatures and tokens by their names**, whose values refgen never saw as
//!   such (a URL's `X-Amz-Signature`, `X-Goog-Signature`, `sig`, `Signature`; the
//!   `x-amz-security-token` and `Authorization` headers; a connection string's
//!   `AccountKey` and `SharedAccessSignature`; S3's `<SignatureProvided>`).
//!
//! The registry is process-wide on purpose: an error is built deep in a provider
//! crate, far from where the credentials were read, and a secret hidden once too
//! often costs nothing. Matching is one pass of an Aho-Corasick automaton over all
//! the forms (aho-corasick, which globset already brings in), so a text is
//! scanned once however many secrets a run holds.

use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are not registered: a value that short would mask
/// ordinary words, and no key, token or signature refgen handles is that short.
const MIN_SECRET: usize = 8;

/// The registered secrets' forms and their automaton, rebuilt on each new secret
/// (a handful per run).
#[derive(Default)]
struct Registry {
    forms: Vec<String>,
    automaton: Option<Arc<AhoCorasick>>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    forms: Vec::new(),
    automaton: None,
});

/// Adds `secret` to what [`redact`] hides, in each of its encodings. Values
/// shorter than 8 characters, or holding only spaces, are ignored.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET {
        return;
    }
    let mut registry = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    if registry.forms.iter().any(|f| f == secret) {
        return;
    }
    for form in encodings(secret) {
        if form.len() >= MIN_SECRET && !registry.forms.contains(&form) {
            registry.forms.push(form);
        }
    }
    registry.automaton = AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&registry.forms)
        .ok()
        .map(Arc::new);
}

/// Registers each value of a URL's query string (a webhook URL's token, a SAS).
pub fn register_query_values(url: &str) {
    let Some((_, query)) = url.split_once('?') else {
        return;
    };
    let query = query.split('#').next().unwrap_or_default();
    register(query);
    for (_, value) in url::form_urlencoded::parse(query.as_bytes()) {
        register(&value);
    }
}

/// `text` with every registered secret, and every value of a secret-bearing
/// parameter or header, replaced by [`MASK`].
pub fn redact(text: &str) -> String {
    let automaton = REGISTRY.read().unwrap_or_else(|e| e.into_inner()).automaton.clone();
    let known = match automaton {
        Some(ac) => ac.replace_all(text, &vec![MASK; ac.patterns_len()]),
        None => text.to_owned(),
    };
    mask_named(&known)
}

/// Every form of `secret` a server may echo.
fn encodings(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    let percent = |lower: bool| -> String {
        bytes
            .iter()
            .map(|&b| match (unreserved(b), lower) {
                (true, _) => (b as char).to_string(),
                (false, false) => format!("%{b:02X}"),
                (false, true) => format!("%{b:02x}"),
            })
            .collect()
    };
    let form: String = url::form_urlencoded::byte_serialize(bytes).collect();
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.trim_matches('"').to_owned();
    let unicode = |lower: bool| -> String {
        secret
            .chars()
            .map(|c| match (c.is_ascii_alphanumeric(), lower) {
                (true, _) => c.to_string(),
                (false, false) if (c as u32) < 0x10000 => format!("\\u{:04X}", c as u32),
                (false, true) if (c as u32) < 0x10000 => format!("\\u{:04x}", c as u32),
                _ => c.to_string(),
            })
            .collect()
    };
    let xml = secret
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;");
    let mut forms = vec![
        secret.to_owned(),
        percent(false),
        percent(true),
        form.clone(),
        form_lower(&form),
        json.replace('/', "\\/"),
        json,
        unicode(false),
        unicode(true),
        xml,
    ];
    // Base64 inside a longer text: the secret's bytes start at one of three
    // offsets within a 3-byte group, and only the characters wholly its own are
    // fixed; those are the form to look for at each offset.
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for offset in 0..3usize {
            let mut padded = vec![0u8; offset];
            padded.extend_from_slice(bytes);
            let encoded = engine.encode(&padded);
            // Character i covers bits [6i, 6i + 6): it is wholly the secret's
            // when it starts at or after the filler's 8 * offset bits and ends
            // within the secret.
            let skip = (8 * offset).div_ceil(6);
            let end = 8 * padded.len() / 6;
            if skip < end && end <= encoded.len() {
                forms.push(encoded[skip..end].to_owned());
            }
        }
    }
    forms.sort();
    forms.dedup();
    forms
}

/// `%2B` → `%2b` in a form-encoded text.
fn form_lower(form: &str) -> String {
    let mut out = String::with_capacity(form.len());
    let mut hex = 0;
    for c in form.chars() {
        if hex > 0 {
            out.push(c.to_ascii_lowercase());
            hex -= 1;
        } else {
            out.push(c);
            if c == '%' {
                hex = 2;
            }
        }
    }
    out
}

/// Names whose values are secret wherever they appear, with what ends a value.
/// Matched without regard to case.
const NAMED: &[(&str, &[u8])] = &[
    // URL query parameters (a signed URL echoed back).
    ("x-amz-signature=", b"&\"'<>() \t\r\n,;\\"),
    ("x-amz-security-token=", b"&\"'<>() \t\r\n,;\\"),
    ("x-goog-signature=", b"&\"'<>() \t\r\n,;\\"),
    ("signature=", b"&\"'<>() \t\r\n,;\\"),
    ("sig=", b"&\"'<>() \t\r\n,;\\"),
    ("api_key=", b"&\"'<>() \t\r\n,;\\"),
    ("access_token=", b"&\"'<>() \t\r\n,;\\"),
    // Headers (an echoed request), to the end of the line.
    ("x-amz-security-token:", b"\"'<\r\n\\"),
    ("authorization:", b"\"'<\r\n\\"),
    ("x-goog-iam-authorization-token:", b"\"'<\r\n\\"),
    ("bearer ", b"\"'<> \t\r\n,;\\"),
    // Connection strings.
    ("accountkey=", b";\"'<> \t\r\n\\"),
    ("sharedaccesssignature=", b";\"'<> \t\r\n\\"),
    // S3's SignatureDoesNotMatch body.
    ("<signatureprovided>", b"<"),
];

fn named_automaton() -> &'static AhoCorasick {
    static NAMED_AC: std::sync::OnceLock<AhoCorasick> = std::sync::OnceLock::new();
    NAMED_AC.get_or_init(|| {
        AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(NAMED.iter().map(|(name, _)| name))
            .unwrap_or_else(|_| AhoCorasick::new(["\u{0}never"]).unwrap_or_else(|_| unreachable!()))
    })
}

/// Masks the value after each name of [`NAMED`], up to the first byte that ends it.
fn mask_named(text: &str) -> String {
    let ac = named_automaton();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for found in ac.find_iter(text) {
        if found.start() < at {
            continue;
        }
        let (_, ends) = NAMED[found.pattern().as_usize()];
        let value_start = found.end();
        // Leading spaces of a header value are kept as they are.
        let mut start = value_start;
        while start < bytes.len() && bytes[start] == b' ' && ends.contains(&b'\r') {
            start += 1;
        }
        let len = bytes[start..]
            .iter()
            .position(|b| ends.contains(b))
            .unwrap_or(bytes.len() - start);
        out.push_str(&text[at..start]);
        // A value shorter than any key, token or signature is a word ("a bearer
        // token", "sig=)"), left as it is.
        if len >= MIN_SECRET && !text[start..start + len].starts_with(MASK) {
            out.push_str(MASK);
        } else {
            out.push_str(&text[start..start + len]);
        }
        at = start + len;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_secret_is_hidden_in_every_encoding() {
        let secret = "wJalr+XUt/nFEMI=K7MDENG bPxRfiCY";
        register(secret);
        let percent_upper = "wJalr%2BXUt%2FnFEMI%3DK7MDENG%20bPxRfiCY";
        let forms = [
            secret.to_owned(),
            percent_upper.to_owned(),
            "wJalr%2bXUt%2fnFEMI%3dK7MDENG%20bPxRfiCY".to_owned(),
            "wJalr%2BXUt%2FnFEMI%3DK7MDENG+bPxRfiCY".to_owned(),
            "wJalr%2bXUt%2fnFEMI%3dK7MDENG+bPxRfiCY".to_owned(),
            "wJalr+XUt\\/nFEMI=K7MDENG bPxRfiCY".to_owned(),
            "wJalr\\u002BXUt\\u002FnFEMI\\u003DK7MDENG\\u0020bPxRfiCY".to_owned(),
        ];
        for form in &forms {
            let text = format!("<Message>echo {form} end</Message>");
            let out = redact(&text);
            assert!(!out.contains(form.as_str()), "{form}: {out}");
            assert!(out.contains(MASK), "{out}");
        }
        // Base64 of a text holding the secret, at each alignment.
        for prefix in ["", "a", "ab", "abc:"] {
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{prefix}{secret}:tail"));
            let out = redact(&format!("Authorization-Echo {encoded}"));
            assert!(!out.contains(&encoded), "{prefix}: {out}");
            for needle in ["wJalr", "bPxRfiCY"] {
                assert!(!out.contains(needle), "{out}");
            }
        }
    }

    #[test]
    fn named_signatures_and_headers_are_masked() {
        let text = "GET /b/k?X-Amz-Credential=AKIA%2F&X-Amz-Signature=abcdef0123&x-id=1 \
                    x-amz-security-token: IQoJb3JpZ2luX2VjEJ3\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIA, Signature=ffff\n\
                    https://a.blob/c/b?sv=2020&sig=Zm9v%2Bbar%3D&se=x <SignatureProvided>deadbeef</SignatureProvided> \
                    AccountKey=a2V5LWtleS1rZXk=;BlobEndpoint=x";
        let out = redact(text);
        for leaked in [
            "abcdef0123",
            "IQoJb3JpZ2luX2VjEJ3",
            "AWS4-HMAC-SHA256 Credential",
            "Zm9v",
            "deadbeef",
            "a2V5LWtleS1rZXk",
        ] {
            assert!(!out.contains(leaked), "{leaked}: {out}");
        }
        // What is not secret stays readable.
        for kept in [
            "X-Amz-Credential=AKIA%2F",
            "x-id=1",
            "sv=2020",
            "se=x",
            "BlobEndpoint=x",
        ] {
            assert!(out.contains(kept), "{kept}: {out}");
        }
        // Words after a name are not values.
        assert_eq!(redact("fetched a bearer token"), "fetched a bearer token");
        assert_eq!(
            redact("the SAS token has no signature (sig=); paste it whole"),
            "the SAS token has no signature (sig=); paste it whole"
        );
    }

    #[test]
    fn short_values_are_not_registered() {
        register("abc");
        assert_eq!(redact("abc abcd"), "abc abcd");
    }
}
