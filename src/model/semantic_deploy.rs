//! Stage 3 of validation, the deployments and the names clients use: the file's shape
//! (`cluster:` + `active_model:` or `deployments:`, never both), deployment names, host
//! exclusivity (a host in two deployments that both have an active model), and names
//! unique across the catalog (catalog names, repos and `aliases:` are all names vLLM
//! answers to, so the proxy can route by them). Pure.

use std::collections::BTreeMap;

use super::catalog::catalog;
use super::desired::Desired;
use super::diag::Severity::Error;
use super::limits::clip;
use super::semantic::{valid_name, valid_repo};
use super::validate::Sink;
use super::yamlpos::escape_segment;

/// `cluster:` and `deployments:` are two shapes of one thing: one of them only.
pub(crate) fn shape(d: &Desired, s: &mut Sink<'_>) {
    if !d.uses_deployments() {
        return;
    }
    if d.cluster.is_some() {
        s.at_key(Error, "/cluster", "`cluster:` and `deployments:` both describe where vLLM runs; keep one (with several deployments, move the head, workers and port into each entry of `deployments:`)");
    }
    if d.active_model.is_some() {
        s.at_key(
            Error,
            "/active_model",
            "with `deployments:`, each deployment says its own `active_model:`; remove this one",
        );
    }
}

/// Deployment names and host exclusivity.
pub(crate) fn check(d: &Desired, s: &mut Sink<'_>) {
    let deployments = d.deployments();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, dep) in deployments.iter().enumerate() {
        let ptr = format!("{}/name", dep.pointer);
        if d.uses_deployments() && !valid_name(&dep.name) {
            s.at_value(
                Error,
                &ptr,
                format!(
                    "deployment name `{}` is not allowed: names use lowercase letters, digits, `.`, `_` and `-`, start with a letter or digit",
                    clip(&dep.name)
                ),
            );
        }
        if let Some(first) = names.insert(&dep.name, i) {
            s.at_value(
                Error,
                &ptr,
                format!(
                    "deployment `{}` is already the name of deployment {}; names are unique",
                    clip(&dep.name),
                    first + 1
                ),
            );
        }
    }
    // One checkout and one container name per host: the observer reads a host's launcher
    // and vLLM container once, whichever deployment uses it.
    let mut launcher: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    let mut container: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for dep in &deployments {
        let head = dep.cluster.head.as_str();
        match launcher.get(head) {
            Some((path, other)) if *path != dep.cluster.launcher.as_str() => s.at_value(
                Error,
                &format!("{}/launcher", dep.pointer),
                format!(
                    "deployment `{}` has head `{}` like deployment `{}`, with another `launcher:` (`{}`, not `{}`); a host has one spark-vllm-docker checkout: give both the same path",
                    clip(&dep.name),
                    clip(head),
                    clip(other),
                    clip(&dep.cluster.launcher),
                    clip(path)
                ),
            ),
            Some(_) => {}
            None => {
                launcher.insert(head, (&dep.cluster.launcher, &dep.name));
            }
        }
        for host in dep.hosts() {
            match container.get(host) {
                Some((name, other)) if *name != dep.cluster.container.as_str() => {
                    s.at_value(
                        Error,
                        &format!("{}/container", dep.pointer),
                        format!(
                            "deployment `{}` runs vLLM on `{}` in container `{}`, deployment `{}` in `{}`; a host runs one vLLM container: give both the same `container:`",
                            clip(&dep.name),
                            clip(host),
                            clip(&dep.cluster.container),
                            clip(other),
                            clip(name)
                        ),
                    );
                    break;
                }
                Some(_) => {}
                None => {
                    container.insert(host, (&dep.cluster.container, &dep.name));
                }
            }
        }
    }
    // A host belongs to at most one deployment with an active model.
    let mut holder: BTreeMap<&str, &str> = BTreeMap::new();
    for dep in deployments.iter().filter(|x| x.active_model.is_some()) {
        for (i, host) in dep.hosts().enumerate() {
            let ptr = if i == 0 {
                format!("{}/head", dep.pointer)
            } else {
                format!("{}/workers/{}", dep.pointer, i - 1)
            };
            match holder.get(host) {
                Some(other) if *other != dep.name.as_str() => s.at_value(
                    Error,
                    &ptr,
                    format!(
                        "host `{}` is in deployment `{}` too, and both have an active model; a host runs one deployment at a time: set one `active_model: null`",
                        clip(host),
                        clip(other)
                    ),
                ),
                _ => {
                    holder.insert(host, &dep.name);
                }
            }
        }
    }
}

