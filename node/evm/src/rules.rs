//! What a transaction must satisfy to run at all, before any code: the EVM rules Cairn runs,
//! the gas caps, intrinsic gas, and the chain parameters and sender state a transaction is
//! checked against (by the mempool on entry and by the chain when it builds a block).

use cairn_primitives::{Transaction, U256};
use revm::context_interface::cfg::gas::calculate_initial_tx_gas;
use revm::primitives::hardfork::SpecId;

/// The EVM rules Cairn runs.
pub const SPEC: SpecId = SpecId::OSAKA;

/// The most gas one transaction may use: the block's limit, and never more than the per
/// transaction cap of the EVM rules (EIP-7825).
pub fn max_tx_gas(block_gas_limit: u64) -> u64 {
    block_gas_limit.min(revm::primitives::eip7825::TX_GAS_LIMIT_CAP)
}

/// A gas limit `percent` above `estimate` (saturating). An estimate is exact only for the
/// state it ran on; unused gas is not charged, so a margin costs the sender nothing.
pub fn gas_with_margin(estimate: u64, percent: u64) -> u64 {
    estimate.saturating_add(estimate.saturating_mul(percent) / 100)
}

/// The margin senders add to an estimate unless told otherwise: enough for a contract call
/// estimated in one epoch and included in the next, where it may write slots it left alone
/// (a first stake of an epoch does), or for a draw that walks further on the block's
/// randomness.
pub const DEFAULT_GAS_MARGIN_PERCENT: u64 = 50;

/// The least gas any transaction uses (a plain transfer's intrinsic gas).
pub const MIN_TX_GAS: u64 = 21_000;

/// Gas a transaction needs before any code runs (the same rule revm applies), an Ethereum
/// transaction's access list included.
pub fn intrinsic_gas(tx: &Transaction) -> u64 {
    let (accounts, slots) = tx
        .ethereum()
        .and_then(|ethereum| ethereum.access_list())
        .map_or((0, 0), |list| {
            let slots = list
                .0
                .iter()
                .map(|item| item.storage_keys.len() as u64)
                .sum();
            (list.0.len() as u64, slots)
        });
    let gas = calculate_initial_tx_gas(
        SPEC,
        &tx.body.input,
        tx.body.to.is_none(),
        accounts,
        slots,
        0,
        None,
    );
    (gas.initial_regular_gas + gas.initial_state_gas).max(gas.floor_gas)
}

/// The chain parameters a transaction is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainRules {
    /// Chain id.
    pub chain_id: u64,
    /// Most gas one block may use.
    pub block_gas_limit: u64,
    /// Base fee per gas.
    pub base_fee_per_gas: u64,
}

/// A sender's committed nonce and balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderState {
    /// Next nonce according to the committed state.
    pub nonce: u64,
    /// Committed balance.
    pub balance: U256,
}

#[cfg(test)]
mod tests {
    use super::gas_with_margin;

    #[test]
    fn the_gas_margin_is_a_percent_of_the_estimate() {
        assert_eq!(gas_with_margin(21_000, 0), 21_000);
        assert_eq!(gas_with_margin(100_000, 50), 150_000);
        assert_eq!(gas_with_margin(u64::MAX, 50), u64::MAX);
    }
}
