//! Deterministic simulation of consensus: each validator runs the production driver
//! ([`driver::run`]) with its own RocksDB chain, write-ahead log of votes and chain worker,
//! over a seeded network that drops, delays and reorders messages, and forwards what honest
//! validators accept, as gossipsub does. Validators crash (their
//! driver and chain worker are dropped wherever they are) and restart from their database, and
//! one may be Byzantine. Every run checks that no two validators ever commit different blocks
//! at one height; the runs with at most `f` faulty validators also check that the chain grows.
//!
//! The whole run is one single-threaded tokio runtime with a paused clock: time is virtual and
//! only moves when every task waits, blocking work runs inline, the driver's event loop is
//! biased, and every random choice comes from one seeded generator. A seed is therefore one
//! run, replayed exactly (`the_same_seed_gives_the_same_trace`). To see a failing seed's run,
//! set `CAIRN_SIM_TRACE=1` (every delivery, crash, restart and sync) and `RUST_LOG=trace` (each
//! validator's driver, action by action).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cairn_chain::Chain;
use cairn_chain::genesis::{Genesis, GenesisValidator, TOKEN};
use cairn_evm::execution::Sequential;
use cairn_mempool::{MempoolConfig, TxPool};
use cairn_p2p::{
    GossipMessage, MessageId, NetworkEvent, NetworkStatus, Offence, P2pError, PeerId, TopicKind,
    Verdict,
};
use cairn_primitives::wire::PeerRequest;
use cairn_primitives::{AccountKey, B256, Block, Canonical, Signature, U256};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::driver::{self, Links, NetworkView, Timing};
use crate::messages::{Envelope, Message, Proposal, SyncResponse, ValidatorIndex, Vote, VoteKind};
use crate::messages::{Validators, epoch_namespace};
use crate::runtime::{ConsensusNetwork, Runtime};
use crate::sync::sync_response;

/// splitmix64: a tiny seeded generator, so a seed means the same run on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, Copy)]
struct Faults {
    drop_percent: u64,
    max_delay_ms: u64,
    /// Validators that crash at some point and restart later (at most this many down at once).
    crashing: usize,
    /// Validators that stay down for the whole run.
    dead: usize,
    /// Blocks per epoch: each epoch is decided by a new machine (same validators, its own
    /// namespace); `None` for one epoch throughout.
    epoch_length: Option<u64>,
    /// How the faulty validators misbehave (the last `f` of the set, `f` the most faulty the
    /// set tolerates); `None` for none.
    byzantine: Option<Byzantine>,
    /// How many validators.
    validators: usize,
    /// The whole network is killed at random moments (every validator at once, each where it
    /// happens to be) and restarted, again and again.
    whole_network_crashes: bool,
}

impl Faults {
    /// The most faulty validators the set tolerates: less than a third of the power (all
    /// validators here have the same).
    fn tolerated(&self) -> usize {
        (self.validators - 1) / 3
    }

    fn is_byzantine(&self, index: usize) -> bool {
        self.byzantine.is_some() && index >= self.validators - self.tolerated()
    }
}

/// What a Byzantine validator does. It runs the production driver, and the network rewrites
/// or adds to what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Byzantine {
    /// When it leads, sends one block to half the validators and another to the rest, and
    /// votes to notarize and finalize both.
    Equivocate,
    /// Signs a second, conflicting vote for every vote it casts.
    DoubleVote,
    /// With each block it proposes, signs padded blocks for the next views it leads, up to
    /// thousands of views ahead.
    FloodFutureViews,
    /// Re-sends every message it receives, several times, each as a new gossip message.
    Replay,
    /// Sends copies of everything it says with broken signatures.
    BadSignatures,
    /// Never sends the blocks it builds; votes as usual.
    WithholdProposals,
    /// Sends nothing at all.
    Silent,
    /// Proposes blocks with a wrong state root (blocks it did not execute correctly), signed
    /// as its notarize vote.
    BadExecution,
    /// With everything it says, sends junk that claims the next epoch (which nobody can check
    /// before getting there): votes with broken signatures, and padded blocks for the next
    /// epoch's first height.
    NextEpochJunk,
}

/// Padding of each flooded block: large enough that holding many would show.
const FLOOD_PADDING: usize = 256 * 1024;
/// Future views flooded with each real proposal.
const FLOODED_VIEWS: usize = 8;
/// Copies of each received message a replayer re-sends.
const REPLAYS: usize = 3;
/// The sim's pace: a block every few round trips, as fast as the old machine-only simulation.
const BLOCK_TIME_MS: u64 = 10;
const VIEW_TIMEOUT_MS: u64 = 300;
const RETRY_MS: u64 = 200;

/// The clock and executor of a simulated validator: the wall clock is the genesis time plus
/// the virtual time since the run began, and blocking work runs inline.
#[derive(Clone)]
struct SimRuntime {
    genesis_ms: u64,
    started: tokio::time::Instant,
    /// Set when blocking work panicked: the run fails, whatever else it checks.
    panicked: Arc<std::sync::atomic::AtomicBool>,
}

impl Runtime for SimRuntime {
    fn now_ms(&self) -> u64 {
        self.genesis_ms + self.started.elapsed().as_millis() as u64
    }

    fn run_blocking<T, F>(&self, work: F) -> impl Future<Output = Option<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).ok();
        if done.is_none() {
            self.panicked
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        async move { done }
    }

    fn spawn<F>(&self, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(task)
    }
}

/// The votes one validator sent, by (namespace, view, slot).
type SentVotes = BTreeMap<([u8; 32], u64, u8), VoteKind>;

