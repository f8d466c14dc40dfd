//! The request handler: check, pick the upstream, forward verbatim, stream the answer back.
//!
//! Owns the order of checks (401 → 413 by `Content-Length` → upstream state → body; for
//! requests routed by `model` — JSON bodies, and audio uploads whose form names one — the
//! body, or the start of the upload, comes before the upstream) and
//! the translation of transport failures into [`ProxyError`]s. Must not hold the `watch`
//! borrow across `.await` (the upstream is cloned out in one statement), allocate big
//! buffers, or look inside successful responses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Uri, Version};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use tokio::sync::watch;
use tokio::time::timeout_at;

use super::admission::{admit, authorize, client_of, key_allows, not_allowed};
use super::body::{Guarded, UpstreamBody};
use super::client::{strip_hop_by_hop, UpstreamClient};
use super::demand::{swap_target, Demand, SwapCause};
use super::error::{sse_error_event, ProxyError, Service};
use super::metrics::{Meter, ProxyMetrics};
use super::models::{Lookup, ModelTable};
use super::route::Route;
use super::{ProxyConfig, Routes, Upstream};

/// Most of an upstream error body kept for the SSE error event.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Longest wait for an upstream error body on a streaming request.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// State shared by every request: read-only, so no locks.
pub(crate) struct Shared {
    pub(crate) routes: watch::Receiver<Routes>,
    pub(crate) config: ProxyConfig,
    pub(crate) metrics: Arc<ProxyMetrics>,
    pub(crate) client: UpstreamClient,
    pub(crate) demand: Arc<Demand>,
}

/// Who asked, for the record of a request-triggered swap.
struct Asker {
    client: String,
    route: Route,
}

pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let start = Instant::now();
    let route = Route::classify(req.uri().path());
    let mut meter = Meter::new(Arc::clone(&shared.metrics), route, start);
    let response = match forward(&shared, route, start, req, &mut meter).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    if !meter.is_labelled() {
        // Refused before the body was read: counted under the active model.
        let (deployment, model) = unnamed(&shared.routes.borrow(), route.service());
        meter.labelled(&deployment, &model);
    }
    meter.answered(response.status().as_u16());
    response
}

/// The `deployment` and `model` labels of a request that names no model: the first
/// deployment (vLLM routes; the speech services have none) and its upstream's model.
pub(super) fn unnamed(routes: &Routes, service: Service) -> (String, String) {
    let deployment = match service {
        Service::Vllm => routes.models.deployment_for(None),
        Service::Stt | Service::Tts => super::metrics::DEFAULT_DEPLOYMENT,
    };
    (deployment.to_string(), active_model(routes, service))
}

/// The `deployment` label of a request naming `model` (see `ModelTable::deployment_for`).
pub(super) fn deployment_of(routes: &Routes, service: Service, model: &str) -> String {
    match service {
        Service::Vllm => routes.models.deployment_for(Some(model)).to_string(),
        Service::Stt | Service::Tts => super::metrics::DEFAULT_DEPLOYMENT.to_string(),
    }
}

/// The `model` label when the request names none: the upstream's model, if known.
fn active_model(routes: &Routes, service: Service) -> String {
    match select(routes, service) {
        Upstream::Ready { model, .. } => model.clone().unwrap_or_default(),
        Upstream::Loading { model, .. } => model.clone(),
        Upstream::Down { .. } | Upstream::NotConfigured => String::new(),
    }
}

