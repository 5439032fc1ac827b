//! Ethereum transactions beside Cairn's own, so that wallets and Ethereum tools can send to the
//! chain unchanged: legacy (EIP-155), EIP-2930 and EIP-1559 envelopes, decoded with alloy's
//! consensus types, their senders recovered with libsecp256k1 once and kept.
//!
//! ```text
//!  EIP-2718 bytes ─► EthereumEnvelope::decode (type, EIP-155 chain id, canonical bytes, low s)
//!        ─► Transaction { body: read from the envelope, witness: Ethereum }
//!        ─► sender(): secp256k1 recovery, once ─► the mempool, blocks, execution
//! ```

use std::sync::OnceLock;

use alloy_consensus::transaction::SignableTransaction;
use alloy_consensus::{Signed, Transaction as _, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718, Typed2718};
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, B256, Bytes, keccak256};

use crate::error::{EthereumTxError, KeyError};
use crate::transaction::{Transaction, TxBody};

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

    /// Whether `body` is what the envelope asks for (compared field by field, the call data
    /// without a copy).
    pub fn describes(&self, body: &TxBody) -> bool {
        let mine = self.body_without_input();
        mine.chain_id == body.chain_id
            && mine.nonce == body.nonce
            && mine.gas_limit == body.gas_limit
            && mine.max_fee_per_gas == body.max_fee_per_gas
            && mine.max_priority_fee_per_gas == body.max_priority_fee_per_gas
            && mine.to == body.to
            && mine.value == body.value
            && *self.envelope.input() == body.input
    }

    /// What the transaction asks for. A legacy or EIP-2930 transaction pays its gas price
    /// whatever the base fee, as a fee cap and a tip of that price do.
    pub fn body(&self) -> TxBody {
        TxBody {
            input: self.envelope.input().clone(),
            ..self.body_without_input()
        }
    }

    fn body_without_input(&self) -> TxBody {
        let envelope = &self.envelope;
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

    /// Signs any transaction type this chain takes.
    pub fn sign<T>(&self, tx: T) -> Result<Transaction, EthereumTxError>
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
        Transaction::from_ethereum(&envelope.encoded_2718())
    }

    /// Signs `body` as an EIP-1559 transaction with no access list.
    pub fn sign_body(&self, body: &TxBody) -> Result<Transaction, EthereumTxError> {
        self.sign(TxEip1559 {
            chain_id: body.chain_id,
            nonce: body.nonce,
            gas_limit: body.gas_limit,
            max_fee_per_gas: body.max_fee_per_gas,
            max_priority_fee_per_gas: body.max_priority_fee_per_gas,
            to: body.kind(),
            value: body.value,
            access_list: AccessList::default(),
            input: body.input.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{TxEip2930, TxEip7702, TxLegacy};
    use alloy_primitives::{TxKind, U256, hex};

    use super::*;
    use crate::codec::Canonical;

    /// EIP-155's example: its key, and the transaction that key signs.
    const EIP155_SIGNED: &str = "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83";

    fn eip155_legacy() -> TxLegacy {
        TxLegacy {
            chain_id: Some(1),
            nonce: 9,
            gas_price: 20_000_000_000,
            gas_limit: 21_000,
            to: TxKind::Call(Address::repeat_byte(0x35)),
            value: U256::from(10).pow(U256::from(18)),
            input: Bytes::new(),
        }
    }

    fn transfer(chain_id: u64) -> TxBody {
        TxBody {
            chain_id,
            nonce: 3,
            gas_limit: 21_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: Some(Address::repeat_byte(0xb0)),
            value: U256::from(5),
            input: Bytes::from_static(b"hello"),
        }
    }

    #[test]
    fn the_eip155_example_decodes_recovers_and_signs_to_the_same_bytes() {
        let key = EthereumKey::from_bytes(&[0x46; 32]).unwrap();
        let signed = hex::decode(EIP155_SIGNED).unwrap();
        let tx = Transaction::from_ethereum(&signed).unwrap();
        assert_eq!(tx.sender(), key.address());
        assert!(tx.signature_is_valid());
        assert_eq!(tx.hash(), keccak256(&signed));
        // A legacy transaction's gas price is its fee cap and its tip.
        assert_eq!(tx.body.max_fee_per_gas, 20_000_000_000);
        assert_eq!(tx.body.max_priority_fee_per_gas, 20_000_000_000);
        assert_eq!((tx.body.chain_id, tx.body.nonce), (1, 9));
        // libsecp256k1 signs deterministically (RFC 6979): the same bytes again.
        assert_eq!(key.sign(eip155_legacy()).unwrap(), tx);
    }

    #[test]
    fn the_well_known_first_test_account_has_its_address() {
        let secret =
            hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap();
        let key = EthereumKey::from_bytes(&secret.try_into().unwrap()).unwrap();
        let expected: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
            .parse()
            .unwrap();
        assert_eq!(key.address(), expected);
    }

    #[test]
    fn every_kind_round_trips_through_the_canonical_encoding_and_json() {
        let key = EthereumKey::from_bytes(&[7; 32]).unwrap();
        let body = transfer(1337);
        let kinds = [
            key.sign_body(&body).unwrap(),
            key.sign(TxEip2930 {
                chain_id: 1337,
                nonce: 1,
                gas_price: 7,
                gas_limit: 30_000,
                to: TxKind::Create,
                value: U256::ZERO,
                access_list: AccessList::default(),
                input: Bytes::from_static(&[0x60, 0x00]),
            })
            .unwrap(),
            key.sign(eip155_legacy()).unwrap(),
        ];
        for (tx, ty) in kinds.iter().zip([2, 1, 0]) {
            assert_eq!(tx.ethereum().unwrap().tx_type(), ty);
            assert_eq!(tx.sender(), key.address());
            assert_eq!(Transaction::decode(&tx.encode()).unwrap(), *tx);
            let json = serde_json::to_string(tx).unwrap();
            assert_eq!(serde_json::from_str::<Transaction>(&json).unwrap(), *tx);
        }
        assert_eq!(kinds[0].body, body);
        assert_eq!(kinds[1].body.to, None);
    }

    #[test]
    fn bad_envelopes_are_refused_with_the_message_clients_know() {
        let key = EthereumKey::from_bytes(&[7; 32]).unwrap();
        let tx = key.sign_body(&transfer(1337)).unwrap();
        let encoded = tx.ethereum().unwrap().encoded().to_vec();

        let mut trailing = encoded.clone();
        trailing.push(0);
        assert!(matches!(
            EthereumEnvelope::decode(&trailing),
            Err(EthereumTxError::Encoding(_))
        ));
        assert!(matches!(
            EthereumEnvelope::decode(&encoded[..encoded.len() - 1]),
            Err(EthereumTxError::Encoding(_))
        ));
        assert!(EthereumEnvelope::decode(&[]).is_err());

        // A replayable legacy transaction (no chain id).
        let unprotected = key.sign(TxLegacy {
            chain_id: None,
            ..eip155_legacy()
        });
        assert_eq!(unprotected, Err(EthereumTxError::NotReplayProtected));

        // Set-code transactions are not taken.
        let set_code = key.sign(TxEip7702 {
            chain_id: 1337,
            to: Address::repeat_byte(1),
            ..TxEip7702::default()
        });
        assert_eq!(set_code, Err(EthereumTxError::UnsupportedType(4)));

        // The malleated twin of a valid signature (s → n − s, parity flipped).
        let envelope = tx.ethereum().unwrap().envelope();
        let TxEnvelope::Eip1559(signed) = envelope else {
            panic!("an EIP-1559 envelope");
        };
        let signature = signed.signature();
        let order = U256::from_be_slice(
            &hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
                .unwrap(),
        );
        let twin =
            alloy_primitives::Signature::new(signature.r(), order - signature.s(), !signature.v());
        let malleated = TxEnvelope::from(Signed::new_unhashed(signed.tx().clone(), twin));
        assert_eq!(
            EthereumEnvelope::decode(&malleated.encoded_2718()),
            Err(EthereumTxError::HighS)
        );
    }

    #[test]
    fn a_changed_field_recovers_another_sender_and_a_body_that_lies_is_invalid() {
        let key = EthereumKey::from_bytes(&[7; 32]).unwrap();
        let tx = key.sign_body(&transfer(1337)).unwrap();
        let mut encoded = tx.ethereum().unwrap().encoded().to_vec();
        // "hello" → "iello" in the call data.
        let at = encoded.windows(5).position(|w| w == b"hello").unwrap();
        encoded[at] ^= 1;
        let changed = Transaction::from_ethereum(&encoded).unwrap();
        assert_ne!(changed.sender(), key.address());

        let mut lying = tx.clone();
        lying.body.value = U256::from(6);
        assert!(!lying.signature_is_valid());
        assert!(tx.signature_is_valid());
    }
}