/// What every simulated validator's network shares: who is up, the seeded randomness, and the
/// record of the run.
struct Hub {
    rng: Rng,
    faults: Faults,
    epoch_length: u64,
    domain: [u8; 32],
    keys: Vec<AccountKey>,
    peer_ids: Vec<PeerId>,
    /// Each validator's inbox while it runs.
    inboxes: Vec<Option<mpsc::Sender<NetworkEvent>>>,
    /// Each validator's chain (its database stays open while it is down, as it stays on disk).
    chains: Vec<Arc<Chain>>,
    trace: blake3::Hasher,
    deliveries: u64,
    started: tokio::time::Instant,
    /// Re-proposals of an epoch's last block that were sent.
    reproposals: usize,
    /// Twin blocks the equivocator sent.
    twins: usize,
    /// Times a Byzantine validator did what it does (a twin, a flooded block, a replay...).
    byzantine_acts: usize,
    /// Every vote each validator sent.
    sent_votes: Vec<SentVotes>,
    /// The highest finalized height when each whole-network crash struck.
    heights_at_network_crashes: Vec<usize>,
    /// Messages of honest validators that a validator rejected (which would cost the sender
    /// its score and, repeated, a ban).
    honest_rejections: usize,
    /// Messages of faulty validators that a validator rejected (each costs its author).
    faulty_rejections: usize,
    /// Messages found forged only after they were held for the next epoch, and charged then.
    late_charges: usize,
    /// Sync requests answered busy.
    busy_sync_answers: usize,
    /// What each running validator has received, by content (gossipsub's seen cache: a
    /// message that reaches a node again, by another relay, is dropped before the node).
    seen: Vec<BTreeSet<[u8; 32]>>,
}

impl Hub {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn record(&mut self, line: String) {
        let line = format!("{} {line}\n", self.now());
        if std::env::var_os("CAIRN_SIM_TRACE").is_some() {
            eprint!("{line}");
        }
        self.trace.update(line.as_bytes());
    }
}

/// One validator's view of the simulated network.
#[derive(Clone)]
struct SimNetwork {
    index: usize,
    hub: Arc<Mutex<Hub>>,
}

fn lock(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|p| p.into_inner())
}

fn slot(kind: &VoteKind) -> u8 {
    match kind {
        VoteKind::Notarize(_) => 0,
        VoteKind::Nullify => 1,
        VoteKind::Finalize(_) => 2,
    }
}

impl SimNetwork {
    /// Counts a charge this validator lays on `author`, which a real network would turn into a
    /// lower score and, repeated, a ban: it must never hit an honest validator.
    fn charge(&self, hub: &mut Hub, author: PeerId) {
        match hub.peer_ids.iter().position(|peer| *peer == author) {
            Some(from) if hub.faults.is_byzantine(from) => hub.faulty_rejections += 1,
            Some(_) => {
                hub.honest_rejections += 1;
                hub.record(format!("{} rejected an honest message", self.index));
            }
            None => {}
        }
    }

    /// Sends `data` from this validator to `to` after a random delay, unless the network drops
    /// it.
    fn send(&self, hub: &mut Hub, kind: TopicKind, to: usize, data: Vec<u8>) {
        let author = hub.peer_ids[self.index];
        let content = *blake3::hash(&data).as_bytes();
        self.send_as(hub, kind, to, &data, author, content);
    }