async fn forward(
    shared: &Shared,
    route: Route,
    start: Instant,
    req: Request,
    meter: &mut Meter,
) -> Result<Response, ProxyError> {
    let config = &shared.config;
    // The models the request's key may use (`None`: every one).
    let mut scope: Option<&[String]> = None;
    if !config.inference_keys.is_empty() {
        let key = authorize(req.headers(), &config.inference_keys)?;
        scope = config.key_models.get(key).and_then(|m| m.as_deref());
    }
    let (limit, what) = if route.is_audio_upload() {
        (config.max_audio_body, "audio")
    } else {
        (config.max_json_body, "JSON")
    };
    if content_length(req.headers()).is_some_and(|len| len > limit as u64) {
        return Err(ProxyError::TooLarge { limit, what });
    }
    let mut service = route.service();
    if route == Route::Models && req.method() == axum::http::Method::GET {
        return models_answer(shared, req.uri().path());
    }
    // JSON requests to vLLM are routed by their `model`, known once the body is read;
    // audio uploads by their form's `model` field, when the catalog names it.
    let by_model = service == Service::Vllm && !route.is_audio_upload();
    let form_boundary = route
        .is_audio_upload()
        .then(|| req.headers().get(header::CONTENT_TYPE))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(super::multipart::boundary)
        .filter(|_| !shared.routes.borrow().models.entries.is_empty());
    let mut target = if by_model || form_boundary.is_some() {
        None
    } else {
        Some(upstream(shared, service).await?)
    };
    let deadline = tokio::time::Instant::from_std(start + config.overall_timeout);
    let asker = Asker {
        client: client_of(&req),
        route,
    };

    let (mut parts, body) = req.into_parts();
    let mut named: Option<String> = None;
    let (body, streaming) = if route.is_audio_upload() {
        let mut rest = Limited::new(body, limit);
        let (prefix, model) = match &form_boundary {
            Some(b) => form_model(&mut rest, b, deadline, limit, what).await?,
            None => (Bytes::new(), None),
        };
        if let Some(model) = model {
            let table = Arc::clone(&shared.routes.borrow().models);
            match table.lookup(&model) {
                Lookup::First | Lookup::Other(_) | Lookup::NotLoaded(_)
                    if scope.is_some() && !key_allows(shared, scope, Some(&model)) =>
                {
                    return Err(not_allowed(shared, scope, Some(&model)));
                }
                Lookup::First | Lookup::Other(_) => {
                    service = Service::Vllm;
                    named = Some(model.clone());
                    let deployment = deployment_of(&shared.routes.borrow(), service, &model);
                    meter.labelled(&deployment, &model);
                    target = Some(upstream_for_model(shared, Some(model), &asker).await?);
                }
                Lookup::NotLoaded(e) => {
                    return Err(ProxyError::ModelNotLoaded {
                        could_run: e.could_run.clone(),
                        model,
                    })
                }
                // Not a catalog model: the speech service's own name.
                Lookup::Unknown => meter.labelled(super::metrics::DEFAULT_DEPLOYMENT, &model),
            }
        }
        (
            Body::new(super::multipart::Prefixed::new(prefix, rest)),
            false,
        )
    } else {
        let bytes = match timeout_at(deadline, Limited::new(body, limit).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<LengthLimitError>() => {
                return Err(ProxyError::TooLarge { limit, what })
            }
            Ok(Err(e)) => return Err(ProxyError::BadBody(e.to_string())),
            Err(_) => return Err(ProxyError::BadBody("timed out reading it".into())),
        };
        let facts = body_facts(&bytes);
        let streaming = wants_stream(&parts.headers, &facts);
        named.clone_from(&facts.model);
        if let Some(model) = &facts.model {
            let deployment = deployment_of(&shared.routes.borrow(), service, model);
            meter.labelled(&deployment, model);
        }
        if service == Service::Vllm && !key_allows(shared, scope, facts.model.as_deref()) {
            return Err(not_allowed(shared, scope, facts.model.as_deref()));
        }
        if by_model {
            target = Some(upstream_for_model(shared, facts.model.clone(), &asker).await?);
        }
        (Body::from(bytes), streaming)
    };
    if !meter.is_labelled() {
        let (deployment, model) = unnamed(&shared.routes.borrow(), service);
        meter.labelled(&deployment, &model);
    }
    let target = match target {
        Some(t) => t,
        None => upstream(shared, service).await?,
    };
    let in_flight = match service {
        Service::Vllm => Some(admit(shared, named.as_deref())?),
        Service::Stt | Service::Tts => None,
    };

    let authority = target
        .base
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| ProxyError::Unreachable {
            service,
            base: target.base.clone(),
            cause: "invalid upstream address: expected http://host:port".into(),
        })?;
    if parts.uri.scheme().is_some() {
        // An absolute-form request target: the upstream gets origin-form.
        let origin = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        parts.uri = Uri::try_from(origin).map_err(|e| ProxyError::BadBody(e.to_string()))?;
    }
    parts.version = Version::HTTP_11;
    // `Host` is replaced by the upstream's address in `client.rs`.
    // Our server already answered any `Expect: 100-continue`; the body is on its way.
    parts.headers.remove(header::EXPECT);
    strip_hop_by_hop(&mut parts.headers);
    parts.extensions = Default::default();

    let sent = timeout_at(
        deadline,
        shared
            .client
            .request(Request::from_parts(parts, body), authority),
    );
    let (upstream_response, lease) = match sent.await {
        Ok(Ok(exchange)) => exchange,
        Ok(Err(e)) => return Err(transport_error(service, target, &*e, limit, what)),
        Err(_) => {
            return Err(ProxyError::Timeout {
                service,
                after: config.overall_timeout,
            })
        }
    };

    let (mut parts, incoming) = upstream_response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if streaming && !parts.status.is_success() {
        let wait = deadline.min(tokio::time::Instant::now() + ERROR_BODY_TIMEOUT);
        let error_body =
            match timeout_at(wait, Limited::new(incoming, MAX_ERROR_BODY).collect()).await {
                Ok(Ok(collected)) => collected.to_bytes(),
                _ => Bytes::new(),
            };
        let event = sse_error_event(parts.status, &error_body);
        for name in [header::CONTENT_LENGTH, header::CONTENT_ENCODING] {
            parts.headers.remove(name);
        }
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        parts
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        parts
            .headers
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
        drop(in_flight);
        return Ok(Response::from_parts(parts, Body::from(event)));
    }
    if is_event_stream(&parts.headers) {
        parts
            .headers
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    let streamed = streaming || is_event_stream(&parts.headers);
    let finish = meter.body_finish(streamed);
    let body = UpstreamBody::new(incoming, lease, deadline, finish).await;
    let body = Guarded::new(body, in_flight, streamed);
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// Reads a multipart upload until its `model` field is seen (wherever it is, under the
/// body limit `limit`: a 413 above it) or the body ends without it (see `multipart.rs`):
/// the bytes read (sent on first) and the field's value.
async fn form_model(
    body: &mut Limited<Body>,
    boundary: &str,
    deadline: tokio::time::Instant,
    limit: usize,
    what: &'static str,
) -> Result<(Bytes, Option<String>), ProxyError> {
    use super::multipart::{FieldScan, Peek};
    let mut read = bytes::BytesMut::new();
    let mut scan = FieldScan::new(boundary, "model");
    loop {
        match scan.scan(&read) {
            Peek::Found(model) => return Ok((read.freeze(), Some(model))),
            Peek::Absent => return Ok((read.freeze(), None)),
            Peek::NeedMore => {}
        }
        match timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    read.extend_from_slice(&data);
                }
            }
            Ok(None) => return Ok((read.freeze(), None)),
            Ok(Some(Err(e))) if e.is::<LengthLimitError>() => {
                return Err(ProxyError::TooLarge { limit, what })
            }
            Ok(Some(Err(e))) => return Err(ProxyError::BadBody(e.to_string())),
            Err(_) => return Err(ProxyError::BadBody("timed out reading it".into())),
        }
    }
}

