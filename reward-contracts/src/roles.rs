//! Role bits in Staking.

/// Validator.
pub const VALIDATOR: u8 = 1;
/// Storage provider.
pub const STORAGE: u8 = 2;
/// Compute provider.
pub const COMPUTE: u8 = 4;

/// The names of the roles set in `bits` (validator, storage, compute).
pub fn names(bits: u8) -> Vec<&'static str> {
    [
        (VALIDATOR, "validator"),
        (STORAGE, "storage"),
        (COMPUTE, "compute"),
    ]
    .into_iter()
    .filter(|(bit, _)| bits & bit != 0)
    .map(|(_, name)| name)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_named_by_their_bits() {
        assert!(names(0).is_empty());
        assert_eq!(names(VALIDATOR | COMPUTE), vec!["validator", "compute"]);
    }
}
