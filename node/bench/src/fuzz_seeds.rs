//! The fuzz targets' seed inputs (`tests/fuzz`): one valid encoding of each kind of message a
//! peer or an RPC caller sends, so that libFuzzer starts from inputs that decode and mutates
//! them into the malformed ones. The test checks each seed decodes to what was encoded; with
//! `CAIRN_FUZZ_SEEDS=DIR` it also writes them to `DIR/<target>/seed-<n>` (how the committed
//! corpus was started).

use std::path::Path;

use cairn_consensus::messages::VoteKind;
use cairn_consensus::messages::{Certificate, Envelope, Message, Proposal, SyncResponse, Vote};
use cairn_primitives::wire::{DataRequest, PeerRequest, SyncRequest};
use cairn_primitives::{AccountKey, Address, B256, Block, Canonical, Header, TxBody, U256};
use cairn_providers::adverts::Advert;
use cairn_providers::wire::DataResponse;

fn transfer(key: &AccountKey, nonce: u64, input: Vec<u8>) -> cairn_primitives::Transaction {
    TxBody {
        chain_id: 7,
        nonce,
        gas_limit: 21_000 + 16 * input.len() as u64,
        max_fee_per_gas: 10,
        max_priority_fee_per_gas: 1,
        to: Some(Address::repeat_byte(3)),
        value: U256::from(5),
        input: input.into(),
    }
    .sign(key)
}

fn block(key: &AccountKey) -> Block {
    let (beacon, randomness) = cairn_primitives::beacon::prove(key, 7, 1, &B256::ZERO);
    Block {
        header: Header {
            chain_id: 7,
            parent: B256::repeat_byte(1),
            height: 1,
            view: 1,
            proposer: key.public_key(),
            beneficiary: key.address(),
            timestamp_ms: 1_800_000_000_000,
            tx_root: B256::ZERO,
            receipts_root: B256::ZERO,
            state_root: B256::ZERO,
            randomness,
            vrf_output: beacon.output,
            vrf_proof: beacon.proof,
            parent_votes_hash: B256::ZERO,
            gas_used: 21_000,
            gas_limit: 30_000_000,
            base_fee_per_gas: 10,
        },
        transactions: vec![transfer(key, 0, Vec::new()), transfer(key, 1, vec![7; 40])],
        parent_votes: None,
    }
}

