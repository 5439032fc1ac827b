//! `cairn bench economics`: the adversarial economics harness. Honest and cheating providers
//! and clients play the real reward contracts on an in-process chain for many epochs; each
//! one's profit is measured, and every cheating strategy must end strictly below the honest one.
//!
//! ## How it runs
//! One chain (the dev validator produces every block, 16-block epochs) with the contracts'
//! dev parameters. Agents are accounts with a strategy; each block, every agent looks at the
//! committed state (deals, jobs, their stages) and sends what its strategy says, as the node's
//! provider agent would: storage proofs made from the data it kept (real blake3 chunk proofs
//! against the chain's challenges), compute answers by commit and reveal of real WASM runs
//! (the example word count), settlements, challenges. Off-chain costs are charged at a stated
//! rate: keeping data (30 % of a deal's price per epoch, for the part kept) and running a job
//! (25 % of the price per fuel, for every run: provider, verifier, referee, auditor). A client
//! values a correct result at twice its escrow.
//!
//! **Profit** = holdings at the end − holdings at the start − off-chain costs (+ the value of
//! the results received, for a client), where holdings are the balance, the bond (locked or
//! not), tokens unbonding, and everything claimable from the markets and the reward pool. Gas
//! is paid from the balance, so it counts. Compute providers are drawn by bond, so a compute
//! strategy is compared with the honest providers' mean profit per bonded token times its bond.
//!
//! After every epoch the harness checks that the tokens of every account there is (agents, the
//! validator, the contracts, the burn address) add up to the genesis supply.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use alloy_sol_types::{SolCall, SolEvent};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::error::{BenchError, Result};
use cairn_chain::chain::Chain;
use cairn_chain::genesis::{ContractsConfig, Genesis, GenesisAccount, GenesisValidator, TOKEN};
use cairn_evm::execution::Sequential;
use cairn_primitives::{AccountKey, Address, B256, Bytes, Receipt, Transaction, U256};
use cairn_providers::{DealState, JobState, slots, view};
use cairn_reward_contracts::bindings::{
    ComputeMarket, ProviderRegistry, RewardPool, Staking, StorageMarket,
};
use cairn_reward_contracts::{
    BURN, COMPUTE_MARKET, CONTRACT_HOLDERS, REGISTRY, REWARD_POOL, STAKING, STORAGE_MARKET,
    job_commitment,
};
use cairn_storage::chunk_proof;
use cairn_wasm::{Limits, Outcome};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct EconomicsOptions {
    /// Epochs played (deals run from epoch 1 to the last; jobs are posted until three epochs
    /// before it).
    pub epochs: u64,
    /// Seeds every agent's choices (the data, the chunks a dropper lost, the jobs' inputs,
    /// salts and audits) and the validator's key, from which the chain's randomness, and so
    /// every draw and challenge, follows.
    pub seed: u64,
    /// Storage deals each storage provider holds for the honest client.
    pub deals_per_provider: usize,
}

impl Default for EconomicsOptions {
    fn default() -> Self {
        Self {
            epochs: 30,
            seed: 1,
            deals_per_provider: 16,
        }
    }
}

/// One strategy's outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyReport {
    /// The strategy.
    pub name: String,
    /// What it is measured against: "storage provider", "compute provider" or "client".
    pub role: &'static str,
    /// Its profit, wei (decimal, signed).
    pub profit_wei: String,
    /// The honest strategy's profit in the same role and at the same bond, wei.
    pub honest_profit_wei: String,
    /// Epochs from its first cheat to its first penalty (a fault fine or a slash); `null` if it
    /// was never penalized (an honest strategy, or a cheat the contracts refuse outright).
    pub caught_after_epochs: Option<u64>,
    /// Whether it ended strictly below the honest strategy (for an honest one: whether its
    /// profit is positive).
    pub below_honest: bool,
}

/// What happened to the jobs.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobCounts {
    /// Posted and taken.
    pub posted: u64,
    /// Refused at posting (no provider takes them).
    pub refused: u64,
    /// Settled with the provider paid.
    pub paid: u64,
    /// Decided by a panel.
    pub disputed: u64,
    /// Challenged after agreement.
    pub challenged: u64,
    /// Settled on a result other than the true one.
    pub wrong_accepted: u64,
}

/// The harness's figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EconomicsReport {
    /// Epochs played.
    pub epochs: u64,
    /// The seed.
    pub seed: u64,
    /// Blocks produced.
    pub blocks: u64,
    /// Every strategy, honest ones first.
    pub strategies: Vec<StrategyReport>,
    /// Whether the total supply equalled the genesis supply after every epoch.
    pub supply_conserved: bool,
    /// Tokens burnt, wei.
    pub burnt_wei: String,
    /// Emission assigned to providers, wei.
    pub emitted_wei: String,
    /// The jobs.
    pub jobs: JobCounts,
}

impl EconomicsReport {
    /// The assertions that failed, in words; empty when every cheat lost and honesty paid.
    pub fn failures(&self) -> Vec<String> {
        let mut failures: Vec<String> = self
            .strategies
            .iter()
            .filter(|s| !s.below_honest)
            .map(|s| {
                format!(
                    "{} ({}) made {} wei against the honest {}",
                    s.name, s.role, s.profit_wei, s.honest_profit_wei
                )
            })
            .collect();
        if !self.supply_conserved {
            failures.push("the total supply changed".into());
        }
        failures
    }
}

