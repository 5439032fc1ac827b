//! Warnings before a slash: what the provider agent finds, each round, that will cost the
//! provider its collateral or its roles unless the operator acts.
//!
//! The agent works the warnings out from the committed state and the disk ([`Check`]), hands
//! them to its [`AgentReport`], which keeps the current list and tells the agent which are new
//! (those are logged at WARN once); the node's metrics count them by kind, its dashboard shows
//! them in a banner, and `cairn provider status` lists them (RPC `cairn_providerWarnings`).
//! The report also holds the compute jobs the agent is watching, for the dashboard.

use std::sync::{Mutex, OnceLock};

use cairn_primitives::{Address, B256};
use serde::{Deserialize, Serialize};

/// A proof is late once no more than this share of its window is left (in halves: half the
/// window).
const LATE_WINDOW_DIVISOR: u64 = 2;
/// The bond is near its minimum within this percent above it.
const BOND_HEADROOM_PERCENT: u64 = 20;
/// A compute stage's deadline is close within this many blocks.
pub const STAGE_DEADLINE_BLOCKS: u64 = 5;

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// A deal's proof for this epoch is not on chain and more than half its window is gone.
    ProofLate,
    /// The agent could not make or send a deal's proof.
    ProofFailed,
    /// A deal is one fault from ending with its termination fee.
    FaultsNearLimit,
    /// The bond is close to the minimum of the provider's roles.
    BondNearMinimum,
    /// The disk has less room than the capacity still offered.
    DiskBelowCapacity,
    /// A compute job's stage that this provider owes ends soon.
    StageDeadline,
}

impl WarningKind {
    /// Every kind, in a fixed order (the metric labels).
    pub const ALL: [WarningKind; 6] = [
        WarningKind::ProofLate,
        WarningKind::ProofFailed,
        WarningKind::FaultsNearLimit,
        WarningKind::BondNearMinimum,
        WarningKind::DiskBelowCapacity,
        WarningKind::StageDeadline,
    ];

    /// The kind's name, as in JSON and in the metric's `kind` label.
    pub fn name(self) -> &'static str {
        match self {
            WarningKind::ProofLate => "proof_late",
            WarningKind::ProofFailed => "proof_failed",
            WarningKind::FaultsNearLimit => "faults_near_limit",
            WarningKind::BondNearMinimum => "bond_near_minimum",
            WarningKind::DiskBelowCapacity => "disk_below_capacity",
            WarningKind::StageDeadline => "stage_deadline",
        }
    }
}

/// One warning: its kind, what it is about (a deal or job id in hex, or empty for the
/// provider as a whole) and what to do, in words.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// The deal or job (0x hex), or empty.
    pub subject: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// The warnings of the provider a node runs, as the RPC gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderWarnings {
    /// The provider's account (none: the node runs no provider).
    pub provider: Option<Address>,
    /// Its warnings as of the agent's last round.
    pub warnings: Vec<Warning>,
}

/// A compute job the agent watches: this provider is a party to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchedJob {
    /// The job id.
    pub id: B256,
    /// Its stage (`JobState::name`).
    pub state: String,
    /// The block its stage ends at.
    pub deadline_block: u64,
    /// Whether this provider owes the stage a step.
    pub owed: bool,
}

/// What the provider agent found in its last round: the warnings and the jobs it watches,
/// replaced after every round.
#[derive(Debug, Default)]
pub struct AgentReport {
    provider: OnceLock<Address>,
    current: Mutex<Vec<Warning>>,
    jobs: Mutex<Vec<WatchedJob>>,
}

impl AgentReport {
    /// The provider the warnings are about, once its agent runs.
    pub fn provider(&self) -> Option<Address> {
        self.provider.get().copied()
    }

    /// Names the provider whose agent fills the warnings.
    pub(crate) fn watch(&self, provider: Address) {
        let _ = self.provider.set(provider);
    }

    /// The provider and its warnings.
    pub fn provider_warnings(&self) -> ProviderWarnings {
        ProviderWarnings {
            provider: self.provider(),
            warnings: self.warnings(),
        }
    }

    /// The compute jobs the agent watches.
    pub fn jobs(&self) -> Vec<WatchedJob> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_jobs(&self, jobs: Vec<WatchedJob>) {
        *self.jobs.lock().unwrap_or_else(|p| p.into_inner()) = jobs;
    }

    /// The warnings of the agent's last round, sorted.
    pub fn warnings(&self) -> Vec<Warning> {
        self.lock().clone()
    }

    /// How many warnings of `kind` there are now.
    pub fn count(&self, kind: WarningKind) -> usize {
        self.lock().iter().filter(|w| w.kind == kind).count()
    }

