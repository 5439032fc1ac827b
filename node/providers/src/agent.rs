//! The storage provider agent: registers the provider, advertises it, takes deals, fetches
//! their data and proves it every epoch.
//!
//! It acts on the committed state only, and remembers its deals in the chunk store, so a
//! restarted provider carries on: unfinished fetches resume from whichever peer holds the
//! data, and the current epoch is proven if it was not yet. Every transaction it sends is
//! re-sent after [`RESEND_AFTER_BLOCKS`] if the state has not moved; a proof that cannot be
//! made or sent is logged as an error and counted in the node's metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_p2p::PeerId;
use cairn_reward_contracts::bindings::{ComputeMarket, ProviderRegistry, Staking, StorageMarket};
use cairn_reward_contracts::{COMPUTE_MARKET, REGISTRY, STAKING, STORAGE_MARKET};
use tokio::sync::{broadcast, mpsc, watch};

use crate::adverts::Advert;
use crate::compute::ComputeWork;
use crate::contracts::{DealState, proposed_deal, view};
use crate::data::DataNet;
use crate::job_data::JobDataSweep;
use crate::metrics::bump;
use crate::serve::Offer;
use cairn_chain::Chain;
use cairn_mempool::TxPool;
use cairn_primitives::clock::now_ms;

use crate::error::DataError;
use crate::sender::{RESEND_AFTER_BLOCKS, TxSender};
use crate::warnings::{Check, Warning};
use cairn_primitives::{AccountKey, Address, Bytes, U256};

/// How often the provider's advert is gossiped.
pub const ADVERT_INTERVAL: Duration = Duration::from_secs(5);
/// Stages a compute job can go through, each at most the stage timeout: how far back a
/// restarted provider looks for its jobs.
const JOB_STAGES: u64 = 8;
/// Blocks after which a proof not yet included is sent again.
const PROOF_RESEND_AFTER_BLOCKS: u64 = 2;
const MIB: u64 = 1 << 20;

/// What a provider offers, from its `node.json`.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// The provider's account key (it stakes, accepts deals, proves and posts results).
    pub key: AccountKey,
    /// Storage offered, in bytes (0: no storage).
    pub storage_capacity: u64,
    /// Price in wei per MiB per epoch; offers below it are refused.
    pub storage_price: u128,
    /// Compute offered (0 cores: no compute).
    pub compute: ComputeOffer,
    /// Bonded at start if the bond is below the minimum of the roles offered.
    pub stake: U256,
}

/// What a compute provider offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComputeOffer {
    /// Jobs run at once.
    pub cores: u32,
    /// Memory a job may use, MiB.
    pub memory_mib: u32,
    /// Fuel the provider runs per second (advertised; measured with `cairn bench compute`).
    pub fuel_per_second: u64,
    /// Price in wei per unit of fuel.
    pub price_per_fuel: u128,
    /// How long a job's module, input and output stay after the job ends, in seconds (the
    /// client fetches the output in that time); then they are deleted.
    pub job_data_kept_s: u64,
}

/// A deal's price per epoch at `price` wei per MiB per epoch (a part MiB counts whole).
pub fn price_per_epoch(price: u128, size: u64) -> u128 {
    price.saturating_mul(u128::from(size.div_ceil(MIB).max(1)))
}

/// Transactions in flight, each remembered with the height it was sent at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Sent {
    Stake,
    Advertise,
    Accept([u8; 32]),
    Proof([u8; 32], u64),
    Settle([u8; 32]),
}

/// What every deal's round reads once: the epoch, its proof window and the faults that end a
/// deal (each `None` when it could not be read).
struct DealRules {
    epoch: u64,
    window: Option<(u64, u64)>,
    max_faults: Option<u32>,
}

