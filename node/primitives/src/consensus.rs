//! What consensus signs: votes, certificates, the validator set with its voting power, and the
//! domain that binds every signature to one chain and one epoch.
//!
//! These live here, below the consensus crate, because the chain needs them too: the EVM's
//! equivocation precompile checks two votes against each other, and a block carries the votes
//! that notarized its parent so that the chain can tell who took part.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec::Canonical;
use crate::keys::{AccountKey, verify};
use crate::transaction::Signature;
use alloy_primitives::B256;

/// A validator's position in the validator set.
pub type ValidatorIndex = u32;

/// What a vote is for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum VoteKind {
    /// The block is valid and extends a valid parent: notarize it.
    Notarize(B256),
    /// Nothing was notarized in time: skip the view.
    Nullify,
    /// The view's block was notarized before this validator timed out: finalize it.
    Finalize(B256),
}

impl VoteKind {
    /// The block the vote names, if any.
    pub fn block(&self) -> Option<B256> {
        match self {
            Self::Notarize(block) | Self::Finalize(block) => Some(*block),
            Self::Nullify => None,
        }
    }

    /// The one-byte tag signed into a vote (and used in evidence).
    pub fn tag(&self) -> u8 {
        match self {
            Self::Notarize(_) => 0,
            Self::Nullify => 1,
            Self::Finalize(_) => 2,
        }
    }

    /// The kind with this tag naming `block` (ignored for a nullify vote); `None` for an
    /// unknown tag.
    pub fn from_tag(tag: u8, block: B256) -> Option<Self> {
        match tag {
            0 => Some(Self::Notarize(block)),
            1 => Some(Self::Nullify),
            2 => Some(Self::Finalize(block)),
            _ => None,
        }
    }

    /// Whether one honest validator can never sign both `self` and `other` in one view: two
    /// different notarize votes, two different finalize votes, or a finalize vote and a
    /// nullify vote. (A notarize and a nullify vote in one view are both honest: the validator
    /// voted for the block, then timed out before a notarization formed.)
    pub fn conflicts_with(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Notarize(a), Self::Notarize(b)) | (Self::Finalize(a), Self::Finalize(b)) => {
                a != b
            }
            (Self::Finalize(_), Self::Nullify) | (Self::Nullify, Self::Finalize(_)) => true,
            _ => false,
        }
    }
}

/// The signing namespace of one epoch's validator set: votes of another chain or another
/// epoch never count. `domain` is the chain's consensus domain (`Genesis::consensus_domain`).
pub fn epoch_namespace(domain: &[u8; 32], epoch: u64) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("cairn consensus epoch v1");
    hasher.update(domain);
    hasher.update(&epoch.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// The digest a validator signs for a vote: domain-separated, and bound to one chain and epoch
/// by its namespace, so a vote cannot be replayed on another chain or in another epoch.
pub fn vote_digest(namespace: &[u8; 32], view: u64, kind: &VoteKind) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("cairn consensus vote v1");
    hasher.update(namespace);
    hasher.update(&view.to_le_bytes());
    hasher.update(&[kind.tag()]);
    hasher.update(kind.block().unwrap_or_default().as_slice());
    *hasher.finalize().as_bytes()
}

/// One epoch's validators: consensus keys and voting power (whole tokens bonded), in index
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Validators {
    keys: Vec<[u8; 32]>,
    powers: Vec<u64>,
    total: u64,
}

impl Validators {
    /// A set from (key, power) pairs; a power of zero counts as one, so that every member can
    /// be heard.
    pub fn new(members: impl IntoIterator<Item = ([u8; 32], u64)>) -> Self {
        let (keys, powers): (Vec<[u8; 32]>, Vec<u64>) = members
            .into_iter()
            .map(|(key, power)| (key, power.max(1)))
            .unzip();
        let total = powers.iter().fold(0u64, |sum, p| sum.saturating_add(*p));
        Self {
            keys,
            powers,
            total,
        }
    }

    /// A set in which every member has the same power (tests, and sets without stake).
    pub fn equal(keys: impl IntoIterator<Item = [u8; 32]>) -> Self {
        Self::new(keys.into_iter().map(|key| (key, 1)))
    }

    /// How many validators.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The consensus keys, in index order.
    pub fn keys(&self) -> &[[u8; 32]] {
        &self.keys
    }

