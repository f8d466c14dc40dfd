//! The shared, pooled upstream HTTP client and header hygiene.
//!
//! Owns: a small keep-alive pool of HTTP/1.1 connections per upstream (hyper's low-level
//! `client::conn::http1`, `TCP_NODELAY`, short connect timeout, IPv4 addresses tried
//! before IPv6) and stripping hop-by-hop headers. Must not know about routes or OpenAI
//! shapes.
//!
//! Why not hyper-util's pooled client: it spawns a task per request to hand the connection
//! back when it is idle again, hashes the pool key with SipHash and builds a connect future
//! for every request; here a connection goes back to the pool only when the caller has read
//! the response to its end ([`Lease::release`]), so a pooled connection is idle by
//! construction and nothing runs per request but the exchange itself.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// How long an idle connection is kept (uvicorn, vLLM's server, closes its side after 5 s;
/// a closed connection is noticed and skipped at checkout).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most idle connections kept, all upstreams together.
const MAX_IDLE: usize = 1024;
/// Longest wait for a pooled connection to finish its previous exchange.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// A failure to exchange with an upstream: connecting, or hyper's own error.
pub(crate) type ClientError = Box<dyn std::error::Error + Send + Sync>;

/// The upstream client shared by every request. Cheap to clone.
#[derive(Clone)]
pub(crate) struct UpstreamClient {
    pool: Arc<Pool>,
}

struct Pool {
    connect_timeout: Duration,
    idle: Mutex<VecDeque<Idle>>,
}

struct Idle {
    authority: String,
    tx: SendRequest<Body>,
    since: Instant,
}

/// A connection lent for one exchange. [`Lease::release`] once the response body has been
/// read to its end; dropped instead, the connection closes when its exchange is over.
pub(crate) struct Lease {
    pool: Arc<Pool>,
    authority: String,
    tx: SendRequest<Body>,
}

impl Lease {
    pub(crate) fn release(self) {
        if self.tx.is_closed() {
            return;
        }
        let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Forget the oldest connection when it is stale or the pool is full (O(1)).
        if idle
            .front()
            .is_some_and(|i| i.tx.is_closed() || i.since.elapsed() > IDLE_TIMEOUT)
            || idle.len() >= MAX_IDLE
        {
            idle.pop_front();
        }
        idle.push_back(Idle {
            authority: self.authority,
            tx: self.tx,
            since: Instant::now(),
        });
    }
}

/// Builds the client. `connect_timeout` bounds name resolution plus TCP connect.
pub(crate) fn build(connect_timeout: Duration) -> UpstreamClient {
    UpstreamClient {
        pool: Arc::new(Pool {
            connect_timeout,
            idle: Mutex::new(VecDeque::new()),
        }),
    }
}

impl UpstreamClient {
    /// Sends `req` (origin-form URI, `/path?query`) to `authority` (`host:port`) on a
    /// pooled connection, or a new one. A request that never left (its pooled connection
    /// had just closed) is sent again once, on a new connection; one that left is never
    /// sent twice.
    pub(crate) async fn request(
        &self,
        mut req: Request<Body>,
        authority: &str,
    ) -> Result<(Response<Incoming>, Lease), ClientError> {
        req.headers_mut()
            .insert(header::HOST, HeaderValue::from_str(authority)?);
        let mut fresh_only = false;
        loop {
            let pooled = if fresh_only {
                None
            } else {
                self.checkout(authority).await
            };
            let mut tx = match pooled {
                Some(tx) => tx,
                None => self.connect(authority).await?,
            };
            match tx.try_send_request(req).await {
                Ok(response) => {
                    let lease = Lease {
                        pool: Arc::clone(&self.pool),
                        authority: authority.to_owned(),
                        tx,
                    };
                    return Ok((response, lease));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !fresh_only => {
                        req = unsent;
                        fresh_only = true;
                    }
                    _ => return Err(Box::new(e.into_error())),
                },
            }
        }
    }

    /// The most recently used idle connection to `authority` that is still open.
    async fn checkout(&self, authority: &str) -> Option<SendRequest<Body>> {
        loop {
            let mut tx = {
                let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                let at = idle.iter().rposition(|i| i.authority == authority)?;
                let found = idle.remove(at)?;
                if found.since.elapsed() > IDLE_TIMEOUT {
                    continue;
                }
                found.tx
            };
            if tx.is_ready() {
                return Some(tx);
            }
            // Released right at the end of its response: hyper may still be finishing it.
            if !tx.is_closed()
                && tokio::time::timeout(READY_TIMEOUT, tx.ready())
                    .await
                    .is_ok_and(|r| r.is_ok())
            {
                return Some(tx);
            }
        }
    }

    /// A new connection to `authority`, IPv4 addresses first (mDNS `.local` names often
    /// resolve to IPv6 first while vLLM listens on IPv4 only).
    async fn connect(&self, authority: &str) -> Result<SendRequest<Body>, ClientError> {
        let deadline = tokio::time::Instant::now() + self.pool.connect_timeout;
        let timed_out = || -> ClientError {
            format!(
                "connecting to {authority} timed out after {:?}",
                self.pool.connect_timeout
            )
            .into()
        };
        let mut addrs: Vec<SocketAddr> =
            tokio::time::timeout_at(deadline, tokio::net::lookup_host(authority))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| format!("cannot resolve {authority}: {e}"))?
                .collect();
        addrs.sort_by_key(|a| !a.is_ipv4());
        let mut last: Option<ClientError> = None;
        for addr in addrs {
            match tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    stream.set_nodelay(true)?;
                    let (tx, conn) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                    tokio::spawn(async move {
                        // Ends when the upstream or we close the connection.
                        let _ = conn.await;
                    });
                    return Ok(tx);
                }
                Ok(Err(e)) => last = Some(format!("tcp connect error: {e}").into()),
                Err(_) => return Err(timed_out()),
            }
        }
        Err(last.unwrap_or_else(|| format!("{authority} resolves to no address").into()))
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded in either direction.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn check(input: &[(&str, &str)], expected: &[&str]) {
        let mut headers = HeaderMap::new();
        for (k, v) in input {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, expected, "input {input:?}");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        check(&[("content-type", "application/json")], &["content-type"]);
        check(
            &[
                ("connection", "keep-alive, x-private"),
                ("x-private", "1"),
                ("keep-alive", "timeout=5"),
                ("transfer-encoding", "chunked"),
                ("authorization", "Bearer k"),
            ],
            &["authorization"],
        );
        check(
            &[("te", "trailers"), ("upgrade", "h2c"), ("trailer", "x")],
            &[],
        );
        check(
            &[("proxy-authorization", "Basic x"), ("accept", "*/*")],
            &["accept"],
        );
    }
}