/// The agent's state.
pub struct Agent {
    chain: Arc<Chain>,
    net: Arc<DataNet>,
    sender: TxSender,
    settings: ProviderSettings,
    offers: mpsc::Receiver<Offer>,
    sent: BTreeMap<Sent, u64>,
    /// Compute jobs, once registered as a compute provider.
    compute: Option<ComputeWork>,
    /// Deletes ended jobs' data.
    job_data: JobDataSweep,
    /// Staked and registered on chain: only then is the provider advertised.
    registered: bool,
    /// Storage capacity not taken by deals, as of the last round (an EVM call, made there on
    /// the blocking pool; the advert reads it).
    storage_free: u64,
    /// The bond and the minimum of the roles offered, as of the last round.
    bond: (U256, U256),
    /// Proofs that could not be made or sent, by deal: the epoch and the error.
    proof_errors: BTreeMap<[u8; 32], (u64, String)>,
}

impl Agent {
    /// An agent for the provider in `settings`, taking offers from `offers`.
    pub fn new(
        pool: TxPool,
        net: Arc<DataNet>,
        settings: ProviderSettings,
        offers: mpsc::Receiver<Offer>,
    ) -> Self {
        net.report().watch(settings.key.address());
        let chain = pool.chain().clone();
        let job_data = JobDataSweep::new(
            settings.compute.job_data_kept_s,
            chain.genesis().block_time_ms,
        );
        Self {
            chain,
            sender: TxSender::new(pool),
            net,
            settings,
            offers,
            sent: BTreeMap::new(),
            compute: None,
            job_data,
            registered: false,
            storage_free: 0,
            bond: (U256::ZERO, U256::ZERO),
            proof_errors: BTreeMap::new(),
        }
    }

    fn me(&self) -> Address {
        self.settings.key.address()
    }

    fn height(&self) -> u64 {
        self.chain.head().map(|h| h.height).unwrap_or(0)
    }

    /// Whether `what` was sent recently enough to wait for it; if not, it is marked as sent
    /// now and the caller sends it.
    fn should_send(&mut self, what: Sent) -> bool {
        let height = self.height();
        // A proof has a window of a few blocks: one lost in the mempool is sent again sooner.
        let resend_after = match what {
            Sent::Proof(..) => PROOF_RESEND_AFTER_BLOCKS,
            _ => RESEND_AFTER_BLOCKS,
        };
        match self.sent.get(&what) {
            Some(at) if height < at + resend_after => false,
            _ => {
                self.sent.insert(what, height);
                true
            }
        }
    }

