//! Git-ops over HTTP: `GET /api/history`, the Commit button, the rollback preview and
//! rollback, Sync, resolving a divergence, and the webhook that fetches at once.
//!
//! Who made a change is read from the request: the UI (a browser write carries `Origin`;
//! "admin" when signed in with the token's session cookie) or an API client (the bearer
//! token, or none). The webhook is open to the LAN like `/api/health-event` but needs the
//! shared secret of `git.webhook_secret_file`: GitHub/Gitea's `X-Hub-Signature-256` (HMAC
//! of the body), GitLab's `X-Gitlab-Token`, or `X-Spark-Control-Secret`.
//! Must not: run git itself (the `gitops` service does), log the secret.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::extract::{Body, Path};
use super::AppState;
use crate::edit::Etag;
use crate::gitops::{Actor, GitOps, GitOpsError, Prefer};

/// Largest webhook body (GitHub's push payloads are usually a few KiB).
pub const WEBHOOK_MAX_BODY: usize = 1024 * 1024;

impl From<GitOpsError> for ApiError {
    fn from(e: GitOpsError) -> Self {
        match e {
            GitOpsError::Off(m) => ApiError::StateConflict {
                code: "gitops_off",
                message: format!("git-ops is off: {m}"),
            },
            GitOpsError::NotFound(m) => ApiError::NotFound(m),
            GitOpsError::Invalid {
                message,
                diagnostics,
            } => ApiError::Invalid {
                message,
                diagnostics,
            },
            GitOpsError::State(m) => ApiError::StateConflict {
                code: "git_state",
                message: m,
            },
            GitOpsError::Store(s) => s.into(),
            GitOpsError::Git(g) => ApiError::Internal(format!("git: {g}")),
        }
    }
}

/// Who is asking, for the commit message.
pub fn actor_of(state: &AppState, headers: &HeaderMap) -> Actor {
    let bearer = headers.contains_key(header::AUTHORIZATION);
    let cookie = super::auth::session_cookie(headers).is_some();
    let browser = headers.contains_key(header::ORIGIN)
        || headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"same-origin");
    let token = state.admin_token.is_some();
    if bearer {
        Actor::Api { admin: token }
    } else if browser || cookie {
        Actor::Ui {
            admin: token && cookie,
        }
    } else {
        Actor::Api { admin: false }
    }
}

fn service(state: &AppState) -> Result<&GitOps, ApiError> {
    state
        .gitops
        .as_ref()
        .ok_or_else(|| ApiError::StateConflict {
            code: "gitops_off",
            message: "git-ops is not running in this server".into(),
        })
}

/// A commit id in a path: 4 to 64 hex digits.
fn commit_id(id: &str) -> Result<&str, ApiError> {
    if (4..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(ApiError::bad_request(
            "bad_commit",
            format!(
                "path: `{}` is not a commit id (4 to 64 hex digits, as `id` in GET /api/history)",
                crate::model::limits::clip(id)
            ),
        ))
    }
}

/// `GET /api/history`.
pub async fn history(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match &state.gitops {
        Some(g) => Ok(Json(g.history().await?)),
        None => Ok(Json(json!({
            "mode": "off", "reason": "git-ops is not running in this server",
            "commits": [], "uncommitted": null, "sync": null,
        }))),
    }
}

/// `POST /api/history/commit`: commit the uncommitted change of the file.
pub async fn commit(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let actor = actor_of(&state, &headers);
    Ok(Json(service(&state)?.commit_uncommitted(actor).await?))
}

/// `GET /api/history/{id}/plan`: what a rollback to `id` would change and do.
pub async fn preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = commit_id(&id)?;
    Ok(Json(service(&state)?.preview(id).await?))
}

/// `POST /api/history/{id}/rollback`: a new commit restoring `id`'s version.
pub async fn rollback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = commit_id(&id)?.to_string();
    let expected = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => Some(Etag::parse(v.to_str().unwrap_or("")).ok_or_else(|| {
            ApiError::bad_request(
                "bad_if_match",
                "If-Match is not an ETag of GET /api/desired",
            )
        })?),
    };
    let actor = actor_of(&state, &headers);
    Ok(Json(
        service(&state)?
            .rollback(&id, expected.as_ref(), actor)
            .await?,
    ))
}

/// `POST /api/git/sync`: fetch now (pull, push).
pub async fn sync(State(state): State<AppState>) -> Result<Response, ApiError> {
    service(&state)?.nudge();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": "git sync" })),
    )
        .into_response())
}

/// Body of `POST /api/git/resolve`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// Whose lines win where both sides changed the same ones.
    prefer: Prefer,
}

/// `POST /api/git/resolve`: merge the remote, both histories kept.
pub async fn resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(r): Body<Resolve>,
) -> Result<Json<Value>, ApiError> {
    let actor = actor_of(&state, &headers);
    Ok(Json(service(&state)?.resolve(r.prefer, actor).await?))
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn webhook_ok(headers: &HeaderMap, body: &[u8], secret: &str) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(sig) = get("x-hub-signature-256") {
        let want = format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), body)));
        return bool::from(sig.as_bytes().ct_eq(want.as_bytes()));
    }
    match get("x-gitlab-token").or_else(|| get("x-spark-control-secret")) {
        Some(given) => bool::from(given.as_bytes().ct_eq(secret.as_bytes())),
        None => false,
    }
}

