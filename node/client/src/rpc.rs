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
/// The name of a node's admin token file in its data directory.
const ADMIN_TOKEN_FILE: &str = "admin.token";
/// The most bytes read from it.
const MAX_ADMIN_TOKEN_LEN: u64 = 256;

/// Whether `url` names this machine (`localhost`, 127.0.0.0/8 or `[::1]`).
fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, rest)| rest) else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

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
    /// `$CAIRN_ADMIN_TOKEN` if set; else, for a node on this machine (a loopback URL), the
    /// `admin.token` file the node names (`cairn_adminTokenFile`), which only the node's user
    /// can read. The name is checked and the read bounded: a node cannot make this client send
    /// it any other file.
    pub async fn admin(&self) -> Result<&HttpClient, ClientError> {
        self.admin
            .get_or_try_init(|| async {
                let token = match std::env::var(ADMIN_TOKEN_ENV) {
                    Ok(token) => token,
                    Err(_) => self.local_admin_token().await?,
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

    /// The admin token of the node at this (loopback) URL, from the file it names.
    async fn local_admin_token(&self) -> Result<String, ClientError> {
        if !is_loopback_url(&self.url) {
            return Err(ClientError::AdminTokenRemote {
                url: self.url.clone(),
            });
        }
        let file = self
            .rpc
            .admin_token_file()
            .await
            .map_err(|e| self.error(e))?;
        let path = std::path::Path::new(&file);
        if path.file_name() != Some(std::ffi::OsStr::new(ADMIN_TOKEN_FILE)) {
            return Err(ClientError::AdminTokenFileName { file });
        }
        let mut text = String::new();
        let read = std::fs::File::open(path).and_then(|f| {
            use std::io::Read;
            f.take(MAX_ADMIN_TOKEN_LEN).read_to_string(&mut text)
        });
        read.map_err(|source| ClientError::AdminToken {
            file: file.clone(),
            source,
        })?;
        let token = text.trim();
        if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ClientError::AdminTokenInvalid);
        }
        Ok(token.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_only_a_node_on_this_machine_is_sent_a_token_read_from_disk() {
        for local in [
            "http://127.0.0.1:8545",
            "http://localhost:1/",
            "http://[::1]:8545",
            "http://127.0.0.2:8545",
        ] {
            assert!(is_loopback_url(local), "{local}");
        }
        for remote in [
            "http://evil.example:8545",
            "http://127.0.0.1.evil.example:1",
            "http://user@127.0.0.1:1",
            "http://10.0.0.1:8545",
            "127.0.0.1:8545",
            "http://[::2]:1",
        ] {
            assert!(!is_loopback_url(remote), "{remote}");
        }
    }
}
