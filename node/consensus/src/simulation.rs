//! Deterministic simulation of the consensus state machine: validators exchange messages over a
//! seeded network that drops, delays and reorders them, and crash and restart from their
//! write-ahead log. Every run checks that no two validators ever finalize different blocks at
//! one height; the runs with at most `f` faulty validators also check that the chain grows.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use borsh::BorshSerialize;

use super::*;
use cairn_primitives::{AccountKey, B256};

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
    /// namespace), as the node does; `None` for one machine throughout.
    epoch_length: Option<u64>,
    /// A Byzantine validator: when it leads, it sends one block to half the validators and
    /// another to the rest, and votes to notarize and finalize both.
    equivocator: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
struct BlockInfo {
    parent: B256,
    height: u64,
    view: u64,
}

enum Delivery {
    Event(usize, Event),
    Crash(usize),
    Restart(usize),
}

struct Node {
    key: AccountKey,
    machine: Option<Machine>,
    wal: Vec<Vote>,
    /// Finalized blocks by height (index 0 is genesis).
    finalized: Vec<B256>,
    anchor: Anchor,
}

struct Simulation {
    rng: Rng,
    now_ms: u64,
    config: Config,
    nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    pending: BTreeMap<u64, Delivery>,
    sequence: u64,
    blocks: BTreeMap<B256, BlockInfo>,
    faults: Faults,
    trace: blake3::Hasher,
    /// Re-proposals of an epoch's last block that were sent.
    reproposals: usize,
    /// The equivocator's second block for each of its proposals, by the first one's hash.
    twins: BTreeMap<B256, Proposal>,
}

const GENESIS: B256 = B256::ZERO;
const TICK_MS: u64 = 10;