    /// One validator's key.
    pub fn key(&self, index: ValidatorIndex) -> Option<&[u8; 32]> {
        self.keys.get(index as usize)
    }

    /// The index of the validator with this key.
    pub fn index_of(&self, key: &[u8; 32]) -> Option<ValidatorIndex> {
        self.keys
            .iter()
            .position(|k| k == key)
            .map(|i| i as ValidatorIndex)
    }

    /// One validator's voting power (zero for an unknown index).
    pub fn power(&self, index: ValidatorIndex) -> u64 {
        self.powers.get(index as usize).copied().unwrap_or(0)
    }

    /// The power of all validators together.
    pub fn total_power(&self) -> u64 {
        self.total
    }

    /// Whether these distinct signers hold more than two thirds of the power: a quorum. Any two
    /// quorums share more than a third of the power, so with less than a third faulty they
    /// share an honest validator.
    pub fn is_quorum(&self, signers: impl IntoIterator<Item = ValidatorIndex>) -> bool {
        let power = signers
            .into_iter()
            .fold(0u64, |sum, index| sum.saturating_add(self.power(index)));
        u128::from(power) * 3 > u128::from(self.total) * 2
    }

    /// Whether these signers hold more than a third of the power: at least one honest among
    /// them when less than a third is faulty.
    pub fn is_more_than_a_third(&self, signers: impl IntoIterator<Item = ValidatorIndex>) -> bool {
        let power = signers
            .into_iter()
            .fold(0u64, |sum, index| sum.saturating_add(self.power(index)));
        u128::from(power) * 3 > u128::from(self.total)
    }

    /// The leader of `view`: drawn by power from a hash of the namespace and the view, so that
    /// a validator leads in proportion to its stake and nobody can choose the order.
    pub fn leader(&self, namespace: &[u8; 32], view: u64) -> ValidatorIndex {
        if self.total == 0 {
            return 0;
        }
        let mut hasher = blake3::Hasher::new_derive_key("cairn consensus leader v1");
        hasher.update(namespace);
        hasher.update(&view.to_le_bytes());
        let mut wide = [0u8; 16];
        wide.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        // A 128-bit draw reduced modulo the total: the bias is below 2^-64.
        let mut ticket = (u128::from_le_bytes(wide) % u128::from(self.total)) as u64;
        for (index, power) in self.powers.iter().enumerate() {
            if ticket < *power {
                return index as ValidatorIndex;
            }
            ticket -= power;
        }
        0
    }
}

/// One validator's signed vote.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    /// The view voted in.
    pub view: u64,
    /// What for.
    pub kind: VoteKind,
    /// Who voted.
    pub signer: ValidatorIndex,
    /// The signer's ed25519 signature over [`vote_digest`].
    pub signature: Signature,
}

impl Canonical for Vote {
    const NAME: &'static str = "consensus vote";
    const MAX_SIZE: usize = 256;
}

impl Vote {
    /// Signs a vote.
    pub fn sign(
        key: &AccountKey,
        signer: ValidatorIndex,
        namespace: &[u8; 32],
        view: u64,
        kind: VoteKind,
    ) -> Self {
        let signature = Signature::from(key.sign(&vote_digest(namespace, view, &kind)));
        Self {
            view,
            kind,
            signer,
            signature,
        }
    }

    /// Whether the signature is the named validator's.
    pub fn is_valid(&self, namespace: &[u8; 32], validators: &Validators) -> bool {
        validators.key(self.signer).is_some_and(|key| {
            verify(
                key,
                &vote_digest(namespace, self.view, &self.kind),
                &self.signature.to_bytes(),
            )
        })
    }
}

/// Votes of more than two thirds of the power for one thing: proof that a view was notarized,
/// nullified or finalized.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Certificate {
    /// The view.
    pub view: u64,
    /// What the votes were for.
    pub kind: VoteKind,
    /// The signers, in increasing order, with their signatures.
    pub signatures: Vec<(ValidatorIndex, Signature)>,
}

impl Canonical for Certificate {
    const NAME: &'static str = "consensus certificate";
    // A thousand validators' signatures.
    const MAX_SIZE: usize = 128 * 1024;
}

