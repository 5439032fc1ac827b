//! The consensus driver: runs the [`Machine`] against the real world.
//!
//! One async task owns the machine. It feeds it gossip (after checking it, so that only valid
//! messages are forwarded), timer ticks and the results of chain work, and carries out the
//! machine's actions: votes go to the write-ahead log in RocksDB before they are gossiped, and
//! blocks are built, re-executed and committed by one blocking worker that owns all chain
//! writes, so a commit never races a verification. A node that falls behind fetches finalized
//! blocks from peers by request/response and checks their finalization certificate before
//! executing them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use cairn_p2p::{GossipMessage, NetworkEvent, Offence, PeerId, TopicKind, Verdict};

use tracing::Instrument;

use crate::runtime::{ConsensusNetwork, Runtime};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::gossip::{self, Checked};
use crate::machine::{Action, Anchor, Config, Event, Machine};
use crate::messages::{
    Certificate, Envelope, Message, Proposal, SyncResponse, Vote, VoteKind, epoch_namespace,
};
use cairn_chain::{Chain, ExecutedBlock, InvalidBlock};
use cairn_mempool::TxPool;
use cairn_primitives::wire::{PeerRequest, SyncRequest};

use crate::error::{ConsensusError, SyncFailure};
use cairn_primitives::{AccountKey, Address, B256, Block, Canonical, Transaction};

/// What a networked node knows about consensus and its peers, for `cairn_chainStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkView {
    /// The consensus view this node is in.
    pub view: u64,
    /// Connected peers.
    pub peers: usize,
    /// This node's libp2p peer id.
    pub peer_id: Option<String>,
    /// The most bytes consensus has held for its peers at once since the node started (see
    /// `driver::MAX_BUFFERED_BYTES`).
    pub peak_buffered_bytes: usize,
    /// Conflicting votes (equivocations) this node has seen since it started.
    pub equivocations: u64,
    /// Views this node's validator voted to nullify (its view timed out) since it started.
    pub timeouts: u64,
}

/// Blocks asked for in one sync request.
const SYNC_BATCH: u32 = 16;
/// Bytes of proposed blocks kept while they await finalization. A proposal is held only for a
/// view at most `MAX_PROPOSAL_VIEWS_AHEAD` ahead, one block per view (a second only once
/// notarized), and when the budget is reached the blocks of past views that were never
/// notarized go first: a leader flooding blocks cannot crowd out the current view's.
pub const MAX_CACHED_BYTES: usize = 96 * 1024 * 1024;
/// Peers asked again at once after a busy answer to a sync request, each housekeeping tick.
const BUSY_RETRIES: usize = 4;
/// Jobs queued for the chain worker.
const JOB_QUEUE: usize = 64;
/// Consensus messages kept for the next epoch (see `Driver::unverifiable`), and their bytes.
const MAX_EARLY_MESSAGES: usize = 512;
/// The bytes of consensus messages kept for the next epoch: two of the largest proposals.
pub const MAX_EARLY_BYTES: usize = 2 * crate::messages::MAX_PROPOSAL_SIZE;
/// The most a node buffers for consensus from its peers, whoever sends what: the block cache,
/// the next epoch's messages and the proposals waiting for their ancestry (held without their
/// payload). The simulation checks every node stays under it.
pub const MAX_BUFFERED_BYTES: usize =
    MAX_CACHED_BYTES + MAX_EARLY_BYTES + MAX_UNVERIFIED * std::mem::size_of::<Proposal>();
/// Proposals kept until their block or its ancestry arrives, to be verified then.
const MAX_UNVERIFIED: usize = 64;

/// Slots of the consensus records beside a view's votes (whose slots are their tags): the
/// notarized proposal and its notarization, stored with a finalize vote.
const PROPOSAL_RECORD: u8 = 3;
const NOTARIZATION_RECORD: u8 = 4;
/// The slot of the certificate that ended the view before a vote's (stored with every vote).
const ENTRY_RECORD: u8 = 5;

/// Timing of the protocol.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Least time between a block and its child.
    pub block_time: Duration,
    /// How long a view may go without a notarization before it is nullified.
    pub view_timeout: Duration,
    /// How often a stuck validator re-sends its votes and certificates.
    pub retry: Duration,
}

/// What [`Driver::check`] does with a message whose signatures fail under this epoch's set.
#[derive(Debug, Clone, Copy)]
enum Unverified {
    /// It may be the next epoch's (a proposal past this epoch's heights): hold it, charged to
    /// the peer that sent it, for the epoch it claims.
    Hold { source: PeerId, epoch: u64 },
    /// It claims to be this epoch's: the sender's fault, unless it is the previous epoch's (a
    /// certificate re-sent just after a hand-over).
    Reject,
    /// Drop it quietly (a held message still unverifiable in the epoch it was held for).
    Ignore,
}

enum Job {
    Build {
        view: u64,
        ancestors: Vec<Arc<Block>>,
        parent_votes: Option<Certificate>,
    },
    Verify {
        view: u64,
        block: Arc<Block>,
        ancestors: Vec<Arc<Block>>,
    },
    Commit {
        blocks: Vec<Arc<Block>>,
        certificate: Certificate,
    },
}

enum JobResult {
    Built {
        view: u64,
        block: Block,
    },
    Verified {
        view: u64,
        block: B256,
        valid: bool,
    },
    /// Committed up to this block.
    Committed(Anchor),
    Failed(String),
}

/// What the driver talks to besides the chain and the mempool.
#[derive(Debug)]
pub struct Links<N> {
    /// The network, to publish votes and proposals, report gossip verdicts and ask for blocks.
    pub network: N,
    /// What the network hears that concerns consensus: gossip on the proposal and vote topics,
    /// and peers connecting (the node's router sends nothing else here).
    pub events: mpsc::Receiver<NetworkEvent>,
    /// Where the driver publishes its view and peer count.
    pub status: watch::Sender<NetworkView>,
}

