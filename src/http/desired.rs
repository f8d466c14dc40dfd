//! The desired file over HTTP: `GET`/`PUT /api/desired` and the targeted edits the UI makes.
//!
//! Every write goes through the same steps: the `If-Match` ETag (required for `PUT`,
//! optional for edits) is compared with the file on disk (stale → 409 with the current
//! text), the new text is validated with `validate_text` (any error → 422 with every
//! diagnostic and its line/column, nothing written), then `DesiredStore::write_if` writes it
//! atomically under its own conflict check, so a concurrent writer or a hand edit is never
//! lost. Edits are comment-preserving splices (`edit::apply`). When git-ops runs, each
//! written edit is then committed (`gitops::GitOps::record_edit`, under its lock taken
//! before the write) and the answer's `git` field says which commit it became.
//! Must not: re-serialise the YAML, act on hosts, skip validation.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::{diagnostics_json, ApiError};
use super::extract::{Body, Path, RawBody};
use super::AppState;
use crate::edit::{self, DesiredEdit, Etag, OverridesPatch};
use crate::model::{validate_text, Diagnostic, Severity};

/// The `If-Match` header: absent → `None`; malformed → 400.
fn if_match(headers: &HeaderMap) -> Result<Option<Etag>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("");
    Etag::parse(s).map(Some).ok_or_else(|| {
        ApiError::bad_request(
            "bad_if_match",
            format!(
                "If-Match `{}` is not an ETag of this server; send the `ETag` header of \
                 GET /api/desired exactly (like \"sha256-0123456789abcdef\")",
                crate::model::limits::clip(s)
            ),
        )
    })
}

fn file_name(state: &AppState) -> String {
    state.handle.store.path().display().to_string()
}

/// Validates `text`; errors → 422 with every diagnostic. Returns the warnings.
fn validate(state: &AppState, text: &str, what: &str) -> Result<Vec<Diagnostic>, ApiError> {
    let v = validate_text(&file_name(state), text);
    if v.is_ok() {
        return Ok(v.diagnostics);
    }
    let errors: Vec<String> = v.errors().map(|d| d.to_string()).collect();
    Err(ApiError::Invalid {
        message: format!(
            "{what} would make the desired state invalid; nothing was written. {} error(s), first: {}",
            errors.len(),
            errors.first().map(String::as_str).unwrap_or("")
        ),
        diagnostics: v.diagnostics,
    })
}

/// Takes the git-ops edit lock (when git-ops runs), so no pull lands between an edit's
/// write and its commit.
async fn git_lock(state: &AppState) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    match &state.gitops {
        Some(g) => Some(g.edit_lock().await),
        None => None,
    }
}

/// Commits a written edit (`old` → `new`) when git-ops runs; the answer's `git` field.
async fn commit(
    state: &AppState,
    held: &Option<tokio::sync::OwnedMutexGuard<()>>,
    actor: crate::gitops::message::Actor,
    old: &str,
    new: &str,
) -> serde_json::Value {
    match (&state.gitops, held) {
        (Some(g), Some(held)) => g.record_edit(held, old, new, actor).await,
        _ => serde_json::Value::Null,
    }
}

fn written(etag: &Etag, changed: bool, warnings: &[Diagnostic]) -> Response {
    written_git(etag, changed, warnings, serde_json::Value::Null)
}

