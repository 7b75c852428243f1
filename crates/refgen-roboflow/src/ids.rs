//! The id rules, checked locally before any request.

use crate::RoboflowError;

/// `^[a-z0-9_-]{1,64}$`.
pub fn validate_batch_id(id: &str) -> Result<(), RoboflowError> {
    check(id, 64, "batch id")
}

/// `^[a-z0-9_-]{1,20}$`.
pub fn validate_job_id(id: &str) -> Result<(), RoboflowError> {
    check(id, 20, "job id")
}

fn check(id: &str, max: usize, what: &'static str) -> Result<(), RoboflowError> {
    let ok = !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(RoboflowError::InvalidId {
            what,
            id: id.to_owned(),
            rule: format!("1 to {max} characters from a-z, 0-9, _ and -"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules() {
        assert!(validate_batch_id("my-batch_01").is_ok());
        assert!(validate_batch_id(&"a".repeat(64)).is_ok());
        for bad in ["", "My-Batch", "a b", "ünï", &"a".repeat(65)] {
            assert!(validate_batch_id(bad).is_err(), "{bad}");
        }
        assert!(validate_job_id(&"j".repeat(20)).is_ok());
        assert!(validate_job_id(&"j".repeat(21)).is_err());
    }
}
