//! Planner cases with several deployments (the expected plan as text): deployments whose
//! models run as desired get no step; a swap on one deployment touches only its head;
//! layout changes (two solo ↔ one cluster over both hosts) stop everything in the way
//! first, each host's vLLM once, from the head that launched it.

use super::*;
use crate::model::deployment::Deployment;

/// Three deployments over two hosts: `coder` (solo on spark1), `vision` (solo on spark2),
/// `big` (spark1 with spark2 as worker), with these active models (`null`: none).
fn layout(coder: &str, vision: &str, big: &str) -> Desired {
    let text = format!(
        "version: 1\nhosts:\n  spark1: {{ address: 10.0.0.1, user: nvidia }}\n  spark2: {{ address: 10.0.0.2, user: nvidia }}\n\
         deployments:\n  - {{ name: coder, head: spark1, active_model: {coder} }}\n  - {{ name: vision, head: spark2, port: 8001, active_model: {vision} }}\n  - {{ name: big, head: spark1, workers: [spark2], active_model: {big} }}\n\
         updates: {{ launcher: notify }}\n"
    );
    let v = validate_text("test.yaml", &text);
    match v.desired {
        Some(d) => d,
        None => panic!("fixture invalid: {:?}\n{text}", v.diagnostics),
    }
}

/// Nothing runs; every deployment's vLLM answers nothing.
fn nothing_runs(d: &Desired) -> Observed {
    let mut o = idle(d);
    for dep in d.deployments() {
        o.deployments
            .insert(dep.name, Fact::known_now(VllmObserved::default()));
    }
    o
}

/// `model` runs as deployment `name` launched it (with `d`'s settings), and is ready.
fn runs(o: &mut Observed, d: &Desired, name: &str, model: &str) {
    let dep: Deployment = d
        .deployments()
        .into_iter()
        .find(|x| x.name == name)
        .expect("deployment in the fixture");
    let cat = catalog(d);
    let addrs = d
        .hosts
        .iter()
        .map(|(k, h)| (k.clone(), h.launcher_address().to_string()))
        .collect();
    let spec = launch_spec(&cat[model], &dep.cluster, &addrs).expect("fixture hosts");
    for h in &spec.hosts {
        set_container(o, h, "vllm_node", true);
    }
    if let Some(h) = o.hosts.get_mut(&dep.cluster.head) {
        h.launch = Fact::known_now(Some(LaunchRecord {
            model: model.into(),
            repo: spec.repo.clone(),
            fingerprint: spec.fingerprint.clone(),
            settings: spec.settings.clone(),
            nodes: spec.nodes.clone(),
            deployment: Some(name.into()),
            ..Default::default()
        }));
    }
    o.deployments.insert(
        name.into(),
        Fact::known_now(VllmObserved {
            models: spec.served.clone(),
            ..Default::default()
        }),
    );
}