impl Simulation {
    fn new(seed: u64, validators: usize, faults: Faults) -> Self {
        let keys: Vec<AccountKey> = (0..validators)
            .map(|i| AccountKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let config = Config {
            namespace: [7; 32],
            validators: keys.iter().map(AccountKey::public_key).collect(),
            view_timeout_ms: 300,
            retry_ms: 200,
            last_height: u64::MAX,
        };
        let anchor = Anchor {
            view: 0,
            block: GENESIS,
            height: 0,
        };
        let nodes = keys
            .into_iter()
            .map(|key| Node {
                key,
                machine: None,
                wal: Vec::new(),
                finalized: vec![GENESIS],
                anchor,
            })
            .collect();
        let mut blocks = BTreeMap::new();
        blocks.insert(
            GENESIS,
            BlockInfo {
                parent: GENESIS,
                height: 0,
                view: 0,
            },
        );
        let mut simulation = Self {
            rng: Rng(seed),
            now_ms: 0,
            config,
            nodes,
            queue: BinaryHeap::new(),
            pending: BTreeMap::new(),
            sequence: 0,
            blocks,
            faults,
            trace: blake3::Hasher::new(),
            reproposals: 0,
            twins: BTreeMap::new(),
        };
        for index in 0..validators - faults.dead {
            simulation.schedule(0, Delivery::Restart(index));
        }
        simulation
    }

    fn schedule(&mut self, at_ms: u64, delivery: Delivery) {
        self.sequence += 1;
        self.queue.push(Reverse((at_ms, self.sequence)));
        self.pending.insert(self.sequence, delivery);
    }

    fn run(&mut self, until_ms: u64) {
        let mut next_tick = 0;
        let mut next_fault = 1_000;
        loop {
            let next_event = self.queue.peek().map(|Reverse((at, _))| *at);
            if next_event.is_none_or(|at| at > next_tick) {
                self.now_ms = next_tick;
                if self.now_ms > until_ms {
                    return;
                }
                for index in 0..self.nodes.len() {
                    self.deliver(index, Event::Tick);
                }
                next_tick += TICK_MS;
                if self.now_ms >= next_fault && self.faults.crashing > 0 {
                    self.inject_crash();
                    next_fault += 1_000 + self.rng.below(2_000);
                }
                continue;
            }
            let Some(Reverse((at, sequence))) = self.queue.pop() else {
                continue;
            };
            self.now_ms = at;
            match self.pending.remove(&sequence) {
                Some(Delivery::Event(index, event)) => self.deliver(index, event),
                Some(Delivery::Crash(index)) => {
                    self.trace
                        .update(format!("{at} crash {index}\n").as_bytes());
                    self.nodes[index].machine = None;
                }
                Some(Delivery::Restart(index)) => self.restart(index),
                None => {}
            }
        }
    }

    /// Crashes one of the crashing validators (if none of them is down) for a while.
    fn inject_crash(&mut self) {
        let down = (0..self.faults.crashing)
            .filter(|i| self.nodes[*i].machine.is_none())
            .count();
        if down > 0 {
            return;
        }
        let index = self.rng.below(self.faults.crashing as u64) as usize;
        let back = self.now_ms + 200 + self.rng.below(1_500);
        self.schedule(self.now_ms, Delivery::Crash(index));
        self.schedule(back, Delivery::Restart(index));
    }

    fn restart(&mut self, index: usize) {
        self.trace
            .update(format!("{} start {index}\n", self.now_ms).as_bytes());
        let node = &mut self.nodes[index];
        // As the node does: the machine of the epoch after the anchor, with the votes that
        // verify under that epoch's namespace.
        let mut config = self.config.clone();
        if let Some(length) = self.faults.epoch_length {
            let epoch = (node.anchor.height + 1) / length;
            config.namespace = *blake3::hash(&epoch.to_le_bytes()).as_bytes();
            config.last_height = (epoch + 1) * length - 1;
        }
        let votes = node
            .wal
            .iter()
            .filter(|v| v.is_valid(&config.namespace, &config.validators))
            .cloned()
            .collect();
        let mut machine = Machine::new(
            config,
            Some(node.key.clone()),
            node.anchor,
            votes,
            self.now_ms,
        );
        let actions = machine.start();
        node.machine = Some(machine);
        self.carry_out(index, actions);
    }

    fn deliver(&mut self, index: usize, event: Event) {
        let now = self.now_ms;
        let Some(machine) = self.nodes[index].machine.as_mut() else {
            return;
        };
        if !matches!(event, Event::Tick) {
            self.trace
                .update(format!("{now} {index} <- {event:?}\n").as_bytes());
        }
        let actions = machine.handle(now, event);
        self.carry_out(index, actions);
    }

    fn carry_out(&mut self, index: usize, actions: Vec<Action>) {
        for action in actions {
            self.trace
                .update(format!("{} {index} -> {action:?}\n", self.now_ms).as_bytes());
            match action {
                Action::Build {
                    view,
                    parent_view,
                    parent,
                } => {
                    let Some(parent_info) = self.blocks.get(&parent).copied() else {
                        continue;
                    };
                    let height = parent_info.height + 1;
                    let mut payload = Vec::new();
                    (view, parent, height, index as u32)
                        .serialize(&mut payload)
                        .unwrap();
                    let block = B256::from(*blake3::hash(&payload).as_bytes());
                    self.blocks.insert(
                        block,
                        BlockInfo {
                            parent,
                            height,
                            view,
                        },
                    );
                    let machine = self.nodes[index].machine.as_ref().unwrap();
                    let signature = machine.sign_proposal(view, block).unwrap().signature;
                    let proposal = Proposal {
                        view,
                        parent_view,
                        parent,
                        height,
                        block,
                        signature,
                        payload,
                    };
                    if self.faults.equivocator == Some(index) {
                        self.make_twin(index, &proposal);
                    }
                    let at = self.now_ms + 1 + self.rng.below(20);
                    self.schedule(at, Delivery::Event(index, Event::Built(proposal)));
                }
                Action::Verify(proposal) => {
                    // The node would re-execute; here the block is valid iff it is the one its
                    // payload says, on the parent it names.
                    let valid = self.blocks.get(&proposal.block).is_some_and(|info| {
                        info.parent == proposal.parent && info.height == proposal.height
                    });
                    let at = self.now_ms + 1 + self.rng.below(20);
                    let event = Event::Verified {
                        view: proposal.view,
                        block: proposal.block,
                        valid,
                    };
                    self.schedule(at, Delivery::Event(index, event));
                }
                Action::Persist(vote) => self.nodes[index].wal.push(vote),
                Action::Broadcast(message) => {
                    if let Message::Proposal(p) = &message
                        && p.block == p.parent
                    {
                        self.reproposals += 1;
                    }
                    let twin = match &message {
                        Message::Proposal(p) => self.twins.get(&p.block).cloned(),
                        _ => None,
                    };
                    for to in 0..self.nodes.len() {
                        if to == index || self.rng.chance(self.faults.drop_percent) {
                            continue;
                        }
                        let at = self.now_ms + 1 + self.rng.below(self.faults.max_delay_ms);
                        let message = match &twin {
                            // Half the validators see the other block.
                            Some(twin) if to % 2 == 1 => Message::Proposal(twin.clone()),
                            _ => message.clone(),
                        };
                        self.schedule(at, Delivery::Event(to, Event::Message(message)));
                    }
                }
                Action::Finalize(certificate) => self.finalize(index, &certificate),
            }
        }
    }

    /// For the equivocator's proposal, makes a second block for the same view and parent, and
    /// sends everyone its votes to notarize and finalize both (which no honest validator does).
    fn make_twin(&mut self, index: usize, proposal: &Proposal) {
        let mut payload = proposal.payload.clone();
        payload.push(0xee);
        let block = B256::from(*blake3::hash(&payload).as_bytes());
        self.blocks.insert(
            block,
            BlockInfo {
                parent: proposal.parent,
                height: proposal.height,
                view: proposal.view,
            },
        );
        let Some(machine) = self.nodes[index].machine.as_ref() else {
            return;
        };
        let view = proposal.view;
        let votes: Vec<Vote> = [
            VoteKind::Notarize(block),
            VoteKind::Finalize(block),
            VoteKind::Finalize(proposal.block),
        ]
        .into_iter()
        .filter_map(|kind| machine.sign(view, kind))
        .collect();
        let Some(signature) = machine.sign_proposal(view, block).map(|v| v.signature) else {
            return;
        };
        self.twins.insert(
            proposal.block,
            Proposal {
                block,
                signature,
                payload,
                ..proposal.clone()
            },
        );
        for vote in votes {
            for to in (0..self.nodes.len()).filter(|to| *to != index) {
                let at = self.now_ms + 1 + self.rng.below(self.faults.max_delay_ms);
                let event = Event::Message(Message::Vote(vote.clone()));
                self.schedule(at, Delivery::Event(to, event));
            }
        }
    }

    /// Records a node's finalized chain up to the certificate's block, checking that it extends
    /// what the node finalized before (the blocks are fetched from the shared store, as sync
    /// would fetch them from peers).
    fn finalize(&mut self, index: usize, certificate: &Certificate) {
        let block = certificate.kind.block().unwrap();
        let node = &mut self.nodes[index];
        let last = *node.finalized.last().unwrap();
        let mut chain = Vec::new();
        let mut cursor = block;
        while cursor != last {
            let info = self.blocks[&cursor];
            assert!(
                info.height as usize >= node.finalized.len(),
                "node {index} finalized {block} which does not extend its finalized block {last}"
            );
            chain.push(cursor);
            cursor = info.parent;
        }
        node.finalized.extend(chain.into_iter().rev());
        let height = node.finalized.len() as u64 - 1;
        // As the node does: the anchor's view is the one the block was proposed in (an epoch's
        // last block may be finalized later, through a re-proposal).
        node.anchor = Anchor {
            view: self.blocks[&block].view,
            block,
            height,
        };
        self.check_agreement();
        if let Some(length) = self.faults.epoch_length
            && (height + 1).is_multiple_of(length)
            && self.nodes[index].machine.is_some()
        {
            // The epoch's last block is final: hand over to the next epoch's machine.
            self.restart(index);
        } else {
            let anchor = self.nodes[index].anchor;
            if let Some(machine) = self.nodes[index].machine.as_mut() {
                let actions = machine.handle(self.now_ms, Event::Synced(anchor));
                self.carry_out(index, actions);
            }
        }
    }

    fn check_agreement(&self) {
        let longest = self
            .nodes
            .iter()
            .map(|n| n.finalized.len())
            .max()
            .unwrap_or(0);
        for height in 0..longest {
            let mut seen = None;
            for (index, node) in self.nodes.iter().enumerate() {
                if let Some(block) = node.finalized.get(height) {
                    match seen {
                        None => seen = Some((index, *block)),
                        Some((other, theirs)) => assert_eq!(
                            theirs, *block,
                            "nodes {other} and {index} finalized different blocks at height {height}"
                        ),
                    }
                }
            }
        }
    }

    fn finalized_heights(&self) -> Vec<usize> {
        self.nodes.iter().map(|n| n.finalized.len() - 1).collect()
    }

    fn trace(&self) -> [u8; 32] {
        *self.trace.finalize().as_bytes()
    }
}

fn simulate(seed: u64, faults: Faults, duration_ms: u64) -> Simulation {
    let mut simulation = Simulation::new(seed, 4, faults);
    simulation.run(duration_ms);
    simulation
}

const CALM: Faults = Faults {
    drop_percent: 0,
    max_delay_ms: 20,
    crashing: 0,
    dead: 0,
    epoch_length: None,
    equivocator: None,
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
        equivocator: None,
    };
    for seed in 0..24 {
        let simulation = simulate(seed, faults, 20_000);
        let heights = simulation.finalized_heights();
        let live = heights.iter().filter(|h| **h >= 10).count();
        assert!(live >= 3, "seed {seed}: heights {heights:?}");
    }
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
        equivocator: None,
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
        equivocator: None,
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
    let faults = Faults {
        drop_percent: 10,
        max_delay_ms: 100,
        crashing: 2,
        dead: 0,
        epoch_length: None,
        equivocator: None,
    };
    let simulation = simulate(7, faults, 15_000);
    for (index, node) in simulation.nodes.iter().enumerate() {
        let mut seen: BTreeMap<(u64, u8), VoteKind> = BTreeMap::new();
        for vote in &node.wal {
            let slot = match vote.kind {
                VoteKind::Notarize(_) => 0,
                VoteKind::Nullify => 1,
                VoteKind::Finalize(_) => 2,
            };
            if let Some(previous) = seen.insert((vote.view, slot), vote.kind) {
                panic!(
                    "validator {index} voted {previous:?} and {:?} in view {}",
                    vote.kind, vote.view
                );
            }
        }
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
        equivocator: None,
    };
    let mut reproposals = 0;
    for seed in 200..216 {
        let simulation = simulate(seed, faults, 20_000);
        let heights = simulation.finalized_heights();
        let live = heights.iter().filter(|h| **h >= 12).count();
        assert!(live >= 3, "seed {seed}: heights {heights:?}");
        reproposals += simulation.reproposals;
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
        equivocator: None,
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
            equivocator: Some(1),
        };
        let simulation = simulate(seed, faults, 15_000);
        let heights = simulation.finalized_heights();
        let honest = [heights[0], heights[2], heights[3]];
        assert!(
            honest.iter().all(|h| *h >= 10),
            "seed {seed}: heights {heights:?}"
        );
        assert!(!simulation.twins.is_empty(), "the equivocator never led");
    }
}
