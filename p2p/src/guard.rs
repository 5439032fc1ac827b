//! What each peer may cost this node: per-topic rate and byte budgets for its gossip, a quota
//! of requests (per second, and waiting for an answer at once), and a misbehaviour score that
//! bans it for a while once it passes [`BAN_SCORE`].
//!
//! The budgets are token buckets refilled with time, which may hold [`BURST`] worth of tokens,
//! kept per *author* of a gossip message (gossipsub signs who published it), not per relay: a
//! message over its author's budget is dropped unforwarded, and counts against the author only
//! if the author sent it itself (an honest relay forwards bursts it cannot shape). A message
//! the node judged invalid (a bad signature, a malformed encoding) counts against its author
//! far more. The score decays by one point a second, so only a peer that keeps misbehaving is
//! banned. A request over its peer's quota is refused without blame: back-pressure. Time here is the network's (real) clock: nothing of it feeds consensus.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

use crate::topics::TopicKind;

/// A rate: messages and bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Messages per second.
    pub messages: u64,
    /// Bytes per second.
    pub bytes: u64,
}

/// What one peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerBudgets {
    /// Gossip of transactions.
    pub transactions: Rate,
    /// Gossip of block proposals.
    pub proposals: Rate,
    /// Gossip of votes and certificates.
    pub votes: Rate,
    /// Gossip of provider adverts.
    pub provider_adverts: Rate,
    /// Copies of messages the node already holds, per second (an honest validator stuck in a
    /// view re-sends some 77 messages a retry period, which can be as short as a tenth of a
    /// second; a replaying peer sends copies without end).
    pub duplicates_per_second: u64,
    /// Requests per second (a fetch keeps 8 piece requests in flight, and a node may fetch
    /// several blobs from one provider at once).
    pub requests_per_second: u64,
    /// Requests waiting for this node's answer at once.
    pub pending_requests: usize,
}

impl Default for PeerBudgets {
    /// Per author (the node that published a message), so well above what one honest node
    /// publishes on a busy network (its votes and the certificates it assembles, some ten a
    /// view at ten views a second, and up to 77 re-sent in a retry period; a block a view;
    /// the transactions of a busy RPC), and far below what one peer could otherwise make this
    /// node check. Relays forward many authors' messages without limit of their own.
    fn default() -> Self {
        Self {
            transactions: Rate {
                messages: 2_000,
                bytes: 8 << 20,
            },
            proposals: Rate {
                messages: 50,
                bytes: 32 << 20,
            },
            votes: Rate {
                messages: 500,
                bytes: 1 << 20,
            },
            provider_adverts: Rate {
                messages: 100,
                bytes: 256 << 10,
            },
            duplicates_per_second: 1_000,
            requests_per_second: 1_000,
            pending_requests: 64,
        }
    }
}

impl PeerBudgets {
    fn of(&self, kind: TopicKind) -> Rate {
        match kind {
            TopicKind::Transactions => self.transactions,
            TopicKind::Proposals => self.proposals,
            TopicKind::Votes => self.votes,
            TopicKind::ProviderAdverts => self.provider_adverts,
        }
    }
}

/// How long a budget may be saved up for a burst.
pub const BURST: Duration = Duration::from_secs(2);
/// The score at which a peer is banned.
pub const BAN_SCORE: u64 = 100;
/// How long a ban lasts.
pub const BAN_DURATION: Duration = Duration::from_secs(600);
/// Peers whose score is remembered after they disconnect (so that reconnecting does not wipe
/// a score), and peers banned at once.
const MAX_REMEMBERED: usize = 4096;

/// Something a peer did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offence {
    /// A gossip message the node judged invalid (bad signature, malformed, inconsistent).
    Invalid,
    /// A request that does not decode.
    Malformed,
    /// Gossip or requests beyond its budget.
    OverBudget,
}

impl Offence {
    fn points(self) -> u64 {
        match self {
            Self::Invalid | Self::Malformed => 20,
            Self::OverBudget => 2,
        }
    }
}