/// `POST /api/git/webhook`: a push happened on the remote; fetch now.
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let g = service(&state)?;
    let secret = g
        .webhook_secret()
        .await
        .map_err(|e| ApiError::Forbidden(format!("the webhook is refused: {e}")))?;
    if !webhook_ok(&headers, &body, &secret) {
        return Err(ApiError::Unauthorized(
            "the webhook's secret is missing or wrong: send `X-Hub-Signature-256` (HMAC-SHA256 of the body), `X-Gitlab-Token` or `X-Spark-Control-Secret`".into(),
        ));
    }
    g.nudge();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": "git fetch" })),
    )
        .into_response())
}

/// The OpenAPI paths of these routes.
pub fn openapi_paths() -> Value {
    let err = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let ok = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": { "type": "object" } } } });
    let id = json!({ "name": "id", "in": "path", "required": true, "description": "A commit id (`id` in GET /api/history)",
                     "schema": { "type": "string", "minLength": 4, "maxLength": 64, "pattern": "^[0-9a-fA-F]+$" } });
    let admin = json!([{ "admin": [] }]);
    json!({
        "/api/history": { "get": {
            "summary": "The desired file's commits (newest first, with diffs), the uncommitted change, which commit is in force and which one the hosts converged to, and the pull-mode state",
            "tags": ["git"], "responses": { "200": ok("History") } } },
        "/api/history/commit": { "post": {
            "summary": "Commit the file's uncommitted change (a hand edit)", "tags": ["git"], "security": admin,
            "responses": { "200": ok("Committed (`changed: false`: nothing to commit)"),
                           "401": err("Admin token missing or wrong"), "403": err("Cross-origin write"),
                           "409": err("Git-ops is off (the message says why)") } } },
        "/api/history/{id}/plan": { "get": {
            "summary": "What a rollback to this commit would change, and the plan it would cause", "tags": ["git"],
            "parameters": [id],
            "responses": { "200": ok("Changes and plan"), "400": err("Not a commit id"), "404": err("No such commit, or the file is not in it"),
                           "409": err("Git-ops is off"), "422": err("That version is not a valid desired state") } } },
        "/api/history/{id}/rollback": { "post": {
            "summary": "Roll back: a new commit restoring this commit's version of the file (never a history rewrite)", "tags": ["git"], "security": admin,
            "parameters": [id, { "name": "If-Match", "in": "header", "required": false, "description": "The ETag of GET /api/desired the rollback is based on", "schema": { "type": "string" } }],
            "responses": { "200": ok("Rolled back (`changed: false`: already that version)"), "400": err("Not a commit id, or malformed If-Match"),
                           "401": err("Admin token missing or wrong"), "403": err("Cross-origin write"),
                           "404": err("No such commit"), "409": err("The file changed since If-Match, or git-ops is off"),
                           "422": err("That version is not a valid desired state") } } },
        "/api/git/sync": { "post": {
            "summary": "Fetch the remote now (fast-forward, push)", "tags": ["git"], "security": admin,
            "responses": { "202": ok("Started"), "401": err("Admin token missing or wrong"), "409": err("Git-ops is not running") } } },
        "/api/git/resolve": { "post": {
            "summary": "Resolve a divergence: merge the remote (both histories kept), preferring mine or theirs where both changed the same lines", "tags": ["git"], "security": admin,
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["prefer"], "additionalProperties": false,
                "properties": { "prefer": { "type": "string", "enum": ["mine", "theirs"] } } } } } },
            "responses": { "200": ok("Merged"), "401": err("Admin token missing or wrong"), "409": err("Nothing to resolve, no remote, or git-ops is off"),
                           "415": err("Body is not application/json"), "422": err("Bad body, or the merge result is not a valid desired state (nothing changed)") } } },
        "/api/git/webhook": { "post": {
            "summary": "A push happened on the remote: fetch now. Needs the shared secret (X-Hub-Signature-256, X-Gitlab-Token or X-Spark-Control-Secret), not the admin token", "tags": ["git"],
            "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object" } } } },
            "responses": { "202": ok("Fetch started"), "401": err("Secret missing or wrong"), "403": err("No webhook secret is configured"),
                           "409": err("Git-ops is not running"), "413": err("Body over 1 MiB") } } },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn webhook_secrets() {
        let secret = "0123456789abcdef-secret";
        let body = b"{\"ref\":\"refs/heads/main\"}";
        let mut h = HeaderMap::new();
        assert!(!webhook_ok(&h, body, secret));
        let sig = format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), body)));
        h.insert("x-hub-signature-256", sig.parse().expect("header"));
        assert!(webhook_ok(&h, body, secret));
        assert!(!webhook_ok(&h, b"{}", secret), "another body");
        let mut h = HeaderMap::new();
        h.insert("x-gitlab-token", secret.parse().expect("header"));
        assert!(webhook_ok(&h, body, secret));
        h.insert("x-gitlab-token", "wrong".parse().expect("header"));
        assert!(!webhook_ok(&h, body, secret));
    }
}
