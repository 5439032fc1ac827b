//! A compute provider's jobs: found in committed blocks, run with bounded concurrency, answered
//! by commit and reveal.
//!
//! The agent reads the `ComputeMarket` events of every committed block. A `JobPosted`,
//! `VerifierDrawn` or `PanelDrawn` naming this provider puts the job on its watch list. Each
//! round reads every watched job's state and does what the job waits for from this provider:
//! run the job and commit to the result (a hash of it with a salt only this provider can
//! derive), or reveal it once the commitments are in. Module and input are fetched as blobs from
//! whoever holds them; every party puts the output it computed in its chunk store, so the
//! client can fetch the decided output by root however the job ended: from the provider, or,
//! when the provider lied, from the verifier and referees that told the truth. A result is
//! remembered until revealed; after a restart it is computed again (jobs are deterministic)
//! and the salt derived again, so nothing needs to be stored. A job
//! stuck past its deadline on another party is expired, which pays the parties that answered.
//!
//! Every party records the job's module, input and output against the job in its chunk store
//! before fetching or computing them, and when the job is over; [`crate::job_data`] deletes
//! that data later.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_sol_types::SolCall;
use cairn_reward_contracts::bindings::ComputeMarket;
use cairn_reward_contracts::{COMPUTE_MARKET, job_commitment};
use tokio::sync::Semaphore;

use crate::contracts::{JobState, slots, view};
use crate::data::DataNet;
use crate::error::DataError;
use crate::metrics::{add, bump};
use crate::sender::{RESEND_AFTER_BLOCKS, TxSender};
use crate::warnings::WatchedJob;
use cairn_primitives::{AccountKey, Address, B256, U256};
use cairn_wasm::{Limits, Outcome};

/// Jobs watched at once; more are dropped (and the provider times out on them).
pub const MAX_WATCHED_JOBS: usize = 1024;
/// Blocks read per round, so a node far behind catches up without stalling the agent.
const BLOCKS_PER_ROUND: u64 = 64;
/// The largest module a provider fetches.
pub const MAX_MODULE_SIZE: u64 = 16 << 20;
/// The largest input a provider fetches.
pub const MAX_INPUT_SIZE: u64 = 256 << 20;
/// How long a provider tries to fetch a job's module and input. Data nobody supplies is
/// answered "input unavailable", which slashes nobody.
const FETCH_PATIENCE: Duration = Duration::from_secs(30);

/// What a job waits for from this provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Run it and commit to the result.
    Commit,
    /// Reveal the result committed to.
    Reveal,
}

/// A result as the chain compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    output_root: B256,
    fuel_used: u64,
    outcome: u8,
}

/// The answer of a party that could not get the module or the input.
const UNAVAILABLE: Answer = Answer {
    output_root: B256::ZERO,
    fuel_used: 0,
    outcome: Outcome::InputUnavailable as u8,
};

/// The party slots a job in `state` waits on, and for which step; `None` for a state that
/// waits on no party (agreed, over).
fn stage(state: JobState) -> Option<(&'static [usize], Step)> {
    Some(match state {
        JobState::Assigned => (&[slots::PROVIDER], Step::Commit),
        JobState::Verifying => (&[slots::VERIFIER], Step::Commit),
        JobState::Revealing => (&[slots::PROVIDER, slots::VERIFIER], Step::Reveal),
        JobState::PanelCommit => (&REFEREES, Step::Commit),
        JobState::PanelReveal => (&REFEREES, Step::Reveal),
        _ => return None,
    })
}

const REFEREES: [usize; 3] = [
    slots::FIRST_REFEREE,
    slots::FIRST_REFEREE + 1,
    slots::FIRST_REFEREE + 2,
];

/// Whether the party in `slot` still owes `step`.
fn owes(job: &ComputeMarket::Job, slot: usize, step: Step) -> bool {
    let party = &job.parties[slot];
    // A referee whose collateral is gone was dropped from the panel.
    let on_panel = slot < slots::FIRST_REFEREE || party.collateral > 0;
    let pending = match step {
        Step::Commit => party.commitment == B256::ZERO,
        Step::Reveal => party.commitment != B256::ZERO && !party.revealed,
    };
    party.who != Address::ZERO && on_panel && pending
}

/// The party slots the job waits on now, each with the step it owes.
pub fn owed_steps(job: &ComputeMarket::Job) -> Vec<(usize, Step)> {
    let Some((candidates, step)) = JobState::from_code(job.state).and_then(stage) else {
        return Vec::new();
    };
    candidates
        .iter()
        .filter(|&&slot| owes(job, slot, step))
        .map(|&slot| (slot, step))
        .collect()
}