const EPOCH_LENGTH: u64 = 16;
const CHUNK: u64 = 1024;
/// Chunks of a deal's data: 1 % of it is two chunks.
const DEAL_CHUNKS: u64 = 200;
/// What the honest client pays per deal and epoch.
const DEAL_PRICE: u128 = TOKEN;
/// The self-dealer's wash deals: a high price, over data it regenerates from a seed.
const WASH_PRICE: u128 = 10 * TOKEN;
const WASH_DEALS: usize = 8;
/// Keeping a deal's data costs this percent of its price per epoch (for the part kept).
const STORAGE_COST_PERCENT: u128 = 30;
/// Wei per fuel asked and paid: a job of a million fuel costs one CRN.
const FUEL_PRICE: u128 = TOKEN / 1_000_000;
/// Running costs this percent of the price per fuel: a job pays for two runs (the provider's
/// and the verifier's), so an ask of four times the cost of a run leaves both a margin.
const COMPUTE_COST_PERCENT: u128 = 25;
const MAX_FUEL: u64 = 2_000_000;
/// A client values a correct result at this multiple of its escrow.
const RESULT_VALUE_MULTIPLE: u128 = 2;
/// Each honest compute provider audits an agreed job it is no party to with this probability.
const AUDIT_PERCENT: u32 = 25;
const JOBS_PER_EPOCH: usize = 4;
const PROVIDER_BOND: u128 = 1_000 * TOKEN;
const HONEST_COMPUTE: usize = 6;
/// Blocks after an epoch's first one at which the client settles its deals (the proof window
/// is 8 blocks).
const SETTLE_OFFSET: u64 = 10;

const WORDCOUNT: &[u8] = include_bytes!("../../../examples/jobs/wordcount.wasm");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    HonestStorage,
    /// Keeps all but this percent of every deal's chunks.
    Dropper(u64),
    /// Proves until a third of the run, then stops and tries to take its bond and leave.
    ExitBeforeSlash,
    /// Honest on its client deals, and pays itself for wash deals to farm the emission.
    SelfDealer,
    HonestCompute,
    /// As verifier or referee, answers without running the job.
    LazyVerifier,
    /// One of a pair that agrees on a made-up result whenever one runs a job the other checks.
    Colluder(u8),
    /// Opens the storage deals (not measured).
    StorageClient,
    HonestClient,
    /// Posts free jobs and jobs no provider can run.
    FreeJobSpammer,
    /// Posts jobs and never serves their input.
    WithholdingClient,
}

impl Strategy {
    fn is_compute(self) -> bool {
        matches!(
            self,
            Strategy::HonestCompute | Strategy::LazyVerifier | Strategy::Colluder(_)
        )
    }

    fn is_storage(self) -> bool {
        matches!(
            self,
            Strategy::HonestStorage
                | Strategy::Dropper(_)
                | Strategy::ExitBeforeSlash
                | Strategy::SelfDealer
        )
    }
}

struct Agent {
    name: String,
    key: AccountKey,
    strategy: Strategy,
    nonce: u64,
    bond: u128,
    start: i128,
    offchain_cost: i128,
    value_received: i128,
    caught_epoch: Option<u64>,
    cheats_from_epoch: u64,
}

struct Deal {
    id: B256,
    provider: usize,
    client: usize,
    data: Vec<u8>,
    lost: BTreeSet<u64>,
    price: u128,
}

/// What the harness knows of a job beyond the chain: its true result and who posted it.
struct JobInfo {
    client: usize,
    truth: Answer,
    available: bool,
    audited: bool,
}

/// A result as the chain compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    output_root: B256,
    fuel_used: u64,
    outcome: u8,
}

impl Answer {
    fn of(result: &ComputeMarket::Result) -> Self {
        Self {
            output_root: result.outputRoot,
            fuel_used: result.fuelUsed,
            outcome: result.outcome,
        }
    }

    const UNAVAILABLE: Answer = Answer {
        output_root: B256::ZERO,
        fuel_used: 0,
        outcome: Outcome::InputUnavailable as u8,
    };

    /// A result nobody ran: what a lazy verifier or a colluding pair reveals.
    fn made_up(id: B256, tag: &[u8]) -> Self {
        let mut material = id.to_vec();
        material.extend_from_slice(tag);
        Self {
            output_root: B256::from(*blake3::hash(&material).as_bytes()),
            fuel_used: MAX_FUEL / 2,
            outcome: Outcome::Completed as u8,
        }
    }
}

struct Harness {
    chain: Chain,
    /// The one validator; its key, derived from the seed, makes the chain's randomness (and so
    /// every draw and challenge) differ from seed to seed.
    validator: AccountKey,
    agents: Vec<Agent>,
    deals: Vec<Deal>,
    jobs: BTreeMap<B256, JobInfo>,
    /// What each party committed to, with its salt, until it reveals.
    committed: BTreeMap<(B256, usize), (Answer, B256)>,
    /// Inputs the clients serve, by root.
    inputs: BTreeMap<B256, Vec<u8>>,
    rng: StdRng,
    counts: JobCounts,
    /// Job postings sent, to count those refused.
    posts: BTreeSet<B256>,
    epochs: u64,
    blocks: u64,
}

