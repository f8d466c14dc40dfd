//! The fake vLLM's OpenAI generation endpoints: `/v1/chat/completions`,
//! `/v1/completions` (both `stream: false` and SSE `stream: true`) and `/v1/embeddings`.
//!
//! Wire shapes follow vLLM's `entrypoints/openai/protocol.py` (`ChatCompletionResponse`,
//! `ChatCompletionStreamResponse`, `CompletionResponse`, `ErrorResponse`): SSE frames are
//! `data: {json}\n\n` and the stream ends with `data: [DONE]\n\n`. Text is deterministic:
//! the words of [`REPLY`], one token per chunk, `finish_reason: "length"` when
//! `max_tokens` cuts it short. A client that goes away mid-stream is recorded in the
//! disconnect log when the stream is dropped (the way vLLM aborts the request).
//!
//! Must not: do IO other than the disconnect record.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::vllm::{append_line, AppState};

/// The deterministic reply, one token per element.
pub(crate) const REPLY: [&str; 12] = [
    "Hello",
    " from",
    " the",
    " simulated",
    " DGX",
    " Spark",
    ";",
    " this",
    " is",
    " a",
    " test",
    ".",
];

/// Default `max_tokens` when the request gives none (vLLM: up to the context length).
const DEFAULT_MAX_TOKENS: u64 = 64;

/// An error answered in vLLM's shape: `{"error": {message, type, param, code}}`
/// (vLLM ≥ 0.10; older versions sent the same fields flat with `"object": "error"`).
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    param: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.status.as_u16(),
            }})),
        )
            .into_response()
    }
}

fn error(
    status: StatusCode,
    kind: &'static str,
    message: &str,
    param: Option<&'static str>,
) -> ApiError {
    ApiError {
        status,
        kind,
        message: message.to_string(),
        param,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Chat,
    Text,
}

/// What one generation request asked for, after validation.
struct Gen {
    kind: Kind,
    id: String,
    model: String,
    created: i64,
    prompt_tokens: u64,
    tokens: Vec<&'static str>,
    finish: &'static str,
    include_usage: bool,
}

fn count_words(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Array(a) => a.iter().map(count_words).sum(),
        Value::Object(o) => o
            .get("content")
            .or_else(|| o.get("text"))
            .map(count_words)
            .unwrap_or(0),
        _ => 0,
    }
}

/// Parses and validates a request body; `Err` is the response to send.
fn parse(st: &AppState, body: &Bytes, kind: Kind) -> Result<(Gen, bool), ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "BadRequestError",
            &format!("invalid JSON body: {e}"),
            None,
        )
    })?;
    let model = v.get("model").and_then(Value::as_str).unwrap_or_default();
    if !st.served_names.iter().any(|n| n == model) {
        return Err(error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            &format!("The model `{model}` does not exist."),
            Some("model"),
        ));
    }
    let prompt = match kind {
        Kind::Chat => v.get("messages"),
        Kind::Text => v.get("prompt"),
    };
    let Some(prompt) = prompt else {
        let field = if kind == Kind::Chat {
            "messages"
        } else {
            "prompt"
        };
        return Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequestError",
            &format!("Field required: {field}"),
            Some(field),
        ));
    };
    let max = v
        .get("max_completion_tokens")
        .or_else(|| v.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    let n = (max as usize).min(REPLY.len());
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = v
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let now = chrono::Utc::now();
    let prefix = if kind == Kind::Chat {
        "chatcmpl"
    } else {
        "cmpl"
    };
    Ok((
        Gen {
            kind,
            id: format!(
                "{prefix}-{:032x}",
                now.timestamp_nanos_opt().unwrap_or_default()
            ),
            model: st.served_name.clone(),
            created: now.timestamp(),
            prompt_tokens: count_words(prompt).max(1) + if kind == Kind::Chat { 8 } else { 0 },
            tokens: REPLY[..n].to_vec(),
            finish: if n < REPLY.len() { "length" } else { "stop" },
            include_usage,
        },
        stream,
    ))
}

fn usage(g: &Gen) -> Value {
    let c = g.tokens.len() as u64;
    json!({"prompt_tokens": g.prompt_tokens, "total_tokens": g.prompt_tokens + c,
           "completion_tokens": c, "prompt_tokens_details": null})
}

fn full_response(g: &Gen) -> Value {
    let text: String = g.tokens.concat();
    match g.kind {
        Kind::Chat => json!({
            "id": g.id, "object": "chat.completion", "created": g.created, "model": g.model,
            "choices": [{"index": 0,
                "message": {"role": "assistant", "content": text, "refusal": null,
                            "annotations": null, "audio": null, "function_call": null,
                            "tool_calls": [], "reasoning_content": null},
                "logprobs": null, "finish_reason": g.finish, "stop_reason": null}],
            "service_tier": null, "system_fingerprint": null,
            "usage": usage(g), "prompt_logprobs": null, "kv_transfer_params": null
        }),
        Kind::Text => json!({
            "id": g.id, "object": "text_completion", "created": g.created, "model": g.model,
            "choices": [{"index": 0, "text": text, "logprobs": null,
                "finish_reason": g.finish, "stop_reason": null, "prompt_logprobs": null}],
            "service_tier": null, "system_fingerprint": null,
            "usage": usage(g), "kv_transfer_params": null
        }),
    }
}

