//! Counters an operator watches: proofs, deals, pieces and jobs.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters an operator watches (and alerts on).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Proof transactions sent.
    pub proofs_sent: AtomicU64,
    /// Proofs that could not be made or sent.
    pub proofs_failed: AtomicU64,
    /// Deals this provider accepted.
    pub deals_accepted: AtomicU64,
    /// Offers this provider refused.
    pub offers_refused: AtomicU64,
    /// Pieces served to peers.
    pub pieces_served: AtomicU64,
    /// Bytes of the pieces served to peers.
    pub bytes_served: AtomicU64,
    /// Pieces received that failed their check.
    pub pieces_rejected: AtomicU64,
    /// Compute jobs run, re-executed or refereed, with the result sent.
    pub jobs_done: AtomicU64,
    /// Compute jobs whose result could not be sent.
    pub jobs_failed: AtomicU64,
    /// Compute jobs dropped because the queue was full.
    pub jobs_dropped: AtomicU64,
    /// Jobs this provider ran as the job's provider (result committed).
    pub jobs_run: AtomicU64,
    /// Jobs this provider re-executed as the verifier (result committed).
    pub jobs_verified: AtomicU64,
    /// Disputed jobs this provider re-executed as a referee or challenger (result committed).
    pub jobs_disputed: AtomicU64,
    /// Fuel burnt running and re-executing jobs.
    pub fuel_used: AtomicU64,
    /// Blobs a compute job brought in (module, input, output), deleted after the job ended.
    pub job_blobs_released: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    add(counter, 1);
}

pub(crate) fn add(counter: &AtomicU64, amount: u64) {
    counter.fetch_add(amount, Ordering::Relaxed);
}

/// A snapshot of [`Metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSnapshot {
    /// Proof transactions sent.
    pub proofs_sent: u64,
    /// Proofs that could not be made or sent.
    pub proofs_failed: u64,
    /// Deals accepted.
    pub deals_accepted: u64,
    /// Offers refused.
    pub offers_refused: u64,
    /// Pieces served.
    pub pieces_served: u64,
    /// Bytes of the pieces served.
    pub bytes_served: u64,
    /// Pieces received that failed their check.
    pub pieces_rejected: u64,
    /// Compute jobs done.
    pub jobs_done: u64,
    /// Compute jobs whose result could not be sent.
    pub jobs_failed: u64,
    /// Compute jobs dropped (queue full).
    pub jobs_dropped: u64,
    /// Jobs run as the provider.
    pub jobs_run: u64,
    /// Jobs re-executed as the verifier.
    pub jobs_verified: u64,
    /// Disputed jobs re-executed as a referee or challenger.
    pub jobs_disputed: u64,
    /// Fuel burnt running and re-executing jobs.
    pub fuel_used: u64,
    /// Blobs of ended compute jobs deleted.
    pub job_blobs_released: u64,
}

impl Metrics {
    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            proofs_sent: read(&self.proofs_sent),
            proofs_failed: read(&self.proofs_failed),
            deals_accepted: read(&self.deals_accepted),
            offers_refused: read(&self.offers_refused),
            pieces_served: read(&self.pieces_served),
            bytes_served: read(&self.bytes_served),
            pieces_rejected: read(&self.pieces_rejected),
            jobs_done: read(&self.jobs_done),
            jobs_failed: read(&self.jobs_failed),
            jobs_dropped: read(&self.jobs_dropped),
            jobs_run: read(&self.jobs_run),
            jobs_verified: read(&self.jobs_verified),
            jobs_disputed: read(&self.jobs_disputed),
            fuel_used: read(&self.fuel_used),
            job_blobs_released: read(&self.job_blobs_released),
        }
    }
}