impl Certificate {
    /// Whether its distinct signers hold a quorum of the power, each signature valid. The
    /// quorum is counted before any signature is checked, so a certificate that could never
    /// be enough costs no verification.
    pub fn is_valid(&self, namespace: &[u8; 32], validators: &Validators) -> bool {
        let distinct_and_ordered = self.signatures.windows(2).all(|w| w[0].0 < w[1].0);
        if !distinct_and_ordered
            || !validators.is_quorum(self.signatures.iter().map(|(signer, _)| *signer))
        {
            return false;
        }
        let digest = vote_digest(namespace, self.view, &self.kind);
        self.signatures.iter().all(|(signer, signature)| {
            validators
                .key(*signer)
                .is_some_and(|key| verify(key, &digest, &signature.to_bytes()))
        })
    }

    /// The signers, in index order.
    pub fn signers(&self) -> impl Iterator<Item = ValidatorIndex> + '_ {
        self.signatures.iter().map(|(signer, _)| *signer)
    }
}

/// Proof that one consensus key signed two conflicting votes in one view of one epoch: what
/// `Staking.reportEquivocation` takes (through the equivocation precompile) to slash it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// The epoch the votes were signed in.
    pub epoch: u64,
    /// The signer's consensus key.
    pub key: [u8; 32],
    /// The view.
    pub view: u64,
    /// The two votes' kinds and signatures.
    pub votes: [(VoteKind, Signature); 2],
}

/// The encoded length of one vote in evidence: view (8) ‖ tag (1) ‖ block (32) ‖ signature (64).
pub const EVIDENCE_VOTE_LEN: usize = 8 + 1 + 32 + 64;

impl Equivocation {
    /// Whether the two votes conflict and both carry the key's valid signature under the
    /// epoch's namespace of the chain with this consensus domain.
    pub fn is_valid(&self, domain: &[u8; 32]) -> bool {
        let [(first, first_signature), (second, second_signature)] = &self.votes;
        let namespace = epoch_namespace(domain, self.epoch);
        first.conflicts_with(second)
            && [(first, first_signature), (second, second_signature)]
                .into_iter()
                .all(|(kind, signature)| {
                    verify(
                        &self.key,
                        &vote_digest(&namespace, self.view, kind),
                        &signature.to_bytes(),
                    )
                })
    }

    /// One vote as evidence bytes (see [`EVIDENCE_VOTE_LEN`]).
    pub fn encode_vote(view: u64, kind: &VoteKind, signature: &Signature) -> Vec<u8> {
        let mut out = Vec::with_capacity(EVIDENCE_VOTE_LEN);
        out.extend_from_slice(&view.to_be_bytes());
        out.push(kind.tag());
        out.extend_from_slice(kind.block().unwrap_or_default().as_slice());
        out.extend_from_slice(&signature.to_bytes());
        out
    }

    /// Reads evidence from the two encoded votes; `None` if either is malformed or the views
    /// differ.
    pub fn from_votes(epoch: u64, key: [u8; 32], first: &[u8], second: &[u8]) -> Option<Self> {
        let (view, first) = Self::decode_vote(first)?;
        let (second_view, second) = Self::decode_vote(second)?;
        (view == second_view).then_some(Self {
            epoch,
            key,
            view,
            votes: [first, second],
        })
    }

