//! Byte sizes for `--max-size`: `20971520`, `20971520B`, `20MiB`, `512KB`, `1.5GB`.
//!
//! Units are those of the AWS and Azure consoles: `KB`/`MB`/`GB`/`TB` are powers of
//! 1,000 and `KiB`/`MiB`/`GiB`/`TiB` powers of 1,024, any letter case; a bare number
//! (or `B`) is bytes.

use crate::Error;

/// Roboflow's limit on one image file: 20 MiB. Larger images fail the batch.
pub const ROBOFLOW_IMAGE_LIMIT: u64 = 20 * 1024 * 1024;

/// Parses a size into bytes.
pub fn parse_size(input: &str) -> Result<u64, Error> {
    let invalid = |reason: &str| Error::InvalidSize {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    let text = input.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| invalid("expected a number of bytes with an optional unit (20MiB, 512KB, 20971520B)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "tb" | "t" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(invalid("unknown unit; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB")),
    };
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(invalid("too large"));
    }
    if bytes < 1.0 {
        return Err(invalid("must be at least one byte"));
    }
    Ok(bytes as u64)
}

/// A size the way a person reads it: `20 MiB`, `1.5 GB`, `812 B`.
pub fn display_size(bytes: u64) -> String {
    for (unit, size) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        for (input, bytes) in [
            ("20971520", 20_971_520),
            ("20971520B", 20_971_520),
            ("20MiB", 20_971_520),
            ("20 mib", 20_971_520),
            ("512KB", 512_000),
            ("1.5GB", 1_500_000_000),
            ("2GiB", 2 << 30),
            ("1", 1),
        ] {
            assert_eq!(parse_size(input).expect(input), bytes, "{input}");
        }
    }

    #[test]
    fn refused_forms() {
        for (input, reason) in [
            ("", "expected a number"),
            ("big", "expected a number"),
            ("-5", "expected a number"),
            ("5XB", "unknown unit"),
            ("0", "at least one byte"),
            ("99999999999TiB", "too large"),
        ] {
            let err = parse_size(input).expect_err(input).to_string();
            assert!(err.contains(reason), "{input}: {err}");
        }
    }

    #[test]
    fn display() {
        assert_eq!(display_size(ROBOFLOW_IMAGE_LIMIT), "20 MiB");
        assert_eq!(display_size(1536), "1.5 KiB");
        assert_eq!(display_size(812), "812 B");
    }
}