    /// Sends `data`, published by `author`, from this validator to `to`: a validator's own
    /// message or, forwarded, another's. `content` is the hash that gossip knows it by.
    fn send_as(
        &self,
        hub: &mut Hub,
        kind: TopicKind,
        to: usize,
        data: &[u8],
        author: PeerId,
        content: [u8; 32],
    ) {
        let (drop_percent, max_delay) = (hub.faults.drop_percent, hub.faults.max_delay_ms);
        if to == self.index || hub.peer_ids[to] == author || hub.rng.chance(drop_percent) {
            return;
        }
        // Gossip does not send a message to a peer that has it (an IHAVE would show it).
        if hub.seen[to].contains(&content) {
            return;
        }
        let delay = 1 + hub.rng.below(max_delay);
        hub.deliveries += 1;
        let message = GossipMessage {
            kind,
            source: hub.peer_ids[self.index],
            author: Some(author),
            id: MessageId::new(&hub.deliveries.to_le_bytes()),
            data: data.to_vec(),
        };
        let (from, shared) = (self.index, self.hub.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let mut hub = lock(&shared);
            if hub.inboxes[to].is_none() || !hub.seen[to].insert(content) {
                return;
            }
            let what = match Envelope::decode(&message.data).map(|e| e.message) {
                Ok(Message::Proposal(p)) => {
                    format!("proposal v{} h{} {}", p.view, p.height, p.block)
                }
                Ok(Message::Vote(v)) => format!("vote v{} {:?} by {}", v.view, v.kind, v.signer),
                Ok(Message::Certificate(c)) => format!("certificate v{} {:?}", c.view, c.kind),
                Err(_) => format!("{}", blake3::hash(&message.data)),
            };
            hub.record(format!("{from} -> {to} {kind:?} {what}"));
            let Some(inbox) = &hub.inboxes[to] else {
                return;
            };
            // A full inbox loses the message, as an overloaded node would.
            let _ = inbox.try_send(NetworkEvent::Gossip(message.clone()));
            // Replayers replay what honest validators say (not each other's copies, which would
            // only multiply without end).
            if hub.faults.byzantine == Some(Byzantine::Replay)
                && hub.faults.is_byzantine(to)
                && !hub.faults.is_byzantine(from)
            {
                let replayer = SimNetwork {
                    index: to,
                    hub: shared.clone(),
                };
                replayer.replay(&mut hub, kind, &message.data);
            }
        });
    }

    /// A replayer's copies of a message it received: the same message in new envelopes, so
    /// that gossip sees new messages, sent to everyone.
    fn replay(&self, hub: &mut Hub, kind: TopicKind, data: &[u8]) {
        let Ok(envelope) = Envelope::decode(data) else {
            return;
        };
        for _ in 0..REPLAYS {
            let copy = Envelope {
                resend: 1 + hub.rng.below(u64::MAX - 1),
                ..envelope.clone()
            }
            .encode();
            for to in 0..hub.faults.validators {
                self.send(hub, kind, to, copy.clone());
            }
        }
        hub.byzantine_acts += 1;
    }

    /// The namespace a vote of this validator verifies under: its current epoch's, or a
    /// neighbour's (a vote may be re-sent just after a hand-over).
    fn namespace_of(&self, hub: &Hub, vote: &Vote) -> Option<[u8; 32]> {
        let head = hub.chains[self.index].head_header().height;
        let epoch = (head + 1) / hub.epoch_length;
        let validators = Validators::equal(hub.keys.iter().map(AccountKey::public_key));
        [epoch, epoch.saturating_sub(1), epoch + 1]
            .into_iter()
            .map(|epoch| epoch_namespace(&hub.domain, epoch))
            .find(|namespace| vote.is_valid(namespace, &validators))
    }

    /// Checks what this validator says: no two different votes in one slot of one view.
    fn watch_votes(&self, hub: &mut Hub, message: &Message) {
        let Message::Vote(vote) = message else {
            return;
        };
        if vote.signer as usize != self.index {
            return;
        }
        let Some(namespace) = self.namespace_of(hub, vote) else {
            panic!(
                "validator {} sent a vote that verifies in no nearby epoch",
                self.index
            );
        };
        let seen = &mut hub.sent_votes[self.index];
        // Nor a finalize and a nullify vote in one view (the fork after a restart).
        for other in 0..3 {
            if let Some(previous) = seen.get(&(namespace, vote.view, other)) {
                assert!(
                    !previous.conflicts_with(&vote.kind),
                    "validator {} voted {previous:?} and {:?} in view {}",
                    self.index,
                    vote.kind,
                    vote.view
                );
            }
        }
        if let Some(previous) = seen.insert((namespace, vote.view, slot(&vote.kind)), vote.kind) {
            assert_eq!(
                previous, vote.kind,
                "validator {} voted {previous:?} and {:?} in view {}",
                self.index, vote.kind, vote.view
            );
        }
    }

    /// The equivocator's second block for `proposal`: the same block a millisecond later (so
    /// it is just as valid), and its votes to notarize and finalize both, sent to everyone.
    fn twin(&self, hub: &mut Hub, proposal: &Proposal) -> Option<Proposal> {
        let mut block = Block::decode(&proposal.payload).ok()?;
        block.header.timestamp_ms += 1;
        let twin = block.hash();
        let key = hub.keys[self.index].clone();
        let epoch = proposal.height / hub.epoch_length;
        let namespace = epoch_namespace(&hub.domain, epoch);
        let signer = self.index as ValidatorIndex;
        let view = proposal.view;
        for kind in [
            VoteKind::Notarize(twin),
            VoteKind::Finalize(twin),
            VoteKind::Finalize(proposal.block),
        ] {
            let vote = Vote::sign(&key, signer, &namespace, view, kind);
            let data = Envelope {
                resend: 0,
                epoch,
                message: Message::Vote(vote),
            }
            .encode();
            for to in 0..hub.faults.validators {
                self.send(hub, TopicKind::Votes, to, data.clone());
            }
        }
        hub.twins += 1;
        hub.byzantine_acts += 1;
        Some(Proposal {
            block: twin,
            signature: Vote::sign(&key, signer, &namespace, view, VoteKind::Notarize(twin))
                .signature,
            payload: block.encode(),
            ..proposal.clone()
        })
    }

    fn broadcast(&self, hub: &mut Hub, kind: TopicKind, data: &[u8]) {
        let (author, content) = (hub.peer_ids[self.index], *blake3::hash(data).as_bytes());
        for to in 0..hub.faults.validators {
            self.send_as(hub, kind, to, data, author, content);
        }
    }

    /// Sends `message` to everyone, in an envelope naming `epoch`.
    fn broadcast_message(&self, hub: &mut Hub, kind: TopicKind, message: Message, epoch: u64) {
        let data = Envelope {
            resend: 0,
            epoch,
            message,
        }
        .encode();
        self.broadcast(hub, kind, &data);
    }

    /// The namespace a proposal at `height` is signed under.
    fn namespace_at(hub: &Hub, height: u64) -> [u8; 32] {
        epoch_namespace(&hub.domain, height / hub.epoch_length)
    }

    /// A double voter's second vote: one that conflicts with `vote`, also signed.
    fn double_vote(&self, hub: &mut Hub, vote: &Vote, epoch: u64) {
        let Some(namespace) = self.namespace_of(hub, vote) else {
            return;
        };
        let other = B256::from(
            hub.rng
                .next()
                .to_le_bytes()
                .repeat(4)
                .as_slice()
                .try_into()
                .unwrap_or([7; 32]),
        );
        let kind = match vote.kind {
            VoteKind::Notarize(_) => VoteKind::Notarize(other),
            VoteKind::Finalize(_) => VoteKind::Nullify,
            VoteKind::Nullify => VoteKind::Finalize(other),
        };
        let key = hub.keys[self.index].clone();
        let second = Vote::sign(&key, vote.signer, &namespace, vote.view, kind);
        self.broadcast_message(hub, TopicKind::Votes, Message::Vote(second), epoch);
        hub.byzantine_acts += 1;
    }

    /// A flooder's blocks for views it leads ahead of `proposal`'s: the first few it leads
    /// and a few thousands of views ahead, each padded and signed.
    fn flood(&self, hub: &mut Hub, proposal: &Proposal) {
        let Ok(block) = Block::decode(&proposal.payload) else {
            return;
        };
        let namespace = Self::namespace_at(hub, proposal.height);
        let validators = Validators::equal(hub.keys.iter().map(AccountKey::public_key));
        let leads = |from: u64| {
            (from..from + 4_000)
                .filter(|view| validators.leader(&namespace, *view) as usize == self.index)
                .take(FLOODED_VIEWS / 2)
                .collect::<Vec<u64>>()
        };
        let mut views = leads(proposal.view + 1);
        views.extend(leads(proposal.view + 2_000));
        let key = hub.keys[self.index].clone();
        let padding = cairn_primitives::TxBody {
            chain_id: block.header.chain_id,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: 1,
            max_priority_fee_per_gas: 0,
            to: None,
            value: U256::ZERO,
            input: vec![0xab; FLOOD_PADDING].into(),
        }
        .sign(&key);
        for view in views {
            let mut flooded = block.clone();
            flooded.header.view = view;
            flooded.transactions = vec![padding.clone()];
            let hash = flooded.hash();
            let signer = self.index as ValidatorIndex;
            let signature =
                Vote::sign(&key, signer, &namespace, view, VoteKind::Notarize(hash)).signature;
            let message = Message::Proposal(Proposal {
                view,
                block: hash,
                signature,
                payload: flooded.encode(),
                ..proposal.clone()
            });
            let epoch = proposal.height / hub.epoch_length;
            self.broadcast_message(hub, TopicKind::Proposals, message, epoch);
            hub.byzantine_acts += 1;
        }
    }

    /// A copy of `message` whose (first) signature is broken.
    fn forge(&self, hub: &mut Hub, kind: TopicKind, message: &Message, epoch: u64) {
        let broken = |signature: &Signature| {
            let mut bytes = signature.to_bytes();
            bytes[0] ^= 0x55;
            Signature::from(bytes)
        };
        let mut forged = message.clone();
        match &mut forged {
            Message::Vote(vote) => vote.signature = broken(&vote.signature),
            Message::Proposal(proposal) => proposal.signature = broken(&proposal.signature),
            Message::Certificate(certificate) => {
                if let Some((_, signature)) = certificate.signatures.first_mut() {
                    *signature = broken(signature);
                }
            }
        }
        self.broadcast_message(hub, kind, forged, epoch);
        hub.byzantine_acts += 1;
    }

    /// Junk claiming the epoch after `epoch`, sent with `message`: forged votes for the views
    /// after it, and a padded block, signed by nobody in particular, for the next epoch's first
    /// height.
    fn next_epoch_junk(&self, hub: &mut Hub, message: &Message, epoch: u64) {
        let view = message.view();
        for ahead in 0..8 {
            let forged = Vote {
                view: view + ahead,
                kind: VoteKind::Nullify,
                signer: (ahead % 4) as ValidatorIndex,
                signature: Signature::from([0x5a; 64]),
            };
            self.broadcast_message(hub, TopicKind::Votes, Message::Vote(forged), epoch + 1);
        }
        let junk = Proposal {
            view: view + 1,
            parent: B256::repeat_byte(0x5a),
            height: (epoch + 1) * hub.epoch_length,
            block: B256::repeat_byte(0x5b),
            signature: Signature::from([0x5c; 64]),
            payload: vec![0x5d; FLOOD_PADDING],
        };
        self.broadcast_message(
            hub,
            TopicKind::Proposals,
            Message::Proposal(junk),
            epoch + 1,
        );
        hub.byzantine_acts += 1;
    }

    /// The block a misexecuting leader sends instead of `proposal`'s: the same block with a
    /// state root it did not compute, signed.
    fn misexecuted(&self, hub: &mut Hub, proposal: &Proposal) -> Option<Proposal> {
        let mut block = Block::decode(&proposal.payload).ok()?;
        block.header.state_root = B256::repeat_byte(0xee);
        let hash = block.hash();
        let key = hub.keys[self.index].clone();
        let namespace = Self::namespace_at(hub, proposal.height);
        let signer = self.index as ValidatorIndex;
        hub.byzantine_acts += 1;
        Some(Proposal {
            block: hash,
            signature: Vote::sign(
                &key,
                signer,
                &namespace,
                proposal.view,
                VoteKind::Notarize(hash),
            )
            .signature,
            payload: block.encode(),
            ..proposal.clone()
        })
    }
}

