//! `GET /api/state/stream`: the state `GET /api/state` answers, as server-sent events, one
//! per published change.
//!
//! Every event is `event: state` whose data is a [`StateEvent`]: the server's `epoch`
//! (chosen at start-up, [`super::AppState::epoch`]; a different one means the server
//! restarted, so operation ids and log sequence numbers began again and a page must resync
//! everything it holds, logs included) and the same [`super::wire::StateView`]. The first
//! event is the current state; then one per change of the status `watch`, at most one per
//! [`MIN_GAP`]: the `watch` keeps only the newest snapshot, so a slow reader skips to it and
//! the loop never waits for readers. A snapshot that differs from the last one sent only
//! in `updated_at` is not sent (half of them at rest on the demo). Streams end when the
//! server shuts down or the loop stops.
//!
//! Must not: hold the `watch` borrow across an `.await`; compute anything `/api/state`
//! does not say.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};

use super::wire::StateEvent;
use super::AppState;

/// The shortest time between two events of one stream (changes in between are merged:
/// the next event carries the newest state).
pub const MIN_GAP: Duration = Duration::from_millis(200);

/// The event for `status`, and what it says apart from `updated_at` (a snapshot that
/// differs from the last one sent only in when it was made is not sent again).
fn state_event(app: &AppState, status: &crate::status::Status) -> (Event, String) {
    let mut event = StateEvent {
        epoch: &app.epoch,
        state: super::read::view_of(app, status),
    };
    let data = serde_json::to_string(&event);
    event.state.updated_at = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    let content = serde_json::to_string(&event).unwrap_or_default();
    match data {
        Ok(data) => (Event::default().event("state").data(data), content),
        // Not expected (the same value `/api/state` writes); said, not swallowed.
        Err(e) => (
            Event::default()
                .event("error")
                .data(format!("cannot serialise the status: {e}")),
            String::new(),
        ),
    }
}

/// `GET /api/state/stream`.
pub async fn state_stream(
    State(app): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = app.handle.status.clone();
    // The first event is the state as it is now.
    rx.mark_changed();
    let shutdown = app.shutdown.clone();
    let start = (rx, app, None::<String>);
    let stream = futures::stream::unfold(start, |(mut rx, app, last)| async move {
        if last.is_some() {
            tokio::time::sleep(MIN_GAP).await;
        }
        loop {
            // Err: the loop is gone (its sender dropped): the stream ends.
            rx.changed().await.ok()?;
            let status = rx.borrow_and_update().clone();
            let (event, content) = state_event(&app, &status);
            if last.as_deref() != Some(content.as_str()) {
                return Some((Ok(event), (rx, app, Some(content))));
            }
        }
    })
    .take_until(shutdown.cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// This route's OpenAPI path item (merged into the document by `openapi.rs`).
pub fn openapi_paths() -> serde_json::Value {
    serde_json::json!({
        "/api/state/stream": { "get": {
            "summary": "The state of /api/state as server-sent events: the current state at once, then one event per change (at most one per 200 ms; changes in between are merged). Each event is `state`, its data a StateEvent: the server's `epoch` (a new one means the server restarted: resync, operation ids and log sequence numbers began again) and the state",
            "tags": ["state"],
            "responses": { "200": {
                "description": "SSE stream; the data of every `state` event is a StateEvent",
                "content": { "text/event-stream": { "schema": {},
                    "x-event-data": { "$ref": "#/components/schemas/StateEvent" } } } } } } }
    })
}
