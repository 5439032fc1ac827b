//! Signed transactions.

use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec::Canonical;
use crate::keys::{AccountKey, address_of, verify};

/// The largest encoded transaction accepted anywhere (RPC, mempool, blocks).
pub const MAX_TX_SIZE: usize = 128 * 1024;

/// What a transaction asks for, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxBody {
    /// The chain this transaction is for; replays on another chain fail.
    pub chain_id: u64,
    /// The sender's transaction count before this one.
    pub nonce: u64,
    /// The most gas the transaction may use.
    pub gas_limit: u64,
    /// The most the sender pays per unit of gas, base fee included.
    #[serde(with = "quantity")]
    pub max_fee_per_gas: u128,
    /// The most the sender pays per unit of gas above the base fee.
    #[serde(with = "quantity")]
    pub max_priority_fee_per_gas: u128,
    /// The account called, or `None` to create a contract from `input`.
    pub to: Option<Address>,
    /// Native tokens (in wei) moved to `to`.
    pub value: U256,
    /// Call data, or init code for a create.
    pub input: Bytes,
}

impl TxBody {
    /// The digest the sender signs: domain-separated so that no other Cairn message (a vote, a
    /// block) can ever be mistaken for a transaction signature.
    pub fn signing_hash(&self) -> B256 {
        let mut hasher = blake3::Hasher::new_derive_key("cairn transaction signature v1");
        hasher.update(&self.encode());
        B256::from(*hasher.finalize().as_bytes())
    }

    /// Signs the body with `key`.
    pub fn sign(self, key: &AccountKey) -> Transaction {
        let signature = key.sign(&self.signing_hash().0);
        Transaction {
            body: self,
            public_key: key.public_key(),
            signature: signature.into(),
        }
    }

    /// Call or create.
    pub fn kind(&self) -> TxKind {
        self.to.map_or(TxKind::Create, TxKind::Call)
    }
}

impl Canonical for TxBody {
    const NAME: &'static str = "transaction body";
    const MAX_SIZE: usize = MAX_TX_SIZE;
}

/// A 64-byte ed25519 signature (a newtype because serde and borsh lack `[u8; 64]` support in
/// the forms needed here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [[u8; 32]; 2]);

impl From<[u8; 64]> for Signature {
    fn from(bytes: [u8; 64]) -> Self {
        let mut halves = [[0u8; 32]; 2];
        halves[0].copy_from_slice(&bytes[..32]);
        halves[1].copy_from_slice(&bytes[32..]);
        Self(halves)
    }
}

impl Signature {
    /// The 64 signature bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&self.0[0]);
        bytes[32..].copy_from_slice(&self.0[1]);
        bytes
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(self.to_bytes())))
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as Deserialize>::deserialize(deserializer)?;
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(text.trim_start_matches("0x"), &mut bytes)
            .map_err(serde::de::Error::custom)?;
        Ok(bytes.into())
    }
}

/// A transaction with its sender's public key and signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// What is asked for.
    #[serde(flatten)]
    pub body: TxBody,
    /// The sender's ed25519 public key.
    #[serde(with = "hex_32")]
    pub public_key: [u8; 32],
    /// The sender's signature over [`TxBody::signing_hash`].
    pub signature: Signature,
}

impl Canonical for Transaction {
    const NAME: &'static str = "transaction";
    const MAX_SIZE: usize = MAX_TX_SIZE;
}

impl Transaction {
    /// The transaction's identity: blake3 of its canonical encoding.
    pub fn hash(&self) -> B256 {
        B256::from(*blake3::hash(&self.encode()).as_bytes())
    }

    /// The sender's address, derived from the public key.
    pub fn sender(&self) -> Address {
        address_of(&self.public_key)
    }

    /// Whether the signature is valid for the body and public key.
    pub fn signature_is_valid(&self) -> bool {
        verify(
            &self.public_key,
            &self.body.signing_hash().0,
            &self.signature.to_bytes(),
        )
    }

    /// The most the sender can be charged: every unit of gas at the fee cap, plus the value.
    pub fn max_cost(&self) -> U256 {
        U256::from(self.body.gas_limit)
            .saturating_mul(U256::from(self.body.max_fee_per_gas))
            .saturating_add(self.body.value)
    }

    /// The price per gas actually paid under `base_fee`.
    pub fn effective_gas_price(&self, base_fee: u128) -> u128 {
        self.body
            .max_fee_per_gas
            .min(base_fee.saturating_add(self.body.max_priority_fee_per_gas))
    }
}

/// A transaction whose signature has been checked, with its hash and sender computed once.
/// The mempool admits only these, so the costly check happens before its lock is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTransaction {
    tx: Transaction,
    hash: B256,
    sender: Address,
}

impl VerifiedTransaction {
    /// Checks the signature; `None` if it does not match the body and public key.
    pub fn verify(tx: Transaction) -> Option<Self> {
        tx.signature_is_valid().then(|| Self {
            hash: tx.hash(),
            sender: tx.sender(),
            tx,
        })
    }

    /// The transaction.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// Its hash.
    pub fn hash(&self) -> B256 {
        self.hash
    }

    /// Its sender.
    pub fn sender(&self) -> Address {
        self.sender
    }
}

/// Serde of a 32-byte array as `0x` hex.
pub mod hex_32 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `bytes` as `0x` and 64 hex digits.
    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    /// Reads 64 hex digits, `0x` optional.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim_start_matches("0x"), &mut bytes)
            .map_err(serde::de::Error::custom)?;
        Ok(bytes)
    }
}

/// Serde of a `u128` as a `0x` hex quantity, as Ethereum's RPC writes them: JSON numbers lose
/// precision above 2^53 in many clients, and `serde_json::Value` cannot hold a `u128`.
pub(crate) mod quantity {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{value:#x}"))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        let digits = text
            .strip_prefix("0x")
            .ok_or_else(|| serde::de::Error::custom("expected a 0x hex quantity"))?;
        u128::from_str_radix(digits, 16).map_err(serde::de::Error::custom)
    }
}
