//! A gossiped consensus envelope (proposal, vote or certificate), checked as a node checks
//! one before forwarding it, against a fixed validator set.
#![no_main]

use std::collections::BTreeMap;

use cairn_consensus::Config;
use cairn_consensus::gossip::{Context, check};
use cairn_consensus::messages::{Envelope, Validators};
use cairn_primitives::{AccountKey, Canonical};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::decode(data) else {
        return;
    };
    assert_eq!(envelope.encode(), data, "canonical encoding");
    let keys: Vec<[u8; 32]> = (1..=4u8)
        .map(|i| AccountKey::from_bytes(&[i; 32]).public_key())
        .collect();
    let config = Config {
        namespace: [9; 32],
        validators: Validators::equal(keys),
        view_timeout_ms: 1_000,
        retry_ms: 500,
        last_height: 29,
    };
    let known = BTreeMap::new();
    let context = Context {
        config: &config,
        anchor_view: 4,
        committed_height: 3,
        known_blocks: &known,
        now_ms: 1_800_000_000_000,
    };
    let _ = check(&context, &envelope.message);
});
