//! The listener: binds the RPC address and serves the `cairn_*` methods ([`crate::server`]) and
//! Ethereum's ([`crate::eth`]) behind the access checks ([`crate::access`]).

use crate::access::{AccessLayer, AccessPolicy};
use crate::api::CairnApiServer;
use crate::eth::{EthApiServer, NetApiServer, Web3ApiServer};
use crate::server::{MAX_BATCH, RpcServer};

/// Subscription ids as Ethereum nodes write them, `0x` and 32 random hex digits: clients (viem)
/// take only a string for one.
#[derive(Debug, Clone, Copy)]
struct HexSubscriptionIds;

impl jsonrpsee::core::traits::IdProvider for HexSubscriptionIds {
    fn next_id(&self) -> jsonrpsee::types::SubscriptionId<'static> {
        let mut bytes = [0u8; 16];
        rand::fill(&mut bytes);
        jsonrpsee::types::SubscriptionId::Str(format!("0x{}", hex::encode(bytes)).into())
    }
}

/// `eth_subscribe` subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 16;

/// Binds `addr` and serves `server` behind `policy` until the returned handle is stopped. A
/// raw transaction or a piece of data travels as hex: requests are bounded at twice the larger
/// of the two, plus the JSON around it; batches at [`MAX_BATCH`] requests; connections at 256.
pub async fn start(
    addr: std::net::SocketAddr,
    server: RpcServer,
    policy: &AccessPolicy,
    metrics: crate::RpcMetrics,
) -> Result<(std::net::SocketAddr, jsonrpsee::server::ServerHandle), crate::RpcError> {
    use jsonrpsee::core::middleware::RpcServiceBuilder;
    use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig};
    let largest =
        cairn_primitives::MAX_TX_SIZE.max(cairn_storage::blobs::PIECE_LEN as usize + 4096);
    let limits = ServerConfig::builder()
        .max_request_body_size(2 * largest as u32 + 4096)
        .max_connections(256)
        .max_subscriptions_per_connection(MAX_SUBSCRIPTIONS_PER_CONNECTION)
        .set_id_provider(HexSubscriptionIds)
        .set_batch_request_config(BatchRequestConfig::Limit(MAX_BATCH))
        .build();
    let mut methods = CairnApiServer::into_rpc(server.clone());
    let ethereum = [
        EthApiServer::into_rpc(server.clone()),
        NetApiServer::into_rpc(server.clone()),
        Web3ApiServer::into_rpc(server),
    ];
    for module in ethereum {
        // The namespaces differ: no method name is registered twice.
        methods
            .merge(module)
            .map_err(|e| crate::RpcError::Methods(e.to_string()))?;
    }
    let metered = crate::metrics::RpcMetricsLayer::new(metrics, methods.method_names());
    let bind = |source| crate::RpcError::Bind { addr, source };
    // The access layer needs the bound address, known only once bound: bind first.
    let socket = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    let bound = socket.local_addr().map_err(bind)?;
    let middleware = tower::ServiceBuilder::new().layer(AccessLayer::new(policy, bound));
    let listener = Server::builder()
        .set_config(limits)
        .set_http_middleware(middleware)
        .set_rpc_middleware(RpcServiceBuilder::new().layer(metered))
        .build_from_tcp(socket.into_std().map_err(bind)?)
        .map_err(bind)?;
    Ok((bound, listener.start(methods)))
}