/// Where a request goes, cloned out of the watch.
struct Target {
    base: String,
    /// Set when the control loop last saw the upstream down (we try anyway).
    down_because: Option<String>,
}

fn select(routes: &Routes, service: Service) -> &Upstream {
    match service {
        Service::Vllm => &routes.vllm,
        Service::Stt => &routes.stt,
        Service::Tts => &routes.tts,
    }
}

async fn upstream(shared: &Shared, service: Service) -> Result<Target, ProxyError> {
    // One statement: the borrow ends before any `.await`.
    let current = select(&shared.routes.borrow(), service).clone();
    match target_of(current, service) {
        Err(ProxyError::Loading { model }) => match shared.config.wait_for_ready {
            Some(wait) => wait_until_ready(shared.routes.clone(), service, model, wait).await,
            None => Err(ProxyError::Loading { model }),
        },
        other => other,
    }
}

/// The upstream of the deployment serving the body's `model` (see `models.rs`). A
/// catalog model a deployment with `on_request: swap` could serve, but does not, is
/// swapped in there first (see `demand.rs`); so is one still loading there.
async fn upstream_for_model(
    shared: &Shared,
    model: Option<String>,
    asker: &Asker,
) -> Result<Target, ProxyError> {
    // One statement: the borrow ends before any `.await`.
    let (table, policy) = {
        let routes = shared.routes.borrow();
        (Arc::clone(&routes.models), Arc::clone(&routes.policy))
    };
    if table.entries.is_empty() {
        return upstream(shared, Service::Vllm).await;
    }
    let model = model.filter(|m| !m.is_empty());
    let Some(model) = model else {
        return upstream(shared, Service::Vllm).await;
    };
    let entry = table
        .by_name
        .get(&model)
        .and_then(|&i| table.entries.get(i));
    let swap_on = |e: &super::ModelEntry| match (&e.deployment, &e.upstream) {
        (None, _) => swap_target(&policy, e),
        (Some(d), Upstream::Loading { .. }) if policy.swap_on_request.contains(d) => {
            Some(d.clone())
        }
        _ => None,
    };
    if let Some((e, deployment)) = entry.and_then(|e| swap_on(e).map(|d| (e, d))) {
        let cause = SwapCause::Request {
            client: asker.client.clone(),
            route: asker.route.label().to_string(),
        };
        let up = shared
            .demand
            .swap_and_wait(shared.routes.clone(), &deployment, &e.name, cause)
            .await?;
        return target_of(up, Service::Vllm);
    }
    match table.lookup(&model) {
        Lookup::First => upstream(shared, Service::Vllm).await,
        Lookup::Other(up) => target_of(up.clone(), Service::Vllm),
        Lookup::NotLoaded(e) => Err(ProxyError::ModelNotLoaded {
            model,
            could_run: e.could_run.clone(),
        }),
        Lookup::Unknown => Err(ProxyError::ModelNotFound(model)),
    }
}