impl ConsensusNetwork for SimNetwork {
    fn publish(
        &self,
        kind: TopicKind,
        data: Vec<u8>,
    ) -> impl Future<Output = cairn_p2p::Result<()>> + Send {
        let mut hub = lock(&self.hub);
        let (message, epoch) = match Envelope::decode(&data) {
            Ok(envelope) => (Some(envelope.message), envelope.epoch),
            Err(_) => (None, 0),
        };
        let behaviour = hub
            .faults
            .byzantine
            .filter(|_| hub.faults.is_byzantine(self.index));
        if let Some(message) = &message {
            if behaviour.is_none() {
                self.watch_votes(&mut hub, message);
            }
            if let Message::Proposal(proposal) = message
                && proposal.block == proposal.parent
            {
                hub.reproposals += 1;
            }
        }
        let new_block = match &message {
            Some(Message::Proposal(proposal)) if proposal.block != proposal.parent => {
                Some(proposal)
            }
            _ => None,
        };
        match (behaviour, new_block) {
            (Some(Byzantine::Silent), _) => hub.byzantine_acts += 1,
            (Some(Byzantine::WithholdProposals), Some(_)) => hub.byzantine_acts += 1,
            (Some(Byzantine::Equivocate), Some(proposal)) => {
                let twin = self.twin(&mut hub, proposal).map(|twin| {
                    Envelope {
                        resend: 0,
                        epoch,
                        message: Message::Proposal(twin),
                    }
                    .encode()
                });
                for to in 0..hub.faults.validators {
                    let data = match &twin {
                        // Half the validators see the other block.
                        Some(twin) if to % 2 == 1 => twin.clone(),
                        _ => data.clone(),
                    };
                    self.send(&mut hub, kind, to, data);
                }
            }
            (Some(Byzantine::BadExecution), Some(proposal)) => {
                if let Some(bad) = self.misexecuted(&mut hub, proposal) {
                    self.broadcast_message(&mut hub, kind, Message::Proposal(bad), epoch);
                }
            }
            _ => {
                self.broadcast(&mut hub, kind, &data);
                match (behaviour, &message) {
                    (Some(Byzantine::DoubleVote), Some(Message::Vote(vote))) => {
                        self.double_vote(&mut hub, vote, epoch);
                    }
                    (Some(Byzantine::FloodFutureViews), Some(Message::Proposal(proposal)))
                        if new_block.is_some() =>
                    {
                        self.flood(&mut hub, proposal);
                    }
                    (Some(Byzantine::BadSignatures), Some(message)) => {
                        self.forge(&mut hub, kind, message, epoch);
                    }
                    (Some(Byzantine::NextEpochJunk), Some(message)) => {
                        self.next_epoch_junk(&mut hub, message, epoch);
                    }
                    _ => {}
                }
            }
        }
        async { Ok(()) }
    }

    async fn validate(&self, message: &GossipMessage, verdict: Verdict) -> cairn_p2p::Result<()> {
        let mut hub = lock(&self.hub);
        let author = message.author.unwrap_or(message.source);
        if verdict == Verdict::Reject {
            self.charge(&mut hub, author);
        }
        // An accepted message is forwarded to every other validator, as gossipsub forwards it
        // through the mesh (here every validator is in every other's mesh); each copy crosses
        // its own lossy link, and one that arrives where the message was already seen is
        // dropped. Byzantine validators forward nothing.
        if verdict == Verdict::Accept && !hub.faults.is_byzantine(self.index) {
            let content = *blake3::hash(&message.data).as_bytes();
            for to in 0..hub.faults.validators {
                if hub.peer_ids[to] != message.source {
                    self.send_as(&mut hub, message.kind, to, &message.data, author, content);
                }
            }
        }
        Ok(())
    }

    async fn penalize(&self, peer: PeerId, _offence: Offence) -> cairn_p2p::Result<()> {
        let mut hub = lock(&self.hub);
        hub.late_charges += 1;
        self.charge(&mut hub, peer);
        Ok(())
    }

