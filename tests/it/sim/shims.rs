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

fn ready(w: &World, port: u16) -> bool {
    wait_until(Duration::from_secs(10), || {
        w.sh("spark1", "docker logs --tail 1 vllm_node")
            .stdout
            .contains("Application startup complete.")
    }) && models_on(HEAD, port).is_some()
}

#[test]
fn launch_serves_then_second_launch_skips_then_stop_closes_the_port() {
    let w = World::new();
    w.download("spark1", REPO);
    let port = free_port(HEAD);
    let out = w.sh("spark1", &launch_cmd(&format!("--solo -n {HEAD}"), port));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(ready(&w, port), "model never served");
    let m = models_on(HEAD, port).expect("models");
    assert_eq!(m["data"][0]["id"], REPO);
    assert_eq!(m["data"][0]["max_model_len"], 4096);
    let logs = w.sh("spark1", "docker logs vllm_node").stdout;
    assert!(
        logs.trim_end().ends_with("Application startup complete."),
        "{logs}"
    );
    let argv = std::fs::read_to_string(w.root("spark1").join("containers/vllm_node/argv"))
        .expect("argv recorded");
    assert!(argv.lines().any(|l| l == "--max-model-len"), "{argv}");

    let again = w.sh("spark1", &launch_cmd(&format!("--solo -n {HEAD}"), port));
    assert_eq!(again.code, Some(0));
    assert!(
        again.stdout.contains("already running. Skipping launch."),
        "{again:?}"
    );

    for _ in 0..2 {
        let stop = w.sh("spark1", "./launch-cluster.sh stop");
        assert_eq!(stop.code, Some(0), "stop must be idempotent: {stop:?}");
        assert!(!port_open(HEAD, port), "port still open after stop");
        assert_eq!(
            w.ps("spark1"),
            vec![("vllm_node".into(), "exited".into(), "vllm-node".into())]
        );
    }
}

#[test]
fn launches_that_must_fail_say_why() {
    let w = World::new();
    let port = free_port(HEAD);
    // (script, expected message in stdout)
    let cases = [
        (
            launch_cmd("--solo", port),
            "not in the Hugging Face cache on 127.0.0.2",
        ),
        (launch_cmd("", port), "would now scan the LAN"),
        (launch_cmd("-n 127.0.0.9", port), "none of the nodes"),
        (
            "./launch-cluster.sh --solo -d exec python3 -m http.server".to_string(),
            "can only exec 'vllm serve",
        ),
    ];
    for (script, want) in cases {
        let out = w.sh("spark1", &script);
        assert_ne!(out.code, Some(0), "{script}: {out:?}");
        assert!(out.stdout.contains(want), "{script}: {out:?}");
    }
    w.download("spark1", REPO);
    let out = w.sh("spark1", &launch_cmd(&format!("-n {HEAD},127.0.0.3"), port));
    assert!(
        out.code != Some(0)
            && out
                .stdout
                .contains("not in the Hugging Face cache on 127.0.0.3"),
        "cluster launch must need the model on the worker too: {out:?}"
    );
    assert!(!port_open(HEAD, port));
}

#[test]
fn cluster_launch_marks_the_worker_and_stop_clears_it() {
    let w = World::new();
    w.download("spark1", REPO);
    w.download("spark2", REPO);
    let port = free_port(HEAD);
    let out = w.sh(
        "spark1",
        &format!(
            "{} -tp 2",
            launch_cmd(&format!("-n {HEAD},127.0.0.3"), port)
        ),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(ready(&w, port));
    assert_eq!(
        w.state_of("spark2", "vllm_node").as_deref(),
        Some("running")
    );
    let out = w.sh("spark1", "./launch-cluster.sh stop");
    assert_eq!(out.code, Some(0));
    assert_eq!(w.state_of("spark1", "vllm_node").as_deref(), Some("exited"));
    assert_eq!(w.state_of("spark2", "vllm_node").as_deref(), Some("exited"));
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

#[test]
fn foreground_launch_survives_under_nohup_and_dies_with_its_terminal_otherwise() {
    use std::io::{BufRead, BufReader};
    let w = World::new();
    w.download("spark1", REPO);
    let port = free_port(HEAD);
    let fg = launch_cmd("--solo", port).replace(" -d ", " ");
    let out = w.sh("spark1", &format!("nohup {fg} > launch.log 2>&1 &"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(ready(&w, port), "nohup'd foreground launch never served");
    assert_eq!(w.sh("spark1", "./launch-cluster.sh stop").code, Some(0));
    assert!(wait_until(Duration::from_secs(5), || !port_open(
        HEAD, port
    )));
    // The old launcher notices and exits, running its stop-the-cluster trap; a launch
    // before that would be stopped by it, as with the real launcher's EXIT trap.
    let run = w.root("spark1").join("run");
    let launcher_gone = || {
        std::fs::read_dir(&run)
            .expect("run dir")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("launcher-"))
    };
    assert!(wait_until(Duration::from_secs(5), launcher_gone));

    // Without nohup, the launcher streams to its terminal; when that goes away (the SSH
    // session closes) its next write fails and it stops the model, like the real one.
    let h = w.host("spark1");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(&fg)
        .current_dir(h.launcher_dir(w.sim.base()))
        .envs(w.sim.env(&h, &super::sim_bin()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn launcher");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().take(200) {
        let line = line.unwrap_or_else(|e| format!("<read error: {e}>"));
        seen.push(line);
        if seen
            .last()
            .is_some_and(|l| l.contains("Application startup complete."))
        {
            break;
        }
    }
    assert!(
        seen.last()
            .is_some_and(|l| l.contains("Application startup complete.")),
        "foreground launcher did not stream the startup log:\n{}\n--- container log:\n{}",
        seen.join("\n"),
        w.sh("spark1", "docker logs vllm_node; docker ps -a").stdout
    );
    assert!(port_open(HEAD, port));
    drop(lines);
    let stopped = wait_until(Duration::from_secs(10), || !port_open(HEAD, port));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        stopped,
        "model survived the loss of the launcher's terminal"
    );
    assert_eq!(w.state_of("spark1", "vllm_node").as_deref(), Some("exited"));
}
