//! The targeted edits of the desired-state file that the UI, the HTTP API and the CLI make.
//!
//! Owns: mapping each `DesiredEdit` onto `yaml::set`/`yaml::remove` over the DESIGN §3
//! shape (`active_model`, `models`, `overrides`, `services`, `updates`, `hosts`, `cluster`).
//! Each edit touches only the keys it names; fields left `None` are left alone. Must not:
//! validate the resulting desired state (the caller runs `model::validate`), do IO.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

use super::yaml::{self, EditError, EditValue};

/// One edit of the desired state, as the HTTP API accepts it (`{"op": "activate", ...}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum DesiredEdit {
    /// Set `active_model` (null: nothing loaded). `model` must be present, even as null.
    Activate {
        #[serde(deserialize_with = "required_nullable")]
        model: Option<String>,
    },
    /// Patch `overrides.<model>`; an entry left empty is removed.
    SetOverrides {
        model: String,
        overrides: OverridesPatch,
    },
    /// Add or update the custom catalog entry `models.<name>`.
    AddModel {
        name: String,
        repo: String,
        mode: String,
    },
    /// Remove `models.<name>` and `overrides.<name>`.
    RemoveModel { name: String },
    /// Set the given fields of `services.<service>`.
    PlaceService {
        service: String,
        host: Option<String>,
        port: Option<u16>,
        running: Option<bool>,
    },
    /// Set `updates.launcher` to `manual|notify|auto`, or to `{ pin: <commit> }` when `pin` is given.
    SetUpdatePolicy { policy: String, pin: Option<String> },
    /// Add or update `hosts.<name>`.
    SetHost {
        name: String,
        address: String,
        user: Option<String>,
        port: Option<u16>,
    },
    /// Remove `hosts.<name>`.
    RemoveHost { name: String },
    /// Set one deployment's `active_model` (null: none). A model named here also sets
    /// every other deployment that shares a host with this one to null (a host serves one
    /// deployment at a time), so two solo deployments → one cluster deployment is one
    /// edit. In the older shape (`cluster:` + `active_model:`) the one deployment is
    /// `default`.
    SetDeploymentModel {
        deployment: String,
        #[serde(deserialize_with = "required_nullable")]
        model: Option<String>,
    },
    /// Set `cluster.head` and/or `cluster.workers`.
    SetCluster {
        head: Option<String>,
        workers: Option<Vec<String>>,
    },
}

/// Per-field patch of a model's overrides: absent = leave, `null` = remove, value = set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverridesPatch {
    #[serde(default, deserialize_with = "some")]
    pub max_context: Option<Option<u64>>,
    #[serde(default, deserialize_with = "some")]
    pub gpu_memory: Option<Option<f64>>,
    #[serde(default, deserialize_with = "some")]
    pub fastsafetensors: Option<Option<bool>>,
    #[serde(default, deserialize_with = "some")]
    pub prefix_caching: Option<Option<bool>>,
    #[serde(default, deserialize_with = "some")]
    pub fp8_kv_cache: Option<Option<bool>>,
    #[serde(default, deserialize_with = "some")]
    pub extra_args: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "some")]
    pub env: Option<Option<BTreeMap<String, String>>>,
}

/// A present field (even `null`) is `Some`; an absent one stays `None` via `default`.
fn some<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// No `default`: the field must be present, `null` allowed.
fn required_nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

fn str_v(s: &str) -> EditValue {
    EditValue::Str(s.to_string())
}

