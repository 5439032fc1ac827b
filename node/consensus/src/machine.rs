//! Simplex consensus (Chan & Pass, eprint 2023/463) as a pure state machine.
//!
//! [`Machine::handle`] takes an [`Event`] (a message, a timer tick, the node's answer to an
//! earlier request) and the current time, and returns [`Action`]s for the node to carry out, in
//! order. The machine does no I/O, reads no clock and keeps only ordered maps, so the same events
//! always give the same actions: that is what the seeded simulation tests rely on.
//!
//! ## The protocol
//! Views are numbered from the last finalized block's view up; view `v`'s leader is drawn by
//! voting power from a hash of the epoch's namespace and `v` ([`Validators::leader`]). A quorum
//! is more than two thirds of the power (`2f+1` of `3f+1` equal validators). In each view:
//! 1. the leader builds a block on the newest notarized block after which every view was
//!    nullified (or on the last finalized block) and proposes it;
//! 2. a validator that has not yet voted in the view checks the proposal (the node re-executes
//!    it) and votes *notarize*;
//! 3. `2f+1` notarize votes form a notarization: everyone moves to the next view, and a validator
//!    that did not time out in the view votes *finalize*;
//! 4. a validator whose view timer runs out before a notarization votes *nullify*; `2f+1`
//!    nullify votes form a nullification and everyone moves on;
//! 5. `2f+1` finalize votes finalize the block and all its ancestors.
//!
//! A validator set decides the blocks of one epoch, up to [`Config::last_height`]; the node
//! then starts a new machine with the next epoch's set. If the epoch's last block is notarized
//! but not finalized, a later leader cannot extend it: it *re-proposes* it (a proposal whose
//! block is its parent, with no payload), so that it can be finalized in a later view.
//!
//! Why it is safe: `f+1` honest validators behind a finalization never nullify its view, so no
//! nullification of that view can form, and every later proposal must descend from the
//! finalized block. Every vote the machine casts comes out as [`Action::Persist`] before the
//! [`Action::Broadcast`] that sends it, and a restarted machine is rebuilt from those votes, so
//! a restart never makes a validator vote twice in one view.

use std::collections::BTreeMap;

use crate::messages::{Certificate, Message, Proposal, ValidatorIndex, Validators, Vote, VoteKind};
use cairn_primitives::{AccountKey, B256};

/// How far ahead of its current view the machine keeps votes (certificates are accepted from
/// any view: they prove themselves).
pub const MAX_VIEWS_AHEAD: u64 = 64;

/// How far ahead of its current view the machine (and the node's block cache) takes
/// proposals. A validator further behind catches up by certificates and sync, not by holding
/// blocks for views it cannot vote in yet.
pub const MAX_PROPOSAL_VIEWS_AHEAD: u64 = 8;

/// The fixed parameters of a validator set.
#[derive(Debug, Clone)]
pub struct Config {
    /// Binds signatures to one chain and epoch (see [`crate::messages::epoch_namespace`]).
    pub namespace: [u8; 32],
    /// The validators' consensus keys and voting power, in index order.
    pub validators: Validators,
    /// How long a view may go without a notarization before this validator nullifies it.
    pub view_timeout_ms: u64,
    /// How often a validator stuck in a view re-sends its nullify vote and latest certificates.
    pub retry_ms: u64,
    /// The height of the last block this validator set decides: the end of its epoch
    /// (`u64::MAX` for a set that never changes).
    pub last_height: u64,
}

impl Config {
    /// The leader of a view: drawn by voting power (see [`Validators::leader`]).
    pub fn leader(&self, view: u64) -> ValidatorIndex {
        self.validators.leader(&self.namespace, view)
    }
}

/// The last finalized block: where the machine starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// The view its finalization was voted in.
    pub view: u64,
    /// Its hash.
    pub block: B256,
    /// Its height.
    pub height: u64,
}

/// What happens to the machine.
#[derive(Debug, Clone)]
pub enum Event {
    /// Time passed: fire timers that are due.
    Tick,
    /// A message from another validator.
    Message(Message),
    /// A message from another validator whose signatures the node already verified under this
    /// machine's configuration (as `gossip::check` does before forwarding): not verified again.
    Checked(Message),
    /// The node built the block asked for by [`Action::Build`].
    Built(Proposal),
    /// The node checked a proposal asked for by [`Action::Verify`].
    Verified {
        /// The proposal's view.
        view: u64,
        /// The block.
        block: B256,
        /// Whether it is valid.
        valid: bool,
    },
    /// The node committed a finalized block (by consensus or by syncing it from peers).
    Synced(Anchor),
}

/// What the node must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Build a block for `view` on the parent and answer with [`Event::Built`], its
    /// signature the leader's notarize vote (see [`Machine::sign_proposal`]).
    Build {
        /// The view.
        view: u64,
        /// The parent's hash.
        parent: B256,
        /// The certificate that notarized or finalized the parent, if this machine has it: the
        /// block carries it.
        parent_votes: Option<Certificate>,
    },
    /// Re-execute a proposal and answer with [`Event::Verified`].
    Verify(Proposal),
    /// Store this validator's own vote durably before doing anything that follows.
    Persist(Vote),
    /// Send to all validators.
    Broadcast(Message),
    /// The block and every ancestor not yet finalized are final: commit them.
    Finalize(Certificate),
    /// A validator signed two conflicting votes in one view (see
    /// [`VoteKind::conflicts_with`]): proof to slash it. Reported once per signer and view.
    Equivocation(Vote, Vote),
}

