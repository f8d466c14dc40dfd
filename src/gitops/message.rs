//! Commit messages in words: what changed between two desired states, and who changed it.
//!
//! `describe(old, new)` compares the two *meanings* (not the texts), so a message says
//! "activate gemma4 on spark1" or "qwen36: gpu_memory 0.8 → 0.7", never "edit line 12".
//! Pure: no IO, no clock.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::catalog::catalog;
use crate::model::desired::Mode;
use crate::model::limits::clip_to;
use crate::model::Desired;

/// Who made a change; it ends every message as a `Changed-by:` trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The browser UI (`admin`: signed in with the admin token).
    Ui {
        /// Signed in as the admin.
        admin: bool,
    },
    /// A program calling the API (`admin`: with the admin token).
    Api {
        /// Sent the admin token.
        admin: bool,
    },
    /// A swap the controller made because a request asked for a model.
    OnRequest(String),
    /// A hand edit of the file, committed by a rule or from the UI (`by`: who committed it).
    Hand {
        /// Who committed it (the edit itself is by whoever edited the file).
        by: Option<Box<Actor>>,
    },
    /// The controller itself (merging the remote, first commit).
    Controller,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Ui { admin: true } => f.write_str("UI (admin)"),
            Actor::Ui { admin: false } => f.write_str("UI"),
            Actor::Api { admin: true } => f.write_str("API client (admin token)"),
            Actor::Api { admin: false } => f.write_str("API client"),
            Actor::OnRequest(who) => write!(f, "on-request ({})", clip_to(who, 60)),
            Actor::Hand { by: None } => f.write_str("hand edit"),
            Actor::Hand { by: Some(b) } => write!(f, "hand edit, committed by {b}"),
            Actor::Controller => f.write_str("spark-control"),
        }
    }
}

/// The whole message: subject, the list of changes when there are several, the trailer.
pub fn message(subject: &str, changes: &[String], actor: &Actor) -> String {
    let mut m = clip_to(subject, 200).into_owned();
    m.push_str("\n\n");
    if changes.len() > 1 {
        for c in changes.iter().take(50) {
            m.push_str("- ");
            m.push_str(&clip_to(c, 200));
            m.push('\n');
        }
        m.push('\n');
    }
    m.push_str(&format!("Changed-by: {actor}\n"));
    m
}

/// A subject line from the changes: the first two, then "and N more".
pub fn subject(changes: &[String]) -> String {
    match changes.len() {
        0 => "edit comments or formatting".to_string(),
        1 | 2 => changes.join("; "),
        n => format!("{}; {} and {} more", changes[0], changes[1], n - 2),
    }
}

/// What changed from `old` to `new`, one phrase per change, in file order of sections.
/// `None` stands for a file that did not validate (or did not exist).
pub fn describe(old: Option<&Desired>, new: Option<&Desired>) -> Vec<String> {
    let (old, new) = match (old, new) {
        (Some(o), Some(n)) => (o, n),
        (None, Some(_)) => return vec!["replace an invalid desired file".into()],
        (Some(_), None) => return vec!["make the desired file invalid".into()],
        (None, None) => return vec!["edit an invalid desired file".into()],
    };
    let mut out = Vec::new();
    if old.active_model != new.active_model {
        out.push(match &new.active_model {
            Some(m) => format!("activate {m} on {}", where_runs(new, m)),
            None => match &old.active_model {
                Some(o) => format!("stop {o} (no active model)"),
                None => "no active model".into(),
            },
        });
    }
    let by_deployment = old.uses_deployments() || new.uses_deployments();
    if by_deployment {
        let before = old.deployments();
        for d in new.deployments() {
            let was = before
                .iter()
                .find(|o| o.name == d.name)
                .and_then(|o| o.active_model.clone());
            if was == d.active_model {
                continue;
            }
            out.push(match (&d.active_model, was) {
                (Some(m), _) => format!(
                    "{}: activate {m} on {}",
                    d.name,
                    deployment_hosts(new, &d, m)
                ),
                (None, Some(o)) => format!("{}: stop {o} (no active model)", d.name),
                (None, None) => continue,
            });
        }
    }
    let (a, b) = (flat(old), flat(new));
    let mut entries: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let (va, vb) = (a.get(k), b.get(k));
        if va == vb || k == "/active_model" {
            continue;
        }
        // Said above, by deployment name.
        if by_deployment && k.starts_with("/deployments/") && k.ends_with("/active_model") {
            continue;
        }
        let parts: Vec<&str> = k.trim_start_matches('/').split('/').collect();
        let section = parts[0];
        if named_section(section) && parts.len() >= 2 {
            let name = parts[1].to_string();
            let field = parts[2..].join(".");
            let entry = entries.entry((section.to_string(), name)).or_default();
            entry.push(change(&field, va, vb));
        } else {
            out.push(change(&parts.join("."), va, vb));
        }
    }
    for ((section, name), fields) in entries {
        let had = a.keys().any(|k| under(k, &section, &name));
        let has = b.keys().any(|k| under(k, &section, &name));
        let what = singular(&section);
        out.push(match (had, has) {
            (false, true) => match section.as_str() {
                "overrides" => format!("{name}: set {}", set_list(&b, &section, &name)),
                _ => format!("add {what} {name}"),
            },
            (true, false) => match section.as_str() {
                "overrides" => format!("{name}: clear overrides"),
                _ => format!("remove {what} {name}"),
            },
            _ => service_phrase(&section, &name, &fields)
                .unwrap_or_else(|| format!("{name}: {}", fields.join(", "))),
        });
    }
    out
}

