//! Errors the proxy itself produces, and their OpenAI-shaped responses.
//!
//! Policy: every error the proxy generates is an OpenAI error object
//! `{"error":{"message","type","param","code"}}` plus a short top-level `detail`
//! (e.g. `"vllm unreachable"`) for programs that match on it. Upstream errors are never
//! rewritten here, except on streaming requests, where [`sse_error_event`] turns the
//! upstream's error body into one SSE `error` event. Must not do IO.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

/// Seconds a client is told to wait (`Retry-After`) while a model loads.
pub(crate) const RETRY_AFTER_SECS: u64 = 10;

/// Which upstream service a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Vllm,
    Stt,
    Tts,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Vllm => "vllm",
            Service::Stt => "stt",
            Service::Tts => "tts",
        }
    }
}

/// An error answered by the proxy itself, never by an upstream.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("missing or incorrect API key; send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("request body larger than the {limit}-byte limit for {what} requests")]
    TooLarge { limit: usize, what: &'static str },
    #[error("could not read the request body: {0}")]
    BadBody(String),
    #[error("{}", not_configured_message(*.0))]
    NotConfigured(Service),
    #[error("model '{model}' is loading; retry in a few seconds")]
    Loading { model: String },
    #[error("{} unreachable at {base}: {cause}", .service.name())]
    Unreachable {
        service: Service,
        base: String,
        cause: String,
    },
    #[error("{} did not answer within {after:?}", .service.name())]
    Timeout { service: Service, after: Duration },
    #[error("{}", not_loaded_message(.model, .could_run))]
    ModelNotLoaded {
        model: String,
        could_run: Vec<String>,
    },
    #[error("the model `{0}` is not in the catalog (GET /v1/models lists the names)")]
    ModelNotFound(String),
    #[error("the model `{model}` already has {limit} requests in flight (proxy.max_concurrent); retry in {retry_after} s")]
    TooMany {
        model: String,
        limit: u32,
        retry_after: u64,
    },
    #[error("{why}; retry in {retry_after} s")]
    SwapBusy { why: String, retry_after: u64 },
    #[error("{0}")]
    SwapRefused(String),
    #[error("this API key may not use the model `{model}`; it may use: {}", .allowed.join(", "))]
    KeyNotForModel { model: String, allowed: Vec<String> },
}

fn not_loaded_message(model: &str, could_run: &[String]) -> String {
    if could_run.is_empty() {
        format!("the model `{model}` is in the catalog but no deployment serves it, and none can (it needs a deployment with workers)")
    } else {
        format!(
            "the model `{model}` is in the catalog but no deployment serves it; it could run on deployment {} (set its `active_model`)",
            could_run.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
        )
    }
}

