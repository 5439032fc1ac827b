//! Signed transactions.

use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec::Canonical;
use crate::error::EthereumTxError;
use crate::ethereum::{EthereumEnvelope, EthereumKey};
use crate::keys::{AccountKey, address_of, verify};
use alloy_consensus::{Transaction as _, TxEip1559};

/// The largest encoded transaction accepted anywhere (RPC, mempool, blocks).
pub const MAX_TX_SIZE: usize = 128 * 1024;

// An Ethereum envelope of the largest size still makes a transaction within the limit.
const _: () = assert!(crate::ethereum::MAX_ENVELOPE_SIZE + 1 + 1 + 4 <= MAX_TX_SIZE);

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
            witness: Witness::Ed25519 {
                public_key: key.public_key(),
                signature: signature.into(),
            },
        }
    }

    /// Signs the body with an Ethereum key, as an EIP-1559 transaction with no access list.
    pub fn sign_ethereum(&self, key: &EthereumKey) -> Result<Transaction, EthereumTxError> {
        key.sign(TxEip1559 {
            chain_id: self.chain_id,
            nonce: self.nonce,
            gas_limit: self.gas_limit,
            max_fee_per_gas: self.max_fee_per_gas,
            max_priority_fee_per_gas: self.max_priority_fee_per_gas,
            to: self.kind(),
            value: self.value,
            access_list: Default::default(),
            input: self.input.clone(),
        })
        .map(Transaction::from)
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

/// Who signed a transaction, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witness {
    /// Cairn's own: an ed25519 public key and its signature over [`TxBody::signing_hash`].
    Ed25519 {
        /// The sender's ed25519 public key.
        public_key: [u8; 32],
        /// The signature.
        signature: Signature,
    },
    /// An Ethereum transaction as its sender signed it (secp256k1).
    Ethereum(Box<EthereumEnvelope>),
}

/// A signed transaction of either kind: what it asks for, and who signed it. Both kinds share
/// the mempool, blocks, execution and receipts; the body of an Ethereum transaction is read
/// from its envelope (a legacy or EIP-2930 transaction's gas price is both its fee cap and its
/// tip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// What is asked for.
    pub body: TxBody,
    /// Who signed it.
    pub witness: Witness,
}

impl Canonical for Transaction {
    const NAME: &'static str = "transaction";
    const MAX_SIZE: usize = MAX_TX_SIZE;
}

/// The tags of the two kinds in the canonical encoding.
const ED25519_TAG: u8 = 0;
const ETHEREUM_TAG: u8 = 1;

impl BorshSerialize for Transaction {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        match &self.witness {
            Witness::Ed25519 {
                public_key,
                signature,
            } => {
                BorshSerialize::serialize(&ED25519_TAG, writer)?;
                BorshSerialize::serialize(&self.body, writer)?;
                BorshSerialize::serialize(public_key, writer)?;
                BorshSerialize::serialize(signature, writer)
            }
            // The envelope alone: the body is read from it.
            Witness::Ethereum(envelope) => {
                BorshSerialize::serialize(&ETHEREUM_TAG, writer)?;
                BorshSerialize::serialize(&envelope.encoded().to_vec(), writer)
            }
        }
    }
}

impl BorshDeserialize for Transaction {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        match u8::deserialize_reader(reader)? {
            ED25519_TAG => Ok(Self {
                body: TxBody::deserialize_reader(reader)?,
                witness: Witness::Ed25519 {
                    public_key: <[u8; 32]>::deserialize_reader(reader)?,
                    signature: Signature::deserialize_reader(reader)?,
                },
            }),
            ETHEREUM_TAG => {
                let encoded = Vec::<u8>::deserialize_reader(reader)?;
                Self::from_ethereum(&encoded).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
                })
            }
            tag => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unknown transaction kind {tag}"),
            )),
        }
    }
}

/// How a transaction reads in JSON: the body's fields, and either `publicKey` and `signature`
/// or `ethereum`, the envelope's bytes.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransactionJson {
    #[serde(flatten)]
    body: TxBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<B256>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<Signature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ethereum: Option<Bytes>,
}

impl Serialize for Transaction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (public_key, signature, ethereum) = match &self.witness {
            Witness::Ed25519 {
                public_key,
                signature,
            } => (Some(B256::from(*public_key)), Some(*signature), None),
            Witness::Ethereum(envelope) => (None, None, Some(envelope.encoded().clone())),
        };
        TransactionJson {
            body: self.body.clone(),
            public_key,
            signature,
            ethereum,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Transaction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let json = TransactionJson::deserialize(deserializer)?;
        match (json.public_key, json.signature, json.ethereum) {
            (Some(public_key), Some(signature), None) => Ok(Self {
                body: json.body,
                witness: Witness::Ed25519 {
                    public_key: public_key.0,
                    signature,
                },
            }),
            (None, None, Some(encoded)) => {
                let tx = Self::from_ethereum(&encoded).map_err(D::Error::custom)?;
                if tx.body != json.body {
                    return Err(D::Error::custom(
                        "the transaction's fields differ from its Ethereum envelope",
                    ));
                }
                Ok(tx)
            }
            _ => Err(D::Error::custom(
                "a transaction has publicKey and signature, or ethereum, not both",
            )),
        }
    }
}

