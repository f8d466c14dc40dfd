//! The shared, pooled upstream HTTP client and header hygiene.
//!
//! Owns: building the hyper-util legacy client (HTTP/1.1 keep-alive pool, `TCP_NODELAY`,
//! short connect timeout, IPv4 addresses tried before IPv6) and stripping hop-by-hop
//! headers. Must not know about routes or OpenAI shapes.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName};
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The upstream client type shared by every request.
pub(crate) type UpstreamClient = Client<HttpConnector<Ipv4First>, Body>;

/// Builds the pooled client. Cheap to clone (an `Arc` inside).
pub(crate) fn build(connect_timeout: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new_with_resolver(Ipv4First(GaiResolver::new()));
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(1024)
        .build(connector)
}

/// DNS resolution that puts IPv4 addresses first: mDNS `.local` names often resolve to
/// IPv6 first while vLLM binds IPv4 only. IP-literal bases never reach the resolver.
#[derive(Clone)]
pub(crate) struct Ipv4First(GaiResolver);

type AddrsFuture =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl tower::Service<Name> for Ipv4First {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = AddrsFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let lookup = self.0.call(name);
        Box::pin(async move {
            let mut addrs: Vec<SocketAddr> = lookup.await?.collect();
            addrs.sort_by_key(|a| !a.is_ipv4());
            Ok(addrs.into_iter())
        })
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
