//! Deleting compute jobs' data once the client has had its time to fetch the output.
//!
//! Every party records a job's module, input and output against the job in the chunk store
//! (`ChunkStore::hold_for_job`) before it fetches or computes them, and records the height at
//! which it found the job over (`ChunkStore::job_ended`). Every [`SWEEP_EVERY_BLOCKS`] blocks
//! the agent's [`JobDataSweep`] releases the jobs over for `keepJobDataSeconds`. The store
//! deletes only what a holder brought in and nobody else holds, so data the node had before a
//! job stays. Jobs that ended while the node was down, or while it watched them no longer, are
//! found by reading their state on chain. Each sweep reads at most [`SWEEP_BUDGET`] records,
//! going on from where the last one stopped, so the records take turns.

use std::collections::BTreeMap;

use cairn_chain::Chain;
use cairn_primitives::B256;
use cairn_reward_contracts::COMPUTE_MARKET;
use cairn_reward_contracts::bindings::ComputeMarket;
use cairn_storage::{ChunkStore, StorageError};

use crate::contracts::{JobState, view};
use crate::data::DataNet;
use crate::metrics::add;

/// Blocks between two sweeps.
pub const SWEEP_EVERY_BLOCKS: u64 = 32;
/// The most records one sweep reads (each may release a job or read its state on chain).
pub const SWEEP_BUDGET: usize = 256;

/// When the agent sweeps, and how long an ended job's data stays.
#[derive(Debug)]
pub struct JobDataSweep {
    kept_blocks: u64,
    next: u64,
    /// The last record the previous sweep read, if it stopped before the end.
    cursor: Option<[u8; 32]>,
}

impl JobDataSweep {
    /// Keeps an ended job's data `kept_s` seconds, at `block_time_ms` a block.
    pub fn new(kept_s: u64, block_time_ms: u64) -> Self {
        Self {
            kept_blocks: kept_s.saturating_mul(1000).div_ceil(block_time_ms.max(1)),
            next: 0,
            cursor: None,
        }
    }

    /// Sweeps at `head` if a sweep is due; `watched` are the jobs the agent follows, whose
    /// end it records itself. A failure is logged: it must not stop the agent's round.
    pub fn run(&mut self, net: &DataNet, chain: &Chain, head: u64, watched: &BTreeMap<B256, u64>) {
        if head < self.next {
            return;
        }
        self.next = head + SWEEP_EVERY_BLOCKS;
        let state_of = |id: B256| {
            view(chain, COMPUTE_MARKET, ComputeMarket::jobOfCall { id })
                .ok()
                .map(|job| job.state)
        };
        let swept = sweep(
            net.store(),
            head,
            self.kept_blocks,
            watched,
            state_of,
            &mut self.cursor,
        );
        match swept {
            Ok(released) => add(&net.metrics().job_blobs_released, released as u64),
            Err(error) => tracing::warn!(%error, "cannot sweep compute jobs' data"),
        }
    }
}