/// `GET /v1/models` (the catalog with statuses) and `GET /v1/models/{id}`, answered here.
fn models_answer(shared: &Shared, path: &str) -> Result<Response, ProxyError> {
    let table = Arc::clone(&shared.routes.borrow().models);
    match path.strip_prefix("/v1/models/").filter(|id| !id.is_empty()) {
        None => Ok(axum::Json(table.list()).into_response()),
        Some(id) => {
            let id = percent_decode(id);
            let entry = table
                .by_name
                .get(&id)
                .and_then(|&i| table.entries.get(i))
                .ok_or_else(|| ProxyError::ModelNotFound(id.clone()))?;
            Ok(axum::Json(ModelTable::card(entry)).into_response())
        }
    }
}

/// `%2F` and friends in a path segment (a repo id is `org/name`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn target_of(upstream: Upstream, service: Service) -> Result<Target, ProxyError> {
    match upstream {
        Upstream::Ready { base, .. } => Ok(Target {
            base,
            down_because: None,
        }),
        Upstream::Down { base, why } => Ok(Target {
            base,
            down_because: Some(why),
        }),
        Upstream::Loading { model, .. } => Err(ProxyError::Loading { model }),
        Upstream::NotConfigured => Err(ProxyError::NotConfigured(service)),
    }
}

/// Waits for a swap to finish, up to `wait`; then 503 naming the model still loading.
async fn wait_until_ready(
    mut routes: watch::Receiver<Routes>,
    service: Service,
    mut model: String,
    wait: Duration,
) -> Result<Target, ProxyError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match timeout_at(deadline, routes.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return Err(ProxyError::Loading { model }),
        }
        let current = select(&routes.borrow_and_update(), service).clone();
        match target_of(current, service) {
            Err(ProxyError::Loading { model: now }) => model = now,
            other => return other,
        }
    }
}