/// Runs the harness.
pub fn run(options: EconomicsOptions, workdir: &Path) -> Result<EconomicsReport> {
    if options.epochs < 6 {
        return Err(BenchError::Check(
            "play at least 6 epochs: deals, jobs and their settlement need them".into(),
        ));
    }
    let mut harness = Harness::new(options, workdir)?;
    let genesis_supply = harness.supply()?;
    harness.setup(options.deals_per_provider)?;
    let mut supply_conserved = true;
    let last = options.epochs;
    while harness.height() < (last + 1) * EPOCH_LENGTH + SETTLE_OFFSET + 1 {
        harness.step()?;
        if harness.height() % EPOCH_LENGTH == 0 && harness.supply()? != genesis_supply {
            supply_conserved = false;
        }
    }
    // Wind down: every job over, every deal ended.
    let mut spare = 8 * EPOCH_LENGTH;
    while !harness.all_over()? && spare > 0 {
        harness.step()?;
        spare -= 1;
    }
    if !harness.all_over()? {
        return Err(BenchError::Check(
            "jobs or deals were still open when the run ended".into(),
        ));
    }
    supply_conserved &= harness.supply()? == genesis_supply;
    harness.report(options, supply_conserved)
}

impl Harness {
    fn new(options: EconomicsOptions, workdir: &Path) -> Result<Self> {
        let mut agents = Vec::new();
        let mut add = |name: &str, strategy: Strategy, bond: u128| {
            let index = agents.len();
            agents.push(Agent {
                name: name.to_string(),
                key: super::bench_key("cairn bench economics agent", index),
                strategy,
                nonce: 0,
                bond,
                start: 0,
                offchain_cost: 0,
                value_received: 0,
                caught_epoch: None,
                cheats_from_epoch: 1,
            });
        };
        add(
            "honest storage provider",
            Strategy::HonestStorage,
            PROVIDER_BOND,
        );
        add(
            "honest storage provider 2",
            Strategy::HonestStorage,
            PROVIDER_BOND,
        );
        for percent in [1, 5, 10, 50] {
            add(
                &format!("dropper losing {percent} %"),
                Strategy::Dropper(percent),
                PROVIDER_BOND,
            );
        }
        add(
            "provider that exits before its slash",
            Strategy::ExitBeforeSlash,
            PROVIDER_BOND,
        );
        // Its wash deals lock collateral like any deal: a bond to cover them.
        add("self-dealer", Strategy::SelfDealer, 4 * PROVIDER_BOND);
        for i in 0..HONEST_COMPUTE {
            let name = if i == 0 {
                "honest compute provider".to_string()
            } else {
                format!("honest compute provider {}", i + 1)
            };
            add(&name, Strategy::HonestCompute, PROVIDER_BOND);
        }
        add(
            "lazy (copying) verifier",
            Strategy::LazyVerifier,
            PROVIDER_BOND,
        );
        // Colluding pairs holding 10 % and 25 % of all compute bond: with the others' bond B,
        // shares s₁ and s₂ of the total T = B / (1 − s₁ − s₂).
        let others = PROVIDER_BOND * (HONEST_COMPUTE as u128 + 1);
        let total = others * 100 / (100 - 10 - 25);
        for (pair, percent) in [(1u8, 10u128), (2, 25)] {
            let member = total * percent / 100 / 2;
            for side in ["a", "b"] {
                add(
                    &format!("colluding pair at {percent} % of bond ({side})"),
                    Strategy::Colluder(pair),
                    member,
                );
            }
        }
        add("storage client", Strategy::StorageClient, 0);
        add("honest client", Strategy::HonestClient, 0);
        add("free-job spammer", Strategy::FreeJobSpammer, 0);
        add(
            "client that withholds input",
            Strategy::WithholdingClient,
            0,
        );
        for agent in &mut agents {
            if agent.strategy == Strategy::ExitBeforeSlash {
                agent.cheats_from_epoch = options.epochs / 3;
            }
        }

        let validator = super::bench_key("cairn bench economics validator", options.seed as usize);
        let mut genesis = Genesis::dev();
        genesis.validators = vec![GenesisValidator {
            public_key: validator.public_key(),
            beneficiary: validator.address(),
            stake: U256::from(1_000 * TOKEN),
            vrf_key: cairn_primitives::beacon::vrf_public_key(&validator),
        }];
        genesis.alloc.clear();
        genesis.epoch_length = EPOCH_LENGTH;
        // Every agent's transactions fit in one block.
        genesis.gas_limit = 4_000_000_000;
        let mut contracts = ContractsConfig::dev();
        contracts.min_compute_stake = U256::from(100 * TOKEN);
        genesis.contracts = Some(contracts);
        for agent in &agents {
            genesis.alloc.insert(
                agent.key.address(),
                GenesisAccount {
                    balance: U256::from(100_000 * TOKEN),
                    ..Default::default()
                },
            );
        }
        let chain = Chain::open(workdir, genesis, Box::new(Sequential))?;
        let mut harness = Self {
            chain,
            validator,
            agents,
            deals: Vec::new(),
            jobs: BTreeMap::new(),
            committed: BTreeMap::new(),
            inputs: BTreeMap::new(),
            rng: StdRng::seed_from_u64(options.seed),
            counts: JobCounts::default(),
            posts: BTreeSet::new(),
            epochs: options.epochs,
            blocks: 0,
        };
        for i in 0..harness.agents.len() {
            harness.agents[i].start = harness.holdings(i)?;
        }
        Ok(harness)
    }

    fn height(&self) -> u64 {
        self.chain.head_header().height
    }