/// Apply one edit to the desired-state text; returns the new text (unchanged if the edit
/// was already in force).
/// Inputs over the size limits of `model::limits` are refused before any splice.
pub fn apply(text: &str, edit: &DesiredEdit) -> Result<String, EditError> {
    super::sizes::check(edit)?;
    match edit {
        DesiredEdit::Activate { model } => {
            let v = model.as_deref().map(str_v).unwrap_or(EditValue::Null);
            yaml::set(text, &["active_model"], &v)
        }
        DesiredEdit::SetOverrides { model, overrides } => set_overrides(text, model, overrides),
        DesiredEdit::AddModel { name, repo, mode } => upsert(
            text,
            &["models", name],
            vec![("repo".into(), str_v(repo)), ("mode".into(), str_v(mode))],
        ),
        DesiredEdit::RemoveModel { name } => {
            let t = yaml::remove(text, &["models", name])?;
            yaml::remove(&t, &["overrides", name])
        }
        DesiredEdit::PlaceService {
            service,
            host,
            port,
            running,
        } => {
            let mut fields = Vec::new();
            if let Some(h) = host {
                fields.push(("host".to_string(), str_v(h)));
            }
            if let Some(p) = port {
                fields.push(("port".to_string(), EditValue::Int(i64::from(*p))));
            }
            if let Some(r) = running {
                fields.push(("running".to_string(), EditValue::Bool(*r)));
            }
            upsert(text, &["services", service], fields)
        }
        DesiredEdit::SetUpdatePolicy { policy, pin } => {
            let v = match (policy.as_str(), pin) {
                (_, Some(commit)) => EditValue::Map(vec![("pin".into(), str_v(commit))]),
                ("pin", None) => {
                    return Err(EditError::InvalidValue {
                        path: "updates.launcher".into(),
                        what: "policy `pin` needs the commit to pin to (`pin`)".into(),
                    })
                }
                (p, None) => str_v(p),
            };
            yaml::set(text, &["updates", "launcher"], &v)
        }
        DesiredEdit::SetHost {
            name,
            address,
            user,
            port,
        } => {
            let mut fields = vec![("address".to_string(), str_v(address))];
            if let Some(u) = user {
                fields.push(("user".into(), str_v(u)));
            }
            if let Some(p) = port {
                fields.push(("port".into(), EditValue::Int(i64::from(*p))));
            }
            upsert(text, &["hosts", name], fields)
        }
        DesiredEdit::RemoveHost { name } => yaml::remove(text, &["hosts", name]),
        DesiredEdit::SetDeploymentModel { deployment, model } => {
            set_deployment_model(text, deployment, model.as_deref())
        }
        DesiredEdit::SetCluster { head, workers } => {
            let mut t = text.to_string();
            if let Some(h) = head {
                t = yaml::set(&t, &["cluster", "head"], &str_v(h))?;
            }
            if let Some(w) = workers {
                let list = EditValue::List(w.iter().map(|s| str_v(s)).collect());
                t = yaml::set(&t, &["cluster", "workers"], &list)?;
            }
            Ok(t)
        }
    }
}

/// The names of the deployments `text` describes, in file order (`default` for the older
/// shape, none without a cluster).
pub fn deployment_names(text: &str) -> Result<Vec<String>, EditError> {
    if let Some(serde_json::Value::Array(deps)) = yaml::get(text, &["deployments"])? {
        return Ok(deps
            .iter()
            .filter_map(|d| d.get("name").and_then(|n| n.as_str()).map(str::to_string))
            .collect());
    }
    Ok(match yaml::get(text, &["cluster"])? {
        Some(_) => vec![crate::model::deployment::DEFAULT_NAME.to_string()],
        None => Vec::new(),
    })
}