fn not_configured_message(service: Service) -> &'static str {
    match service {
        Service::Vllm => "no model is active; set active_model in the desired state",
        Service::Stt => "no stt service is configured",
        Service::Tts => "no tts service is configured",
    }
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Unauthorized => StatusCode::UNAUTHORIZED,
            ProxyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BadBody(_) => StatusCode::BAD_REQUEST,
            ProxyError::NotConfigured(_) | ProxyError::Loading { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Unreachable { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::ModelNotLoaded { .. } | ProxyError::ModelNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ProxyError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::SwapBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::SwapRefused(_) => StatusCode::CONFLICT,
            ProxyError::KeyNotForModel { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// Short, stable words for the `detail` field and the error `code`.
    fn detail(&self) -> String {
        match self {
            ProxyError::Unauthorized => "invalid_api_key".into(),
            ProxyError::TooLarge { .. } => "request_too_large".into(),
            ProxyError::BadBody(_) => "bad_request_body".into(),
            ProxyError::NotConfigured(s) => format!("{} not configured", s.name()),
            ProxyError::Loading { .. } => "model_loading".into(),
            ProxyError::Unreachable { service, .. } => format!("{} unreachable", service.name()),
            ProxyError::Timeout { service, .. } => format!("{} timeout", service.name()),
            ProxyError::ModelNotLoaded { .. } => "model_not_loaded".into(),
            ProxyError::ModelNotFound(_) => "model_not_found".into(),
            ProxyError::TooMany { .. } => "rate_limit_exceeded".into(),
            ProxyError::SwapBusy { .. } => "swap_queue_full".into(),
            ProxyError::SwapRefused(_) => "swap_superseded".into(),
            ProxyError::KeyNotForModel { .. } => "model_not_allowed".into(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ProxyError::Unauthorized
            | ProxyError::TooLarge { .. }
            | ProxyError::BadBody(_)
            | ProxyError::ModelNotLoaded { .. }
            | ProxyError::ModelNotFound(_) => "invalid_request_error",
            ProxyError::TooMany { .. } => "rate_limit_error",
            ProxyError::KeyNotForModel { .. } => "permission_error",
            _ => "server_error",
        }
    }

    /// The JSON body, without the HTTP envelope.
    pub fn body(&self) -> Value {
        let detail = self.detail();
        json!({
            "error": {
                "message": self.to_string(),
                "type": self.kind(),
                "param": if matches!(self, ProxyError::ModelNotLoaded { .. } | ProxyError::ModelNotFound(_) | ProxyError::KeyNotForModel { .. }) { json!("model") } else { Value::Null },
                "code": detail,
            },
            "detail": detail,
        })
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        let retry_after = match &self {
            ProxyError::Loading { .. } => Some(RETRY_AFTER_SECS),
            ProxyError::TooMany { retry_after, .. } | ProxyError::SwapBusy { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// One SSE `error` event (`event: error`, `data: {"error":{…}}`) made from an upstream's
/// non-2xx answer to a streaming request. Keeps the upstream's error object when it has
/// one (`{"error":{…}}`, or vLLM's flat `{"object":"error","message":…}`), else wraps the
/// body text as the message.
pub fn sse_error_event(status: StatusCode, upstream_body: &[u8]) -> Bytes {
    let parsed: Option<Value> = serde_json::from_slice(upstream_body).ok();
    let error = match parsed {
        Some(Value::Object(mut map)) => match map.remove("error") {
            Some(inner @ Value::Object(_)) => inner,
            Some(Value::String(message)) => error_object(status, message),
            _ if map.contains_key("message") => {
                map.shift_remove("object");
                Value::Object(map)
            }
            _ => error_object(status, String::from_utf8_lossy(upstream_body).into_owned()),
        },
        _ => error_object(status, String::from_utf8_lossy(upstream_body).into_owned()),
    };
    let data = json!({ "error": error });
    Bytes::from(format!("event: error\ndata: {data}\n\n"))
}

fn error_object(status: StatusCode, message: String) -> Value {
    let message = if message.trim().is_empty() {
        format!("upstream answered {status}")
    } else {
        message
    };
    json!({ "message": message, "type": "upstream_error", "param": null, "code": status.as_u16() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str, expected_data: Value) {
        let status = StatusCode::from_u16(status).unwrap();
        let event = sse_error_event(status, body.as_bytes());
        let text = std::str::from_utf8(&event).unwrap();
        let data = text
            .strip_prefix("event: error\ndata: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("not one error event: {text:?}"));
        assert!(!data.contains('\n'), "data must be one line: {data:?}");
        let got: Value = serde_json::from_str(data).unwrap();
        assert_eq!(got, expected_data, "body {body:?}");
    }

    #[test]
    fn upstream_errors_become_one_sse_event() {
        check(
            400,
            r#"{"error":{"message":"too long","type":"BadRequestError","param":null,"code":400}}"#,
            json!({"error":{"message":"too long","type":"BadRequestError","param":null,"code":400}}),
        );
        check(
            400,
            r#"{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}"#,
            json!({"error":{"message":"bad","type":"BadRequestError","param":null,"code":400}}),
        );
        check(
            500,
            "Internal Server Error",
            json!({"error":{"message":"Internal Server Error","type":"upstream_error","param":null,"code":500}}),
        );
        check(
            404,
            r#"{"detail":"Not Found"}"#,
            json!({"error":{"message":"{\"detail\":\"Not Found\"}","type":"upstream_error","param":null,"code":404}}),
        );
        check(
            503,
            "",
            json!({"error":{"message":"upstream answered 503 Service Unavailable","type":"upstream_error","param":null,"code":503}}),
        );
        check(
            429,
            r#"{"error":"slow down"}"#,
            json!({"error":{"message":"slow down","type":"upstream_error","param":null,"code":429}}),
        );
    }

    #[test]
    fn proxy_errors_are_openai_shaped() {
        let cases = [
            (ProxyError::Unauthorized, 401, "invalid_api_key"),
            (
                ProxyError::Unreachable {
                    service: Service::Vllm,
                    base: "http://127.0.0.1:1".into(),
                    cause: "refused".into(),
                },
                502,
                "vllm unreachable",
            ),
            (
                ProxyError::Loading {
                    model: "qwen36".into(),
                },
                503,
                "model_loading",
            ),
            (
                ProxyError::NotConfigured(Service::Stt),
                503,
                "stt not configured",
            ),
        ];
        for (err, status, detail) in cases {
            assert_eq!(err.status().as_u16(), status, "{err}");
            let body = err.body();
            assert_eq!(body["detail"], detail);
            assert_eq!(body["error"]["code"], detail);
            assert!(body["error"]["message"].as_str().unwrap().len() > 5);
        }
    }
}
