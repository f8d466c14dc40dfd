//! The shims (`launch-cluster.sh`, `docker`, `hf`, `nvidia-smi`) run with `sh -c` in
//! each simulated host's environment; assertions are on the state of the world: what
//! serves on IP:port, what `docker ps` and `nvidia-smi` say, which files exist.

use std::time::Duration;

use super::{free_port, port_open, wait_until, Input, World};

const REPO: &str = "org/Sim-Model-FP8";
const HEAD: &str = "127.0.0.2";

fn launch_cmd(extra: &str, port: u16) -> String {
    format!(
        "./launch-cluster.sh {extra} -d exec vllm serve '{REPO}' --host 0.0.0.0 --port {port} --max-model-len 4096"
    )
}

fn models_on(ip: &str, port: u16) -> Option<serde_json::Value> {
    let mut s = std::net::TcpStream::connect((ip, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    use std::io::{Read, Write};
    write!(
        s,
        "GET /v1/models HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split("\r\n\r\n").nth(1)?;
    serde_json::from_str(body).ok()
}

fn ready(_w: &World, port: u16) -> bool {
    wait_until(Duration::from_secs(10), || models_on(HEAD, port).is_some())
}

const HEAD_CX7: &str = "127.0.1.2";
const WORKER_CX7: &str = "127.0.1.3";

/// Fake vLLM processes (`vllm serve …`) whose simulated host is `root`: their argv.
fn vllm_in(root: &std::path::Path) -> Vec<Vec<String>> {
    let want = format!("SPARK_SIM_ROOT={}", root.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let p = e.path();
        let argv: Vec<String> = std::fs::read(p.join("cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_vllm = argv
            .first()
            .is_some_and(|a| a == "vllm" || a.ends_with("/vllm"))
            && argv.get(1).is_some_and(|a| a == "serve");
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        let zombie = stat.rsplit(") ").next().unwrap_or("Z").starts_with('Z');
        let here = std::fs::read(p.join("environ"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .any(|kv| kv == want.as_bytes());
        if is_vllm && here && !zombie {
            out.push(argv);
        }
    }
    out
}

#[test]
fn generation_b_solo_serves_in_docker_logs_skips_a_second_launch_and_stops() {
    let w = World::new();
    w.download("spark1", REPO);
    let port = free_port(HEAD);
    let out = w.sh("spark1", &launch_cmd("--solo", port));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(ready(&w, port), "model never served");
    let m = models_on(HEAD, port).expect("models");
    assert_eq!(m["data"][0]["id"], REPO);
    assert_eq!(m["data"][0]["max_model_len"], 4096);
    // -d exec: vLLM's output is the container's (docker logs).
    assert!(wait_until(Duration::from_secs(5), || w
        .sh("spark1", "docker logs vllm_node")
        .stdout
        .contains("Application startup complete.")));
    let again = w.sh("spark1", &launch_cmd("--solo", port));
    assert!(
        again.stdout.contains("already running. Skipping launch."),
        "{again:?}"
    );
    for _ in 0..2 {
        let stop = w.sh("spark1", &format!("./launch-cluster.sh -n {HEAD_CX7} stop"));
        assert_eq!(stop.code, Some(0), "stop must be idempotent: {stop:?}");
        assert!(wait_until(Duration::from_secs(5), || !port_open(
            HEAD, port
        )));
        assert_eq!(w.state_of("spark1", "vllm_node").as_deref(), Some("exited"));
        assert!(vllm_in(&w.root("spark1")).is_empty());
    }
}

#[test]
fn usage_tells_the_generations_apart() {
    use spark_control::launcher::{detect, Generation};
    for g in [Generation::A, Generation::B] {
        let w = World::with_launcher(g);
        let out = w.sh("spark1", "./launch-cluster.sh --help");
        assert_eq!(
            out.code,
            Some(1),
            "--help prints usage and exits 1: {out:?}"
        );
        assert_eq!(detect(&out.stdout), Ok(g), "{}", out.stdout);
    }
}

#[test]
fn generation_a_runs_an_unknown_word_as_the_command_and_reparses_exec() {
    let w = World::with_launcher(spark_control::launcher::Generation::A);
    w.download("spark1", REPO);
    let port = free_port(HEAD);
    // `--solo` is not a flag here: it and everything after it become the command.
    let out = w.sh("spark1", &launch_cmd("--solo", port));
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("Executing command on head node: --solo"),
        "{out:?}"
    );
    assert!(!port_open(HEAD, port));
    assert_ne!(
        w.state_of("spark1", "vllm_node").as_deref(),
        Some("running"),
        "the trap stopped it"
    );
    // The words after exec are joined and re-parsed by bash: `$(…)` runs on the head.
    let marker = w.root("spark1").join("marker");
    let hostile = format!("$(touch {})", marker.display());
    let script = format!(
        "nohup ./launch-cluster.sh -n {HEAD_CX7} exec vllm serve '{REPO}' --port {port} --served-model-name '{hostile}' > a.log 2>&1 &"
    );
    assert_eq!(w.sh("spark1", &script).code, Some(0));
    assert!(
        wait_until(Duration::from_secs(10), || marker.exists()),
        "generation A re-parses"
    );
    assert!(ready(&w, port));
    // Its output is the launcher's, not the container's.
    let log = w.root("spark1").join("spark-vllm-docker/a.log");
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Application startup complete."))
    }));
    assert!(!w
        .sh("spark1", "docker logs vllm_node")
        .stdout
        .contains("Application startup complete."));
    // vLLM dies: the launcher exits and its trap stops the container.
    let pid = vllm_pid(&w);
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    assert!(wait_until(Duration::from_secs(10), || w
        .state_of("spark1", "vllm_node")
        .as_deref()
        == Some("exited")));
}

fn vllm_pid(w: &World) -> String {
    let root = w.root("spark1");
    let want = format!("SPARK_SIM_ROOT={}", root.display());
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let here = std::fs::read(e.path().join("environ"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .any(|kv| kv == want.as_bytes());
        if (cmd.starts_with("vllm serve") || cmd.contains("/vllm serve")) && here {
            return e.file_name().to_string_lossy().into_owned();
        }
    }
    panic!("no vLLM process on spark1");
}

#[test]
fn generation_b_quotes_the_command_itself_and_keeps_the_container_when_vllm_dies() {
    let w = World::new();
    w.download("spark1", REPO);
    let port = free_port(HEAD);
    let marker = w.root("spark1").join("marker");
    let hostile = format!("$(touch {})", marker.display());
    let out = w.sh(
        "spark1",
        &format!("./launch-cluster.sh --solo -d exec vllm serve '{REPO}' --port {port} --served-model-name '{hostile}' 'two words'"),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(ready(&w, port));
    let argv = vllm_in(&w.root("spark1")).pop().expect("a vLLM");
    assert!(
        argv.contains(&hostile) && argv.contains(&"two words".to_string()),
        "{argv:?}"
    );
    assert!(!marker.exists());
    let pid = vllm_pid(&w);
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    assert!(wait_until(Duration::from_secs(5), || !port_open(
        HEAD, port
    )));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        w.state_of("spark1", "vllm_node").as_deref(),
        Some("running"),
        "the idle container outlives vLLM"
    );
    let top = w.sh("spark1", "docker top vllm_node");
    assert!(!top.stdout.contains("vllm serve"), "{top:?}");
}

#[test]
fn nodes_must_be_interconnect_addresses_and_stop_without_them_stops_the_head_only() {
    use spark_control::launcher::Generation;
    for g in [Generation::A, Generation::B] {
        let w = World::with_launcher(g);
        w.download("spark1", REPO);
        w.download("spark2", REPO);
        let port = free_port(HEAD);
        let lan = w.sh("spark1", &launch_cmd(&format!("-n {HEAD},127.0.0.3"), port));
        assert_eq!(lan.code, Some(1), "{g:?}: {lan:?}");
        assert!(
            lan.stdout.contains(
                "Error: Local IP (127.0.1.2) is not in the list of nodes (127.0.0.2,127.0.0.3)."
            ),
            "{g:?}: {lan:?}"
        );
        if g == Generation::B {
            let launch = format!(
                "./launch-cluster.sh -n {HEAD_CX7},{WORKER_CX7} -d exec vllm serve '{REPO}' --port {port} -tp 2"
            );
            assert_eq!(w.sh("spark1", &launch).code, Some(0));
            assert!(ready(&w, port), "{g:?}");
        } else {
            // Generation A's exec lives with its launcher, whose trap would stop the
            // workers itself: `-d start` leaves the containers with no launcher behind.
            let start = format!("./launch-cluster.sh -n {HEAD_CX7},{WORKER_CX7} -d start");
            let out = w.sh("spark1", &start);
            assert_eq!(out.code, Some(0), "{out:?}");
        }
        assert_eq!(
            w.state_of("spark2", "vllm_node").as_deref(),
            Some("running")
        );
        if g == Generation::B {
            // No Ray: the worker runs a headless vLLM of its own.
            assert!(wait_until(Duration::from_secs(5), || vllm_in(
                &w.root("spark2")
            )
            .iter()
            .any(|a| a.contains(&"--headless".to_string()))));
        }
        // Without -n: autodiscovery finds no peers; only the head stops.
        let out = w.sh("spark1", "./launch-cluster.sh stop");
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(
            w.state_of("spark1", "vllm_node").as_deref(),
            Some("exited"),
            "{g:?}"
        );
        assert_eq!(
            w.state_of("spark2", "vllm_node").as_deref(),
            Some("running"),
            "{g:?}: the worker is left running"
        );
        let out = w.sh(
            "spark1",
            &format!("./launch-cluster.sh -n {HEAD_CX7},{WORKER_CX7} stop"),
        );
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(
            w.state_of("spark2", "vllm_node").as_deref(),
            Some("exited"),
            "{g:?}"
        );
        assert!(vllm_in(&w.root("spark2")).is_empty(), "{g:?}");
    }
}

#[test]
fn a_model_missing_from_the_cache_cannot_load() {
    let w = World::new();
    let port = free_port(HEAD);
    let out = w.sh("spark1", &launch_cmd("--solo", port));
    assert_eq!(out.code, Some(0), "-d exec returns at once: {out:?}");
    assert!(wait_until(Duration::from_secs(10), || w
        .sh("spark1", "docker logs vllm_node")
        .stdout
        .contains("couldn't find them in the cached files")));
    assert!(!port_open(HEAD, port));
}

#[test]
fn docker_starts_and_stops_speech_containers() {
    let w = World::new();
    let ip = "127.0.0.3";
    let absent = w.sh("spark2", "docker start whisper");
    assert_ne!(absent.code, Some(0));
    assert!(absent
        .stderr
        .contains("Error response from daemon: No such container: whisper"));
    assert_eq!(w.state_of("spark2", "parakeet").as_deref(), Some("exited"));

    for _ in 0..2 {
        let out = w.sh("spark2", "docker start parakeet magpie");
        assert_eq!(out.code, Some(0), "start must be idempotent: {out:?}");
    }
    assert!(wait_until(Duration::from_secs(5), || port_open(
        ip, w.stt_port
    )));
    assert!(wait_until(Duration::from_secs(5), || port_open(
        ip, w.tts_port
    )));
    let stt = w.sh(
        "spark2",
        &format!(
            "printf 'RIFFfake' > a.wav && curl -sf -F file=@a.wav http://{ip}:{}/v1/audio/transcriptions",
            w.stt_port
        ),
    );
    assert!(stt.stdout.contains("\"text\""), "{stt:?}");
    let tts = w.sh(
        "spark2",
        &format!(
            "curl -sf -H 'content-type: application/json' -d '{{\"input\":\"hi\"}}' http://{ip}:{}/v1/audio/speech | head -c 4",
            w.tts_port
        ),
    );
    assert_eq!(tts.stdout, "RIFF", "{tts:?}");
    assert_eq!(w.state_of("spark2", "parakeet").as_deref(), Some("running"));

    let out = w.sh("spark2", "docker restart parakeet");
    assert_eq!(out.code, Some(0));
    assert!(wait_until(Duration::from_secs(5), || port_open(
        ip, w.stt_port
    )));
    let out = w.sh("spark2", "docker stop parakeet && docker stop parakeet");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!port_open(ip, w.stt_port));
    assert_eq!(w.state_of("spark2", "parakeet").as_deref(), Some("exited"));
    assert_eq!(w.state_of("spark2", "magpie").as_deref(), Some("running"));
}

fn cache_bytes(w: &World, host: &str) -> (u64, usize, bool) {
    let dir = w
        .root(host)
        .join("hf/hub/models--org--Sim-Model-FP8/snapshots");
    let mut total = 0;
    let mut files = 0;
    let mut partial = false;
    for snap in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(snap.path()).expect("snapshot").flatten() {
            total += f.metadata().expect("meta").len();
            files += 1;
            partial |= f.file_name().to_string_lossy().ends_with(".incomplete");
        }
    }
    (total, files, partial)
}

#[test]
fn hf_download_lays_the_declared_bytes_and_resumes() {
    let w = World::new();
    w.knob("spark2", "hf-size", "400000");
    w.knob("spark2", "hf-speed", "500000");
    let cut = w.sh_with(
        "spark2",
        &format!("hf download {REPO}"),
        Input::Null,
        Duration::from_millis(500),
    );
    assert!(
        cut.is_none(),
        "download should take ~0.8 s, it finished early"
    );
    let (partial_bytes, _, partial) = cache_bytes(&w, "spark2");
    assert!(
        partial && partial_bytes > 0 && partial_bytes < 400_000,
        "{partial_bytes}"
    );
    let out = w.sh("spark2", &format!("hf download {REPO}"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("already downloaded"),
        "resume must skip done files"
    );
    assert_eq!(cache_bytes(&w, "spark2"), (400_000, 3, false));
    assert!(out.stdout.trim_end().ends_with(&format!(
        "snapshots/{}",
        out.stdout.trim_end().rsplit('/').next().unwrap_or("?")
    )));

    w.knob("spark2", "hf-missing", "org/Does-Not-Exist\n");
    let out = w.sh("spark2", "hf download org/Does-Not-Exist");
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("Repository Not Found"), "{out:?}");
}

fn smi(w: &World) -> Vec<String> {
    let out = w.sh(
        "spark1",
        "nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw --format=csv,noheader,nounits",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    out.stdout.trim().split(", ").map(str::to_string).collect()
}

#[test]
fn nvidia_smi_memory_settles_a_moment_after_stop() {
    let w = World::new();
    let idle = smi(&w);
    assert_eq!(idle[..2], ["0".to_string(), "NVIDIA GB10".to_string()]);
    let idle_mem: u64 = idle[3].parse().expect("memory.used");
    w.download("spark1", REPO);
    let port = free_port(HEAD);
    assert_eq!(w.sh("spark1", &launch_cmd("--solo", port)).code, Some(0));
    let busy_mem: u64 = smi(&w)[3].parse().expect("memory.used");
    assert!(busy_mem > idle_mem * 10, "{busy_mem} vs idle {idle_mem}");
    assert_eq!(w.sh("spark1", "./launch-cluster.sh stop").code, Some(0));
    let settling: u64 = smi(&w)[3].parse().expect("memory.used");
    assert_eq!(
        settling, busy_mem,
        "memory should still be held right after stop"
    );
    assert!(wait_until(Duration::from_secs(4), || smi(&w)[3] == idle[3]));
}

/// `free -m` on the simulated host, parsed the way the settle step parses it.
fn free(w: &World) -> spark_control::observe::parse::FreeMemory {
    let out = w.sh("spark1", "free -m");
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<String> = out.stdout.lines().map(String::from).collect();
    spark_control::observe::parse::free_memory(&lines).expect("free -m parses")
}

#[test]
fn unified_memory_shows_in_free_and_is_released_a_moment_after_stop() {
    let w = World::new();
    w.knob("spark1", "smi-memory-na", "");
    assert_eq!(smi(&w)[3], "[N/A]", "GB10 reports no GPU memory");
    let idle = free(&w);
    assert!(idle.available_mib * 10 > idle.total_mib * 9, "{idle:?}");
    w.download("spark1", REPO);
    let port = free_port(HEAD);
    assert_eq!(w.sh("spark1", &launch_cmd("--solo", port)).code, Some(0));
    let busy = free(&w);
    assert!(busy.available_mib * 2 < busy.total_mib, "{busy:?}");
    assert_eq!(w.sh("spark1", "./launch-cluster.sh stop").code, Some(0));
    assert_eq!(free(&w), busy, "memory is still held right after the stop");
    assert!(wait_until(Duration::from_secs(4), || free(&w) == idle));
    assert_eq!(
        w.sh("spark1", "free -h").code,
        Some(1),
        "only -m is simulated"
    );
}

#[test]
fn prompt_knob_blocks_on_an_open_stdin_but_not_on_dev_null() {
    let w = World::new();
    w.download("spark1", REPO);
    w.knob("spark1", "prompt", "");
    let port = free_port(HEAD);
    let blocked = w.sh_with(
        "spark1",
        &launch_cmd("--solo", port),
        Input::OpenPipe,
        Duration::from_secs(2),
    );
    assert!(
        blocked.is_none(),
        "launcher should wait for an answer on an open stdin"
    );
    assert!(!port_open(HEAD, port));
    let out = w.sh("spark1", &launch_cmd("--solo", port));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("Continue? [Y/n]"));
    assert!(ready(&w, port));
}

#[test]
fn dropping_the_sim_kills_everything_it_started() {
    let w = World::new();
    w.download("spark1", REPO);
    let port = free_port(HEAD);
    assert_eq!(w.sh("spark1", &launch_cmd("--solo", port)).code, Some(0));
    assert_eq!(w.sh("spark2", "docker start parakeet").code, Some(0));
    assert!(ready(&w, port));
    let pid = |host: &str, c: &str| {
        std::fs::read_to_string(w.root(host).join(format!("containers/{c}/pid")))
            .expect("pid file")
            .trim()
            .to_string()
    };
    let pids = [pid("spark1", "vllm_node"), pid("spark2", "parakeet")];
    let alive = |p: &str| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .map(|s| !s.rsplit(") ").next().unwrap_or("Z").starts_with('Z'))
            .unwrap_or(false)
    };
    assert!(pids.iter().all(|p| alive(p)));
    assert_eq!(w.sim.shutdown(), 2);
    assert!(
        pids.iter().all(|p| !alive(p)),
        "processes survived shutdown"
    );
    assert!(!port_open(HEAD, port));
}