/// Aborts a task when dropped: a driver that is dropped mid-way (its task aborted) takes its
/// chain worker with it, as a process that dies takes all of its threads.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// Runs consensus until `stopped` turns true.
pub async fn run<R: Runtime, N: ConsensusNetwork>(
    runtime: R,
    chain: Arc<Chain>,
    pool: TxPool,
    key: AccountKey,
    timing: Timing,
    links: Links<N>,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), ConsensusError> {
    let Links {
        network,
        mut events,
        status,
    } = links;
    let anchor = head_anchor(&chain);
    let started = Instant::now();
    let EpochMachine {
        epoch,
        config,
        machine,
        restored,
    } = epoch_machine(&chain, &key, &timing, anchor, 0)?;
    // Known from the start, also after a restart: peers re-send the last epoch's final
    // certificate for a while.
    let previous_config = epoch
        .checked_sub(1)
        .and_then(|previous| epoch_config(&chain, &timing, previous).ok());

    let (jobs, job_queue) = mpsc::channel(JOB_QUEUE);
    // Unbounded, yet bounded by the jobs queue (one result per job): a worker never waits to
    // hand a result over, so it cannot deadlock with a driver waiting to queue a job.
    let (results, job_results) = mpsc::unbounded_channel();
    let mut worker = {
        let worker = ChainWorker {
            runtime: runtime.clone(),
            chain: chain.clone(),
            pool: pool.clone(),
            key: key.clone(),
            executed: BTreeMap::new(),
        };
        let task = chain_worker(runtime.clone(), worker, job_queue, results);
        AbortOnDrop(Some(runtime.spawn(task.in_current_span())))
    };
    let (sync_results, mut sync_answers) = mpsc::channel(4);
    let mut driver = Driver {
        runtime,
        chain,
        status,
        key: key.clone(),
        epoch,
        config,
        previous_config,
        machine,
        network,
        jobs,
        started,
        blocks: BTreeMap::new(),
        cached_bytes: 0,
        early_bytes: 0,
        early_by_peer: BTreeMap::new(),
        peak_buffered_bytes: 0,
        waiting_finality: None,
        unverified: BTreeMap::new(),
        next_epoch_messages: VecDeque::new(),
        sync_wanted: true,
        syncing: false,
        busy_answers: 0,
        sync_results,
        last_commit: Instant::now(),
        timing,
    };
    let actions = driver.machine.start();
    driver.carry_out(actions, 0).await;
    driver.restore(restored).await;

    let mut housekeeping = tokio::time::interval(Duration::from_millis(500));
    let mut job_results = job_results;
    loop {
        let deadline = started + Duration::from_millis(driver.machine.next_deadline_ms());
        // Biased, in a fixed order, so that a run is a function of its inputs (the simulation
        // replays a seed exactly): the node's own work and timers first, then what peers send,
        // which cannot starve the timers however fast it arrives.
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            Some(result) = job_results.recv() => driver.on_job_result(result).await,
            Some(answer) = sync_answers.recv() => driver.on_sync_answer(answer).await,
            _ = tokio::time::sleep_until(deadline) => {
                let now = driver.now_ms();
                let actions = driver.machine.handle(now, Event::Tick);
                driver.carry_out(actions, now).await;
            }
            _ = housekeeping.tick() => driver.housekeeping().await,
            event = events.recv() => match event {
                Some(event) => driver.on_network_event(event).await,
                None => break,
            },
        }
    }
    // Closing the jobs queue lets the worker run every job still queued (a finalized block
    // queued for commit is committed, never dropped) and stop; its results are not needed.
    drop(driver);
    drop(job_results);
    if let Some(task) = worker.0.take() {
        let _ = task.await;
    }
    Ok(())
}

struct Driver<R, N> {
    runtime: R,
    chain: Arc<Chain>,
    status: watch::Sender<NetworkView>,
    key: AccountKey,
    /// The epoch whose validator set the machine runs: the epoch of the block after the head.
    epoch: u64,
    config: Config,
    /// The previous epoch's configuration (none in the first epoch this node ran): a validator
    /// just past a hand-over still re-sends the certificate that ended the last epoch.
    previous_config: Option<Config>,
    machine: Machine,
    network: N,
    jobs: mpsc::Sender<Job>,
    started: Instant,
    /// Proposed blocks not yet committed, by hash.
    blocks: BTreeMap<B256, Arc<Block>>,
    /// The encoded size of `blocks`.
    cached_bytes: usize,
    /// The encoded size of `next_epoch_messages`; and by the peer that sent them, their
    /// bytes and their number.
    early_bytes: usize,
    early_by_peer: BTreeMap<PeerId, (usize, usize)>,
    /// The most `buffered_bytes` has been.
    peak_buffered_bytes: usize,
    /// A finalization whose blocks this node does not have yet.
    waiting_finality: Option<Certificate>,
    /// Proposals the machine asked to verify whose block or ancestry this node lacks, by view:
    /// verified once the missing blocks arrive (by gossip or sync), never answered invalid for
    /// want of them.
    unverified: BTreeMap<u64, Proposal>,
    /// Consensus messages of the next epoch, oldest first, with the peer that sent each.
    next_epoch_messages: VecDeque<Held>,
    sync_wanted: bool,
    syncing: bool,
    /// Busy answers to sync requests since the last housekeeping tick.
    busy_answers: usize,
    sync_results: mpsc::Sender<Result<(PeerId, SyncResponse), SyncFailure>>,
    last_commit: Instant,
    timing: Timing,
}

