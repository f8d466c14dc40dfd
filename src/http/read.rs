//! Read-only routes over the status snapshot: `/api/state`, `/api/plan`,
//! `/api/endpoints`, `/healthz`, `/readyz`.
//!
//! Each handler borrows the `watch` snapshot only to clone its `Arc` (never across an
//! `.await`) and shapes it for the wire (`/api/state` through the typed
//! [`super::wire::StateView`]). Must not: change anything, contact hosts.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::wire::{AuthView, StateView};
use super::AppState;
use std::collections::BTreeMap;

use crate::model::catalog::{catalog, CatalogEntry};
use crate::model::desired::{Desired, ServiceKind};
use crate::model::Observed;
use crate::status::Status;

/// The current snapshot (a cheap `Arc` clone).
pub fn snapshot(state: &AppState) -> std::sync::Arc<Status> {
    state.handle.status.borrow().clone()
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 once the loop has a valid desired file and a first observation.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match not_ready(&snapshot(&state)) {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

fn not_ready(s: &Status) -> Option<String> {
    if s.desired.is_none() {
        let first = s
            .desired_diagnostics
            .iter()
            .find(|d| d.severity == crate::model::Severity::Error)
            .map(|d| d.to_string());
        return Some(match first {
            Some(e) => format!("no valid desired file yet: {e}"),
            None => format!("no valid desired file yet ({})", s.desired_file.display()),
        });
    }
    if s.observed.generation == 0 {
        return Some("waiting for the first observation of the hosts".into());
    }
    None
}

/// The wire view of `s` on this server (what `/api/state` and its stream write).
pub fn view_of<'a>(state: &AppState, s: &'a Status) -> StateView<'a> {
    let auth = AuthView {
        admin_token: state.admin_token.is_some(),
    };
    StateView::of(s, auth, not_ready(s).is_none())
}

/// `GET /api/state`: the status plus auth and the effective catalog ([`StateView`]).
pub async fn state(State(state): State<AppState>) -> Result<Response, ApiError> {
    let s = snapshot(&state);
    let view = view_of(&state, &s);
    let body = serde_json::to_vec(&view)
        .map_err(|e| ApiError::Internal(format!("cannot serialise the status: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/plan`: the plan the loop would run now, as JSON and as text.
pub async fn plan(State(state): State<AppState>) -> Json<Value> {
    let s = snapshot(&state);
    let (complete, mut why) = if s.desired.is_none() {
        (
            false,
            vec!["there is no valid desired file, so there is no plan".to_string()],
        )
    } else if s.observed.generation == 0 {
        (
            false,
            vec!["the hosts have not been observed yet".to_string()],
        )
    } else {
        (s.plan.complete, Vec::new())
    };
    why.extend(s.plan.unknown.iter().cloned());
    Json(json!({
        "generation": s.plan.generation,
        "complete": complete,
        "incomplete_because": why,
        "steps": s.plan.steps,
        "text": s.plan_text,
        "busy": s.busy(),
    }))
}

/// `GET /api/endpoints`: service discovery for LAN apps (DESIGN §5, exact shape).
pub async fn endpoints(State(state): State<AppState>) -> Json<Value> {
    let s = snapshot(&state);
    Json(match s.desired.as_deref() {
        Some(d) => endpoints_of(d, &s.observed),
        None => json!({}),
    })
}

fn url_host(address: &str) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]")
    } else {
        address.to_string()
    }
}

/// The endpoints document from desired placement and observed readiness. One key per
/// service; `vllm` first (a service named `vllm` would be shadowed; validation keeps
/// service names apart from it in practice).
pub fn endpoints_of(d: &Desired, o: &Observed) -> Value {
    let mut out = Map::new();
    let first = d.first_deployment();
    let cat = catalog(d);
    let repo = first
        .as_ref()
        .and_then(|x| x.active_model.as_ref())
        .and_then(|m| cat.get(m).map(|e| e.spec.repo.clone()));
    let mut vllm = Map::new();
    let served = o.vllm.get().map(|v| v.models.as_slice()).unwrap_or(&[]);
    let ready = repo.as_ref().is_some_and(|r| served.contains(r));
    vllm.insert("ready".into(), Value::Bool(ready));
    if let Some(base) = first.as_ref().and_then(|x| crate::serving::base_of(d, x)) {
        vllm.insert("base_url".into(), Value::String(format!("{base}/v1")));
    }
    if let Some(r) = repo {
        vllm.insert("model".into(), Value::String(r));
    }
    vllm.insert("openai_compat".into(), Value::Bool(true));
    out.insert("vllm".into(), Value::Object(vllm));
    for (name, svc) in &d.services {
        if name == "vllm" {
            continue;
        }
        let mut e = Map::new();
        let ready = o.services.get(name).and_then(|f| f.get()).copied() == Some(true);
        e.insert("ready".into(), Value::Bool(ready));
        if let Some(h) = d.hosts.get(&svc.host) {
            e.insert(
                "base_url".into(),
                Value::String(format!("http://{}:{}", url_host(&h.address), svc.port)),
            );
        }
        let kind = match svc.kind {
            ServiceKind::Stt => "stt",
            ServiceKind::Tts => "tts",
            ServiceKind::Other => "other",
        };
        e.insert("kind".into(), Value::String(kind.into()));
        if let Some(m) = &svc.model {
            e.insert("model".into(), Value::String(m.clone()));
        }
        out.insert(name.clone(), Value::Object(e));
    }
    if !out.contains_key("models") {
        out.insert("models".into(), models_of(d, o, &cat));
    }
    Value::Object(out)
}

/// `models` of `/api/endpoints`: every catalog model by name, with the deployment it is
/// active on, that deployment's `/v1` URL and whether its vLLM serves it now.
fn models_of(d: &Desired, o: &Observed, cat: &BTreeMap<String, CatalogEntry>) -> Value {
    let deployments = d.deployments();
    let mut out = Map::new();
    for (name, entry) in cat {
        let active = deployments
            .iter()
            .enumerate()
            .find(|(_, x)| x.active_model.as_deref() == Some(name.as_str()));
        let ready = active.is_some_and(|(i, x)| {
            o.vllm_of(&x.name, i == 0)
                .get()
                .is_some_and(|v| entry.names().iter().any(|n| v.models.contains(n)))
        });
        let mut e = Map::new();
        e.insert("ready".into(), Value::Bool(ready));
        let base = active.and_then(|(_, x)| crate::serving::base_of(d, x));
        e.insert(
            "base_url".into(),
            base.map_or(Value::Null, |b| Value::String(format!("{b}/v1"))),
        );
        e.insert(
            "deployment".into(),
            active.map_or(Value::Null, |(_, x)| Value::String(x.name.clone())),
        );
        e.insert("kind".into(), Value::String("llm".into()));
        out.insert(name.clone(), Value::Object(e));
    }
    Value::Object(out)
}

/// Whether vLLM lists the active model's repo.
pub fn endpoints_of_status(s: &Status) -> bool {
    s.desired
        .as_deref()
        .is_some_and(|d| endpoints_of(d, &s.observed)["vllm"]["ready"].as_bool() == Some(true))
}
