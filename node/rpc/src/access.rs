//! Who may call what: the HTTP layer in front of every method.
//!
//! - **Host**: only names this node answers to (loopback names, the address it is bound to,
//!   and `--rpc-allowed-host`s), so that a web page cannot reach a node on loopback through a
//!   DNS name it rebinds to 127.0.0.1.
//! - **Origin**: a request from a web page (it carries an `Origin` header) is refused unless
//!   its origin was allowed (`--rpc-allowed-origin`): a page the operator visits cannot use the
//!   node behind the operator's back. Programs send no `Origin`.
//! - **Admin token**: the methods that change this node's own data (see [`ADMIN_METHODS`]) need
//!   `Authorization: Bearer <token>`, the secret in the node's data directory, as Ethereum's
//!   engine API needs its JWT secret. `cairn_adminTokenFile` tells a local client where that
//!   file is: only a user who can read the node's files can use it.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jsonrpsee::Extensions;
#[cfg(test)]
use jsonrpsee::server::{HttpBody, HttpRequest};
use jsonrpsee::types::ErrorObjectOwned;

use crate::api::ADMIN_REQUIRED;

/// The methods that change this node's local data, and so need the admin token.
pub const ADMIN_METHODS: [&str; 5] = [
    "cairn_blobBegin",
    "cairn_blobPutPiece",
    "cairn_blobRemove",
    "cairn_storageOffer",
    "cairn_storageFetch",
];

/// What the RPC server lets through.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    /// The admin token.
    pub admin_token: String,
    /// The file holding it, named to local clients.
    pub admin_token_file: PathBuf,
    /// Host names (without port) allowed besides `localhost`, `127.0.0.1`, `[::1]` and the
    /// address the server is bound to; `*` allows any.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose pages may call the node; `*` allows any.
    pub allowed_origins: Vec<String>,
}

/// Marks a request that carried the admin token.
#[derive(Debug, Clone, Copy)]
pub struct AdminCaller;

/// Refuses a method that changes local data unless its request carried the admin token.
pub fn require_admin(extensions: &Extensions, method: &str) -> Result<(), ErrorObjectOwned> {
    if extensions.get::<AdminCaller>().is_some() {
        return Ok(());
    }
    Err(ErrorObjectOwned::owned(
        ADMIN_REQUIRED,
        format!(
            "cairn_{method} changes this node's data and needs its admin token: send \
             `Authorization: Bearer <token>` with the token from the file cairn_adminTokenFile \
             names (the cairn CLI does this itself when run by the node's user)"
        ),
        None::<()>,
    ))
}

/// The policy, ready to check requests against.
#[derive(Debug)]
struct Checks {
    token_hash: blake3::Hash,
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl Checks {
    fn new(policy: &AccessPolicy, bound: std::net::SocketAddr) -> Self {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .map(String::from)
            .collect();
        if !bound.ip().is_unspecified() {
            hosts.push(match bound.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            });
        }
        hosts.extend(policy.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
        Self {
            token_hash: blake3::hash(policy.admin_token.as_bytes()),
            hosts,
            origins: policy
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Why a request is refused, if it is.
    fn refusal<B>(&self, request: &http::Request<B>) -> Option<String> {
        let headers = request.headers();
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !self.host_allowed(host) {
            return Some(format!(
                "host {host:?} is not allowed: call the node by an address it is bound to, or \
                 start it with --rpc-allowed-host"
            ));
        }
        if let Some(origin) = headers.get(http::header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            if !self.origin_allowed(origin) {
                return Some(format!(
                    "origin {origin:?} is not allowed: start the node with --rpc-allowed-origin \
                     to let that page call it"
                ));
            }
        }
        None
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = match host.rsplit_once(':') {
            // An IPv6 literal without a port ends in "]"; with one, its port follows "]:".
            Some((name, port)) if !port.contains(']') => name,
            _ => host,
        };
        let name = name.to_ascii_lowercase();
        self.hosts
            .iter()
            .any(|allowed| allowed == "*" || *allowed == name)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        self.origins
            .iter()
            .any(|allowed| allowed == "*" || *allowed == origin)
    }

    /// Whether the request carries the admin token (compared through a hash, in constant time).
    fn is_admin<B>(&self, request: &http::Request<B>) -> bool {
        request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|token| blake3::hash(token.trim().as_bytes()) == self.token_hash)
    }
}

/// The tower layer that applies an [`AccessPolicy`].
#[derive(Debug, Clone)]
pub struct AccessLayer(Arc<Checks>);

impl AccessLayer {
    /// The layer for a server bound to `bound`.
    pub fn new(policy: &AccessPolicy, bound: std::net::SocketAddr) -> Self {
        Self(Arc::new(Checks::new(policy, bound)))
    }
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = Access<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Access {
            inner,
            checks: self.0.clone(),
        }
    }
}

/// The service [`AccessLayer`] wraps around the server.
#[derive(Debug, Clone)]
pub struct Access<S> {
    inner: S,
    checks: Arc<Checks>,
}

type BoxedFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

/// Any HTTP service behind the checks: the RPC server, and the node's metrics listener.
impl<S, B, R> tower::Service<http::Request<B>> for Access<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    R: From<String> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxedFuture<http::Response<R>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(reason) = self.checks.refusal(&request) {
            let mut response = http::Response::new(R::from(reason));
            *response.status_mut() = http::StatusCode::FORBIDDEN;
            return Box::pin(std::future::ready(Ok(response)));
        }
        if self.checks.is_admin(&request) {
            request.extensions_mut().insert(AdminCaller);
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks() -> Checks {
        let policy = AccessPolicy {
            admin_token: "secret".into(),
            admin_token_file: PathBuf::from("/x"),
            allowed_hosts: vec!["node.example".into()],
            allowed_origins: vec!["https://app.example".into()],
        };
        Checks::new(&policy, "127.0.0.1:8545".parse().unwrap())
    }

    fn request(headers: &[(&str, &str)]) -> HttpRequest {
        let mut builder = http::Request::builder().method("POST").uri("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(HttpBody::empty()).unwrap()
    }

    #[test]
    fn attack_a_web_page_or_a_rebound_name_cannot_reach_the_node() {
        let checks = checks();
        for host in [
            "127.0.0.1:8545",
            "localhost:1",
            "[::1]:8545",
            "node.example",
        ] {
            assert_eq!(checks.refusal(&request(&[("host", host)])), None, "{host}");
        }
        for host in ["evil.example:8545", "127.0.0.2", "", "[::2]:1"] {
            assert!(
                checks.refusal(&request(&[("host", host)])).is_some(),
                "{host}"
            );
        }
        let from = |origin| request(&[("host", "127.0.0.1:8545"), ("origin", origin)]);
        assert!(checks.refusal(&from("https://evil.example")).is_some());
        assert!(checks.refusal(&from("null")).is_some());
        assert_eq!(checks.refusal(&from("https://app.example/")), None);
    }

    #[test]
    fn attack_only_the_token_holder_is_admin() {
        let checks = checks();
        let with = |value| request(&[("host", "localhost"), ("authorization", value)]);
        assert!(checks.is_admin(&with("Bearer secret")));
        for wrong in [
            "Bearer secre",
            "Bearer secret2",
            "secret",
            "Basic secret",
            "",
        ] {
            assert!(!checks.is_admin(&with(wrong)), "{wrong}");
        }
        let mut plain = Extensions::new();
        assert!(require_admin(&plain, "blobRemove").is_err());
        plain.insert(AdminCaller);
        assert!(require_admin(&plain, "blobRemove").is_ok());
    }
}
