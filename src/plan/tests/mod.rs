//! Planner tests: table-driven cases with the expected plan as text (`cases.rs`), and
//! properties over generated worlds (`props.rs`): applying a plan leaves nothing to do,
//! and a host nobody can see is never touched. This file holds the shared fixtures.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::model::catalog::{catalog, launch_spec};
use crate::model::desired::Mode;
use crate::model::observed::{
    ContainerObserved, Fact, LaunchRecord, LauncherObserved, VllmObserved,
};
use crate::model::validate_text;

const BASE: &str = r#"
version: 1
hosts:
  spark1: { address: 10.0.0.1, user: nvidia }
  spark2: { address: 10.0.0.2, user: nvidia }
cluster: { head: spark1, workers: [spark2] }
active_model: qwen36
models: { tiny: { repo: org/tiny, mode: solo } }
overrides: { qwen36: { gpu_memory: 0.8 } }
services: { parakeet: { kind: stt, host: spark2, port: 8000 }, magpie: { kind: tts, host: spark2, port: 9000, running: false } }
updates: { launcher: notify }
"#;

/// BASE with `key: value` lines replaced or appended at the top level.
fn desired(patch: &[(&str, &str)]) -> Desired {
    let mut text = BASE.to_string();
    for (key, value) in patch {
        let prefix = format!("\n{key}:");
        if let Some(start) = text.find(&prefix) {
            let end = text[start + 1..]
                .find('\n')
                .map_or(text.len(), |e| start + 1 + e);
            text.replace_range(start..end, &format!("\n{key}: {value}"));
        } else {
            text.push_str(&format!("{key}: {value}\n"));
        }
    }
    let v = validate_text("test.yaml", &text);
    match v.desired {
        Some(d) => d,
        None => panic!("fixture invalid: {:?}\n{text}", v.diagnostics),
    }
}

fn all_repos(d: &Desired) -> BTreeSet<String> {
    catalog(d).values().map(|e| e.spec.repo.clone()).collect()
}

/// A world where everything is known, nothing runs, every cache holds every model.
fn idle(d: &Desired) -> Observed {
    let mut o = Observed {
        generation: 1,
        vllm: Fact::known_now(VllmObserved::default()),
        ..Observed::default()
    };
    for h in d.hosts.keys() {
        o.hosts.insert(
            h.clone(),
            HostObserved {
                reachable: Fact::known_now(true),
                containers: Fact::known_now(BTreeMap::from([
                    ("parakeet".into(), ContainerObserved::default()),
                    ("magpie".into(), ContainerObserved::default()),
                ])),
                launch: Fact::known_now(None),
                hf_cache: Fact::known_now(all_repos(d)),
                launcher: Fact::known_now(LauncherObserved {
                    head: "aaaaaaaa1111".into(),
                    behind: Some(0),
                    subjects: vec![],
                    generation: Some(crate::launcher::Generation::B),
                    branch: Some("main".into()),
                    ..Default::default()
                }),
                ..HostObserved::default()
            },
        );
    }
    o
}

fn set_container(o: &mut Observed, host: &str, name: &str, running: bool) {
    if let Some(c) = o.hosts.get_mut(host).and_then(|h| h.containers.get_mut()) {
        c.insert(
            name.into(),
            ContainerObserved {
                running,
                image: String::new(),
            },
        );
    }
}

/// `model` running on the head as launched by spark-control with desired `d`'s settings
/// of that model (or `settings_from` another desired), and ready.
fn running(o: &mut Observed, d: &Desired, model: &str) {
    let cat = catalog(d);
    let e = &cat[model];
    let c = d.cluster.as_ref().expect("fixture has a cluster");
    let addrs = d
        .hosts
        .iter()
        .map(|(k, h)| (k.clone(), h.launcher_address().to_string()))
        .collect();
    let spec = launch_spec(e, c, &addrs).expect("fixture hosts have addresses");
    set_container(o, "spark1", "vllm_node", true);
    if spec.mode == Mode::Cluster {
        set_container(o, "spark2", "vllm_node", true);
    }
    if let Some(h) = o.hosts.get_mut("spark1") {
        h.launch = Fact::known_now(Some(LaunchRecord {
            model: model.into(),
            repo: spec.repo.clone(),
            fingerprint: spec.fingerprint.clone(),
            settings: spec.settings.clone(),
            launched_at: None,
            ..Default::default()
        }));
    }
    o.vllm = Fact::known_now(VllmObserved {
        models: vec![spec.repo],
        ..Default::default()
    });
}

fn unreachable(o: &mut Observed, host: &str) {
    o.hosts.insert(
        host.into(),
        HostObserved {
            reachable: Fact::known_now(false),
            containers: Fact::unknown("host unreachable: connection refused"),
            launch: Fact::unknown("host unreachable"),
            hf_cache: Fact::unknown("host unreachable"),
            launcher: Fact::unknown("host unreachable"),
            gpus: Fact::unknown("host unreachable"),
            rtt_ms: None,
            ..Default::default()
        },
    );
}

fn check(name: &str, d: &Desired, o: &Observed, expected: &str) {
    let got = render(&plan(d, o));
    let expected = expected
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{}\n", l.replace("\\s", " ")))
        .collect::<String>();
    let got_norm: String = got
        .lines()
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    assert_eq!(got_norm, expected, "case `{name}`: plan was\n{got}");
}

mod cases;
mod deployments;
mod prefixes;
mod props;
