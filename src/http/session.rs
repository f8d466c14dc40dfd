//! Signing the browser in: `POST /api/session` checks the admin token and sets an
//! `HttpOnly; SameSite=Strict` cookie; `GET` says whether auth is on and whether this
//! browser is signed in; `DELETE` signs out.
//!
//! Why a cookie and not `localStorage`: script on the page (or an extension) can read
//! storage, but not an HttpOnly cookie; and `EventSource` (the live logs) cannot send an
//! `Authorization` header, while it does send cookies. The cookie holds a value derived
//! from the token (SHA-256 with a fixed label), not the token; it lasts for the browser
//! session. A token is checked before anything is stored, so the UI never shows an
//! unverified one as valid.
//! Must not: log the token or the cookie.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::auth::{session_cookie, Peer, COOKIE};
use super::error::ApiError;
use super::extract::Body;
use super::AppState;

/// The cookie value that stands for `token`.
pub fn session_value(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"spark-control session v1\0");
    h.update(token.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /api/session`.
pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> Json<serde_json::Value> {
    let signed_in = state.admin_token.is_some()
        && session_cookie(&headers).is_some_and(|c| {
            bool::from(c.as_bytes().ct_eq(state.security.session_value.as_bytes()))
        });
    Json(json!({
        "auth_required": state.admin_token.is_some(),
        "signed_in": signed_in,
    }))
}

/// Body of `POST /api/session`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The admin token.
    pub token: String,
}

/// `POST /api/session`: 204 and the cookie when the token is right, 401 otherwise.
pub async fn login(
    State(state): State<AppState>,
    Peer(peer): Peer,
    Body(login): Body<Login>,
) -> Result<Response, ApiError> {
    let Some(token) = &state.admin_token else {
        return Err(ApiError::bad_request(
            "auth_off",
            "this server has no admin token set, so there is nothing to sign in to",
        ));
    };
    if !bool::from(login.token.trim().as_bytes().ct_eq(token.as_bytes())) {
        state
            .security
            .failures
            .note(peer, &axum::http::Method::POST, "/api/session");
        return Err(ApiError::Unauthorized(
            "that is not the admin token; nothing was stored".into(),
        ));
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        state.security.session_value
    );
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// `DELETE /api/session`: clears the cookie.
pub async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}
