//! Receipts: what executing a transaction did.

use alloy_primitives::{Address, B256, Bytes, U256};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec::Canonical;

/// An event emitted by a contract.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Log {
    /// The emitting contract.
    pub address: Address,
    /// Indexed topics.
    pub topics: Vec<B256>,
    /// Unindexed data.
    pub data: Bytes,
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status", content = "reason")]
pub enum TxStatus {
    /// Ran to completion; its state changes stand.
    Success,
    /// Reverted by the contract; only the fee was charged.
    Revert,
    /// Stopped by the EVM (out of gas, invalid opcode, ...); only the fee was charged.
    Halt(String),
}

/// The outcome of one included transaction.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The transaction.
    pub tx_hash: B256,
    /// How it ended.
    #[serde(flatten)]
    pub status: TxStatus,
    /// Gas it used.
    pub gas_used: u64,
    /// Gas used by the block up to and including it.
    pub cumulative_gas_used: u64,
    /// Fee it paid (gas used × effective gas price), credited to the block's proposer.
    pub fee: U256,
    /// Address of the contract it created, if any.
    pub contract_address: Option<Address>,
    /// Return data, or revert data.
    pub output: Bytes,
    /// Events emitted, in order.
    pub logs: Vec<Log>,
}

impl Receipt {
    /// Whether the transaction succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == TxStatus::Success
    }

    /// The first log that decodes as event `E`.
    pub fn event<E: alloy_sol_types::SolEvent>(&self) -> Option<E> {
        self.logs.iter().find_map(|log| {
            let log =
                alloy_primitives::Log::new(log.address, log.topics.clone(), log.data.clone())?;
            E::decode_log(&log).ok().map(|decoded| decoded.data)
        })
    }
}

/// The receipts of one block, stored together, with the events of the chain's own calls that
/// opened it.
#[derive(Debug, Clone, PartialEq, Eq, Default, BorshSerialize, BorshDeserialize)]
pub struct BlockReceipts {
    /// One per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// Events emitted by the system calls run before the block's transactions (an epoch close:
    /// the storage market's seed and burn, the reward pool's `EpochClosed`, jailed validators),
    /// in the order emitted.
    pub system_logs: Vec<Log>,
}

impl Canonical for BlockReceipts {
    const NAME: &'static str = "receipts";
    const MAX_SIZE: usize = 256 * 1024 * 1024;
}

impl Canonical for Receipt {
    const NAME: &'static str = "receipt";
    const MAX_SIZE: usize = 16 * 1024 * 1024;
}
