//! The node's JSON-RPC server: [`CairnApiServer`] over the chain, the mempool, the consensus
//! status and, on a networked node, the data plane. EVM calls and chunk-store work run on the
//! blocking pool, never on the async workers that serve other requests (consensus among them):
//! at most [`CONCURRENT_CALLS`] EVM calls at once, each capped at a transaction's gas limit, a
//! caller waiting at most [`CALL_TIMEOUT`]. Requests pass [`crate::access`] first.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::Extensions;
use jsonrpsee::core::{RpcResult, async_trait};
use jsonrpsee::types::ErrorObjectOwned;
use revm::context::result::ExecutionResult;
use tokio::sync::{Semaphore, watch};

use cairn_chain::{CallRequest, Chain, ChainError};
use cairn_consensus::NetworkView;
use cairn_mempool::{SubmitError, TxPool};
use cairn_primitives::{Address, B256, Bytes, U256};
use cairn_providers::error::DataError;
use cairn_providers::{DataNet, FetchProgress, FetchState, MetricsSnapshot, ProviderWarnings};

use crate::access::require_admin;
use crate::api::*;

/// EVM calls (`cairn_call`, `cairn_estimateGas`, the stake reads of `cairn_providers`) run at
/// once; more wait their turn.
pub const CONCURRENT_CALLS: usize = 4;
/// The longest a caller waits for an EVM call, its turn included. A call that runs longer
/// finishes on its blocking thread (holding its turn, so the bound holds) but its caller is
/// told at once.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Most requests in one JSON-RPC batch.
pub const MAX_BATCH: u32 = 100;

/// A value worked out for one head block: (height, value).
#[derive(Debug, Clone, Default)]
pub(crate) struct TipCache(Arc<std::sync::Mutex<Option<(u64, u128)>>>);

impl TipCache {
    pub(crate) fn get(&self) -> Option<(u64, u128)> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set(&self, height: u64, tip: u128) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((height, tip));
    }
}

/// What the server reads and where it submits.
#[derive(Debug, Clone)]
pub struct RpcServer {
    chain: Arc<Chain>,
    pool: TxPool,
    /// The consensus view and peers (the default on a dev node).
    network: watch::Receiver<NetworkView>,
    /// The data plane (none on a dev node).
    data: Option<Arc<DataNet>>,
    block_time_ms: u64,
    /// Turns to run EVM calls.
    calls: Arc<Semaphore>,
    /// How long a caller waits for an EVM call ([`CALL_TIMEOUT`]).
    call_timeout: Duration,
    /// The tip `eth_maxPriorityFeePerGas` suggests, by the head block it was worked out at.
    tip_cache: TipCache,
    /// Turns to use the chunk store.
    store_calls: Arc<Semaphore>,
    /// Where the admin token is, to tell local clients.
    admin_token_file: PathBuf,
}

impl RpcServer {
    /// A server over `pool` and its chain.
    pub fn new(
        pool: TxPool,
        network: watch::Receiver<NetworkView>,
        data: Option<Arc<DataNet>>,
        block_time_ms: u64,
        admin_token_file: PathBuf,
    ) -> Self {
        Self {
            chain: pool.chain().clone(),
            pool,
            network,
            data,
            block_time_ms,
            calls: Arc::new(Semaphore::new(CONCURRENT_CALLS)),
            call_timeout: CALL_TIMEOUT,
            tip_cache: TipCache::default(),
            store_calls: Arc::new(Semaphore::new(CONCURRENT_STORE_CALLS)),
            admin_token_file,
        }
    }

    /// The chain it reads.
    pub(crate) fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// The mempool it submits to.
    pub(crate) fn pool(&self) -> &TxPool {
        &self.pool
    }

    /// The suggested tip, by head block.
    pub(crate) fn tip_cache(&self) -> &TipCache {
        &self.tip_cache
    }

