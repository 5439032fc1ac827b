//! The node's HTTP listener beside the RPC (`--metrics-port`): Prometheus metrics at
//! `/metrics` and the dashboard at `/` (see [`crate::dashboard`]).
//!
//! ```text
//!  accept (at most 16 connections, 5 s for a request head, one request each, 15 s a
//!  connection) ─► Host/Origin allow-list (the RPC's) ─► route:
//!     /metrics      ─► Scrape: sampled gauges refreshed, registry encoded
//!     /api/status   ─► Dashboard::status_json    (these three worked out by one request at a
//!     /api/deal/ID  ─► Dashboard::deal_json       time each on the blocking pool; the metrics
//!     /api/account/A ─► Dashboard::account_json   and the status are reused for a second)
//!     /             ─► the page
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::dashboard::{Dashboard, DashboardError};
use crate::error::{NodeError, Result};
use crate::metrics::{Sampled, Sources, classic_text};

/// Something the listener works out on the blocking pool for a request (it reads the chain).
trait Render: Send + Sync + 'static {
    fn render(&self) -> std::result::Result<String, (StatusCode, String)>;
}

/// The metrics: the registry, its sampled gauges refreshed from their sources first.
#[derive(Debug)]
struct Scrape {
    registry: Registry,
    sampled: Sampled,
    sources: Sources,
}

impl Render for Scrape {
    /// The metrics in OpenMetrics's text format.
    fn render(&self) -> std::result::Result<String, (StatusCode, String)> {
        self.sampled.refresh(&self.sources);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok(text)
    }
}

impl Render for Dashboard {
    fn render(&self) -> std::result::Result<String, (StatusCode, String)> {
        self.status_json().map_err(refusal)
    }
}

/// A [`Render`] worked out by one request at a time and reused for [`SCRAPE_REUSE`] (so that
/// counters raised from their sources never race, and a scraper or a page reloading in a loop
/// cannot make the node read the chain more often); a request that waits past
/// [`SCRAPE_WAIT`] for the one before it is answered 503.
struct Reused<T> {
    inner: T,
    permit: Arc<tokio::sync::Semaphore>,
    last: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

impl<T: Render> Reused<T> {
    fn new(inner: T) -> Arc<Self> {
        Arc::new(Self {
            inner,
            permit: Arc::new(tokio::sync::Semaphore::new(1)),
            last: std::sync::Mutex::new(None),
        })
    }

    /// The last rendering if it is recent enough, else a new one.
    async fn get(self: Arc<Self>) -> std::result::Result<String, (StatusCode, String)> {
        let reused = self.clone();
        self.exclusive(move || {
            let mut last = reused.last.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, text)) = last.as_ref()
                && at.elapsed() < SCRAPE_REUSE
            {
                return Ok(text.clone());
            }
            let text = reused.inner.render()?;
            *last = Some((std::time::Instant::now(), text.clone()));
            Ok(text)
        })
        .await
    }

    /// Runs `work` on the blocking pool while holding the one permit.
    async fn exclusive<F>(&self, work: F) -> std::result::Result<String, (StatusCode, String)>
    where
        F: FnOnce() -> std::result::Result<String, (StatusCode, String)> + Send + 'static,
    {
        let busy = || {
            let message = "another request is being worked out: try again".to_string();
            (StatusCode::SERVICE_UNAVAILABLE, message)
        };
        let Ok(Ok(permit)) =
            tokio::time::timeout(SCRAPE_WAIT, self.permit.clone().acquire_owned()).await
        else {
            return Err(busy());
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .unwrap_or_else(|e| Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())))
    }
}

/// A scrape this recent is served again rather than worked out anew: a scraper (or a web
/// page loading the URL in a loop) cannot make the node read the chain more often.
const SCRAPE_REUSE: Duration = Duration::from_secs(1);
/// How long a scrape waits for the one before it; past that it is answered 503.
const SCRAPE_WAIT: Duration = Duration::from_secs(5);
/// Connections the listener holds at once; more are closed as they come.
const MAX_CONNECTIONS: usize = 16;
/// Time a client has to send its request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection lives, whatever it does: one request (no keep-alive) and its
/// answer.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(15);

