//! Operation logs over HTTP: `GET /api/logs` (SSE: backlog, then live) and
//! `GET /api/operations/{id}/logs` (JSON lines of one operation's backlog).
//!
//! SSE events: `log` (data: one `LogLine` as JSON, id: its `seq`) and `skipped` (data: how
//! many lines a slow reader missed — tokio broadcast `Lagged`; the writer never waits for
//! readers). Streams end when the server shuts down. Must not: block the log hub.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::error::ApiError;
use super::extract::{Path, Query};
use super::AppState;
use crate::logs::LogLine;

/// Query of `/api/logs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Only this operation's lines.
    op: Option<u64>,
}

fn line_event(l: &LogLine) -> Result<Event, Infallible> {
    Ok(Event::default()
        .event("log")
        .id(l.seq.to_string())
        .data(serde_json::to_string(l).unwrap_or_default()))
}

/// `GET /api/logs[?op=ID]`.
pub async fn logs(
    State(state): State<AppState>,
    Query(q): Query<LogsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (backlog, rx) = state.handle.logs.subscribe(q.op);
    let op = q.op;
    let backlog = futures::stream::iter(backlog.into_iter().map(|l| line_event(&l)));
    let live = BroadcastStream::new(rx).filter_map(move |r| async move {
        match r {
            Ok(l) if op.is_none() || l.op == op => Some(line_event(&l)),
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                Some(Ok(Event::default().event("skipped").data(n.to_string())))
            }
        }
    });
    let stream = backlog
        .chain(live)
        .take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `GET /api/operations/{id}/logs`: JSON lines (`application/x-ndjson`).
pub async fn operation_logs(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<impl IntoResponse, ApiError> {
    let lines = state.handle.logs.of_operation(id);
    if lines.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no log lines for operation {id}: unknown, or aged out of the backlog"
        )));
    }
    let mut body = String::new();
    for l in &lines {
        body.push_str(&serde_json::to_string(l).unwrap_or_default());
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body))
}
