//! Ethereum transactions beside Cairn's own, so that wallets and Ethereum tools can send to the
//! chain unchanged: legacy (EIP-155), EIP-2930 and EIP-1559 envelopes, decoded with alloy's
//! consensus types, their senders recovered with libsecp256k1 once and kept.
//!
//! ```text
//!  EIP-2718 bytes ─► EthereumEnvelope::decode (type, EIP-155 chain id, canonical bytes, low s)
//!        ─► Transaction { body: read from the envelope (transaction.rs), witness: Ethereum }
//!        ─► sender(): secp256k1 recovery, once ─► the mempool, blocks, execution
//! ```

use std::sync::OnceLock;

use alloy_consensus::transaction::SignableTransaction;
use alloy_consensus::{Signed, Transaction as _, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718, Typed2718};
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, B256, Bytes, keccak256};

use crate::error::{EthereumTxError, KeyError};

/// The largest envelope taken: what fits a transaction of the most bytes one may have (128
/// KiB) once its version byte, kind tag and length prefix are added.
pub const MAX_ENVELOPE_SIZE: usize = 128 * 1024 - 6;

/// An Ethereum transaction's envelope as its sender signed it, with its bytes, its hash and,
/// once recovered, its sender.
#[derive(Debug, Clone)]
pub struct EthereumEnvelope {
    envelope: TxEnvelope,
    encoded: Bytes,
    hash: B256,
    sender: OnceLock<Option<Address>>,
}

impl PartialEq for EthereumEnvelope {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

impl Eq for EthereumEnvelope {}

impl EthereumEnvelope {
    /// Decodes EIP-2718 bytes: a legacy transaction signed with a chain id (EIP-155), or an
    /// EIP-2930 or EIP-1559 one; the bytes must be exactly the transaction's canonical
    /// encoding, and its signature's `s` in the lower half of the curve order (EIP-2), so that
    /// one signed transaction has one encoding and one hash.
    pub fn decode(encoded: &[u8]) -> Result<Self, EthereumTxError> {
        if encoded.len() > MAX_ENVELOPE_SIZE {
            return Err(EthereumTxError::TooLarge {
                size: encoded.len(),
                max: MAX_ENVELOPE_SIZE,
            });
        }
        let envelope = TxEnvelope::decode_2718_exact(encoded)
            .map_err(|e| EthereumTxError::Encoding(e.to_string()))?;
        match &envelope {
            TxEnvelope::Eip4844(_) | TxEnvelope::Eip7702(_) => {
                return Err(EthereumTxError::UnsupportedType(envelope.ty()));
            }
            TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) | TxEnvelope::Eip1559(_) => {}
        }
        if envelope.chain_id().is_none() {
            return Err(EthereumTxError::NotReplayProtected);
        }
        if envelope.signature().normalize_s().is_some() {
            return Err(EthereumTxError::HighS);
        }
        if envelope.encoded_2718() != encoded {
            return Err(EthereumTxError::NonCanonical);
        }
        Ok(Self {
            hash: keccak256(encoded),
            encoded: Bytes::copy_from_slice(encoded),
            envelope,
            sender: OnceLock::new(),
        })
    }

    /// The EIP-2718 bytes.
    pub fn encoded(&self) -> &Bytes {
        &self.encoded
    }

    /// keccak256 of the bytes: the hash wallets show.
    pub fn hash(&self) -> B256 {
        self.hash
    }

    /// The decoded envelope.
    pub fn envelope(&self) -> &TxEnvelope {
        &self.envelope
    }

    /// The transaction type: 0 legacy, 1 EIP-2930, 2 EIP-1559.
    pub fn tx_type(&self) -> u8 {
        self.envelope.ty()
    }

    /// The gas price of a legacy or EIP-2930 transaction (`None` for EIP-1559).
    pub fn gas_price(&self) -> Option<u128> {
        self.envelope.gas_price()
    }

    /// The access list (EIP-2930 and EIP-1559).
    pub fn access_list(&self) -> Option<&AccessList> {
        self.envelope.access_list()
    }

    /// The sender, recovered from the signature the first time it is asked for; `None` if the
    /// signature recovers no key.
    pub fn sender(&self) -> Option<Address> {
        *self.sender.get_or_init(|| {
            let public = self
                .envelope
                .signature()
                .recover_from_prehash_secp256k1(&self.envelope.signature_hash())
                .ok()?;
            Some(Address::from_raw_public_key(
                &public.serialize_uncompressed()[1..],
            ))
        })
    }
}

/// A secp256k1 key that signs Ethereum transactions: the test accounts', a wallet's.
#[derive(Clone)]
pub struct EthereumKey(secp256k1::SecretKey);

impl std::fmt::Debug for EthereumKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EthereumKey({})", self.address())
    }
}

impl EthereumKey {
    /// The key with this 32-byte secret; an error for zero or a value past the curve order.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self, KeyError> {
        secp256k1::SecretKey::from_byte_array(*secret)
            .map(Self)
            .map_err(|_| KeyError::BadPrivateKey)
    }

    /// The secret as `0x` and 64 hex digits, as wallets import it.
    pub fn secret_hex(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(format!("0x{}", hex::encode(self.0.secret_bytes())))
    }

    /// The account's address: the last 20 bytes of keccak256 of the public key.
    pub fn address(&self) -> Address {
        let public = self.0.public_key(secp256k1::SECP256K1);
        Address::from_raw_public_key(&public.serialize_uncompressed()[1..])
    }

    /// Signs any transaction type this chain takes; its envelope, decoded as a peer would.
    pub fn sign<T>(&self, tx: T) -> Result<EthereumEnvelope, EthereumTxError>
    where
        T: SignableTransaction<alloy_primitives::Signature>,
        TxEnvelope: From<Signed<T>>,
    {
        let digest = secp256k1::Message::from_digest(tx.signature_hash().0);
        let (recovery, compact) = secp256k1::SECP256K1
            .sign_ecdsa_recoverable(digest, &self.0)
            .serialize_compact();
        let signature =
            alloy_primitives::Signature::from_bytes_and_parity(&compact, i32::from(recovery) == 1);
        let envelope = TxEnvelope::from(tx.into_signed(signature));
        EthereumEnvelope::decode(&envelope.encoded_2718())
    }
}
