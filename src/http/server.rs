//! The accept loop: HTTP/1.1 connections with a header-read timeout and a cap on
//! concurrent connections per client address, the peer address for every request
//! (`ConnectInfo`), and graceful shutdown.
//!
//! Why not `axum::serve`: it sets no timer, so hyper's header-read timeout never fires —
//! 300 connections that never finish their headers stayed open for ever — and it has no
//! per-client limit. HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which this
//! server does not terminate (a reverse proxy in front does).
//! Must not: know about routes (it serves whatever `app(state)` is).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{app, AppState};

/// Limits of the accept loop.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeLimits {
    /// A connection that has not sent a whole request head within this time is closed
    /// (also an idle keep-alive connection, between requests).
    pub header_read_timeout: Duration,
    /// Concurrent connections one client address may hold; more are closed at once.
    /// 0: no limit. (Behind a reverse proxy every client has the proxy's address.)
    pub max_connections_per_client: usize,
}

impl Default for ServeLimits {
    /// 10 s and 256 connections.
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections_per_client: 256,
        }
    }
}

/// Connections open per client address.
#[derive(Default)]
struct Counts(Mutex<HashMap<IpAddr, usize>>);

/// One client's place among its connections; given back on drop.
struct Slot {
    counts: Arc<Counts>,
    ip: IpAddr,
}

impl Counts {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut map = self.0.lock().ok()?;
        let n = map.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.counts.0.lock() {
            if let Some(n) = map.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.ip);
                }
            }
        }
    }
}

/// Serves `app(state)` on `listener` until `shutdown` is cancelled, then stops accepting,
/// ends SSE streams and waits for in-flight requests (at most 10 s, then drops them).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if state.admin_token.is_none() {
        tracing::warn!(
            "NO ADMIN TOKEN: every mutating API route is open to anyone who can reach {local}; \
             set one (token file or environment) before exposing this server"
        );
    }
    tracing::info!(
        "answering to the names {} and any IP address (add more with --allowed-host)",
        state.security.allowed.names().join(", ")
    );
    let state = state.with_shutdown(shutdown.clone());
    let limits = state.security.limits.clone();
    let router = app(state);
    let counts = Arc::new(Counts::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept on {local} failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = counts.take(peer.ip(), limits.max_connections_per_client) else {
            if last_refusal_log.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                tracing::warn!(
                    "{} already holds {} connections; closing new ones (more refusals \
                     are not logged for a minute)",
                    peer.ip(),
                    limits.max_connections_per_client
                );
                last_refusal_log = Some(Instant::now());
            }
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req)
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(tcp), svc));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("HTTP shutdown: in-flight requests still running after 10 s; dropping them");
        }
    }
    Ok(())
}
