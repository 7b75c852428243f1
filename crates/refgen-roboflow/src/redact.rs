//! Keeping the API key out of every message: the API may echo the request URL
//! (key percent-encoded) or its body in an error text.

/// `text` with every form of `key` a message can carry replaced by `***`: as it
/// is, percent-encoded as a query value (both `%2B` and `+` for spaces, upper- and
/// lower-case hex), and form-encoded.
pub(crate) fn redact(text: &str, key: &str) -> String {
    if key.is_empty() {
        return text.to_owned();
    }
    let form: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    let percent: String = key
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut forms = vec![key.to_owned(), form.clone(), percent.clone()];
    forms.push(form.to_ascii_lowercase_hex());
    forms.push(percent.to_ascii_lowercase_hex());
    // Longest first, so that a longer form is not half-replaced by a shorter one.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    let mut out = text.to_owned();
    for form in forms {
        out = out.replace(&form, "***");
    }
    out
}

trait LowerHex {
    fn to_ascii_lowercase_hex(&self) -> String;
}

impl LowerHex for String {
    /// The same escapes with lower-case hex digits (`%2b`), which some servers echo.
    fn to_ascii_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut chars = self.chars();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '%' {
                for _ in 0..2 {
                    if let Some(h) = chars.next() {
                        out.push(h.to_ascii_lowercase());
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn every_encoding_of_the_key_is_redacted() {
        let key = "ab+c/d=e f";
        for leaked in [
            "ab+c/d=e f",
            "ab%2Bc%2Fd%3De+f",
            "ab%2Bc%2Fd%3De%20f",
            "ab%2bc%2fd%3de+f",
            "ab%2bc%2fd%3de%20f",
        ] {
            let text = format!("bad request to https://api/x?api_key={leaked}&y=1");
            let out = redact(&text, key);
            assert_eq!(out, "bad request to https://api/x?api_key=***&y=1", "{leaked}");
        }
    }
}