impl<R: Runtime, N: ConsensusNetwork> Driver<R, N> {
    /// The committed head, as the chain worker last left it.
    fn head(&self) -> cairn_primitives::Header {
        self.chain.head_header()
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The uncommitted blocks from the committed head up to `tip` (oldest first), or `None`
    /// if one of them is missing.
    fn ancestry(&self, tip: B256) -> Option<Vec<Arc<Block>>> {
        let head = self.head();
        let head_hash = head.hash();
        let mut chain = Vec::new();
        let mut cursor = tip;
        while cursor != head_hash {
            let block = self.blocks.get(&cursor)?;
            if block.header.height <= head.height {
                return None;
            }
            chain.push(block.clone());
            cursor = block.header.parent;
        }
        chain.reverse();
        Some(chain)
    }

    async fn submit_job(&self, job: Job) {
        if self.jobs.send(job).await.is_err() {
            tracing::error!("the chain worker has stopped");
        }
    }

    async fn carry_out(&mut self, actions: Vec<Action>, resend: u64) {
        for action in actions {
            tracing::trace!(view = self.machine.view(), ?action, "consensus action");
            match action {
                Action::Build {
                    view,
                    parent,
                    parent_votes,
                } => {
                    let Some(ancestors) = self.ancestry(parent) else {
                        tracing::debug!(
                            view,
                            %parent,
                            parent_held = self.blocks.contains_key(&parent),
                            "cannot build: missing the parent's ancestry"
                        );
                        self.sync_wanted = true;
                        continue;
                    };
                    // Keep the block interval: wait until the parent is `block_time` old.
                    let parent_time = ancestors
                        .last()
                        .map_or(self.head().timestamp_ms, |b| b.header.timestamp_ms);
                    let wait = (parent_time + self.timing.block_time.as_millis() as u64)
                        .saturating_sub(self.runtime.now_ms())
                        .min(self.timing.block_time.as_millis() as u64);
                    let jobs = self.jobs.clone();
                    self.runtime.spawn(Instrument::in_current_span(async move {
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                        let _ = jobs
                            .send(Job::Build {
                                view,
                                ancestors,
                                parent_votes,
                            })
                            .await;
                    }));
                }
                Action::Verify(proposal) => {
                    if !self.try_verify(&proposal).await {
                        // Without the block and its parent this node cannot check it: it
                        // does not vote for it yet, catches up, and verifies it then.
                        tracing::debug!(view = proposal.view, "a proposal waits for its ancestry");
                        self.sync_wanted = true;
                        if self.unverified.len() >= MAX_UNVERIFIED {
                            self.unverified.pop_first();
                        }
                        // Its block is in the cache: the payload is not kept twice.
                        let proposal = Proposal {
                            payload: Vec::new(),
                            ..proposal
                        };
                        self.unverified.insert(proposal.view, proposal);
                    }
                }
                Action::Persist(vote) => {
                    if vote.kind == VoteKind::Nullify {
                        self.status.send_modify(|status| status.timeouts += 1);
                    }
                    let encoded_vote = vote.encode();
                    let mut records = vec![(vote.kind.tag(), encoded_vote.as_slice())];
                    // With a finalize vote, what makes the block recoverable: after a
                    // whole-network restart nobody may hold it in memory any more, and the view
                    // can never be nullified, so without it the chain would stop for good.
                    let notarized = match vote.kind {
                        VoteKind::Finalize(_) => self.machine.notarization(vote.view),
                        _ => None,
                    };
                    // With a notarize vote, the block itself: every validator that voted for a
                    // notarized block (more than two thirds) can show it after a restart, as
                    // the parent or ancestor of later blocks.
                    let voted_for = match vote.kind {
                        VoteKind::Notarize(block) => self.machine.proposal(vote.view, block),
                        _ => None,
                    };
                    let proposal = voted_for
                        .or(notarized.and_then(|(proposal, _)| proposal))
                        .map(|p| {
                            Envelope {
                                resend: 0,
                                epoch: self.epoch,
                                message: Message::Proposal(p.clone()),
                            }
                            .encode()
                        });
                    let notarization = notarized.map(|(_, certificate)| certificate.encode());
                    // And with every vote, the certificate that let this validator into the
                    // view: after a whole-network restart it may be the only copy left, and
                    // without it no later proposal can be voted for.
                    let entry = vote
                        .view
                        .checked_sub(1)
                        .and_then(|previous| self.machine.ending_certificate(previous))
                        .map(Certificate::encode);
                    if let Some(entry) = &entry {
                        records.push((ENTRY_RECORD, entry));
                    }
                    if let Some(proposal) = &proposal {
                        records.push((PROPOSAL_RECORD, proposal));
                    }
                    if let Some(notarization) = &notarization {
                        records.push((NOTARIZATION_RECORD, notarization));
                    }
                    if let Err(error) = self.chain.store().record_consensus(vote.view, &records) {
                        // A vote that is not on disk must not leave: stop here.
                        tracing::error!(%error, "cannot record a vote; not sending it");
                        return;
                    }
                }
                Action::Broadcast(message) => {
                    let topic = match message {
                        Message::Proposal(_) => TopicKind::Proposals,
                        Message::Vote(_) | Message::Certificate(_) => TopicKind::Votes,
                    };
                    let data = Envelope {
                        resend,
                        epoch: self.epoch,
                        message,
                    }
                    .encode();
                    if let Err(error) = self.network.publish(topic, data).await {
                        tracing::debug!(%error, "consensus message not gossiped");
                    }
                }
                Action::Finalize(certificate) => self.finalize(certificate).await,
                Action::Equivocation(first, second) => self.on_equivocation(&first, &second),
            }
        }
    }

    /// Hands the machine what this validator stored before a restart: notarized proposals
    /// (their blocks back in the cache) and notarizations, each checked as if a peer sent it.
    async fn restore(&mut self, restored: Vec<Message>) {
        for message in restored {
            if let Message::Proposal(proposal) = &message
                && let Ok(block) = Block::decode(&proposal.payload)
                && block.hash() == proposal.block
            {
                self.cache_block(block, proposal.payload.len());
            }
            let now = self.now_ms();
            let actions = self.machine.handle(now, Event::Message(message));
            self.carry_out(actions, 0).await;
        }
    }

    /// Logs a validator's conflicting votes as evidence to report.
    fn on_equivocation(&self, first: &Vote, second: &Vote) {
        let Some(key) = self.config.validators.key(first.signer) else {
            return;
        };
        self.status.send_modify(|status| status.equivocations += 1);
        let encode = |vote: &Vote| {
            hex::encode(cairn_primitives::consensus::Equivocation::encode_vote(
                vote.view,
                &vote.kind,
                &vote.signature,
            ))
        };
        // Everything `Staking.reportEquivocation` needs, as the command that sends it.
        tracing::warn!(
            epoch = self.epoch,
            view = first.view,
            first = ?first.kind,
            second = ?second.kind,
            "a validator signed two conflicting votes; to have it slashed: cairn stake \
             report-equivocation --epoch {} --key {} --vote-a {} --vote-b {} --from <your key>",
            self.epoch,
            hex::encode(key),
            encode(first),
            encode(second),
        );
    }

    /// Sends a proposal to the chain worker for verification if this node has its block and
    /// every uncommitted ancestor; `false` if it lacks one of them.
    async fn try_verify(&mut self, proposal: &Proposal) -> bool {
        let block = self.blocks.get(&proposal.block).cloned();
        let (Some(block), Some(ancestors)) = (block, self.ancestry(proposal.parent)) else {
            return false;
        };
        self.submit_job(Job::Verify {
            view: proposal.view,
            block,
            ancestors,
        })
        .await;
        true
    }

    /// Verifies the proposals that waited for blocks this node now has, and forgets those of
    /// views the chain has moved past.
    async fn retry_unverified(&mut self) {
        // The machine votes only in its current view: a proposal of an earlier one is no use.
        let current = self.machine.view();
        self.unverified.retain(|view, _| *view >= current);
        for (view, proposal) in std::mem::take(&mut self.unverified) {
            if !self.try_verify(&proposal).await {
                self.unverified.insert(view, proposal);
            }
        }
    }

    async fn finalize(&mut self, certificate: Certificate) {
        let Some(block) = certificate.kind.block() else {
            return;
        };
        match self.ancestry(block) {
            Some(blocks) if !blocks.is_empty() => {
                self.waiting_finality = None;
                self.submit_job(Job::Commit {
                    blocks,
                    certificate,
                })
                .await;
            }
            Some(_) => {}
            None => {
                self.waiting_finality = Some(certificate);
                self.sync_wanted = true;
            }
        }
    }

    async fn on_job_result(&mut self, result: JobResult) {
        let now = self.now_ms();
        let actions = match result {
            JobResult::Built { view, block } => {
                let hash = block.hash();
                let Some(vote) = self.machine.sign_proposal(view, hash) else {
                    return;
                };
                let encoded = block.encode();
                let proposal = Proposal {
                    view,
                    parent: block.header.parent,
                    height: block.header.height,
                    block: hash,
                    signature: vote.signature,
                    payload: encoded,
                };
                self.cache_block(block, proposal.payload.len());
                self.machine.handle(now, Event::Built(proposal))
            }
            JobResult::Verified { view, block, valid } => {
                tracing::trace!(view, %block, valid, "verified");
                self.machine
                    .handle(now, Event::Verified { view, block, valid })
            }
            JobResult::Committed(anchor) => {
                let height = anchor.height;
                self.last_commit = Instant::now();
                // Blocks at or below the committed height, or of views before the finalized
                // one, can never be needed again.
                self.blocks
                    .retain(|_, b| b.header.height > height && b.header.view > anchor.view);
                self.cached_bytes = self.blocks.values().map(|b| b.encoded_len()).sum();
                if let Err(error) = self.chain.store().prune_votes_before(anchor.view) {
                    tracing::warn!(%error, "cannot prune old votes");
                }
                if let Some(waiting) = self.waiting_finality.take() {
                    Box::pin(self.finalize(waiting)).await;
                }
                Box::pin(self.retry_unverified()).await;
                if epoch_of(&self.chain, height + 1) != self.epoch {
                    match epoch_machine(&self.chain, &self.key, &self.timing, anchor, now) {
                        Ok(EpochMachine {
                            epoch,
                            config,
                            machine,
                            restored,
                        }) => {
                            tracing::info!(
                                epoch,
                                validators = config.validators.len(),
                                "new epoch"
                            );
                            self.epoch = epoch;
                            self.previous_config =
                                Some(std::mem::replace(&mut self.config, config));
                            self.machine = machine;
                            let mut actions = self.machine.start();
                            self.early_bytes = 0;
                            self.early_by_peer.clear();
                            for held in std::mem::take(&mut self.next_epoch_messages) {
                                if self.check(&held.message, Unverified::Ignore) == Verdict::Accept
                                {
                                    let now = self.now_ms();
                                    actions.extend(
                                        self.machine.handle(now, Event::Checked(held.message)),
                                    );
                                } else if held.epoch == epoch
                                    && !gossip::is_signed_under(&self.config, &held.message)
                                {
                                    // Forged all along: its sender pays, as for this epoch's
                                    // forgeries. (One merely stale by now is not its fault.)
                                    self.penalize(held.source).await;
                                }
                            }
                            self.carry_out(actions, 0).await;
                            Box::pin(self.restore(restored)).await;
                            return;
                        }
                        Err(error) => {
                            tracing::error!(%error, "cannot start the next epoch's consensus");
                            return;
                        }
                    }
                } else {
                    self.machine.handle(now, Event::Synced(anchor))
                }
            }
            JobResult::Failed(error) => {
                tracing::warn!(%error, "chain work failed");
                self.sync_wanted = true;
                return;
            }
        };
        self.carry_out(actions, 0).await;
    }

    async fn on_network_event(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::Gossip(message) => {
                let verdict = self.on_gossip(&message).await;
                tracing::trace!(?verdict, kind = ?message.kind, "consensus message checked");
                if let Err(error) = self.network.validate(&message, verdict).await {
                    tracing::debug!(%error, "cannot report a gossip verdict");
                }
            }
            NetworkEvent::PeerConnected(_) => self.sync_wanted = true,
            // The router answers requests itself (`serve_sync`) and keeps them from here.
            NetworkEvent::Request { .. } | NetworkEvent::PeerDisconnected(_) => {}
        }
    }