    /// Runs a read that decodes many blocks or recovers senders as EVM calls run: on the
    /// blocking pool, within their bound and their wait.
    pub(crate) async fn read_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&RpcServer) -> RpcResult<T> + Send + 'static,
    ) -> RpcResult<T> {
        let server = self.clone();
        self.on_chain(move |_| work(&server)).await?
    }

    /// Runs EVM work on the chain on the blocking pool, [`CONCURRENT_CALLS`] at a time, the
    /// caller waiting at most [`CALL_TIMEOUT`].
    pub(crate) async fn on_chain<T: Send + 'static, E: Send + 'static>(
        &self,
        work: impl FnOnce(&Chain) -> Result<T, E> + Send + 'static,
    ) -> RpcResult<Result<T, E>> {
        let chain = self.chain.clone();
        let calls = self.calls.clone();
        let run = async move {
            let permit = calls.acquire_owned().await;
            tokio::task::spawn_blocking(move || {
                let _turn = permit;
                work(&chain)
            })
            .await
        };
        match tokio::time::timeout(self.call_timeout, run).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(ErrorObjectOwned::owned(
                INTERNAL,
                error.to_string(),
                None::<()>,
            )),
            Err(_) => Err(ErrorObjectOwned::owned(
                CALL_LIMITED,
                format!(
                    "the call did not finish within {} ms (the node runs {CONCURRENT_CALLS} calls \
                     at once); try again, or with less gas",
                    self.call_timeout.as_millis()
                ),
                None::<()>,
            )),
        }
    }

    fn data(&self) -> RpcResult<&Arc<DataNet>> {
        self.data.as_ref().ok_or_else(|| {
            ErrorObjectOwned::owned(
                DATA_REFUSED,
                "storage needs a networked node (cairn testnet start or cairn node run), not cairn dev",
                None::<()>,
            )
        })
    }
}

fn data_error(error: impl Into<DataError>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(DATA_REFUSED, error.into().to_string(), None::<()>)
}

/// Chunk-store work (reads and writes of pieces) run at once; more wait their turn.
const CONCURRENT_STORE_CALLS: usize = 8;

async fn in_store<T: Send + 'static>(
    turns: &Semaphore,
    data: &Arc<DataNet>,
    work: impl FnOnce(&cairn_storage::ChunkStore) -> cairn_storage::Result<T> + Send + 'static,
) -> RpcResult<T> {
    let _turn = turns.acquire().await;
    let store = data.store().clone();
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|e| data_error(DataError::Task(e)))?
        .map_err(data_error)
}

pub(crate) fn internal(error: ChainError) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INTERNAL, error.to_string(), None::<()>)
}

/// A refused transaction: its reason, in the words Ethereum clients know.
pub(crate) fn rejected(error: SubmitError) -> ErrorObjectOwned {
    match error {
        SubmitError::Rejected(reason) => {
            ErrorObjectOwned::owned(TX_REJECTED, reason.to_string(), None::<()>)
        }
        SubmitError::Chain(e) => internal(e),
    }
}

pub(crate) fn reverted(result: &ExecutionResult) -> ErrorObjectOwned {
    match result {
        ExecutionResult::Revert { output, .. } => ErrorObjectOwned::owned(
            EXECUTION_REVERTED,
            "execution reverted",
            Some(output.clone()),
        ),
        ExecutionResult::Halt { reason, .. } => ErrorObjectOwned::owned(
            EXECUTION_REVERTED,
            format!("execution halted: {reason:?}"),
            None::<()>,
        ),
        ExecutionResult::Success { .. } => {
            ErrorObjectOwned::owned(INTERNAL, "call succeeded", None::<()>)
        }
    }
}

