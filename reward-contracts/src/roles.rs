//! Role bits in Staking.

/// Validator.
pub const VALIDATOR: u8 = 1;
/// Storage provider.
pub const STORAGE: u8 = 2;
/// Compute provider.
pub const COMPUTE: u8 = 4;