    async fn on_gossip(&mut self, message: &GossipMessage) -> Verdict {
        match message.kind {
            // The router hands transactions to the mempool and adverts to the providers.
            TopicKind::Transactions | TopicKind::ProviderAdverts => Verdict::Ignore,
            TopicKind::Proposals | TopicKind::Votes => {
                let Ok(envelope) = Envelope::decode(&message.data) else {
                    return Verdict::Reject;
                };
                // Held next-epoch messages are charged to their author, not to the relay.
                let verdict = self.judge(&envelope, message.author.unwrap_or(message.source));
                if verdict == Verdict::Accept {
                    let is_proposal = matches!(envelope.message, Message::Proposal(_));
                    let now = self.now_ms();
                    let actions = self.machine.handle(now, Event::Checked(envelope.message));
                    self.carry_out(actions, 0).await;
                    if is_proposal && !self.unverified.is_empty() {
                        // The new block may be the missing parent of one waiting.
                        self.retry_unverified().await;
                    }
                }
                verdict
            }
        }
    }

    /// The verdict on a consensus message from `source`, by the epoch its envelope names: a
    /// vote or certificate of this epoch is checked, and one whose signatures fail is the
    /// sender's fault; one of the next epoch is held (within budgets) until this node gets
    /// there; one of another epoch is dropped. A proposal's epoch is its height's.
    fn judge(&mut self, envelope: &Envelope, source: PeerId) -> Verdict {
        let message = &envelope.message;
        match message {
            Message::Proposal(proposal) => {
                let epoch = epoch_of(&self.chain, proposal.height);
                if epoch > self.epoch + 1 {
                    // Past the next epoch: no set to check it under before this node gets
                    // there, and holding it would only crowd the buffer until the next epoch
                    // change empties it (and charge nobody).
                    return Verdict::Ignore;
                }
                self.check(message, Unverified::Hold { source, epoch })
            }
            _ if envelope.epoch == self.epoch => self.check(message, Unverified::Reject),
            // Checked here first all the same: a validator just past a hand-over re-sends the
            // certificate that ended this epoch in an envelope of the next.
            _ if envelope.epoch == self.epoch + 1 => {
                let epoch = envelope.epoch;
                self.check(message, Unverified::Hold { source, epoch })
            }
            _ => Verdict::Ignore,
        }
    }

