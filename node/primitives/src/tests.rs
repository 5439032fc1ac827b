//! Property tests of the canonical encoding: round trips, and every malformed input an error.
use proptest::prelude::*;

use alloy_consensus::{Signed, TxEip2930, TxEip7702, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{TxKind, hex, keccak256};

use crate::error::CodecError;
use crate::*;

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address::from)
}

fn hash() -> impl Strategy<Value = B256> {
    any::<[u8; 32]>().prop_map(B256::from)
}

fn u256() -> impl Strategy<Value = U256> {
    any::<[u8; 32]>().prop_map(U256::from_be_bytes)
}

fn signature() -> impl Strategy<Value = Signature> {
    any::<[[u8; 32]; 2]>().prop_map(Signature)
}

fn body() -> impl Strategy<Value = TxBody> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u128>(),
        any::<u128>(),
        proptest::option::of(address()),
        u256(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(
            |(chain_id, nonce, gas_limit, max_fee, tip, to, value, input)| TxBody {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: tip,
                to,
                value,
                input: input.into(),
            },
        )
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (body(), any::<[u8; 32]>(), signature()).prop_map(|(body, public_key, signature)| Transaction {
        body,
        witness: Witness::Ed25519 {
            public_key,
            signature,
        },
    })
}

fn header() -> impl Strategy<Value = Header> {
    (
        (
            any::<u64>(),
            hash(),
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            address(),
        ),
        (any::<u64>(), hash(), hash(), hash(), hash(), signature()),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<[u8; 32]>()),
    )
        .prop_map(
            |(
                (chain_id, parent, height, view, proposer, beneficiary),
                (timestamp_ms, tx_root, receipts_root, state_root, randomness, vrf_proof),
                (gas_used, gas_limit, base_fee_per_gas, vrf_output),
            )| Header {
                chain_id,
                parent,
                height,
                view,
                proposer,
                beneficiary,
                timestamp_ms,
                tx_root,
                receipts_root,
                state_root,
                randomness,
                vrf_output,
                vrf_proof,
                parent_votes_hash: B256::ZERO,
                gas_used,
                gas_limit,
                base_fee_per_gas,
            },
        )
}

fn block() -> impl Strategy<Value = Block> {
    (header(), proptest::collection::vec(transaction(), 0..4)).prop_map(|(header, transactions)| {
        Block {
            header,
            transactions,
            parent_votes: None,
        }
    })
}

fn log() -> impl Strategy<Value = Log> {
    (
        address(),
        proptest::collection::vec(hash(), 0..4),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(address, topics, data)| Log {
            address,
            topics,
            data: data.into(),
        })
}

fn receipt() -> impl Strategy<Value = Receipt> {
    let status = prop_oneof![
        Just(TxStatus::Success),
        Just(TxStatus::Revert),
        "[a-zA-Z]{0,12}".prop_map(TxStatus::Halt),
    ];
    (
        hash(),
        status,
        any::<u64>(),
        any::<u64>(),
        u256(),
        proptest::option::of(address()),
        proptest::collection::vec(log(), 0..3),
    )
        .prop_map(
            |(tx_hash, status, gas_used, cumulative_gas_used, fee, contract_address, logs)| {
                Receipt {
                    tx_hash,
                    status,
                    gas_used,
                    cumulative_gas_used,
                    fee,
                    contract_address,
                    output: Bytes::from_static(b"out"),
                    logs,
                }
            },
        )
}

/// Round trip, then every way of damaging the bytes is an error and never a panic.
fn check_canonical<T: Canonical + PartialEq + std::fmt::Debug>(value: &T, cut: usize, junk: u8) {
    let bytes = value.encode();
    assert_eq!(&T::decode(&bytes).unwrap(), value);

    let mut trailing = bytes.clone();
    trailing.push(junk);
    assert!(matches!(
        T::decode(&trailing),
        Err(CodecError::Malformed { .. })
    ));

    let cut = cut % bytes.len();
    assert!(
        T::decode(&bytes[..cut]).is_err(),
        "truncated to {cut} of {} bytes",
        bytes.len()
    );

    let mut versioned = bytes.clone();
    versioned[0] = 2;
    assert!(matches!(
        T::decode(&versioned),
        Err(CodecError::UnknownVersion { version: 2, .. })
    ));
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    fn refused<T: Canonical + std::fmt::Debug>() {
        let oversized = vec![codec::ENCODING_V1; T::MAX_SIZE + 1];
        assert!(matches!(
            T::decode(&oversized),
            Err(CodecError::TooLarge { .. })
        ));
    }
    refused::<Transaction>();
    refused::<Header>();
    refused::<Block>();
    refused::<Receipt>();
    refused::<BlockReceipts>();
    assert!(matches!(
        Transaction::decode(&[]),
        Err(CodecError::Empty(_))
    ));
}