    /// Replaces the warnings with `found`; returns those that were not there before (by kind
    /// and subject), for the agent to log once.
    pub(crate) fn replace_warnings(&self, found: Vec<Warning>) -> Vec<Warning> {
        self.update(found, false)
    }

    /// Adds `found` to the warnings, replacing those of the same kind and subject (a round cut
    /// short); returns those that are new.
    pub(crate) fn add_warnings(&self, found: Vec<Warning>) -> Vec<Warning> {
        self.update(found, true)
    }

    fn update(&self, mut found: Vec<Warning>, keep: bool) -> Vec<Warning> {
        let same = |a: &Warning, b: &Warning| a.kind == b.kind && a.subject == b.subject;
        let mut current = self.lock();
        let new = found
            .iter()
            .filter(|w| !current.iter().any(|c| same(c, w)))
            .cloned()
            .collect();
        if keep {
            let kept: Vec<Warning> = current
                .iter()
                .filter(|c| !found.iter().any(|w| same(c, w)))
                .cloned()
                .collect();
            found.extend(kept);
        }
        found.sort();
        found.dedup_by(|a, b| same(a, b));
        *current = found;
        new
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Warning>> {
        // Every change is a whole replacement: a poisoned list is still consistent.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The checks, each a pure function of what the agent read.
pub(crate) struct Check;

impl Check {
    /// A deal's proof for `epoch` when the chain is at `height`: late once half of its window
    /// (`opens..=closes`) is gone and it is not proven. A proof sent now lands in a block after
    /// `height`, so `closes - height` blocks are left.
    pub(crate) fn proof_late(
        deal: &str,
        epoch: u64,
        last_proven_epoch: u64,
        height: u64,
        (opens, closes): (u64, u64),
    ) -> Option<Warning> {
        let window = closes.saturating_sub(opens) + 1;
        let left = closes.saturating_sub(height);
        let half_gone = height >= opens + window / LATE_WINDOW_DIVISOR;
        (last_proven_epoch < epoch && half_gone).then(|| Warning {
            kind: WarningKind::ProofLate,
            subject: deal.to_string(),
            message: format!(
                "the proof of epoch {epoch} is not on chain and its window closes at block \
                 {closes} ({left} blocks left): a missed window is a fault; check the node's \
                 log for proof errors and that its blocks are being finalized"
            ),
        })
    }

    /// A proof the agent could not make or send, with the error.
    pub(crate) fn proof_failed(deal: &str, epoch: u64, error: &str) -> Warning {
        Warning {
            kind: WarningKind::ProofFailed,
            subject: deal.to_string(),
            message: format!(
                "the proof of epoch {epoch} could not be made or sent ({error}); the agent \
                 retries, but a missed window is a fault: check the deal's data and the disk"
            ),
        }
    }

    /// A deal with `faults` of the `max_faults` that end it.
    pub(crate) fn faults_near_limit(deal: &str, faults: u32, max_faults: u32) -> Option<Warning> {
        (max_faults > 0 && faults.saturating_add(1) >= max_faults).then(|| Warning {
            kind: WarningKind::FaultsNearLimit,
            subject: deal.to_string(),
            message: format!(
                "{faults} of {max_faults} faults: one more missed proof ends the deal and takes \
                 its termination fee from the collateral"
            ),
        })
    }

    /// A bond of `bonded` wei against the `minimum` of the provider's roles.
    pub(crate) fn bond_near_minimum(bonded: u128, minimum: u128) -> Option<Warning> {
        let near = minimum.saturating_add(minimum / 100 * u128::from(BOND_HEADROOM_PERCENT));
        // No bond at all is a provider not staked yet (the agent stakes it).
        (minimum > 0 && bonded > 0 && bonded < near).then(|| Warning {
            kind: WarningKind::BondNearMinimum,
            subject: String::new(),
            message: format!(
                "bond {} CRN is within {BOND_HEADROOM_PERCENT}% of the {} CRN minimum: a slash \
                 below it drops the provider's roles; add to it with `cairn stake add`",
                crn(bonded),
                crn(minimum)
            ),
        })
    }

    /// `free` bytes of disk against the `offered` capacity not yet taken by deals.
    pub(crate) fn disk_below_capacity(free: u64, offered: u64) -> Option<Warning> {
        (free < offered).then(|| Warning {
            kind: WarningKind::DiskBelowCapacity,
            subject: String::new(),
            message: format!(
                "{free} bytes free on the data directory's disk, less than the {offered} bytes \
                 of capacity still offered: a deal taken now may not fit; free disk or lower \
                 the storage capacity in node.json"
            ),
        })
    }

    /// A compute job whose stage this provider owes ends at `deadline`, the chain at `head`.
    pub(crate) fn stage_deadline(job: &str, deadline: u64, head: u64) -> Option<Warning> {
        (deadline.saturating_sub(head) <= STAGE_DEADLINE_BLOCKS).then(|| Warning {
            kind: WarningKind::StageDeadline,
            subject: job.to_string(),
            message: format!(
                "this provider's step of the job is not on chain and its stage ends at block \
                 {deadline} ({} blocks left): a missed stage slashes the bond",
                deadline.saturating_sub(head)
            ),
        })
    }
}

/// Bytes an unprivileged process may still write on the filesystem holding `path`.
// The block counts are 64-bit on 64-bit Linux, narrower elsewhere.
#[allow(clippy::useless_conversion)]
pub(crate) fn free_disk(path: &std::path::Path) -> std::io::Result<u64> {
    let stats = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(u64::from(stats.blocks_available()).saturating_mul(u64::from(stats.fragment_size())))
}

/// Wei in CRN, to two decimals (for a message).
fn crn(wei: u128) -> String {
    let token = cairn_chain::genesis::TOKEN;
    format!("{}.{:02}", wei / token, wei % token * 100 / token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRN: u128 = cairn_chain::genesis::TOKEN;

    #[test]
    fn a_proof_is_late_in_the_second_half_of_its_window_only_while_unproven() {
        let window = (300, 307);
        assert!(
            Check::proof_late("d", 10, 9, 300, window).is_none(),
            "just opened"
        );
        assert!(Check::proof_late("d", 10, 9, 303, window).is_none());
        let late = Check::proof_late("d", 10, 9, 304, window).expect("half gone");
        assert!(late.message.contains("(3 blocks left)"), "{}", late.message);
        let missed = Check::proof_late("d", 10, 9, 307, window).expect("closed");
        assert!(
            missed.message.contains("(0 blocks left)"),
            "{}",
            missed.message
        );
        assert!(
            Check::proof_late("d", 10, 10, 306, window).is_none(),
            "proven"
        );
    }

    #[test]
    fn faults_warn_one_below_the_limit() {
        assert!(Check::faults_near_limit("d", 1, 3).is_none());
        assert!(Check::faults_near_limit("d", 2, 3).is_some());
        assert!(Check::faults_near_limit("d", 0, 0).is_none());
    }

    #[test]
    fn the_bond_warns_within_a_fifth_above_its_minimum() {
        assert!(Check::bond_near_minimum(120 * CRN, 100 * CRN).is_none());
        let near = Check::bond_near_minimum(119 * CRN, 100 * CRN).expect("within 20%");
        assert!(near.message.contains("119.00 CRN"), "{}", near.message);
        assert!(
            Check::bond_near_minimum(0, 0).is_none(),
            "no role, no minimum"
        );
        assert!(Check::bond_near_minimum(0, 100).is_none(), "not staked yet");
    }

    #[test]
    fn disk_and_stage_deadlines() {
        assert!(Check::disk_below_capacity(10, 11).is_some());
        assert!(Check::disk_below_capacity(11, 11).is_none());
        assert!(Check::stage_deadline("j", 100, 94).is_none());
        assert!(Check::stage_deadline("j", 100, 95).is_some());
        assert!(Check::stage_deadline("j", 100, 120).is_some(), "past it");
    }

    #[test]
    fn only_new_warnings_are_reported_new() {
        let warnings = AgentReport::default();
        let bond = Check::bond_near_minimum(1, 100).unwrap();
        let disk = Check::disk_below_capacity(1, 2).unwrap();
        assert_eq!(
            warnings.replace_warnings(vec![bond.clone()]),
            vec![bond.clone()]
        );
        // The same warning with other figures is not new; the disk one is.
        let bond_again = Check::bond_near_minimum(2, 100).unwrap();
        assert_eq!(
            warnings.replace_warnings(vec![disk.clone(), bond_again]),
            vec![disk.clone()]
        );
        assert_eq!(warnings.count(WarningKind::BondNearMinimum), 1);
        // A round cut short keeps what it did not get to.
        let failed = Check::proof_failed("d", 3, "no data");
        assert_eq!(warnings.add_warnings(vec![failed.clone()]), vec![failed]);
        assert_eq!(warnings.warnings().len(), 3);
        assert!(warnings.replace_warnings(Vec::new()).is_empty());
        assert!(warnings.warnings().is_empty());
    }
}
