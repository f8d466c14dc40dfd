//! Imperative one-shots: restart a service, retry, check for launcher updates, reconcile
//! now, cancel the running operation. Each sends one `Command` to the control loop and
//! answers 202; none changes the desired state. A cancel waits for the loop's answer
//! (running, ended, unknown: milliseconds), never for the operation to stop.
//! Must not: run anything itself or wait for the command's outcome.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc::error::TrySendError;

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use tokio::sync::oneshot;

use super::auth::{session_cookie, Peer};
use super::error::ApiError;
use super::extract::Path;
use super::read::snapshot;
use super::AppState;
use crate::reconcile::{CancelReply, Command};

type Accepted = (StatusCode, Json<Value>);

fn send(state: &AppState, c: Command, what: String) -> Result<Accepted, ApiError> {
    enqueue(state, c, &what)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": what, "status": "/api/state", "logs": "/api/logs" })),
    ))
}

fn enqueue(state: &AppState, c: Command, what: &str) -> Result<(), ApiError> {
    match state.handle.commands.try_send(c) {
        Ok(()) => Ok(()),
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

/// `POST /api/operations/{id}/cancel`: 202 when the operation was running (it stops at
/// once, at its current wait), 409 when it already ended, 404 when there is no such
/// operation.
pub async fn cancel_operation(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Accepted, ApiError> {
    let by = requester(&headers, peer, state.admin_token.is_some());
    let (reply, answer) = oneshot::channel();
    let what = format!("cancel of operation {id}");
    enqueue(&state, Command::CancelOperation { id, by, reply }, &what)?;
    let answer = match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(a)) => a,
        Ok(Err(_)) => {
            return Err(ApiError::Unavailable(format!(
                "{what}: the control loop has stopped (shutting down?)"
            )))
        }
        Err(_) => {
            return Err(ApiError::Unavailable(format!(
                "{what}: the control loop did not answer within 5 s; retry in a moment"
            )))
        }
    };
    match answer {
        CancelReply::Cancelling => Ok((
            StatusCode::ACCEPTED,
            Json(
                json!({ "cancelling": id, "status": "/api/state", "logs": format!("/api/operations/{id}/logs") }),
            ),
        )),
        CancelReply::Ended(outcome) => Err(ApiError::StateConflict {
            code: "operation_ended",
            message: match outcome {
                Some(o) => {
                    format!("operation {id} already ended ({o}); there is nothing to cancel")
                }
                None => format!("operation {id} already ended; there is nothing to cancel"),
            },
        }),
        CancelReply::Unknown => Err(ApiError::NotFound(
            match snapshot(&state).operation.as_ref() {
                Some(op) if op.outcome == crate::status::Outcome::Running => format!(
                    "there is no operation {id}; the running one is {} (see /api/state)",
                    op.id
                ),
                _ => format!("there is no operation {id}, and none is running (see /api/state)"),
            },
        )),
    }
}

/// Who sent a request, for the log and the event log: how it was authorised and from
/// where (never the credential itself).
fn requester(headers: &HeaderMap, peer: Option<IpAddr>, token_set: bool) -> String {
    let via = if !token_set {
        "a client"
    } else if headers.contains_key(header::AUTHORIZATION) {
        "an API client (admin token)"
    } else if session_cookie(headers).is_some() {
        "the UI (signed in)"
    } else {
        "a client"
    };
    match peer {
        Some(ip) => format!("{via} at {ip}"),
        None => via.to_string(),
    }
}