/// What the job waits for from `me`, if anything.
pub fn step_for(job: &ComputeMarket::Job, me: Address) -> Option<Step> {
    owed_steps(job)
        .into_iter()
        .find(|(slot, _)| job.parties[*slot].who == me)
        .map(|(_, step)| step)
}

/// Whether the job's current stage waits on a party other than `me` (whom an `expire` past
/// the deadline would slash), or is agreed and `me` its provider (an `expire` then pays
/// everyone; the provider, paid most, sends it, so that the parties do not all pay gas for it).
fn waits_on_another(job: &ComputeMarket::Job, me: Address) -> bool {
    let Some(state) = JobState::from_code(job.state) else {
        return false;
    };
    if state == JobState::Agreed {
        return job.parties[slots::PROVIDER].who == me;
    }
    stage(state).is_some_and(|(candidates, step)| {
        candidates
            .iter()
            .any(|&slot| job.parties[slot].who != me && owes(job, slot, step))
    })
}

/// The salt this provider commits with for job `id`: derived from its secret key, so nobody
/// else can compute it, and the same after a restart.
fn salt(key: &AccountKey, id: B256) -> B256 {
    let mut material = Vec::with_capacity(64);
    material.extend_from_slice(key.secret().as_slice());
    material.extend_from_slice(id.as_slice());
    B256::from(blake3::derive_key(
        "cairn compute commitment salt v1",
        &material,
    ))
}

/// The compute side of the agent.
pub struct ComputeWork {
    scanned: u64,
    cores: Arc<Semaphore>,
    /// Jobs this provider is a party to, with the deadline of their stage as last read.
    watched: BTreeMap<B256, u64>,
    /// Results computed and not yet revealed (filled by the job tasks).
    answers: Arc<Mutex<BTreeMap<B256, Answer>>>,
    /// Jobs a task is working on now.
    busy: Arc<Mutex<BTreeSet<B256>>>,
    /// Steps and `expire` transactions sent, with the height they were sent at.
    sent: BTreeMap<(B256, u8), u64>,
}

impl ComputeWork {
    /// Starts reading events at `from` (blocks before it hold only expired jobs).
    pub fn new(from: u64, cores: u32) -> Self {
        Self {
            scanned: from.saturating_sub(1),
            cores: Arc::new(Semaphore::new(cores.max(1) as usize)),
            watched: BTreeMap::new(),
            answers: Arc::default(),
            busy: Arc::default(),
            sent: BTreeMap::new(),
        }
    }

    /// The jobs this provider is a party to and watches, with their stage's deadline.
    pub fn watched(&self) -> &BTreeMap<B256, u64> {
        &self.watched
    }

    /// Reads the next committed blocks for jobs naming `me`, then moves every watched job on.
    /// Returns the jobs watched, each with its stage's deadline and whether this provider
    /// owes the stage a step.
    pub fn round(
        &mut self,
        net: &Arc<DataNet>,
        sender: &TxSender,
        key: &AccountKey,
    ) -> Result<Vec<WatchedJob>, DataError> {
        let chain = sender.chain();
        let me = key.address();
        let head = chain.head()?.height;
        let last = head.min(self.scanned + BLOCKS_PER_ROUND);
        for height in self.scanned + 1..=last {
            for receipt in chain.receipts(height)?.unwrap_or_default() {
                for log in receipt.logs.iter().filter(|l| l.address == COMPUTE_MARKET) {
                    let Some(job) = job_naming(me, log) else {
                        continue;
                    };
                    if self.watched.len() >= MAX_WATCHED_JOBS {
                        bump(&net.metrics().jobs_dropped);
                        tracing::error!(%job, "ALERT: too many compute jobs at once; dropping one");
                        continue;
                    }
                    self.watched.insert(job, 0);
                }
            }
            self.scanned = height;
        }
        self.sent
            .retain(|_, at| head < *at + 2 * RESEND_AFTER_BLOCKS);
        let watched: Vec<B256> = self.watched.keys().copied().collect();
        let mut report = Vec::new();
        for id in watched {
            let Ok(job) = view(chain, COMPUTE_MARKET, ComputeMarket::jobOfCall { id }) else {
                continue;
            };
            if JobState::is_over(job.state) {
                self.watched.remove(&id);
                if let Ok(mut answers) = self.answers.lock() {
                    answers.remove(&id);
                }
                // The clock of its data starts (see `job_data`); bookkeeping only.
                if let Err(error) = net.store().job_ended(&id.0, head) {
                    tracing::warn!(job = %id, %error, "cannot record that a job ended");
                }
                continue;
            }
            self.watched.insert(id, job.deadlineBlock);
            let step = step_for(&job, me);
            report.push(WatchedJob {
                id,
                state: JobState::name(job.state).to_string(),
                deadline_block: job.deadlineBlock,
                owed: step.is_some(),
            });
            if let Some(step) = step {
                self.act(net, sender, key, id, &job, step, head);
            } else if head > job.deadlineBlock && waits_on_another(&job, me) {
                self.expire(sender, key, id, head);
            }
        }
        Ok(report)
    }

