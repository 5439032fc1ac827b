//! # cairn-providers
//!
//! Storage and compute providers, and their clients, over the network.
//!
//! ```text
//!  cairn storage put ─► RPC blob pieces (checked) ─► ChunkStore ─► openDeal tx
//!        ─► RPC storageOffer ─► Offer request to the provider's node (found by its advert)
//!  provider's Agent: deal checked on chain ─► fetch pieces from the client's node (each piece
//!        checked against the root before it is stored; a provider on the client's own node
//!        takes the offer without dialing) ─► acceptDeal tx (collateral locked)
//!        ─► every epoch, within the proof window: challenges from the epoch seed
//!        ─► ChunkStore::prove ─► submitProof tx; after the last epoch ─► settle tx
//!  compute: JobPosted / VerifierDrawn / PanelDrawn naming it ─► run ─► commit tx
//!        ─► (both committed) reveal tx ─► after the challenge window the provider ─► expire tx
//!  cairn storage get ─► RPC storageFetch ─► Has requests to peers ─► fetch from the holders,
//!        a peer whose piece fails its check is dropped and the piece asked of another
//! ```
//! [`DataNet`] holds the node's chunk store, its table of providers' adverts and the fetches in
//! progress, and answers peers' data requests. The [`agent::Agent`] runs only on a node
//! configured as a provider: of storage (deals), of compute (jobs run, re-executed to verify,
//! or judged on a panel, answered by commit and reveal, with module, input and output moved as
//! blobs), or both. It signs its contract
//! calls through a [`TxSender`] into the node's own mempool, and each round lists what puts
//! the provider at risk of a slash ([`AgentReport`]).
//!
//! ## Example
//! ```
//! use cairn_providers::agent::price_per_epoch;
//!
//! // A deal is priced per started MiB and epoch.
//! assert_eq!(price_per_epoch(10, 1), 10);
//! assert_eq!(price_per_epoch(10, (1 << 20) + 1), 20);
//! ```
pub mod adverts;
pub mod agent;
mod compute;
pub mod conduct;
pub mod contracts;
pub mod data;
pub mod error;
pub mod fetch;
pub mod job_data;
pub mod metrics;
pub mod sender;
pub mod serve;
pub mod warnings;
pub mod wire;

pub use adverts::Adverts;
pub use compute::{Step, owed_steps, step_for};
pub use conduct::{Conduct, Honest};
pub use contracts::{DealState, JobState, slots, view};
pub use data::DataNet;
pub use fetch::{FetchProgress, FetchState, Fetcher};
pub use metrics::{Metrics, MetricsSnapshot};
pub use sender::TxSender;
pub use serve::{Offer, Server};
pub use warnings::{AgentReport, ProviderWarnings, Warning, WarningKind, WatchedJob};
