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
