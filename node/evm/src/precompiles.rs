//! Cairn's precompiles, beside Ethereum's.
//!
//! * `0x0c01` chunk proof: `root (32) ‖ size (8, big endian) ‖ index (8) ‖ chunk ‖ path`
//!   returns the 32-byte word 1 if `chunk` is chunk `index` of the data of `size` bytes whose
//!   blake3 hash is `root` (`path`: sibling chaining values, bottom up), else 0.
//! * `0x0c02` ed25519: `public key (32) ‖ signature (64) ‖ message` returns 1 if the signature
//!   is valid under the strict rules, else 0.
//! * `0x0c03` equivocation: `domain (32) ‖ epoch (8, big endian) ‖ key (32) ‖ vote A (105) ‖
//!   vote B (105)`, each vote `view (8, big endian) ‖ tag (1) ‖ block (32) ‖ signature (64)`
//!   ([`Equivocation::encode_vote`]), returns 1 if `key` signed both votes in one view of
//!   `epoch` on the chain with consensus domain `domain` and an honest validator could not
//!   have signed both ([`Equivocation::is_valid`]), else 0. Staking's `reportEquivocation`
//!   slashes on it.
//!
//! All are pure functions of their input (Block-STM may run a transaction twice). A malformed
//! input is an invalid proof or signature: it returns 0 and costs its gas, like any other
//! failed check. Gas is priced from measured time; see docs/benchmarks.md.

use std::sync::OnceLock;

use cairn_reward_contracts::{CHUNK_PROOF_PRECOMPILE, ED25519_PRECOMPILE, EQUIVOCATION_PRECOMPILE};
use cairn_storage::chunk_proof;
use revm::handler::EthPrecompiles;
use revm::precompile::{
    Precompile, PrecompileFn, PrecompileHalt, PrecompileId, PrecompileOutput, PrecompileResult,
    PrecompileSpecId, Precompiles,
};
use revm::primitives::Bytes;

use crate::rules::SPEC;
use cairn_primitives::consensus::{EVIDENCE_VOTE_LEN, Equivocation};
use cairn_primitives::keys;

/// Gas of a chunk proof: a base plus a price per 32-byte word of input. Measured with
/// `cairn bench precompiles` at 85 (1 KiB of data) to 264 (1 TiB) gas at ecrecover's gas per
/// nanosecond; this charges 236 to 356, headroom for machines where hashing is relatively slower.
pub const CHUNK_PROOF_BASE_GAS: u64 = 100;
/// See [`CHUNK_PROOF_BASE_GAS`].
pub const CHUNK_PROOF_WORD_GAS: u64 = 4;
/// Gas of an ed25519 check: a base plus a price per 32-byte word of message. Measured at 3,220
/// gas at ecrecover's rate for a 64-byte message (one verification takes about as long as one
/// ecrecover).
pub const ED25519_BASE_GAS: u64 = 3_200;
/// See [`ED25519_BASE_GAS`].
pub const ED25519_WORD_GAS: u64 = 3;
/// Gas of an equivocation check: two ed25519 checks of a 32-byte vote digest (the hashing
/// around them is noise next to the curve arithmetic). Charged whatever the input, so that a
/// malformed input costs what a valid one does.
pub const EQUIVOCATION_GAS: u64 = 2 * (ED25519_BASE_GAS + ED25519_WORD_GAS);

fn words(len: usize) -> u64 {
    len.div_ceil(32) as u64
}

fn answer(
    gas: u64,
    gas_limit: u64,
    reservoir: u64,
    valid: impl FnOnce() -> bool,
) -> PrecompileResult {
    if gas > gas_limit {
        return Ok(PrecompileOutput::halt(PrecompileHalt::OutOfGas, reservoir));
    }
    let mut word = [0u8; 32];
    word[31] = u8::from(valid());
    Ok(PrecompileOutput::new(
        gas,
        Bytes::copy_from_slice(&word),
        reservoir,
    ))
}

/// The chunk-proof check on raw input (see the module docs for the layout).
pub fn verify_chunk_proof_input(input: &[u8]) -> bool {
    let Some((root, rest)) = input.split_first_chunk::<32>() else {
        return false;
    };
    let Some((size, rest)) = rest.split_first_chunk::<8>() else {
        return false;
    };
    let Some((index, rest)) = rest.split_first_chunk::<8>() else {
        return false;
    };
    let (size, index) = (u64::from_be_bytes(*size), u64::from_be_bytes(*index));
    let Some(chunk_len) = chunk_proof::chunk_len(size, index) else {
        return false;
    };
    let Some((chunk, path)) = rest.split_at_checked(chunk_len as usize) else {
        return false;
    };
    let (path, remainder) = path.as_chunks::<32>();
    remainder.is_empty() && chunk_proof::verify(root, size, index, chunk, path)
}

fn chunk_proof_precompile(input: &[u8], gas_limit: u64, reservoir: u64) -> PrecompileResult {
    let gas = CHUNK_PROOF_BASE_GAS + CHUNK_PROOF_WORD_GAS * words(input.len());
    answer(gas, gas_limit, reservoir, || {
        verify_chunk_proof_input(input)
    })
}