/// The hosts deployment `dep` runs `model` on: the head, and its workers for a cluster
/// model.
fn deployment_hosts(
    d: &Desired,
    dep: &crate::model::deployment::Deployment,
    model: &str,
) -> String {
    let cluster_mode = catalog(d)
        .get(model)
        .is_some_and(|e| e.spec.mode == Mode::Cluster);
    if cluster_mode {
        dep.hosts().collect::<Vec<_>>().join("+")
    } else {
        dep.cluster.head.clone()
    }
}

fn where_runs(d: &Desired, model: &str) -> String {
    match d.first_deployment() {
        Some(dep) => deployment_hosts(d, &dep, model),
        None => "no cluster".into(),
    }
}

fn named_section(s: &str) -> bool {
    matches!(
        s,
        "hosts" | "models" | "overrides" | "services" | "deployments"
    )
}

fn singular(s: &str) -> &str {
    match s {
        "hosts" => "host",
        "models" => "model",
        "services" => "service",
        "deployments" => "deployment",
        _ => s,
    }
}

fn under(k: &str, section: &str, name: &str) -> bool {
    let p = format!("/{section}/{name}");
    k == p || k.starts_with(&format!("{p}/"))
}

fn set_list(b: &BTreeMap<String, String>, section: &str, name: &str) -> String {
    let p = format!("/{section}/{name}/");
    b.iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(&p)
                .map(|f| format!("{} {v}", f.replace('/', ".")))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// "stop magpie", "start parakeet", "move parakeet spark2 → spark1".
fn service_phrase(section: &str, name: &str, fields: &[String]) -> Option<String> {
    if section != "services" || fields.len() != 1 {
        return None;
    }
    let f = &fields[0];
    if f == "running true → false" {
        Some(format!("stop {name}"))
    } else if f == "running false → true" {
        Some(format!("start {name}"))
    } else {
        f.strip_prefix("host ").map(|m| format!("move {name} {m}"))
    }
}

fn change(field: &str, a: Option<&String>, b: Option<&String>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{field} {a} → {b}"),
        (None, Some(b)) => format!("{field} set to {b}"),
        (Some(a), None) => format!("{field} {a} removed"),
        (None, None) => field.to_string(),
    }
}

/// The desired state as `pointer → scalar text`; lists are one value (`[a, b]`).
fn flat(d: &Desired) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(mut v) = serde_json::to_value(d) {
        // Deployments by name, like the other named sections (not by list position).
        if let Some(Value::Array(deps)) = v.get("deployments").cloned() {
            let by_name: serde_json::Map<String, Value> = deps
                .into_iter()
                .filter_map(|mut x| {
                    let name = x.get("name")?.as_str()?.to_string();
                    x.as_object_mut()?.remove("name");
                    Some((name, x))
                })
                .collect();
            v["deployments"] = Value::Object(by_name);
        }
        walk(&v, String::new(), &mut out);
    }
    out
}

