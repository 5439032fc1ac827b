//! # cairn-reward-contracts
//!
//! Cairn's reward-settlement contracts: the Solidity sources, their compiled artifacts, the
//! bindings and the genesis predeploys (Staking, ProviderRegistry, StorageMarket,
//! ComputeMarket, RewardPool) arrive with the reward-contracts work.
//!
//! What every node needs from this crate already is the map of reserved addresses: the EVM
//! precompiles at the bottom of the address space, Cairn's own precompiles and the predeploy
//! range. Genesis refuses to allocate ordinary accounts there, so that a later predeploy can
//! never collide with an account a chain already holds.
//!
//! ## Example
//! ```
//! use alloy_primitives::Address;
//! use cairn_reward_contracts::is_reserved;
//!
//! assert!(is_reserved(&Address::with_last_byte(1))); // ecrecover
//! assert!(!is_reserved(&Address::repeat_byte(0xaa)));
//! ```

use alloy_primitives::Address;

/// Ethereum's precompiles (and room for future ones): `0x00…0000` to `0x00…0fff`.
pub const ETHEREUM_PRECOMPILES_END: u16 = 0x0fff;

/// First of Cairn's precompile addresses (blake3 chunk proofs, ed25519 signatures, ...).
pub const CAIRN_PRECOMPILES_START: u16 = 0x0c00;

/// Predeployed contracts live at `0xca1e…00xx`: 20 bytes with this 18-byte prefix.
pub const PREDEPLOY_PREFIX: [u8; 18] = [0xca, 0x1e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// Whether `address` belongs to a precompile or a predeploy slot.
pub fn is_reserved(address: &Address) -> bool {
    let bytes = address.as_slice();
    let low_range = bytes[..18].iter().all(|b| *b == 0)
        && u16::from_be_bytes([bytes[18], bytes[19]]) <= ETHEREUM_PRECOMPILES_END;
    low_range || bytes[..18] == PREDEPLOY_PREFIX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ranges() {
        assert!(is_reserved(&Address::ZERO));
        assert!(is_reserved(&Address::left_padding_from(
            &CAIRN_PRECOMPILES_START.to_be_bytes()
        )));
        assert!(!is_reserved(&Address::left_padding_from(
            &0x1000u16.to_be_bytes()
        )));
        let mut predeploy = [0u8; 20];
        predeploy[..18].copy_from_slice(&PREDEPLOY_PREFIX);
        predeploy[19] = 3;
        assert!(is_reserved(&Address::from(predeploy)));
    }
}
