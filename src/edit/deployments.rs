//! The deployments edit of `configure --deployment`: one deployment keeps the file in the
//! older shape (`cluster:` head, workers, port; `active_model:` untouched), two or more
//! write `deployments:` (and remove `cluster:` and `active_model:`), keeping each
//! deployment's active model when it existed by name, and the older file's active model
//! on the first deployment. Pure.

use serde_json::Value;

use super::yaml::{self, EditError, EditValue};

/// One `--deployment NAME=HEAD[,WORKER…][@PORT]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentArg {
    /// Its name.
    pub name: String,
    /// Head host.
    pub head: String,
    /// Worker hosts.
    pub workers: Vec<String>,
    /// vLLM port, when given.
    pub port: Option<u16>,
}

impl std::str::FromStr for DeploymentArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--deployment {s}: expected NAME=HEAD[,WORKER…][@PORT]");
        let (name, rest) = s.split_once('=').ok_or_else(bad)?;
        let (hosts, port) = match rest.split_once('@') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (rest, None),
        };
        let mut hosts = hosts.split(',').map(str::to_string);
        let head = hosts.next().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        if name.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            name: name.into(),
            head,
            workers: hosts.collect(),
            port,
        })
    }
}

fn str_v(s: &str) -> EditValue {
    EditValue::Str(s.into())
}

/// `text` with its deployments set to `deps` (see the module doc).
pub fn set_deployments(text: &str, deps: &[DeploymentArg]) -> Result<String, EditError> {
    let mut t = text.to_string();
    if let [one] = deps {
        if yaml::get(&t, &["deployments"])?.is_none() {
            t = yaml::set(&t, &["cluster", "head"], &str_v(&one.head))?;
            let workers = EditValue::List(one.workers.iter().map(|w| str_v(w)).collect());
            t = yaml::set(&t, &["cluster", "workers"], &workers)?;
            if let Some(p) = one.port {
                t = yaml::set(&t, &["cluster", "port"], &EditValue::Int(p.into()))?;
            }
            if yaml::get(&t, &["active_model"])?.is_none() {
                t = yaml::set(&t, &["active_model"], &EditValue::Null)?;
            }
            return Ok(t);
        }
    }
    let existing = yaml::get(&t, &["deployments"])?;
    let active_of = |name: &str| -> Option<String> {
        existing
            .as_ref()?
            .as_array()?
            .iter()
            .find(|d| d.get("name").and_then(Value::as_str) == Some(name))?
            .get("active_model")?
            .as_str()
            .map(str::to_string)
    };
    let older_active =
        yaml::get(&t, &["active_model"])?.and_then(|v| v.as_str().map(str::to_string));
    let items = deps
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let active = active_of(&d.name).or_else(|| {
                if i == 0 && existing.is_none() {
                    older_active.clone()
                } else {
                    None
                }
            });
            let mut fields = vec![
                ("name".to_string(), str_v(&d.name)),
                ("head".to_string(), str_v(&d.head)),
            ];
            if !d.workers.is_empty() {
                let w = EditValue::List(d.workers.iter().map(|w| str_v(w)).collect());
                fields.push(("workers".to_string(), w));
            }
            if let Some(p) = d.port {
                fields.push(("port".to_string(), EditValue::Int(p.into())));
            }
            fields.push((
                "active_model".to_string(),
                active.map_or(EditValue::Null, |m| str_v(&m)),
            ));
            EditValue::Map(fields)
        })
        .collect();
    t = yaml::remove(&t, &["cluster"])?;
    t = yaml::remove(&t, &["active_model"])?;
    yaml::set(&t, &["deployments"], &EditValue::List(items))
}