/// [`written`], with what git-ops committed (`git`: omitted when it does not run).
fn written_git(
    etag: &Etag,
    changed: bool,
    warnings: &[Diagnostic],
    git: serde_json::Value,
) -> Response {
    let warnings: Vec<Diagnostic> = warnings
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .cloned()
        .collect();
    let mut body = json!({
        "etag": etag.as_str(),
        "changed": changed,
        "warnings": diagnostics_json(&warnings),
    });
    if !git.is_null() {
        body["git"] = git;
    }
    let mut resp = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(etag.as_str()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// `GET /api/desired`: the YAML text with its `ETag`.
pub async fn get(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (text, etag) = state.handle.store.read().await?;
    let mut resp = (
        [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
        text,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(etag.as_str()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

/// `PUT /api/desired`: replace the whole file; `If-Match` required.
pub async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let Some(expected) = if_match(&headers)? else {
        return Err(ApiError::PreconditionRequired(
            "PUT /api/desired needs `If-Match: <ETag from GET /api/desired>` so a concurrent \
             edit is never overwritten"
                .into(),
        ));
    };
    let text = String::from_utf8(body.to_vec()).map_err(|e| {
        ApiError::bad_request(
            "not_utf8",
            format!(
                "the body is not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let warnings = validate(&state, &text, "this text")?;
    let held = git_lock(&state).await;
    let old = state.handle.store.read().await.ok().map(|(t, _)| t);
    let etag = state
        .handle
        .store
        .write_if(&expected, &text, |_| Ok(()))
        .await?;
    let git = match old {
        Some(old) => {
            let actor = super::history::actor_of(&state, &headers);
            commit(&state, &held, actor, &old, &text).await
        }
        None => serde_json::Value::Null,
    };
    Ok(written_git(&etag, true, &warnings, git))
}

/// Applies one edit: conflict check, splice, validation, atomic write. Without `If-Match`
/// a concurrent write is not the caller's conflict: the edit is re-applied to the new text.
async fn apply(
    state: &AppState,
    headers: &HeaderMap,
    expected: Option<Etag>,
    edit: DesiredEdit,
) -> Result<Response, ApiError> {
    let actor = super::history::actor_of(state, headers);
    apply_as(state, actor, expected, edit).await
}

/// [`apply`] on behalf of `actor` (the commit's author).
async fn apply_as(
    state: &AppState,
    actor: crate::gitops::message::Actor,
    expected: Option<Etag>,
    edit: DesiredEdit,
) -> Result<Response, ApiError> {
    let store = &state.handle.store;
    let held = git_lock(state).await;
    for _attempt in 0..8 {
        let (text, etag) = store.read().await?;
        if let Some(exp) = &expected {
            if *exp != etag {
                return Err(ApiError::Conflict {
                    current_text: text,
                    current_etag: etag,
                });
            }
        }
        must_exist(&text, &edit)?;
        let new_text = edit::apply(&text, &edit)?;
        if new_text == text {
            return Ok(written(&etag, false, &[]));
        }
        let warnings = validate(state, &new_text, "this edit")?;
        match store.write_if(&etag, &new_text, |_| Ok(())).await {
            Ok(new_etag) => {
                count_model_changes(state, &actor, &text, &new_text);
                let git = commit(state, &held, actor, &text, &new_text).await;
                return Ok(written_git(&new_etag, true, &warnings, git));
            }
            Err(edit::StoreError::Conflict { .. }) if expected.is_none() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Unavailable(
        "the desired file kept changing while this edit was applied; retry".into(),
    ))
}

/// Counts the deployment model changes an edit by the UI or an API client made
/// (`spark_control_swaps_total`; the proxy counts its own).
fn count_model_changes(
    state: &AppState,
    actor: &crate::gitops::message::Actor,
    old: &str,
    new: &str,
) {
    use crate::gitops::message::Actor;
    let cause = match actor {
        Actor::Ui { .. } => "ui",
        Actor::Api { .. } => "api",
        _ => return,
    };
    let parse = |t: &str| crate::model::validate_text("desired.yaml", t).desired;
    if let (Some(a), Some(b)) = (parse(old), parse(new)) {
        state.handle.demand.note_swaps(cause, a.model_changes(&b));
    }
}

/// Removing something that is not in the file is a 404, not a silent success.
fn must_exist(text: &str, edit: &DesiredEdit) -> Result<(), ApiError> {
    if let DesiredEdit::SetDeploymentModel { deployment, .. } = edit {
        let names = edit::ops::deployment_names(text)?;
        if names.iter().any(|n| n == deployment) {
            return Ok(());
        }
        return Err(ApiError::NotFound(format!(
            "there is no deployment `{}` in the desired file ({})",
            crate::model::limits::clip(deployment),
            if names.is_empty() {
                "it configures none: Setup names a head host first".to_string()
            } else {
                format!("its deployments: {}", names.join(", "))
            }
        )));
    }
    let (section, name) = match edit {
        DesiredEdit::RemoveModel { name } => ("models", name),
        DesiredEdit::RemoveHost { name } => ("hosts", name),
        _ => return Ok(()),
    };
    match edit::yaml::get(text, &[section, name])? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!(
            "there is no `{section}.{}` in the desired file{}",
            crate::model::limits::clip(name),
            if section == "models" {
                " (bundled models cannot be removed, only custom entries)"
            } else {
                ""
            }
        ))),
    }
}

/// `POST /api/desired/preview`: what one `DesiredEdit` would change and do, written
/// nowhere: the changes in words, the plan it would cause against the latest
/// observation, and the ETag of the file it applies to (send it as `If-Match` with the
/// same edit to `POST /api/desired/edit`, so what runs is what was previewed).
pub async fn preview(
    State(state): State<AppState>,
    Body(e): Body<DesiredEdit>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (text, etag) = state.handle.store.read().await?;
    must_exist(&text, &e)?;
    let new_text = edit::apply(&text, &e)?;
    let warnings = validate(&state, &new_text, "this edit")?;
    let desired = validate_text(&file_name(&state), &new_text)
        .desired
        .ok_or_else(|| ApiError::Unavailable("the edited file did not parse".into()))?;
    let current = validate_text(&file_name(&state), &text).desired;
    let changes = crate::gitops::message::describe(current.as_ref(), Some(&desired));
    let observed = state.handle.status.borrow().observed.clone();
    let plan = crate::plan::plan(&desired, &observed);
    Ok(Json(serde_json::json!({
        "etag": etag.as_str(),
        "unchanged": new_text == text,
        "changes": changes,
        "plan": { "steps": plan.steps, "complete": plan.complete,
                  "incomplete_because": plan.unknown, "text": crate::plan::render(&plan) },
        "warnings": warnings.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
    })))
}

/// `POST /api/desired/edit`: one `DesiredEdit` (`{"op": …}`), `If-Match` optional.
pub async fn edit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(e): Body<DesiredEdit>,
) -> Result<Response, ApiError> {
    apply(&state, &headers, if_match(&headers)?, e).await
}

/// `POST /api/models/{name}/activate`.
pub async fn activate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let e = DesiredEdit::Activate { model: Some(name) };
    apply(&state, &headers, if_match(&headers)?, e).await
}

/// `PUT /api/models/{name}/overrides`: body is a per-field patch (`null` removes).
pub async fn overrides(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(model): Path<String>,
    Body(overrides): Body<OverridesPatch>,
) -> Result<Response, ApiError> {
    let e = DesiredEdit::SetOverrides { model, overrides };
    apply(&state, &headers, if_match(&headers)?, e).await
}

/// Body of `POST /api/models`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewModel {
    name: String,
    repo: String,
    #[serde(default = "solo")]
    mode: String,
}
fn solo() -> String {
    "solo".into()
}

/// `POST /api/models`: add or update a custom catalog entry.
pub async fn add_model(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(m): Body<NewModel>,
) -> Result<Response, ApiError> {
    let e = DesiredEdit::AddModel {
        name: m.name,
        repo: m.repo,
        mode: m.mode,
    };
    let mut resp = apply(&state, &headers, if_match(&headers)?, e).await?;
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

/// `DELETE /api/models/{name}`: remove a custom entry and its overrides.
pub async fn remove_model(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    apply(
        &state,
        &headers,
        if_match(&headers)?,
        DesiredEdit::RemoveModel { name },
    )
    .await
}

/// Body of `PUT /api/services/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    host: Option<String>,
    port: Option<u16>,
    running: Option<bool>,
}

/// `PUT /api/services/{name}`: placement and running state.
pub async fn place_service(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(service): Path<String>,
    Body(p): Body<Placement>,
) -> Result<Response, ApiError> {
    let e = DesiredEdit::PlaceService {
        service,
        host: p.host,
        port: p.port,
        running: p.running,
    };
    apply(&state, &headers, if_match(&headers)?, e).await
}

/// Body of `PUT /api/updates/policy`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    policy: String,
    pin: Option<String>,
}

/// `PUT /api/updates/policy`.
pub async fn update_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(p): Body<Policy>,
) -> Result<Response, ApiError> {
    let e = DesiredEdit::SetUpdatePolicy {
        policy: p.policy,
        pin: p.pin,
    };
    apply(&state, &headers, if_match(&headers)?, e).await
}

/// Body of `PUT /api/hosts/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostBody {
    address: String,
    user: Option<String>,
    port: Option<u16>,
}

/// `PUT /api/hosts/{name}`.
pub async fn set_host(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Body(h): Body<HostBody>,
) -> Result<Response, ApiError> {
    let e = DesiredEdit::SetHost {
        name,
        address: h.address,
        user: h.user,
        port: h.port,
    };
    apply(&state, &headers, if_match(&headers)?, e).await
}

/// `DELETE /api/hosts/{name}`.
pub async fn remove_host(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    apply(
        &state,
        &headers,
        if_match(&headers)?,
        DesiredEdit::RemoveHost { name },
    )
    .await
}

/// Body of `PUT /api/cluster`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterBody {
    head: Option<String>,
    workers: Option<Vec<String>>,
}

