//! What the consensus driver needs from the world, as traits: the clock and a place for
//! blocking work ([`Runtime`]) and the network ([`ConsensusNetwork`]). Production passes
//! [`TokioRuntime`] and the libp2p [`NetworkHandle`]; the deterministic simulation passes a
//! virtual clock, runs blocking work inline and delivers messages over a seeded, lossy network,
//! so that the same seed replays the same run of the production driver.
//!
//! Timers (`tokio::time::sleep_until`, `interval`, `Instant`) are tokio's. The simulation runs
//! on a single-threaded tokio runtime started with its clock paused, where time is virtual: it
//! stands still while any task can run and jumps to the next timer when none can.

use std::future::Future;

use cairn_p2p::{GossipMessage, NetworkHandle, NetworkStatus, Offence, PeerId, TopicKind, Verdict};

/// The clock and the executor of blocking work.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Milliseconds since the Unix epoch: what a proposer stamps its block with. Nothing the
    /// chain executes or validates reads it.
    fn now_ms(&self) -> u64;

    /// Runs `work` (block execution, database reads and writes) without stalling the async
    /// tasks; `None` if it panicked.
    fn run_blocking<T, F>(&self, work: F) -> impl Future<Output = Option<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static;

    /// Runs `task` concurrently with the caller.
    fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static;
}

/// The production runtime: the machine's clock, tokio's blocking pool and tasks.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn now_ms(&self) -> u64 {
        cairn_primitives::clock::now_ms()
    }

    fn run_blocking<T, F>(&self, work: F) -> impl Future<Output = Option<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let task = tokio::task::spawn_blocking(work);
        async move { task.await.ok() }
    }

    fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(task)
    }
}

/// What the driver asks of the network.
pub trait ConsensusNetwork: Clone + Send + Sync + 'static {
    /// Gossips `data` on the topic of `kind`.
    fn publish(
        &self,
        kind: TopicKind,
        data: Vec<u8>,
    ) -> impl Future<Output = cairn_p2p::Result<()>> + Send;

    /// Reports whether a gossiped message is to be forwarded (and its sender credited) or not.
    fn validate(
        &self,
        message: &GossipMessage,
        verdict: Verdict,
    ) -> impl Future<Output = cairn_p2p::Result<()>> + Send;

    /// Counts an offence against `peer` found after its message was reported (a held
    /// next-epoch message that turned out forged).
    fn penalize(
        &self,
        peer: PeerId,
        offence: Offence,
    ) -> impl Future<Output = cairn_p2p::Result<()>> + Send;

    /// Sends a request to `peer` (any connected peer if `None`) and waits for the answer.
    fn request(
        &self,
        peer: Option<PeerId>,
        data: Vec<u8>,
    ) -> impl Future<Output = cairn_p2p::Result<(PeerId, Vec<u8>)>> + Send;

    /// This node's peer id and its connected peers.
    fn status(&self) -> impl Future<Output = cairn_p2p::Result<NetworkStatus>> + Send;
}

impl ConsensusNetwork for NetworkHandle {
    fn publish(
        &self,
        kind: TopicKind,
        data: Vec<u8>,
    ) -> impl Future<Output = cairn_p2p::Result<()>> + Send {
        NetworkHandle::publish(self, kind, data)
    }

    fn validate(
        &self,
        message: &GossipMessage,
        verdict: Verdict,
    ) -> impl Future<Output = cairn_p2p::Result<()>> + Send {
        NetworkHandle::validate(self, message, verdict)
    }

    fn penalize(
        &self,
        peer: PeerId,
        offence: Offence,
    ) -> impl Future<Output = cairn_p2p::Result<()>> + Send {
        NetworkHandle::penalize(self, peer, offence)
    }

    fn request(
        &self,
        peer: Option<PeerId>,
        data: Vec<u8>,
    ) -> impl Future<Output = cairn_p2p::Result<(PeerId, Vec<u8>)>> + Send {
        NetworkHandle::request(self, peer, data)
    }

    fn status(&self) -> impl Future<Output = cairn_p2p::Result<NetworkStatus>> + Send {
        NetworkHandle::status(self)
    }
}