    fn epoch(&self) -> u64 {
        self.height() / EPOCH_LENGTH
    }

    fn tx(&mut self, agent: usize, to: Address, value: U256, call: impl SolCall) -> Transaction {
        let a = &mut self.agents[agent];
        // Under EIP-7825's cap of 2^24 gas a transaction.
        let tx = super::signed(&a.key, a.nonce, to, value, call.abi_encode(), 10_000_000);
        a.nonce += 1;
        tx
    }

    /// Produces the next block with `txs`: every one must be included (reverting is allowed:
    /// refused cheats revert).
    fn produce(&mut self, txs: &[Transaction]) -> Result<Vec<Receipt>> {
        let time = self.chain.head_header().timestamp_ms + 1000;
        let produced = self.chain.produce_block(&self.validator, time, txs)?;
        if let Some((hash, reason)) = produced.excluded.first() {
            return Err(BenchError::Check(format!(
                "an agent's transaction {hash} was left out: {reason:?}"
            )));
        }
        self.blocks += 1;
        let epoch = self.epoch();
        for receipt in &produced.receipts {
            self.note_penalties(receipt, epoch);
        }
        Ok(produced.receipts)
    }

    /// Marks the agents a receipt penalizes: fined for a missed proof, slashed for a lie or a
    /// timeout.
    fn note_penalties(&mut self, receipt: &Receipt, epoch: u64) {
        for log in &receipt.logs {
            let topics = log.topics.iter().copied();
            let penalized = if let Ok(fault) =
                StorageMarket::DealFaulted::decode_raw_log(topics.clone(), &log.data)
            {
                self.deals
                    .iter()
                    .find(|d| d.id == fault.id)
                    .map(|d| self.agents[d.provider].key.address())
            } else if let Ok(lie) =
                ComputeMarket::LiarSlashed::decode_raw_log(topics.clone(), &log.data)
            {
                Some(lie.liar)
            } else if let Ok(timeout) =
                ComputeMarket::TimeoutSlashed::decode_raw_log(topics, &log.data)
            {
                Some(timeout.party)
            } else {
                None
            };
            if let Some(address) = penalized
                && let Some(agent) = self.agents.iter_mut().find(|a| a.key.address() == address)
            {
                agent.caught_epoch.get_or_insert(epoch);
            }
        }
    }

    fn of(&self, strategy: impl Fn(Strategy) -> bool) -> Vec<usize> {
        (0..self.agents.len())
            .filter(|i| strategy(self.agents[*i].strategy))
            .collect()
    }

    fn agent_at(&self, address: Address) -> Option<usize> {
        self.agents.iter().position(|a| a.key.address() == address)
    }

    /// Epoch 0: bonds and adverts, then the deals, opened and accepted.
    fn setup(&mut self, deals_per_provider: usize) -> Result<()> {
        let mut txs = Vec::new();
        for i in 0..self.agents.len() {
            let strategy = self.agents[i].strategy;
            if !strategy.is_storage() && !strategy.is_compute() {
                continue;
            }
            let bond = U256::from(self.agents[i].bond);
            txs.push(self.tx(i, STAKING, bond, Staking::stakeCall {}));
            let storage = strategy.is_storage();
            let advert = ProviderRegistry::advertiseCall {
                storageCapacity: if storage { 1 << 30 } else { 0 },
                storagePricePerMiBEpoch: if storage { 1 } else { 0 },
                cores: if storage { 0 } else { 4 },
                memoryMiB: if storage { 0 } else { 1024 },
                fuelPerSecond: if storage { 0 } else { 100_000_000 },
                computePricePerFuel: if storage { 0 } else { FUEL_PRICE },
                peerId: Bytes::new(),
                addresses: String::new(),
            };
            txs.push(self.tx(i, REGISTRY, U256::ZERO, advert));
        }
        self.produce_checked(&txs)?;

        let client = self.of(|s| s == Strategy::StorageClient)[0];
        let providers = self.of(Strategy::is_storage);
        let epochs = self.epochs - 1;
        let mut opens = Vec::new();
        let mut planned = Vec::new();
        for &provider in &providers {
            let wash = self.agents[provider].strategy == Strategy::SelfDealer;
            let mut plan = vec![(client, DEAL_PRICE); deals_per_provider];
            if wash {
                plan.extend(vec![(provider, WASH_PRICE); WASH_DEALS]);
            }
            for (payer, price) in plan {
                let mut data = vec![0u8; (DEAL_CHUNKS * CHUNK) as usize];
                self.rng.fill(&mut data[..]);
                let lost = match self.agents[provider].strategy {
                    Strategy::Dropper(percent) => {
                        let count = (DEAL_CHUNKS * percent).div_ceil(100);
                        let mut lost = BTreeSet::new();
                        while (lost.len() as u64) < count {
                            lost.insert(self.rng.random_range(0..DEAL_CHUNKS));
                        }
                        lost
                    }
                    _ => BTreeSet::new(),
                };
                let call = StorageMarket::openDealCall {
                    provider: self.agents[provider].key.address(),
                    dataRoot: B256::from(*blake3::hash(&data).as_bytes()),
                    size: data.len() as u64,
                    epochs,
                    pricePerEpoch: price,
                };
                let escrow = U256::from(price) * U256::from(epochs);
                opens.push(self.tx(payer, STORAGE_MARKET, escrow, call));
                planned.push((provider, payer, data, lost, price));
            }
        }
        let receipts = self.produce_checked(&opens)?;
        let mut accepts = Vec::new();
        for (receipt, (provider, client, data, lost, price)) in receipts.iter().zip(planned) {
            let opened = receipt
                .event::<StorageMarket::DealOpened>()
                .ok_or_else(|| BenchError::Check("a deal was not opened".into()))?;
            accepts.push(self.tx(
                provider,
                STORAGE_MARKET,
                U256::ZERO,
                StorageMarket::acceptDealCall { id: opened.id },
            ));
            self.deals.push(Deal {
                id: opened.id,
                provider,
                client,
                data,
                lost,
                price,
            });
        }
        self.produce_checked(&accepts)?;
        Ok(())
    }

