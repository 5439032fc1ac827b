//! # cairn-reward-contracts
//!
//! Cairn's reward-settlement contracts: the Solidity sources (`contracts/`), the compiled
//! artifacts (`artifacts/`, committed, so a Rust build never needs Node), the
//! `alloy-sol-types` bindings generated from those artifacts, the predeploy addresses and the
//! map of reserved addresses.
//!
//! ## How data flows through it
//! `npm run compile` (in this directory) compiles `contracts/*.sol` with the pinned `solc` into
//! `artifacts/<Name>.json`; CI recompiles and fails if the committed artifacts differ. The
//! [`bindings`] module turns each artifact's ABI into Rust types: call encoders, return and
//! event decoders and an enum of the contract's custom errors. Genesis installs each
//! contract's runtime code ([`PREDEPLOYS`]) at its fixed address and calls its `initialize`
//! from the system address; the node calls the `closeEpoch` functions at every epoch boundary.
//!
//! The contracts are written for a parallel EVM: a proof or result transaction of one provider
//! writes no storage slot that another provider's writes, and nothing on those paths is a
//! global counter (rewards are pulled with `claim`, fees are recorded per provider and per
//! epoch and summed when the epoch closes).
//!
//! ## Example
//! ```
//! use alloy_sol_types::SolCall;
//! use cairn_reward_contracts::{STAKING, bindings::Staking, is_reserved};
//!
//! let call = Staking::unbondCall { amount: alloy_primitives::U256::from(5) }.abi_encode();
//! assert_eq!(&call[..4], &Staking::unbondCall::SELECTOR);
//! assert!(is_reserved(&STAKING));
//! ```

use alloy_primitives::{Address, B256, Bytes, U256, address};

pub mod bindings;
mod errors;
pub mod roles;

pub use errors::describe_revert;

/// The system caller: genesis initialization and epoch-closing calls come from here.
pub const SYSTEM: Address = address!("0xfffffffffffffffffffffffffffffffffffffffe");
/// The Staking predeploy.
pub const STAKING: Address = address!("0xca1e000000000000000000000000000000000001");
/// The ProviderRegistry predeploy.
pub const REGISTRY: Address = address!("0xca1e000000000000000000000000000000000002");
/// The StorageMarket predeploy.
pub const STORAGE_MARKET: Address = address!("0xca1e000000000000000000000000000000000003");
/// The ComputeMarket predeploy.
pub const COMPUTE_MARKET: Address = address!("0xca1e000000000000000000000000000000000004");
/// The RewardPool predeploy.
pub const REWARD_POOL: Address = address!("0xca1e000000000000000000000000000000000005");
/// Where the markets send the burnt share of every payment (`Cairn.BURN`): no key controls
/// it, so its balance is the tokens burnt since genesis.
pub const BURN: Address = address!("0x000000000000000000000000000000000000dEaD");
/// Every account that holds tokens for the contracts: the five predeploys and the burn
/// address. With the accounts of the people there are, they hold the whole supply.
pub const CONTRACT_HOLDERS: [Address; 6] = [
    STAKING,
    REGISTRY,
    STORAGE_MARKET,
    COMPUTE_MARKET,
    REWARD_POOL,
    BURN,
];
/// Precompile: blake3 chunk proof (root ‖ size ‖ index ‖ chunk ‖ path → 1 or 0).
pub const CHUNK_PROOF_PRECOMPILE: Address = address!("0x0000000000000000000000000000000000000c01");
/// Precompile: ed25519 signature check (public key ‖ signature ‖ message → 1 or 0).
pub const ED25519_PRECOMPILE: Address = address!("0x0000000000000000000000000000000000000c02");
/// Precompile: equivocation evidence (domain ‖ epoch ‖ key ‖ vote ‖ vote → 1 or 0).
pub const EQUIVOCATION_PRECOMPILE: Address = address!("0x0000000000000000000000000000000000000c03");

/// What a consensus key signs (ed25519, over these bytes) to prove that `staker` holds it
/// when registering as a validator with `vrf_key` on chain `chain_id`: the same bytes as
/// `Staking.possessionMessage`, `abi.encodePacked("cairn validator key v1", block.chainid,
/// staker, consensusKey, vrfKey)`.
pub fn validator_possession_message(
    chain_id: u64,
    staker: Address,
    consensus_key: &B256,
    vrf_key: &B256,
) -> Vec<u8> {
    const PREFIX: &[u8] = b"cairn validator key v1";
    let mut message = Vec::with_capacity(PREFIX.len() + 32 + 20 + 32 + 32);
    message.extend_from_slice(PREFIX);
    message.extend_from_slice(&U256::from(chain_id).to_be_bytes::<32>());
    message.extend_from_slice(staker.as_slice());
    message.extend_from_slice(consensus_key.as_slice());
    message.extend_from_slice(vrf_key.as_slice());
    message
}