/// Whether a message's signatures still need checking.
#[derive(Debug, Clone, Copy)]
enum Signatures {
    Verify,
    Checked,
}

impl Signatures {
    fn valid(self, verify: impl FnOnce() -> bool) -> bool {
        match self {
            Self::Verify => verify(),
            Self::Checked => true,
        }
    }
}

#[derive(Debug, Default)]
struct Round {
    proposal: Option<Proposal>,
    verify_requested: bool,
    verified: Option<bool>,
    notarizes: BTreeMap<ValidatorIndex, Vote>,
    nullifies: BTreeMap<ValidatorIndex, Vote>,
    finalizes: BTreeMap<ValidatorIndex, Vote>,
    notarization: Option<Certificate>,
    nullification: Option<Certificate>,
    finalization: Option<Certificate>,
    voted_notarize: bool,
    voted_nullify: bool,
    voted_finalize: bool,
    /// Validators already reported for conflicting votes in this view.
    equivocators: std::collections::BTreeSet<ValidatorIndex>,
}

impl Round {
    fn votes(&self, kind: &VoteKind) -> &BTreeMap<ValidatorIndex, Vote> {
        match kind {
            VoteKind::Notarize(_) => &self.notarizes,
            VoteKind::Nullify => &self.nullifies,
            VoteKind::Finalize(_) => &self.finalizes,
        }
    }

    fn votes_mut(&mut self, kind: &VoteKind) -> &mut BTreeMap<ValidatorIndex, Vote> {
        match kind {
            VoteKind::Notarize(_) => &mut self.notarizes,
            VoteKind::Nullify => &mut self.nullifies,
            VoteKind::Finalize(_) => &mut self.finalizes,
        }
    }

    fn certificate(&self, kind: &VoteKind) -> &Option<Certificate> {
        match kind {
            VoteKind::Notarize(_) => &self.notarization,
            VoteKind::Nullify => &self.nullification,
            VoteKind::Finalize(_) => &self.finalization,
        }
    }

    fn certificate_mut(&mut self, kind: &VoteKind) -> &mut Option<Certificate> {
        match kind {
            VoteKind::Notarize(_) => &mut self.notarization,
            VoteKind::Nullify => &mut self.nullification,
            VoteKind::Finalize(_) => &mut self.finalization,
        }
    }

    fn notarized(&self) -> Option<B256> {
        self.notarization.as_ref().and_then(|c| c.kind.block())
    }
}

/// Nullifications of skipped views re-sent at one retry, oldest first: a bound on what a stuck
/// validator sends every retry period.
const MAX_REBROADCAST_NULLIFICATIONS: usize = 64;
/// Notarized, unfinalized blocks re-sent at one retry (the newest and its ancestors).
const MAX_REBROADCAST_ANCESTORS: usize = 8;

/// One validator's (or observer's) view of the protocol.
#[derive(Debug)]
pub struct Machine {
    config: Config,
    me: Option<(ValidatorIndex, AccountKey)>,
    now_ms: u64,
    view: u64,
    view_deadline_ms: u64,
    retry_at_ms: Option<u64>,
    anchor: Anchor,
    anchor_certificate: Option<Certificate>,
    rounds: BTreeMap<u64, Round>,
    building: Option<u64>,
}

impl Machine {
    /// A machine starting after `anchor`. `key` is this node's consensus key (an observer if it
    /// is not a validator's); `own_votes` are the votes it persisted before a restart, so that
    /// it never casts a different one for the same view. Call [`Machine::start`] next.
    pub fn new(
        config: Config,
        key: Option<AccountKey>,
        anchor: Anchor,
        own_votes: Vec<Vote>,
        now_ms: u64,
    ) -> Self {
        let me = key.and_then(|key| {
            let index = config.validators.index_of(&key.public_key())?;
            Some((index, key))
        });
        let mut machine = Self {
            config,
            me,
            now_ms,
            view: anchor.view + 1,
            view_deadline_ms: 0,
            retry_at_ms: None,
            anchor,
            anchor_certificate: None,
            rounds: BTreeMap::new(),
            building: None,
        };
        for vote in own_votes.into_iter().filter(|v| v.view > anchor.view) {
            machine.view = machine.view.max(vote.view);
            let round = machine.rounds.entry(vote.view).or_default();
            match vote.kind {
                VoteKind::Notarize(_) => round.voted_notarize = true,
                VoteKind::Nullify => round.voted_nullify = true,
                VoteKind::Finalize(_) => round.voted_finalize = true,
            }
            round.votes_mut(&vote.kind).insert(vote.signer, vote);
        }
        // A validator that voted finalize in its last view saw that view notarized: it resumes
        // in the next one and never times that view out (a nullify vote there could help
        // nullify a view in which a block was finalized).
        if machine
            .rounds
            .get(&machine.view)
            .is_some_and(|round| round.voted_finalize)
        {
            machine.view += 1;
        }
        machine
    }

