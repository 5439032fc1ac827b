//! Token amounts as people write them: CRN with up to 18 decimals.

use alloy_primitives::utils::{ParseUnits, format_units, parse_units};

use crate::U256;

/// Decimals of the native token.
pub const DECIMALS: u8 = 18;

/// An amount that is not a non-negative decimal number of CRN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an amount of CRN: write a number such as 12 or 0.5 (at most 18 decimals)")]
pub struct BadAmount(pub String);

/// Parses "1.5" (CRN) into wei.
pub fn parse_crn(text: &str) -> Result<U256, BadAmount> {
    let bad = || BadAmount(text.to_string());
    let text = text.trim();
    // alloy accepts "" as zero and truncates extra decimals silently: a wallet must not send
    // another amount than the one asked for, so the shape is checked here first.
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if whole.len() + fraction.len() == 0
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > usize::from(DECIMALS)
    {
        return Err(bad());
    }
    match parse_units(text, DECIMALS).map_err(|_| bad())? {
        ParseUnits::U256(wei) => Ok(wei),
        ParseUnits::I256(_) => Err(bad()),
    }
}

/// Formats wei as CRN without trailing zeros ("1.5", "0", "1000000").
pub fn format_crn(wei: U256) -> String {
    let text = format_units(wei, DECIMALS).unwrap_or_else(|_| wei.to_string());
    match text.split_once('.') {
        Some((whole, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                whole.to_string()
            } else {
                format!("{whole}.{fraction}")
            }
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_and_format() {
        let wei = U256::from(1_500_000_000_000_000_000u128);
        assert_eq!(parse_crn("1.5"), Ok(wei));
        assert_eq!(format_crn(wei), "1.5");
        assert_eq!(format_crn(U256::ZERO), "0");
        assert_eq!(format_crn(U256::from(7) * U256::from(10u128.pow(18))), "7");
        assert_eq!(parse_crn("0.000000000000000001"), Ok(U256::from(1)));
        for bad in [
            "-1",
            "abc",
            "1.0000000000000000001",
            "",
            ".",
            "1e5",
            "1.2.3",
        ] {
            assert!(parse_crn(bad).is_err(), "{bad}");
        }
    }
}
