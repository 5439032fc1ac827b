//! What validators say to each other: proposals, votes and certificates, and how each is signed.

use borsh::{BorshDeserialize, BorshSerialize};

use cairn_primitives::{B256, Canonical, Signature};

pub use cairn_primitives::consensus::{
    Certificate, ValidatorIndex, Validators, Vote, VoteKind, epoch_namespace, vote_digest,
};

/// A leader's block for a view. The signature is the leader's notarize vote for the block, so a
/// proposal is also the leader's first vote.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    /// The view.
    pub view: u64,
    /// The parent block's hash. (No parent view: the leader's signature covers the block
    /// alone, so each validator finds the parent's view from its own certificates.)
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
/// identifies messages by content and would drop an identical one as a duplicate); a node
/// that holds the message already drops such a copy before any check. `epoch` is the epoch
/// the sender says the message belongs to: a vote or certificate of the receiver's epoch whose
/// signatures fail is then the sender's fault (rejected, and it costs the sender's score), and
/// one of the next epoch can be held, within a budget, until the receiver gets there.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Envelope {
    /// Zero, or the time of a re-sending.
    pub resend: u64,
    /// The epoch whose validators signed the message.
    pub epoch: u64,
    /// The message.
    pub message: Message,
}

impl Canonical for Envelope {
    const NAME: &'static str = "consensus message";
    const MAX_SIZE: usize = MAX_PROPOSAL_SIZE + 64;
}

/// Consecutive finalized blocks and the certificate that finalizes the last of them (and so,
/// through the parent hashes, all of them).
///
/// On the wire: the blocks, the certificate, then one byte `1` only when `busy`. An answer that
/// is not busy is byte for byte what nodes wrote before the flag existed, so nodes of either
/// build sync from each other while a network upgrades one node at a time; a trailing byte
/// that is not `1` is refused (one encoding per answer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncResponse {
    /// The blocks, oldest first.
    pub blocks: Vec<cairn_primitives::Block>,
    /// The finalization of the last block.
    pub finality: Option<Certificate>,
    /// The server had no room to prepare an answer (it serves a few peers at a time): ask
    /// another peer, where an empty answer that is not busy means there is nothing to sync.
    pub busy: bool,
}

impl BorshSerialize for SyncResponse {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        self.blocks.serialize(writer)?;
        self.finality.serialize(writer)?;
        if self.busy {
            writer.write_all(&[1])?;
        }
        Ok(())
    }
}

impl BorshDeserialize for SyncResponse {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let blocks = Vec::deserialize_reader(reader)?;
        let finality = Option::deserialize_reader(reader)?;
        let mut flag = [0u8; 1];
        let busy = match reader.read(&mut flag)? {
            0 => false,
            _ if flag[0] == 1 => true,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a sync answer's busy flag must be absent or 1",
                ));
            }
        };
        Ok(Self {
            blocks,
            finality,
            busy,
        })
    }
}

impl Canonical for SyncResponse {
    const NAME: &'static str = "sync response";
    const MAX_SIZE: usize = cairn_p2p::MAX_RESPONSE_SIZE;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes of the build before the busy flag read an answer that is not busy, and a node of
    /// this build reads theirs; the flag has one encoding.
    #[test]
    fn a_sync_answer_that_is_not_busy_is_encoded_as_before_the_flag() {
        let answer = SyncResponse::default();
        // The version byte, then the body the derived encoding of the two fields wrote.
        let mut before = answer.encode()[..1].to_vec();
        before.extend(
            borsh::to_vec(&(Vec::<cairn_primitives::Block>::new(), None::<Certificate>))
                .expect("encodes"),
        );
        assert_eq!(answer.encode(), before);
        assert_eq!(SyncResponse::decode(&before).expect("decodes"), answer);
        let busy = SyncResponse {
            busy: true,
            ..SyncResponse::default()
        };
        assert_eq!(SyncResponse::decode(&busy.encode()).expect("decodes"), busy);
        let mut zero = before.clone();
        zero.push(0);
        assert!(SyncResponse::decode(&zero).is_err(), "a written false");
        let mut twice = busy.encode();
        twice.push(1);
        assert!(SyncResponse::decode(&twice).is_err(), "a trailing byte");
    }
}
