//! What validators say to each other: proposals, votes and certificates, and how each is signed.

use borsh::{BorshDeserialize, BorshSerialize};

use cairn_primitives::keys::verify;
use cairn_primitives::{AccountKey, B256, Canonical, Signature};

/// A validator's position in the validator set.
pub type ValidatorIndex = u32;

/// What a vote is for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
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

    fn tag(&self) -> u8 {
        match self {
            Self::Notarize(_) => 0,
            Self::Nullify => 1,
            Self::Finalize(_) => 2,
        }
    }
}

/// The digest a validator signs for a vote: domain-separated, and bound to one chain by its
/// namespace (the genesis hash), so a vote cannot be replayed on another chain.
pub fn vote_digest(namespace: &[u8; 32], view: u64, kind: &VoteKind) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("cairn consensus vote v1");
    hasher.update(namespace);
    hasher.update(&view.to_le_bytes());
    hasher.update(&[kind.tag()]);
    hasher.update(kind.block().unwrap_or_default().as_slice());
    *hasher.finalize().as_bytes()
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
    pub fn is_valid(&self, namespace: &[u8; 32], validators: &[[u8; 32]]) -> bool {
        validators.get(self.signer as usize).is_some_and(|key| {
            verify(
                key,
                &vote_digest(namespace, self.view, &self.kind),
                &self.signature.to_bytes(),
            )
        })
    }
}

/// A quorum of matching votes: proof that a view was notarized, nullified or finalized.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
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
    /// Whether at least `quorum` distinct validators signed it, each validly.
    pub fn is_valid(&self, namespace: &[u8; 32], validators: &[[u8; 32]], quorum: usize) -> bool {
        let distinct_and_ordered = self.signatures.windows(2).all(|w| w[0].0 < w[1].0);
        let digest = vote_digest(namespace, self.view, &self.kind);
        distinct_and_ordered
            && self.signatures.len() >= quorum
            && self.signatures.iter().all(|(signer, signature)| {
                validators
                    .get(*signer as usize)
                    .is_some_and(|key| verify(key, &digest, &signature.to_bytes()))
            })
    }
}

/// A leader's block for a view. The signature is the leader's notarize vote for the block, so a
/// proposal is also the leader's first vote.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    /// The view.
    pub view: u64,
    /// The view of the parent block.
    pub parent_view: u64,
    /// The parent block's hash.
    pub parent: B256,
    /// The block's height.
    pub height: u64,
    /// The block's hash.
    pub block: B256,
    /// The leader's notarize signature for `block` in `view`.
    pub signature: Signature,
    /// The block itself, encoded; opaque to the state machine, which the node decodes and checks
    /// against the fields above before handing the proposal on.
    pub payload: Vec<u8>,
}

/// Anything a validator broadcasts.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Message {
    /// A leader's block.
    Proposal(Proposal),
    /// A vote.
    Vote(Vote),
    /// A certificate (forwarded so that validators that missed votes catch up).
    Certificate(Certificate),
}

impl Message {
    /// The view the message belongs to.
    pub fn view(&self) -> u64 {
        match self {
            Self::Proposal(proposal) => proposal.view,
            Self::Vote(vote) => vote.view,
            Self::Certificate(certificate) => certificate.view,
        }
    }
}

/// The largest proposal, block included: a 60M-gas block of transfers is well under 1 MiB.
pub const MAX_PROPOSAL_SIZE: usize = 8 * 1024 * 1024;

/// A consensus message as gossiped. `resend` is zero on a message's first sending and the
/// sender's clock on a re-sending, so that a re-sent vote is a new gossip message (gossip
/// identifies messages by content and would drop an identical one as a duplicate).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Envelope {
    /// Zero, or the time of a re-sending.
    pub resend: u64,
    /// The message.
    pub message: Message,
}

impl Canonical for Envelope {
    const NAME: &'static str = "consensus message";
    const MAX_SIZE: usize = MAX_PROPOSAL_SIZE + 64;
}

/// Consecutive finalized blocks and the certificate that finalizes the last of them (and so,
/// through the parent hashes, all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SyncResponse {
    /// The blocks, oldest first.
    pub blocks: Vec<cairn_primitives::Block>,
    /// The finalization of the last block.
    pub finality: Option<Certificate>,
}

impl Canonical for SyncResponse {
    const NAME: &'static str = "sync response";
    const MAX_SIZE: usize = cairn_p2p::MAX_RESPONSE_SIZE;
}