    fn produce_checked(&mut self, txs: &[Transaction]) -> Result<Vec<Receipt>> {
        let receipts = self.produce(txs)?;
        if let Some(failed) = receipts.iter().find(|r| !r.succeeded()) {
            return Err(BenchError::Check(format!(
                "a setup transaction failed: {}",
                cairn_reward_contracts::describe_revert(&failed.output, |a| a.to_string())
                    .unwrap_or_default()
            )));
        }
        Ok(receipts)
    }

    /// One block: every agent does what its strategy says on the committed state.
    fn step(&mut self) -> Result<()> {
        let next = self.height() + 1;
        let (epoch, offset) = (next / EPOCH_LENGTH, next % EPOCH_LENGTH);
        let mut txs = Vec::new();
        if offset == 1 && epoch >= 1 && epoch < self.epochs {
            self.storage_round(epoch, &mut txs)?;
        }
        if offset == SETTLE_OFFSET {
            self.settle_round(&mut txs)?;
        }
        // From epoch 2: draws weigh bonds at least a whole epoch old.
        if offset == 2 && epoch >= 2 && epoch + 3 <= self.epochs {
            self.post_jobs(&mut txs)?;
        }
        self.compute_round(next, &mut txs)?;
        let receipts = self.produce(&txs)?;
        for receipt in &receipts {
            if !self.posts.remove(&receipt.tx_hash) {
                continue;
            }
            match receipt.event::<ComputeMarket::JobPosted>() {
                Some(posted) => {
                    self.counts.posted += 1;
                    self.note_job(posted)?;
                }
                None => self.counts.refused += 1,
            }
        }
        Ok(())
    }

    /// The epoch's proofs, in its window, as each provider's strategy says.
    fn storage_round(&mut self, epoch: u64, txs: &mut Vec<Transaction>) -> Result<()> {
        for d in 0..self.deals.len() {
            let provider = self.deals[d].provider;
            let agent = &self.agents[provider];
            if agent.strategy == Strategy::ExitBeforeSlash && epoch >= agent.cheats_from_epoch {
                continue;
            }
            let id = self.deals[d].id;
            let deal = view(
                &self.chain,
                STORAGE_MARKET,
                StorageMarket::dealOfCall { id },
            )?;
            if deal.state != DealState::Active as u8
                || epoch < deal.startEpoch
                || epoch > deal.endEpoch
            {
                continue;
            }
            // The head is the epoch's first block, whose randomness is its seed.
            let challenges = view(
                &self.chain,
                STORAGE_MARKET,
                StorageMarket::challengesCall { id, epoch },
            )?;
            // Keeping the data this epoch costs the provider (the part it kept; wash data is
            // regenerated from a seed, for nothing).
            if self.deals[d].client != provider {
                let kept = DEAL_CHUNKS - self.deals[d].lost.len() as u64;
                let cost = self.deals[d].price * STORAGE_COST_PERCENT / 100 * u128::from(kept)
                    / u128::from(DEAL_CHUNKS);
                self.agents[provider].offchain_cost += cost as i128;
            }
            if challenges.iter().any(|c| self.deals[d].lost.contains(c)) {
                continue;
            }
            let mut chunks = Vec::new();
            let mut paths = Vec::new();
            for index in challenges {
                let proof = chunk_proof::prove(&self.deals[d].data, index)
                    .ok_or_else(|| BenchError::Check("a challenge past the data".into()))?;
                chunks.push(Bytes::from(proof.chunk));
                paths.push(Bytes::from(proof.path.concat()));
            }
            let call = StorageMarket::submitProofCall { id, chunks, paths };
            txs.push(self.tx(provider, STORAGE_MARKET, U256::ZERO, call));
        }
        // The provider that exits tries to take its bond and leave as soon as it stops.
        for i in self.of(|s| s == Strategy::ExitBeforeSlash) {
            if epoch == self.agents[i].cheats_from_epoch {
                let bonded = view(
                    &self.chain,
                    STAKING,
                    Staking::bondedOfCall {
                        staker: self.agents[i].key.address(),
                    },
                )?;
                txs.push(self.tx(
                    i,
                    STAKING,
                    U256::ZERO,
                    Staking::unbondCall { amount: bonded },
                ));
                txs.push(self.tx(
                    i,
                    REGISTRY,
                    U256::ZERO,
                    ProviderRegistry::withdrawAdvertCall {},
                ));
            }
        }
        Ok(())
    }