/// The ed25519 check on raw input (see the module docs for the layout).
pub fn verify_ed25519_input(input: &[u8]) -> bool {
    let Some((public_key, rest)) = input.split_first_chunk::<32>() else {
        return false;
    };
    let Some((signature, message)) = rest.split_first_chunk::<64>() else {
        return false;
    };
    keys::verify_message(public_key, message, signature)
}

fn ed25519_precompile(input: &[u8], gas_limit: u64, reservoir: u64) -> PrecompileResult {
    let gas = ED25519_BASE_GAS + ED25519_WORD_GAS * words(input.len().saturating_sub(96));
    answer(gas, gas_limit, reservoir, || verify_ed25519_input(input))
}

/// The equivocation check on raw input (see the module docs for the layout).
pub fn verify_equivocation_input(input: &[u8]) -> bool {
    let Some((domain, rest)) = input.split_first_chunk::<32>() else {
        return false;
    };
    let Some((epoch, rest)) = rest.split_first_chunk::<8>() else {
        return false;
    };
    let Some((key, votes)) = rest.split_first_chunk::<32>() else {
        return false;
    };
    if votes.len() != 2 * EVIDENCE_VOTE_LEN {
        return false;
    }
    let (first, second) = votes.split_at(EVIDENCE_VOTE_LEN);
    Equivocation::from_votes(u64::from_be_bytes(*epoch), *key, first, second)
        .is_some_and(|evidence| evidence.is_valid(domain))
}

fn equivocation_precompile(input: &[u8], gas_limit: u64, reservoir: u64) -> PrecompileResult {
    answer(EQUIVOCATION_GAS, gas_limit, reservoir, || {
        verify_equivocation_input(input)
    })
}