/// Names clients use (catalog names, repos, aliases) are unique across the catalog.
pub(crate) fn names(d: &Desired, s: &mut Sink<'_>) {
    let cat = catalog(d);
    // name → the entry that owns it.
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for name in cat.keys() {
        owner.insert(name, name);
    }
    for (name, e) in &cat {
        owner.entry(e.spec.repo.as_str()).or_insert(name);
    }
    for (name, m) in &d.models {
        for (i, a) in m.aliases.iter().enumerate() {
            let ptr = format!("/models/{}/aliases/{i}", escape_segment(name));
            if !(valid_name(a) || valid_repo(a)) {
                s.at_value(Error, &ptr, format!("alias `{}` is not allowed: write a name like `coder` (lowercase letters, digits, `.`, `_`, `-`) or `org/name`", clip(a)));
                continue;
            }
            match owner.get(a.as_str()) {
                Some(other) if *other != name.as_str() => s.at_value(
                    Error,
                    &ptr,
                    format!(
                        "`{}` already names catalog entry `{}` (its name, repo or alias); names are unique across the catalog",
                        clip(a),
                        clip(other)
                    ),
                ),
                Some(_) if a == name || *a == m.repo => s.at_value(
                    Error,
                    &ptr,
                    format!("`{}` is this model's own name or repo; remove the alias", clip(a)),
                ),
                Some(_) => s.at_value(
                    Error,
                    &ptr,
                    format!("alias `{}` is listed twice", clip(a)),
                ),
                None => {
                    owner.insert(a, name);
                }
            }
        }
    }
}

/// Request policies: `idle_unload_after` is a duration, `proxy.max_concurrent` names
/// catalog models with a limit of at least 1, and the swap queue's bounds are not 0.
pub(crate) fn policies(d: &Desired, s: &mut Sink<'_>) {
    for dep in d.deployments() {
        if let Some(t) = &dep.cluster.idle_unload_after {
            if super::desired::parse_duration(t).is_none() {
                s.at_value(
                    Error,
                    &format!("{}/idle_unload_after", dep.pointer),
                    format!(
                        "`{}` is not a duration: write a number and a unit, `90s`, `30m` or `2h` (or `null` for never)",
                        clip(t)
                    ),
                );
            }
        }
    }
    let names = catalog(d);
    for (model, n) in &d.proxy.max_concurrent {
        let ptr = format!("/proxy/max_concurrent/{}", escape_segment(model));
        if !names.contains_key(model) {
            let known: Vec<&str> = names.keys().map(String::as_str).collect();
            s.at_key(
                Error,
                &ptr,
                format!(
                    "`{}` is not a catalog model (catalog names: {})",
                    clip(model),
                    known.join(", ")
                ),
            );
        }
        if *n == 0 {
            s.at_value(
                Error,
                &ptr,
                "must be at least 1 (remove the entry for no limit)",
            );
        }
    }
    for (ptr, v) in [
        ("/proxy/swap_queue", u64::from(d.proxy.swap_queue)),
        ("/proxy/swap_wait_secs", d.proxy.swap_wait_secs),
    ] {
        if v == 0 {
            s.at_value(Error, ptr, "must be more than 0");
        }
    }
}
