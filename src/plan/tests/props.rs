//! Properties over generated desired files and worlds.

use super::*;

/// Applies one step to a simulated world, as a perfect executor would.
pub(super) fn apply(o: &mut Observed, d: &Desired, step: &Step) {
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
        Action::LaunchModel { spec, host, .. } => {
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
                    ..Default::default()
                }));
            }
            o.vllm = Fact::known_now(VllmObserved::default());
        }
        Action::WaitReady { repo, .. } => {
            o.vllm = Fact::known_now(VllmObserved {
                models: vec![repo.clone()],
                ..Default::default()
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
                if let Some(b) = l.branch.take() {
                    l.pinned_from.get_or_insert(b);
                }
                l.head = commit.clone();
                l.behind = None;
            }
        }
        Action::ReturnLauncher { host, branch, .. } => {
            if let Some(l) = o.hosts.get_mut(host).and_then(|h| h.launcher.get_mut()) {
                l.branch = Some(branch.clone());
                l.pinned_from = None;
                l.head = "dddddddd4444".into();
                l.behind = Some(0);
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
    let idle_only = rng.gen_bool(0.5);
    desired(&[
        ("active_model", active),
        ("overrides", &format!("{{ qwen36: {{ gpu_memory: {gpu}, prefix_caching: {pc} }}, tiny: {{ max_context: 4096 }} }}")),
        ("services", &format!("{{ parakeet: {{ kind: stt, host: {ph}, port: 8000, running: {pr} }}, magpie: {{ kind: tts, host: {mh}, port: 9000, running: {mr} }} }}")),
        ("updates", &format!("{{ launcher: {policy}, auto_only_when_idle: {idle_only} }}")),
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
            // Sometimes pinned earlier: detached, with or without a recorded branch.
            if rng.gen_bool(0.3) {
                l.branch = None;
                l.behind = None;
                l.pinned_from = rng.gen_bool(0.7).then(|| "main".to_string());
            }
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
            ..Default::default()
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
                | Action::ReturnLauncher { host, .. }
                | Action::RestartService { host, .. }
                | Action::FetchLauncher { host } => {
                    assert_ne!(host, blind);
                }
            }
        }
    }
}

/// Never act on ignorance, one fact at a time: with only the head's launcher, one host's
/// HF cache, or what the head runs (launch record and vLLM's API) unknown, nothing is
/// launched that needs the missing fact, and a running model is neither stopped nor
/// launched over (unless no model is desired: then it goes, whatever it is). (Whole hosts
/// unseen: `unknown_facts_never_stop_or_launch`.)
#[test]
fn one_unknown_fact_never_launches_blind() {
    let mut rng = StdRng::seed_from_u64(0xb11d);
    for case in 0..1000 {
        let d = random_desired(&mut rng);
        let mut o = random_observed(&mut rng, &d);
        let host = ["spark1", "spark2"][rng.gen_range(0..2)];
        let blind = rng.gen_range(0..3);
        let head_running = o
            .hosts
            .get("spark1")
            .and_then(|h| h.containers.get())
            .is_some_and(|c| c.get("vllm_node").is_some_and(|v| v.running));
        if let Some(h) = o.hosts.get_mut(if blind == 1 { host } else { "spark1" }) {
            match blind {
                0 => h.launcher = Fact::unknown("git failed"),
                1 => h.hf_cache = Fact::unknown("ls failed"),
                _ => h.launch = Fact::unknown("cat failed"),
            }
        }
        if blind == 2 {
            o.vllm = Fact::unknown("connection refused");
        }
        let p = plan(&d, &o);
        for s in &p.steps {
            let bad = match &s.action {
                Action::LaunchModel { spec, .. } => {
                    blind == 0
                        || blind == 1 && spec.hosts.iter().any(|h| h == host)
                        || blind == 2 && head_running
                }
                Action::Download { host: h, .. } => blind == 1 && h == host,
                // With no model desired, whatever runs goes: its identity does not matter.
                Action::StopModel { reason, .. } => {
                    blind == 2 && head_running && *reason != StopReason::NoneDesired
                }
                _ => false,
            };
            assert!(!bad, "case {case} (blind {blind}, {host}):\n{}", render(&p));
        }
    }
}