    /// Checks a consensus message before it is forwarded (see [`gossip::check`]) and keeps a
    /// proposal's block for verification.
    fn check(&mut self, message: &Message, unverified: Unverified) -> Verdict {
        if self.machine.knows(message) {
            // A copy of what this node holds (a re-sent vote, certificate or proposal): not
            // checked again and not forwarded, so re-sending amplifies nothing; a peer that
            // sends copies past its budget pays for them.
            return Verdict::Duplicate;
        }
        let context = gossip::Context {
            config: &self.config,
            anchor_view: self.machine.anchor().view,
            committed_height: self.head().height,
            known_blocks: &self.blocks,
            now_ms: self.runtime.now_ms(),
        };
        match gossip::check(&context, message) {
            Checked::Accept(None) => Verdict::Accept,
            Checked::Accept(Some(block)) => {
                let Message::Proposal(proposal) = message else {
                    return Verdict::Ignore;
                };
                if !self.may_cache(proposal) {
                    return Verdict::Ignore;
                }
                let header = &block.header;
                if header.height > self.head().height + 1
                    && !self.blocks.contains_key(&header.parent)
                {
                    self.sync_wanted = true;
                }
                self.cache_block(block, proposal.payload.len());
                Verdict::Accept
            }
            Checked::Reject => Verdict::Reject,
            Checked::Ignore => Verdict::Ignore,
            Checked::OtherEpoch => match unverified {
                Unverified::Hold { source, epoch } => {
                    self.unverifiable(message.clone(), source, epoch)
                }
                // Valid but stale: counted as a copy, so that replaying them costs the sender.
                Unverified::Reject if self.is_previous_epochs(message) => Verdict::Duplicate,
                Unverified::Reject => Verdict::Reject,
                Unverified::Ignore => Verdict::Ignore,
            },
        }
    }

    /// Whether `message`, a vote or certificate, verifies under the previous epoch's set.
    fn is_previous_epochs(&self, message: &Message) -> bool {
        !matches!(message, Message::Proposal(_))
            && self
                .previous_config
                .as_ref()
                .is_some_and(|previous| gossip::is_signed_under(previous, message))
    }

