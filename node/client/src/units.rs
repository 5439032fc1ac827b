//! Sizes as people write them: a number with an optional unit.

use crate::error::ClientError;

/// Parses a byte size: a number with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB,
/// TB), e.g. `512MiB` or `10 GB`.
pub fn parse_size(text: &str) -> Result<u64, ClientError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|source| ClientError::BadSize {
        text: text.to_string(),
        source,
    })?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(ClientError::BadSizeUnit {
                unit: other.to_string(),
                text: text.to_string(),
            });
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| ClientError::SizeTooLarge(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_units_and_bad_ones_are_refused() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("10GiB").unwrap(), 10 << 30);
        assert_eq!(parse_size("3 MB").unwrap(), 3_000_000);
        for bad in ["", "GiB", "1.5GiB", "10 parsecs", "99999999999TiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
