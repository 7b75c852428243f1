//! Parsing durations (`--expires-in`, `--timeout`, …): `3600` (seconds), `90s`,
//! `90m`, `12h`, `7d`, and compounds of them (`1h30m`, `2d12h`), as s5cmd takes.

use std::time::{Duration, SystemTime};

use crate::Error;

/// The default URL lifetime: 24 hours, the official Roboflow client's value.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);

const FORMS: &str = "e.g. 3600, 90m, 12h, 1h30m, 7d";

/// Parses a positive duration: a whole number of seconds, or whole numbers each
/// followed by a unit `s`, `m`, `h` or `d` (`1h30m`), largest unit first.
pub fn parse_expiry(input: &str) -> Result<Duration, Error> {
    let invalid = |reason: String| Error::InvalidExpiry {
        input: input.to_owned(),
        reason,
    };
    let text = input.trim();
    if text.starts_with('-') {
        return Err(invalid("must be positive".into()));
    }
    if text.is_empty() || !text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid(format!(
            "expected a number with an optional unit s, m, h or d ({FORMS})"
        )));
    }
    let too_large = || invalid("too large".into());
    let mut seconds: u64 = 0;
    let mut rest = text;
    let mut last_unit = u64::MAX;
    while !rest.is_empty() {
        let split = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (digits, tail) = rest.split_at(split);
        if digits.is_empty() {
            return Err(invalid(format!("unknown unit; use s, m, h or d ({FORMS})")));
        }
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, after) = tail.split_at(unit_len);
        let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
            "" if after.is_empty() && seconds == 0 => 1,
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(invalid(format!("unknown unit; use s, m, h or d ({FORMS})"))),
        };
        if multiplier >= last_unit {
            return Err(invalid(format!(
                "units go from the largest to the smallest, once each ({FORMS})"
            )));
        }
        last_unit = multiplier;
        let part = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .ok_or_else(too_large)?;
        seconds = seconds.checked_add(part).ok_or_else(too_large)?;
        rest = after;
    }
    if seconds == 0 {
        return Err(invalid("must be at least one second".into()));
    }
    Ok(Duration::from_secs(seconds))
}

/// Writes a duration the way it is typed: whole days from two days up (`7d`),
/// otherwise hours, minutes and seconds (`24h`, `1h30m`, `90s`), so the default
/// `24h` is shown as `24h`.
pub fn display_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 2 * 86_400 && s.is_multiple_of(86_400) {
        return format!("{}d", s / 86_400);
    }
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
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

/// A signed URL's compact timestamp, `20261202T041500Z` (SigV4's `X-Amz-Date`,
/// GCS V4's `X-Goog-Date`).
pub fn parse_compact_time(text: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(text, &format).ok()?.assume_utc();
    Some(SystemTime::from(t))
}

/// The value of `name` in a URL's query pairs (without regard to case), the last
/// when it repeats, as a reader of the query in order keeps it.
pub fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let found = query.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name));
    found.map(|(_, v)| v.as_str())
}

/// When a URL signed at `date` (compact, [`parse_compact_time`]) for `seconds`
/// starts and stops being valid: SigV4's and GCS V4's `…-Date` and `…-Expires`.
pub fn dated_validity(date: &str, seconds: &str) -> Option<(SystemTime, SystemTime)> {
    let start = parse_compact_time(date)?;
    Some((start, start + Duration::from_secs(seconds.parse().ok()?)))
}

/// `at` in RFC 3339, to the second, in UTC: `2026-12-02T04:15:00Z`.
pub fn format_rfc3339(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// An RFC 3339 time, `2026-12-02T04:15:00Z`, or as an Azure SAS also allows it,
/// without the seconds or the time.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Some(SystemTime::from(t));
    }
    let minutes = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]Z");
    if let Ok(t) = time::PrimitiveDateTime::parse(text, &minutes) {
        return Some(SystemTime::from(t.assume_utc()));
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &day)
        .ok()
        .map(|d| SystemTime::from(d.midnight().assume_utc()))
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
            ("1h30m", 5400),
            ("2d12h", 216_000),
            ("1h30m15s", 5415),
            ("1H30M", 5400),
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
            ("soon", "expected a number"),
            ("30m1h", "largest to the smallest"),
            ("1h1h", "largest to the smallest"),
            ("1h 30", "unknown unit"),
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
        for s in ["7d", "12h", "24h", "1h30m", "45m", "1h1s", "3s", "36h"] {
            assert_eq!(display_duration(parse_expiry(s).expect(s)), s);
        }
    }
}