    /// Starts a task for `step` unless one is running or was sent recently.
    #[allow(clippy::too_many_arguments)]
    fn act(
        &mut self,
        net: &Arc<DataNet>,
        sender: &TxSender,
        key: &AccountKey,
        id: B256,
        job: &ComputeMarket::Job,
        step: Step,
        head: u64,
    ) {
        let mark = (id, job.state);
        if self
            .sent
            .get(&mark)
            .is_some_and(|at| head < at + RESEND_AFTER_BLOCKS)
        {
            return;
        }
        let Ok(mut busy) = self.busy.lock() else {
            return;
        };
        if busy.contains(&id) {
            return;
        }
        let Ok(permit) = self.cores.clone().try_acquire_owned() else {
            return;
        };
        busy.insert(id);
        drop(busy);
        self.sent.insert(mark, head);
        let task = JobTask {
            net: net.clone(),
            sender: sender.clone(),
            key: key.clone(),
            id,
            job: job.clone(),
            step,
            answers: self.answers.clone(),
        };
        let busy = self.busy.clone();
        tokio::spawn(async move {
            match task.run().await {
                Ok(answer) => {
                    let metrics = task.net.metrics();
                    bump(&metrics.jobs_done);
                    if step == Step::Commit {
                        add(&metrics.fuel_used, answer.fuel_used);
                        let slot = task
                            .job
                            .parties
                            .iter()
                            .position(|party| party.who == task.key.address());
                        match slot {
                            Some(crate::contracts::slots::PROVIDER) => bump(&metrics.jobs_run),
                            Some(crate::contracts::slots::VERIFIER) => {
                                bump(&metrics.jobs_verified);
                            }
                            Some(_) => bump(&metrics.jobs_disputed),
                            None => {}
                        }
                    }
                    tracing::info!(job = %id, ?step, outcome = Outcome::from_code(answer.outcome).map_or("unknown", Outcome::name), fuel = answer.fuel_used, "compute job answered");
                }
                Err(error) => {
                    bump(&task.net.metrics().jobs_failed);
                    tracing::error!(job = %id, ?step, %error, "ALERT: cannot answer a compute job; retrying in {RESEND_AFTER_BLOCKS} blocks");
                }
            }
            if let Ok(mut busy) = busy.lock() {
                busy.remove(&id);
            }
            drop(permit);
        });
    }

    /// Sends `expire` for a job whose stage passed its deadline waiting on another party.
    fn expire(&mut self, sender: &TxSender, key: &AccountKey, id: B256, head: u64) {
        // State 0 never names a live job: it marks the `expire` sends.
        let mark = (id, 0);
        if self
            .sent
            .get(&mark)
            .is_some_and(|at| head < at + RESEND_AFTER_BLOCKS)
        {
            return;
        }
        self.sent.insert(mark, head);
        let call = ComputeMarket::expireCall { id };
        match sender.send_call(key, COMPUTE_MARKET, U256::ZERO, call) {
            Ok(_) => tracing::info!(job = %id, "a job's stage passed its deadline; moving it on"),
            Err(error) => tracing::debug!(job = %id, %error, "cannot expire a job"),
        }
    }
}

/// The job an event names `me` a party to, if any.
fn job_naming(me: Address, log: &cairn_primitives::Log) -> Option<B256> {
    use alloy_sol_types::SolEvent;
    let topics = log.topics.iter().copied();
    if let Ok(posted) = ComputeMarket::JobPosted::decode_raw_log(topics.clone(), &log.data) {
        return (posted.provider == me).then_some(posted.id);
    }
    if let Ok(drawn) = ComputeMarket::VerifierDrawn::decode_raw_log(topics.clone(), &log.data) {
        return (drawn.verifier == me).then_some(drawn.id);
    }
    if let Ok(panel) = ComputeMarket::PanelDrawn::decode_raw_log(topics, &log.data) {
        return panel.referees.contains(&me).then_some(panel.id);
    }
    None
}

/// Records that job `id` holds `root`. Bookkeeping only: a failure leaves the data in place
/// for good and is logged, but must not keep the job from being answered.
fn hold_for_job(store: &cairn_storage::ChunkStore, id: [u8; 32], root: &[u8; 32]) {
    if let Err(error) = store.hold_for_job(&id, root) {
        tracing::warn!(job = %B256::from(id), %error, "cannot record a job's data; it will not be deleted when the job ends");
    }
}

