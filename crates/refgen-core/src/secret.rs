//! A string that must not be shown: a key, a token, a connection string. Making
//! one registers it with the redaction step ([`crate::redact`]), so that a server
//! that echoes it back never gets it shown.

/// A secret value: its `Debug` says only that it is there, so a struct holding
/// one can derive `Debug` without leaking it. Read it with [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        crate::redact::register(&value);
        Secret(value)
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("** redacted **")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "** redacted **");
        assert_eq!(format!("{:?}", Some(&s)), "Some(** redacted **)");
        assert_eq!(s.expose(), "hunter2");
    }
}