/// Ethereum's precompiles for [`SPEC`] plus Cairn's.
pub fn precompiles() -> EthPrecompiles {
    static SET: OnceLock<Precompiles> = OnceLock::new();
    let set = SET.get_or_init(|| {
        let mut set = Precompiles::new(PrecompileSpecId::from_spec_id(SPEC)).clone();
        set.extend([
            Precompile::from((
                PrecompileId::Custom("cairn-chunk-proof".into()),
                CHUNK_PROOF_PRECOMPILE,
                chunk_proof_precompile as PrecompileFn,
            )),
            Precompile::from((
                PrecompileId::Custom("cairn-ed25519".into()),
                ED25519_PRECOMPILE,
                ed25519_precompile as PrecompileFn,
            )),
            Precompile::from((
                PrecompileId::Custom("cairn-equivocation".into()),
                EQUIVOCATION_PRECOMPILE,
                equivocation_precompile as PrecompileFn,
            )),
        ]);
        set
    });
    EthPrecompiles {
        precompiles: set,
        spec: SPEC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_primitives::consensus::{Vote, VoteKind, epoch_namespace};
    use cairn_primitives::{AccountKey, B256};

    fn chunk_input(data: &[u8], index: u64) -> Vec<u8> {
        let proof = chunk_proof::prove(data, index).unwrap();
        let mut input = blake3::hash(data).as_bytes().to_vec();
        input.extend_from_slice(&(data.len() as u64).to_be_bytes());
        input.extend_from_slice(&index.to_be_bytes());
        input.extend_from_slice(&proof.chunk);
        for node in &proof.path {
            input.extend_from_slice(node);
        }
        input
    }

    fn output(result: PrecompileResult) -> (u64, u8) {
        let out = result.unwrap();
        (out.gas_used, out.bytes.last().copied().unwrap_or(9))
    }

    #[test]
    fn chunk_proofs_check_and_malformed_input_is_invalid() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let input = chunk_input(&data, 7);
        let (gas, valid) = output(chunk_proof_precompile(&input, 1_000_000, 0));
        assert_eq!(valid, 1);
        assert_eq!(
            gas,
            CHUNK_PROOF_BASE_GAS + CHUNK_PROOF_WORD_GAS * words(input.len())
        );
        let mut bad = input.clone();
        bad[100] ^= 1;
        assert_eq!(output(chunk_proof_precompile(&bad, 1_000_000, 0)).1, 0);
        for cut in [0, 31, 47, 48, 500, input.len() - 1] {
            assert_eq!(
                output(chunk_proof_precompile(&input[..cut], 1_000_000, 0)).1,
                0,
                "cut {cut}"
            );
        }
        let mut longer = input.clone();
        longer.push(0);
        assert_eq!(output(chunk_proof_precompile(&longer, 1_000_000, 0)).1, 0);
        let starved = chunk_proof_precompile(&input, 100, 0).unwrap();
        assert!(starved.halt_reason().is_some_and(|h| h.is_oog()));
    }

    #[test]
    fn ed25519_checks_signatures_over_any_message() {
        let key = AccountKey::from_bytes(&[4; 32]);
        let message = b"provider advert v1: 4 cores";
        let mut input = key.public_key().to_vec();
        input.extend_from_slice(&key.sign_message(message));
        input.extend_from_slice(message);
        assert_eq!(output(ed25519_precompile(&input, 1_000_000, 0)).1, 1);
        let mut forged = input.clone();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(output(ed25519_precompile(&forged, 1_000_000, 0)).1, 0);
        assert_eq!(output(ed25519_precompile(&input[..95], 1_000_000, 0)).1, 0);
    }

    /// Evidence input for two votes by `key` in view 11 of `epoch` on the chain with `domain`,
    /// signed under `signed_epoch`'s namespace.
    fn evidence_input(
        key: &AccountKey,
        domain: [u8; 32],
        epoch: u64,
        signed_epoch: u64,
        kinds: [VoteKind; 2],
    ) -> Vec<u8> {
        let namespace = epoch_namespace(&domain, signed_epoch);
        let mut input = domain.to_vec();
        input.extend_from_slice(&epoch.to_be_bytes());
        input.extend_from_slice(&key.public_key());
        for kind in kinds {
            let vote = Vote::sign(key, 0, &namespace, 11, kind);
            input.extend_from_slice(&Equivocation::encode_vote(
                vote.view,
                &vote.kind,
                &vote.signature,
            ));
        }
        input
    }

    #[test]
    fn equivocation_evidence_proves_only_conflicting_votes_of_the_key() {
        let key = AccountKey::from_bytes(&[6; 32]);
        let domain = [0xd0; 32];
        let (a, b) = (B256::repeat_byte(0xa), B256::repeat_byte(0xb));
        let valid = |kinds| {
            output(equivocation_precompile(
                &evidence_input(&key, domain, 3, 3, kinds),
                1_000_000,
                0,
            ))
        };
        assert_eq!(
            valid([VoteKind::Notarize(a), VoteKind::Notarize(b)]),
            (EQUIVOCATION_GAS, 1)
        );
        assert_eq!(valid([VoteKind::Finalize(a), VoteKind::Nullify]).1, 1);
        // Honest pairs: the same vote twice, a notarize then a nullify, notarize and finalize.
        for honest in [
            [VoteKind::Notarize(a), VoteKind::Notarize(a)],
            [VoteKind::Notarize(a), VoteKind::Nullify],
            [VoteKind::Notarize(a), VoteKind::Finalize(a)],
        ] {
            assert_eq!(valid(honest), (EQUIVOCATION_GAS, 0), "{honest:?}");
        }

        let conflicting = [VoteKind::Notarize(a), VoteKind::Notarize(b)];
        let input = evidence_input(&key, domain, 3, 3, conflicting);
        let check = |input: &[u8]| output(equivocation_precompile(input, 1_000_000, 0));
        // Votes of another epoch, or of another chain, claimed for this one.
        assert_eq!(check(&evidence_input(&key, domain, 3, 4, conflicting)).1, 0);
        let mut other_chain = input.clone();
        other_chain[0] ^= 1;
        assert_eq!(check(&other_chain).1, 0);
        // Someone else's key, or a forged signature.
        let mut other_key = input.clone();
        other_key[40..72].copy_from_slice(&AccountKey::from_bytes(&[7; 32]).public_key());
        assert_eq!(check(&other_key).1, 0);
        let mut forged = input.clone();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(check(&forged).1, 0);
        // Two views, an unknown tag, a nullify naming a block, wrong lengths: malformed, 0,
        // and the same price as a valid check.
        let second_vote = 72 + EVIDENCE_VOTE_LEN;
        let mut other_view = input.clone();
        other_view[second_vote + 7] ^= 1;
        assert_eq!(check(&other_view).1, 0);
        let mut unknown_tag = input.clone();
        unknown_tag[second_vote + 8] = 9;
        assert_eq!(check(&unknown_tag).1, 0);
        let mut nullify_with_block = evidence_input(
            &key,
            domain,
            3,
            3,
            [VoteKind::Finalize(a), VoteKind::Nullify],
        );
        nullify_with_block[second_vote + 9] = 1;
        assert_eq!(check(&nullify_with_block).1, 0);
        for cut in [0, 31, 40, 72, 72 + EVIDENCE_VOTE_LEN, input.len() - 1] {
            assert_eq!(check(&input[..cut]), (EQUIVOCATION_GAS, 0), "cut {cut}");
        }
        let mut longer = input.clone();
        longer.push(0);
        assert_eq!(check(&longer).1, 0);
        let starved = equivocation_precompile(&input, EQUIVOCATION_GAS - 1, 0).unwrap();
        assert!(starved.halt_reason().is_some_and(|h| h.is_oog()));
    }

    #[test]
    fn the_set_holds_ethereum_and_cairn_precompiles() {
        let set = precompiles();
        assert!(set.precompiles.contains(&CHUNK_PROOF_PRECOMPILE));
        assert!(set.precompiles.contains(&ED25519_PRECOMPILE));
        assert!(set.precompiles.contains(&EQUIVOCATION_PRECOMPILE));
        assert!(
            set.precompiles
                .contains(&revm::primitives::Address::with_last_byte(1))
        );
    }
}