/// One streamed chunk; `delta` is the chat delta or the completion text.
fn chunk(g: &Gen, piece: Option<&str>, role: bool, finish: Option<&str>) -> Value {
    let choice = match g.kind {
        Kind::Chat => {
            let mut delta = serde_json::Map::new();
            if role {
                delta.insert("role".into(), json!("assistant"));
            }
            if let Some(p) = piece {
                delta.insert("content".into(), json!(p));
            }
            json!({"index": 0, "delta": delta, "logprobs": null,
                   "finish_reason": finish, "stop_reason": null})
        }
        Kind::Text => json!({"index": 0, "text": piece.unwrap_or(""), "logprobs": null,
                             "finish_reason": finish, "stop_reason": null}),
    };
    let object = match g.kind {
        Kind::Chat => "chat.completion.chunk",
        Kind::Text => "text_completion",
    };
    json!({"id": g.id, "object": object, "created": g.created, "model": g.model,
           "choices": [choice]})
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// Decrements `running` and records an unfinished stream when dropped.
struct Guard {
    st: Arc<AppState>,
    id: String,
    sent: usize,
    done: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.st.metrics.running.fetch_sub(1, Ordering::Relaxed);
        if !self.done {
            if let Some(path) = &self.st.disconnect_log {
                let ms = chrono::Utc::now().timestamp_millis();
                append_line(
                    path,
                    &format!(
                        "{ms} {} model={} tokens_sent={} client disconnected; request aborted",
                        self.id, self.st.served_name, self.sent
                    ),
                );
            }
        }
    }
}

fn account(st: &AppState, g: &Gen) {
    let m = &st.metrics;
    m.prompt_tokens
        .fetch_add(g.prompt_tokens, Ordering::Relaxed);
    m.generation_tokens
        .fetch_add(g.tokens.len() as u64, Ordering::Relaxed);
    m.success.fetch_add(1, Ordering::Relaxed);
}

async fn generate(st: Arc<AppState>, body: Bytes, kind: Kind) -> Response {
    let (g, stream) = match parse(&st, &body, kind) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if st.knobs.fail_completions() {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "simulated engine failure (fail-completions knob)",
            None,
        )
        .into_response();
    }
    let delay = st.knobs.token_delay();
    st.metrics.running.fetch_add(1, Ordering::Relaxed);
    let mut guard = Guard {
        st: st.clone(),
        id: g.id.clone(),
        sent: 0,
        done: false,
    };
    if !stream {
        tokio::time::sleep(delay * g.tokens.len() as u32).await;
        account(&st, &g);
        guard.done = true;
        return Json(full_response(&g)).into_response();
    }
    let frames = futures::stream::unfold((g, guard, 0usize), move |(g, mut guard, i)| async move {
        let n = g.tokens.len();
        // Frame plan: 0 = role chunk (chat only), 1..=n tokens, then finish, usage, DONE.
        let bytes = if i == 0 {
            if g.kind == Kind::Chat {
                sse(&chunk(&g, Some(""), true, None))
            } else {
                Bytes::new()
            }
        } else if i <= n {
            if i > 1 {
                tokio::time::sleep(delay).await;
            }
            guard.sent = i;
            sse(&chunk(&g, Some(g.tokens[i - 1]), false, None))
        } else if i == n + 1 {
            account(&guard.st, &g);
            sse(&chunk(&g, None, false, Some(g.finish)))
        } else if i == n + 2 {
            if g.include_usage {
                let mut v = chunk(&g, None, false, None);
                v["choices"] = json!([]);
                v["usage"] = usage(&g);
                sse(&v)
            } else {
                Bytes::new()
            }
        } else if i == n + 3 {
            guard.done = true;
            Bytes::from_static(b"data: [DONE]\n\n")
        } else {
            return None;
        };
        Some((Ok::<_, Infallible>(bytes), (g, guard, i + 1)))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(frames))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

pub(crate) async fn chat_completions(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    generate(st, body, Kind::Chat).await
}

pub(crate) async fn completions(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    generate(st, body, Kind::Text).await
}

/// `/v1/embeddings`: 16 deterministic floats per input; `encoding_format: "base64"`
/// (the openai SDK's default) returns little-endian f32 bytes in base64.
pub(crate) async fn embeddings(
    State(st): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "BadRequestError",
                &format!("invalid JSON body: {e}"),
                None,
            ))
        }
    };
    let model = v.get("model").and_then(Value::as_str).unwrap_or_default();
    if !st.served_names.iter().any(|n| n == model) {
        return Err(error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            &format!("The model `{model}` does not exist."),
            Some("model"),
        ));
    }
    let inputs: Vec<String> = match v.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect(),
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "BadRequestError",
                "Field required: input",
                Some("input"),
            ))
        }
    };
    let b64 = v.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let mut tokens = 0u64;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            tokens += text.split_whitespace().count().max(1) as u64;
            let seed = text
                .bytes()
                .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
            let vec: Vec<f32> = (0..16u32)
                .map(|k| {
                    ((seed.wrapping_add(k.wrapping_mul(2_654_435_761)) % 2000) as f32 / 1000.0)
                        - 1.0
                })
                .collect();
            let embedding = if b64 {
                let raw: Vec<u8> = vec.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(crate::base64::base64(&raw))
            } else {
                json!(vec)
            };
            json!({"index": i, "object": "embedding", "embedding": embedding})
        })
        .collect();
    st.metrics
        .prompt_tokens
        .fetch_add(tokens, Ordering::Relaxed);
    Ok(Json(json!({
        "id": format!("embd-{:032x}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()),
        "object": "list", "created": chrono::Utc::now().timestamp(), "model": st.served_name,
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0,
                  "prompt_tokens_details": null}
    }))
    .into_response())
}
