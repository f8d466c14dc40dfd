//! Imperative one-shots: restart a service, retry, check for launcher updates, reconcile
//! now. Each sends one `Command` to the control loop and answers 202; none changes the
//! desired state. Must not: run anything itself or wait for the command's outcome.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc::error::TrySendError;

use super::error::ApiError;
use super::extract::Path;
use super::read::snapshot;
use super::AppState;
use crate::reconcile::Command;

type Accepted = (StatusCode, Json<Value>);

fn send(state: &AppState, c: Command, what: String) -> Result<Accepted, ApiError> {
    match state.handle.commands.try_send(c) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "accepted": what, "status": "/api/state", "logs": "/api/logs" })),
        )),
        Err(TrySendError::Full(_)) => Err(ApiError::Unavailable(format!(
            "{what}: the control loop has too many queued commands; retry in a moment"
        ))),
        Err(TrySendError::Closed(_)) => Err(ApiError::Unavailable(format!(
            "{what}: the control loop has stopped (shutting down?)"
        ))),
    }
}

/// `POST /api/services/{name}/restart`.
pub async fn restart(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Accepted, ApiError> {
    let known = snapshot(&state)
        .desired
        .as_ref()
        .is_some_and(|d| d.services.contains_key(&name));
    if !known {
        return Err(ApiError::NotFound(format!(
            "there is no service `{name}` in the desired state in force"
        )));
    }
    let what = format!("restart of service `{name}`");
    send(&state, Command::RestartService(name), what)
}

/// `POST /api/retry`.
pub async fn retry(State(state): State<AppState>) -> Result<Accepted, ApiError> {
    send(&state, Command::Retry, "retry".into())
}

/// `POST /api/updates/check`.
pub async fn check_updates(State(state): State<AppState>) -> Result<Accepted, ApiError> {
    send(
        &state,
        Command::CheckUpdates,
        "launcher update check".into(),
    )
}

/// `POST /api/reconcile`.
pub async fn reconcile(State(state): State<AppState>) -> Result<Accepted, ApiError> {
    send(&state, Command::Reconcile, "reconcile".into())
}