    /// Gives a restarted machine the certificate that finalized its anchor (stored with the
    /// block), so that it can re-send it to validators that missed it.
    pub fn with_anchor_certificate(mut self, certificate: Option<Certificate>) -> Self {
        // Its view may be later than the block's: an epoch's last block can be finalized
        // through a re-proposal.
        self.anchor_certificate = certificate.filter(|c| {
            c.view >= self.anchor.view && c.kind == VoteKind::Finalize(self.anchor.block)
        });
        self
    }

    /// Enters the first view: call once, after [`Machine::new`].
    pub fn start(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.enter_view(self.view, &mut out);
        out
    }

    /// The current view.
    pub fn view(&self) -> u64 {
        self.view
    }

    /// The last finalized block.
    pub fn anchor(&self) -> Anchor {
        self.anchor
    }

    /// When the machine next needs a [`Event::Tick`].
    pub fn next_deadline_ms(&self) -> u64 {
        match self.retry_at_ms {
            Some(retry) => retry,
            None => self.view_deadline_ms,
        }
    }

    /// The signature a proposal for `block` in `view` must carry: this validator's notarize
    /// vote. `None` if this node is not a validator.
    pub fn sign_proposal(&self, view: u64, block: B256) -> Option<Vote> {
        self.sign(view, VoteKind::Notarize(block))
    }

    /// This validator's signed vote of `kind` in `view`, without casting it. `None` if this
    /// node is not a validator.
    pub fn sign(&self, view: u64, kind: VoteKind) -> Option<Vote> {
        let (index, key) = self.me.as_ref()?;
        Some(Vote::sign(key, *index, &self.config.namespace, view, kind))
    }