    /// Whether a proposal's block may join the cache: a view this node takes proposals for,
    /// the view's first block (or one notarized here), and room in the byte budget once the
    /// blocks of past views that were never notarized are dropped.
    fn may_cache(&mut self, proposal: &Proposal) -> bool {
        let view = proposal.view;
        if !self.machine.accepts_proposal_view(view) || self.blocks.contains_key(&proposal.block) {
            return false;
        }
        let view_taken = self.blocks.values().any(|b| b.header.view == view);
        if view_taken && !self.machine.is_notarized(view, proposal.block) {
            return false;
        }
        if self.cached_bytes + proposal.payload.len() > MAX_CACHED_BYTES {
            let current = self.machine.view();
            let machine = &self.machine;
            self.blocks.retain(|hash, b| {
                b.header.view >= current || machine.is_notarized(b.header.view, *hash)
            });
            self.cached_bytes = self.blocks.values().map(|b| b.encoded_len()).sum();
        }
        self.cached_bytes + proposal.payload.len() <= MAX_CACHED_BYTES
    }

    fn cache_block(&mut self, block: Block, encoded_len: usize) {
        if self.blocks.insert(block.hash(), Arc::new(block)).is_none() {
            self.cached_bytes += encoded_len;
        }
        self.note_buffered();
    }

    /// Records the peak of what consensus buffers for its peers.
    fn note_buffered(&mut self) {
        let unverified = self.unverified.len() * std::mem::size_of::<Proposal>();
        let buffered = self.cached_bytes + self.early_bytes + unverified;
        if buffered > self.peak_buffered_bytes {
            self.peak_buffered_bytes = buffered;
            self.status
                .send_modify(|status| status.peak_buffered_bytes = buffered);
        }
    }

    /// Holds a message of the next epoch, which this node cannot check yet (another validator
    /// set, another namespace), to check it again when it enters that epoch: the first
    /// proposal and votes of an epoch often arrive before the node has committed the block that
    /// starts it. Not forwarded, and not blamed yet: if it fails once the node is in `epoch`,
    /// the epoch it claims, its sender pays then (see [`Driver::penalize`]). The buffer is bounded in
    /// messages and bytes, oldest out first, and one peer holds at most half of its messages
    /// and half of its bytes: a peer sending junk as the next epoch's crowds out only its own.
    fn unverifiable(&mut self, message: Message, source: PeerId, epoch: u64) -> Verdict {
        let size = message_size(&message);
        let (held_bytes, held) = self.early_by_peer.get(&source).copied().unwrap_or((0, 0));
        if held_bytes + size > MAX_EARLY_BYTES / 2 || held >= MAX_EARLY_MESSAGES / 2 {
            return Verdict::Ignore;
        }
        while self.next_epoch_messages.len() >= MAX_EARLY_MESSAGES
            || self.early_bytes + size > MAX_EARLY_BYTES
        {
            let Some(oldest) = self.next_epoch_messages.pop_front() else {
                break;
            };
            let freed = message_size(&oldest.message);
            self.early_bytes -= freed;
            if let Some((bytes, count)) = self.early_by_peer.get_mut(&oldest.source) {
                *bytes = bytes.saturating_sub(freed);
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.early_by_peer.remove(&oldest.source);
                }
            }
        }
        self.early_bytes += size;
        let held = self.early_by_peer.entry(source).or_default();
        held.0 += size;
        held.1 += 1;
        self.next_epoch_messages.push_back(Held {
            message,
            source,
            epoch,
        });
        self.note_buffered();
        Verdict::Ignore
    }

    async fn housekeeping(&mut self) {
        if self.last_commit.elapsed() > self.timing.view_timeout * 2 {
            self.sync_wanted = true;
        }
        if self.sync_wanted && !self.syncing {
            self.busy_answers = 0;
            self.request_sync();
        }
        if let Ok(status) = self.network.status().await {
            // Read before the write: a watch's read guard held across `send_replace` would
            // deadlock.
            let (equivocations, timeouts) = {
                let view = self.status.borrow();
                (view.equivocations, view.timeouts)
            };
            self.status.send_replace(NetworkView {
                view: self.machine.view(),
                peers: status.peers.len(),
                peer_id: Some(status.peer_id.to_string()),
                peak_buffered_bytes: self.peak_buffered_bytes,
                equivocations,
                timeouts,
            });
        }
    }

    /// Charges `peer` for a message whose signatures turned out forged after it was held, as
    /// the network charges a rejected one it still carries.
    async fn penalize(&self, peer: PeerId) {
        if let Err(error) = self.network.penalize(peer, Offence::Invalid).await {
            tracing::debug!(%error, "cannot report a peer's forged message");
        }
    }

    /// Asks a peer (the network's next, round-robin) for the finalized blocks after the head.
    fn request_sync(&mut self) {
        self.syncing = true;
        self.sync_wanted = false;
        let request = SyncRequest {
            from: self.head().height + 1,
            max_blocks: SYNC_BATCH,
        };
        let network = self.network.clone();
        let answers = self.sync_results.clone();
        self.runtime.spawn(Instrument::in_current_span(async move {
            let bytes = PeerRequest::Sync(request).encode();
            let answer = match network.request(None, bytes).await {
                Ok((peer, bytes)) => SyncResponse::decode(&bytes)
                    .map(|response| (peer, response))
                    .map_err(|source| SyncFailure::Malformed { peer, source }),
                Err(error) => Err(SyncFailure::Network(error)),
            };
            let _ = answers.send(answer).await;
        }));
    }

    async fn on_sync_answer(&mut self, answer: Result<(PeerId, SyncResponse), SyncFailure>) {
        self.syncing = false;
        let (peer, response) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                tracing::debug!(%error, "sync request failed");
                return;
            }
        };
        if response.busy {
            // Its serving room is taken (by attackers, perhaps): ask the next peer now rather
            // than at the next tick, a few peers a tick.
            if self.busy_answers < BUSY_RETRIES {
                self.busy_answers += 1;
                self.request_sync();
            } else {
                self.sync_wanted = true;
            }
            return;
        }
        let (Some(last), Some(certificate)) = (response.blocks.last(), response.finality) else {
            return;
        };
        // The certificate must finalize the last block, and the blocks must chain from our
        // head to it; execution then checks every block against its header.
        let links = response
            .blocks
            .iter()
            .try_fold(self.head().hash(), |parent, block| {
                (block.header.parent == parent).then(|| block.hash())
            });
        // The certificate's view may be later than the block's: an epoch's last block can be
        // finalized through a re-proposal.
        let genuine = certificate.kind == VoteKind::Finalize(last.hash())
            && certificate.view >= last.header.view
            && certificate.is_valid(&self.config.namespace, &self.config.validators)
            && links.is_some();
        if !genuine {
            tracing::warn!(%peer, "peer sent blocks that do not check out");
            return;
        }
        tracing::info!(
            %peer,
            from = response.blocks[0].header.height,
            to = last.header.height,
            "syncing finalized blocks"
        );
        let blocks = response.blocks.into_iter().map(Arc::new).collect();
        self.sync_wanted = true;
        self.submit_job(Job::Commit {
            blocks,
            certificate,
        })
        .await;
    }
}

