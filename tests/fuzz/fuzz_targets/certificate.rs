//! A certificate and a vote decoded from the same bytes and checked against a validator set
//! with unequal power; and equivocation evidence (what the 0x0c03 precompile takes) built from
//! two halves of the input.
#![no_main]

use cairn_primitives::consensus::{Certificate, Equivocation, Validators, Vote};
use cairn_primitives::{AccountKey, Canonical};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let validators = Validators::new((1..=5u8).map(|i| {
        (
            AccountKey::from_bytes(&[i; 32]).public_key(),
            u64::from(i) * 10,
        )
    }));
    if let Ok(certificate) = Certificate::decode(data) {
        assert_eq!(certificate.encode(), data, "canonical encoding");
        let _ = certificate.is_valid(&[3; 32], &validators);
        let _ = certificate.signers().count();
    }
    if let Ok(vote) = Vote::decode(data) {
        assert_eq!(vote.encode(), data, "canonical encoding");
        let _ = vote.is_valid(&[3; 32], &validators);
    }
    let (first, second) = data.split_at(data.len() / 2);
    let key = AccountKey::from_bytes(&[1; 32]).public_key();
    if let Some(evidence) = Equivocation::from_votes(3, key, first, second) {
        let _ = evidence.is_valid(&[3; 32]);
    }
});
