//! Downloads and launcher updates over HTTP: list/start/cancel download jobs, read the
//! launcher's update state, ask for an update now.
//!
//! The handlers talk to the download manager in the loop's `Handle` (its own jobs, not
//! the executor) and send `Command::ApplyUpdate` to the loop; they never run commands on
//! hosts. Mutating routes sit behind the admin guard like every other write.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{Body, Path};
use super::read::snapshot;
use super::AppState;
use crate::downloads::{DownloadError, Job};
use crate::hub::HubError;
use crate::model::desired::{Mode, UpdatePolicy};
use crate::reconcile::Command;

/// `POST /api/downloads` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartDownload {
    /// `org/name`.
    pub repo: String,
    /// `solo` (head, default) or `cluster` (every cluster host).
    #[serde(default)]
    pub mode: Mode,
}

fn api_error(e: DownloadError) -> ApiError {
    match e {
        DownloadError::Hub(h @ HubError::BadRepo(_)) => {
            ApiError::bad_request("invalid_repo", h.to_string())
        }
        DownloadError::Hub(h @ HubError::NotFound { .. }) => {
            ApiError::bad_request("repo_not_found", h.to_string())
        }
        DownloadError::Hub(h @ HubError::NeedsToken { .. }) => {
            ApiError::bad_request("repo_needs_token", h.to_string())
        }
        DownloadError::Hub(h) => ApiError::Unavailable(h.to_string()),
        DownloadError::NoTarget(m) => ApiError::bad_request("no_cluster", m),
        DownloadError::NotFound(id) => ApiError::NotFound(format!(
            "there is no download `{id}`; see GET /api/downloads"
        )),
        e @ DownloadError::Finished { .. } => {
            ApiError::bad_request("download_finished", e.to_string())
        }
        e => ApiError::Internal(e.to_string()),
    }
}

/// `GET /api/downloads`: every job, newest first.
pub async fn list(State(state): State<AppState>) -> Json<Vec<Job>> {
    Json(state.handle.downloads.list())
}

/// `POST /api/downloads`: asks the Hub (a missing repo or one needing a token is refused
/// here), then starts the job. 202 `{id}`.
pub async fn start(
    State(state): State<AppState>,
    Body(req): Body<StartDownload>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let repo = req.repo.trim().to_string();
    let id = state
        .handle
        .downloads
        .start(&repo, req.mode)
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "downloads": "/api/downloads" })),
    ))
}

/// `DELETE /api/downloads/{id}`: cancels it (partial files stay for a later download).
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.handle.downloads.cancel(&id).map_err(api_error)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "cancelled": id }))))
}

/// `GET /api/updates`: policy, HEAD, commits behind and their subjects, last check,
/// whether an apply runs, how the last one ended.
pub async fn updates(State(state): State<AppState>) -> Json<Value> {
    let s = snapshot(&state);
    let info = state.handle.updates.borrow().clone();
    let (policy, pin, interval) = match s.desired.as_ref() {
        Some(d) => {
            let (p, pin) = match &d.updates.launcher {
                UpdatePolicy::Manual => ("manual", None),
                UpdatePolicy::Notify => ("notify", None),
                UpdatePolicy::Auto => ("auto", None),
                UpdatePolicy::Pin(c) => ("pin", Some(c.clone())),
            };
            (Some(p), pin, Some(d.updates.check_interval_secs))
        }
        None => (None, None, None),
    };
    let head = s
        .desired
        .as_ref()
        .and_then(|d| d.primary_cluster())
        .map(|c| c.head.clone());
    let launcher = head
        .as_ref()
        .and_then(|h| s.observed.hosts.get(h))
        .map(|h| &h.launcher);
    let known = launcher.and_then(|f| f.get());
    Json(json!({
        "policy": policy,
        "pin": pin,
        "check_interval_secs": interval,
        "head": known.map(|l| l.head.clone()),
        "behind": known.and_then(|l| l.behind),
        "subjects": known.map(|l| l.subjects.clone()).unwrap_or_default(),
        "branch": known.and_then(|l| l.branch.clone()),
        "pinned_from": known.and_then(|l| l.pinned_from.clone()),
        "unknown_because": launcher.and_then(|f| f.why()),
        "drift": match (&pin, known) {
            (Some(p), Some(l)) => Some(!l.head.starts_with(p.as_str())),
            _ => None,
        },
        "last_check": info.last_check,
        "applying": info.applying,
        "last_apply": info.last_apply,
        "last_apply_error": info.last_apply_error,
        "logs": "/api/logs",
    }))
}