/// A message held for the epoch it claims, and the peer charged for it.
struct Held {
    message: Message,
    source: PeerId,
    epoch: u64,
}

/// What a consensus message holds in memory, near enough: its proposal's payload and a fixed
/// part.
fn message_size(message: &Message) -> usize {
    let payload = match message {
        Message::Proposal(proposal) => proposal.payload.len(),
        Message::Certificate(certificate) => certificate.signatures.len() * 68,
        Message::Vote(_) => 0,
    };
    std::mem::size_of::<Message>() + payload
}

/// The one worker that executes and commits blocks, in the order jobs arrive, each job on the
/// runtime's blocking executor. It keeps what it executed, so that a block is executed once:
/// verified (or built), then committed from its recorded changes.
async fn chain_worker<R: Runtime>(
    runtime: R,
    mut worker: ChainWorker<R>,
    mut jobs: mpsc::Receiver<Job>,
    results: mpsc::UnboundedSender<JobResult>,
) {
    while let Some(job) = jobs.recv().await {
        let done = runtime
            .run_blocking(move || {
                let result = worker.run(job);
                (worker, result)
            })
            .await;
        let Some((back, result)) = done else {
            tracing::error!("the chain worker panicked; consensus stops here");
            return;
        };
        worker = back;
        // Once the driver has stopped nobody reads the result; the worker still runs the
        // jobs left in the queue, so that no queued commit is lost.
        let _ = results.send(result);
    }
}

struct ChainWorker<R> {
    runtime: R,
    chain: Arc<Chain>,
    pool: TxPool,
    key: AccountKey,
    /// Blocks executed but not committed, by hash.
    executed: BTreeMap<B256, Arc<ExecutedBlock>>,
}

impl<R: Runtime> ChainWorker<R> {
    /// The executed forms of `chain`'s blocks above the committed head (the others were
    /// committed meanwhile), executing those not executed yet.
    fn executed(&mut self, chain: &[Arc<Block>]) -> Result<Vec<Arc<ExecutedBlock>>, InvalidBlock> {
        let head = self.chain.head_header().height;
        let mut executed: Vec<Arc<ExecutedBlock>> = Vec::new();
        for block in chain.iter().filter(|b| b.header.height > head) {
            let hash = block.hash();
            let done = match self.executed.get(&hash) {
                Some(done) => done.clone(),
                None => {
                    let parents: Vec<&ExecutedBlock> = executed.iter().map(Arc::as_ref).collect();
                    // Transactions this node's mempool took were checked on the way in.
                    let admitted = self
                        .pool
                        .admitted(block.transactions.iter().map(Transaction::hash));
                    let done = Arc::new(self.chain.verify_block_with(&parents, block, &admitted)?);
                    self.executed.insert(hash, done.clone());
                    done
                }
            };
            executed.push(done);
        }
        Ok(executed)
    }

    fn run(&mut self, job: Job) -> JobResult {
        match job {
            Job::Build {
                view,
                ancestors,
                parent_votes,
            } => {
                let built = self.executed(&ancestors).and_then(|parents| {
                    let parents: Vec<&ExecutedBlock> = parents.iter().map(Arc::as_ref).collect();
                    // The pool still holds what the uncommitted parents include: leave it out
                    // (by sender and nonce, which is cheaper than hashing every candidate).
                    let included: std::collections::BTreeSet<(Address, u64)> = parents
                        .iter()
                        .flat_map(|p| p.block.transactions.iter())
                        .map(|tx| (tx.sender(), tx.body.nonce))
                        .collect();
                    let candidates: Vec<Transaction> = self
                        .pool
                        .select_candidates()
                        .into_iter()
                        .filter(|tx| !included.contains(&(tx.sender(), tx.body.nonce)))
                        .collect();
                    self.chain.build_block(
                        &self.key,
                        self.runtime.now_ms(),
                        view,
                        &parents,
                        parent_votes,
                        &candidates,
                    )
                });
                match built {
                    Ok((produced, executed)) => {
                        // What cannot run is not offered again (as on the dev chain); what
                        // did not fit waits for the next block.
                        let excluded = cairn_mempool::cannot_run(&produced.excluded);
                        for (hash, reason) in &produced.excluded {
                            tracing::debug!(%hash, %reason, "transaction left out of a block");
                        }
                        if let Err(error) = self.pool.prune(&[], &excluded) {
                            tracing::warn!(%error, "cannot prune the mempool");
                        }
                        self.executed
                            .insert(produced.block.hash(), Arc::new(executed));
                        JobResult::Built {
                            view,
                            block: produced.block,
                        }
                    }
                    Err(error) => JobResult::Failed(format!("building view {view}: {error}")),
                }
            }
            Job::Verify {
                view,
                block,
                mut ancestors,
            } => {
                ancestors.push(block.clone());
                let valid = match self.executed(&ancestors) {
                    Ok(_) => true,
                    Err(error) => {
                        tracing::warn!(view, block = %block.hash(), %error, "invalid proposal");
                        false
                    }
                };
                JobResult::Verified {
                    view,
                    block: block.hash(),
                    valid,
                }
            }
            Job::Commit {
                blocks,
                certificate,
            } => self.commit(&blocks, &certificate),
        }
    }

