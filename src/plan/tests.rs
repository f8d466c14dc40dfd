//! Planner tests: table-driven cases with the expected plan as text, and a convergence
//! property (applying a plan to a simulated world leaves nothing to do).

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
        .map(|(k, h)| (k.clone(), h.address.clone()))
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
        }));
    }
    o.vllm = Fact::known_now(VllmObserved {
        models: vec![spec.repo],
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

#[test]
fn planner_cases() {
    let d = desired(&[]);
    let mut cases: Vec<(&str, Desired, Observed, &str)> = Vec::new();

    // 1. cold start
    cases.push(("cold start", d.clone(), idle(&d), "
        + launch qwen36 on spark1 (RedHatAI/Qwen3.6-35B-A3B-NVFP4, solo)  # qwen36 is desired and nothing runs
        wait until qwen36 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
        + start service parakeet on spark2:8000  # parakeet should run on spark2
    "));
    // 2. converged
    let mut o = idle(&d);
    running(&mut o, &d, "qwen36");
    set_container(&mut o, "spark2", "parakeet", true);
    cases.push(("converged", d.clone(), o.clone(), "(nothing to do)"));
    let converged = o;
    // 3. swap
    let d2 = desired(&[("active_model", "gemma4")]);
    cases.push(("swap", d2.clone(), converged.clone(), "
        - stop qwen36 on spark1 (swap to gemma4)  # gemma4 is desired instead of qwen36
        wait for GPU memory to settle on spark1 (< 8192 MiB, or 90% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + launch gemma4 on spark1 (google/gemma-4-26B-A4B-it, solo)  # gemma4 is desired
        wait until gemma4 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
    "));
    // 4. none desired
    let d3 = desired(&[("active_model", "null")]);
    cases.push((
        "none desired",
        d3.clone(),
        converged.clone(),
        "
        - stop qwen36 on spark1 (no model desired)  # no model is desired (active_model: null)
    ",
    ));
    // 5. none desired, nothing runs
    let mut o = idle(&d3);
    set_container(&mut o, "spark2", "parakeet", true);
    cases.push(("none desired idle", d3.clone(), o, "(nothing to do)"));
    // 6. override change → relaunch
    let d4 = desired(&[("overrides", "{ qwen36: { gpu_memory: 0.9 } }")]);
    cases.push(("relaunch on override", d4.clone(), converged.clone(), "
        ~ relaunch qwen36 on spark1 (gpu_memory 0.8 → 0.9)  # settings changed: gpu_memory 0.8 → 0.9
        wait for GPU memory to settle on spark1 (< 8192 MiB, or 90% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + launch qwen36 on spark1 (RedHatAI/Qwen3.6-35B-A3B-NVFP4, solo)  # qwen36 is desired
        wait until qwen36 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
    "));
    // 7. unrelated edit → no relaunch
    let d5 = desired(&[(
        "overrides",
        "{ qwen36: { gpu_memory: 0.8 }, gemma4: { max_context: 8192 } }",
    )]);
    cases.push((
        "unrelated override",
        d5.clone(),
        converged.clone(),
        "(nothing to do)",
    ));
    // 8. prefix caching toggled
    let d6 = desired(&[(
        "overrides",
        "{ qwen36: { gpu_memory: 0.8, prefix_caching: true } }",
    )]);
    cases.push(("relaunch on flag", d6.clone(), converged.clone(), "
        ~ relaunch qwen36 on spark1 (prefix_caching unset → on)  # settings changed: prefix_caching unset → on
        wait for GPU memory to settle on spark1 (< 8192 MiB, or 80% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + launch qwen36 on spark1 (RedHatAI/Qwen3.6-35B-A3B-NVFP4, solo)  # qwen36 is desired
        wait until qwen36 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
    "));
    // 9. launched, loading
    let mut o = converged.clone();
    o.vllm = Fact::known_now(VllmObserved::default());
    cases.push(("loading", d.clone(), o, "
        wait until qwen36 is ready on spark1:8888 (up to 30m)  # qwen36 is launched but not serving yet
    "));
    // 10. head unreachable → nothing for the model, incomplete
    let mut o = converged.clone();
    unreachable(&mut o, "spark1");
    cases.push(("head unreachable", d2.clone(), o, "
        (nothing to do)
        ! cannot see spark1: containers unknown (host unreachable: connection refused): whether a stray magpie runs there is unknown
        ! cannot see spark1: containers unknown (host unreachable: connection refused): whether a stray parakeet runs there is unknown
        ! cannot see spark1: containers unknown (host unreachable: connection refused): no model is started or stopped
        ! plan incomplete: nothing was decided for what could not be seen
    "));
    // 11. worker unreachable, solo swap proceeds; service on worker is left alone
    let mut o = converged.clone();
    unreachable(&mut o, "spark2");
    cases.push(("worker unreachable solo swap", d2.clone(), o, "
        - stop qwen36 on spark1 (swap to gemma4)  # gemma4 is desired instead of qwen36
        wait for GPU memory to settle on spark1 (< 8192 MiB, or 90% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + launch gemma4 on spark1 (google/gemma-4-26B-A4B-it, solo)  # gemma4 is desired
        wait until gemma4 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
        ! cannot see spark2: containers unknown (host unreachable: connection refused): service magpie is not started or stopped there
        ! cannot see spark2: containers unknown (host unreachable: connection refused): service parakeet is not started or stopped there
        ! plan incomplete: nothing was decided for what could not be seen
    "));
    // 12. worker unreachable, cluster model → no model action at all
    let d7 = desired(&[("active_model", "qwen3-235b-fp8")]);
    let mut o = converged.clone();
    unreachable(&mut o, "spark2");
    cases.push(("worker unreachable cluster", d7.clone(), o, "
        (nothing to do)
        ! cannot see spark2: containers unknown (host unreachable: connection refused): service magpie is not started or stopped there
        ! cannot see spark2: containers unknown (host unreachable: connection refused): service parakeet is not started or stopped there
        ! cannot see spark2: containers unknown (host unreachable: connection refused): the cluster model is not launched until it can be seen
        ! plan incomplete: nothing was decided for what could not be seen
    "));
    // 13. cluster model cold start with download on the worker
    let mut o = idle(&d7);
    set_container(&mut o, "spark2", "parakeet", true);
    if let Some(h) = o.hosts.get_mut("spark2") {
        h.hf_cache = Fact::known_now(BTreeSet::new());
    }
    cases.push(("cluster download", d7.clone(), o, "
        + download Qwen/Qwen3-235B-A22B-Instruct-2507-FP8 to spark2  # Qwen/Qwen3-235B-A22B-Instruct-2507-FP8 is not in spark2's Hugging Face cache
        + launch qwen3-235b-fp8 on spark1 (Qwen/Qwen3-235B-A22B-Instruct-2507-FP8, cluster on spark1+spark2)  # qwen3-235b-fp8 is desired and nothing runs
        wait until qwen3-235b-fp8 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
    "));
    // 14. swap with download on the head
    let mut o = converged.clone();
    if let Some(h) = o.hosts.get_mut("spark1") {
        h.hf_cache = Fact::known_now(BTreeSet::new());
    }
    cases.push(("swap with download", d2.clone(), o, "
        - stop qwen36 on spark1 (swap to gemma4)  # gemma4 is desired instead of qwen36
        wait for GPU memory to settle on spark1 (< 8192 MiB, or 90% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + download google/gemma-4-26B-A4B-it to spark1  # google/gemma-4-26B-A4B-it is not in spark1's Hugging Face cache
        + launch gemma4 on spark1 (google/gemma-4-26B-A4B-it, solo)  # gemma4 is desired
        wait until gemma4 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
    "));
    // 15. HF cache unknown → no launch
    let mut o = idle(&d);
    set_container(&mut o, "spark2", "parakeet", true);
    if let Some(h) = o.hosts.get_mut("spark1") {
        h.hf_cache = Fact::unknown("ls failed");
    }
    cases.push(("cache unknown", d.clone(), o, "
        (nothing to do)
        ! cannot see spark1: HF cache unknown (ls failed): qwen36 is not launched until it can be seen
        ! plan incomplete: nothing was decided for what could not be seen
    "));
    // 16. service moved spark2 → spark1
    let d8 = desired(&[("services", "{ parakeet: { kind: stt, host: spark1, port: 8000 }, magpie: { kind: tts, host: spark2, port: 9000, running: false } }")]);
    cases.push((
        "service moved",
        d8.clone(),
        converged.clone(),
        "
        - stop service parakeet on spark2  # parakeet is placed on spark1
        + start service parakeet on spark1:8000  # parakeet should run on spark1
    ",
    ));
    // 17. service set not running
    let d9 = desired(&[(
        "services",
        "{ parakeet: { kind: stt, host: spark2, port: 8000, running: false } }",
    )]);
    cases.push((
        "service stopped",
        d9.clone(),
        converged.clone(),
        "
        - stop service parakeet on spark2  # parakeet should not run (running: false)
    ",
    ));
    // 18. a service running where it should not and also where it should: only the stray stops
    let mut o = converged.clone();
    set_container(&mut o, "spark1", "parakeet", true);
    cases.push((
        "stray service",
        d.clone(),
        o,
        "
        - stop service parakeet on spark1  # parakeet is placed on spark2
    ",
    ));
    // 19. launched by hand without a record, serving the desired repo → adopted
    let mut o = converged.clone();
    if let Some(h) = o.hosts.get_mut("spark1") {
        h.launch = Fact::known_now(None);
    }
    cases.push(("adopt hand launch", d.clone(), o.clone(), "(nothing to do)"));
    // 20. hand launch of something else → swap
    let mut o2 = o.clone();
    o2.vllm = Fact::known_now(VllmObserved {
        models: vec!["someone/else".into()],
    });
    cases.push(("hand launch other", d.clone(), o2, "
        - stop unknown (someone/else) on spark1 (swap to qwen36)  # qwen36 is desired instead of unknown (someone/else)
        wait for GPU memory to settle on spark1 (< 8192 MiB, or 80% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + launch qwen36 on spark1 (RedHatAI/Qwen3.6-35B-A3B-NVFP4, solo)  # qwen36 is desired
        wait until qwen36 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
    "));
    // 21. running without record, API unknown → do nothing
    let mut o3 = o.clone();
    o3.vllm = Fact::unknown("timeout");
    cases.push(("unidentified and unknown", d2.clone(), o3, "
        (nothing to do)
        ! cannot see spark1: vllm_node runs but what it serves is unknown: no model is started or stopped
        ! plan incomplete: nothing was decided for what could not be seen
    "));
    // 22. leftover worker container while head runs nothing
    let mut o = idle(&d);
    set_container(&mut o, "spark2", "parakeet", true);
    set_container(&mut o, "spark2", "vllm_node", true);
    cases.push(("leftover worker", d3.clone(), o, "
        - stop vLLM on spark1 (leftover worker containers)  # vLLM containers still run on spark2 while the head runs none
    "));
    // 23. auto update when idle
    let d10 = desired(&[("updates", "{ launcher: auto }")]);
    let mut o = converged.clone();
    if let Some(l) = o.hosts.get_mut("spark1").and_then(|h| h.launcher.get_mut()) {
        l.behind = Some(3);
    }
    cases.push((
        "auto update",
        d10.clone(),
        o.clone(),
        "
        ~ update launcher on spark1 (3 commits behind)  # 3 commits behind upstream; policy auto
    ",
    ));
    // 24. auto update waits for a model operation
    let d11 = desired(&[
        ("updates", "{ launcher: auto }"),
        ("active_model", "gemma4"),
    ]);
    cases.push(("auto update waits", d11, o.clone(), "
        - stop qwen36 on spark1 (swap to gemma4)  # gemma4 is desired instead of qwen36
        wait for GPU memory to settle on spark1 (< 8192 MiB, or 90% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + launch gemma4 on spark1 (google/gemma-4-26B-A4B-it, solo)  # gemma4 is desired
        wait until gemma4 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
    "));
    // 25. notify never updates
    cases.push(("notify", d.clone(), o, "(nothing to do)"));
    // 26. pin
    let d12 = desired(&[("updates", "{ launcher: { pin: bbbbbbb2222 } }")]);
    cases.push((
        "pin",
        d12,
        converged.clone(),
        "
        ~ checkout launcher on spark1 at bbbbbbb2222 (from aaaaaaaa1111)  # pinned to bbbbbbb2222
    ",
    ));
    // 27. pin already satisfied (abbreviated)
    let d13 = desired(&[("updates", "{ launcher: { pin: aaaaaaaa } }")]);
    cases.push(("pin satisfied", d13, converged.clone(), "(nothing to do)"));
    // 28. no cluster configured → nothing
    let d14 = validate_text("t.yaml", "version: 1\n")
        .desired
        .expect("minimal is valid");
    cases.push(("unconfigured", d14.clone(), idle(&d14), "(nothing to do)"));

    assert!(cases.len() >= 20);
    for (name, d, o, expected) in &cases {
        check(name, d, o, expected);
    }
}

// ---------- convergence property ----------

/// Applies one step to a simulated world, as a perfect executor would.
fn apply(o: &mut Observed, d: &Desired, step: &Step) {
    let container = d
        .cluster
        .as_ref()
        .map_or("vllm_node".to_string(), |c| c.container.clone());
    match &step.action {
        Action::StopModel { .. } => {
            for h in o.hosts.values_mut() {
                if let Some(c) = h.containers.get_mut() {
                    if let Some(v) = c.get_mut(&container) {
                        v.running = false;
                    }
                }
            }
            if let Some(h) = d.cluster.as_ref().and_then(|c| o.hosts.get_mut(&c.head)) {
                h.launch = Fact::known_now(None);
            }
            o.vllm = Fact::known_now(VllmObserved::default());
        }
        Action::SettleGpu { .. } | Action::RestartService { .. } | Action::FetchLauncher { .. } => {
        }
        Action::Download { host, repo, .. } => {
            if let Some(s) = o.hosts.get_mut(host).and_then(|h| h.hf_cache.get_mut()) {
                s.insert(repo.clone());
            }
        }
        Action::LaunchModel { spec, host } => {
            for h in &spec.hosts {
                set_container(o, h, &container, true);
            }
            if let Some(h) = o.hosts.get_mut(host) {
                h.launch = Fact::known_now(Some(LaunchRecord {
                    model: spec.model.clone(),
                    repo: spec.repo.clone(),
                    fingerprint: spec.fingerprint.clone(),
                    settings: spec.settings.clone(),
                    launched_at: None,
                }));
            }
            o.vllm = Fact::known_now(VllmObserved::default());
        }
        Action::WaitReady { repo, .. } => {
            o.vllm = Fact::known_now(VllmObserved {
                models: vec![repo.clone()],
            });
        }
        Action::StopService {
            host, container, ..
        } => set_container(o, host, container, false),
        Action::StartService {
            host, container, ..
        } => set_container(o, host, container, true),
        Action::UpdateLauncher { host, .. } => {
            if let Some(l) = o.hosts.get_mut(host).and_then(|h| h.launcher.get_mut()) {
                l.behind = Some(0);
                l.head = "cccccccc3333".into();
            }
        }
        Action::CheckoutLauncher { host, commit, .. } => {
            if let Some(l) = o.hosts.get_mut(host).and_then(|h| h.launcher.get_mut()) {
                l.head = commit.clone();
            }
        }
    }
}

fn random_desired(rng: &mut StdRng) -> Desired {
    let models = [
        "null",
        "qwen36",
        "gemma4",
        "qwen3-235b-fp8",
        "tiny",
        "qwen2.5-72b",
    ];
    let hosts = ["spark1", "spark2"];
    let active = models[rng.gen_range(0..models.len())];
    let gpu = [0.7, 0.8, 0.9][rng.gen_range(0..3)];
    let pc = rng.gen_bool(0.5);
    let ph = hosts[rng.gen_range(0..2)];
    let mh = hosts[rng.gen_range(0..2)];
    let pr = rng.gen_bool(0.7);
    let mr = rng.gen_bool(0.7);
    let policy = ["manual", "notify", "auto", "{ pin: bbbbbbb2222 }"][rng.gen_range(0..4)];
    desired(&[
        ("active_model", active),
        ("overrides", &format!("{{ qwen36: {{ gpu_memory: {gpu}, prefix_caching: {pc} }}, tiny: {{ max_context: 4096 }} }}")),
        ("services", &format!("{{ parakeet: {{ kind: stt, host: {ph}, port: 8000, running: {pr} }}, magpie: {{ kind: tts, host: {mh}, port: 9000, running: {mr} }} }}")),
        ("updates", &format!("{{ launcher: {policy} }}")),
    ])
}

fn random_observed(rng: &mut StdRng, d: &Desired) -> Observed {
    let mut o = idle(d);
    let models = ["qwen36", "gemma4", "qwen3-235b-fp8", "tiny"];
    for h in ["spark1", "spark2"] {
        for c in ["parakeet", "magpie", "vllm_node"] {
            set_container(&mut o, h, c, rng.gen_bool(0.4));
        }
        if rng.gen_bool(0.3) {
            if let Some(s) = o.hosts.get_mut(h).and_then(|x| x.hf_cache.get_mut()) {
                s.clear();
            }
        }
        if let Some(l) = o.hosts.get_mut(h).and_then(|x| x.launcher.get_mut()) {
            l.behind = Some(rng.gen_range(0..3));
        }
    }
    // What the head's record says and what the API serves: any combination.
    if rng.gen_bool(0.6) {
        let m = models[rng.gen_range(0..models.len())];
        // A record with the settings of some other desired file, sometimes.
        let other = random_desired(rng);
        let mut tmp = idle(&other);
        running(&mut tmp, &other, m);
        if let (Some(src), Some(dst)) = (tmp.hosts.get("spark1"), o.hosts.get_mut("spark1")) {
            dst.launch = src.launch.clone();
        }
        if rng.gen_bool(0.5) {
            o.vllm = tmp.vllm;
        }
    } else if rng.gen_bool(0.5) {
        o.vllm = Fact::known_now(VllmObserved {
            models: vec!["someone/else".into()],
        });
    }
    o
}

#[test]
fn plans_converge() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for case in 0..1500 {
        let d = random_desired(&mut rng);
        let mut o = random_observed(&mut rng, &d);
        let start = o.clone();
        let mut rounds = 0;
        loop {
            let p = plan(&d, &o);
            assert!(
                p.complete,
                "case {case}: everything is known, yet {:?}",
                p.unknown
            );
            if p.is_empty() {
                break;
            }
            // Never two models up: a launch is always preceded by a stop when one runs.
            let mut up = o
                .hosts
                .get("spark1")
                .and_then(|h| h.containers.get())
                .is_some_and(|c| c.get("vllm_node").is_some_and(|v| v.running));
            for s in &p.steps {
                match &s.action {
                    Action::StopModel { .. } => up = false,
                    Action::LaunchModel { .. } => {
                        assert!(
                            !up,
                            "case {case}: launch while a model runs\n{}",
                            render(&p)
                        );
                        up = true;
                    }
                    _ => {}
                }
                apply(&mut o, &d, s);
            }
            rounds += 1;
            assert!(
                rounds <= 2,
                "case {case}: no convergence after 2 rounds from {start:?}\nlast plan:\n{}",
                render(&p)
            );
        }
        // Idempotence: the converged world plans nothing, twice.
        assert!(plan(&d, &o).is_empty());
    }
}

#[test]
fn unknown_facts_never_stop_or_launch() {
    let mut rng = StdRng::seed_from_u64(0xbad);
    for case in 0..1000 {
        let d = random_desired(&mut rng);
        let mut o = random_observed(&mut rng, &d);
        let blind = ["spark1", "spark2"][rng.gen_range(0..2)];
        unreachable(&mut o, blind);
        let p = plan(&d, &o);
        assert!(
            !p.complete || blind == "spark2" && !p.unknown.is_empty(),
            "case {case}"
        );
        for s in &p.steps {
            match &s.action {
                Action::StopModel { .. }
                | Action::LaunchModel { .. }
                | Action::WaitReady { .. }
                | Action::SettleGpu { .. } => {
                    assert_ne!(
                        blind,
                        "spark1",
                        "case {case}: model action with the head unseen:\n{}",
                        render(&p)
                    );
                    if let Action::LaunchModel { spec, .. } = &s.action {
                        assert!(
                            !spec.hosts.iter().any(|h| h == blind),
                            "case {case}: launch on an unseen host"
                        );
                    }
                }
                Action::StartService { host, .. }
                | Action::StopService { host, .. }
                | Action::Download { host, .. } => {
                    assert_ne!(
                        host,
                        blind,
                        "case {case}: acted on an unseen host:\n{}",
                        render(&p)
                    );
                }
                Action::UpdateLauncher { host, .. }
                | Action::CheckoutLauncher { host, .. }
                | Action::RestartService { host, .. }
                | Action::FetchLauncher { host } => {
                    assert_ne!(host, blind);
                }
            }
        }
    }
}