impl Transaction {
    /// An Ethereum transaction from its EIP-2718 bytes (see [`EthereumEnvelope::decode`]).
    pub fn from_ethereum(encoded: &[u8]) -> Result<Self, EthereumTxError> {
        EthereumEnvelope::decode(encoded).map(Self::from)
    }

    /// The transaction's identity: for Cairn's own, blake3 of its canonical encoding; for an
    /// Ethereum transaction, keccak256 of its envelope, as wallets compute it.
    pub fn hash(&self) -> B256 {
        match &self.witness {
            Witness::Ed25519 { .. } => B256::from(*blake3::hash(&self.encode()).as_bytes()),
            Witness::Ethereum(envelope) => envelope.hash(),
        }
    }

    /// The sender's address: derived from the ed25519 public key, or recovered from the
    /// Ethereum signature (once; the zero address if it recovers nothing, which
    /// [`Transaction::signature_is_valid`] tells).
    pub fn sender(&self) -> Address {
        match &self.witness {
            Witness::Ed25519 { public_key, .. } => address_of(public_key),
            Witness::Ethereum(envelope) => envelope.sender().unwrap_or(Address::ZERO),
        }
    }

    /// What tells senders apart without hashing: the ed25519 public key, or the recovered
    /// address (after 12 zero bytes).
    pub fn sender_key(&self) -> [u8; 32] {
        match &self.witness {
            Witness::Ed25519 { public_key, .. } => *public_key,
            Witness::Ethereum(envelope) => {
                B256::left_padding_from(envelope.sender().unwrap_or(Address::ZERO).as_slice()).0
            }
        }
    }

    /// Whether the signature is valid for the body: ed25519 (strict) over the signing hash, or
    /// an Ethereum signature that recovers a sender, over an envelope that says what the body
    /// says.
    pub fn signature_is_valid(&self) -> bool {
        match &self.witness {
            Witness::Ed25519 {
                public_key,
                signature,
            } => verify(
                public_key,
                &self.body.signing_hash().0,
                &signature.to_bytes(),
            ),
            Witness::Ethereum(envelope) => {
                describes(envelope, &self.body) && envelope.sender().is_some()
            }
        }
    }

    /// The Ethereum envelope, for an Ethereum transaction.
    pub fn ethereum(&self) -> Option<&EthereumEnvelope> {
        match &self.witness {
            Witness::Ethereum(envelope) => Some(envelope),
            Witness::Ed25519 { .. } => None,
        }
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

impl From<EthereumEnvelope> for Transaction {
    fn from(envelope: EthereumEnvelope) -> Self {
        Self {
            body: TxBody {
                input: envelope.envelope().input().clone(),
                ..body_without_input(&envelope)
            },
            witness: Witness::Ethereum(Box::new(envelope)),
        }
    }
}

/// What an Ethereum transaction asks for, but its call data. A legacy or EIP-2930
/// transaction pays its gas price whatever the base fee, as a fee cap and a tip of that price
/// do.
fn body_without_input(ethereum: &EthereumEnvelope) -> TxBody {
    let envelope = ethereum.envelope();
    let (max_fee_per_gas, max_priority_fee_per_gas) = match envelope.gas_price() {
        Some(price) => (price, price),
        None => (
            envelope.max_fee_per_gas(),
            envelope.max_priority_fee_per_gas().unwrap_or(0),
        ),
    };
    TxBody {
        chain_id: envelope.chain_id().unwrap_or(0),
        nonce: envelope.nonce(),
        gas_limit: envelope.gas_limit(),
        max_fee_per_gas,
        max_priority_fee_per_gas,
        to: envelope.to(),
        value: envelope.value(),
        input: Bytes::new(),
    }
}

/// Whether `body` is what the envelope asks for (the call data compared without a copy).
fn describes(ethereum: &EthereumEnvelope, body: &TxBody) -> bool {
    let expected = body_without_input(ethereum);
    expected.chain_id == body.chain_id
        && expected.nonce == body.nonce
        && expected.gas_limit == body.gas_limit
        && expected.max_fee_per_gas == body.max_fee_per_gas
        && expected.max_priority_fee_per_gas == body.max_priority_fee_per_gas
        && expected.to == body.to
        && expected.value == body.value
        && *ethereum.envelope().input() == body.input
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