    fn request(
        &self,
        _peer: Option<PeerId>,
        data: Vec<u8>,
    ) -> impl Future<Output = cairn_p2p::Result<(PeerId, Vec<u8>)>> + Send {
        let answer = {
            let mut hub = lock(&self.hub);
            let up: Vec<usize> = (0..hub.faults.validators)
                .filter(|&i| i != self.index && hub.inboxes[i].is_some())
                .collect();
            let max_delay = hub.faults.max_delay_ms;
            let delay = 2 + 2 * hub.rng.below(max_delay);
            match (PeerRequest::decode(&data), up.is_empty()) {
                (Ok(PeerRequest::Sync(request)), false) => {
                    let peer = up[hub.rng.below(up.len() as u64) as usize];
                    hub.record(format!("{} sync {} from {peer}", self.index, request.from));
                    let peer_id = hub.peer_ids[peer];
                    // A third of the answers are busy, as when attackers take a server's
                    // room: the validator must ask on, and still catch up.
                    if hub.rng.below(3) == 0 {
                        hub.busy_sync_answers += 1;
                        let busy = SyncResponse {
                            busy: true,
                            ..SyncResponse::default()
                        };
                        Ok((delay, peer_id, busy.encode()))
                    } else {
                        sync_response(&hub.chains[peer], request)
                            .map(|response| (delay, peer_id, response.encode()))
                            .map_err(|e| P2pError::Setup(e.to_string()))
                    }
                }
                _ => Err(P2pError::NoPeers),
            }
        };
        async move {
            let (delay, peer, response) = answer?;
            tokio::time::sleep(Duration::from_millis(delay)).await;
            Ok((peer, response))
        }
    }

    fn status(&self) -> impl Future<Output = cairn_p2p::Result<NetworkStatus>> + Send {
        let hub = lock(&self.hub);
        let status = NetworkStatus {
            peer_id: hub.peer_ids[self.index],
            listen_addrs: Vec::new(),
            peers: (0..hub.faults.validators)
                .filter(|&i| i != self.index && hub.inboxes[i].is_some())
                .map(|i| hub.peer_ids[i])
                .collect(),
        };
        async move { Ok(status) }
    }
}

struct Validator {
    key: AccountKey,
    pool: TxPool,
    chain: Arc<Chain>,
    task: Option<JoinHandle<()>>,
    stop: Option<watch::Sender<bool>>,
    /// What its driver publishes while it runs.
    status: Option<watch::Receiver<NetworkView>>,
    /// The most its consensus buffered in any run, and the equivocations it saw in all runs.
    peak_buffered_bytes: usize,
    equivocations_seen: u64,
    _dir: tempfile::TempDir,
}

struct Simulation {
    hub: Arc<Mutex<Hub>>,
    validators: Vec<Validator>,
    runtime: SimRuntime,
}

/// Where the validators' databases go: memory, where the machine has it, so that the vote
/// log's fsyncs cost nothing.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