/// Reads the next [`SWEEP_BUDGET`] records after `cursor`: releases the jobs over for
/// `kept_blocks` at height `head`, and records the end of jobs not `watched` that `state_of`
/// finds over (`None`: cannot read it). Returns the blobs deleted.
fn sweep(
    store: &ChunkStore,
    head: u64,
    kept_blocks: u64,
    watched: &BTreeMap<B256, u64>,
    state_of: impl Fn(B256) -> Option<u8>,
    cursor: &mut Option<[u8; 32]>,
) -> Result<usize, StorageError> {
    let page = store.job_holds(cursor.as_ref(), SWEEP_BUDGET)?;
    *cursor = page
        .last()
        .filter(|_| page.len() == SWEEP_BUDGET)
        .map(|(job, _)| *job);
    let mut released = 0;
    for (job, hold) in page {
        let id = B256::from(job);
        let Some(hold) = hold else {
            tracing::warn!(job = %id, "a compute job's data record cannot be read; its data stays");
            continue;
        };
        match hold.ended_at {
            Some(ended) if head >= ended.saturating_add(kept_blocks) => {
                let blobs = store.release_job(&job)?;
                tracing::info!(job = %id, blobs, "compute job over; its data released");
                released += blobs;
            }
            Some(_) => {}
            None if watched.contains_key(&id) => {}
            None => {
                // State 0: the chain knows no such job, so nothing will end it.
                if state_of(id).is_some_and(|state| state == 0 || JobState::is_over(state)) {
                    store.job_ended(&job, head)?;
                }
            }
        }
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(store: &ChunkStore, root: &[u8; 32]) -> bool {
        store.status(root).unwrap().is_some()
    }

    /// A job's data goes `kept_blocks` after the job was found over, whether the agent saw it
    /// end or found it ended later; a live job's, an unreadable one's and the node's own stay.
    #[test]
    fn ended_jobs_data_goes_after_the_time_kept_and_live_jobs_data_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        let own = store.add(b"the node's own").unwrap();
        let (seen_ending, ended_while_down, unknown, live, unreadable) =
            ([1; 32], [2; 32], [3; 32], [4; 32], [5; 32]);
        let mut roots = BTreeMap::new();
        for (job, data) in [
            (seen_ending, &b"a"[..]),
            (ended_while_down, b"b"),
            (unknown, b"c"),
            (live, b"d"),
            (unreadable, b"e"),
        ] {
            let root = *blake3::hash(data).as_bytes();
            store.hold_for_job(&job, &root).unwrap();
            store.hold_for_job(&job, &own).unwrap();
            store.add(data).unwrap();
            roots.insert(job, root);
        }
        let watched = BTreeMap::from([(B256::from(live), 0)]);
        let state_of = |id: B256| match id.0 {
            job if job == ended_while_down => Some(JobState::Settled as u8),
            job if job == unknown => Some(0),
            job if job == live => Some(JobState::Assigned as u8),
            _ => None,
        };
        // The agent saw this one end at height 100.
        store.job_ended(&seen_ending, 100).unwrap();
        let sweep = |head| sweep(&store, head, 10, &watched, state_of, &mut None).unwrap();

        assert_eq!(sweep(105), 0);
        assert!(present(&store, &roots[&seen_ending]));
        assert_eq!(
            sweep(110),
            1,
            "the seen job's data goes 10 blocks after its end"
        );
        assert!(!present(&store, &roots[&seen_ending]));
        assert!(
            present(&store, &roots[&ended_while_down]),
            "found over at 105"
        );
        assert_eq!(sweep(114), 0);
        assert_eq!(sweep(115), 2, "the ended job's and the unknown job's");
        assert_eq!(sweep(10_000), 0);
        assert!(present(&store, &roots[&live]) && present(&store, &roots[&unreadable]));
        assert!(present(&store, &own));
        assert_eq!(store.job_holds(None, usize::MAX).unwrap().len(), 2);
    }

    /// One sweep reads at most its budget; the next sweep goes on from there.
    #[test]
    fn a_sweep_does_at_most_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        let jobs = SWEEP_BUDGET + 10;
        for n in 0..jobs as u32 {
            let mut job = [0; 32];
            job[..4].copy_from_slice(&n.to_be_bytes());
            let data = n.to_le_bytes();
            store
                .hold_for_job(&job, blake3::hash(&data).as_bytes())
                .unwrap();
            store.add(&data).unwrap();
            store.job_ended(&job, 0).unwrap();
        }
        let (none, mut cursor) = (BTreeMap::new(), None);
        let mut sweep = |head| sweep(&store, head, 0, &none, |_| None, &mut cursor).unwrap();
        assert_eq!(sweep(1), SWEEP_BUDGET);
        assert_eq!(sweep(2), 10);
        assert_eq!(sweep(3), 0);
        assert!(store.job_holds(None, usize::MAX).unwrap().is_empty());
    }
}
