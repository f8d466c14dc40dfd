//! The one error type of the HTTP layer and how every error becomes a response.
//!
//! # Error policy
//!
//! - Every error a handler returns is an [`ApiError`]; every error response, including
//!   axum's own extractor rejections (bad JSON, wrong content type, body too large, bad
//!   query) and unknown routes, has the body
//!   `{"error":{"message":…,"type":…,"code":…}}` and `Content-Type: application/json`.
//! - `message` is for people: it says what was wrong and where (the field, the header,
//!   the file line/column) and, when there is one, what to do. `type` is the broad class
//!   (`invalid_request`, `authentication`, `permission`, `not_found`, `conflict`,
//!   `precondition_required`, `payload_too_large`, `validation`, `rate_limited`,
//!   `unavailable`, `internal`); `code` is a stable machine-readable reason
//!   (`missing_field`, `stale_etag`, …). Clients branch on the status and `code`, never
//!   on the message text.
//! - Extra data rides inside the `error` object: a 409 carries `current_text` and
//!   `current_etag` (and an `ETag` header) so the client can rebase without another GET;
//!   a 422 carries `diagnostics`, every problem with its line and column; a 429 carries a
//!   `Retry-After` header.
//! - 4xx means the request can be fixed by the caller; 5xx means our fault or a part we
//!   depend on (the control loop, the disk). A 5xx is logged with `tracing::error!`;
//!   4xx are not logged (they are the caller's business and cheap to provoke).
//! - A body that is not JSON is a 400 (`malformed`); JSON that is not what the route
//!   reads is a 422: not an object (`not_an_object`), a field mistyped, missing or unknown
//!   (`wrong_shape`, the message names the field). A body over the route's limit is a 413
//!   in this shape too.
//! - `message` is at most [`MAX_MESSAGE_CHARS`] characters, and user text inside it is
//!   clipped (`model::limits::clip`): a megabyte name never becomes a megabyte response
//!   or log line.
//! - Internal details that help nobody (task join errors) are summarised, never hidden:
//!   the message still says which step failed.
//!
//! Must not: know about routes or handlers beyond mapping the errors they raise.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::edit::{EditError, Etag, StoreError};
use crate::model::limits::clip_to;
use crate::model::Diagnostic;