impl Simulation {
    fn new(seed: u64, faults: Faults) -> Self {
        let keys: Vec<AccountKey> = (0..faults.validators)
            .map(|i| AccountKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let mut genesis = Genesis::dev();
        genesis.contracts = None;
        genesis.block_time_ms = BLOCK_TIME_MS;
        genesis.epoch_length = faults.epoch_length.unwrap_or(1 << 40);
        genesis.validators = keys
            .iter()
            .map(|key| GenesisValidator {
                public_key: key.public_key(),
                beneficiary: key.address(),
                stake: U256::from(TOKEN),
                vrf_key: cairn_primitives::beacon::vrf_public_key(key),
            })
            .collect();
        let mut validators = Vec::new();
        for key in &keys {
            let dir = scratch_dir();
            let chain = Arc::new(
                Chain::open_with(
                    dir.path(),
                    genesis.clone(),
                    Box::new(Sequential),
                    cairn_storage::Footprint::Small,
                )
                .unwrap(),
            );
            let pool = TxPool::new(chain.clone(), MempoolConfig::default(), None);
            validators.push(Validator {
                key: key.clone(),
                pool,
                chain,
                task: None,
                stop: None,
                status: None,
                peak_buffered_bytes: 0,
                equivocations_seen: 0,
                _dir: dir,
            });
        }
        let peer_ids = keys
            .iter()
            .map(|key| {
                let mut secret = *key.secret();
                let keypair = cairn_p2p::Keypair::ed25519_from_bytes(&mut secret).unwrap();
                keypair.public().to_peer_id()
            })
            .collect();
        let started = tokio::time::Instant::now();
        let hub = Hub {
            rng: Rng(seed),
            faults,
            epoch_length: genesis.epoch_length,
            domain: genesis.consensus_domain(),
            keys: keys.clone(),
            peer_ids,
            inboxes: vec![None; faults.validators],
            chains: validators.iter().map(|v| v.chain.clone()).collect(),
            trace: blake3::Hasher::new(),
            deliveries: 0,
            started,
            reproposals: 0,
            twins: 0,
            honest_rejections: 0,
            faulty_rejections: 0,
            late_charges: 0,
            busy_sync_answers: 0,
            byzantine_acts: 0,
            heights_at_network_crashes: Vec::new(),
            sent_votes: vec![BTreeMap::new(); faults.validators],
            seen: vec![BTreeSet::new(); faults.validators],
        };
        Self {
            hub: Arc::new(Mutex::new(hub)),
            validators,
            runtime: SimRuntime {
                genesis_ms: genesis.timestamp_ms,
                started,
                panicked: Arc::default(),
            },
        }
    }

    fn start(&mut self, index: usize) {
        let (inbox, events) = mpsc::channel(1024);
        {
            let mut hub = lock(&self.hub);
            hub.record(format!("start {index}"));
            hub.inboxes[index] = Some(inbox);
            // A restarted node remembers no message it saw.
            hub.seen[index].clear();
        }
        let validator = &mut self.validators[index];
        let (stop, stopped) = watch::channel(false);
        let (status, watched) = watch::channel(NetworkView::default());
        validator.status = Some(watched);
        let links = Links {
            network: SimNetwork {
                index,
                hub: self.hub.clone(),
            },
            events,
            status,
        };
        let timing = Timing {
            block_time: Duration::from_millis(BLOCK_TIME_MS),
            view_timeout: Duration::from_millis(VIEW_TIMEOUT_MS),
            retry: Duration::from_millis(RETRY_MS),
        };
        let run = driver::run(
            self.runtime.clone(),
            validator.chain.clone(),
            validator.pool.clone(),
            validator.key.clone(),
            timing,
            links,
            stopped,
        );
        let run = tracing::Instrument::instrument(run, tracing::info_span!("validator", index));
        validator.task = Some(tokio::spawn(async move {
            if let Err(error) = run.await {
                panic!("validator {index}'s driver failed: {error}");
            }
        }));
        validator.stop = Some(stop);
    }

    /// Kills a validator wherever it is: its driver and chain worker are dropped, its inbox
    /// closes, and what it had not written to its database is lost.
    fn crash(&mut self, index: usize) {
        let mut hub = lock(&self.hub);
        hub.record(format!("crash {index}"));
        hub.inboxes[index] = None;
        let validator = &mut self.validators[index];
        if let Some(task) = validator.task.take() {
            assert!(
                !task.is_finished(),
                "validator {index}'s driver stopped by itself"
            );
            task.abort();
        }
        validator.stop = None;
        if let Some(status) = validator.status.take() {
            let seen = status.borrow();
            validator.peak_buffered_bytes =
                validator.peak_buffered_bytes.max(seen.peak_buffered_bytes);
            validator.equivocations_seen += seen.equivocations;
        }
    }

    fn is_up(&self, index: usize) -> bool {
        self.validators[index].task.is_some()
    }

    async fn run(&mut self, until_ms: u64) {
        let faults = lock(&self.hub).faults;
        for index in 0..faults.validators - faults.dead {
            self.start(index);
        }
        let mut next_fault = 1_000;
        let mut restarts: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        let mut now = 0;
        while now < until_ms {
            let next_restart = restarts.keys().next().copied().unwrap_or(u64::MAX);
            let next = next_fault.min(next_restart).min(until_ms);
            tokio::time::sleep(Duration::from_millis(next - now)).await;
            now = next;
            for index in restarts.remove(&now).unwrap_or_default() {
                self.start(index);
            }
            // The last whole-network crash leaves time to show that finality resumed.
            if now == next_fault && faults.whole_network_crashes && now + 2_000 < until_ms {
                // Everyone at once, each wherever it is (mid-vote, mid-commit), and back after
                // a while: the restart that used to fork the chain.
                let mut hub = lock(&self.hub);
                next_fault += 300 + hub.rng.below(1_500);
                let back = now + 50 + hub.rng.below(600);
                drop(hub);
                let up: Vec<usize> = (0..faults.validators).filter(|i| self.is_up(*i)).collect();
                let height = self.finalized_heights().into_iter().max().unwrap_or(0);
                lock(&self.hub).heights_at_network_crashes.push(height);
                for index in &up {
                    self.crash(*index);
                }
                restarts.entry(back).or_default().extend(up);
            } else if now == next_fault {
                let mut hub = lock(&self.hub);
                next_fault += 1_000 + hub.rng.below(2_000);
                let down = (0..faults.crashing).any(|i| self.validators[i].task.is_none());
                if faults.crashing > 0 && !down {
                    let index = hub.rng.below(faults.crashing as u64) as usize;
                    let back = now + 200 + hub.rng.below(1_500);
                    drop(hub);
                    self.crash(index);
                    restarts.entry(back).or_default().push(index);
                }
            }
        }
        for index in 0..faults.validators {
            if self.is_up(index) {
                self.crash(index);
            }
        }
        assert!(
            !self
                .runtime
                .panicked
                .load(std::sync::atomic::Ordering::Relaxed),
            "a chain worker panicked"
        );
        self.check_agreement();
        let honest_rejections = lock(&self.hub).honest_rejections;
        assert_eq!(
            honest_rejections, 0,
            "honest validators' messages were rejected (a real network would ban them)"
        );
        for (index, validator) in self.validators.iter().enumerate() {
            assert!(
                validator.peak_buffered_bytes <= driver::MAX_BUFFERED_BYTES,
                "validator {index} buffered {} bytes for its peers, over the budget of {}",
                validator.peak_buffered_bytes,
                driver::MAX_BUFFERED_BYTES
            );
        }
        let heights = self.finalized_heights();
        lock(&self.hub).record(format!("heights {heights:?}"));
    }

    /// No two validators committed different blocks at one height.
    fn check_agreement(&self) {
        let longest = self.finalized_heights().into_iter().max().unwrap_or(0);
        for height in 0..=longest as u64 {
            let mut seen: Option<(usize, B256)> = None;
            for (index, validator) in self.validators.iter().enumerate() {
                let Some(block) = validator.chain.block(height).unwrap() else {
                    continue;
                };
                match seen {
                    None => seen = Some((index, block.hash())),
                    Some((other, theirs)) => assert_eq!(
                        theirs,
                        block.hash(),
                        "validators {other} and {index} committed different blocks at height {height}"
                    ),
                }
            }
        }
    }

    fn finalized_heights(&self) -> Vec<usize> {
        self.validators
            .iter()
            .map(|v| v.chain.head().unwrap().height as usize)
            .collect()
    }

    fn trace(&self) -> [u8; 32] {
        *lock(&self.hub).trace.finalize().as_bytes()
    }

    fn reproposals(&self) -> usize {
        lock(&self.hub).reproposals
    }

    fn twins(&self) -> usize {
        lock(&self.hub).twins
    }
}

fn simulate(seed: u64, faults: Faults, duration_ms: u64) -> Simulation {
    if std::env::var_os("CAIRN_SIM_TRACE").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut simulation = Simulation::new(seed, faults);
        simulation.run(duration_ms).await;
        simulation
    })
}

const CALM: Faults = Faults {
    drop_percent: 0,
    max_delay_ms: 20,
    crashing: 0,
    dead: 0,
    epoch_length: None,
    byzantine: None,
    validators: 4,
    whole_network_crashes: false,
};

#[test]
fn calm_network_finalizes_a_block_every_few_round_trips() {
    let simulation = simulate(1, CALM, 5_000);
    let heights = simulation.finalized_heights();
    assert!(heights.iter().all(|h| *h >= 50), "heights {heights:?}");
}

#[test]
fn one_dead_validator_of_four_does_not_stop_the_chain() {
    let faults = Faults { dead: 1, ..CALM };
    let simulation = simulate(2, faults, 10_000);
    let heights = simulation.finalized_heights();
    // The dead validator (the last) finalizes nothing; the others keep going through the views
    // it should have led.
    assert_eq!(heights[3], 0);
    assert!(heights[..3].iter().all(|h| *h >= 30), "heights {heights:?}");
}