    fn decode_vote(bytes: &[u8]) -> Option<(u64, (VoteKind, Signature))> {
        let bytes: &[u8; EVIDENCE_VOTE_LEN] = bytes.try_into().ok()?;
        let (view, rest) = bytes.split_first_chunk::<8>()?;
        let (tag, rest) = rest.split_first()?;
        let (block, signature) = rest.split_first_chunk::<32>()?;
        let signature: [u8; 64] = signature.try_into().ok()?;
        let kind = VoteKind::from_tag(*tag, B256::from(*block))?;
        if kind == VoteKind::Nullify && *block != [0; 32] {
            return None;
        }
        Some((
            u64::from_be_bytes(*view),
            (kind, Signature::from(signature)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(powers: &[u64]) -> (Vec<AccountKey>, Validators) {
        let keys: Vec<AccountKey> = (0..powers.len())
            .map(|i| AccountKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let validators = Validators::new(
            keys.iter()
                .map(AccountKey::public_key)
                .zip(powers.iter().copied()),
        );
        (keys, validators)
    }

    #[test]
    fn a_quorum_is_more_than_two_thirds_of_the_power_not_of_the_seats() {
        let (_, equal) = set(&[1, 1, 1, 1]);
        assert!(equal.is_quorum([0, 1, 2]));
        assert!(!equal.is_quorum([0, 1]));
        let (_, seven) = set(&[1; 7]);
        assert!(seven.is_quorum([0, 1, 2, 3, 4]));
        assert!(!seven.is_quorum([0, 1, 2, 3]));
        // One big validator and many small seats: the seats alone are no quorum.
        let (_, weighted) = set(&[10, 1, 1, 1, 1, 1]);
        assert!(!weighted.is_quorum([1, 2, 3, 4, 5]));
        assert!(weighted.is_quorum([0, 1]));
        assert!(!weighted.is_quorum([0]));
        // A signer counted twice does not count twice in a certificate (checked there).
    }

    #[test]
    fn leaders_are_drawn_in_proportion_to_power() {
        let (_, weighted) = set(&[6, 1, 1, 2]);
        let mut led = [0u32; 4];
        for view in 0..10_000 {
            led[weighted.leader(&[7; 32], view) as usize] += 1;
        }
        // Expected 6,000 / 1,000 / 1,000 / 2,000.
        assert!((5_700..6_300).contains(&led[0]), "{led:?}");
        assert!((850..1_150).contains(&led[1]), "{led:?}");
        assert!((1_800..2_200).contains(&led[3]), "{led:?}");
    }

    #[test]
    fn a_certificate_needs_a_quorum_of_power_and_valid_distinct_signatures() {
        let (keys, validators) = set(&[1, 1, 1, 1]);
        let namespace = [3; 32];
        let kind = VoteKind::Nullify;
        let votes: Vec<Vote> = (0..3)
            .map(|i| Vote::sign(&keys[i], i as u32, &namespace, 5, kind))
            .collect();
        let mut certificate = Certificate {
            view: 5,
            kind,
            signatures: votes.iter().map(|v| (v.signer, v.signature)).collect(),
        };
        assert!(certificate.is_valid(&namespace, &validators));
        assert!(
            !certificate.is_valid(&[4; 32], &validators),
            "another epoch"
        );
        let duplicated = certificate.signatures[0];
        certificate.signatures[1] = duplicated;
        assert!(
            !certificate.is_valid(&namespace, &validators),
            "one signer twice"
        );
    }

    #[test]
    fn evidence_proves_only_conflicting_votes_by_the_key() {
        let key = AccountKey::from_bytes(&[9; 32]);
        let domain = [5; 32];
        let namespace = epoch_namespace(&domain, 2);
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let signed = |kind: VoteKind| Vote::sign(&key, 0, &namespace, 11, kind);
        let evidence = |x: VoteKind, y: VoteKind| {
            let (x, y) = (signed(x), signed(y));
            Equivocation::from_votes(
                2,
                key.public_key(),
                &Equivocation::encode_vote(x.view, &x.kind, &x.signature),
                &Equivocation::encode_vote(y.view, &y.kind, &y.signature),
            )
            .unwrap()
        };
        assert!(evidence(VoteKind::Notarize(a), VoteKind::Notarize(b)).is_valid(&domain));
        assert!(evidence(VoteKind::Finalize(a), VoteKind::Nullify).is_valid(&domain));
        // Honest pairs prove nothing.
        assert!(!evidence(VoteKind::Notarize(a), VoteKind::Nullify).is_valid(&domain));
        assert!(!evidence(VoteKind::Notarize(a), VoteKind::Notarize(a)).is_valid(&domain));
        assert!(!evidence(VoteKind::Notarize(a), VoteKind::Finalize(a)).is_valid(&domain));
        // Someone else's key, another epoch or another chain: nothing.
        let mut forged = evidence(VoteKind::Notarize(a), VoteKind::Notarize(b));
        forged.key = AccountKey::from_bytes(&[8; 32]).public_key();
        assert!(!forged.is_valid(&domain));
        let mut other_epoch = evidence(VoteKind::Notarize(a), VoteKind::Notarize(b));
        other_epoch.epoch = 3;
        assert!(!other_epoch.is_valid(&domain));
        assert!(!evidence(VoteKind::Notarize(a), VoteKind::Notarize(b)).is_valid(&[6; 32]));
        // Malformed bytes are no evidence.
        assert!(Equivocation::from_votes(2, key.public_key(), &[0; 10], &[0; 105]).is_none());
    }
}