/// Content type of OpenMetrics's text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of Prometheus's classic text format.
const CLASSIC_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr` and serves `GET /metrics` from `registry` (after refreshing `sampled` from
/// `sources`) and the dashboard (see [`crate::dashboard`]) behind `access`, until `stopped`.
/// Returns the bound address. At most [`MAX_CONNECTIONS`] at once, each answered once and
/// closed, none kept past [`CONNECTION_LIFETIME`]: a client that opens connections and sends
/// nothing costs the node no more than that, and never holds up its shutdown.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    sampled: Sampled,
    sources: Sources,
    access: &cairn_rpc::AccessPolicy,
    mut stopped: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let dashboard = Reused::new(Dashboard::new(sources.clone()));
    let scrape = Reused::new(Scrape {
        registry,
        sampled,
        sources,
    });
    // OpenMetrics for a scraper that asks for it (Prometheus does), the classic format else.
    let metrics = move |headers: axum::http::HeaderMap| {
        let scrape = scrape.clone();
        async move {
            let openmetrics = headers
                .get(header::ACCEPT)
                .and_then(|accept| accept.to_str().ok())
                .is_some_and(|accept| accept.contains("application/openmetrics-text"));
            match scrape.get().await {
                Ok(text) if openmetrics => {
                    ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response()
                }
                Ok(text) => {
                    ([(header::CONTENT_TYPE, CLASSIC_TEXT)], classic_text(&text)).into_response()
                }
                Err(refused) => refused.into_response(),
            }
        }
    };
    let status = {
        let dashboard = dashboard.clone();
        move || {
            let dashboard = dashboard.clone();
            async move { json_answer(dashboard.get().await) }
        }
    };
    let account = {
        let dashboard = dashboard.clone();
        move |axum::extract::Path(address): axum::extract::Path<String>| {
            lookup(
                dashboard.clone(),
                Dashboard::parse_address(&address),
                Dashboard::account_json,
            )
        }
    };
    let deal = move |axum::extract::Path(id): axum::extract::Path<String>| {
        lookup(
            dashboard.clone(),
            Dashboard::parse_deal_id(&id),
            Dashboard::deal_json,
        )
    };
    let page = || async {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                // The page runs only its own inline script and reads only this listener.
                (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
            ],
            crate::dashboard::PAGE,
        )
    };
    let socket = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::MetricsBind { addr, source })?;
    let bound = socket
        .local_addr()
        .map_err(|source| NodeError::MetricsBind { addr, source })?;
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/", axum::routing::get(page))
        .route("/api/status", axum::routing::get(status))
        .route("/api/deal/{id}", axum::routing::get(deal))
        .route("/api/account/{address}", axum::routing::get(account))
        .fallback(|| async {
            let message = "not found: this listener serves /, /api/status, /api/deal/ID, \
                           /api/account/ADDRESS and /metrics";
            (StatusCode::NOT_FOUND, message)
        })
        .layer(cairn_rpc::access::AccessLayer::new(access, bound));
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = socket.accept() => accepted,
                _ = stopped.changed() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!(%error, "metrics listener: accept failed");
                    continue;
                }
            };
            // Over the limit: closed at once (dropped), before a byte is read.
            let Ok(held) = connections.clone().try_acquire_owned() else {
                continue;
            };
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::spawn(async move {
                let _held = held;
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            });
        }
    });
    Ok((bound, task))
}

/// The dashboard's content security policy: its own inline style and script, and requests to
/// this listener only.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
                           style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; \
                           base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// The JSON answers' headers: read as JSON only, never sniffed into a page.
const JSON_HEADERS: [(header::HeaderName, &str); 2] = [
    (header::CONTENT_TYPE, "application/json"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

/// One dashboard lookup: a malformed key is answered at once, before it waits for the one
/// reader; a well-formed one is read on the blocking pool.
async fn lookup<K: Send + 'static>(
    dashboard: Arc<Reused<Dashboard>>,
    key: std::result::Result<K, DashboardError>,
    read: fn(&Dashboard, K) -> std::result::Result<String, DashboardError>,
) -> axum::response::Response {
    let key = match key {
        Ok(key) => key,
        Err(error) => return json_answer(Err(refusal(error))),
    };
    let reader = dashboard.clone();
    let answer = dashboard
        .exclusive(move || read(&reader.inner, key).map_err(refusal))
        .await;
    json_answer(answer)
}

/// The status and words for a dashboard error; a failed read is logged here and answered
/// without its details (they name files of the data directory).
fn refusal(error: DashboardError) -> (StatusCode, String) {
    match error {
        DashboardError::BadDealId(_) | DashboardError::BadAddress(_) => {
            (StatusCode::BAD_REQUEST, error.to_string())
        }
        DashboardError::NoSuchDeal(_)
        | DashboardError::NoSuchAccount(_)
        | DashboardError::NoProvider => (StatusCode::NOT_FOUND, error.to_string()),
        DashboardError::Read(_) => {
            tracing::warn!(%error, "dashboard request failed");
            let message = "the node could not read its chain: see its log".to_string();
            (StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
}

/// A JSON answer, or the error in words (as JSON, so the page shows it).
fn json_answer(
    answer: std::result::Result<String, (StatusCode, String)>,
) -> axum::response::Response {
    match answer {
        Ok(json) => (JSON_HEADERS, json).into_response(),
        Err((status, message)) => {
            let body = serde_json::json!({ "error": message }).to_string();
            (status, JSON_HEADERS, body).into_response()
        }
    }
}