proptest! {
    #[test]
    fn transactions_are_canonical(tx in transaction(), cut in any::<usize>(), junk in any::<u8>()) {
        check_canonical(&tx, cut, junk);
        let json = serde_json::to_string(&tx).unwrap();
        prop_assert_eq!(serde_json::from_str::<Transaction>(&json).unwrap(), tx);
    }

    #[test]
    fn blocks_and_headers_are_canonical(block in block(), cut in any::<usize>(), junk in any::<u8>()) {
        check_canonical(&block, cut, junk);
        check_canonical(&block.header, cut, junk);
    }

    #[test]
    fn receipts_are_canonical(
        receipts in proptest::collection::vec(receipt(), 1..4),
        system_logs in proptest::collection::vec(log(), 0..3),
        cut in any::<usize>(),
        junk in any::<u8>(),
    ) {
        check_canonical(&receipts[0], cut, junk);
        check_canonical(&BlockReceipts { receipts, system_logs }, cut, junk);
    }

    /// The events of a block's system calls are committed by its receipts root: adding or
    /// changing one changes the root.
    #[test]
    fn the_receipts_root_commits_to_system_events(
        receipts in proptest::collection::vec(receipt(), 0..3),
        system_logs in proptest::collection::vec(log(), 1..3),
        other in log(),
    ) {
        let with = receipts_root(&receipts, &system_logs);
        prop_assert_ne!(with, receipts_root(&receipts, &[]));
        let mut changed = system_logs.clone();
        changed[0] = other;
        prop_assume!(changed != system_logs);
        prop_assert_ne!(with, receipts_root(&receipts, &changed));
    }

    /// Garbage never panics, and whatever does decode is the one encoding of its value.
    #[test]
    fn garbage_decodes_only_canonically(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut versioned = bytes.clone();
        if let Some(first) = versioned.first_mut() {
            *first = codec::ENCODING_V1;
        }
        for input in [&bytes, &versioned] {
            if let Ok(tx) = Transaction::decode(input) {
                prop_assert_eq!(&tx.encode(), input);
            }
            if let Ok(block) = Block::decode(input) {
                prop_assert_eq!(&block.encode(), input);
            }
            if let Ok(receipts) = BlockReceipts::decode(input) {
                prop_assert_eq!(&receipts.encode(), input);
            }
        }
    }
}

#[test]
fn non_canonical_tags_are_refused() {
    let key = AccountKey::from_bytes(&[1; 32]);
    let tx = TxBody {
        chain_id: 1,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 0,
        to: None,
        value: U256::ZERO,
        input: Bytes::new(),
    }
    .sign(&key);
    let mut bytes = tx.encode();
    // The `to` option tag sits after version, kind, chain id, nonce, gas limit and the two
    // fees.
    let tag = 1 + 1 + 8 + 8 + 8 + 16 + 16;
    assert_eq!(bytes[tag], 0);
    bytes[tag] = 2;
    assert!(matches!(
        Transaction::decode(&bytes),
        Err(CodecError::Malformed { .. })
    ));
    // A kind of transaction that does not exist.
    let mut bytes = tx.encode();
    assert_eq!(bytes[1], 0);
    bytes[1] = 2;
    assert!(matches!(
        Transaction::decode(&bytes),
        Err(CodecError::Malformed { .. })
    ));
}

#[test]
fn signatures_bind_every_field_and_the_chain() {
    let key = AccountKey::from_bytes(&[1; 32]);
    let body = TxBody {
        chain_id: 1,
        nonce: 3,
        gas_limit: 21_000,
        max_fee_per_gas: 10,
        max_priority_fee_per_gas: 1,
        to: Some(Address::repeat_byte(2)),
        value: U256::from(5),
        input: Bytes::new(),
    };
    let tx = body.clone().sign(&key);
    assert!(tx.signature_is_valid());
    assert_eq!(tx.sender(), key.address());
    let mut changed = tx.clone();
    changed.body.value = U256::from(6);
    assert!(!changed.signature_is_valid());
    assert!(VerifiedTransaction::verify(changed.clone()).is_none());
    let verified = VerifiedTransaction::verify(tx.clone()).unwrap();
    assert_eq!(
        (verified.hash(), verified.sender()),
        (tx.hash(), key.address())
    );
    let mut replayed = tx.clone();
    replayed.body.chain_id = 2;
    assert!(!replayed.signature_is_valid());
    assert_ne!(tx.hash(), changed.hash());
}

// Ethereum transactions.
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
    assert_eq!(Transaction::from(key.sign(eip155_legacy()).unwrap()), tx);
}

#[test]
fn the_well_known_first_test_account_has_its_address() {
    let secret =
        hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80").unwrap();
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
        body.sign_ethereum(&key).unwrap(),
        Transaction::from(
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
        ),
        Transaction::from(key.sign(eip155_legacy()).unwrap()),
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
    let tx = transfer(1337).sign_ethereum(&key).unwrap();
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
        &hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap(),
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
    let tx = transfer(1337).sign_ethereum(&key).unwrap();
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