fn transport_error(
    service: Service,
    target: Target,
    err: &(dyn std::error::Error + 'static),
    limit: usize,
    what: &'static str,
) -> ProxyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut cause = String::new();
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return ProxyError::TooLarge { limit, what };
        }
        if !cause.is_empty() {
            cause.push_str(": ");
        }
        cause.push_str(&e.to_string());
        source = e.source();
    }
    if let Some(why) = target.down_because {
        cause.push_str(&format!(" (last observed down: {why})"));
    }
    ProxyError::Unreachable {
        service,
        base: target.base,
        cause,
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// What the proxy reads from a JSON request body, in one parse: `stream` and `model` at
/// the top level (nothing else, and only when the body names one of them).
#[derive(Debug, Default, PartialEq)]
struct BodyFacts {
    /// `"stream": true`.
    stream: bool,
    /// `"model"`, when it is a string (the metrics' `model` label).
    model: Option<String>,
}

fn body_facts(body: &[u8]) -> BodyFacts {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        stream: Option<bool>,
        #[serde(default)]
        model: Option<serde_json::Value>,
    }
    let names = |key: &[u8]| body.windows(key.len()).any(|w| w == key);
    if !names(b"\"stream\"") && !names(b"\"model\"") {
        return BodyFacts::default();
    }
    match serde_json::from_slice::<Probe>(body) {
        Ok(p) => BodyFacts {
            stream: p.stream == Some(true),
            model: match p.model {
                Some(serde_json::Value::String(m)) => Some(m),
                _ => None,
            },
        },
        Err(_) => BodyFacts::default(),
    }
}

/// Whether the client asked for a stream: `"stream": true` at the top of the JSON body,
/// or `Accept: text/event-stream`.
fn wants_stream(headers: &HeaderMap, facts: &BodyFacts) -> bool {
    let accepts_sse = headers
        .get(header::ACCEPT)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    accepts_sse || facts.stream
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check_stream(accept: Option<&str>, body: &str, expected: bool) {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(header::ACCEPT, HeaderValue::from_str(a).unwrap());
        }
        assert_eq!(
            wants_stream(&headers, &body_facts(body.as_bytes())),
            expected,
            "{body}"
        );
    }

    #[test]
    fn the_model_is_read_from_the_same_parse() {
        for (body, model) in [
            (r#"{"model":"qwen","stream":true}"#, Some("qwen")),
            (r#"{"model":"q\u00e9n"}"#, Some("q\u{e9}n")),
            (r#"{"model":5,"stream":true}"#, None),
            (r#"{"meta":{"model":"x"}}"#, None),
            (r#"{"prompt":"\"model\": \"y\""}"#, None),
            ("not json \"model\"", None),
        ] {
            assert_eq!(
                body_facts(body.as_bytes()).model.as_deref(),
                model,
                "{body}"
            );
        }
        // A model that is not a string does not hide `stream`.
        assert!(body_facts(br#"{"model":5,"stream":true}"#).stream);
    }

    #[test]
    fn stream_requests_are_recognised() {
        check_stream(None, r#"{"model":"m","stream":true}"#, true);
        check_stream(None, r#"{"model":"m", "stream" : true }"#, true);
        check_stream(None, r#"{"model":"m","stream":false}"#, false);
        check_stream(None, r#"{"model":"m","stream":null}"#, false);
        check_stream(None, r#"{"model":"m"}"#, false);
        check_stream(None, r#"{"meta":{"stream":true},"stream":false}"#, false);
        check_stream(
            None,
            r#"{"messages":[{"content":"\"stream\": true"}]}"#,
            false,
        );
        check_stream(None, "not json \"stream\"", false);
        check_stream(Some("text/event-stream"), "", true);
        check_stream(Some("application/json"), "", false);
    }
}
