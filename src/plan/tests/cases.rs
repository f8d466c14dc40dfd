//! The planner's table: a desired file and a world in, the expected plan as text out.

use super::*;

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
        ..Default::default()
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
        ~ checkout launcher on spark1 at bbbbbbb2222 (from aaaaaaaa1111) and rebuild  # pinned to bbbbbbb2222
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

    // 29. a pin was left: the branch it left is checked out again (any following policy)
    let behind = |o: &Observed, f: &dyn Fn(&mut LauncherObserved)| {
        let mut o = o.clone();
        if let Some(l) = o.hosts.get_mut("spark1").and_then(|h| h.launcher.get_mut()) {
            f(l);
        }
        o
    };
    let pinned = behind(&converged, &|l| {
        l.branch = None;
        l.behind = None;
        l.pinned_from = Some("main".into());
    });
    for policy in ["notify", "manual", "auto"] {
        cases.push((
            "pin left",
            desired(&[("updates", &format!("{{ launcher: {policy} }}"))]),
            pinned.clone(),
            "
        ~ return launcher on spark1 to branch main (from aaaaaaaa1111)  # no longer pinned; follow main again
    ",
        ));
    }
    // 30. still pinned: the record alone changes nothing
    let d15 = desired(&[("updates", "{ launcher: { pin: aaaaaaaa } }")]);
    cases.push(("still pinned", d15, pinned.clone(), "(nothing to do)"));
    // 31. detached by hand (no record): left alone
    let by_hand = behind(&converged, &|l| {
        l.branch = None;
        l.behind = None;
    });
    cases.push(("detached by hand", d.clone(), by_hand, "(nothing to do)"));
    // 32. auto only when idle: a model serves → no update
    let d16 = desired(&[("updates", "{ launcher: auto, auto_only_when_idle: true }")]);
    let three = |l: &mut LauncherObserved| l.behind = Some(3);
    cases.push((
        "auto idle-only, serving",
        d16,
        behind(&converged, &three),
        "(nothing to do)",
    ));
    // 33. auto only when idle: nothing desired, nothing serves → update
    let d17 = desired(&[
        ("updates", "{ launcher: auto, auto_only_when_idle: true }"),
        ("active_model", "null"),
    ]);
    let mut quiet = idle(&d17);
    set_container(&mut quiet, "spark2", "parakeet", true);
    let quiet = behind(&quiet, &three);
    cases.push((
        "auto idle-only, idle",
        d17.clone(),
        quiet.clone(),
        "
        ~ update launcher on spark1 (3 commits behind)  # 3 commits behind upstream; policy auto, no model serving
    ",
    ));
    // 34. auto only when idle: what vLLM serves is unknown → wait, say so
    let mut blind = quiet.clone();
    blind.vllm = Fact::unknown("timeout");
    cases.push((
        "auto idle-only, vLLM unknown",
        d17,
        blind,
        "
        (nothing to do)
        ! cannot see spark1: whether a model serves is unknown (timeout); `auto_only_when_idle` waits
        ! plan incomplete: nothing was decided for what could not be seen
    ",
    ));

    assert!(cases.len() >= 20);
    for (name, d, o, expected) in &cases {
        check(name, d, o, expected);
    }
}
