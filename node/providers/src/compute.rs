//! A compute provider's jobs: found in committed blocks, run with bounded concurrency.
//!
//! The agent reads the `ComputeMarket` events of every committed block. A `JobPosted` naming
//! this provider makes it run the job; a `ResultSubmitted` naming it as verifier makes it
//! re-execute and attest; a `JobDisputed` naming it as referee makes it re-execute and resolve.
//! Module and input are fetched as blobs from whoever holds them; a provider's output is put in
//! its chunk store, so the client can fetch it by root. Before any work the job's state is read
//! again, so a job already answered (after a restart, say) is not answered twice.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use alloy_sol_types::SolCall;
use cairn_reward_contracts::COMPUTE_MARKET;
use cairn_reward_contracts::bindings::ComputeMarket;
use tokio::sync::{Semaphore, mpsc};

use crate::contracts::{JobState, view};
use crate::data::DataNet;
use crate::error::DataError;
use crate::metrics::bump;
use crate::sender::TxSender;
use cairn_primitives::{AccountKey, Address, B256, U256};
use cairn_wasm::{JobResult, Limits, Outcome};

/// Jobs waiting for a free core; more are dropped (and the provider times out on them).
pub const MAX_QUEUED_JOBS: usize = 256;
/// Blocks read per round, so a node far behind catches up without stalling the agent.
const BLOCKS_PER_ROUND: u64 = 64;
/// The largest module a provider fetches.
pub const MAX_MODULE_SIZE: u64 = 16 << 20;
/// The largest input a provider fetches.
pub const MAX_INPUT_SIZE: u64 = 256 << 20;
/// How long a provider tries to fetch a job's module and input. Data nobody supplies counts
/// as an invalid module: every honest party reaches the same verdict on it.
const FETCH_PATIENCE: Duration = Duration::from_secs(30);

/// What this provider is asked to do for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Run it and post the result.
    Provider,
    /// Re-execute it and attest.
    Verifier,
    /// Re-execute it and settle a dispute.
    Referee,
}

/// Attempts at answering a job before the provider gives up on it.
const MAX_ATTEMPTS: u32 = 3;

/// One job to answer.
#[derive(Debug, Clone, Copy)]
struct Task {
    job: B256,
    role: Role,
    attempt: u32,
}

/// The compute side of the agent.
pub struct ComputeWork {
    scanned: u64,
    queue: VecDeque<Task>,
    cores: Arc<Semaphore>,
    max_memory: usize,
    retry: mpsc::Sender<Task>,
    retries: mpsc::Receiver<Task>,
    /// Jobs this provider is a party to, with the deadline of their stage as last read: one
    /// stuck past its deadline (a silent party) is expired, which pays the parties that did
    /// answer.
    watched: BTreeMap<B256, u64>,
    /// `expire` transactions sent, with the height they were sent at.
    expiring: BTreeMap<B256, u64>,
}

impl ComputeWork {
    /// Starts reading events at `from` (blocks before it hold only expired jobs).
    pub fn new(from: u64, cores: u32, memory_mib: u32) -> Self {
        let (retry, retries) = mpsc::channel(MAX_QUEUED_JOBS);
        Self {
            scanned: from.saturating_sub(1),
            queue: VecDeque::new(),
            cores: Arc::new(Semaphore::new(cores.max(1) as usize)),
            max_memory: (memory_mib.max(1) as usize) << 20,
            retry,
            retries,
            watched: BTreeMap::new(),
            expiring: BTreeMap::new(),
        }
    }