fn set_deployment_model(
    text: &str,
    deployment: &str,
    model: Option<&str>,
) -> Result<String, EditError> {
    let v = model.map(str_v).unwrap_or(EditValue::Null);
    let Some(serde_json::Value::Array(deps)) = yaml::get(text, &["deployments"])? else {
        // The older shape: its one deployment (the caller checks that it exists).
        return yaml::set(text, &["active_model"], &v);
    };
    let name_of =
        |d: &serde_json::Value| d.get("name").and_then(|n| n.as_str()).map(str::to_string);
    let hosts_of = |d: &serde_json::Value| -> Vec<String> {
        let head = d.get("head").and_then(|h| h.as_str()).map(str::to_string);
        let workers: Vec<String> = d
            .get("workers")
            .and_then(|w| w.as_array())
            .map(|w| {
                w.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        head.into_iter().chain(workers).collect()
    };
    let Some(i) = deps
        .iter()
        .position(|d| name_of(d).as_deref() == Some(deployment))
    else {
        return Err(EditError::InvalidValue {
            path: "deployments".into(),
            what: format!(
                "there is no deployment named `{}`",
                crate::model::limits::clip(deployment)
            ),
        });
    };
    let at = |j: usize| {
        [
            yaml::PathSeg::Key("deployments".into()),
            yaml::PathSeg::Index(j),
            yaml::PathSeg::Key("active_model".into()),
        ]
    };
    let mut t = text.to_string();
    if model.is_some() {
        let mine = hosts_of(&deps[i]);
        for (j, d) in deps.iter().enumerate() {
            let active = d.get("active_model").is_some_and(|m| !m.is_null());
            if j != i && active && hosts_of(d).iter().any(|h| mine.contains(h)) {
                t = yaml::set_path(&t, &at(j), &EditValue::Null)?;
            }
        }
    }
    yaml::set_path(&t, &at(i), &v)
}

/// Set `fields` under the mapping at `path`: one new entry when it is absent (so it is
/// written in one piece, in its siblings' style), else field by field in place.
fn upsert(
    text: &str,
    path: &[&str],
    fields: Vec<(String, EditValue)>,
) -> Result<String, EditError> {
    let exists = matches!(yaml::get(text, path)?, Some(serde_json::Value::Object(_)));
    if !exists {
        return yaml::set(text, path, &EditValue::Map(fields));
    }
    let mut t = text.to_string();
    for (k, v) in &fields {
        let mut p = path.to_vec();
        p.push(k);
        t = yaml::set(&t, &p, v)?;
    }
    Ok(t)
}

fn set_overrides(text: &str, model: &str, o: &OverridesPatch) -> Result<String, EditError> {
    let mut sets: Vec<(String, EditValue)> = Vec::new();
    let mut removes: Vec<&str> = Vec::new();
    let mut field = |name: &'static str, v: Option<Option<EditValue>>| match v {
        None => {}
        Some(None) => removes.push(name),
        Some(Some(v)) => sets.push((name.to_string(), v)),
    };
    let to_int = |n: u64| {
        i64::try_from(n)
            .map(EditValue::Int)
            .unwrap_or(EditValue::Float(n as f64))
    };
    field("max_context", o.max_context.map(|v| v.map(to_int)));
    field("gpu_memory", o.gpu_memory.map(|v| v.map(EditValue::Float)));
    field(
        "fastsafetensors",
        o.fastsafetensors.map(|v| v.map(EditValue::Bool)),
    );
    field(
        "prefix_caching",
        o.prefix_caching.map(|v| v.map(EditValue::Bool)),
    );
    field(
        "fp8_kv_cache",
        o.fp8_kv_cache.map(|v| v.map(EditValue::Bool)),
    );
    field(
        "extra_args",
        o.extra_args.as_ref().map(|v| {
            v.as_ref()
                .map(|a| EditValue::List(a.iter().map(|s| str_v(s)).collect()))
        }),
    );
    field(
        "env",
        o.env.as_ref().map(|v| {
            v.as_ref()
                .map(|m| EditValue::Map(m.iter().map(|(k, v)| (k.clone(), str_v(v))).collect()))
        }),
    );
    let mut t = text.to_string();
    for name in removes {
        t = yaml::remove(&t, &["overrides", model, name])?;
    }
    if !sets.is_empty() {
        t = upsert(&t, &["overrides", model], sets)?;
    }
    // An entry whose last override was removed goes away rather than staying as `{}`.
    if let Some(serde_json::Value::Object(m)) = yaml::get(&t, &["overrides", model])? {
        if m.is_empty() {
            t = yaml::remove(&t, &["overrides", model])?;
        }
    }
    Ok(t)
}
