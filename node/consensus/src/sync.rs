//! Serving finalized blocks to peers that are behind.
//!
//! A request names a first height and how many blocks it wants; the answer is the run of
//! blocks from there to a block with a finalization certificate of its own, and that
//! certificate. What one answer costs the server is bounded in blocks ([`MAX_SYNC_BLOCKS`]) and
//! in bytes ([`SYNC_RESPONSE_BYTES`], never more than [`MAX_SYNC_RESPONSE_BYTES`]), not by the
//! count the peer asked for: a run of full blocks still fits one response, so a node far behind
//! always makes progress. How many answers are prepared at once is bounded too
//! ([`SyncServer`]): a few at a time over all peers, one at a time per peer; a request beyond
//! that gets an empty answer marked busy at once and costs nothing, and the node that asked
//! asks its next peer at once.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use cairn_chain::Chain;
use cairn_p2p::{InboundId, NetworkHandle, PeerId};
use cairn_primitives::wire::SyncRequest;
use cairn_primitives::{Block, Canonical};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ConsensusError;
use crate::messages::{Certificate, SyncResponse};

/// Most blocks a sync response carries.
pub const MAX_SYNC_BLOCKS: u64 = 256;
/// The bytes of blocks a response stops at once it holds a certified block: four full blocks.
pub const SYNC_RESPONSE_BYTES: usize = 4 * cairn_primitives::MAX_BLOCK_TRANSACTION_BYTES;
/// The bytes of blocks no response exceeds, even to reach a first certified block: what the
/// network carries in one response, less room for the certificate and the framing.
pub const MAX_SYNC_RESPONSE_BYTES: usize = cairn_p2p::MAX_RESPONSE_SIZE - 1024 * 1024;
/// Sync answers prepared at once, over all peers.
const CONCURRENT_ANSWERS: usize = 4;

/// Answers peers' sync requests off the consensus loop, a bounded number at a time.
#[derive(Debug, Clone)]
pub struct SyncServer {
    chain: Arc<Chain>,
    network: NetworkHandle,
    permits: Arc<Semaphore>,
    /// Peers with an answer being prepared.
    serving: Arc<Mutex<BTreeSet<PeerId>>>,
}

impl SyncServer {
    /// A server reading `chain` and answering through `network`.
    pub fn new(chain: Arc<Chain>, network: NetworkHandle) -> Self {
        Self {
            chain,
            network,
            permits: Arc::new(Semaphore::new(CONCURRENT_ANSWERS)),
            serving: Arc::default(),
        }
    }

    /// Answers `request` on its own task: reading and encoding blocks for a peer never delays
    /// a vote. A request the server has no room for, or from a peer already being served, gets
    /// an empty answer marked busy; one that cannot be served, an empty answer.
    pub fn serve(&self, peer: PeerId, id: InboundId, request: SyncRequest) {
        let admitted = self.admit(peer);
        let (chain, network) = (self.chain.clone(), self.network.clone());
        tokio::spawn(async move {
            let response = match admitted {
                Some(admitted) => {
                    let read = tokio::task::spawn_blocking(move || sync_response(&chain, request));
                    let response = read.await;
                    drop(admitted);
                    match response {
                        Ok(Ok(response)) => response,
                        Ok(Err(error)) => {
                            tracing::warn!(%peer, %error, "cannot serve a sync request");
                            SyncResponse::default()
                        }
                        Err(error) => {
                            tracing::warn!(%peer, %error, "sync request task failed");
                            SyncResponse::default()
                        }
                    }
                }
                None => {
                    tracing::debug!(%peer, "sync request refused: busy");
                    SyncResponse {
                        busy: true,
                        ..SyncResponse::default()
                    }
                }
            };
            if let Err(error) = network.respond(id, response.encode()).await {
                tracing::debug!(%error, "cannot answer a sync request");
            }
        });
    }

    /// Room to prepare an answer for `peer`, held until the [`Admitted`] is dropped: none while
    /// [`CONCURRENT_ANSWERS`] are being prepared or one for this peer is.
    fn admit(&self, peer: PeerId) -> Option<Admitted> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        if !lock(&self.serving).insert(peer) {
            return None;
        }
        Some(Admitted {
            _permit: permit,
            peer,
            serving: self.serving.clone(),
        })
    }
}

/// An answer being prepared: its share of the server's room.
struct Admitted {
    _permit: OwnedSemaphorePermit,
    peer: PeerId,
    serving: Arc<Mutex<BTreeSet<PeerId>>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        lock(&self.serving).remove(&self.peer);
    }
}