    /// Reads the next committed blocks for jobs naming `me`, then starts queued jobs on free
    /// cores.
    pub fn round(
        &mut self,
        net: &Arc<DataNet>,
        sender: &TxSender,
        key: &AccountKey,
    ) -> Result<(), DataError> {
        let chain = sender.chain();
        let me = key.address();
        let head = chain.head()?.height;
        while let Ok(task) = self.retries.try_recv() {
            self.queue.push_back(task);
        }
        let last = head.min(self.scanned + BLOCKS_PER_ROUND);
        for height in self.scanned + 1..=last {
            for receipt in chain.receipts(height)?.unwrap_or_default() {
                for log in receipt.logs.iter().filter(|l| l.address == COMPUTE_MARKET) {
                    let Some((job, role)) = task_for(me, log) else {
                        continue;
                    };
                    if self.queue.len() >= MAX_QUEUED_JOBS {
                        bump(&net.metrics().jobs_dropped);
                        tracing::error!(%job, "ALERT: compute queue full; dropping a job");
                        continue;
                    }
                    self.queue.push_back(Task {
                        job,
                        role,
                        attempt: 1,
                    });
                    if self.watched.len() < 4 * MAX_QUEUED_JOBS {
                        self.watched.insert(job, 0);
                    }
                }
            }
            self.scanned = height;
        }
        self.expire_stuck(head, sender, key);
        while !self.queue.is_empty() {
            let Ok(permit) = self.cores.clone().try_acquire_owned() else {
                break;
            };
            let Some(task) = self.queue.pop_front() else {
                break;
            };
            let Task { job, role, attempt } = task;
            let (net, sender, key) = (net.clone(), sender.clone(), key.clone());
            let retry = self.retry.clone();
            let limits = Limits {
                max_memory: self.max_memory,
                ..Limits::default()
            };
            tokio::spawn(async move {
                match answer(&net, &sender, &key, job, role, limits).await {
                    Ok(Some(result)) => {
                        bump(&net.metrics().jobs_done);
                        tracing::info!(%job, ?role, outcome = result.outcome.name(), fuel = result.fuel_used, "compute job answered");
                    }
                    Ok(None) => {}
                    Err(error) => {
                        bump(&net.metrics().jobs_failed);
                        tracing::error!(%job, ?role, attempt, %error, "ALERT: cannot answer a compute job");
                        drop(permit);
                        if attempt < MAX_ATTEMPTS {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            let _ = retry.try_send(Task {
                                attempt: attempt + 1,
                                ..task
                            });
                        }
                        return;
                    }
                }
                drop(permit);
            });
        }
        Ok(())
    }
}

impl ComputeWork {
    /// Sends `expire` for watched jobs whose stage passed its deadline; forgets jobs that are
    /// over.
    fn expire_stuck(&mut self, head: u64, sender: &TxSender, key: &AccountKey) {
        let chain = sender.chain();
        let due: Vec<B256> = self
            .watched
            .iter()
            .filter(|(_, deadline)| head > **deadline)
            .map(|(job, _)| *job)
            .collect();
        for id in due {
            let Ok(job) = view(chain, COMPUTE_MARKET, ComputeMarket::jobOfCall { id }) else {
                continue;
            };
            if JobState::is_over(job.state) {
                self.watched.remove(&id);
                self.expiring.remove(&id);
                continue;
            }
            self.watched.insert(id, job.deadlineBlock);
            // Expiring a stage slashes the party it waits for: never this provider itself.
            let me = key.address();
            let waits_for = if job.state == JobState::Assigned as u8 {
                job.provider
            } else if job.state == JobState::Resulted as u8 {
                job.verifier
            } else {
                job.referee
            };
            if waits_for == me {
                continue;
            }
            let recently = self
                .expiring
                .get(&id)
                .is_some_and(|at| head < at + crate::sender::RESEND_AFTER_BLOCKS);
            if head > job.deadlineBlock && !recently {
                self.expiring.insert(id, head);
                let call = ComputeMarket::expireCall { id };
                match sender.send_call(key, COMPUTE_MARKET, U256::ZERO, call) {
                    Ok(_) => {
                        tracing::warn!(job = %id, "a party to a job stayed silent; expiring it")
                    }
                    Err(error) => tracing::debug!(job = %id, %error, "cannot expire a job"),
                }
            }
        }
    }
}

