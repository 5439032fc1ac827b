//! The randomness beacon: each block's leader evaluates a VRF on the previous block's beacon
//! value, and the output is the block's randomness (`block.prevrandao`, and at an epoch's
//! first block the epoch's seed).
//!
//! The VRF is schnorrkel's (sr25519, the Web3 Foundation's): for one key and one input there is
//! exactly one output that verifies, so a leader cannot try signature after signature and keep
//! the value it likes, as it could with an ed25519 signature (whose verification accepts any
//! nonce). All a leader controls is whether its block appears at all: one bit.
//!
//! A validator's VRF key is derived from its consensus key's secret (domain-separated, so the
//! same scalar is never used by two schemes) and registered with it in Staking.

use alloy_primitives::B256;
use schnorrkel::context::attach_rng;
use schnorrkel::vrf::{VRFPreOut, VRFProof};
use schnorrkel::{ExpansionMode, Keypair, MiniSecretKey, PublicKey, signing_context};

use crate::keys::AccountKey;
use crate::transaction::Signature;

/// The VRF proof and output a block carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeaconProof {
    /// The VRF output point (compressed): the beacon value is derived from it.
    pub output: [u8; 32],
    /// The proof that `output` is the VRF of the input under the leader's VRF key.
    pub proof: Signature,
}

/// The proof's nonce source: none. The nonce then comes from the secret key and the transcript,
/// which commits to the input (as ed25519 derives its nonce), so one input always gives one
/// proof: blocks are reproducible, and so is the deterministic simulation. (schnorrkel warns
/// against derandomizing its multi-signatures; a single signer's proof is safe, its nonce being
/// unique per input.)
struct NoRandomness;

impl rand_core::RngCore for NoRandomness {
    fn next_u32(&mut self) -> u32 {
        0
    }

    fn next_u64(&mut self) -> u64 {
        0
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(0);
        Ok(())
    }
}

impl rand_core::CryptoRng for NoRandomness {}

/// The VRF keypair of a consensus key.
fn vrf_keypair(consensus_key: &AccountKey) -> Keypair {
    let seed = blake3::Hasher::new_derive_key("cairn vrf key v1")
        .update(consensus_key.secret().as_slice())
        .finalize();
    // Any 32 bytes are a mini secret key.
    match MiniSecretKey::from_bytes(seed.as_bytes()) {
        Ok(mini) => mini.expand_to_keypair(ExpansionMode::Ed25519),
        Err(error) => unreachable!("a 32-byte mini secret key always parses: {error}"),
    }
}

/// The VRF public key registered with a consensus key.
pub fn vrf_public_key(consensus_key: &AccountKey) -> [u8; 32] {
    vrf_keypair(consensus_key).public.to_bytes()
}

/// Whether 32 bytes are a usable VRF public key (a valid point, not the identity).
pub fn is_vrf_key(bytes: &[u8; 32]) -> bool {
    *bytes != [0; 32] && PublicKey::from_bytes(bytes).is_ok()
}

/// What the VRF is evaluated on: the chain, the height and the previous beacon value.
fn transcript(
    chain_id: u64,
    height: u64,
    previous: &B256,
) -> impl schnorrkel::vrf::VRFSigningTranscript {
    let mut input = Vec::with_capacity(48);
    input.extend_from_slice(&chain_id.to_le_bytes());
    input.extend_from_slice(&height.to_le_bytes());
    input.extend_from_slice(previous.as_slice());
    signing_context(b"cairn beacon v1").bytes(&input)
}

/// The beacon value of an output.
fn beacon_value(inout: &schnorrkel::vrf::VRFInOut) -> B256 {
    B256::from(inout.make_bytes::<[u8; 32]>(b"cairn randomness"))
}

/// The leader's beacon for the block at `height` after the block whose beacon value is
/// `previous`: (proof, randomness).
pub fn prove(
    consensus_key: &AccountKey,
    chain_id: u64,
    height: u64,
    previous: &B256,
) -> (BeaconProof, B256) {
    let keypair = vrf_keypair(consensus_key);
    let proof_transcript = attach_rng(merlin::Transcript::new(b"VRF"), NoRandomness);
    let (inout, proof, _) =
        keypair.vrf_sign_extra(transcript(chain_id, height, previous), proof_transcript);
    let beacon = BeaconProof {
        output: inout.to_preout().to_bytes(),
        proof: Signature::from(proof.to_bytes()),
    };
    (beacon, beacon_value(&inout))
}

/// The randomness a beacon proof proves under `vrf_key`, or `None` if the key, the output or
/// the proof is malformed or the proof does not verify.
pub fn verify(
    vrf_key: &[u8; 32],
    chain_id: u64,
    height: u64,
    previous: &B256,
    beacon: &BeaconProof,
) -> Option<B256> {
    let key = PublicKey::from_bytes(vrf_key).ok()?;
    let output = VRFPreOut::from_bytes(&beacon.output).ok()?;
    let proof = VRFProof::from_bytes(&beacon.proof.to_bytes()).ok()?;
    let (inout, _) = key
        .vrf_verify(transcript(chain_id, height, previous), &output, &proof)
        .ok()?;
    Some(beacon_value(&inout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_beacon_verifies_under_the_leaders_key_only_and_cannot_be_ground() {
        let leader = AccountKey::from_bytes(&[4; 32]);
        let previous = B256::repeat_byte(9);
        let (beacon, randomness) = prove(&leader, 7, 10, &previous);
        let key = vrf_public_key(&leader);
        assert!(is_vrf_key(&key));
        assert!(!is_vrf_key(&[0; 32]) && !is_vrf_key(&[0xff; 32]));
        assert_eq!(verify(&key, 7, 10, &previous, &beacon), Some(randomness));
        // Proving again gives the same proof and value: nothing to choose from.
        let (again, same) = prove(&leader, 7, 10, &previous);
        assert_eq!((again, same), (beacon, randomness));
        // Another key, height, chain or previous value: no.
        let other = vrf_public_key(&AccountKey::from_bytes(&[5; 32]));
        assert_eq!(verify(&other, 7, 10, &previous, &beacon), None);
        assert_eq!(verify(&key, 7, 11, &previous, &beacon), None);
        assert_eq!(verify(&key, 8, 10, &previous, &beacon), None);
        assert_eq!(verify(&key, 7, 10, &B256::ZERO, &beacon), None);
        // A tampered output or proof, or garbage: no.
        let mut tampered = beacon;
        tampered.output[0] ^= 1;
        assert_eq!(verify(&key, 7, 10, &previous, &tampered), None);
        let garbage = BeaconProof {
            output: [0xff; 32],
            proof: Signature::from([0xff; 64]),
        };
        assert_eq!(verify(&key, 7, 10, &previous, &garbage), None);
        assert_eq!(verify(&[0xff; 32], 7, 10, &previous, &beacon), None);
    }
}
