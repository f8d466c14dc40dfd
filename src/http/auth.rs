//! The guard in front of every route: the `Host` allowlist, the same-origin check of
//! writes, and the admin credential (bearer token or the session cookie of `session.rs`).
//!
//! Rules, in order:
//! 1. **Host.** A request whose `Host` is not one of the server's names
//!    ([`AllowedHosts`]) is refused (403 `host_not_allowed`, saying how to allow it) —
//!    every route: UI, API, SSE, and the `/v1` proxy unless inference keys are set (a key
//!    is not ambient, so a rebinding page has none). A request without `Host` (HTTP/1.0,
//!    in-process tests) passes: every browser sends one.
//! 2. **Origin.** A write (any method but GET/HEAD/OPTIONS) carrying `Origin` must come
//!    from an allowlisted origin *and* the same host:port as `Host`: a page on another
//!    site, or on another port of this machine, cannot drive the cluster even with no
//!    token. A write authorised by the cookie must carry `Origin` (or
//!    `Sec-Fetch-Site: same-origin`).
//! 3. **Admin credential.** With an admin token set, every route needs it — reads too
//!    (desired.yaml, state, plans, logs, events, metrics) — except what LAN apps and the
//!    login page need: the UI shell (`/`, `/app.js`, `/app.css`, `/ui/*`), `/healthz`, `/readyz`,
//!    `/api/endpoints`, `POST /api/health-event`, `/api/openapi.json`,
//!    `/schema/desired-state.json` (editors fetch it without a token), `/api/session`,
//!    and `POST /api/git/webhook` (which needs its own shared secret).
//!    The proxy has its own inference keys.
//!
//! Failed credentials are logged (`warn`, at most once per client address per 10 s, with
//! a count of the ones not logged); the token never is.
//! Must not: read the token from desired.yaml, log the token or the cookie.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::hosts::{host_part, AllowedHosts};
use super::AppState;

/// The session cookie's name (set by `POST /api/session`).
pub const COOKIE: &str = "spark_control_session";

/// Routes anyone who passed the Host check may use.
fn open_route(method: &Method, path: &str) -> bool {
    match path {
        "/"
        | "/app.js"
        | "/app.css"
        | "/healthz"
        | "/readyz"
        | "/api/endpoints"
        | "/api/openapi.json"
        | "/schema/desired-state.json"
        | "/api/session" => true,
        // The UI's modules (`ui::MODULES`), like `/app.js`.
        p if p.starts_with("/ui/") => method == Method::GET || method == Method::HEAD,
        // The webhook checks its own shared secret (`history::webhook`).
        "/api/health-event" | "/api/git/webhook" => method == Method::POST,
        _ => false,
    }
}

/// The `/v1` proxy's routes (merged from `proxy::router`).
fn proxy_route(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/") || path.starts_with("/api/audio/")
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check(&state, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn check(state: &AppState, req: &Request) -> Result<(), ApiError> {
    let path = req.uri().path();
    let headers = req.headers();
    let proxy = proxy_route(path);
    let host = request_host(req);
    if !(proxy && state.security.proxy_keys) {
        check_host(&state.security.allowed, host.as_deref())?;
    }
    if proxy {
        return Ok(());
    }
    let write = is_write(req.method());
    if write {
        same_origin(&state.security.allowed, headers, host.as_deref())?;
    }
    if open_route(req.method(), path) {
        return Ok(());
    }
    let Some(token) = &state.admin_token else {
        return Ok(());
    };
    match credential(headers, token, &state.security.session_value) {
        Credential::Bearer => Ok(()),
        Credential::Cookie if !write || origin_vouched(headers) => Ok(()),
        Credential::Cookie => Err(ApiError::Forbidden(
            "a write signed in by cookie must come from the UI (no Origin header was sent)".into(),
        )),
        Credential::None => Err(ApiError::Unauthorized(format!(
            "{} needs the admin token: send `Authorization: Bearer <token>`, or sign in \
             in the UI",
            what(write)
        ))),
        Credential::Wrong => {
            state.security.failures.note(peer(req), req.method(), path);
            Err(ApiError::Unauthorized(
                "the admin token in `Authorization: Bearer …` (or the session cookie) is wrong"
                    .into(),
            ))
        }
    }
}

fn what(write: bool) -> &'static str {
    if write {
        "this route changes the cluster and"
    } else {
        "with an admin token set, reading the controller's state"
    }
}

/// `Host`, or HTTP/2's `:authority`.
fn request_host(req: &Request) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
}