/// One step of one job, run off the agent's round.
struct JobTask {
    net: Arc<DataNet>,
    sender: TxSender,
    key: AccountKey,
    id: B256,
    job: ComputeMarket::Job,
    step: Step,
    answers: Arc<Mutex<BTreeMap<B256, Answer>>>,
}

impl JobTask {
    async fn run(&self) -> Result<Answer, DataError> {
        let remembered = self
            .answers
            .lock()
            .ok()
            .and_then(|a| a.get(&self.id).copied());
        let salt = salt(&self.key, self.id);
        let commitment_of = |answer: &Answer| {
            job_commitment(
                self.id,
                self.key.address(),
                answer.output_root,
                answer.fuel_used,
                answer.outcome,
                salt,
            )
        };
        let mut answer = match remembered {
            Some(answer) => answer,
            None => self.compute().await?,
        };
        if self.step == Step::Reveal {
            // Computed again after a restart, the answer differs from the one committed only if
            // the data's availability changed since: then "input unavailable" is what was
            // committed.
            let committed = self
                .job
                .parties
                .iter()
                .find(|p| p.who == self.key.address())
                .map(|p| p.commitment);
            if committed != Some(commitment_of(&answer)) {
                answer = UNAVAILABLE;
            }
        }
        if let Ok(mut answers) = self.answers.lock() {
            answers.insert(self.id, answer);
        }
        let input = match self.step {
            Step::Commit => ComputeMarket::commitCall {
                id: self.id,
                commitment: commitment_of(&answer),
            }
            .abi_encode(),
            Step::Reveal => ComputeMarket::revealCall {
                id: self.id,
                outputRoot: answer.output_root,
                fuelUsed: answer.fuel_used,
                outcome: answer.outcome,
                salt,
            }
            .abi_encode(),
        };
        let (sender, key) = (self.sender.clone(), self.key.clone());
        tokio::task::spawn_blocking(move || {
            sender.send_input(&key, COMPUTE_MARKET, U256::ZERO, input.into())
        })
        .await??;
        Ok(answer)
    }

    /// Fetches the module and input and runs the job under its limits. Every party keeps the
    /// output in its chunk store for the client.
    async fn compute(&self) -> Result<Answer, DataError> {
        let job = &self.job;
        let limits = Limits {
            max_fuel: job.maxFuel,
            max_memory: (job.memoryMiB as usize) << 20,
            ..Limits::default()
        };
        // What this node lacks of the job's data is the job's to delete when it ends.
        let store = self.net.store().clone();
        let (id, roots) = (self.id.0, [job.moduleRoot.0, job.inputRoot.0]);
        tokio::task::spawn_blocking(move || {
            for root in &roots {
                hold_for_job(&store, id, root);
            }
        })
        .await?;
        let fetcher = self.net.fetcher();
        let module = fetcher
            .fetch_whole(job.moduleRoot.0, MAX_MODULE_SIZE, FETCH_PATIENCE)
            .await;
        let input = fetcher
            .fetch_whole(job.inputRoot.0, MAX_INPUT_SIZE, FETCH_PATIENCE)
            .await;
        let (module, input) = match (module, input) {
            (Ok(module), Ok(input)) => (module, input),
            (module, input) => {
                let error = module.err().or(input.err()).map(|e| e.to_string());
                tracing::warn!(job = %self.id, error, "a job's module or input is unavailable: answering so");
                return Ok(UNAVAILABLE);
            }
        };
        let result =
            tokio::task::spawn_blocking(move || cairn_wasm::run(&module, &input, limits)).await?;
        let provider = job.parties[slots::PROVIDER].who == self.key.address();
        let output = if provider {
            self.net.conduct().output(result.output)
        } else {
            result.output
        };
        let root = *blake3::hash(&output).as_bytes();
        let store = self.net.store().clone();
        let id = self.id.0;
        let kept = tokio::task::spawn_blocking(move || {
            hold_for_job(&store, id, &root);
            store.add(&output)
        })
        .await?;
        match kept {
            Ok(_) => {}
            // The client fetches the output from the provider: one that cannot keep it does
            // not answer, and tries again next round.
            Err(error) if provider => return Err(error.into()),
            // A verifier's or referee's copy only backs the provider's up: its answer does not
            // wait for it (a full disk would otherwise get it slashed for silence).
            Err(error) => {
                tracing::warn!(job = %self.id, %error, "cannot keep a job's output; answering without it");
            }
        }
        Ok(Answer {
            output_root: B256::from(root),
            fuel_used: result.fuel_used,
            outcome: result.outcome as u8,
        })
    }
}