/// `PUT /api/cluster`.
pub async fn set_cluster(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(c): Body<ClusterBody>,
) -> Result<Response, ApiError> {
    let e = DesiredEdit::SetCluster {
        head: c.head,
        workers: c.workers,
    };
    apply(&state, &headers, if_match(&headers)?, e).await
}

/// The proxy's writer of request-triggered swaps and idle unloads: `set_deployment_model`
/// through the same conflict-checked store, validation and git-ops commit as the UI's
/// edits (author: on-request), recorded in the event log with who asked and why.
pub struct DesiredSwapper(pub AppState);

impl crate::proxy::Swapper for DesiredSwapper {
    fn set_model(
        &self,
        deployment: String,
        model: Option<String>,
        cause: crate::proxy::SwapCause,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> {
        let state = self.0.clone();
        Box::pin(async move {
            use crate::proxy::SwapCause;
            let why = match &cause {
                SwapCause::Request { client, route } => format!(
                    "a {route} request from {client} asked for `{}`",
                    model.as_deref().unwrap_or("")
                ),
                SwapCause::Idle { after } => {
                    format!("no request for {} s (idle_unload_after)", after.as_secs())
                }
            };
            let what = match &model {
                Some(m) => format!("deployment `{deployment}`: activate `{m}`"),
                None => format!("deployment `{deployment}`: unload its model"),
            };
            let edit = DesiredEdit::SetDeploymentModel {
                deployment: deployment.clone(),
                model: model.clone(),
            };
            let actor = crate::gitops::message::Actor::OnRequest(why.clone());
            let result = match apply_as(&state, actor, None, edit).await {
                Ok(_) => Ok(()),
                Err(e) => Err(format!(
                    "{what} could not be written to the desired file: {e}"
                )),
            };
            state.handle.events.append(crate::events::Event {
                at: chrono::Utc::now(),
                kind: crate::events::EventKind::Action,
                service: deployment,
                ok: result.is_ok(),
                source: "proxy".into(),
                error: Some(match &result {
                    Ok(()) => format!("{what}, because {why}"),
                    Err(e) => e.clone(),
                }),
                ms: None,
            });
            result
        })
    }
}