    /// Each deal's payer settles it after the proof window: fines for missed epochs reach the
    /// client, ended deals release their collateral.
    fn settle_round(&mut self, txs: &mut Vec<Transaction>) -> Result<()> {
        let epoch = self.epoch();
        for d in 0..self.deals.len() {
            let id = self.deals[d].id;
            let deal = view(
                &self.chain,
                STORAGE_MARKET,
                StorageMarket::dealOfCall { id },
            )?;
            let due = deal.state == DealState::Active as u8 && deal.settledEpoch + 1 < epoch;
            if due {
                let client = self.deals[d].client;
                txs.push(self.tx(
                    client,
                    STORAGE_MARKET,
                    U256::ZERO,
                    StorageMarket::settleCall { id },
                ));
            }
        }
        Ok(())
    }

    fn post_jobs(&mut self, txs: &mut Vec<Transaction>) -> Result<()> {
        let escrow = U256::from(u128::from(MAX_FUEL) * FUEL_PRICE);
        let honest = self.of(|s| s == Strategy::HonestClient)[0];
        let withholding = self.of(|s| s == Strategy::WithholdingClient)[0];
        for (client, count) in [(honest, JOBS_PER_EPOCH), (withholding, 1)] {
            for _ in 0..count {
                let mut input = vec![0u8; 2048];
                for byte in &mut input {
                    *byte = b"abc de fgh\n"[self.rng.random_range(0..11usize)];
                }
                let input_root = B256::from(*blake3::hash(&input).as_bytes());
                if client == honest {
                    self.inputs.insert(input_root, input);
                }
                let call = ComputeMarket::postJobCall {
                    moduleRoot: B256::from(*blake3::hash(WORDCOUNT).as_bytes()),
                    inputRoot: input_root,
                    maxFuel: MAX_FUEL,
                    memoryMiB: 64,
                    pricePerFuel: FUEL_PRICE,
                };
                let tx = self.tx(client, COMPUTE_MARKET, escrow, call);
                self.posts.insert(tx.hash());
                txs.push(tx);
            }
        }
        // Free jobs and jobs nobody can run: refused, at the spammer's gas.
        let spammer = self.of(|s| s == Strategy::FreeJobSpammer)[0];
        for (max_fuel, price) in [(MAX_FUEL, 0), (u64::MAX, 0)] {
            let call = ComputeMarket::postJobCall {
                moduleRoot: B256::from(*blake3::hash(WORDCOUNT).as_bytes()),
                inputRoot: B256::repeat_byte(0x5a),
                maxFuel: max_fuel,
                memoryMiB: 64,
                pricePerFuel: price,
            };
            let tx = self.tx(spammer, COMPUTE_MARKET, U256::ZERO, call);
            self.posts.insert(tx.hash());
            txs.push(tx);
        }
        Ok(())
    }

    fn note_job(&mut self, posted: ComputeMarket::JobPosted) -> Result<()> {
        let client = self
            .agent_at(posted.client)
            .ok_or_else(|| BenchError::Check("a job from no agent".into()))?;
        let input = self.inputs.get(&posted.inputRoot);
        let available = input.is_some();
        let truth = match input {
            Some(input) => {
                let result = cairn_wasm::run(
                    WORDCOUNT,
                    input,
                    Limits {
                        max_fuel: posted.maxFuel,
                        max_memory: (posted.memoryMiB as usize) << 20,
                        ..Limits::default()
                    },
                );
                Answer {
                    output_root: B256::from(result.output_root()),
                    fuel_used: result.fuel_used,
                    outcome: result.outcome as u8,
                }
            }
            None => Answer::UNAVAILABLE,
        };
        self.jobs.insert(
            posted.id,
            JobInfo {
                client,
                truth,
                available,
                audited: false,
            },
        );
        Ok(())
    }

    /// What `agent` answers in `slot` of `job`, and whether it ran the job to know it.
    fn answer(
        &self,
        agent: usize,
        id: B256,
        job: &ComputeMarket::Job,
        slot: usize,
    ) -> (Answer, bool) {
        let info = &self.jobs[&id];
        let honest = if info.available {
            (info.truth, true)
        } else {
            (Answer::UNAVAILABLE, false)
        };
        let partner_of = |pair: u8, party: &ComputeMarket::Party| {
            self.agent_at(party.who)
                .is_some_and(|p| self.agents[p].strategy == Strategy::Colluder(pair) && p != agent)
        };
        match self.agents[agent].strategy {
            Strategy::LazyVerifier if slot != slots::PROVIDER => (
                Answer::made_up(id, self.agents[agent].name.as_bytes()),
                false,
            ),
            Strategy::Colluder(pair) => {
                let fake = Answer::made_up(id, &[pair]);
                let provider = &job.parties[slots::PROVIDER];
                let verifier = &job.parties[slots::VERIFIER];
                let partner_lies = (partner_of(pair, provider)
                    && (!provider.revealed || Answer::of(&provider.result) == fake))
                    || (partner_of(pair, verifier) && Answer::of(&verifier.result) == fake);
                if slot == slots::PROVIDER || partner_lies {
                    (fake, false)
                } else {
                    honest
                }
            }
            _ => honest,
        }
    }