#[test]
fn lossy_network_with_crashes_stays_safe_and_live_for_many_seeds() {
    let faults = Faults {
        drop_percent: 15,
        max_delay_ms: 120,
        crashing: 1,
        dead: 0,
        epoch_length: None,
        byzantine: None,
        validators: 4,
        whole_network_crashes: false,
    };
    // Restarted validators catch up by sync though a third of the answers they get are busy
    // (see `SimNetwork::request`).
    let mut busy_answers = 0;
    for seed in 0..24 {
        let simulation = simulate(seed, faults, 20_000);
        let heights = simulation.finalized_heights();
        let live = heights.iter().filter(|h| **h >= 10).count();
        assert!(live >= 3, "seed {seed}: heights {heights:?}");
        busy_answers += lock(&simulation.hub).busy_sync_answers;
    }
    assert!(busy_answers > 0, "no sync answer was busy");
}

#[test]
fn hostile_network_never_breaks_agreement() {
    // Beyond the fault bound progress may stall, but agreement must hold: heavy loss, long
    // delays, and two of four validators crashing and restarting.
    let faults = Faults {
        drop_percent: 40,
        max_delay_ms: 600,
        crashing: 2,
        dead: 0,
        epoch_length: None,
        byzantine: None,
        validators: 4,
        whole_network_crashes: false,
    };
    for seed in 100..112 {
        simulate(seed, faults, 15_000);
    }
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let faults = Faults {
        drop_percent: 10,
        max_delay_ms: 80,
        crashing: 1,
        dead: 0,
        epoch_length: None,
        byzantine: None,
        validators: 4,
        whole_network_crashes: false,
    };
    let first = simulate(42, faults, 6_000);
    let again = simulate(42, faults, 6_000);
    let other = simulate(43, faults, 6_000);
    assert_eq!(first.trace(), again.trace());
    assert_eq!(first.finalized_heights(), again.finalized_heights());
    assert_ne!(first.trace(), other.trace());
}

#[test]
fn a_restarted_validator_never_votes_twice_in_a_view() {
    // Every vote a validator sends is checked against the ones it sent before (the network
    // sees them all, across restarts); the run panics at the first conflicting one.
    let faults = Faults {
        drop_percent: 10,
        max_delay_ms: 100,
        crashing: 2,
        dead: 0,
        epoch_length: None,
        byzantine: None,
        validators: 4,
        whole_network_crashes: false,
    };
    let simulation = simulate(7, faults, 15_000);
    let hub = lock(&simulation.hub);
    for (index, votes) in hub.sent_votes.iter().enumerate() {
        assert!(!votes.is_empty(), "validator {index} never voted");
    }
}

#[test]
fn epochs_hand_over_under_loss_and_crashes() {
    // Short epochs: every few blocks the validators start a new machine, and an epoch's last
    // block that was notarized but not finalized must be re-proposed to be finalized.
    let faults = Faults {
        drop_percent: 15,
        max_delay_ms: 150,
        crashing: 1,
        dead: 0,
        epoch_length: Some(4),
        byzantine: None,
        validators: 4,
        whole_network_crashes: false,
    };
    let mut reproposals = 0;
    for seed in 200..216 {
        let simulation = simulate(seed, faults, 20_000);
        let heights = simulation.finalized_heights();
        let live = heights.iter().filter(|h| **h >= 12).count();
        assert!(live >= 3, "seed {seed}: heights {heights:?}");
        reproposals += simulation.reproposals();
    }
    assert!(
        reproposals > 0,
        "no epoch end needed a re-proposal: the case went untested"
    );

    // Beyond the fault bound, with epochs: agreement still holds.
    let hostile = Faults {
        drop_percent: 40,
        max_delay_ms: 600,
        crashing: 2,
        dead: 0,
        epoch_length: Some(3),
        byzantine: None,
        validators: 4,
        whole_network_crashes: false,
    };
    for seed in 300..306 {
        simulate(seed, hostile, 15_000);
    }
}

#[test]
fn an_equivocating_leader_cannot_split_the_honest_validators() {
    // One Byzantine validator of four (f = 1) sends two blocks in every view it leads and
    // votes for both; the three honest ones agree and keep going, also across epochs.
    for (seed, epoch_length) in (400..412).zip([None, Some(5)].into_iter().cycle()) {
        let faults = Faults {
            drop_percent: 5,
            max_delay_ms: 60,
            crashing: 0,
            dead: 0,
            epoch_length,
            byzantine: Some(Byzantine::Equivocate),
            validators: 4,
            whole_network_crashes: false,
        };
        let simulation = simulate(seed, faults, 15_000);
        let heights = simulation.finalized_heights();
        let honest = &heights[..3];
        assert!(
            honest.iter().all(|h| *h >= 10),
            "seed {seed}: heights {heights:?}"
        );
        assert!(simulation.twins() > 0, "the equivocator never led");
    }
}

/// Runs a Byzantine behaviour over many seeds, at 4 validators (one faulty) and at 7 (two
/// faulty), on a network that loses and delays messages, half the runs with short epochs.
/// Every seed checks agreement and the buffered-bytes budget (in `Simulation::run`) and that
/// the honest validators keep finalizing; the behaviour must be played in most seeds.
/// `check` sees each finished run (whose databases go when it returns).
fn byzantine(behaviour: Byzantine, seeds: std::ops::Range<u64>, check: impl Fn(&Simulation)) {
    let seeds = chosen(seeds);
    let mut acted = 0;
    for &seed in &seeds {
        let faults = seeded_faults(seed, Some(behaviour), false);
        let validators = faults.validators;
        let simulation = simulate(seed, faults, BYZANTINE_RUN_MS);
        let heights = simulation.finalized_heights();
        let honest = &heights[..validators - faults.tolerated()];
        assert!(
            honest.iter().all(|h| *h >= BYZANTINE_MIN_HEIGHT),
            "{behaviour:?} seed {seed} ({validators} validators): heights {heights:?}"
        );
        if lock(&simulation.hub).byzantine_acts > 0 {
            acted += 1;
        }
        check(&simulation);
        report_progress(behaviour, seed);
    }
    // Leaders are drawn at random: in a short run a faulty validator may never lead (the
    // long run met such a seed), so the behaviour must show in most runs, not in each.
    assert!(
        acted * 4 >= seeds.len() * 3,
        "{behaviour:?}: the Byzantine validators acted in only {acted} of {} runs",
        seeds.len()
    );
}

