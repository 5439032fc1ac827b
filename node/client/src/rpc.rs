//! The connection to a node: the typed JSON-RPC client, with failures turned into
//! [`ClientError`]s that say what went wrong, and read-only contract calls.

use alloy_sol_types::SolCall;
use cairn_chain::CallRequest;
use cairn_primitives::units::format_crn;
use cairn_primitives::{Address, Bytes};
use cairn_rpc::CairnApiClient as _;
use std::sync::Arc;

use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use tokio::sync::OnceCell;

use crate::error::ClientError;

/// A node's JSON-RPC endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    url: String,
    rpc: HttpClient,
    /// The same endpoint with the node's admin token, made on first use.
    admin: Arc<OnceCell<HttpClient>>,
}

/// An admin token to use instead of reading the node's token file (a node on another machine).
pub const ADMIN_TOKEN_ENV: &str = "CAIRN_ADMIN_TOKEN";

impl Client {
    /// A client of the node at `url` (e.g. `http://127.0.0.1:8545`). Nothing is sent yet.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let rpc =
            HttpClientBuilder::default()
                .build(url)
                .map_err(|source| ClientError::InvalidUrl {
                    url: url.to_string(),
                    source,
                })?;
        Ok(Self {
            url: url.to_string(),
            rpc,
            admin: Arc::default(),
        })
    }

    /// The typed API with the node's admin token, for the methods that change the node's own
    /// data (storing, fetching and deleting blobs, offering deals). The token is
    /// `$CAIRN_ADMIN_TOKEN` if set, else read from the file the node names
    /// (`cairn_adminTokenFile`), which only the node's user can read.
    pub async fn admin(&self) -> Result<&HttpClient, ClientError> {
        self.admin
            .get_or_try_init(|| async {
                let token = match std::env::var(ADMIN_TOKEN_ENV) {
                    Ok(token) => token,
                    Err(_) => {
                        let file = self
                            .rpc
                            .admin_token_file()
                            .await
                            .map_err(|e| self.error(e))?;
                        std::fs::read_to_string(&file).map_err(|source| {
                            ClientError::AdminToken {
                                file: file.clone(),
                                source,
                            }
                        })?
                    }
                };
                let mut headers = http::HeaderMap::new();
                let value = http::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(|_| ClientError::AdminTokenInvalid)?;
                headers.insert(http::header::AUTHORIZATION, value);
                HttpClientBuilder::default()
                    .set_headers(headers)
                    .build(&self.url)
                    .map_err(|source| ClientError::InvalidUrl {
                        url: self.url.clone(),
                        source,
                    })
            })
            .await
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The typed API ([`cairn_rpc::CairnApiClient`]) for calls no flow here covers; map its
    /// errors with [`Client::error`].
    pub fn rpc(&self) -> &HttpClient {
        &self.rpc
    }

    /// What a failed RPC call means: a contract's revert reason, the node's refusal, or a node
    /// that cannot be reached.
    pub fn error(&self, error: jsonrpsee::core::ClientError) -> ClientError {
        match error {
            jsonrpsee::core::ClientError::Call(call) => {
                // A reverted call carries the contract's revert data: say what it means.
                let reason = call
                    .data()
                    .and_then(|raw| serde_json::from_str::<Bytes>(raw.get()).ok())
                    .and_then(|data| cairn_reward_contracts::describe_revert(&data, format_crn));
                match reason {
                    Some(reason) => ClientError::ContractRefused { reason },
                    None => ClientError::Refused(call),
                }
            }
            error @ jsonrpsee::core::ClientError::Transport(_) => ClientError::Unreachable {
                url: self.url.clone(),
                error,
            },
            error => ClientError::Rpc {
                url: self.url.clone(),
                error,
            },
        }
    }

    /// A read-only call of `to`; the node's answer as raw bytes.
    pub async fn view(&self, to: Address, input: Vec<u8>) -> Result<Bytes, ClientError> {
        let request = CallRequest {
            to: Some(to),
            input: Some(input.into()),
            ..Default::default()
        };
        let result = self.rpc.call(request).await.map_err(|e| self.error(e))?;
        Ok(result.output)
    }

    /// A read-only contract call, its answer decoded.
    pub async fn decoded<C: SolCall>(
        &self,
        to: Address,
        call: C,
    ) -> Result<C::Return, ClientError> {
        let output = self.view(to, call.abi_encode()).await?;
        Ok(C::abi_decode_returns(&output)?)
    }
}
