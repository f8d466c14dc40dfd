//! The OpenAPI description of the proxy's routes (`/v1/{path}`, `/api/audio/diarize-chunk`):
//! passthroughs whose bodies are whatever the upstream speaks, and the proxy's own
//! refusals in the Error shape. Another router serves them (`crate::proxy`).

use serde_json::{json, Value};

use super::err_resp;

/// One passthrough operation of the proxy.
fn passthrough_op(summary: &str, method: &str) -> Value {
    let mut op = json!({
        "summary": summary,
        "description": "Passthrough: the request goes upstream verbatim (body, query, headers less hop-by-hop ones) and the upstream's status, headers and body come back as they are, streamed frame by frame. Only the proxy's own refusals have the Error shape: 401 (inference key required), 413 (body over the cap), 502 (upstream unreachable), 503 (no model active, or a swap in progress: Retry-After), 504 (overall timeout).",
        "tags": ["proxy"],
        "security": [{ "inference": [] }, {}],
        "parameters": [{ "name": "path", "in": "path", "required": true,
            "description": "The rest of the OpenAI path, e.g. `chat/completions`, `models`, `embeddings`",
            "schema": { "type": "string", "minLength": 1 } }],
        "responses": {
            "default": { "description": "The upstream's answer, unchanged (JSON, or `text/event-stream` for `\"stream\": true`)",
                          "content": { "application/json": { "schema": {} }, "text/event-stream": { "schema": {} } } },
            "401": err_resp("Inference keys are configured and the request has none of them"),
            "413": err_resp("Body over the proxy's cap"),
            "502": err_resp("The upstream is unreachable"),
            "503": err_resp("No model is active, or a swap is in progress (Retry-After)"),
            "504": err_resp("The overall timeout ended the exchange"),
        }
    });
    if method == "post" {
        op["requestBody"] = json!({ "required": false, "description": "Passed upstream verbatim (OpenAI request JSON)",
            "content": { "application/json": { "schema": { "type": "object" } } } });
    }
    op
}

/// The proxy's routes (another router, merged into the app; see `crate::proxy`).
pub(super) fn proxy_paths() -> Value {
    let mut diarize = passthrough_op(
        "Speaker diarization of one audio chunk, to the STT service",
        "post",
    );
    if let Some(op) = diarize.as_object_mut() {
        op.remove("parameters");
        op["requestBody"] = json!({ "required": true, "description": "Passed upstream verbatim",
            "content": { "multipart/form-data": { "schema": { "type": "object" } } } });
    }
    json!({
        "/v1/{path}": {
            "get": passthrough_op("OpenAI API passthrough to the active vLLM (e.g. GET /v1/models)", "get"),
            "post": passthrough_op("OpenAI API passthrough: /v1/chat/completions, /v1/completions and /v1/embeddings to the active vLLM, /v1/audio/transcriptions to STT, /v1/audio/speech to TTS", "post"),
        },
        "/api/audio/diarize-chunk": { "post": diarize },
    })
}
