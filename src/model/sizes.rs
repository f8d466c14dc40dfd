//! Stage 3 of validation, the sizes: every string of the desired file that reaches a
//! remote command, a message or the UI is within its limit in `limits`, counted in bytes
//! (the schema of stage 2 counts characters), and the totals and counts the schema cannot
//! express (all `extra_args` of a model together, all of its `env`). Pure.

use super::desired::{Desired, UpdatePolicy};
use super::diag::Severity::Error;
use super::limits::{self, over};
use super::validate::Sink;
use super::yamlpos::escape_segment;

/// The escaped JSON pointer of `parts`.
fn p(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|s| format!("/{}", escape_segment(s)))
        .collect()
}

/// The size limits of `limits`, in bytes (the schema counts characters): every string that
/// reaches a remote command, a message or the UI, and the totals the schema cannot express.
pub(crate) fn check(d: &Desired, s: &mut Sink<'_>) {
    let one = |s: &mut Sink<'_>, ptr: &str, what: &str, v: &str, max: usize| {
        if let Some(m) = over(what, v.len(), max) {
            s.at_value(Error, ptr, m);
        }
    };
    if let Some(m) = &d.active_model {
        one(s, "/active_model", "the model name", m, limits::NAME);
    }
    for (name, h) in &d.hosts {
        one(
            s,
            &p(&["hosts", name, "address"]),
            "the address",
            &h.address,
            limits::ADDRESS,
        );
        if let Some(i) = &h.interconnect {
            one(
                s,
                &p(&["hosts", name, "interconnect"]),
                "the interconnect address",
                i,
                limits::ADDRESS,
            );
        }
        one(
            s,
            &p(&["hosts", name, "user"]),
            "the user name",
            &h.user,
            limits::USER,
        );
        if let Some(k) = &h.host_key {
            one(
                s,
                &p(&["hosts", name, "host_key"]),
                "the host key",
                k,
                limits::HOST_KEY,
            );
        }
    }
    for (i, x) in d.deployments.iter().enumerate() {
        let base = format!("/deployments/{i}");
        one(
            s,
            &format!("{base}/name"),
            "the deployment's name",
            &x.name,
            limits::NAME,
        );
        one(
            s,
            &format!("{base}/head"),
            "the head's name",
            &x.head,
            limits::NAME,
        );
        for (j, w) in x.workers.iter().enumerate() {
            one(
                s,
                &format!("{base}/workers/{j}"),
                "the worker's name",
                w,
                limits::NAME,
            );
        }
        if let Some(m) = &x.active_model {
            one(
                s,
                &format!("{base}/active_model"),
                "the model name",
                m,
                limits::NAME,
            );
        }
        one(
            s,
            &format!("{base}/launcher"),
            "the launcher path",
            &x.launcher,
            limits::LAUNCHER,
        );
        one(
            s,
            &format!("{base}/container"),
            "the container name",
            &x.container,
            limits::CONTAINER,
        );
    }
    for (name, m) in &d.models {
        for (j, a) in m.aliases.iter().enumerate() {
            one(
                s,
                &format!("/models/{}/aliases/{j}", escape_segment(name)),
                "the alias",
                a,
                limits::REPO,
            );
        }
    }
    if let Some(c) = &d.cluster {
        one(s, "/cluster/head", "the head's name", &c.head, limits::NAME);
        if c.workers.len() > limits::WORKERS {
            s.at_value(
                Error,
                "/cluster/workers",
                format!(
                    "{} workers; the limit is {} (each one's address is part of the launch command)",
                    c.workers.len(),
                    limits::WORKERS
                ),
            );
        }
        for (i, w) in c.workers.iter().enumerate() {
            one(
                s,
                &format!("/cluster/workers/{i}"),
                "the worker's name",
                w,
                limits::NAME,
            );
        }
        one(
            s,
            "/cluster/launcher",
            "the launcher path",
            &c.launcher,
            limits::LAUNCHER,
        );
        one(
            s,
            "/cluster/container",
            "the container name",
            &c.container,
            limits::CONTAINER,
        );
        for (key, t) in [
            ("launch_template", &c.launch_template),
            ("stop_template", &c.stop_template),
        ] {
            let Some(t) = t else { continue };
            list(
                s,
                &format!("/cluster/{key}"),
                t,
                limits::TEMPLATE_ITEMS,
                limits::TEMPLATE_ARG,
                limits::TEMPLATE_TOTAL,
            );
        }
    }
    for (name, m) in &d.models {
        one(
            s,
            &p(&["models", name, "repo"]),
            "the repo",
            &m.repo,
            limits::REPO,
        );
        if let Some(t) = &m.description {
            let ptr = p(&["models", name, "description"]);
            one(s, &ptr, "the description", t, limits::DESCRIPTION);
        }
    }
    for (name, o) in &d.overrides {
        let base = p(&["overrides", name]);
        list(
            s,
            &format!("{base}/extra_args"),
            &o.extra_args,
            limits::EXTRA_ARGS_ITEMS,
            limits::EXTRA_ARG,
            limits::EXTRA_ARGS_TOTAL,
        );
        if o.env.len() > limits::ENV_ITEMS {
            s.at_value(
                Error,
                &format!("{base}/env"),
                format!(
                    "{} variables; the limit is {}",
                    o.env.len(),
                    limits::ENV_ITEMS
                ),
            );
        }
        let mut total = 0;
        for (k, v) in &o.env {
            let ptr = format!("{base}/env/{}", escape_segment(k));
            if let Some(m) = over("the variable name", k.len(), limits::ENV_KEY) {
                s.at_key(Error, &ptr, m);
            }
            one(s, &ptr, "the value", v, limits::ENV_VALUE);
            total += k.len() + v.len();
        }
        if total > limits::ENV_TOTAL {
            s.at_value(
                Error,
                &format!("{base}/env"),
                format!(
                    "names and values total {total} bytes; the limit is {} bytes",
                    limits::ENV_TOTAL
                ),
            );
        }
    }
    for (name, svc) in &d.services {
        let base = p(&["services", name]);
        one(
            s,
            &format!("{base}/host"),
            "the host name",
            &svc.host,
            limits::NAME,
        );
        if let Some(c) = &svc.container {
            one(
                s,
                &format!("{base}/container"),
                "the container name",
                c,
                limits::CONTAINER,
            );
        }
        let hp = &svc.health_path;
        one(
            s,
            &format!("{base}/health_path"),
            "the health path",
            hp,
            limits::HEALTH_PATH,
        );
        if let Some(m) = &svc.model {
            one(
                s,
                &format!("{base}/model"),
                "the model",
                m,
                limits::SERVICE_MODEL,
            );
        }
    }
    if let UpdatePolicy::Pin(c) = &d.updates.launcher {
        one(s, "/updates/launcher/pin", "the commit", c, limits::PIN);
    }
}

/// A list of arguments: how many, each one, all together.
fn list(s: &mut Sink<'_>, ptr: &str, items: &[String], count: usize, each: usize, total: usize) {
    if items.len() > count {
        s.at_value(
            Error,
            ptr,
            format!("{} arguments; the limit is {count}", items.len()),
        );
    }
    for (i, a) in items.iter().enumerate() {
        if let Some(m) = over("the argument", a.len(), each) {
            s.at_value(Error, &format!("{ptr}/{i}"), m);
        }
    }
    let sum: usize = items.iter().map(String::len).sum();
    if sum > total {
        s.at_value(
            Error,
            ptr,
            format!("the arguments total {sum} bytes; the limit is {total} bytes"),
        );
    }
}