    /// Handles one event at time `now_ms` (which never goes backwards).
    pub fn handle(&mut self, now_ms: u64, event: Event) -> Vec<Action> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut out = Vec::new();
        match event {
            Event::Tick => self.tick(&mut out),
            Event::Message(message) => self.on_message(message, Signatures::Verify, &mut out),
            Event::Checked(message) => self.on_message(message, Signatures::Checked, &mut out),
            Event::Built(proposal) => self.on_built(proposal, &mut out),
            Event::Verified { view, block, valid } => {
                if let Some(round) = self.rounds.get_mut(&view)
                    && round.proposal.as_ref().is_some_and(|p| p.block == block)
                {
                    round.verified = Some(valid);
                    self.advance(view, &mut out);
                }
            }
            Event::Synced(anchor) => {
                if anchor.view > self.anchor.view {
                    self.set_anchor(anchor, None);
                    if anchor.view >= self.view {
                        self.enter_view(anchor.view + 1, &mut out);
                    }
                } else if anchor.view == self.anchor.view && anchor.block == self.anchor.block {
                    // The height of a block finalized here, now that the node has it.
                    self.anchor.height = anchor.height;
                    self.try_propose(&mut out);
                }
            }
        }
        out
    }

    fn on_message(&mut self, message: Message, signatures: Signatures, out: &mut Vec<Action>) {
        match message {
            Message::Proposal(proposal) => self.on_proposal(proposal, signatures, out),
            Message::Vote(vote) => self.on_vote(vote, signatures, out),
            Message::Certificate(certificate) => self.on_certificate(certificate, signatures, out),
        }
    }

    fn is_leader(&self, view: u64) -> bool {
        self.me
            .as_ref()
            .is_some_and(|(index, _)| *index == self.config.leader(view))
    }

    fn enter_view(&mut self, view: u64, out: &mut Vec<Action>) {
        self.view = view;
        self.view_deadline_ms = self.now_ms + self.config.view_timeout_ms;
        self.retry_at_ms = None;
        let round = self.rounds.entry(view).or_default();
        if round.voted_nullify {
            // Restarted after nullifying this view: keep re-sending the vote.
            self.retry_at_ms = Some(self.now_ms);
        }
        self.try_propose(out);
        self.advance(view, out);
    }

    /// The block a proposal in `view` must extend: the newest notarized block after which every
    /// view was nullified, or the anchor. `None` while a view in between is still undecided.
    fn parent_for(&self, view: u64) -> Option<(u64, B256)> {
        let mut candidate = view.checked_sub(1)?;
        loop {
            if candidate <= self.anchor.view {
                return Some((self.anchor.view, self.anchor.block));
            }
            let round = self.rounds.get(&candidate)?;
            if let Some(block) = round.notarized() {
                return Some((candidate, block));
            }
            round.nullification.as_ref()?;
            candidate -= 1;
        }
    }

    fn try_propose(&mut self, out: &mut Vec<Action>) {
        let view = self.view;
        let voted = self
            .rounds
            .get(&view)
            .is_some_and(|r| r.voted_notarize || r.voted_nullify);
        if !self.is_leader(view) || voted || self.building == Some(view) {
            return;
        }
        let Some((parent_view, parent)) = self.parent_for(view) else {
            return;
        };
        let parent_height = if parent_view == self.anchor.view {
            Some(self.anchor.height)
        } else {
            self.rounds
                .get(&parent_view)
                .and_then(|r| r.proposal.as_ref())
                .map(|p| p.height)
        };
        match parent_height {
            Some(height) if height < self.config.last_height => {
                self.building = Some(view);
                let parent_votes = if parent_view == self.anchor.view {
                    self.anchor_certificate.clone()
                } else {
                    self.rounds.get(&parent_view).and_then(|round| {
                        Self::all_notarize_votes(round, parent).or(round.notarization.clone())
                    })
                };
                out.push(Action::Build {
                    view,
                    parent,
                    parent_votes,
                });
            }
            // The epoch's last block, notarized but not final: propose it again.
            Some(height)
                if height == self.config.last_height && parent_view != self.anchor.view =>
            {
                let Some(vote) = self.sign_proposal(view, parent) else {
                    return;
                };
                let proposal = Proposal {
                    view,
                    parent,
                    height,
                    block: parent,
                    signature: vote.signature,
                    payload: Vec::new(),
                };
                self.building = Some(view);
                self.on_built(proposal, out);
            }
            // Past the epoch's end, or the parent's height is not known here yet.
            _ => {}
        }
    }

    /// Every notarize vote this machine holds for `block` in a round, as one certificate when
    /// they are more than its notarization's: a block carries all its parent's voters it knows
    /// of, not only the first quorum, so that a validator whose votes arrive late is not taken
    /// for a silent one.
    fn all_notarize_votes(round: &Round, block: B256) -> Option<Certificate> {
        let notarization = round.notarization.as_ref()?;
        let signatures: Vec<_> = round
            .notarizes
            .values()
            .filter(|vote| vote.kind == VoteKind::Notarize(block))
            .map(|vote| (vote.signer, vote.signature))
            .collect();
        (signatures.len() > notarization.signatures.len()).then_some(Certificate {
            view: notarization.view,
            kind: notarization.kind,
            signatures,
        })
    }

    fn on_built(&mut self, proposal: Proposal, out: &mut Vec<Action>) {
        let view = proposal.view;
        if view != self.view || self.building != Some(view) {
            return;
        }
        let Some(vote) = self.sign_proposal(view, proposal.block) else {
            return;
        };
        if vote.signature != proposal.signature {
            return;
        }
        let round = self.rounds.entry(view).or_default();
        if round.voted_notarize || round.voted_nullify {
            return;
        }
        round.voted_notarize = true;
        round.verified = Some(true);
        round.proposal = Some(proposal.clone());
        round.notarizes.insert(vote.signer, vote.clone());
        out.push(Action::Persist(vote));
        out.push(Action::Broadcast(Message::Proposal(proposal)));
        self.advance(view, out);
    }

    fn accepts_view(&self, view: u64) -> bool {
        view > self.anchor.view && view <= self.view + MAX_VIEWS_AHEAD
    }

    /// Whether a proposal for `view` may be held: one of the next few views at most, so that a
    /// leader cannot make validators hold blocks for views far ahead.
    pub fn accepts_proposal_view(&self, view: u64) -> bool {
        view > self.anchor.view && view <= self.view + MAX_PROPOSAL_VIEWS_AHEAD
    }

    /// The proposal this machine holds for `view` with `block`: what a validator stores with its
    /// notarize vote (it checked the block).
    pub fn proposal(&self, view: u64, block: B256) -> Option<&Proposal> {
        self.rounds
            .get(&view)?
            .proposal
            .as_ref()
            .filter(|p| p.block == block)
    }

    /// The notarization of `view` and its proposal (if this machine has it): what a validator
    /// stores with its finalize vote.
    pub fn notarization(&self, view: u64) -> Option<(Option<&Proposal>, &Certificate)> {
        let round = self.rounds.get(&view)?;
        let certificate = round.notarization.as_ref()?;
        let proposal = round
            .proposal
            .as_ref()
            .filter(|p| Some(p.block) == certificate.kind.block());
        Some((proposal, certificate))
    }

    /// The certificate that ended `view` here: its notarization, or else its nullification.
    pub fn ending_certificate(&self, view: u64) -> Option<&Certificate> {
        let round = self.rounds.get(&view)?;
        round.notarization.as_ref().or(round.nullification.as_ref())
    }

    /// Whether `block` is notarized in `view` here.
    pub fn is_notarized(&self, view: u64, block: B256) -> bool {
        self.rounds
            .get(&view)
            .is_some_and(|round| round.notarized() == Some(block))
    }

    fn on_proposal(&mut self, proposal: Proposal, signatures: Signatures, out: &mut Vec<Action>) {
        let view = proposal.view;
        if !self.accepts_proposal_view(view) || proposal.height > self.config.last_height {
            return;
        }
        let reproposal = proposal.block == proposal.parent;
        if reproposal
            && (proposal.height != self.config.last_height
                || !proposal.payload.is_empty()
                || proposal.parent == self.anchor.block)
        {
            return;
        }
        let first = self
            .rounds
            .get(&view)
            .and_then(|r| r.proposal.as_ref())
            .map(|p| p.block);
        if first == Some(proposal.block) {
            return;
        }
        let leader_vote = Vote {
            view,
            kind: VoteKind::Notarize(proposal.block),
            signer: self.config.leader(view),
            signature: proposal.signature,
        };
        if !signatures
            .valid(|| leader_vote.is_valid(&self.config.namespace, &self.config.validators))
        {
            return;
        }
        if first.is_some() {
            // The first proposal of a view wins; a leader that equivocates gets no second
            // hearing, and its two signed blocks are evidence against it.
            let round = self.rounds.entry(view).or_default();
            let counted = round.notarizes.get(&leader_vote.signer).cloned();
            if let Some(counted) = counted
                && counted.kind.conflicts_with(&leader_vote.kind)
                && round.equivocators.insert(leader_vote.signer)
            {
                out.push(Action::Equivocation(counted, leader_vote));
            }
            return;
        }
        let round = self.rounds.entry(view).or_default();
        round.proposal = Some(proposal);
        if reproposal {
            // Nothing to execute: the block was notarized, so a quorum checked it already.
            round.verified = Some(true);
        }
        round
            .notarizes
            .entry(leader_vote.signer)
            .or_insert(leader_vote);
        self.advance(view, out);
    }

    fn on_vote(&mut self, vote: Vote, signatures: Signatures, out: &mut Vec<Action>) {
        if !self.accepts_view(vote.view) {
            return;
        }
        let counted = self.rounds.get(&vote.view).and_then(|round| {
            [&round.notarizes, &round.nullifies, &round.finalizes]
                .into_iter()
                .filter_map(|votes| votes.get(&vote.signer))
                .find(|counted| {
                    counted.kind == vote.kind || counted.kind.conflicts_with(&vote.kind)
                })
                .cloned()
        });
        if counted.as_ref().is_some_and(|c| c.kind == vote.kind)
            || !signatures.valid(|| vote.is_valid(&self.config.namespace, &self.config.validators))
        {
            return;
        }
        if let Some(counted) = counted {
            // Two signed conflicting votes: evidence. The second is not counted.
            let round = self.rounds.entry(vote.view).or_default();
            if round.equivocators.insert(vote.signer) {
                out.push(Action::Equivocation(counted, vote));
            }
            return;
        }
        let view = vote.view;
        let round = self.rounds.entry(view).or_default();
        round.votes_mut(&vote.kind).insert(vote.signer, vote);
        self.advance(view, out);
    }

    fn on_certificate(
        &mut self,
        certificate: Certificate,
        signatures: Signatures,
        out: &mut Vec<Action>,
    ) {
        let view = certificate.view;
        if view <= self.anchor.view {
            return;
        }
        let known = self
            .rounds
            .get(&view)
            .is_some_and(|round| round.certificate(&certificate.kind).is_some());
        if known
            || !signatures
                .valid(|| certificate.is_valid(&self.config.namespace, &self.config.validators))
        {
            return;
        }
        self.on_new_certificate(certificate, false, out);
    }

    /// Votes in `view` if it is time to, and forms whatever certificates its votes now allow.
    fn advance(&mut self, view: u64, out: &mut Vec<Action>) {
        if view == self.view {
            self.try_notarize(view, out);
        }
        let Some(round) = self.rounds.get(&view) else {
            return;
        };
        let mut formed = Vec::new();
        for (votes, existing) in [
            (&round.notarizes, &round.notarization),
            (&round.nullifies, &round.nullification),
            (&round.finalizes, &round.finalization),
        ] {
            if existing.is_some() {
                continue;
            }
            let mut tally: BTreeMap<VoteKind, Vec<(ValidatorIndex, cairn_primitives::Signature)>> =
                BTreeMap::new();
            for vote in votes.values() {
                tally
                    .entry(vote.kind)
                    .or_default()
                    .push((vote.signer, vote.signature));
            }
            if let Some((kind, signatures)) = tally.into_iter().find(|(_, signatures)| {
                self.config
                    .validators
                    .is_quorum(signatures.iter().map(|(signer, _)| *signer))
            }) {
                formed.push(Certificate {
                    view,
                    kind,
                    signatures,
                });
            }
        }
        for certificate in formed {
            self.on_new_certificate(certificate, true, out);
        }
    }

    fn try_notarize(&mut self, view: u64, out: &mut Vec<Action>) {
        let Some(round) = self.rounds.get(&view) else {
            return;
        };
        if self.me.is_none() || round.voted_notarize || round.voted_nullify {
            return;
        }
        let Some(proposal) = &round.proposal else {
            return;
        };
        if !self.extends_valid_parent(proposal) {
            return;
        }
        let Some(round) = self.rounds.get_mut(&view) else {
            return;
        };
        match round.verified {
            None if !round.verify_requested => {
                round.verify_requested = true;
                if let Some(proposal) = &round.proposal {
                    out.push(Action::Verify(proposal.clone()));
                }
            }
            Some(true) => {
                let Some(block) = round.proposal.as_ref().map(|p| p.block) else {
                    return;
                };
                round.voted_notarize = true;
                self.cast(view, VoteKind::Notarize(block), out);
            }
            _ => {}
        }
    }

    /// Whether a proposal's parent is the anchor or a notarized block, with every view between
    /// the parent's and the proposal's nullified. The parent's view is found here, from the
    /// certificates, not taken from the proposal: the leader's signature covers only the block,
    /// so any relay could change a view number carried beside it. The latest view in which the
    /// parent was notarized counts (a re-proposed block is notarized in several).
    fn extends_valid_parent(&self, proposal: &Proposal) -> bool {
        let parent_view = self
            .rounds
            .range(self.anchor.view + 1..proposal.view)
            .rev()
            .find(|(_, round)| round.notarized() == Some(proposal.parent))
            .map(|(view, _)| *view)
            .or((proposal.parent == self.anchor.block).then_some(self.anchor.view));
        parent_view.is_some_and(|parent_view| self.nullified_between(parent_view, proposal.view))
    }

    fn nullified_between(&self, after: u64, before: u64) -> bool {
        (after + 1..before).all(|view| {
            self.rounds
                .get(&view)
                .is_some_and(|r| r.nullification.is_some())
        })
    }

    /// Signs, records, persists and broadcasts this validator's vote.
    fn cast(&mut self, view: u64, kind: VoteKind, out: &mut Vec<Action>) {
        let Some((index, key)) = &self.me else {
            return;
        };
        let vote = Vote::sign(key, *index, &self.config.namespace, view, kind);
        let round = self.rounds.entry(view).or_default();
        round.votes_mut(&kind).insert(vote.signer, vote.clone());
        out.push(Action::Persist(vote.clone()));
        out.push(Action::Broadcast(Message::Vote(vote)));
        self.advance(view, out);
    }

    fn on_new_certificate(
        &mut self,
        certificate: Certificate,
        formed_here: bool,
        out: &mut Vec<Action>,
    ) {
        let view = certificate.view;
        let kind = certificate.kind;
        let round = self.rounds.entry(view).or_default();
        if round.certificate(&kind).is_some() {
            return;
        }
        *round.certificate_mut(&kind) = Some(certificate.clone());
        if formed_here {
            out.push(Action::Broadcast(Message::Certificate(certificate.clone())));
        }
        match kind {
            VoteKind::Notarize(block) => {
                let round = self.rounds.entry(view).or_default();
                if self.me.is_some() && !round.voted_nullify && !round.voted_finalize {
                    round.voted_finalize = true;
                    self.cast(view, VoteKind::Finalize(block), out);
                }
                if view >= self.view {
                    self.enter_view(view + 1, out);
                } else {
                    self.try_propose(out);
                    self.advance(self.view, out);
                }
            }
            VoteKind::Nullify => {
                if view >= self.view {
                    self.enter_view(view + 1, out);
                } else {
                    self.try_propose(out);
                    self.advance(self.view, out);
                }
            }
            VoteKind::Finalize(block) => {
                if view > self.anchor.view {
                    // The height is known if the proposal was seen; until the node reports it
                    // (`Synced`), an unknown height keeps this validator from proposing on it.
                    let height = self
                        .rounds
                        .get(&view)
                        .and_then(|r| r.proposal.as_ref())
                        .map_or(u64::MAX, |p| p.height);
                    let anchor = Anchor {
                        view,
                        block,
                        height,
                    };
                    self.set_anchor(anchor, Some(certificate.clone()));
                    out.push(Action::Finalize(certificate));
                    if view >= self.view {
                        self.enter_view(view + 1, out);
                    }
                }
            }
        }
    }

    fn set_anchor(&mut self, anchor: Anchor, certificate: Option<Certificate>) {
        self.anchor = anchor;
        self.anchor_certificate = certificate;
        // Views before the anchor can no longer change anything.
        self.rounds = self.rounds.split_off(&anchor.view);
        if self.building.is_some_and(|view| view <= anchor.view) {
            self.building = None;
        }
    }

    fn tick(&mut self, out: &mut Vec<Action>) {
        let view = self.view;
        if self.now_ms >= self.view_deadline_ms && self.retry_at_ms.is_none() {
            // From now on the machine wakes up to re-send, not to time out again (set before
            // voting: a nullification formed by this vote enters the next view and resets it).
            self.retry_at_ms = Some(self.now_ms + self.config.retry_ms);
            let round = self.rounds.entry(view).or_default();
            // Never nullify a view after voting to finalize it (Simplex's rule: the view's block
            // may already be final somewhere).
            if self.me.is_some() && !round.voted_nullify && !round.voted_finalize {
                round.voted_nullify = true;
                self.cast(view, VoteKind::Nullify, out);
                // A view that times out may be one that some validators cannot vote in for want
                // of a notarized block or certificate they missed (after a restart, say): send
                // them now, not only if the view stalls past the retry period, which never
                // happens while views keep being nullified one after the other.
                if self.view == view {
                    self.rebroadcast(out);
                }
            }
            return;
        }
        if let Some(retry) = self.retry_at_ms
            && self.now_ms >= retry
        {
            self.retry_at_ms = Some(self.now_ms + self.config.retry_ms);
            self.rebroadcast(out);
        }
    }

    /// Re-sends what a validator that missed messages needs to reach this view and to vote in
    /// it: this view's own nullify vote, the certificate that ended the previous view, the
    /// newest notarized block not yet finalized (its proposal and notarization) and the
    /// nullifications of the views after it (without them a proposal built on that block cannot
    /// be voted for: a validator that restarted, or jumped ahead on a later certificate, never
    /// saw them, and sync serves finalized blocks only), and the last finalization.
    fn rebroadcast(&self, out: &mut Vec<Action>) {
        if let Some(round) = self.rounds.get(&self.view)
            && let Some(vote) = self
                .me
                .as_ref()
                .and_then(|(index, _)| round.nullifies.get(index))
        {
            out.push(Action::Broadcast(Message::Vote(vote.clone())));
        }
        if self.me.is_none() {
            // An observer has no vote to catch anyone up for: it only re-sends what it must.
            self.rebroadcast_certificates(out);
            return;
        }
        let parent_view = self
            .rounds
            .range(..self.view)
            .rev()
            .find(|(_, round)| round.notarization.is_some())
            .map_or(self.anchor.view, |(view, _)| *view);
        if parent_view > self.anchor.view
            && let Some(round) = self.rounds.get(&parent_view)
        {
            // The newest notarized block and its notarized ancestors down to the anchor: a
            // validator that restarted holds none of them, and cannot vote on (or build on) a
            // block whose ancestry it lacks.
            let mut block = round.notarized();
            for _ in 0..MAX_REBROADCAST_ANCESTORS {
                let Some(proposal) = block.and_then(|b| self.notarized_proposal(b)) else {
                    break;
                };
                out.push(Action::Broadcast(Message::Proposal(proposal.clone())));
                block = Some(proposal.parent).filter(|p| *p != self.anchor.block);
            }
            if parent_view + 1 < self.view
                && let Some(notarization) = &round.notarization
            {
                out.push(Action::Broadcast(Message::Certificate(
                    notarization.clone(),
                )));
            }
        }
        let skipped = (parent_view + 1..self.view.saturating_sub(1))
            .filter_map(|view| self.rounds.get(&view)?.nullification.as_ref())
            .take(MAX_REBROADCAST_NULLIFICATIONS);
        for certificate in skipped {
            out.push(Action::Broadcast(Message::Certificate(certificate.clone())));
        }
        self.rebroadcast_certificates(out);
    }

    /// The proposal that carried `block` (not a re-proposal, which has no payload) in a view
    /// that notarized it, if this machine has it.
    fn notarized_proposal(&self, block: B256) -> Option<&Proposal> {
        self.rounds
            .values()
            .rev()
            .filter(|round| round.notarized() == Some(block))
            .find_map(|round| {
                round
                    .proposal
                    .as_ref()
                    .filter(|p| p.block == block && p.parent != block)
            })
    }

    /// The certificate that ended the previous view and the last finalization.
    fn rebroadcast_certificates(&self, out: &mut Vec<Action>) {
        if let Some(previous) = self.view.checked_sub(1).and_then(|v| self.rounds.get(&v)) {
            for certificate in [&previous.notarization, &previous.nullification]
                .into_iter()
                .flatten()
            {
                out.push(Action::Broadcast(Message::Certificate(certificate.clone())));
            }
        }
        if let Some(certificate) = &self.anchor_certificate {
            out.push(Action::Broadcast(Message::Certificate(certificate.clone())));
        }
    }

    /// Whether this machine already holds `message` (a certificate or proposal it has, or a vote
    /// it counted): a re-sent copy needs neither checking nor forwarding.
    pub fn knows(&self, message: &Message) -> bool {
        let Some(round) = self.rounds.get(&message.view()) else {
            return false;
        };
        match message {
            Message::Certificate(certificate) => round.certificate(&certificate.kind).is_some(),
            Message::Proposal(proposal) => round
                .proposal
                .as_ref()
                .is_some_and(|known| known.block == proposal.block),
            Message::Vote(vote) => round
                .votes(&vote.kind)
                .get(&vote.signer)
                .is_some_and(|known| known.kind == vote.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            namespace: [1; 32],
            validators: Validators::equal(
                (1..=4u8).map(|i| AccountKey::from_bytes(&[i; 32]).public_key()),
            ),
            view_timeout_ms: 100,
            retry_ms: 50,
            last_height: u64::MAX,
        }
    }

    const GENESIS: Anchor = Anchor {
        view: 0,
        block: B256::ZERO,
        height: 0,
    };

    /// The four validators' keys, and validator 0's machine, started.
    fn validator_zero() -> (Config, Vec<AccountKey>, Machine) {
        let config = config();
        let keys: Vec<AccountKey> = (1..=4u8)
            .map(|i| AccountKey::from_bytes(&[i; 32]))
            .collect();
        let mut machine = Machine::new(
            config.clone(),
            Some(keys[0].clone()),
            GENESIS,
            Vec::new(),
            0,
        );
        machine.start();
        (config, keys, machine)
    }

    #[test]
    fn a_timed_out_view_wakes_the_machine_only_to_re_send() {
        for key in [Some(AccountKey::from_bytes(&[2; 32])), None] {
            let validator = key.is_some();
            let mut machine = Machine::new(config(), key, GENESIS, Vec::new(), 0);
            machine.start();
            assert_eq!(machine.next_deadline_ms(), 100);
            let actions = machine.handle(100, Event::Tick);
            let nullified = actions
                .iter()
                .any(|a| matches!(a, Action::Persist(v) if v.kind == VoteKind::Nullify));
            assert_eq!(nullified, validator, "only a validator votes");
            // The deadline moves on, so the driver never spins on a past one.
            assert_eq!(machine.next_deadline_ms(), 150);
            machine.handle(150, Event::Tick);
            assert_eq!(machine.next_deadline_ms(), 200);
        }
    }

    #[test]
    fn a_restarted_validator_does_not_vote_again_in_a_view_it_voted_in() {
        let key = AccountKey::from_bytes(&[3; 32]);
        let config = config();
        let nullify = Vote::sign(&key, 2, &config.namespace, 1, VoteKind::Nullify);
        let mut machine = Machine::new(config.clone(), Some(key), GENESIS, vec![nullify], 0);
        machine.start();
        assert_eq!(machine.view(), 1);
        // A valid proposal from view 1's leader arrives after the restart: no notarize vote,
        // no verification, because this validator already nullified view 1.
        let leader_index = config.leader(1);
        let leader = AccountKey::from_bytes(&[leader_index as u8 + 1; 32]);
        let block = B256::repeat_byte(5);
        let signature = Vote::sign(
            &leader,
            leader_index,
            &config.namespace,
            1,
            VoteKind::Notarize(block),
        )
        .signature;
        let proposal = Proposal {
            view: 1,
            parent: B256::ZERO,
            height: 1,
            block,
            signature,
            payload: Vec::new(),
        };
        let actions = machine.handle(10, Event::Message(Message::Proposal(proposal)));
        assert!(actions.is_empty(), "{actions:?}");
    }

    #[test]
    fn a_validator_restarted_after_a_finalize_vote_never_nullifies_that_view() {
        // Crashed right after voting to finalize view 1's block, before it was committed: the
        // block may be final elsewhere, so view 1 must never get this validator's nullify vote.
        let key = AccountKey::from_bytes(&[3; 32]);
        let config = config();
        let block = B256::repeat_byte(7);
        let votes = [VoteKind::Notarize(block), VoteKind::Finalize(block)]
            .map(|kind| Vote::sign(&key, 2, &config.namespace, 1, kind));
        let mut machine = Machine::new(config, Some(key), GENESIS, votes.to_vec(), 0);
        machine.start();
        assert_eq!(machine.view(), 2, "resumes after the view it finalized");
        let mut nullified = Vec::new();
        for now in (0..2_000).step_by(25) {
            for action in machine.handle(now, Event::Tick) {
                if let Action::Persist(vote) = action
                    && vote.kind == VoteKind::Nullify
                {
                    nullified.push(vote.view);
                }
            }
        }
        assert_eq!(nullified, vec![2], "times out view 2 only, once");
    }

    #[test]
    fn conflicting_votes_and_twin_proposals_become_evidence_once() {
        let (config, keys, mut machine) = validator_zero();
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let vote = |signer: u32, kind| {
            Message::Vote(Vote::sign(
                &keys[signer as usize],
                signer,
                &config.namespace,
                1,
                kind,
            ))
        };
        let evidence = |actions: Vec<Action>| {
            actions
                .into_iter()
                .filter(|a| matches!(a, Action::Equivocation(..)))
                .count()
        };
        assert_eq!(
            evidence(machine.handle(1, Event::Message(vote(2, VoteKind::Notarize(a))))),
            0
        );
        // An honest pair: notarize, then nullify after a timeout.
        assert_eq!(
            evidence(machine.handle(2, Event::Message(vote(2, VoteKind::Nullify)))),
            0
        );
        assert_eq!(
            evidence(machine.handle(3, Event::Message(vote(2, VoteKind::Notarize(b))))),
            1
        );
        // Reported once; a replay of either vote is nothing new.
        assert_eq!(
            evidence(machine.handle(4, Event::Message(vote(2, VoteKind::Finalize(b))))),
            0
        );
        assert_eq!(
            evidence(machine.handle(5, Event::Message(vote(2, VoteKind::Notarize(b))))),
            0
        );
        // A forged vote (someone else's signature) is no evidence.
        let mut forged = Vote::sign(&keys[1], 3, &config.namespace, 1, VoteKind::Finalize(a));
        forged.signer = 3;
        assert_eq!(
            evidence(machine.handle(6, Event::Message(Message::Vote(forged)))),
            0
        );
        // The leader of view 1 signs two blocks.
        let leader = config.leader(1);
        let proposal = |block: B256| {
            let vote = Vote::sign(
                &keys[leader as usize],
                leader,
                &config.namespace,
                1,
                VoteKind::Notarize(block),
            );
            Message::Proposal(Proposal {
                view: 1,
                parent: B256::ZERO,
                height: 1,
                block,
                signature: vote.signature,
                payload: Vec::new(),
            })
        };
        if leader != 2 {
            machine.handle(7, Event::Message(proposal(a)));
            assert_eq!(evidence(machine.handle(8, Event::Message(proposal(b)))), 1);
        }
    }

    #[test]
    fn a_replayed_copy_is_known_and_a_new_message_is_not() {
        let (config, keys, mut machine) = validator_zero();
        let votes: Vec<Vote> = (0..3u32)
            .map(|i| {
                Vote::sign(
                    &keys[i as usize],
                    i,
                    &config.namespace,
                    1,
                    VoteKind::Nullify,
                )
            })
            .collect();
        let certificate = Certificate {
            view: 1,
            kind: VoteKind::Nullify,
            signatures: votes.iter().map(|v| (v.signer, v.signature)).collect(),
        };
        let message = Message::Certificate(certificate);
        assert!(
            !machine.knows(&message),
            "nothing is known before it arrives"
        );
        machine.handle(1, Event::Message(message.clone()));
        // A peer re-sending it (or replaying it a million times) gets it dropped unchecked.
        assert!(machine.knows(&message));
        let other = Vote::sign(&keys[3], 3, &config.namespace, 2, VoteKind::Nullify);
        assert!(!machine.knows(&Message::Vote(other)));
    }
}