/// Every target's seeds, as (target, bytes).
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let key = AccountKey::from_bytes(&[1; 32]);
    let namespace = [9; 32];
    let block = block(&key);
    let vote = Vote::sign(&key, 0, &namespace, 5, VoteKind::Notarize(block.hash()));
    let certificate = Certificate {
        view: 5,
        kind: VoteKind::Nullify,
        signatures: (0..3u32)
            .map(|i| {
                let signer = AccountKey::from_bytes(&[i as u8 + 1; 32]);
                (
                    i,
                    Vote::sign(&signer, i, &namespace, 5, VoteKind::Nullify).signature,
                )
            })
            .collect(),
    };
    let proposal = Proposal {
        view: 5,
        parent: block.header.parent,
        height: 1,
        block: block.hash(),
        signature: vote.signature,
        payload: block.encode(),
    };
    let envelope = |message| Envelope {
        resend: 0,
        epoch: 0,
        message,
    };
    let beacon = cairn_primitives::beacon::prove(&key, 7, 1, &B256::repeat_byte(9)).0;
    let mut vrf = cairn_primitives::beacon::vrf_public_key(&key).to_vec();
    vrf.extend_from_slice(&beacon.output);
    vrf.extend_from_slice(&beacon.proof.to_bytes());
    vrf.extend_from_slice(&1u64.to_le_bytes());
    let advert = Advert {
        chain_id: 7,
        provider: key.address(),
        peer_id: "12D3KooWexample".into(),
        addresses: vec!["/ip4/127.0.0.1/tcp/30303".into()],
        storage_capacity: 1 << 30,
        storage_free: 1 << 29,
        storage_price: 1_000,
        cores: 2,
        memory_mib: 512,
        fuel_per_second: 1_000_000,
        compute_price: 1,
        sequence: 1,
    }
    .sign(&key);
    vec![
        ("transaction", transfer(&key, 3, vec![1, 2, 3]).encode()),
        ("block", block.encode()),
        ("consensus_message", envelope(Message::Vote(vote.clone())).encode()),
        ("consensus_message", envelope(Message::Certificate(certificate.clone())).encode()),
        ("consensus_message", envelope(Message::Proposal(proposal)).encode()),
        ("certificate", certificate.encode()),
        ("certificate", vote.encode()),
        ("vrf_proof", vrf),
        ("sync_message", PeerRequest::Sync(SyncRequest { from: 1, max_blocks: 16 }).encode()),
        (
            "sync_message",
            PeerRequest::Data(DataRequest::Piece { root: [7; 32], index: 3 }).encode(),
        ),
        (
            "sync_message",
            SyncResponse {
                blocks: vec![block],
                finality: Some(certificate),
                busy: false,
            }
            .encode(),
        ),
        (
            "sync_message",
            SyncResponse {
                busy: true,
                ..SyncResponse::default()
            }
            .encode(),
        ),
        ("data_message", DataResponse::Has(Some(1 << 20)).encode()),
        ("data_message", DataResponse::Refused("busy".into()).encode()),
        (
            "data_message",
            DataResponse::Piece(cairn_storage::blobs::PieceProof {
                data: vec![5; 64],
                path: vec![[6; 32]; 3],
            })
            .encode(),
        ),
        ("advert", advert.encode()),
        ("rpc_params", br#"["0x02f86b0701"]"#.to_vec()),
        ("rpc_params", br#"["0x0000000000000000000000000000000000000007", true]"#.to_vec()),
        (
            "rpc_params",
            br#"[{"from":"0x0000000000000000000000000000000000000001","to":"0x0000000000000000000000000000000000000002","input":"0x1234","gas":"0x5208","value":"0x1"}]"#
                .to_vec(),
        ),
        ("rpc_params", br#"["latest"]"#.to_vec()),
        ("rpc_params", br#"[12]"#.to_vec()),
        (
            "rpc_params",
            br#"["0x0707070707070707070707070707070707070707070707070707070707070707", 3, "0xabcd", []]"#
                .to_vec(),
        ),
    ]
}

#[test]
fn fuzz_seeds_decode_to_what_was_encoded() {
    let seeds = seeds();
    for (target, bytes) in &seeds {
        let decodes = match *target {
            "transaction" => cairn_primitives::Transaction::decode(bytes).is_ok(),
            "block" => Block::decode(bytes).is_ok(),
            "consensus_message" => Envelope::decode(bytes).is_ok(),
            "certificate" => Certificate::decode(bytes).is_ok() || Vote::decode(bytes).is_ok(),
            "vrf_proof" => bytes.len() == 32 + 32 + 64 + 8,
            "sync_message" => {
                PeerRequest::decode(bytes).is_ok() || SyncResponse::decode(bytes).is_ok()
            }
            "data_message" => DataResponse::decode(bytes).is_ok(),
            "advert" => cairn_providers::adverts::SignedAdvert::decode(bytes)
                .is_ok_and(|advert| advert.check(7).is_ok()),
            "rpc_params" => serde_json::from_slice::<serde_json::Value>(bytes).is_ok(),
            other => panic!("no target {other}"),
        };
        assert!(decodes, "a {target} seed does not decode");
    }
    if let Some(dir) = std::env::var_os("CAIRN_FUZZ_SEEDS") {
        for (index, (target, bytes)) in seeds.iter().enumerate() {
            let folder = Path::new(&dir).join(target);
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join(format!("seed-{index}")), bytes).unwrap();
        }
    }
}