#[test]
fn deployment_cases() {
    let two = layout("qwen36", "qwen3-vl", "null");
    let mut both = nothing_runs(&two);
    runs(&mut both, &two, "coder", "qwen36");
    runs(&mut both, &two, "vision", "qwen3-vl");
    check("two solo, both run", &two, &both, "(nothing to do)");

    check("two solo, cold start", &two, &nothing_runs(&two), "
        + [coder] launch qwen36 on spark1 (RedHatAI/Qwen3.6-35B-A3B-NVFP4, solo)  # qwen36 is desired and nothing runs
        [coder] wait until qwen36 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
        + [vision] launch qwen3-vl on spark2 (Qwen/Qwen3-VL-30B-A3B-Instruct-FP8, solo)  # qwen3-vl is desired and nothing runs
        [vision] wait until qwen3-vl is ready on spark2:8001 (up to 30m)  # a launch is done when the model answers
    ");

    let swap = layout("gemma4", "qwen3-vl", "null");
    check("swap one, the other untouched", &swap, &both, "
        - [coder] stop qwen36 on spark1 (swap to gemma4)  # gemma4 is desired instead of qwen36
        wait for GPU memory to settle on spark1 (< 8192 MiB, or 90% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + [coder] launch gemma4 on spark1 (google/gemma-4-26B-A4B-it, solo)  # gemma4 is desired
        [coder] wait until gemma4 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
    ");

    let big = layout("null", "null", "qwen3-235b-fp8");
    check("two solo → one cluster: both stopped first", &big, &both, "
        - [coder] stop qwen36 on spark1 (no model desired)  # no model is desired on deployment `coder` (active_model: null)
        - [vision] stop qwen3-vl on spark2 (no model desired)  # no model is desired on deployment `vision` (active_model: null)
        wait for GPU memory to settle on spark1, spark2 (< 8192 MiB, or 85% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + [big] launch qwen3-235b-fp8 on spark1 (Qwen/Qwen3-235B-A22B-Instruct-2507-FP8, cluster on spark1+spark2)  # qwen3-235b-fp8 is desired
        [big] wait until qwen3-235b-fp8 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
    ");

    let mut cluster = nothing_runs(&big);
    runs(&mut cluster, &big, "big", "qwen3-235b-fp8");
    check("one cluster runs", &big, &cluster, "(nothing to do)");
    check("one cluster → two solo: one stop from the head, then both launches", &two, &cluster, "
        - [big] stop qwen3-235b-fp8 on spark1 (swap to qwen36)  # qwen36 on deployment `coder` needs spark1, which deployment `big` holds
        wait for GPU memory to settle on spark1 (< 8192 MiB, or 80% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + [coder] launch qwen36 on spark1 (RedHatAI/Qwen3.6-35B-A3B-NVFP4, solo)  # qwen36 is desired
        [coder] wait until qwen36 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
        wait for GPU memory to settle on spark2 (< 8192 MiB, or 90% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + [vision] launch qwen3-vl on spark2 (Qwen/Qwen3-VL-30B-A3B-Instruct-FP8, solo)  # qwen3-vl is desired
        [vision] wait until qwen3-vl is ready on spark2:8001 (up to 30m)  # a launch is done when the model answers
    ");

    // spark2 unseen: vision is neither stopped nor launched, coder goes on.
    let mut blind = both.clone();
    unreachable(&mut blind, "spark2");
    let swap_both = layout("gemma4", "qwen36", "null");
    check("an unseen host blocks only its deployment", &swap_both, &blind, "
        - [coder] stop qwen36 on spark1 (swap to gemma4)  # gemma4 is desired instead of qwen36
        wait for GPU memory to settle on spark1 (< 8192 MiB, or 90% free on unified memory, up to 1m)  # let GPU memory be released before the next launch
        + [coder] launch gemma4 on spark1 (google/gemma-4-26B-A4B-it, solo)  # gemma4 is desired
        [coder] wait until gemma4 is ready on spark1:8888 (up to 30m)  # a launch is done when the model answers
        ! cannot see spark2: containers unknown (host unreachable: connection refused): no model is started or stopped
        ! plan incomplete: nothing was decided for what could not be seen
    ");
}

/// Applies one step to a world of several deployments, as a perfect executor would, and
/// fails on a launch onto a host whose vLLM container still runs (two vLLMs on a host).
fn apply_layout(o: &mut Observed, d: &Desired, step: &Step) -> Result<(), String> {
    let by_address = |a: &str| {
        d.hosts
            .iter()
            .find(|(_, h)| h.launcher_address() == a)
            .map(|(k, _)| k.clone())
    };
    // Every deployment probed at this head and port sees the same vLLM.
    let set_vllm = |o: &mut Observed, head: &str, port: u16, models: Vec<String>| {
        for x in d.deployments() {
            if x.cluster.head == head && x.cluster.port == port {
                o.deployments.insert(
                    x.name,
                    Fact::known_now(VllmObserved {
                        models: models.clone(),
                        ..Default::default()
                    }),
                );
            }
        }
    };
    match &step.action {
        Action::StopModel {
            host, deployment, ..
        } => {
            let c = d
                .deployment_cluster(deployment)
                .expect("a deployment of the file");
            let record = o
                .hosts
                .get(host)
                .and_then(|h| h.launch.get().cloned())
                .flatten();
            let mut nodes: Vec<String> = vec![host.clone()];
            nodes.extend(c.workers.iter().cloned());
            nodes.extend(
                record
                    .iter()
                    .flat_map(|r| r.nodes.iter().filter_map(|a| by_address(a))),
            );
            for n in &nodes {
                set_container(o, n, "vllm_node", false);
            }
            if let Some(h) = o.hosts.get_mut(host) {
                h.launch = Fact::known_now(None);
            }
            set_vllm(o, host, c.port, vec![]);
            if let Some(r) = record {
                if let Some(x) = r
                    .deployment
                    .as_deref()
                    .and_then(|n| d.deployment_cluster(n))
                {
                    set_vllm(o, host, x.port, vec![]);
                }
            }
        }
        Action::LaunchModel {
            spec,
            host,
            deployment,
            ..
        } => {
            for h in &spec.hosts {
                let busy = o
                    .hosts
                    .get(h)
                    .and_then(|x| x.containers.get())
                    .is_some_and(|c| c.get("vllm_node").is_some_and(|v| v.running));
                if busy {
                    return Err(format!(
                        "launch of {} for {deployment} onto {h}, whose vLLM still runs",
                        spec.model
                    ));
                }
                set_container(o, h, "vllm_node", true);
            }
            if let Some(h) = o.hosts.get_mut(host) {
                h.launch = Fact::known_now(Some(LaunchRecord {
                    model: spec.model.clone(),
                    repo: spec.repo.clone(),
                    fingerprint: spec.fingerprint.clone(),
                    settings: spec.settings.clone(),
                    nodes: spec.nodes.clone(),
                    deployment: Some(deployment.clone()),
                    ..Default::default()
                }));
            }
        }
        Action::WaitReady {
            host, port, served, ..
        } => set_vllm(o, host, *port, served.clone()),
        Action::Download { host, repo, .. } => {
            if let Some(s) = o.hosts.get_mut(host).and_then(|h| h.hf_cache.get_mut()) {
                s.insert(repo.clone());
            }
        }
        _ => {}
    }
    Ok(())
}

/// A random layout that validates (a host in two active deployments is refused).
fn random_layout(rng: &mut StdRng) -> Desired {
    loop {
        let coder = ["null", "qwen36", "gemma4"][rng.gen_range(0..3)];
        let vision = ["null", "qwen3-vl", "qwen36"][rng.gen_range(0..3)];
        let big = ["null", "qwen3-235b-fp8", "gemma4"][rng.gen_range(0..3)];
        let text = format!(
            "version: 1\nhosts:\n  spark1: {{ address: 10.0.0.1, user: nvidia }}\n  spark2: {{ address: 10.0.0.2, user: nvidia }}\n\
             deployments:\n  - {{ name: coder, head: spark1, active_model: {coder} }}\n  - {{ name: vision, head: spark2, port: 8001, active_model: {vision} }}\n  - {{ name: big, head: spark1, workers: [spark2], active_model: {big} }}\n\
             updates: {{ launcher: notify }}\n"
        );
        let v = validate_text("test.yaml", &text);
        let clean = v.errors().next().is_none();
        if let Some(d) = v.desired.filter(|_| clean) {
            return d;
        }
    }
}

/// Applies `d`'s plan on `o` step by step; the plan must leave nothing to do.
fn converge(o: &mut Observed, d: &Desired, case: usize) {
    let p = plan(d, o);
    assert!(p.complete, "case {case}: incomplete\n{}", render(&p));
    for step in &p.steps {
        if let Err(e) = apply_layout(o, d, step) {
            panic!("case {case}: {e}\nplan:\n{}", render(&p));
        }
    }
    let again = plan(d, o);
    assert!(
        again.is_empty(),
        "case {case}: not converged after\n{}\nplan again:\n{}",
        render(&p),
        render(&again)
    );
}

/// 1000 layout changes in sequence (each from the world the last one left, with a model
/// crashed now and then): no launch ever lands on a host whose vLLM runs, one plan always
/// converges, and with a host unseen nothing is stopped or launched on it.
#[test]
fn layout_changes_never_put_two_vllms_on_a_host_and_converge() {
    let mut rng = StdRng::seed_from_u64(0xde91);
    let mut d = random_layout(&mut rng);
    let mut o = nothing_runs(&d);
    for case in 0..1000 {
        let next = random_layout(&mut rng);
        if rng.gen_bool(0.1) {
            // A crash: one host's vLLM container is gone (its record stays).
            let h = ["spark1", "spark2"][rng.gen_range(0..2)];
            set_container(&mut o, h, "vllm_node", false);
        }
        if rng.gen_bool(0.15) {
            let unseen = ["spark1", "spark2"][rng.gen_range(0..2)];
            let mut blind = o.clone();
            unreachable(&mut blind, unseen);
            let p = plan(&next, &blind);
            for s in &p.steps {
                let touches = match &s.action {
                    Action::StopModel { host, .. } => host == unseen,
                    Action::LaunchModel { spec, .. } => spec.hosts.iter().any(|h| h == unseen),
                    _ => false,
                };
                assert!(
                    !touches,
                    "case {case}: acts on unseen {unseen}:\n{}",
                    render(&p)
                );
            }
        }
        d = next;
        converge(&mut o, &d, case);
    }
}