fn check_host(allowed: &AllowedHosts, host: Option<&str>) -> Result<(), ApiError> {
    let Some(host) = host else {
        return Ok(());
    };
    if allowed.allows(host) {
        return Ok(());
    }
    let shown: String = host.chars().take(80).collect();
    Err(ApiError::HostNotAllowed(format!(
        "this server does not answer to the name `{shown}` (a guard against DNS rebinding); \
         if that is how you reach it, start it with `--allowed-host {name}` (or \
         SPARK_CONTROL_ALLOWED_HOSTS={name}); it answers to: {list}, and any IP address",
        name = host_part(&shown),
        list = allowed.names().join(", ")
    )))
}

/// An `Origin`, when present, must be allowlisted and name the same host:port as `Host`.
fn same_origin(
    allowed: &AllowedHosts,
    headers: &HeaderMap,
    host: Option<&str>,
) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin.as_bytes());
    let origin_authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
        .unwrap_or("");
    let host = host.unwrap_or("");
    if allowed.allows(origin_authority)
        && !host.is_empty()
        && same_authority(origin_authority, host, &origin)
    {
        return Ok(());
    }
    let shown: String = origin.chars().take(80).collect();
    Err(ApiError::Forbidden(format!(
        "cross-origin write refused: Origin `{shown}` is not this server; use the UI served \
         by spark-control itself"
    )))
}

/// `a` and `b` name the same host and port (a missing port is the scheme's default).
fn same_authority(origin_authority: &str, host: &str, origin: &str) -> bool {
    let default_port = if origin.starts_with("https://") {
        "443"
    } else {
        "80"
    };
    let split = |a: &str| -> (String, String) {
        let h = host_part(a);
        let port = a[h.len()..].strip_prefix(':').unwrap_or(default_port);
        (h.to_ascii_lowercase(), port.to_string())
    };
    split(origin_authority) == split(host)
}

/// A browser said the request is same-origin (writes signed in by cookie need this).
fn origin_vouched(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN)
        || headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"same-origin")
}

enum Credential {
    None,
    Bearer,
    Cookie,
    Wrong,
}

fn credential(headers: &HeaderMap, token: &str, session_value: &str) -> Credential {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    if let Some(given) = bearer {
        return if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            Credential::Bearer
        } else {
            Credential::Wrong
        };
    }
    match session_cookie(headers) {
        Some(c) if bool::from(c.as_bytes().ct_eq(session_value.as_bytes())) => Credential::Cookie,
        Some(_) => Credential::Wrong,
        None => Credential::None,
    }
}

/// The value of our session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn peer(req: &Request) -> Option<IpAddr> {
    peer_of(req.extensions())
}

fn peer_of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client's address when the server loop recorded it (in-process tests: none).
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(peer_of(&parts.extensions)))
    }
}

/// Rate-limited log of failed credentials: one line per client address per window.
#[derive(Debug, Default)]
pub struct FailureLog {
    seen: Mutex<HashMap<Option<IpAddr>, (Instant, u64)>>,
}

impl FailureLog {
    const WINDOW: Duration = Duration::from_secs(10);

    /// Records a failed attempt and logs it unless this address was logged recently.
    pub fn note(&self, peer: Option<IpAddr>, method: &Method, path: &str) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let now = Instant::now();
        if seen.len() > 4096 {
            seen.retain(|_, (at, _)| now.duration_since(*at) < Self::WINDOW);
        }
        let who = peer.map_or_else(|| "an unknown address".to_string(), |p| p.to_string());
        let path: String = path.chars().take(120).collect();
        match seen.get_mut(&peer) {
            Some((at, suppressed)) if now.duration_since(*at) < Self::WINDOW => {
                *suppressed += 1;
            }
            Some((at, suppressed)) => {
                tracing::warn!(
                    "admin auth failed: wrong token from {who} on {method} {path} \
                     ({suppressed} more failure(s) from there not logged)"
                );
                *at = now;
                *suppressed = 0;
            }
            None => {
                tracing::warn!("admin auth failed: wrong token from {who} on {method} {path}");
                seen.insert(peer, (now, 0));
            }
        }
    }
}
