//! Blocks and their headers.

use alloy_primitives::{Address, B256};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::beacon::{self, BeaconProof};
use crate::codec::Canonical;
use crate::consensus::Certificate;
use crate::receipt::{Log, Receipt};
use crate::transaction::{Signature, Transaction, hex_32};

/// The most bytes of encoded transactions a block holds: a consensus rule, enforced by the
/// builder and by every validator. Without it a block could carry megabytes of cheap zero-byte
/// calldata, and a run of such blocks would make a sync response too large to serve. Half of
/// a proposal's size limit, so that a full block, its header and its parent's votes fit in one.
pub const MAX_BLOCK_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;

/// The header: everything a block commits to.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// The chain this block belongs to.
    pub chain_id: u64,
    /// Hash of the previous block (zero for genesis).
    pub parent: B256,
    /// Number of blocks before this one.
    pub height: u64,
    /// Consensus view in which the block was proposed.
    pub view: u64,
    /// The proposer's consensus public key.
    #[serde(with = "hex_32")]
    pub proposer: [u8; 32],
    /// Account credited with the block's fees.
    pub beneficiary: Address,
    /// Proposer's clock, in milliseconds since the Unix epoch; never below the parent's.
    pub timestamp_ms: u64,
    /// Commitment to the transactions, in order.
    pub tx_root: B256,
    /// Commitment to the receipts, in order.
    pub receipts_root: B256,
    /// Root of the state tree after the block.
    pub state_root: B256,
    /// The block's randomness (the beacon value, `block.prevrandao`): the proposer's VRF of
    /// (chain id, height, the parent's randomness), see [`crate::beacon`].
    pub randomness: B256,
    /// The proposer's VRF output (a compressed point).
    #[serde(with = "hex_32")]
    pub vrf_output: [u8; 32],
    /// The proof that `vrf_output` is the VRF of the proposer's registered VRF key.
    pub vrf_proof: Signature,
    /// blake3 of the block's `parent_votes` certificate (zero when it carries none).
    pub parent_votes_hash: B256,
    /// Gas used by all transactions.
    pub gas_used: u64,
    /// Most gas the block may use.
    pub gas_limit: u64,
    /// Base fee per gas of the block's transactions.
    pub base_fee_per_gas: u64,
}

impl Canonical for Header {
    const NAME: &'static str = "block header";
    const MAX_SIZE: usize = 1024;
}

impl Header {
    /// The block's identity: blake3 of the canonical header, which commits to the rest.
    pub fn hash(&self) -> B256 {
        B256::from(*blake3::hash(&self.encode()).as_bytes())
    }

    /// The EVM timestamp (seconds).
    pub fn timestamp_secs(&self) -> u64 {
        self.timestamp_ms / 1000
    }

    /// The header's beacon proof.
    pub fn beacon(&self) -> BeaconProof {
        BeaconProof {
            output: self.vrf_output,
            proof: self.vrf_proof,
        }
    }

    /// Whether the header's randomness is the VRF, under `vrf_key`, of the parent's
    /// randomness `previous`.
    pub fn randomness_is_valid(&self, vrf_key: &[u8; 32], previous: &B256) -> bool {
        beacon::verify(
            vrf_key,
            self.chain_id,
            self.height,
            previous,
            &self.beacon(),
        ) == Some(self.randomness)
    }
}

/// A header and its transactions.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions, in execution order.
    pub transactions: Vec<Transaction>,
    /// The certificate that notarized (or finalized) the parent, as the leader had it: the
    /// chain records its signers as active, so that a validator that signs nothing for a
    /// whole epoch can be told apart and jailed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_votes: Option<Certificate>,
}

impl Canonical for Block {
    const NAME: &'static str = "block";
    const MAX_SIZE: usize = 64 * 1024 * 1024;
}

impl Block {
    /// The block hash (the header's).
    pub fn hash(&self) -> B256 {
        self.header.hash()
    }

    /// The encoded bytes of its transactions, held to [`MAX_BLOCK_TRANSACTION_BYTES`].
    pub fn transaction_bytes(&self) -> usize {
        self.transactions.iter().map(Canonical::encoded_len).sum()
    }
}

/// The header's `parent_votes_hash` for a block carrying `votes`.
pub fn parent_votes_hash(votes: Option<&Certificate>) -> B256 {
    votes.map_or(B256::ZERO, |votes| {
        B256::from(*blake3::hash(&votes.encode()).as_bytes())
    })
}

/// Ordered commitment to a list of 32-byte hashes. BLAKE3 is itself a Merkle tree over 1 KiB
/// chunks, so hashing the concatenation gives a root with inclusion proofs for 32 items per
/// leaf chunk; the context string keeps roots of different lists apart.
fn list_root(context: &str, items: impl Iterator<Item = B256>) -> B256 {
    let mut hasher = blake3::Hasher::new_derive_key(context);
    for item in items {
        hasher.update(item.as_slice());
    }
    B256::from(*hasher.finalize().as_bytes())
}

/// The header's `tx_root` for transactions with these hashes, in block order.
pub fn tx_root(tx_hashes: &[B256]) -> B256 {
    list_root("cairn transactions root v1", tx_hashes.iter().copied())
}

/// The header's `receipts_root` for these receipts and the events of the block's system calls:
/// one leaf per receipt, then one for all the system events (none when there are none, so a
/// block without them keeps the root it always had).
pub fn receipts_root(receipts: &[Receipt], system_logs: &[Log]) -> B256 {
    let system = (!system_logs.is_empty()).then(|| {
        let mut hasher = blake3::Hasher::new_derive_key("cairn system logs v1");
        if let Err(e) = BorshSerialize::serialize(system_logs, &mut hasher) {
            unreachable!("borsh writes into a hasher without error: {e}");
        }
        B256::from(*hasher.finalize().as_bytes())
    });
    list_root(
        "cairn receipts root v1",
        receipts
            .iter()
            .map(|r| B256::from(*blake3::hash(&r.encode()).as_bytes()))
            .chain(system),
    )
}