    fn commit(&mut self, blocks: &[Arc<Block>], certificate: &Certificate) -> JobResult {
        let chain = &self.chain;
        let head = chain.head_header().height;
        let blocks: Vec<&Arc<Block>> = blocks.iter().filter(|b| b.header.height > head).collect();
        let Some(last) = blocks.last() else {
            // Committed meanwhile (by sync): report the head as it is.
            let anchor = head_anchor(chain);
            return JobResult::Committed(anchor);
        };
        let anchor = Anchor {
            view: last.header.view,
            block: last.hash(),
            height: last.header.height,
        };
        let encoded = certificate.encode();
        for (index, block) in blocks.iter().enumerate() {
            let finality = (index + 1 == blocks.len()).then_some(encoded.as_slice());
            let committed = match self.executed.get(&block.hash()) {
                Some(executed) => chain.commit_executed(executed, finality),
                None => chain.import_final(block, finality).map(|_| ()),
            };
            if let Err(error) = committed {
                return JobResult::Failed(format!(
                    "committing finalized block {}: {error}",
                    block.header.height
                ));
            }
            tracing::info!(
                height = block.header.height,
                view = block.header.view,
                hash = %block.hash(),
                txs = block.transactions.len(),
                "finalized block"
            );
            if let Err(error) = self.pool.prune(&block.transactions, &[]) {
                tracing::warn!(%error, "cannot prune the mempool");
            }
        }
        self.executed
            .retain(|_, executed| executed.block.header.height > anchor.height);
        JobResult::Committed(anchor)
    }
}

/// The consensus configuration of `epoch`: its namespace, its validators (as the chain
/// recorded them) and its last height.
fn epoch_config(chain: &Chain, timing: &Timing, epoch: u64) -> Result<Config, ConsensusError> {
    let epoch_length = chain.genesis().epoch_length;
    Ok(Config {
        namespace: epoch_namespace(&chain.genesis().consensus_domain(), epoch),
        validators: chain.consensus_validators(epoch * epoch_length)?,
        view_timeout_ms: timing.view_timeout.as_millis() as u64,
        retry_ms: timing.retry.as_millis() as u64,
        last_height: (epoch + 1) * epoch_length - 1,
    })
}

fn epoch_of(chain: &Chain, height: u64) -> u64 {
    height / chain.genesis().epoch_length
}

/// The committed head as a consensus anchor. Its view is the one the block was proposed in,
/// even when an epoch's last block was finalized through a re-proposal in a later view: every
/// node then starts the next epoch's machine from the same view (each epoch signs under its
/// own namespace, so its views never mix with the previous epoch's).
fn head_anchor(chain: &Chain) -> Anchor {
    let head = chain.head_header();
    Anchor {
        view: head.view,
        block: head.hash(),
        height: head.height,
    }
}

/// The consensus of one epoch, as a validator starts it.
struct EpochMachine {
    epoch: u64,
    config: Config,
    machine: Machine,
    /// The notarized proposals and notarizations this validator stored before a restart, for
    /// the machine once it has started.
    restored: Vec<Message>,
}

/// The consensus of the epoch after `anchor`: its number, its configuration (validator set
/// from the chain, namespace, last height) and a machine that knows this validator's votes.
fn epoch_machine(
    chain: &Chain,
    key: &AccountKey,
    timing: &Timing,
    anchor: Anchor,
    now_ms: u64,
) -> Result<EpochMachine, ConsensusError> {
    let epoch = epoch_of(chain, anchor.height + 1);
    let config = epoch_config(chain, timing, epoch)?;
    // Votes cast under another epoch's set do not verify under this one's and are left out;
    // so are stored proposals and notarizations, which the machine checks when it is handed
    // them (see `Driver::restore`).
    let mut own_votes = Vec::new();
    let mut restored = Vec::new();
    for (_, slot, bytes) in chain.store().consensus_records_from(anchor.view + 1)? {
        match slot {
            PROPOSAL_RECORD => restored.push(Envelope::decode(&bytes)?.message),
            NOTARIZATION_RECORD | ENTRY_RECORD => {
                restored.push(Message::Certificate(Certificate::decode(&bytes)?));
            }
            _ => {
                let vote = Vote::decode(&bytes)?;
                if vote.is_valid(&config.namespace, &config.validators) {
                    own_votes.push(vote);
                }
            }
        }
    }
    // The certificate stored with the anchor block, if it was signed in this epoch: a restarted
    // validator re-sends it to those that missed it, as it would have before the restart.
    let anchor_certificate = match chain.store().next_finality(anchor.height)? {
        // Possibly signed in the previous epoch: checked by whoever it is sent to, and by the
        // chain when a block carries it.
        Some((height, bytes)) if height == anchor.height => Certificate::decode(&bytes).ok(),
        _ => None,
    };
    let machine = Machine::new(config.clone(), Some(key.clone()), anchor, own_votes, now_ms)
        .with_anchor_certificate(anchor_certificate);
    Ok(EpochMachine {
        epoch,
        config,
        machine,
        restored,
    })
}