/// The faults of a seed of the Byzantine tests: a network that loses 5 % and delays up to
/// 60 ms; even seeds 4 validators, odd seeds 7; seeds with `seed % 4 < 2` in 6-block epochs.
fn seeded_faults(seed: u64, byzantine: Option<Byzantine>, whole_network_crashes: bool) -> Faults {
    Faults {
        drop_percent: 5,
        max_delay_ms: 60,
        crashing: 0,
        dead: 0,
        epoch_length: (seed % 4 < 2).then_some(6),
        byzantine,
        validators: if seed.is_multiple_of(2) { 4 } else { 7 },
        whole_network_crashes,
    }
}

/// On a long run (`CAIRN_SIM_SEEDS` set), a line every 100 seeds, so that a run cut short
/// still tells how far it got.
fn report_progress(what: impl std::fmt::Debug, seed: u64) {
    if std::env::var_os("CAIRN_SIM_SEEDS").is_some() && seed % 100 == 99 {
        eprintln!("{what:?}: seeds up to {seed} passed");
    }
}

/// The seeds to run: `CAIRN_SIM_SEED` runs that one seed alone (to replay a failure with
/// `CAIRN_SIM_TRACE`; a failure message names the seed), else all of them.
fn chosen(seeds: std::ops::Range<u64>) -> Vec<u64> {
    match std::env::var("CAIRN_SIM_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(seed) => vec![seed],
        None => seeds.collect(),
    }
}

/// Virtual time of one Byzantine run, and the height every honest validator must reach in it.
/// Two blocks: with two silent validators of seven, every quorum needs all five honest votes
/// through a lossy network, and the long run met a seed (7000603) whose first five views all
/// timed out, finalizing its second block at 1.7 s of the 2.5.
const BYZANTINE_RUN_MS: u64 = 2_500;
const BYZANTINE_MIN_HEIGHT: usize = 2;

/// Seeds of the Byzantine test numbered `test` (1 to 9), half at 4 validators and half at 7:
/// `test × 1,000,000 + first ..` that plus a count. The count is 128 (1,152 over the nine
/// tests) unless `CAIRN_SIM_SEEDS` asks for more, as the long run does; `first` is 0 unless
/// `CAIRN_SIM_FIRST_SEED` moves it, so that a long run can go on where an earlier one stopped.
fn byzantine_seeds(test: u64) -> std::ops::Range<u64> {
    let number = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    let first = test * 1_000_000 + number("CAIRN_SIM_FIRST_SEED").unwrap_or(0);
    first..first + number("CAIRN_SIM_SEEDS").unwrap_or(128)
}

#[test]
fn byzantine_equivocating_leader() {
    byzantine(Byzantine::Equivocate, byzantine_seeds(1), |_| {});
}

#[test]
fn byzantine_double_voter_is_caught() {
    byzantine(Byzantine::DoubleVote, byzantine_seeds(2), |simulation| {
        let faults = lock(&simulation.hub).faults;
        let honest = &simulation.validators[..faults.validators - faults.tolerated()];
        assert!(
            honest.iter().all(|v| v.equivocations_seen > 0),
            "an honest validator never saw the double votes"
        );
    });
}

#[test]
fn byzantine_far_future_proposal_flood() {
    byzantine(Byzantine::FloodFutureViews, byzantine_seeds(3), |_| {});
}

#[test]
fn byzantine_replay_of_valid_votes_and_certificates() {
    byzantine(Byzantine::Replay, byzantine_seeds(4), |_| {});
}

/// Junk that claims the next epoch cannot be checked until then: it is held, within the
/// buffer's budget and at most half of it from one peer, so the real first messages of the
/// next epoch still find room, and epochs keep changing; once the epoch comes, the junk is
/// found forged and charged to its sender (every run checks that no honest validator is).
#[test]
fn attack_junk_claiming_the_next_epoch_does_not_stop_epoch_changes() {
    for seed in 500..508 {
        let faults = Faults {
            drop_percent: 5,
            max_delay_ms: 60,
            crashing: 0,
            dead: 0,
            epoch_length: Some(4),
            byzantine: Some(Byzantine::NextEpochJunk),
            validators: 4,
            whole_network_crashes: false,
        };
        let simulation = simulate(seed, faults, 5_000);
        let heights = simulation.finalized_heights();
        assert!(
            heights[..3].iter().all(|h| *h >= 9),
            "seed {seed}: heights {heights:?}"
        );
        let hub = lock(&simulation.hub);
        assert!(hub.byzantine_acts > 0);
        assert!(
            hub.late_charges > 0,
            "seed {seed}: the held junk was never charged to its sender"
        );
    }
}

#[test]
fn byzantine_invalid_signature_spam() {
    // Forged signatures are rejected, which costs their author its score (and, repeated, a
    // ban), where they once landed in a path that ignored them.
    byzantine(Byzantine::BadSignatures, byzantine_seeds(5), |simulation| {
        let hub = lock(&simulation.hub);
        if hub.byzantine_acts > 0 {
            assert!(hub.faulty_rejections > 0, "no forgery was rejected");
        }
    });
}

#[test]
fn byzantine_leader_withholds_its_proposals() {
    byzantine(Byzantine::WithholdProposals, byzantine_seeds(6), |_| {});
}

#[test]
fn byzantine_f_silent_validators() {
    byzantine(Byzantine::Silent, byzantine_seeds(7), |_| {});
}

#[test]
fn byzantine_validator_votes_for_blocks_it_did_not_execute() {
    byzantine(Byzantine::BadExecution, byzantine_seeds(8), |_| {});
}

#[test]
fn byzantine_whole_network_crashed_and_restarted_repeatedly() {
    for seed in chosen(byzantine_seeds(9)) {
        let faults = seeded_faults(seed, None, true);
        let simulation = simulate(seed, faults, 6_000);
        let heights = simulation.finalized_heights();
        let crashes = lock(&simulation.hub).heights_at_network_crashes.clone();
        assert!(
            !crashes.is_empty(),
            "seed {seed}: the network never crashed"
        );
        let last = crashes.iter().max().copied().unwrap_or(0);
        assert!(
            heights.iter().all(|h| *h > last),
            "seed {seed}: finality did not resume after the last restart: heights {heights:?}, at the crashes {crashes:?}"
        );
        report_progress("whole network restarts", seed);
    }
}
