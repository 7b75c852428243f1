//! Parsing `--expires-in`: `3600` (seconds), `90s`, `90m`, `12h`, `7d`.

use std::time::Duration;

use crate::Error;

/// The default URL lifetime: 24 hours, the official Roboflow client's value.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// Parses a positive duration: a whole number with an optional unit `s`, `m`, `h` or `d`.
pub fn parse_expiry(input: &str) -> Result<Duration, Error> {
    let invalid = |reason: &str| Error::InvalidExpiry {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    let text = input.trim();
    if text.starts_with('-') {
        return Err(invalid("must be positive"));
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(invalid(
            "expected a number with an optional unit s, m, h or d (e.g. 3600, 90m, 12h, 7d)",
        ));
    }
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid("unknown unit; use s, m, h or d (e.g. 3600, 90m, 12h, 7d)")),
    };
    let seconds = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| invalid("too large"))?;
    if seconds == 0 {
        return Err(invalid("must be at least one second"));
    }
    Ok(Duration::from_secs(seconds))
}

/// Writes a duration the way a person would (`7d`, `12h`, `90m`, `3601s`).
pub fn display_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A rounded-down duration for messages: `2h`, `2h5m`, `7m`, `42s`.
pub fn display_approx(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// Warns once per run that what the URLs are signed with (temporary credentials,
/// a SAS token) expires before the URLs would: they stop working when it does.
#[derive(Debug, Default)]
pub struct OutlivedWarning(std::sync::atomic::AtomicBool);

impl OutlivedWarning {
    /// Warns, the first time only, when `left` is shorter than `expires_in`;
    /// `what` names the credential, and `verb` agrees with it ("expires in").
    pub fn check(&self, what: &str, left: Duration, expires_in: Duration) {
        if left < expires_in && !self.0.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                "{what} in {}, before the URLs' {}: the URLs stop working when it does",
                display_approx(left),
                display_duration(expires_in)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        for (input, secs) in [
            ("3600", 3600),
            ("90s", 90),
            ("90m", 5400),
            ("12h", 43_200),
            ("7d", 604_800),
            ("1D", 86_400),
            (" 5m ", 300),
        ] {
            assert_eq!(parse_expiry(input).expect(input), Duration::from_secs(secs), "{input}");
        }
    }

    #[test]
    fn refused_forms() {
        for (input, reason) in [
            ("-5", "positive"),
            ("0", "at least one second"),
            ("0h", "at least one second"),
            ("", "expected a number"),
            ("h", "expected a number"),
            ("12w", "unknown unit"),
            ("1.5h", "unknown unit"),
            ("99999999999999999999", "too large"),
            ("999999999999999999d", "too large"),
        ] {
            let err = parse_expiry(input).expect_err(input).to_string();
            assert!(err.contains(reason), "{input}: {err}");
        }
    }

    #[test]
    fn approximate_display_rounds_down() {
        for (secs, shown) in [
            (42, "42s"),
            (7229, "2h"),
            (7500, "2h5m"),
            (420, "7m"),
            (90_000, "1d1h"),
            (86_500, "1d"),
        ] {
            assert_eq!(display_approx(Duration::from_secs(secs)), shown, "{secs}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["7d", "12h", "90m", "3601s"] {
            assert_eq!(display_duration(parse_expiry(s).expect(s)), s);
        }
    }
}