/// Longest `message` of an error response (and of its log line), in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// Everything that can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad JSON, missing or mistyped field, bad header).
    #[error("{message}")]
    BadRequest {
        /// Stable reason.
        code: &'static str,
        /// What and where.
        message: String,
    },
    /// A mutating route without a valid admin token.
    #[error("{0}")]
    Unauthorized(String),
    /// A cross-origin browser write.
    #[error("{0}")]
    Forbidden(String),
    /// A `Host` this server was not told it is reachable at (DNS rebinding guard).
    #[error("{0}")]
    HostNotAllowed(String),
    /// No such route, service, model, host or operation.
    #[error("{0}")]
    NotFound(String),
    /// No such method on this route.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The desired file changed since the client read it.
    #[error("the desired-state file changed since it was read (now {current_etag}); reload, reapply your change and retry")]
    Conflict {
        /// The file as it is now.
        current_text: String,
        /// Its ETag.
        current_etag: Etag,
    },
    /// The request is about something whose state does not allow it (an operation that
    /// already ended).
    #[error("{message}")]
    StateConflict {
        /// Stable reason (`operation_ended`).
        code: &'static str,
        /// What and what to do.
        message: String,
    },
    /// A write without `If-Match`.
    #[error("{0}")]
    PreconditionRequired(String),
    /// The body is larger than the route accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body's content type is not what the route reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is JSON but not what the route reads: not an object, or a field of the
    /// wrong type, missing or unknown (the message names it).
    #[error("{message}")]
    Unprocessable {
        /// Stable reason (`not_an_object`, `wrong_shape`).
        code: &'static str,
        /// What and where.
        message: String,
    },
    /// The new desired state would be invalid; nothing was written.
    #[error("{message}")]
    Invalid {
        /// Summary.
        message: String,
        /// Every problem with its line and column.
        diagnostics: Vec<Diagnostic>,
    },
    /// Too many requests from one source.
    #[error("{message}")]
    RateLimited {
        /// What was limited.
        message: String,
        /// Seconds until a request will be accepted again.
        retry_after_secs: u64,
    },
    /// A part we depend on is not ready or gone (the control loop).
    #[error("{0}")]
    Unavailable(String),
    /// Our fault.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with a stable code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::HostNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::StateConflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. } | ApiError::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind_and_code(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => ("invalid_request", code),
            ApiError::Unauthorized(_) => ("authentication", "admin_token_required"),
            ApiError::Forbidden(_) => ("permission", "cross_origin"),
            ApiError::HostNotAllowed(_) => ("permission", "host_not_allowed"),
            ApiError::NotFound(_) => ("not_found", "not_found"),
            ApiError::MethodNotAllowed(_) => ("invalid_request", "method_not_allowed"),
            ApiError::Conflict { .. } => ("conflict", "stale_etag"),
            ApiError::StateConflict { code, .. } => ("conflict", code),
            ApiError::PreconditionRequired(_) => ("precondition_required", "if_match_required"),
            ApiError::PayloadTooLarge(_) => ("payload_too_large", "body_too_large"),
            ApiError::UnsupportedMediaType(_) => ("invalid_request", "unsupported_media_type"),
            ApiError::Invalid { .. } => ("validation", "invalid_desired_state"),
            ApiError::Unprocessable { code, .. } => ("invalid_request", code),
            ApiError::RateLimited { .. } => ("rate_limited", "rate_limited"),
            ApiError::Unavailable(_) => ("unavailable", "unavailable"),
            ApiError::Internal(_) => ("internal", "internal"),
        }
    }

    /// Maps an axum extractor rejection (its status and text) onto the policy above.
    pub fn from_rejection(status: StatusCode, text: String, what: &str) -> Self {
        // serde's text quotes what was sent (an unknown variant, whole): keep its start.
        let message = format!("{what}: {}", clip_to(&text, 300));
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(format!(
                "{message} (the body is larger than this route accepts; see /api/openapi.json)"
            )),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(message),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable {
                code: "wrong_shape",
                message,
            },
            s if s.is_server_error() => ApiError::Internal(message),
            _ => ApiError::bad_request("malformed", message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict {
                current_text,
                current_etag,
            } => ApiError::Conflict {
                current_text,
                current_etag,
            },
            StoreError::Invalid { errors } => ApiError::Invalid {
                message: format!("the new desired state is invalid: {}", errors.join("; ")),
                diagnostics: Vec::new(),
            },
            StoreError::Edit(e) => e.into(),
            other => ApiError::Internal(format!("desired-state file: {other}")),
        }
    }
}

impl From<EditError> for ApiError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::Internal { .. } => ApiError::Internal(e.to_string()),
            other => ApiError::Invalid {
                message: other.to_string(),
                diagnostics: Vec::new(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (kind, code) = self.kind_and_code();
        // Messages may quote what the caller sent (serde quotes an unknown variant whole):
        // clipped, so no response or log line is ever huge.
        let message = clip_to(&self.to_string(), MAX_MESSAGE_CHARS).into_owned();
        if status.is_server_error() {
            tracing::error!(%status, "{message}");
        }
        let mut err = json!({ "message": message, "type": kind, "code": code });
        let mut etag = None;
        let mut retry = None;
        match &self {
            ApiError::Conflict {
                current_text,
                current_etag,
            } => {
                err["current_text"] = Value::String(current_text.clone());
                err["current_etag"] = Value::String(current_etag.to_string());
                etag = HeaderValue::from_str(current_etag.as_str()).ok();
            }
            ApiError::Invalid { diagnostics, .. } => {
                err["diagnostics"] = diagnostics_json(diagnostics);
            }
            ApiError::RateLimited {
                retry_after_secs, ..
            } => {
                err["retry_after_secs"] = json!(retry_after_secs);
                retry = Some(HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        let mut resp = (status, axum::Json(json!({ "error": err }))).into_response();
        if let Some(v) = etag {
            resp.headers_mut().insert(header::ETAG, v);
        }
        if let Some(v) = retry {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Diagnostics as JSON: the structured fields plus the rendered `FILE:LINE:COL: …` line.
pub fn diagnostics_json(ds: &[Diagnostic]) -> Value {
    Value::Array(
        ds.iter()
            .map(|d| {
                let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("text".into(), Value::String(d.to_string()));
                }
                v
            })
            .collect(),
    )
}
