//! Auth of mutating routes: the admin bearer token and the same-origin check.
//!
//! Every request whose method is not GET/HEAD/OPTIONS is a write. A write from a browser
//! carrying an `Origin` whose host:port differs from `Host` is refused (403): that stops a
//! web page on another site from driving the cluster even when no token is set. Then,
//! when an admin token is configured, `Authorization: Bearer <token>` must match it
//! (compared in constant time) or the answer is 401. `POST /api/health-event` is exempt:
//! LAN apps push reports without credentials; it is rate-limited instead. Routes merged
//! from other modules (the `/v1` proxy) are not behind this guard.
//! Must not: read the token from desired.yaml, log the token.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;

/// Writes that need no admin token.
const OPEN_WRITES: &[&str] = &["/api/health-event"];

/// The middleware.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if write && !OPEN_WRITES.contains(&req.uri().path()) {
        let authority = req.uri().authority().map(|a| a.to_string());
        if let Err(e) = check(&state, req.headers(), authority.as_deref()) {
            return e.into_response();
        }
    }
    next.run(req).await
}

fn check(state: &AppState, headers: &HeaderMap, authority: Option<&str>) -> Result<(), ApiError> {
    same_origin(headers, authority)?;
    let Some(token) = &state.admin_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match given {
        None => Err(ApiError::Unauthorized(
            "this route changes the cluster and needs the admin token: send `Authorization: Bearer <token>`".into(),
        )),
        Some(g) if bool::from(g.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized(
            "the admin token in `Authorization: Bearer …` is wrong".into(),
        )),
    }
}

/// An `Origin` header, when present, must name the same host:port as `Host` (HTTP/2: the
/// request's `:authority`).
fn same_origin(headers: &HeaderMap, authority: Option<&str>) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority)
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
        .unwrap_or("");
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "cross-origin write refused: Origin `{origin}` is not this server (`{host}`); \
         use the UI served by spark-control itself"
    )))
}
