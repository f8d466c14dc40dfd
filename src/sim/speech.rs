//! Fake speech services: Parakeet-like speech-to-text and Magpie-like text-to-speech.
//!
//! STT: `GET /health`, `POST /v1/audio/transcriptions` (multipart; answers
//! `{"text": ...}`), `POST /api/audio/diarize-chunk` (answers speaker segments).
//! TTS: `GET /health`, `POST /v1/audio/speech` (answers a short 16-bit mono WAV).
//! The multipart body is not parsed field by field (axum's `multipart` feature is not
//! enabled); the fake only checks the content type and reports the body size.
//!
//! Must not: bind anything but the `--host` it is given.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::vllm::shutdown_signal;
use super::SimError;

/// Which speech service to impersonate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpeechKind {
    /// Speech-to-text (Parakeet).
    Stt,
    /// Text-to-speech (Magpie).
    Tts,
}

impl SpeechKind {
    /// The lower-case name used on the command line and in container files.
    pub fn as_str(self) -> &'static str {
        match self {
            SpeechKind::Stt => "stt",
            SpeechKind::Tts => "tts",
        }
    }
}

/// Flags of `spark-control sim speech`.
#[derive(Debug, Clone, clap::Args)]
pub struct SpeechArgs {
    /// stt or tts.
    #[arg(long, value_enum)]
    pub kind: SpeechKind,
    /// Address to bind.
    #[arg(long)]
    pub host: String,
    /// Port to bind.
    #[arg(long)]
    pub port: u16,
    /// Startup time before the port is bound.
    #[arg(long, default_value_t = 200)]
    pub startup_delay_ms: u64,
}

fn bad_request(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"detail": msg}))).into_response()
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

async fn transcribe(headers: HeaderMap, body: Bytes) -> Response {
    if !is_multipart(&headers) {
        return bad_request("expected multipart/form-data with a `file` field");
    }
    Json(json!({"text": format!("simulated transcript of {} bytes of audio", body.len())}))
        .into_response()
}

async fn diarize(headers: HeaderMap, body: Bytes) -> Response {
    if !is_multipart(&headers) && body.is_empty() {
        return bad_request("expected an audio chunk");
    }
    Json(json!({
        "segments": [
            {"speaker": "SPEAKER_00", "start": 0.0, "end": 1.2, "text": "simulated speaker one"},
            {"speaker": "SPEAKER_01", "start": 1.2, "end": 2.5, "text": "simulated speaker two"}
        ]
    }))
    .into_response()
}

/// A 0.1 s, 16 kHz, 16-bit mono WAV of a quiet tone.
fn wav() -> Vec<u8> {
    let rate: u32 = 16_000;
    let samples: Vec<i16> = (0..rate / 10)
        .map(|i| if (i / 20) % 2 == 0 { 800 } else { -800 })
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

async fn speak(body: Bytes) -> Response {
    let input = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("input").and_then(|i| i.as_str()).map(str::to_string));
    match input {
        Some(text) if !text.is_empty() => ([("content-type", "audio/wav")], wav()).into_response(),
        _ => bad_request("body must be JSON with a non-empty `input`"),
    }
}

/// The route table of one speech service.
pub(crate) fn app(kind: SpeechKind) -> Router {
    let base = Router::new().route("/health", get(|| async { StatusCode::OK }));
    match kind {
        SpeechKind::Stt => base
            .route("/v1/audio/transcriptions", post(transcribe))
            .route("/api/audio/diarize-chunk", post(diarize)),
        SpeechKind::Tts => base.route("/v1/audio/speech", post(speak)),
    }
}

/// Runs a fake speech service until SIGTERM/SIGINT.
pub async fn serve(args: SpeechArgs) -> Result<(), SimError> {
    let addr = format!("{}:{}", args.host, args.port);
    println!("[speech-sim] {} starting on {addr}", args.kind.as_str());
    tokio::time::sleep(Duration::from_millis(args.startup_delay_ms)).await;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| SimError::Bind {
            addr: addr.clone(),
            source,
        })?;
    println!("[speech-sim] {} ready on http://{addr}", args.kind.as_str());
    axum::serve(listener, app(args.kind))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|source| SimError::Bind { addr, source })
}