/// The work an event asks of `me`, if any.
fn task_for(me: Address, log: &cairn_primitives::Log) -> Option<(B256, Role)> {
    use alloy_sol_types::SolEvent;
    let topics = log.topics.iter().copied();
    if let Ok(posted) = ComputeMarket::JobPosted::decode_raw_log(topics.clone(), &log.data) {
        return (posted.provider == me).then_some((posted.id, Role::Provider));
    }
    if let Ok(result) = ComputeMarket::ResultSubmitted::decode_raw_log(topics.clone(), &log.data) {
        return (result.verifier == me).then_some((result.id, Role::Verifier));
    }
    if let Ok(dispute) = ComputeMarket::JobDisputed::decode_raw_log(topics, &log.data) {
        return (dispute.referee == me).then_some((dispute.id, Role::Referee));
    }
    None
}

/// Runs one job in `role` and sends the answer; `None` if the job no longer waits for it.
async fn answer(
    net: &Arc<DataNet>,
    sender: &TxSender,
    key: &AccountKey,
    id: B256,
    role: Role,
    limits: Limits,
) -> Result<Option<JobResult>, DataError> {
    let me = key.address();
    // EVM calls run on the blocking pool, off the async workers.
    let chain = sender.chain().clone();
    let job = tokio::task::spawn_blocking(move || {
        view(&chain, COMPUTE_MARKET, ComputeMarket::jobOfCall { id })
    })
    .await??;
    let waiting = match role {
        Role::Provider => job.state == JobState::Assigned as u8 && job.provider == me,
        Role::Verifier => job.state == JobState::Resulted as u8 && job.verifier == me,
        Role::Referee => job.state == JobState::Disputed as u8 && job.referee == me,
    };
    if !waiting {
        return Ok(None);
    }
    let limits = Limits {
        max_fuel: job.maxFuel,
        ..limits
    };
    let module = net
        .fetcher()
        .fetch_whole(job.moduleRoot.0, MAX_MODULE_SIZE, FETCH_PATIENCE)
        .await;
    let input = net
        .fetcher()
        .fetch_whole(job.inputRoot.0, MAX_INPUT_SIZE, FETCH_PATIENCE)
        .await;
    let result = match (module, input) {
        (Ok(module), Ok(input)) => {
            tokio::task::spawn_blocking(move || cairn_wasm::run(&module, &input, limits)).await?
        }
        (module, input) => {
            let error = module
                .err()
                .or(input.err())
                .map(|e| e.to_string())
                .unwrap_or_default();
            tracing::warn!(job = %id, error, "a job's module or input is unavailable: answering invalid module");
            JobResult {
                outcome: Outcome::InvalidModule,
                fuel_used: 0,
                output: Vec::new(),
            }
        }
    };
    let mut root = result.output_root();
    let (outcome, fuel) = (result.outcome as u8, result.fuel_used);
    if role == Role::Provider {
        let store = net.store().clone();
        let output = result.output.clone();
        tokio::task::spawn_blocking(move || store.add(&output)).await??;
        root = net.conduct().output_root(root);
    }
    // The three answers take the same arguments: the result as this provider computed it.
    let (output_root, fuel_used) = (B256::from(root), fuel);
    let input = match role {
        Role::Provider => ComputeMarket::submitResultCall {
            id,
            outputRoot: output_root,
            fuelUsed: fuel_used,
            outcome,
        }
        .abi_encode(),
        Role::Verifier => ComputeMarket::attestCall {
            id,
            outputRoot: output_root,
            fuelUsed: fuel_used,
            outcome,
        }
        .abi_encode(),
        Role::Referee => ComputeMarket::resolveCall {
            id,
            outputRoot: output_root,
            fuelUsed: fuel_used,
            outcome,
        }
        .abi_encode(),
    };
    let (sender, key) = (sender.clone(), key.clone());
    tokio::task::spawn_blocking(move || {
        sender.send_input(&key, COMPUTE_MARKET, U256::ZERO, input.into())
    })
    .await??;
    Ok(Some(result))
}
