//! A block's canonical decoding (as it arrives in a proposal or a sync response), and what
//! a node reads off one before executing it.
#![no_main]

use cairn_primitives::{Block, Canonical};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::decode(data) {
        assert_eq!(block.encode(), data, "canonical encoding");
        let _ = block.hash();
        let _ = block.transaction_bytes();
        let _ = block
            .header
            .randomness_is_valid(&[7; 32], &block.header.parent);
        for tx in &block.transactions {
            let _ = tx.signature_is_valid();
        }
    }
});