    /// Runs until `stopped` turns true: a round on the committed state at the start and after
    /// each committed block (skipping to the newest if it falls behind). Each round (EVM calls,
    /// chunk-store reads and proofs) runs on the blocking pool, never on the async workers.
    pub async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let mut committed = self.chain.subscribe();
        let mut round_due = true;
        let mut adverts = tokio::time::interval(ADVERT_INTERVAL);
        adverts.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (_, mut offers) = mpsc::channel(1);
        std::mem::swap(&mut offers, &mut self.offers);
        let mut agent = self;
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                Some(offer) = offers.recv() => {
                    let taken = tokio::task::spawn_blocking(move || {
                        let answer = agent.on_offer(offer.peer, offer.deal);
                        (agent, offer, answer)
                    });
                    let Ok((back, offer, answer)) = taken.await else {
                        tracing::error!("ALERT: the provider agent failed on an offer; it stops");
                        return;
                    };
                    agent = back;
                    if let Err(reason) = &answer {
                        bump(&agent.net.metrics().offers_refused);
                        tracing::info!(deal = %hex::encode(offer.deal), %reason, "refused a storage deal");
                    }
                    let _ = offer.reply.send(answer);
                }
                block = committed.recv(), if !round_due => match block {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => round_due = true,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = std::future::ready(()), if round_due => {
                    round_due = false;
                    let round = tokio::task::spawn_blocking(move || {
                        let result = agent.on_tick();
                        (agent, result)
                    });
                    match round.await {
                        Ok((back, result)) => {
                            agent = back;
                            if let Err(error) = result {
                                tracing::warn!(%error, "storage provider round failed");
                            }
                        }
                        Err(error) => {
                            tracing::error!(%error, "ALERT: the provider agent failed; it stops");
                            return;
                        }
                    }
                }
                _ = adverts.tick(), if agent.registered => {
                    if let Err(error) = agent.advertise().await {
                        tracing::debug!(%error, "advert not published");
                    }
                }
            }
        }
    }

    /// One round on the committed state, then the warnings it found: those that are new are
    /// logged at WARN.
    fn on_tick(&mut self) -> Result<(), DataError> {
        let mut found = Vec::new();
        let result = self.round(&mut found);
        let report = self.net.report();
        // A round cut short saw only part of what it checks: what it did not get to stands.
        let new = if result.is_ok() {
            report.replace_warnings(found)
        } else {
            report.add_warnings(found)
        };
        for warning in new {
            tracing::warn!(
                kind = warning.kind.name(),
                subject = %warning.subject,
                "provider at risk of a slash: {}",
                warning.message
            );
        }
        result
    }

    /// Registration, then compute jobs and every deal; what risks a slash goes to `found`.
    fn round(&mut self, found: &mut Vec<Warning>) -> Result<(), DataError> {
        let height = self.height();
        self.sent
            .retain(|_, at| height < *at + 2 * RESEND_AFTER_BLOCKS);
        self.registered = self.ensure_registered()?;
        let (bonded, minimum) = self.bond;
        found.extend(Check::bond_near_minimum(
            bonded.saturating_to(),
            minimum.saturating_to(),
        ));
        if !self.registered {
            return Ok(());
        }
        self.storage_free = self.free_capacity()?;
        if self.settings.storage_capacity > 0 {
            match crate::warnings::free_disk(self.net.store().path()) {
                Ok(free) => found.extend(Check::disk_below_capacity(free, self.storage_free)),
                Err(error) => tracing::debug!(%error, "cannot read the disk's free space"),
            }
        }
        let offer = self.settings.compute;
        if offer.cores > 0 {
            if self.compute.is_none() {
                let timeout = view(
                    &self.chain,
                    COMPUTE_MARKET,
                    ComputeMarket::stageTimeoutBlocksCall {},
                )?;
                // A job lives a few stages (commit, verify, reveal, a panel's two): jobs
                // posted before this many blocks are over.
                self.compute = Some(ComputeWork::new(
                    height.saturating_sub(JOB_STAGES * timeout),
                    offer.cores,
                ));
            }
            if let Some(work) = &mut self.compute {
                let jobs = work.round(&self.net, &self.sender, &self.settings.key)?;
                for job in jobs.iter().filter(|job| job.owed) {
                    found.extend(Check::stage_deadline(
                        &job.id.to_string(),
                        job.deadline_block,
                        height,
                    ));
                }
                self.net.report().set_jobs(jobs);
            }
        }
        // Also once compute is no longer offered: the jobs of before still hold data.
        let no_jobs = BTreeMap::new();
        let watched = self.compute.as_ref().map_or(&no_jobs, ComputeWork::watched);
        self.job_data.run(&self.net, &self.chain, height, watched);
        let deals = self.net.store().deals()?;
        if deals.is_empty() {
            return Ok(());
        }
        let epoch = height / self.chain.genesis().epoch_length;
        // Without the window no deal is proven this round, but deals are still accepted and
        // settled; the fault limit only feeds a warning.
        let window = view(
            &self.chain,
            STORAGE_MARKET,
            StorageMarket::proofWindowCall { epoch },
        )
        .map(|window| (window.opens, window.closes))
        .inspect_err(|error| tracing::warn!(%error, "cannot read the proof window"))
        .ok();
        let max_faults = view(&self.chain, STORAGE_MARKET, StorageMarket::maxFaultsCall {})
            .inspect_err(|error| tracing::debug!(%error, "cannot read the fault limit"))
            .ok();
        let rules = DealRules {
            epoch,
            window,
            max_faults,
        };
        self.proof_errors.retain(|_, (at, _)| *at >= epoch);
        for (deal, root) in deals {
            if let Err(error) = self.tend(deal, root, &rules, found) {
                tracing::warn!(deal = %hex::encode(deal), %error, "storage deal round failed");
            }
        }
        Ok(())
    }

    /// Stakes and advertises on chain until both show; whether they do.
    fn ensure_registered(&mut self) -> Result<bool, DataError> {
        let me = self.me();
        let stake = view(&self.chain, STAKING, Staking::stakeOfCall { staker: me })?;
        let mut minimum = U256::ZERO;
        if self.settings.storage_capacity > 0 {
            minimum = view(&self.chain, STAKING, Staking::minStorageStakeCall {})?;
        }
        if self.settings.compute.cores > 0 {
            minimum = minimum.max(view(&self.chain, STAKING, Staking::minComputeStakeCall {})?);
        }
        self.bond = (stake.bonded, minimum);
        if stake.bonded < minimum {
            if self.should_send(Sent::Stake) {
                let value = self.settings.stake.max(minimum - stake.bonded);
                self.sender
                    .send_call(&self.settings.key, STAKING, value, Staking::stakeCall {})?;
                tracing::info!(provider = %me, "staking as a provider");
            }
            return Ok(false);
        }
        let advert = view(
            &self.chain,
            REGISTRY,
            ProviderRegistry::advertOfCall { provider: me },
        )?;
        let peer_id = self.net.peer_id().to_string();
        let compute = self.settings.compute;
        if advert.storageCapacity != self.settings.storage_capacity
            || advert.storagePricePerMiBEpoch != self.settings.storage_price
            || advert.cores != compute.cores
            || advert.memoryMiB != compute.memory_mib
            || advert.fuelPerSecond != compute.fuel_per_second
            || advert.computePricePerFuel != compute.price_per_fuel
            || advert.peerId.as_ref() != peer_id.as_bytes()
        {
            if self.should_send(Sent::Advertise) {
                let call = ProviderRegistry::advertiseCall {
                    storageCapacity: self.settings.storage_capacity,
                    storagePricePerMiBEpoch: self.settings.storage_price,
                    cores: compute.cores,
                    memoryMiB: compute.memory_mib,
                    fuelPerSecond: compute.fuel_per_second,
                    computePricePerFuel: compute.price_per_fuel,
                    peerId: Bytes::from(peer_id.into_bytes()),
                    addresses: String::new(),
                };
                self.sender
                    .send_call(&self.settings.key, REGISTRY, U256::ZERO, call)?;
                tracing::info!(provider = %me, "registering as a provider");
            }
            return Ok(false);
        }
        Ok(true)
    }

    fn free_capacity(&self) -> Result<u64, DataError> {
        let used = view(
            &self.chain,
            STORAGE_MARKET,
            StorageMarket::usedCapacityCall(self.me()),
        )?;
        Ok(self.settings.storage_capacity.saturating_sub(used))
    }

    async fn advertise(&self) -> Result<(), DataError> {
        let status = self.net.fetcher().network_status().await?;
        let advert = Advert {
            chain_id: self.chain.genesis().chain_id,
            provider: self.me(),
            peer_id: status.peer_id.to_string(),
            addresses: status
                .listen_addrs
                .iter()
                .take(8)
                .map(|a| a.to_string())
                .collect(),
            storage_capacity: self.settings.storage_capacity,
            storage_free: self.storage_free,
            storage_price: self.settings.storage_price,
            cores: self.settings.compute.cores,
            memory_mib: self.settings.compute.memory_mib,
            fuel_per_second: self.settings.compute.fuel_per_second,
            compute_price: self.settings.compute.price_per_fuel,
            sequence: now_ms(),
        };
        self.net
            .adverts()
            .publish(advert.sign(&self.settings.key))
            .await
    }

    /// Decides on an offered deal; if it is taken, its data is fetched from `peer`. EVM calls
    /// and chunk-store work: the caller runs it on the blocking pool.
    fn on_offer(&mut self, peer: PeerId, id: [u8; 32]) -> Result<(), DataError> {
        let deal = proposed_deal(&self.chain, id)?;
        if deal.provider != self.me() {
            return Err(DataError::NotOurDeal {
                named: deal.provider,
                me: self.me(),
            });
        }
        let asked = price_per_epoch(self.settings.storage_price, deal.size);
        if deal.pricePerEpoch < asked {
            return Err(DataError::Underpriced {
                offered: deal.pricePerEpoch,
                asked,
                size: deal.size,
            });
        }
        let deals = self.net.store().deals()?;
        if deals.iter().any(|(known, _)| *known == id) {
            return Ok(());
        }
        let mut reserved = 0u64;
        for (other, root) in &deals {
            let held = self.net.store().status(root)?;
            let proposed = view(
                &self.chain,
                STORAGE_MARKET,
                StorageMarket::dealOfCall {
                    id: (*other).into(),
                },
            )
            .map(|d| d.state == DealState::Proposed as u8)
            .unwrap_or(false);
            if proposed {
                reserved += held.map_or(0, |s| s.size);
            }
        }
        let free = self.free_capacity()?;
        if deal.size > free.saturating_sub(reserved) {
            return Err(DataError::NoRoom {
                free: free.saturating_sub(reserved),
                needed: deal.size,
            });
        }
        let root = deal.dataRoot.0;
        let held = self
            .net
            .store()
            .take_deal(&id, &root, deal.size)?
            .complete();
        // The next round accepts the deal once the data is complete.
        if held {
            tracing::info!(deal = %hex::encode(id), size = deal.size, "took a storage deal for data this node holds");
        } else {
            tracing::info!(deal = %hex::encode(id), size = deal.size, %peer, "took a storage deal; fetching its data");
            self.net
                .fetcher()
                .clone()
                .fetch_in_background(root, deal.size, vec![peer]);
        }
        Ok(())
    }

    fn accept(&mut self, deal: [u8; 32]) {
        if !self.should_send(Sent::Accept(deal)) {
            return;
        }
        let call = StorageMarket::acceptDealCall { id: deal.into() };
        match self
            .sender
            .send_call(&self.settings.key, STORAGE_MARKET, U256::ZERO, call)
        {
            Ok(_) => {
                bump(&self.net.metrics().deals_accepted);
                tracing::info!(deal = %hex::encode(deal), "data stored; accepting the deal");
            }
            Err(error) => {
                tracing::warn!(deal = %hex::encode(deal), %error, "cannot accept the deal")
            }
        }
    }

    /// Moves one deal along: fetch and accept while proposed, prove while active (noting in
    /// `found` what risks a fault), forget once over.
    fn tend(
        &mut self,
        id: [u8; 32],
        root: [u8; 32],
        rules: &DealRules,
        found: &mut Vec<Warning>,
    ) -> Result<(), DataError> {
        let deal = view(
            &self.chain,
            STORAGE_MARKET,
            StorageMarket::dealOfCall { id: id.into() },
        )?;
        match deal.state {
            s if s == DealState::Proposed as u8 => {
                let complete = self
                    .net
                    .store()
                    .status(&root)?
                    .is_some_and(|s| s.complete());
                if complete {
                    self.accept(id);
                } else if !self.net.fetcher().fetching(&root) {
                    // Taken before a restart, or its first fetch failed (which removed what
                    // it began): take it again, then fetch it from whoever holds it; the next
                    // round accepts once it is complete.
                    self.net.store().take_deal(&id, &root, deal.size)?;
                    self.net
                        .fetcher()
                        .clone()
                        .start_fetch(root, Some(deal.size), deal.size);
                }
            }
            s if s == DealState::Active as u8 => {
                let epoch = rules.epoch;
                if epoch > deal.endEpoch {
                    self.settle(id);
                    return Ok(());
                }
                let Some(window) = rules.window else {
                    return Ok(());
                };
                self.prove(id, root, &deal, epoch, window)?;
                let subject = format!("0x{}", hex::encode(id));
                if let Some(max_faults) = rules.max_faults {
                    found.extend(Check::faults_near_limit(&subject, deal.faults, max_faults));
                }
                if epoch >= deal.startEpoch {
                    found.extend(Check::proof_late(
                        &subject,
                        epoch,
                        deal.lastProvenEpoch,
                        self.height(),
                        window,
                    ));
                }
                // A send reported failed may have landed all the same.
                if self
                    .proof_errors
                    .get(&id)
                    .is_some_and(|(at, _)| deal.lastProvenEpoch >= *at)
                {
                    self.proof_errors.remove(&id);
                }
                if let Some((at, error)) = self.proof_errors.get(&id) {
                    found.push(Check::proof_failed(&subject, *at, error));
                }
            }
            state => {
                self.net.store().release_deal(&id)?;
                tracing::info!(deal = %hex::encode(id), state = DealState::name(state), "storage deal over; data released");
            }
        }
        Ok(())
    }

    fn prove(
        &mut self,
        id: [u8; 32],
        root: [u8; 32],
        deal: &StorageMarket::Deal,
        epoch: u64,
        (_, closes): (u64, u64),
    ) -> Result<(), DataError> {
        // The head must be in the epoch already (its seed is recorded by the epoch's first
        // block), and the next block still in the epoch's proof window.
        let height = self.height();
        if height >= closes {
            return Ok(());
        }
        if epoch < deal.startEpoch || epoch > deal.endEpoch || deal.lastProvenEpoch >= epoch {
            return Ok(());
        }
        if !self.should_send(Sent::Proof(id, epoch)) {
            return Ok(());
        }
        match self.send_proof(id, root, epoch) {
            Ok(()) => {
                self.proof_errors.remove(&id);
                bump(&self.net.metrics().proofs_sent);
                tracing::info!(deal = %hex::encode(id), epoch, "sent storage proof");
            }
            Err(error) => {
                self.proof_errors.insert(id, (epoch, error.to_string()));
                bump(&self.net.metrics().proofs_failed);
                tracing::error!(deal = %hex::encode(id), epoch, %error, "ALERT: cannot prove a storage deal; retrying in {RESEND_AFTER_BLOCKS} blocks");
            }
        }
        Ok(())
    }

    /// Ends a deal whose last epoch is over: the client collects its refunds, the provider its
    /// collateral.
    fn settle(&mut self, id: [u8; 32]) {
        if !self.should_send(Sent::Settle(id)) {
            return;
        }
        let call = StorageMarket::settleCall { id: id.into() };
        match self
            .sender
            .send_call(&self.settings.key, STORAGE_MARKET, U256::ZERO, call)
        {
            Ok(_) => tracing::info!(deal = %hex::encode(id), "deal over; settling it"),
            Err(error) => tracing::warn!(deal = %hex::encode(id), %error, "cannot settle the deal"),
        }
    }

    fn send_proof(&self, id: [u8; 32], root: [u8; 32], epoch: u64) -> Result<(), DataError> {
        let indices = view(
            &self.chain,
            STORAGE_MARKET,
            StorageMarket::challengesCall {
                id: id.into(),
                epoch,
            },
        )?;
        let mut chunks = Vec::with_capacity(indices.len());
        let mut paths = Vec::with_capacity(indices.len());
        for index in indices {
            let proof = self.net.store().prove(&root, index)?;
            chunks.push(Bytes::from(proof.chunk));
            paths.push(Bytes::from(proof.path.concat()));
        }
        let call = StorageMarket::submitProofCall {
            id: id.into(),
            chunks,
            paths,
        };
        self.sender
            .send_call(&self.settings.key, STORAGE_MARKET, U256::ZERO, call)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deal_is_priced_per_started_mib() {
        assert_eq!(price_per_epoch(10, 0), 10);
        assert_eq!(price_per_epoch(10, 1), 10);
        assert_eq!(price_per_epoch(10, MIB), 10);
        assert_eq!(price_per_epoch(10, MIB + 1), 20);
        assert_eq!(price_per_epoch(u128::MAX, 64 * MIB), u128::MAX);
    }
}
