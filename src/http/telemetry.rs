//! `GET /api/telemetry`: the telemetry time series for the dashboard's plots. Reads the
//! in-memory store in the loop's `Handle`; never scrapes or polls anything itself.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::Query;
use super::AppState;
use crate::telemetry::TelemetryWire;

/// Query of `GET /api/telemetry`.
#[derive(Debug, Deserialize)]
pub struct Since {
    /// Only points after this time, unix milliseconds (the `t` of the newest point held).
    pub since: Option<i64>,
}

/// `GET /api/telemetry?since=`: per host and for vLLM, `[[unix_ms, value], …]`.
pub async fn get(
    State(state): State<AppState>,
    Query(q): Query<Since>,
) -> Result<Json<TelemetryWire>, ApiError> {
    if q.since.is_some_and(|s| s < 0) {
        return Err(ApiError::bad_request(
            "bad_since",
            "`since` is unix milliseconds (≥ 0)",
        ));
    }
    Ok(Json(state.handle.telemetry.snapshot(q.since)))
}

/// The OpenAPI path of this route.
pub fn openapi_paths() -> Value {
    let pts = json!({ "type": "array", "items": { "type": "array", "items": { "type": "number" }, "minItems": 2, "maxItems": 2 },
                      "description": "[unix_ms, value] pairs, oldest first" });
    let vllm = json!({ "type": "object", "description": "One vLLM's series (scraped from its /metrics)", "properties": {
        "gen_tps": pts, "prompt_tps": pts, "running": pts, "waiting": pts,
        "kv_cache": { "type": "array", "description": "[unix_ms, fraction 0..1] pairs, oldest first",
                      "items": { "type": "array", "items": { "type": "number" }, "minItems": 2, "maxItems": 2 } } } });
    json!({
        "/api/telemetry": { "get": {
            "summary": "GPU, SSH round-trip and vLLM throughput series of the last hour", "tags": ["telemetry"],
            "parameters": [{ "name": "since", "in": "query", "description": "Only points after this time (unix ms)",
                              "schema": { "type": "integer", "minimum": 0 } }],
            "responses": {
                "200": { "description": "Series", "content": { "application/json": { "schema": { "type": "object", "properties": {
                    "hosts": { "type": "object", "additionalProperties": { "type": "object", "properties": {
                        "gpu_util": pts, "mem_used_mib": pts, "mem_total_mib": { "type": "number", "nullable": true },
                        "temp_c": pts, "power_w": pts, "rtt_ms": pts } } },
                    "vllm": vllm.clone(),
                    "deployments": { "type": "object", "additionalProperties": vllm,
                                     "description": "Every deployment's vLLM series by deployment name (`vllm` is the first deployment's)" } } } } } },
                "400": { "description": "Bad `since`", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } } } },
    })
}