/// What a party commits to for a compute job's result: `ComputeMarket.commitmentOf`,
/// keccak256 of `abi.encode(id, party, outputRoot, fuelUsed, outcome, salt)`. Without the
/// salt, a result's hash could be matched by anyone who computed the result.
pub fn job_commitment(
    id: B256,
    party: Address,
    output_root: B256,
    fuel_used: u64,
    outcome: u8,
    salt: B256,
) -> B256 {
    use alloy_sol_types::{SolType, sol_data};
    type Encoded = (
        sol_data::FixedBytes<32>,
        sol_data::Address,
        sol_data::FixedBytes<32>,
        sol_data::Uint<64>,
        sol_data::Uint<8>,
        sol_data::FixedBytes<32>,
    );
    let encoded = Encoded::abi_encode(&(id, party, output_root, fuel_used, outcome, salt));
    alloy_primitives::keccak256(encoded)
}

/// A predeployed contract: where it lives and its runtime code.
#[derive(Debug, Clone, Copy)]
pub struct Predeploy {
    /// Contract name.
    pub name: &'static str,
    /// Fixed address.
    pub address: Address,
    /// Runtime bytecode (the artifact's `deployedBytecode`).
    pub code: &'static Bytes,
}

/// Every predeploy, in address order.
pub const PREDEPLOYS: [Predeploy; 5] = [
    Predeploy {
        name: "Staking",
        address: STAKING,
        code: &bindings::Staking::DEPLOYED_BYTECODE,
    },
    Predeploy {
        name: "ProviderRegistry",
        address: REGISTRY,
        code: &bindings::ProviderRegistry::DEPLOYED_BYTECODE,
    },
    Predeploy {
        name: "StorageMarket",
        address: STORAGE_MARKET,
        code: &bindings::StorageMarket::DEPLOYED_BYTECODE,
    },
    Predeploy {
        name: "ComputeMarket",
        address: COMPUTE_MARKET,
        code: &bindings::ComputeMarket::DEPLOYED_BYTECODE,
    },
    Predeploy {
        name: "RewardPool",
        address: REWARD_POOL,
        code: &bindings::RewardPool::DEPLOYED_BYTECODE,
    },
];

/// Ethereum's precompiles, with room for future ones: `0x00…0000` to `0x00…0fff`. Cairn's own
/// precompiles are in that range too (0x0c01 to 0x0c03).
const LOW_RESERVED_END: u16 = 0x0fff;

/// Predeploys live at `0xca1e…00xx`: addresses with this 18-byte prefix.
const PREDEPLOY_PREFIX: [u8; 18] = [0xca, 0x1e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// Whether `address` belongs to a precompile, a predeploy slot, the system caller or the burn
/// address. Genesis refuses to allocate ordinary accounts there.
pub fn is_reserved(address: &Address) -> bool {
    let bytes = address.as_slice();
    let low = bytes[..18].iter().all(|b| *b == 0)
        && u16::from_be_bytes([bytes[18], bytes[19]]) <= LOW_RESERVED_END;
    low || bytes[..18] == PREDEPLOY_PREFIX || *address == SYSTEM || *address == BURN
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytecode compiled into the binary is the committed artifact's (a stale build
    /// would predeploy other code than the sources say).
    #[test]
    fn predeploys_carry_the_committed_artifacts() {
        for predeploy in PREDEPLOYS {
            let path = format!(
                "{}/artifacts/{}.json",
                env!("CARGO_MANIFEST_DIR"),
                predeploy.name
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let artifact: serde_json::Value = serde_json::from_str(&text).unwrap();
            let deployed = artifact["deployedBytecode"].as_str().unwrap();
            assert_eq!(deployed, predeploy.code.to_string(), "{}", predeploy.name);
        }
    }

    /// The message is Solidity's `abi.encodePacked` of the same values (the chain id as a
    /// uint256), as `Staking.possessionMessage` builds it.
    #[test]
    fn the_possession_message_is_the_packed_encoding() {
        use alloy_sol_types::SolValue;

        let (staker, key, vrf) = (
            Address::repeat_byte(0x11),
            B256::repeat_byte(0x22),
            B256::repeat_byte(0x33),
        );
        let packed = (
            "cairn validator key v1".to_string(),
            U256::from(31_337u64),
            staker,
            key,
            vrf,
        )
            .abi_encode_packed();
        assert_eq!(
            validator_possession_message(31_337, staker, &key, &vrf),
            packed
        );
    }

    #[test]
    fn reserved_ranges_cover_every_fixed_address() {
        for predeploy in PREDEPLOYS {
            assert!(is_reserved(&predeploy.address), "{}", predeploy.name);
            assert!(
                !predeploy.code.is_empty(),
                "{} has no runtime code",
                predeploy.name
            );
        }
        for address in [
            Address::ZERO,
            CHUNK_PROOF_PRECOMPILE,
            ED25519_PRECOMPILE,
            EQUIVOCATION_PRECOMPILE,
            SYSTEM,
        ] {
            assert!(is_reserved(&address));
        }
        assert!(!is_reserved(&Address::left_padding_from(
            &0x1000u16.to_be_bytes()
        )));
        assert!(!is_reserved(&Address::repeat_byte(0xaa)));
    }
}
