//! `cairn bench state-root`: what the state commitment costs per changed leaf, at a given
//! number of accounts.
//!
//! It fills a fresh store with `accounts` funded accounts (committed in blocks of
//! [`FILL_BLOCK`] accounts, untimed), then commits `blocks` blocks that each change the balance
//! of `changes` accounts drawn at random among them, the way a block of transfers touches
//! senders and recipients spread over the whole state. Each block is timed in two steps, as the
//! node runs them: the new root ([`Store::prepare_state_root`]) and the block's one RocksDB
//! write batch ([`Store::commit_block`], the tree's nodes with the accounts).

use std::path::Path;
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::error::Result;
use cairn_primitives::{Address, B256, U256};
use cairn_storage::{BlockCommit, PendingState, Store};

/// Accounts written by one untimed block while the store is filled.
const FILL_BLOCK: usize = 50_000;

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct StateRootOptions {
    /// Funded accounts in the state before the measured blocks.
    pub accounts: usize,
    /// Measured blocks.
    pub blocks: usize,
    /// Accounts each measured block changes.
    pub changes: usize,
}

/// The figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateRootReport {
    /// Accounts in the state.
    pub accounts: usize,
    /// Measured blocks.
    pub blocks: usize,
    /// Leaves each block changed.
    pub changes_per_block: usize,
    /// Time to fill the store, ms (untimed part of the run, for the record).
    pub fill_ms: f64,
    /// Computing the roots of the measured blocks, ms in all.
    pub root_ms: f64,
    /// Their write batches, ms in all.
    pub commit_ms: f64,
    /// Root time per changed leaf, µs.
    pub root_us_per_leaf: f64,
    /// Commit time per changed leaf, µs.
    pub commit_us_per_leaf: f64,
    /// Both, µs per changed leaf.
    pub total_us_per_leaf: f64,
    /// The database's size on disk after the run (all files), bytes.
    pub database_bytes: u64,
    /// The process's peak resident set, bytes.
    pub peak_memory_bytes: u64,
}

fn account(index: usize) -> Address {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&(index as u64).to_be_bytes());
    bytes[8..12].copy_from_slice(b"acct");
    Address::from(bytes)
}

fn commit(store: &Store, height: u64, pending: &PendingState<'_>) -> Result<(f64, f64)> {
    let started = Instant::now();
    let tree = store.prepare_state_root(pending)?;
    let rooted = Instant::now();
    let hash = B256::from(*blake3::hash(&height.to_be_bytes()).as_bytes());
    let commit = BlockCommit {
        height,
        hash,
        block: &[],
        receipts: &[],
        tx_hashes: &[],
        finality: None,
        next_validators: None,
    };
    store.commit_block(&commit, pending, tree)?;
    let committed = Instant::now();
    Ok((
        (rooted - started).as_secs_f64() * 1e3,
        (committed - rooted).as_secs_f64() * 1e3,
    ))
}

/// Runs the benchmark in a store under `dir`.
pub fn run(options: StateRootOptions, dir: &Path) -> Result<StateRootReport> {
    let store = Store::open(dir)?;
    let mut height = 0;
    let fill_started = Instant::now();
    for first in (0..options.accounts.max(1)).step_by(FILL_BLOCK) {
        let view = store.state();
        let mut pending = PendingState::new(&view);
        for index in first..(first + FILL_BLOCK).min(options.accounts) {
            pending.add_balance(account(index), U256::from(1_000_000))?;
        }
        commit(&store, height, &pending)?;
        height += 1;
    }
    let fill_ms = fill_started.elapsed().as_secs_f64() * 1e3;

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut root_ms, mut commit_ms) = (0.0, 0.0);
    let changes = options.changes.min(options.accounts);
    for _ in 0..options.blocks {
        let view = store.state();
        let mut pending = PendingState::new(&view);
        let mut changed = std::collections::BTreeSet::new();
        while changed.len() < changes {
            changed.insert(rng.random_range(0..options.accounts));
        }
        for index in changed {
            pending.add_balance(account(index), U256::from(1))?;
        }
        let (root, write) = commit(&store, height, &pending)?;
        root_ms += root;
        commit_ms += write;
        height += 1;
    }
    let leaves = (options.blocks * changes).max(1) as f64;
    drop(store);
    Ok(StateRootReport {
        accounts: options.accounts,
        blocks: options.blocks,
        changes_per_block: changes,
        fill_ms,
        root_ms,
        commit_ms,
        root_us_per_leaf: 1e3 * root_ms / leaves,
        commit_us_per_leaf: 1e3 * commit_ms / leaves,
        total_us_per_leaf: 1e3 * (root_ms + commit_ms) / leaves,
        database_bytes: directory_bytes(dir),
        peak_memory_bytes: crate::peak_memory_bytes(),
    })
}

fn directory_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_changes_the_leaves_it_says() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(
            StateRootOptions {
                accounts: 1_000,
                blocks: 3,
                changes: 100,
            },
            dir.path(),
        )
        .unwrap();
        assert_eq!(report.changes_per_block, 100);
        assert!(report.root_ms > 0.0 && report.commit_ms > 0.0);
        assert!(report.database_bytes > 0);
    }
}
