//! The connectivity log over HTTP: `GET /api/events` (filtered, bounded) and
//! `POST /api/health-event` (LAN apps report what they saw, DESIGN §5).
//!
//! A report is `{service, ok, source?, error?, ms?}`; `service` and `ok` are required and
//! a missing or mistyped field is a 400 naming it. The body is capped at [`MAX_BODY`]
//! (413 beyond), and each `source` may send [`RateLimiter`]'s rate (429 with
//! `Retry-After` beyond). Reports are appended as kind `report` beside the poller's
//! transitions. Must not: treat a report as a fact the planner acts on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::Query;
use super::AppState;
use crate::events::{Event, EventFilter, EventKind};

/// Largest health-event body.
pub const MAX_BODY: usize = 16 * 1024;
/// Longest `service` / `source`.
const MAX_NAME: usize = 128;
/// Longest `error` kept (longer is cut).
const MAX_ERROR: usize = 2000;
/// Largest `limit` of `/api/events`.
const MAX_LIMIT: usize = 2000;
/// Distinct sources tracked by the rate limiter.
const MAX_SOURCES: usize = 1024;

/// `GET /api/events?service=&since=&until=&kind=&limit=`.
pub async fn query(
    State(state): State<AppState>,
    Query(mut f): Query<EventFilter>,
) -> Result<Json<Value>, ApiError> {
    f.limit = Some(f.limit.unwrap_or(500).min(MAX_LIMIT));
    if let (Some(a), Some(b)) = (f.since, f.until) {
        if a > b {
            return Err(ApiError::bad_request(
                "bad_range",
                format!("`since` ({a}) is after `until` ({b})"),
            ));
        }
    }
    let events = state.handle.events.query(&f);
    Ok(Json(json!({ "events": events })))
}

fn field_err(code: &'static str, msg: String) -> ApiError {
    ApiError::bad_request(code, msg)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn name_field(
    o: &Map<String, Value>,
    key: &str,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match o.get(key) {
        None | Some(Value::Null) if required => Err(field_err(
            "missing_field",
            format!("`{key}` is required (a name such as \"vllm\" or \"parakeet\")"),
        )),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_NAME => {
            Ok(Some(s.trim().to_string()))
        }
        Some(v) => Err(field_err(
            "invalid_field",
            format!(
                "`{key}` must be a non-empty string of at most {MAX_NAME} characters, got {}",
                kind_of(v)
            ),
        )),
    }
}

/// Parses a report; every message names the field at fault.
pub fn parse_report(body: &[u8]) -> Result<Event, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        field_err(
            "malformed",
            format!("the body is not JSON: {e}; send {{\"service\": …, \"ok\": true|false}}"),
        )
    })?;
    let Value::Object(o) = v else {
        return Err(field_err(
            "malformed",
            format!("the body must be a JSON object, got {}", kind_of(&v)),
        ));
    };
    let service = name_field(&o, "service", true)?.unwrap_or_default();
    let ok = match o.get("ok") {
        Some(Value::Bool(b)) => *b,
        None | Some(Value::Null) => {
            return Err(field_err(
                "missing_field",
                "`ok` is required: true if the request worked, false if not".into(),
            ))
        }
        Some(v) => {
            return Err(field_err(
                "invalid_field",
                format!("`ok` must be true or false, got {}", kind_of(v)),
            ))
        }
    };
    let source = name_field(&o, "source", false)?;
    let error = match o.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.chars().take(MAX_ERROR).collect()),
        Some(v) => {
            return Err(field_err(
                "invalid_field",
                format!("`error` must be a string, got {}", kind_of(v)),
            ))
        }
    };
    let ms = match o.get("ms") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Some(x),
            _ => {
                return Err(field_err(
                    "invalid_field",
                    format!("`ms` must be a non-negative number of milliseconds, got {n}"),
                ))
            }
        },
        Some(v) => {
            return Err(field_err(
                "invalid_field",
                format!("`ms` must be a number of milliseconds, got {}", kind_of(v)),
            ))
        }
    };
    Ok(Event {
        at: Utc::now(),
        kind: EventKind::Report,
        service,
        ok,
        source: source.unwrap_or_else(|| "anonymous".into()),
        error,
        ms,
    })
}

/// `POST /api/health-event`.
pub async fn health_event(
    State(state): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map_err(|r| {
        ApiError::from_rejection(
            r.status(),
            format!("{} (limit {MAX_BODY} bytes)", r.body_text()),
            "health event",
        )
    })?;
    let ev = parse_report(&body)?;
    if let Err(retry_after_secs) = state.limiter.check(&ev.source) {
        return Err(ApiError::RateLimited {
            message: format!(
                "too many health events from source `{}`; at most {} per second",
                ev.source, state.limiter.rate
            ),
            retry_after_secs,
        });
    }
    state.handle.events.append(ev);
    Ok((StatusCode::ACCEPTED, Json(json!({ "recorded": true }))))
}

/// A token bucket per source: `burst` at once, refilled at `rate` per second.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `burst` requests at once and `rate` per second after.
    pub fn new(rate: f64, burst: f64) -> Self {
        RateLimiter {
            rate,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `source`, or says in how many seconds one will be there.
    pub fn check(&self, source: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut g = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() >= MAX_SOURCES && !g.contains_key(source) {
            let (rate, burst) = (self.rate, self.burst);
            g.retain(|_, (t, at)| *t + at.elapsed().as_secs_f64() * rate < burst);
        }
        let key = if g.len() >= MAX_SOURCES && !g.contains_key(source) {
            "(too many sources)"
        } else {
            source
        };
        let (tokens, at) = g.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}
