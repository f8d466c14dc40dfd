//! The size limits of `model::limits`, checked on an edit's inputs before the edit is
//! spliced into the file. Without it a megabyte model name sent to `POST /api/models`
//! was spliced in as a YAML key (YAML refuses plain keys over 1024 characters), the result
//! did not parse, and the edit failed as an internal error (HTTP 500) whose message and
//! log line held the whole name. Validation of the result still runs after the splice;
//! this only keeps oversized text out of the splice and out of every message. Pure.

use crate::model::limits::{self, clip, over};

use super::ops::{DesiredEdit, OverridesPatch};
use super::yaml::EditError;

/// Refuses an edit any of whose strings (or lists, or maps) is over its limit.
pub fn check(edit: &DesiredEdit) -> Result<(), EditError> {
    match edit {
        DesiredEdit::Activate { model } => match model {
            Some(m) => name("active_model", m),
            None => Ok(()),
        },
        DesiredEdit::SetOverrides { model, overrides } => {
            name("overrides", model)?;
            patch(model, overrides)
        }
        DesiredEdit::AddModel {
            name: n,
            repo,
            mode,
        } => {
            name("models", n)?;
            let base = format!("models.{n}");
            one(&format!("{base}.repo"), repo, limits::REPO)?;
            one(&format!("{base}.mode"), mode, 16)
        }
        DesiredEdit::RemoveModel { name: n } => name("models", n),
        DesiredEdit::PlaceService { service, host, .. } => {
            name("services", service)?;
            match host {
                Some(h) => one(&format!("services.{service}.host"), h, limits::NAME),
                None => Ok(()),
            }
        }
        DesiredEdit::SetUpdatePolicy { policy, pin } => {
            one("updates.launcher", policy, 16)?;
            match pin {
                Some(p) => one("updates.launcher.pin", p, limits::PIN),
                None => Ok(()),
            }
        }
        DesiredEdit::SetHost {
            name: n,
            address,
            user,
            ..
        } => {
            name("hosts", n)?;
            one(&format!("hosts.{n}.address"), address, limits::ADDRESS)?;
            match user {
                Some(u) => one(&format!("hosts.{n}.user"), u, limits::USER),
                None => Ok(()),
            }
        }
        DesiredEdit::RemoveHost { name: n } => name("hosts", n),
        DesiredEdit::SetDeploymentModel { deployment, model } => {
            name("deployments", deployment)?;
            match model {
                Some(m) => name("active_model", m),
                None => Ok(()),
            }
        }
        DesiredEdit::SetCluster { head, workers } => {
            if let Some(h) = head {
                one("cluster.head", h, limits::NAME)?;
            }
            let Some(ws) = workers else { return Ok(()) };
            count("cluster.workers", ws.len(), limits::WORKERS)?;
            for (i, w) in ws.iter().enumerate() {
                one(&format!("cluster.workers[{i}]"), w, limits::NAME)?;
            }
            Ok(())
        }
    }
}

fn patch(model: &str, o: &OverridesPatch) -> Result<(), EditError> {
    let base = format!("overrides.{model}");
    if let Some(Some(args)) = &o.extra_args {
        let path = format!("{base}.extra_args");
        count(&path, args.len(), limits::EXTRA_ARGS_ITEMS)?;
        for (i, a) in args.iter().enumerate() {
            one(&format!("{path}[{i}]"), a, limits::EXTRA_ARG)?;
        }
        let total: usize = args.iter().map(String::len).sum();
        if total > limits::EXTRA_ARGS_TOTAL {
            return Err(invalid(
                &path,
                format!(
                    "the arguments total {total} bytes; the limit is {} bytes",
                    limits::EXTRA_ARGS_TOTAL
                ),
            ));
        }
    }
    if let Some(Some(env)) = &o.env {
        let path = format!("{base}.env");
        count(&path, env.len(), limits::ENV_ITEMS)?;
        let mut total = 0;
        for (k, v) in env {
            one(&format!("{path} (a name)"), k, limits::ENV_KEY)?;
            one(&format!("{path}.{k}"), v, limits::ENV_VALUE)?;
            total += k.len() + v.len();
        }
        if total > limits::ENV_TOTAL {
            return Err(invalid(
                &path,
                format!(
                    "names and values total {total} bytes; the limit is {} bytes",
                    limits::ENV_TOTAL
                ),
            ));
        }
    }
    Ok(())
}

fn invalid(path: &str, what: String) -> EditError {
    EditError::InvalidValue {
        path: path.to_string(),
        what,
    }
}

/// A name (a map key under `section`, or the active model).
fn name(section: &str, n: &str) -> Result<(), EditError> {
    match over("the name", n.len(), limits::NAME) {
        Some(m) => Err(invalid(&format!("{section}.{}", clip(n)), m)),
        None => Ok(()),
    }
}

/// `path` holds user text (a name); it is clipped like the value.
fn one(path: &str, v: &str, max: usize) -> Result<(), EditError> {
    match over("the value", v.len(), max) {
        Some(m) => Err(invalid(&limits::clip_to(path, 120), m)),
        None => Ok(()),
    }
}

fn count(path: &str, n: usize, max: usize) -> Result<(), EditError> {
    if n > max {
        return Err(invalid(
            &limits::clip_to(path, 120),
            format!("{n} elements; the limit is {max}"),
        ));
    }
    Ok(())
}