    /// Every live job: each agent owing a step takes it; stuck stages are expired; agreed
    /// results are audited.
    fn compute_round(&mut self, next: u64, txs: &mut Vec<Transaction>) -> Result<()> {
        let ids: Vec<B256> = self.jobs.keys().copied().collect();
        let keeper = self.of(|s| s == Strategy::HonestCompute)[0];
        for id in ids {
            let job = view(&self.chain, COMPUTE_MARKET, ComputeMarket::jobOfCall { id })?;
            if JobState::is_over(job.state) {
                self.close_job(id, &job);
                continue;
            }
            let mut acted = false;
            for (slot, step) in cairn_providers::owed_steps(&job) {
                let Some(agent) = self.agent_at(job.parties[slot].who) else {
                    continue;
                };
                acted = true;
                match step {
                    cairn_providers::Step::Commit => {
                        let (answer, ran) = self.answer(agent, id, &job, slot);
                        if ran {
                            self.charge_run(agent, answer.fuel_used);
                        }
                        let salt = B256::from(self.rng.random::<[u8; 32]>());
                        let commitment = job_commitment(
                            id,
                            self.agents[agent].key.address(),
                            answer.output_root,
                            answer.fuel_used,
                            answer.outcome,
                            salt,
                        );
                        self.committed.insert((id, agent), (answer, salt));
                        txs.push(self.tx(
                            agent,
                            COMPUTE_MARKET,
                            U256::ZERO,
                            ComputeMarket::commitCall { id, commitment },
                        ));
                    }
                    cairn_providers::Step::Reveal => {
                        let Some((answer, salt)) = self.committed.remove(&(id, agent)) else {
                            continue;
                        };
                        let call = ComputeMarket::revealCall {
                            id,
                            outputRoot: answer.output_root,
                            fuelUsed: answer.fuel_used,
                            outcome: answer.outcome,
                            salt,
                        };
                        txs.push(self.tx(agent, COMPUTE_MARKET, U256::ZERO, call));
                    }
                }
            }
            if job.state == JobState::Agreed as u8 {
                self.audit(id, &job, txs)?;
            }
            if !acted && next > job.deadlineBlock {
                txs.push(self.tx(
                    keeper,
                    COMPUTE_MARKET,
                    U256::ZERO,
                    ComputeMarket::expireCall { id },
                ));
            }
        }
        Ok(())
    }

    /// Honest providers that are no party audit an agreed job now and then; one that finds it
    /// wrong challenges it.
    fn audit(
        &mut self,
        id: B256,
        job: &ComputeMarket::Job,
        txs: &mut Vec<Transaction>,
    ) -> Result<()> {
        let Some(info) = self.jobs.get(&id) else {
            return Ok(());
        };
        if info.audited || !info.available {
            return Ok(());
        }
        let truth = info.truth;
        let agreed = Answer::of(&job.parties[slots::PROVIDER].result);
        let parties: BTreeSet<Address> = job.parties.iter().map(|p| p.who).collect();
        for auditor in self.of(|s| s == Strategy::HonestCompute) {
            if parties.contains(&self.agents[auditor].key.address())
                || self.rng.random_range(0..100u32) >= AUDIT_PERCENT
            {
                continue;
            }
            self.charge_run(auditor, truth.fuel_used);
            if agreed != truth {
                self.counts.challenged += 1;
                let call = ComputeMarket::challengeCall {
                    id,
                    outputRoot: truth.output_root,
                    fuelUsed: truth.fuel_used,
                    outcome: truth.outcome,
                };
                txs.push(self.tx(auditor, COMPUTE_MARKET, U256::ZERO, call));
                break;
            }
        }
        if let Some(info) = self.jobs.get_mut(&id) {
            info.audited = true;
        }
        Ok(())
    }

    fn charge_run(&mut self, agent: usize, fuel: u64) {
        let cost = u128::from(fuel) * FUEL_PRICE * COMPUTE_COST_PERCENT / 100;
        self.agents[agent].offchain_cost += cost as i128;
    }

    /// A job is over: the client is credited the value of a correct result.
    fn close_job(&mut self, id: B256, job: &ComputeMarket::Job) {
        let Some(info) = self.jobs.remove(&id) else {
            return;
        };
        let decided = Answer::of(&job.decided);
        if job.parties[slots::FIRST_REFEREE].who != Address::ZERO {
            self.counts.disputed += 1;
        }
        if job.providerPaid {
            self.counts.paid += 1;
            if decided == info.truth && info.available {
                let value = u128::from(job.maxFuel) * job.pricePerFuel * RESULT_VALUE_MULTIPLE;
                self.agents[info.client].value_received += value as i128;
            } else {
                self.counts.wrong_accepted += 1;
            }
        }
    }