/// A token bucket, in millionths of a token so that slow rates refill smoothly.
#[derive(Debug, Clone)]
struct Bucket {
    per_second: u64,
    level: u128,
    updated: Instant,
}

const MICRO: u128 = 1_000_000;

impl Bucket {
    fn full(per_second: u64, now: Instant) -> Self {
        Self {
            per_second,
            level: Self::capacity(per_second),
            updated: now,
        }
    }

    fn capacity(per_second: u64) -> u128 {
        u128::from(per_second) * BURST.as_micros()
    }

    /// Takes `amount` if the bucket holds it.
    fn take(&mut self, amount: u64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_micros();
        self.updated = now;
        self.level = (self.level + u128::from(self.per_second) * elapsed)
            .min(Self::capacity(self.per_second));
        let wanted = u128::from(amount) * MICRO;
        if self.level < wanted {
            return false;
        }
        self.level -= wanted;
        true
    }
}

#[derive(Debug, Clone)]
struct PeerRecord {
    /// Messages and bytes per topic, in `TopicKind::ALL` order.
    messages: Vec<Bucket>,
    bytes: Vec<Bucket>,
    duplicates: Bucket,
    requests: Bucket,
    pending_requests: usize,
    score: u64,
    scored: Instant,
}

impl PeerRecord {
    fn new(budgets: &PeerBudgets, now: Instant) -> Self {
        let rates: Vec<Rate> = TopicKind::ALL.iter().map(|k| budgets.of(*k)).collect();
        Self {
            messages: rates
                .iter()
                .map(|r| Bucket::full(r.messages, now))
                .collect(),
            bytes: rates.iter().map(|r| Bucket::full(r.bytes, now)).collect(),
            duplicates: Bucket::full(budgets.duplicates_per_second, now),
            requests: Bucket::full(budgets.requests_per_second, now),
            pending_requests: 0,
            score: 0,
            scored: now,
        }
    }

    /// The score after its decay up to `now`.
    fn decayed(&mut self, now: Instant) -> u64 {
        let seconds = now.saturating_duration_since(self.scored).as_secs();
        if seconds > 0 {
            self.score = self.score.saturating_sub(seconds);
            self.scored += Duration::from_secs(seconds);
        }
        self.score
    }
}

/// What [`Guard`] decided about a peer's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Within its budget.
    Yes,
    /// Over budget: drop it.
    No,
    /// Over budget, and the peer is now banned.
    Ban,
}

/// The per-peer accounting of one node.
#[derive(Debug)]
pub struct Guard {
    budgets: PeerBudgets,
    peers: HashMap<PeerId, PeerRecord>,
    /// Banned peers and the end of their ban.
    banned: BTreeMap<PeerId, Instant>,
    /// Peers whose ban ended early to make room, to let back in.
    released: Vec<PeerId>,
}

impl Guard {
    /// A guard granting each peer `budgets`.
    pub fn new(budgets: PeerBudgets) -> Self {
        Self {
            budgets,
            peers: HashMap::new(),
            banned: BTreeMap::new(),
            released: Vec::new(),
        }
    }

    fn record(&mut self, peer: PeerId, now: Instant) -> &mut PeerRecord {
        let budgets = self.budgets;
        self.peers
            .entry(peer)
            .or_insert_with(|| PeerRecord::new(&budgets, now))
    }

    /// Whether a gossip message of `bytes` on `kind` published by `peer` is within its budget;
    /// over it, an offence if `scored` (the peer sent it itself, not a relay).
    pub fn gossip(
        &mut self,
        peer: PeerId,
        kind: TopicKind,
        bytes: usize,
        scored: bool,
        now: Instant,
    ) -> Admit {
        let index = TopicKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        let record = self.record(peer, now);
        let within =
            record.messages[index].take(1, now) && record.bytes[index].take(bytes as u64, now);
        self.over_budget(peer, within, scored, now)
    }

    /// Counts a copy of a message the node already held, published by `peer`: within its
    /// budget, or (if `scored`: the peer sent it itself) an offence.
    pub fn duplicate(&mut self, peer: PeerId, scored: bool, now: Instant) -> Admit {
        let within = self.record(peer, now).duplicates.take(1, now);
        self.over_budget(peer, within, scored, now)
    }