/// `POST /api/updates/apply`: queue `git pull && ./build-and-copy.sh -c <workers>` through
/// the loop.
pub async fn apply(State(state): State<AppState>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let has_cluster = snapshot(&state)
        .desired
        .as_ref()
        .is_some_and(|d| d.primary_cluster().is_some());
    if !has_cluster {
        return Err(ApiError::bad_request(
            "no_cluster",
            "no cluster is configured, so there is no launcher checkout to update",
        ));
    }
    state
        .handle
        .commands
        .try_send(Command::ApplyUpdate)
        .map_err(|_| {
            ApiError::Unavailable("the control loop is busy or stopped; retry in a moment".into())
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({ "accepted": "launcher update", "status": "/api/updates", "logs": "/api/logs" }),
        ),
    ))
}

fn err(desc: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// The OpenAPI paths of these routes.
pub fn openapi_paths() -> Value {
    let host = json!({ "type": "object", "properties": {
        "host": { "type": "string" },
        "state": { "type": "string", "enum": ["queued", "running", "stalled", "failed", "done", "cancelled"] },
        "bytes": { "type": "integer" }, "total": { "type": "integer", "nullable": true },
        "percent": { "type": "number", "nullable": true },
        "rate_bps": { "type": "number", "nullable": true }, "eta_secs": { "type": "integer", "nullable": true },
        "error": { "type": "string", "nullable": true }, "warning": { "type": "string", "nullable": true },
        "attempts": { "type": "integer" } } });
    let job = json!({ "type": "object", "properties": {
        "id": { "type": "string" }, "repo": { "type": "string" },
        "mode": { "type": "string", "enum": ["solo", "cluster"] },
        "origin": { "type": "object" },
        "hosts": { "type": "array", "items": host },
        "state": { "type": "string" }, "total": { "type": "integer", "nullable": true },
        "note": { "type": "string", "nullable": true, "description": "e.g. size unknown: why" },
        "started_at": { "type": "string", "format": "date-time" },
        "finished_at": { "type": "string", "format": "date-time", "nullable": true },
        "suggestion": { "type": "object", "nullable": true, "description": "add-to-catalog prefill when done",
            "properties": { "name": { "type": "string" }, "repo": { "type": "string" }, "mode": { "type": "string" } } } } });
    let admin = json!([{ "admin": [] }]);
    json!({
        "/api/downloads": {
            "get": { "summary": "Download jobs (ad hoc and declared), newest first", "tags": ["downloads"],
                "responses": { "200": { "description": "Jobs", "content": { "application/json": { "schema": { "type": "array", "items": job } } } } } },
            "post": { "summary": "Download a Hugging Face repo onto the head (solo) or every cluster host", "tags": ["downloads"],
                "security": admin,
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["repo"], "additionalProperties": false,
                    "properties": { "repo": { "type": "string" }, "mode": { "type": "string", "enum": ["solo", "cluster"] } } } } } },
                "responses": {
                    "202": { "description": "Started", "content": { "application/json": { "schema": { "type": "object", "required": ["id"], "properties": { "id": { "type": "string" } } } } } },
                    "400": err("Bad body, not a repo id (invalid_repo), not on the Hub (repo_not_found), needs a token (repo_needs_token), no cluster (no_cluster)"),
                    "401": err("Admin token missing or wrong"), "403": err("Cross-origin write"),
                    "415": err("Body is not application/json"),
                    "503": err("The Hub did not answer") } } },
        "/api/downloads/{id}": { "delete": { "summary": "Cancel a download (partial files stay)", "tags": ["downloads"],
            "security": admin,
            "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
            "responses": { "202": { "description": "Cancelling", "content": { "application/json": { "schema": { "type": "object" } } } },
                "400": err("Already ended (download_finished)"), "401": err("Admin token missing or wrong"),
                "403": err("Cross-origin write"), "404": err("No such download") } } },
        "/api/updates": { "get": { "summary": "Launcher updates: policy, HEAD, commits behind and their subjects, last check, applying", "tags": ["updates"],
            "responses": { "200": { "description": "Update state", "content": { "application/json": { "schema": { "type": "object", "properties": {
                "policy": { "type": "string", "nullable": true }, "pin": { "type": "string", "nullable": true },
                "head": { "type": "string", "nullable": true }, "behind": { "type": "integer", "nullable": true },
                "subjects": { "type": "array", "items": { "type": "string" } },
                "branch": { "type": "string", "nullable": true, "description": "The branch checked out; null when HEAD is detached (pinned)" },
                "pinned_from": { "type": "string", "nullable": true, "description": "The branch spark-control left when it pinned; checked out again when the policy follows the branch" },
                "last_check": { "type": "string", "format": "date-time", "nullable": true },
                "applying": { "type": "boolean" }, "last_apply_error": { "type": "string", "nullable": true } } } } } } } } },
        "/api/updates/apply": { "post": { "summary": "Apply launcher updates now (git pull && ./build-and-copy.sh -c <worker addresses>); the log streams on /api/logs", "tags": ["updates"],
            "security": admin,
            "responses": { "202": { "description": "Queued", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Accepted" } } } },
                "400": err("No cluster configured"), "401": err("Admin token missing or wrong"),
                "403": err("Cross-origin write"), "503": err("The control loop is busy or stopped") } } },
    })
}