    fn all_over(&self) -> Result<bool> {
        if !self.jobs.is_empty() {
            return Ok(false);
        }
        for deal in &self.deals {
            let d = view(
                &self.chain,
                STORAGE_MARKET,
                StorageMarket::dealOfCall { id: deal.id },
            )?;
            if d.state == DealState::Active as u8 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// An agent's tokens wherever they are: balance, bond, unbonding, claimable.
    fn holdings(&self, agent: usize) -> Result<i128> {
        let who = self.agents[agent].key.address();
        let stake = view(&self.chain, STAKING, Staking::stakeOfCall { staker: who })?;
        let storage = view(
            &self.chain,
            STORAGE_MARKET,
            StorageMarket::claimableCall(who),
        )?;
        let compute = view(
            &self.chain,
            COMPUTE_MARKET,
            ComputeMarket::claimableCall(who),
        )?;
        let owed = view(&self.chain, REWARD_POOL, RewardPool::owedCall(who))?;
        let balance = self.chain.sender_state(who)?.balance;
        let total = balance + stake.bonded + stake.unbonding + storage + compute + owed;
        Ok(total.saturating_to::<u128>() as i128)
    }

    /// Every token of every account there is.
    fn supply(&self) -> Result<U256> {
        let mut total = U256::ZERO;
        let holders = self
            .agents
            .iter()
            .map(|a| a.key.address())
            .chain([self.validator.address()])
            .chain(CONTRACT_HOLDERS);
        for holder in holders {
            total += self.chain.sender_state(holder)?.balance;
        }
        Ok(total)
    }

    fn profit(&self, agent: usize) -> Result<i128> {
        let a = &self.agents[agent];
        Ok(self.holdings(agent)? - a.start - a.offchain_cost + a.value_received)
    }

    fn report(&self, options: EconomicsOptions, supply_conserved: bool) -> Result<EconomicsReport> {
        let mean = |agents: &[usize]| -> Result<i128> {
            let mut sum = 0i128;
            for &a in agents {
                sum += self.profit(a)?;
            }
            Ok(sum / agents.len().max(1) as i128)
        };
        let honest_storage = mean(&self.of(|s| s == Strategy::HonestStorage))?;
        let honest_compute = mean(&self.of(|s| s == Strategy::HonestCompute))?;
        // The honest compute providers' mean profit, scaled to a bond of `tokens` whole CRN.
        let honest_at = |tokens: i128| honest_compute * tokens / (PROVIDER_BOND / TOKEN) as i128;
        let honest_client = mean(&self.of(|s| s == Strategy::HonestClient))?;
        let mut strategies = Vec::new();
        let mut push = |name: String,
                        role: &'static str,
                        profit: i128,
                        honest: i128,
                        caught: Option<u64>,
                        honest_strategy: bool| {
            strategies.push(StrategyReport {
                name,
                role,
                profit_wei: profit.to_string(),
                honest_profit_wei: honest.to_string(),
                caught_after_epochs: caught,
                below_honest: if honest_strategy {
                    profit > 0
                } else {
                    profit < honest
                },
            });
        };
        push(
            "honest storage provider".into(),
            "storage provider",
            honest_storage,
            honest_storage,
            None,
            true,
        );
        push(
            "honest compute provider".into(),
            "compute provider",
            honest_compute,
            honest_compute,
            None,
            true,
        );
        push(
            "honest client".into(),
            "client",
            honest_client,
            honest_client,
            None,
            true,
        );
        let caught = |agent: usize| {
            let a = &self.agents[agent];
            a.caught_epoch
                .map(|e| e.saturating_sub(a.cheats_from_epoch))
        };
        for (i, agent) in self.agents.iter().enumerate() {
            match agent.strategy {
                Strategy::Dropper(_) | Strategy::ExitBeforeSlash | Strategy::SelfDealer => {
                    push(
                        agent.name.clone(),
                        "storage provider",
                        self.profit(i)?,
                        honest_storage,
                        caught(i),
                        false,
                    );
                }
                Strategy::LazyVerifier => {
                    let bond = (agent.bond / TOKEN) as i128;
                    push(
                        agent.name.clone(),
                        "compute provider",
                        self.profit(i)?,
                        honest_at(bond),
                        caught(i),
                        false,
                    );
                }
                Strategy::FreeJobSpammer | Strategy::WithholdingClient => {
                    push(
                        agent.name.clone(),
                        "client",
                        self.profit(i)?,
                        honest_client,
                        caught(i),
                        false,
                    );
                }
                _ => {}
            }
        }
        // A pair is one strategy: both members' profit against the honest at their joint bond.
        for (pair, percent) in [(1u8, 10), (2, 25)] {
            let members = self.of(|s| s == Strategy::Colluder(pair));
            let mut profit = 0i128;
            let mut bond = 0i128;
            let mut first_caught: Option<u64> = None;
            for &m in &members {
                profit += self.profit(m)?;
                bond += (self.agents[m].bond / TOKEN) as i128;
                if let Some(c) = caught(m) {
                    first_caught = Some(first_caught.map_or(c, |f| f.min(c)));
                }
            }
            push(
                format!("colluding provider–verifier pair at {percent} % of compute bond"),
                "compute provider",
                profit,
                honest_at(bond),
                first_caught,
                false,
            );
        }
        let burnt = self.chain.sender_state(BURN)?.balance;
        let emitted = view(&self.chain, REWARD_POOL, RewardPool::distributedCall {})?;
        Ok(EconomicsReport {
            epochs: options.epochs,
            seed: options.seed,
            blocks: self.blocks,
            strategies,
            supply_conserved,
            burnt_wei: burnt.to_string(),
            emitted_wei: emitted.to_string(),
            jobs: self.counts.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short run CI plays: every cheat ends below honesty, honesty pays, and not a token
    /// appears or vanishes.
    #[test]
    fn no_cheating_strategy_beats_honesty_in_a_short_run() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| BenchError::Check(e.to_string()))?;
        let options = EconomicsOptions {
            epochs: 8,
            seed: 7,
            deals_per_provider: 6,
        };
        let report = run(options, dir.path())?;
        let table = crate::text::economics(&report);
        eprintln!("{table}");
        assert!(
            report.failures().is_empty(),
            "{:?}\n{table}",
            report.failures()
        );
        assert!(report.supply_conserved);
        assert!(report.jobs.paid > 0 && report.jobs.disputed > 0, "{table}");
        assert!(
            report.jobs.refused > 0,
            "the free jobs were refused: {table}"
        );
        Ok(())
    }
}