fn lock(serving: &Mutex<BTreeSet<PeerId>>) -> std::sync::MutexGuard<'_, BTreeSet<PeerId>> {
    // Every change is one insert or removal: a poisoned set is still consistent.
    serving
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Consecutive blocks from `request.from`, ending at a block that has a certificate of its
/// own: the last such block within `max_blocks` and [`SYNC_RESPONSE_BYTES`], or else the first
/// one after (within [`MAX_SYNC_BLOCKS`] and [`MAX_SYNC_RESPONSE_BYTES`]); never across an
/// epoch, whose certificate is checked against another validator set.
pub(crate) fn sync_response(
    chain: &Chain,
    request: SyncRequest,
) -> Result<SyncResponse, ConsensusError> {
    let store = chain.store();
    let epoch_length = chain.genesis().epoch_length;
    let epoch_end = (request.from / epoch_length + 1) * epoch_length;
    let wanted_end = (request.from + u64::from(request.max_blocks.max(1))).min(epoch_end);
    let last_height = (request.from + MAX_SYNC_BLOCKS).min(epoch_end);
    let mut blocks: Vec<Block> = Vec::new();
    let mut bytes = 0;
    // The blocks up to the last certified one taken, and its certificate.
    let mut end: Option<(usize, Vec<u8>)> = None;
    let mut next_certified = store.next_finality(request.from)?;
    for height in request.from..last_height {
        let Some((certified, _)) = &next_certified else {
            break;
        };
        if *certified >= last_height {
            break;
        }
        if end.is_some() && (height >= wanted_end || bytes >= SYNC_RESPONSE_BYTES) {
            break;
        }
        let Some(block) = chain.block(height)? else {
            break;
        };
        bytes += block.encoded_len();
        if bytes > MAX_SYNC_RESPONSE_BYTES || (end.is_some() && bytes > SYNC_RESPONSE_BYTES) {
            break;
        }
        blocks.push(block);
        if *certified == height {
            if let Some((_, certificate)) = next_certified.take() {
                end = Some((blocks.len(), certificate));
            }
            next_certified = store.next_finality(height + 1)?;
        }
    }
    let Some((count, certificate)) = end else {
        return Ok(SyncResponse::default());
    };
    blocks.truncate(count);
    Ok(SyncResponse {
        blocks,
        finality: Some(Certificate::decode(&certificate)?),
        busy: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::VoteKind;
    use cairn_chain::genesis::{Genesis, dev_account, dev_validator};
    use cairn_evm::execution::Sequential;
    use cairn_primitives::{Address, B256, Bytes, Transaction, TxBody, U256};

    fn certificate(view: u64, block: B256) -> Certificate {
        Certificate {
            view,
            kind: VoteKind::Finalize(block),
            signatures: Vec::new(),
        }
    }

    /// A dev chain of `blocks` blocks, each holding what `transactions` gives for its height,
    /// on which the heights in `certified` have certificates of their own.
    fn chain_with(
        dir: &std::path::Path,
        blocks: u64,
        certified: &[u64],
        transactions: impl Fn(u64) -> Vec<Transaction>,
    ) -> Chain {
        let chain = Chain::open(dir, Genesis::dev(), Box::new(Sequential)).unwrap();
        let key = dev_validator();
        for height in 1..=blocks {
            let time = chain.head_header().timestamp_ms + 1000;
            let txs = transactions(height);
            if certified.contains(&height) {
                let (produced, executed) = chain
                    .build_block(&key, time, height, &[], None, &txs)
                    .unwrap();
                let finality = certificate(height, produced.block.hash()).encode();
                chain.commit_executed(&executed, Some(&finality)).unwrap();
            } else {
                chain.produce_block(&key, time, &txs).unwrap();
            }
        }
        chain
    }

    fn chain(dir: &std::path::Path, blocks: u64, certified: &[u64]) -> Chain {
        chain_with(dir, blocks, certified, |_| Vec::new())
    }

    fn served(chain: &Chain, from: u64, max_blocks: u32) -> (Vec<u64>, Option<u64>) {
        let response = sync_response(chain, SyncRequest { from, max_blocks }).unwrap();
        let heights = response.blocks.iter().map(|b| b.header.height).collect();
        (heights, response.finality.map(|c| c.view))
    }

    /// One peer asking again before its answer is out, or many peers asking at once, get
    /// empty answers at once instead of a share of the node's disk and CPU.
    #[tokio::test]
    async fn attack_sync_requests_are_served_a_few_at_a_time_one_per_peer() {
        let dir = tempfile::tempdir().unwrap();
        let chain = Arc::new(chain(dir.path(), 1, &[]));
        let config = cairn_p2p::NetworkConfig {
            keypair: cairn_p2p::Keypair::generate_ed25519(),
            listen: Vec::new(),
            bootnodes: Vec::new(),
            chain_id: 1,
            genesis_hash: [0; 32],
            mdns: false,
            limits: cairn_p2p::TopicLimits {
                transactions: 1024,
                proposals: 1024,
                votes: 1024,
                provider_adverts: 1024,
            },
            budgets: cairn_p2p::PeerBudgets::default(),
        };
        let (network, _events) = cairn_p2p::start(config).await.unwrap();
        let server = SyncServer::new(chain, network);
        let peers: Vec<PeerId> = (0..=CONCURRENT_ANSWERS).map(|_| PeerId::random()).collect();
        let first = server.admit(peers[0]).expect("room for a first answer");
        assert!(
            server.admit(peers[0]).is_none(),
            "one answer at a time per peer"
        );
        let others: Vec<Admitted> = peers[1..CONCURRENT_ANSWERS]
            .iter()
            .map(|peer| server.admit(*peer).expect("room"))
            .collect();
        assert!(
            server.admit(peers[CONCURRENT_ANSWERS]).is_none(),
            "all busy"
        );
        drop(first);
        assert!(server.admit(peers[CONCURRENT_ANSWERS]).is_some());
        drop(others);
        assert!(server.admit(peers[0]).is_some(), "room again once answered");
    }

    #[test]
    fn sync_answers_end_at_a_certified_block_within_one_epoch() {
        let dir = tempfile::tempdir().unwrap();
        // The dev genesis has 30-block epochs: heights 29 and 30 are in different epochs.
        let chain = chain(dir.path(), 35, &[3, 10, 29, 33]);
        assert_eq!(served(&chain, 1, 16), ((1..=10).collect(), Some(10)));
        // No certificate within the 16 asked for: up to the next one.
        assert_eq!(served(&chain, 11, 16), ((11..=29).collect(), Some(29)));
        // Never across the epoch boundary, even when a later certificate is within reach.
        assert_eq!(served(&chain, 28, 16), ((28..=29).collect(), Some(29)));
        assert_eq!(served(&chain, 30, 16), ((30..=33).collect(), Some(33)));
        // Nothing certified after 33 yet, and nothing beyond the head.
        assert_eq!(served(&chain, 34, 16), (Vec::new(), None));
        assert_eq!(served(&chain, 99, 16), (Vec::new(), None));
    }

    /// Full blocks of cheap zero-byte calldata: a response asked for sixteen of them stops at
    /// its byte budget (and still ends at a certified block), so it fits what the network
    /// carries and a node behind a run of such blocks catches up.
    #[test]
    fn attack_a_run_of_full_blocks_is_served_within_the_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let junk = Bytes::from(vec![0u8; 120 * 1024]);
        let transfer = |nonce: u64, gas_limit: u64| {
            TxBody {
                chain_id: Genesis::dev().chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas: 2_000_000_000,
                max_priority_fee_per_gas: 0,
                to: Some(Address::repeat_byte(7)),
                value: U256::ZERO,
                input: junk.clone(),
            }
            .sign(&dev_account(0))
        };
        let gas = cairn_evm::rules::intrinsic_gas(&transfer(0, 0));
        let per_block =
            (cairn_primitives::MAX_BLOCK_TRANSACTION_BYTES / transfer(0, gas).encoded_len()) as u64;
        let full = |height: u64| -> Vec<Transaction> {
            (0..per_block)
                .map(|i| transfer((height - 1) * per_block + i, gas))
                .collect()
        };
        let certified: Vec<u64> = (1..=12).collect();
        let chain = chain_with(dir.path(), 12, &certified, full);
        let block_bytes = chain.block(1).unwrap().unwrap().encoded_len();
        assert!(
            block_bytes > 3 * 1024 * 1024,
            "blocks are full: {block_bytes}"
        );
        let response = sync_response(
            &chain,
            SyncRequest {
                from: 1,
                max_blocks: 16,
            },
        )
        .unwrap();
        let heights: Vec<u64> = response.blocks.iter().map(|b| b.header.height).collect();
        assert_eq!(heights, (1..=4).collect::<Vec<_>>());
        assert!(response.encoded_len() <= cairn_p2p::MAX_RESPONSE_SIZE);
        assert_eq!(response.finality.map(|c| c.view), Some(4));
        // The next request picks up where this one ended.
        assert_eq!(served(&chain, 5, 16).0, (5..=8).collect::<Vec<_>>());
    }
}
