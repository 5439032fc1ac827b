//! What a node makes of a consensus message from a peer before it is forwarded or reaches the
//! state machine: signatures under the current epoch's validator set, and for a proposal, that
//! its block is the one the view's leader signed for.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::machine::Config;
use crate::messages::{Message, Proposal, Vote, VoteKind};
use cairn_primitives::{B256, Block, Canonical};

/// How far in the future (by this node's clock) a proposal's timestamp may be.
pub const MAX_CLOCK_DRIFT_MS: u64 = 5_000;

/// The outcome of [`check`].
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// Valid: forward it and hand it to the machine (with a proposal's decoded block).
    Accept(Option<Block>),
    /// Malformed or inconsistent: drop it and lower the sender's score.
    Reject,
    /// Harmless but useless here (already decided, or stamped too far ahead of this node's
    /// clock): drop it quietly.
    Ignore,
    /// Its signatures do not verify under this epoch's validator set: it may belong to the next
    /// or the previous epoch, so it is neither forwarded nor held against the sender.
    OtherEpoch,
}

/// What the node knows when it checks a message.
#[derive(Debug)]
pub struct Context<'a> {
    /// The current epoch's consensus configuration.
    pub config: &'a Config,
    /// The view of the last finalized block.
    pub anchor_view: u64,
    /// The height of the committed head.
    pub committed_height: u64,
    /// Proposed blocks this node holds, by hash.
    pub known_blocks: &'a BTreeMap<B256, Arc<Block>>,
    /// This node's clock (ms since the Unix epoch).
    pub now_ms: u64,
}

/// Checks a consensus message from a peer.
pub fn check(context: &Context<'_>, message: &Message) -> Checked {
    let config = context.config;
    match message {
        Message::Vote(vote) if vote.view <= context.anchor_view => Checked::Ignore,
        Message::Vote(vote) if vote.is_valid(&config.namespace, &config.validators) => {
            Checked::Accept(None)
        }
        Message::Certificate(certificate) if certificate.view <= context.anchor_view => {
            Checked::Ignore
        }
        Message::Certificate(certificate)
            if certificate.is_valid(&config.namespace, &config.validators) =>
        {
            Checked::Accept(None)
        }
        Message::Vote(_) | Message::Certificate(_) => Checked::OtherEpoch,
        Message::Proposal(proposal) => check_proposal(context, proposal),
    }
}

/// Whether `message`'s signatures verify under `config`'s validator set and namespace (a
/// proposal's, as its view's leader's), whatever else is true of it.
pub(crate) fn is_signed_under(config: &Config, message: &Message) -> bool {
    match message {
        Message::Vote(vote) => vote.is_valid(&config.namespace, &config.validators),
        Message::Certificate(certificate) => {
            certificate.is_valid(&config.namespace, &config.validators)
        }
        Message::Proposal(proposal) => {
            leader_vote(config, proposal).is_valid(&config.namespace, &config.validators)
        }
    }
}

/// The notarize vote a proposal's signature is: its view's leader's, for its block.
fn leader_vote(config: &Config, proposal: &Proposal) -> Vote {
    Vote {
        view: proposal.view,
        kind: VoteKind::Notarize(proposal.block),
        signer: config.leader(proposal.view),
        signature: proposal.signature,
    }
}