#[async_trait]
impl CairnApiServer for RpcServer {
    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256> {
        // The signature check (for an Ethereum transaction, recovering its sender) runs off the
        // async workers.
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || pool.submit_raw(&raw))
            .await
            .map_err(|e| ErrorObjectOwned::owned(INTERNAL, e.to_string(), None::<()>))?
            .map_err(rejected)
    }

    async fn get_balance(&self, address: Address) -> RpcResult<U256> {
        Ok(self.chain.sender_state(address).map_err(internal)?.balance)
    }

    async fn get_nonce(&self, address: Address, pending: Option<bool>) -> RpcResult<u64> {
        if pending.unwrap_or(false) {
            return self.pool.pending_nonce(address).map_err(internal);
        }
        Ok(self.chain.sender_state(address).map_err(internal)?.nonce)
    }

    async fn call(&self, request: CallRequest) -> RpcResult<CallResult> {
        let result = self
            .on_chain(move |chain| chain.call(&request))
            .await?
            .map_err(internal)?;
        if !result.is_success() {
            return Err(reverted(&result));
        }
        let gas_used = result.tx_gas_used();
        Ok(CallResult {
            output: result.into_output().unwrap_or_default(),
            gas_used,
        })
    }

    async fn estimate_gas(&self, request: CallRequest) -> RpcResult<u64> {
        match self
            .on_chain(move |chain| chain.estimate_gas(&request))
            .await?
            .map_err(internal)?
        {
            Ok(gas) => Ok(gas),
            Err(result) => Err(reverted(&result)),
        }
    }

    async fn get_block_by_number(&self, id: BlockId) -> RpcResult<Option<BlockInfo>> {
        let height = match id {
            BlockId::Number(height) => height,
            BlockId::Tag(BlockTag::Latest) => self.chain.head().map_err(internal)?.height,
            BlockId::Tag(BlockTag::Earliest) => 0,
        };
        let block = self.chain.block(height).map_err(internal)?;
        Ok(block.as_ref().map(BlockInfo::from))
    }

    async fn get_block_by_hash(&self, hash: B256) -> RpcResult<Option<BlockInfo>> {
        let block = self.chain.block_by_hash(&hash).map_err(internal)?;
        Ok(block.as_ref().map(BlockInfo::from))
    }

    async fn get_transaction(&self, hash: B256) -> RpcResult<Option<TxInfo>> {
        let chain = &self.chain;
        if let Some(location) = chain.tx_location(&hash).map_err(internal)? {
            let block = chain.block(location.height).map_err(internal)?;
            let tx = block.and_then(|b| b.transactions.into_iter().nth(location.index as usize));
            return Ok(tx.map(|transaction| TxInfo {
                hash,
                from: transaction.sender(),
                transaction,
                block_height: Some(location.height),
                index: Some(location.index),
            }));
        }
        Ok(self.pool.get(&hash).map(|transaction| TxInfo {
            hash,
            from: transaction.sender(),
            transaction,
            block_height: None,
            index: None,
        }))
    }

    async fn get_receipt(&self, hash: B256) -> RpcResult<Option<ReceiptInfo>> {
        let chain = &self.chain;
        let Some(location) = chain.tx_location(&hash).map_err(internal)? else {
            return Ok(None);
        };
        let block = chain.block(location.height).map_err(internal)?;
        let receipts = chain.receipts(location.height).map_err(internal)?;
        let index = location.index as usize;
        let found = block
            .and_then(|b| Some((b.hash(), b.transactions.into_iter().nth(index)?)))
            .zip(receipts.and_then(|r| r.into_iter().nth(index)));
        Ok(found.map(|((block_hash, tx), receipt)| ReceiptInfo {
            block_height: location.height,
            block_hash,
            index: location.index,
            from: tx.sender(),
            to: tx.body.to,
            receipt,
        }))
    }

    async fn chain_status(&self) -> RpcResult<ChainStatus> {
        let chain = &self.chain;
        let head = chain.head().map_err(internal)?;
        let header = chain.head_header();
        let genesis = chain.genesis();
        let genesis_hash = chain.genesis_hash().map_err(internal)?;
        let network = self.network.borrow().clone();
        Ok(ChainStatus {
            chain_id: genesis.chain_id,
            genesis_hash,
            height: head.height,
            head_hash: head.hash,
            finalized_height: head.height,
            state_root: head.state_root,
            timestamp_ms: header.timestamp_ms,
            pending_transactions: self.pool.len(),
            base_fee_per_gas: genesis.base_fee_per_gas,
            gas_limit: genesis.gas_limit,
            block_time_ms: self.block_time_ms,
            epoch_length: genesis.epoch_length,
            view: network.view.max(header.view),
            peers: network.peers,
            peer_id: network.peer_id,
            execution: chain.execution_stats(),
            validators: chain
                .validators_at(head.height + 1)
                .map_err(internal)?
                .iter()
                .map(|v| B256::from(v.public_key))
                .collect(),
        })
    }

    async fn blob_begin(&self, ext: &Extensions, root: B256, size: u64) -> RpcResult<BlobInfo> {
        require_admin(ext, "blobBegin")?;
        let data = self.data()?;
        Ok(in_store(&self.store_calls, data, move |store| {
            // The operator's upload is the operator's, whoever else holds the root.
            store.keep(&root.0)?;
            store.begin(&root.0, size)
        })
        .await?
        .into())
    }

    async fn blob_missing(&self, root: B256) -> RpcResult<Vec<u64>> {
        in_store(&self.store_calls, self.data()?, move |store| {
            store.missing(&root.0)
        })
        .await
    }

    async fn blob_put_piece(
        &self,
        ext: &Extensions,
        root: B256,
        index: u64,
        data: Bytes,
        path: Vec<B256>,
    ) -> RpcResult<BlobInfo> {
        require_admin(ext, "blobPutPiece")?;
        let path: Vec<[u8; 32]> = path.into_iter().map(|cv| cv.0).collect();
        let status = in_store(&self.store_calls, self.data()?, move |store| {
            store.put_piece(&root.0, index, &data, &path)
        })
        .await?;
        Ok(status.into())
    }

    async fn blob_status(&self, root: B256) -> RpcResult<Option<BlobInfo>> {
        let data = self.data()?;
        let status = in_store(&self.store_calls, data, move |store| store.status(&root.0)).await?;
        let fetch = data.fetcher().fetch_progress(&root.0);
        Ok(match (status, fetch) {
            (Some(status), fetch) => Some(BlobInfo {
                fetch,
                ..status.into()
            }),
            // Fetched whole, then deleted (a deal or a job over): nothing is held.
            (None, Some(fetch)) if fetch.state == FetchState::Done => None,
            (None, Some(fetch)) => Some(BlobInfo {
                root,
                size: 0,
                pieces: fetch.pieces,
                present: fetch.present,
                fetch: Some(fetch),
            }),
            (None, None) => None,
        })
    }

    async fn blob_piece(&self, root: B256, index: u64) -> RpcResult<PieceInfo> {
        let piece = in_store(&self.store_calls, self.data()?, move |store| {
            store.piece(&root.0, index)
        })
        .await?;
        Ok(PieceInfo {
            data: piece.data.into(),
            path: piece.path.into_iter().map(B256::from).collect(),
        })
    }

    async fn blobs(&self) -> RpcResult<Vec<BlobInfo>> {
        let list = in_store(&self.store_calls, self.data()?, |store| store.list()).await?;
        Ok(list.into_iter().map(BlobInfo::from).collect())
    }

    async fn blob_remove(&self, ext: &Extensions, root: B256) -> RpcResult<bool> {
        require_admin(ext, "blobRemove")?;
        in_store(&self.store_calls, self.data()?, move |store| {
            store.remove(&root.0)
        })
        .await
    }

    async fn storage_offer(&self, ext: &Extensions, deal: B256) -> RpcResult<()> {
        require_admin(ext, "storageOffer")?;
        self.data()?.offer(deal.0).await.map_err(data_error)
    }

    async fn storage_fetch(&self, ext: &Extensions, root: B256) -> RpcResult<FetchProgress> {
        require_admin(ext, "storageFetch")?;
        let data = self.data()?;
        // What the operator fetches is the operator's, whoever else holds the root.
        let status = in_store(&self.store_calls, data, move |store| {
            store.keep(&root.0)?;
            store.status(&root.0)
        })
        .await?;
        if let Some(status) = status
            && status.complete()
        {
            return Ok(FetchProgress {
                state: FetchState::Done,
                pieces: status.pieces(),
                present: status.present,
                rejected: 0,
                sources: Vec::new(),
            });
        }
        if let Some(progress) = data.fetcher().fetch_progress(&root.0)
            && progress.state == FetchState::Running
        {
            return Ok(progress);
        }
        Ok(data
            .fetcher()
            .clone()
            .start_fetch(root.0, None, cairn_storage::blobs::MAX_BLOB_SIZE))
    }

    async fn providers(&self) -> RpcResult<Vec<ProviderInfo>> {
        let adverts = self.data()?.adverts().live();
        // One EVM call per provider: a turn of the bounded call pool.
        let read = self.on_chain(move |chain| {
            adverts
                .into_iter()
                .map(|signed| {
                    let advert = signed.advert;
                    let stake = cairn_providers::view(
                        chain,
                        cairn_reward_contracts::STAKING,
                        cairn_reward_contracts::bindings::Staking::stakeOfCall {
                            staker: advert.provider,
                        },
                    )?;
                    Ok(ProviderInfo {
                        provider: advert.provider,
                        peer_id: advert.peer_id,
                        addresses: advert.addresses,
                        storage_capacity: advert.storage_capacity,
                        storage_free: advert.storage_free,
                        storage_price: U256::from(advert.storage_price),
                        cores: advert.cores,
                        memory_mib: advert.memory_mib,
                        fuel_per_second: advert.fuel_per_second,
                        compute_price: U256::from(advert.compute_price),
                        bonded: stake.bonded,
                        roles: stake.roles,
                    })
                })
                .collect::<Result<Vec<_>, DataError>>()
        });
        read.await?.map_err(data_error)
    }

    async fn admin_token_file(&self) -> RpcResult<String> {
        Ok(self.admin_token_file.display().to_string())
    }

    async fn storage_metrics(&self) -> RpcResult<MetricsSnapshot> {
        Ok(self.data()?.metrics().snapshot())
    }

    async fn provider_warnings(&self, ext: &Extensions) -> RpcResult<ProviderWarnings> {
        require_admin(ext, "providerWarnings")?;
        Ok(self.data()?.report().provider_warnings())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};

    use cairn_chain::genesis::Genesis;
    use cairn_evm::execution::Sequential;
    use cairn_mempool::MempoolConfig;

    use super::*;

    /// Holds EVM calls on their blocking threads until opened, counting how many run at once.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
        running: AtomicUsize,
        most_at_once: AtomicUsize,
    }

    impl Gate {
        fn pass(&self) {
            let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(running, Ordering::SeqCst);
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
        }

        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn attack_evm_calls_run_a_few_at_a_time_off_the_async_workers_for_a_bounded_wait() {
        let dir = tempfile::tempdir().unwrap();
        let chain =
            Arc::new(Chain::open(dir.path(), Genesis::dev(), Box::new(Sequential)).unwrap());
        let pool = TxPool::new(chain, MempoolConfig::default(), None);
        let (_, network) = watch::channel(NetworkView::default());
        let mut server = RpcServer::new(pool, network, None, 250, dir.path().join("admin.token"));
        server.call_timeout = Duration::from_millis(400);
        let gate = Arc::new(Gate::default());

        // Three times as many calls as there are turns, each of which would run until opened.
        let callers: Vec<_> = (0..3 * CONCURRENT_CALLS)
            .map(|_| {
                let (server, gate) = (server.clone(), gate.clone());
                tokio::spawn(async move {
                    server
                        .on_chain(move |_| {
                            gate.pass();
                            Ok::<(), ()>(())
                        })
                        .await
                })
            })
            .collect();
        while gate.running.load(Ordering::SeqCst) < CONCURRENT_CALLS {
            tokio::task::yield_now().await;
        }
        // Every turn is taken and two async workers serve: a request that runs no EVM call
        // is still answered.
        let status = CairnApiServer::chain_status(&server).await.unwrap();
        assert_eq!(status.height, 0);

        // Every caller is told within its wait that the node is busy, the queued ones
        // included; none of the queued calls ever runs.
        for caller in callers {
            let error = caller.await.unwrap().unwrap_err();
            assert_eq!(error.code(), CALL_LIMITED, "{error:?}");
        }
        // A call past its wait keeps its turn until it ends: a new caller still waits.
        let late = server.on_chain(|_| Ok::<(), ()>(())).await.unwrap_err();
        assert_eq!(late.code(), CALL_LIMITED);
        assert_eq!(gate.most_at_once.load(Ordering::SeqCst), CONCURRENT_CALLS);

        gate.open();
        assert_eq!(server.on_chain(|_| Ok::<(), ()>(())).await.unwrap(), Ok(()));
        assert_eq!(gate.most_at_once.load(Ordering::SeqCst), CONCURRENT_CALLS);
    }
}