fn walk(v: &Value, at: String, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                walk(x, format!("{at}/{k}"), out);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            out.insert(at, clip_to(s, 80).into_owned());
        }
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => clip_to(s, 40).into_owned(),
                    other => other.to_string(),
                })
                .collect();
            out.insert(at, format!("[{}]", parts.join(", ")));
        }
        other => {
            out.insert(at, other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "version: 1
hosts:
  spark1: { address: 10.0.0.1 }
  spark2: { address: 10.0.0.2 }
cluster: { head: spark1, workers: [spark2] }
active_model: qwen36
overrides:
  qwen36: { gpu_memory: 0.8 }
services:
  magpie: { kind: tts, host: spark2, port: 9000, running: true }
";

    fn d(text: &str) -> Desired {
        crate::model::validate_text("t.yaml", text)
            .desired
            .unwrap_or_else(|| panic!("valid: {text}"))
    }

    fn check(after: &str, expected: &[&str]) {
        let got = describe(Some(&d(BASE)), Some(&d(after)));
        assert_eq!(got, expected, "after:\n{after}");
    }

    #[test]
    fn changes_are_said_in_words() {
        check(
            &BASE.replace("active_model: qwen36", "active_model: gemma4"),
            &["activate gemma4 on spark1"],
        );
        check(
            &BASE.replace("active_model: qwen36", "active_model: qwen3-235b-fp8"),
            &["activate qwen3-235b-fp8 on spark1+spark2"],
        );
        check(
            &BASE.replace("active_model: qwen36", "active_model: null"),
            &["stop qwen36 (no active model)"],
        );
        check(
            &BASE.replace("gpu_memory: 0.8", "gpu_memory: 0.7"),
            &["qwen36: gpu_memory 0.8 → 0.7"],
        );
        check(
            &BASE.replace("gpu_memory: 0.8 }", "gpu_memory: 0.8, max_context: 4096 }"),
            &["qwen36: max_context set to 4096"],
        );
        check(
            &BASE.replace(
                "  qwen36: { gpu_memory: 0.8 }\n",
                "  qwen36: { gpu_memory: 0.8 }\n  gemma4: { max_context: 8192 }\n",
            ),
            &["gemma4: set max_context 8192"],
        );
        check(
            &BASE.replace("running: true", "running: false"),
            &["stop magpie"],
        );
        check(
            &BASE.replace("host: spark2, port: 9000", "host: spark1, port: 9000"),
            &["move magpie spark2 → spark1"],
        );
        check(
            &format!("{BASE}models:\n  tiny: {{ repo: Qwen/Qwen3-0.6B }}\n"),
            &["add model tiny"],
        );
        check(&format!("# a comment\n{BASE}"), &[]);
        check(
            &format!("{BASE}updates: {{ launcher: manual }}\n"),
            &["updates.launcher notify → manual"],
        );
    }

    #[test]
    fn deployment_changes_are_said_by_name() {
        let base = "version: 1\nhosts:\n  spark1: { address: 10.0.0.1 }\n  spark2: { address: 10.0.0.2 }\ndeployments:\n  - { name: coder, head: spark1, active_model: qwen36 }\n  - { name: vision, head: spark2, port: 8889, active_model: null }\n";
        let got = |after: &str| describe(Some(&d(base)), Some(&d(after)));
        assert_eq!(
            got(&base.replace(
                "port: 8889, active_model: null",
                "port: 8889, active_model: gemma4"
            )),
            ["vision: activate gemma4 on spark2"]
        );
        assert_eq!(
            got(&base.replace(
                "head: spark1, active_model: qwen36",
                "head: spark1, active_model: null"
            )),
            ["coder: stop qwen36 (no active model)"]
        );
        assert_eq!(
            got(&base.replace("port: 8889", "port: 8890")),
            ["vision: port 8889 → 8890"]
        );
        assert_eq!(
            got(&format!(
                "{base}  - {{ name: big, head: spark1, workers: [spark2], active_model: null }}\n"
            )),
            ["add deployment big"]
        );
    }

    #[test]
    fn subjects_and_trailers() {
        assert_eq!(subject(&[]), "edit comments or formatting");
        let three = ["a".to_string(), "b".into(), "c".into()];
        assert_eq!(subject(&three), "a; b and 1 more");
        let m = message(
            "activate gemma4 on spark1",
            &three[..1],
            &Actor::Ui { admin: true },
        );
        assert_eq!(m, "activate gemma4 on spark1\n\nChanged-by: UI (admin)\n");
        let m = message("x", &three, &Actor::Api { admin: false });
        assert!(
            m.contains("- a\n- b\n- c\n\nChanged-by: API client\n"),
            "{m}"
        );
    }
}