fn check_proposal(context: &Context<'_>, proposal: &Proposal) -> Checked {
    let config = context.config;
    if proposal.view <= context.anchor_view || proposal.height <= context.committed_height {
        return Checked::Ignore;
    }
    if proposal.height > config.last_height {
        // The next epoch's: its set signs it, and this node may not know that set yet.
        return Checked::OtherEpoch;
    }
    if !leader_vote(config, proposal).is_valid(&config.namespace, &config.validators) {
        // A height of this epoch, whose leaders this node knows: not the leader's signature.
        // One signature check is all it cost; the sender pays for it in its score.
        return Checked::Reject;
    }
    if proposal.block == proposal.parent {
        // A re-proposal of the epoch's last block: nothing to decode; check the block's height
        // when this node has it.
        let height_ok = context
            .known_blocks
            .get(&proposal.block)
            .is_none_or(|b| b.header.height == config.last_height);
        let valid =
            proposal.payload.is_empty() && proposal.height == config.last_height && height_ok;
        return if valid {
            Checked::Accept(None)
        } else {
            Checked::Reject
        };
    }
    let Ok(block) = Block::decode(&proposal.payload) else {
        return Checked::Reject;
    };
    let header = &block.header;
    let leader = config.validators.key(config.leader(proposal.view));
    let consistent = header.view == proposal.view
        && header.parent == proposal.parent
        && header.height == proposal.height
        && block.hash() == proposal.block
        && Some(&header.proposer) == leader;
    if !consistent {
        return Checked::Reject;
    }
    if header.timestamp_ms > context.now_ms + MAX_CLOCK_DRIFT_MS {
        // The leader's clock is ahead of ours: do not forward, do not vote.
        return Checked::Ignore;
    }
    Checked::Accept(Some(block))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Certificate, Validators};
    use cairn_primitives::{AccountKey, Header, Signature};

    const NOW: u64 = 1_800_000_000_000;

    fn keys() -> Vec<AccountKey> {
        (1..=4u8)
            .map(|i| AccountKey::from_bytes(&[i; 32]))
            .collect()
    }

    fn config() -> Config {
        Config {
            namespace: [9; 32],
            validators: Validators::equal(keys().iter().map(AccountKey::public_key)),
            view_timeout_ms: 1_000,
            retry_ms: 500,
            last_height: 29,
        }
    }

    fn block(view: u64, height: u64, proposer: &AccountKey, timestamp_ms: u64) -> Block {
        Block {
            header: Header {
                chain_id: 1,
                parent: B256::repeat_byte(1),
                height,
                view,
                proposer: proposer.public_key(),
                beneficiary: proposer.address(),
                timestamp_ms,
                tx_root: B256::ZERO,
                receipts_root: B256::ZERO,
                state_root: B256::ZERO,
                randomness: B256::ZERO,
                vrf_output: [0; 32],
                vrf_proof: Signature::from([0; 64]),
                parent_votes_hash: B256::ZERO,
                gas_used: 0,
                gas_limit: 1,
                base_fee_per_gas: 1,
            },
            transactions: Vec::new(),
            parent_votes: None,
        }
    }

    /// A proposal of `block` for its view, signed by `signer` (validator `index`).
    fn proposal(block: &Block, signer: &AccountKey, index: u32) -> Proposal {
        let view = block.header.view;
        let vote = Vote::sign(
            signer,
            index,
            &config().namespace,
            view,
            VoteKind::Notarize(block.hash()),
        );
        Proposal {
            view,
            parent: block.header.parent,
            height: block.header.height,
            block: block.hash(),
            signature: vote.signature,
            payload: block.encode(),
        }
    }

    fn run(message: Message) -> Checked {
        let config = config();
        let known = BTreeMap::new();
        let context = Context {
            config: &config,
            anchor_view: 4,
            committed_height: 3,
            known_blocks: &known,
            now_ms: NOW,
        };
        check(&context, &message)
    }

    #[test]
    fn votes_and_certificates_are_checked_by_signature() {
        let keys = keys();
        let namespace = config().namespace;
        let vote = |view, signer: usize| {
            Vote::sign(
                &keys[signer],
                signer as u32,
                &namespace,
                view,
                VoteKind::Nullify,
            )
        };
        assert_eq!(run(Message::Vote(vote(6, 2))), Checked::Accept(None));
        assert_eq!(
            run(Message::Vote(vote(4, 2))),
            Checked::Ignore,
            "decided view"
        );
        let mut impostor = vote(6, 2);
        impostor.signer = 3;
        assert_eq!(run(Message::Vote(impostor)), Checked::OtherEpoch);
        let mut outsider = vote(6, 2);
        outsider.signer = 99;
        assert_eq!(run(Message::Vote(outsider)), Checked::OtherEpoch);

        let signatures = |signers: &[usize]| {
            signers
                .iter()
                .map(|s| (*s as u32, vote(7, *s).signature))
                .collect::<Vec<_>>()
        };
        let certificate = |signers: &[usize]| Certificate {
            view: 7,
            kind: VoteKind::Nullify,
            signatures: signatures(signers),
        };
        assert_eq!(
            run(Message::Certificate(certificate(&[0, 1, 3]))),
            Checked::Accept(None)
        );
        for short_or_repeated in [&[0, 1][..], &[0, 1, 1], &[1, 0, 3]] {
            assert_eq!(
                run(Message::Certificate(certificate(short_or_repeated))),
                Checked::OtherEpoch,
                "{short_or_repeated:?}"
            );
        }
    }

    #[test]
    fn a_proposal_must_be_the_leaders_block_for_its_view() {
        let keys = keys();
        let leader = config().leader(5);
        let l = leader as usize;
        let other = (l + 1) % 4;
        let previous = config().leader(4) as usize;
        let good = block(5, 4, &keys[l], NOW);
        assert_eq!(
            run(Message::Proposal(proposal(&good, &keys[l], leader))),
            Checked::Accept(Some(good.clone()))
        );

        // Signed by another validator: not this view's leader, at a height of this epoch.
        assert_eq!(
            run(Message::Proposal(proposal(
                &good,
                &keys[other],
                other as u32
            ))),
            Checked::Reject
        );
        // The leader signed, but the block names another proposer.
        let wrong_proposer = block(5, 4, &keys[other], NOW);
        assert_eq!(
            run(Message::Proposal(proposal(
                &wrong_proposer,
                &keys[l],
                leader
            ))),
            Checked::Reject
        );
        // The payload is not the block the signature is for.
        let mut swapped = proposal(&good, &keys[l], leader);
        swapped.payload = block(5, 4, &keys[l], NOW + 1).encode();
        assert_eq!(run(Message::Proposal(swapped)), Checked::Reject);
        // The payload is garbage.
        let mut garbage = proposal(&good, &keys[l], leader);
        garbage.payload = vec![1, 2, 3];
        assert_eq!(run(Message::Proposal(garbage)), Checked::Reject);
        // Claims another height than its block's.
        let mut height = proposal(&good, &keys[l], leader);
        height.height = 5;
        assert_eq!(run(Message::Proposal(height)), Checked::Reject);
        // Stamped too far ahead of this node's clock.
        let future = block(5, 4, &keys[l], NOW + MAX_CLOCK_DRIFT_MS + 1);
        assert_eq!(
            run(Message::Proposal(proposal(&future, &keys[l], leader))),
            Checked::Ignore
        );
        // Already decided.
        let old = block(4, 4, &keys[previous], NOW);
        assert_eq!(
            run(Message::Proposal(proposal(
                &old,
                &keys[previous],
                previous as u32
            ))),
            Checked::Ignore
        );
        // Past the epoch's end: the next set decides it.
        let next_epoch = block(5, 30, &keys[l], NOW);
        assert_eq!(
            run(Message::Proposal(proposal(&next_epoch, &keys[l], leader))),
            Checked::OtherEpoch
        );
    }

    #[test]
    fn only_the_epochs_last_block_may_be_re_proposed_and_without_payload() {
        let keys = keys();
        let last = block(5, 29, &keys[config().leader(5) as usize], NOW);
        let leader = config().leader(6);
        let reproposal = |height: u64, payload: Vec<u8>| {
            let vote = Vote::sign(
                &keys[leader as usize],
                leader,
                &config().namespace,
                6,
                VoteKind::Notarize(last.hash()),
            );
            Message::Proposal(Proposal {
                view: 6,
                parent: last.hash(),
                height,
                block: last.hash(),
                signature: vote.signature,
                payload,
            })
        };
        assert_eq!(run(reproposal(29, Vec::new())), Checked::Accept(None));
        assert_eq!(run(reproposal(28, Vec::new())), Checked::Reject);
        assert_eq!(run(reproposal(29, last.encode())), Checked::Reject);
    }
}
