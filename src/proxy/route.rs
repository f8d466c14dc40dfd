//! Which proxy route a request path is, which service serves it, how its body is capped.
//!
//! Pure: a path in, a [`Route`] out. Must not do IO or know addresses.

use super::error::Service;

/// The proxy's routes, as counted in `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    ChatCompletions,
    Completions,
    Embeddings,
    Models,
    OtherV1,
    AudioTranscriptions,
    AudioDiarize,
    AudioSpeech,
}

impl Route {
    /// The route of a request path (query excluded).
    pub fn classify(path: &str) -> Route {
        match path {
            "/v1/chat/completions" => Route::ChatCompletions,
            "/v1/completions" => Route::Completions,
            "/v1/embeddings" => Route::Embeddings,
            "/v1/audio/transcriptions" => Route::AudioTranscriptions,
            "/api/audio/diarize-chunk" => Route::AudioDiarize,
            "/v1/audio/speech" => Route::AudioSpeech,
            p if p == "/v1/models" || p.starts_with("/v1/models/") => Route::Models,
            _ => Route::OtherV1,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The `route` label in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Route::ChatCompletions => "chat_completions",
            Route::Completions => "completions",
            Route::Embeddings => "embeddings",
            Route::Models => "models",
            Route::OtherV1 => "other_v1",
            Route::AudioTranscriptions => "audio_transcriptions",
            Route::AudioDiarize => "audio_diarize",
            Route::AudioSpeech => "audio_speech",
        }
    }

    pub fn service(self) -> Service {
        match self {
            Route::AudioTranscriptions | Route::AudioDiarize => Service::Stt,
            Route::AudioSpeech => Service::Tts,
            _ => Service::Vllm,
        }
    }

    /// Audio uploads (multipart) are streamed upstream under the audio cap; every other
    /// body is JSON, read whole under the JSON cap (small, and needed to see `stream`).
    pub fn is_audio_upload(self) -> bool {
        matches!(self, Route::AudioTranscriptions | Route::AudioDiarize)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(path: &str, route: Route, service: Service) {
        assert_eq!(Route::classify(path), route, "{path}");
        assert_eq!(route.service(), service, "{path}");
    }

    #[test]
    fn paths_map_to_routes_and_services() {
        check(
            "/v1/chat/completions",
            Route::ChatCompletions,
            Service::Vllm,
        );
        check("/v1/completions", Route::Completions, Service::Vllm);
        check("/v1/embeddings", Route::Embeddings, Service::Vllm);
        check("/v1/models", Route::Models, Service::Vllm);
        check("/v1/models/qwen", Route::Models, Service::Vllm);
        check("/v1/tokenize", Route::OtherV1, Service::Vllm);
        check(
            "/v1/audio/transcriptions",
            Route::AudioTranscriptions,
            Service::Stt,
        );
        check(
            "/api/audio/diarize-chunk",
            Route::AudioDiarize,
            Service::Stt,
        );
        check("/v1/audio/speech", Route::AudioSpeech, Service::Tts);
    }
}