    fn over_budget(&mut self, peer: PeerId, within: bool, scored: bool, now: Instant) -> Admit {
        match (within, scored) {
            (true, _) => Admit::Yes,
            (false, false) => Admit::No,
            (false, true) => self.offence(peer, Offence::OverBudget, now),
        }
    }

    /// Whether a request from `peer` may wait for an answer: within its rate, and with fewer
    /// than its quota waiting. Admitted, it counts as waiting until [`Guard::answered`].
    /// Refused, it costs nothing: the quota also fills when this node is slow to answer.
    pub fn request(&mut self, peer: PeerId, now: Instant) -> bool {
        let quota = self.budgets.pending_requests;
        let record = self.record(peer, now);
        if record.pending_requests < quota && record.requests.take(1, now) {
            record.pending_requests += 1;
            true
        } else {
            false
        }
    }

    /// A request of `peer`'s was answered (or given up).
    pub fn answered(&mut self, peer: &PeerId) {
        if let Some(record) = self.peers.get_mut(peer) {
            record.pending_requests = record.pending_requests.saturating_sub(1);
        }
    }

    /// Counts an offence against `peer`: [`Admit::Ban`] if this bans it.
    pub fn offence(&mut self, peer: PeerId, offence: Offence, now: Instant) -> Admit {
        let record = self.record(peer, now);
        let score = record.decayed(now) + offence.points();
        record.score = score;
        if score < BAN_SCORE {
            return Admit::No;
        }
        if self.banned.len() >= MAX_REMEMBERED
            && let Some(soonest) = self
                .banned
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(peer, _)| *peer)
        {
            // The ban closest to its end ends now, and the network lets the peer back in.
            self.banned.remove(&soonest);
            self.released.push(soonest);
        }
        self.banned.insert(peer, now + BAN_DURATION);
        self.peers.remove(&peer);
        Admit::Ban
    }

    /// Whether `peer` is banned now.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.banned.get(peer).is_some_and(|until| *until > now)
    }

    /// Whether `peer` has misbehaved lately (its addresses are not worth sharing).
    pub fn is_suspect(&mut self, peer: &PeerId, now: Instant) -> bool {
        self.peers
            .get_mut(peer)
            .is_some_and(|record| record.decayed(now) > 0)
    }

    /// Ends the bans that ran out; the peers to let back in (with those released early).
    pub fn expired_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let mut expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &expired {
            self.banned.remove(peer);
        }
        expired.append(&mut self.released);
        expired
    }

    /// `peer` disconnected: its budgets go, its score stays while it has one (bounded).
    pub fn disconnected(&mut self, peer: &PeerId, now: Instant) {
        let keep = self
            .peers
            .get_mut(peer)
            .is_some_and(|record| record.decayed(now) > 0);
        if !keep {
            self.peers.remove(peer);
            return;
        }
        if self.peers.len() > MAX_REMEMBERED {
            self.peers.retain(|_, record| record.decayed(now) > 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets() -> PeerBudgets {
        PeerBudgets {
            votes: Rate {
                messages: 10,
                bytes: 1_000,
            },
            requests_per_second: 5,
            pending_requests: 2,
            ..PeerBudgets::default()
        }
    }

    #[test]
    fn attack_a_peer_flooding_a_topic_is_cut_off_then_banned_and_others_are_not() {
        let start = Instant::now();
        let mut guard = Guard::new(budgets());
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        // A burst's worth goes through.
        for _ in 0..20 {
            assert_eq!(
                guard.gossip(flooder, TopicKind::Votes, 10, true, start),
                Admit::Yes
            );
        }
        assert_eq!(
            guard.gossip(flooder, TopicKind::Votes, 10, true, start),
            Admit::No
        );
        // Another topic, and another peer, have their own budgets.
        assert_eq!(
            guard.gossip(flooder, TopicKind::Transactions, 10, true, start),
            Admit::Yes
        );
        assert_eq!(
            guard.gossip(honest, TopicKind::Votes, 10, true, start),
            Admit::Yes
        );
        // A second later, the rate's worth is back.
        let later = start + Duration::from_secs(1);
        for _ in 0..10 {
            assert_eq!(
                guard.gossip(flooder, TopicKind::Votes, 10, true, later),
                Admit::Yes
            );
        }
        // What a relay forwards past the author's budget is dropped, and costs nobody.
        for _ in 0..1_000 {
            assert_eq!(
                guard.gossip(flooder, TopicKind::Votes, 10, false, later),
                Admit::No
            );
        }
        assert!(!guard.is_banned(&flooder, later));
        // Sending its own past the budget bans.
        let mut verdicts = Vec::new();
        for _ in 0..60 {
            verdicts.push(guard.gossip(flooder, TopicKind::Votes, 10, true, later));
        }
        assert!(verdicts.contains(&Admit::Ban));
        assert!(guard.is_banned(&flooder, later));
        assert!(!guard.is_banned(&honest, later));
        assert!(guard.expired_bans(later).is_empty());
        assert_eq!(guard.expired_bans(later + BAN_DURATION), vec![flooder]);
        assert!(!guard.is_banned(&flooder, later + BAN_DURATION));
    }

    #[test]
    fn attack_a_peer_replaying_what_the_node_holds_is_banned() {
        let now = Instant::now();
        let mut guard = Guard::new(PeerBudgets {
            duplicates_per_second: 10,
            ..budgets()
        });
        let replayer = PeerId::random();
        let verdicts: Vec<Admit> = (0..100)
            .map(|_| guard.duplicate(replayer, true, now))
            .collect();
        assert_eq!(
            verdicts[..20],
            [Admit::Yes; 20],
            "a burst's worth of copies is free"
        );
        assert_eq!(verdicts[20], Admit::No);
        assert!(verdicts.contains(&Admit::Ban));
        assert!(guard.is_banned(&replayer, now));
    }

    #[test]
    fn attack_big_messages_spend_the_byte_budget() {
        let now = Instant::now();
        let mut guard = Guard::new(budgets());
        let peer = PeerId::random();
        assert_eq!(
            guard.gossip(peer, TopicKind::Votes, 2_000, true, now),
            Admit::Yes
        );
        assert_eq!(
            guard.gossip(peer, TopicKind::Votes, 1, true, now),
            Admit::No
        );
    }

    #[test]
    fn attack_requests_are_held_to_a_rate_and_a_quota_waiting() {
        let now = Instant::now();
        let mut guard = Guard::new(budgets());
        let peer = PeerId::random();
        assert!(guard.request(peer, now));
        assert!(guard.request(peer, now));
        assert!(!guard.request(peer, now), "two waiting already");
        guard.answered(&peer);
        assert!(guard.request(peer, now));
        for _ in 0..10 {
            guard.answered(&peer);
        }
        // Ten a burst (5 a second for 2 s): three taken, seven left.
        let taken = (0..20)
            .filter(|_| {
                let admitted = guard.request(peer, now);
                guard.answered(&peer);
                admitted
            })
            .count();
        assert_eq!(taken, 7);
        // Refusals are back-pressure, not offences.
        assert!(!guard.is_suspect(&peer, now));
    }

    #[test]
    fn invalid_messages_ban_quickly_and_scores_decay() {
        let now = Instant::now();
        let mut guard = Guard::new(budgets());
        let (liar, slip) = (PeerId::random(), PeerId::random());
        for _ in 0..4 {
            assert_eq!(guard.offence(liar, Offence::Invalid, now), Admit::No);
        }
        assert!(guard.is_suspect(&liar, now));
        assert_eq!(guard.offence(liar, Offence::Invalid, now), Admit::Ban);
        // One slip is forgotten in time; reconnecting does not wipe a score.
        guard.offence(slip, Offence::Invalid, now);
        guard.disconnected(&slip, now);
        assert!(guard.is_suspect(&slip, now));
        let later = now + Duration::from_secs(20);
        assert!(!guard.is_suspect(&slip, later));
    }
}
