//! Several deployments at once on the two-sshd cluster, both launcher generations, with a
//! launcher checkout on each Spark: two solo deployments serve two models at the same
//! time (reached through the proxy's `/v1` by catalog name, repo and alias with the
//! official `openai` SDK); a swap on one leaves the other's vLLM process alone; two solo →
//! one cluster deployment over both hosts → two solo never has two vLLMs on one host.
//! Every assertion reads the world: what answers on each host's port, which fake vLLM
//! processes run in which simulated host (their environment says so).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spark_control::proxy::{self, ProxyConfig, ProxyMetrics};
use tokio_util::sync::CancellationToken;

use crate::harness::cluster::{Cluster, Generation, HEAD, WORKER};
use crate::harness::sshd::free_port;

const QWEN36: &str = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";
const QWEN3VL: &str = "Qwen/Qwen3-VL-30B-A3B-Instruct-FP8";
const GEMMA4: &str = "google/gemma-4-26B-A4B-it";
const BIG: &str = "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8";

/// A port on spark2 for its own deployment's vLLM, not one of its speech services.
fn port2(c: &Cluster) -> u16 {
    loop {
        let p = free_port(WORKER);
        if p != c.stt_port && p != c.tts_port {
            return p;
        }
    }
}

/// The harness's file with three deployments: `coder` (solo on spark1), `vision` (solo on
/// spark2, port `p2`) and `big` (spark1 with spark2 as worker), each with its active model
/// (`None`: `null`).
fn layout(
    c: &Cluster,
    p2: u16,
    coder: Option<&str>,
    vision: Option<&str>,
    big: Option<&str>,
) -> String {
    let text = c.desired(
        "qwen36",
        "models:\n  qwen36: { repo: RedHatAI/Qwen3.6-35B-A3B-NVFP4, aliases: [coder-model] }\n  qwen3-vl: { repo: Qwen/Qwen3-VL-30B-A3B-Instruct-FP8, aliases: [eyes] }\n",
    );
    let start = text.find("cluster:\n").expect("cluster block");
    let end =
        text.find("active_model: qwen36\n").expect("active_model") + "active_model: qwen36\n".len();
    let m = |x: Option<&str>| x.unwrap_or("null").to_string();
    let block = format!(
        "deployments:\n  - name: coder\n    head: spark1\n    port: {p1}\n    launcher: {l1}\n    active_model: {coder}\n  - name: vision\n    head: spark2\n    port: {p2}\n    launcher: {l2}\n    active_model: {vision}\n  - name: big\n    head: spark1\n    workers: [spark2]\n    port: {p1}\n    launcher: {l1}\n    active_model: {big}\n",
        p1 = c.vllm_port,
        l1 = c.launcher_on(HEAD).display(),
        l2 = c.launcher_on(WORKER).display(),
        coder = m(coder),
        vision = m(vision),
        big = m(big),
    );
    format!("{}{block}{}", &text[..start], &text[end..])
}

/// Starts the proxy on 127.0.0.1 in front of the controller's routes.
async fn start_proxy(c: &Cluster) -> (std::net::SocketAddr, CancellationToken) {
    let shutdown = CancellationToken::new();
    let routes = spark_control::routes::spawn(c.handle().status.clone(), shutdown.clone());
    let app = proxy::router(
        routes,
        ProxyConfig::default(),
        Arc::new(ProxyMetrics::new()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, shutdown)
}

/// Per host: (most vLLM processes alive at once, every pid seen).
type Seen = BTreeMap<String, (usize, BTreeSet<u32>)>;

/// Samples, every 25 ms (for at most 10 minutes), the fake vLLM processes (head or
/// headless worker) in each simulated host: the most ever alive at once on one host, and
/// every pid seen per host.
struct HostSampler {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostSampler {
    fn start(c: &Cluster) -> HostSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<Seen>> = Default::default();
        let roots: Vec<(String, String)> = [HEAD, WORKER]
            .iter()
            .map(|ip| (ip.to_string(), c.sim_root(ip).display().to_string()))
            .collect();
        let (s, v) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                for (ip, root) in &roots {
                    let now = crate::harness::cluster::vllm_processes_in(root);
                    if let Ok(mut g) = v.lock() {
                        let e = g.entry(ip.clone()).or_default();
                        e.0 = e.0.max(now.len());
                        e.1.extend(now);
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        HostSampler {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Per host: (most vLLM processes alive at once, every pid seen).
    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// Both solo deployments serve: qwen36 on spark1, qwen3-vl on spark2, one vLLM each.
async fn wait_two_solo(c: &Cluster, p2: u16) {
    c.wait_serving_at(HEAD, c.vllm_port, QWEN36, 120).await;
    c.wait_serving_at(WORKER, p2, QWEN3VL, 120).await;
    assert_eq!(c.vllm_processes_on(HEAD).len(), 1, "one vLLM on spark1");
    assert_eq!(c.vllm_processes_on(WORKER).len(), 1, "one vLLM on spark2");
}

both!(two_solo_deployments_serve_two_models_at_once);
async fn two_solo_deployments_serve_two_models_at_once(g: Generation) {
    let mut c = Cluster::two_heads(300, g);
    let p2 = port2(&c);
    c.write(&layout(&c, p2, Some("qwen36"), Some("qwen3-vl"), None));
    c.start_controller();
    wait_two_solo(&c, p2).await;
    // The status has caught up with the world (routes are derived from it).
    c.wait_status("both deployments observed serving", 30, |s| {
        ["coder", "vision"].iter().all(|n| {
            s.observed
                .deployments
                .get(*n)
                .and_then(|f| f.get())
                .is_some_and(|v| !v.models.is_empty())
        }) && s.plan.steps.is_empty()
    })
    .await;
    // `/api/state`'s resources: one model per deployment, each healthy where it serves.
    let s = c
        .wait_status("both models healthy in the resources", 30, |s| {
            ["coder: qwen36", "vision: qwen3-vl"].iter().all(|n| {
                s.resources.iter().any(|r| {
                    r.kind == "model"
                        && r.name == *n
                        && r.health == spark_control::status::Health::Healthy
                })
            })
        })
        .await;
    let big = s
        .resources
        .iter()
        .find(|r| r.kind == "model" && r.name == "big: (none)")
        .expect("the idle deployment's resource");
    assert_eq!(big.health, spark_control::status::Health::Missing);
    // The connectivity log says each deployment's vLLM came up.
    let events = c
        .handle()
        .events
        .query(&spark_control::events::EventFilter::default());
    for service in ["vllm", "vllm:vision"] {
        assert!(
            events.iter().any(|e| e.service == service && e.ok),
            "no `{service}` up event in {events:?}"
        );
    }
    let (addr, shutdown) = start_proxy(&c).await;
    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="none", timeout=20, max_retries=0)
models = {m.id: m.model_extra for m in c.models.list().data}
assert models["qwen36"]["status"] == "serving" and models["qwen36"]["deployment"] == "coder", models
assert models["qwen3-vl"]["status"] == "serving" and models["qwen3-vl"]["deployment"] == "vision", models
assert models["gemma4"]["status"] == "available", models
for name, want in [("qwen36", "qwen36"), ("RedHatAI/Qwen3.6-35B-A3B-NVFP4", "qwen36"), ("coder-model", "qwen36"),
                   ("qwen3-vl", "qwen3-vl"), ("Qwen/Qwen3-VL-30B-A3B-Instruct-FP8", "qwen3-vl"), ("eyes", "qwen3-vl")]:
    r = c.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    assert r.model == want, (name, r.model)
    assert r.choices[0].message.content == "Hello from the", r
print("SDK OK")
"#;
    crate::harness::openai_sdk(script, format!("http://{addr}/v1")).await;
    shutdown.cancel();
}

both!(a_swap_on_one_deployment_leaves_the_other_alone);
async fn a_swap_on_one_deployment_leaves_the_other_alone(g: Generation) {
    let mut c = Cluster::two_heads(300, g);
    let p2 = port2(&c);
    c.write(&layout(&c, p2, Some("qwen36"), Some("qwen3-vl"), None));
    c.start_controller();
    wait_two_solo(&c, p2).await;
    let vision = c.vllm_processes_on(WORKER);
    let sampler = HostSampler::start(&c);
    c.write(&layout(&c, p2, Some("gemma4"), Some("qwen3-vl"), None));
    c.wait_serving_at(HEAD, c.vllm_port, GEMMA4, 120).await;
    c.wait_status("the swap's operation ended", 30, |s| {
        !s.busy() && s.plan.steps.is_empty()
    })
    .await;
    let seen = sampler.finish();
    // spark2's vLLM is the very process it was: never stopped, never restarted.
    assert_eq!(c.vllm_processes_on(WORKER), vision);
    assert_eq!(
        seen[WORKER].1,
        vision.iter().copied().collect::<BTreeSet<_>>()
    );
    assert_eq!(seen[HEAD].0, 1, "never two vLLMs on spark1: {seen:?}");
    c.wait_serving_at(WORKER, p2, QWEN3VL, 5).await;
}

both!(two_solo_to_one_cluster_and_back_never_two_vllms_on_a_host);
async fn two_solo_to_one_cluster_and_back_never_two_vllms_on_a_host(g: Generation) {
    let mut c = Cluster::two_heads(300, g);
    let p2 = port2(&c);
    c.write(&layout(&c, p2, Some("qwen36"), Some("qwen3-vl"), None));
    c.start_controller();
    wait_two_solo(&c, p2).await;
    let sampler = HostSampler::start(&c);
    // Two solo → one cluster deployment over both hosts.
    c.write(&layout(&c, p2, None, None, Some("qwen3-235b-fp8")));
    c.wait_serving_at(HEAD, c.vllm_port, BIG, 180).await;
    assert!(
        crate::harness::cluster::served_at(WORKER, p2)
            .await
            .is_none(),
        "spark2's solo vLLM is gone"
    );
    assert!(
        c.container_running(WORKER, "vllm_node"),
        "spark2 is the cluster's worker"
    );
    // … and back to two solo deployments.
    c.write(&layout(&c, p2, Some("qwen36"), Some("qwen3-vl"), None));
    wait_two_solo(&c, p2).await;
    let seen = sampler.finish();
    for ip in [HEAD, WORKER] {
        assert!(
            seen.get(ip).is_some_and(|(most, _)| *most == 1),
            "at most one vLLM on {ip} at any time (and one was seen): {seen:?}"
        );
    }
}

both!(an_edit_of_another_deployment_does_not_cancel_a_running_swap);
async fn an_edit_of_another_deployment_does_not_cancel_a_running_swap(g: Generation) {
    let mut c = Cluster::two_heads(300, g);
    let p2 = port2(&c);
    c.write(&layout(&c, p2, Some("qwen36"), Some("qwen3-vl"), None));
    c.start_controller();
    wait_two_solo(&c, p2).await;
    // spark1's next vLLM takes 4 s to load: the swap's wait for ready is under way when
    // the file changes vision's model.
    std::fs::write(c.sim_root(HEAD).join("knobs/startup-delay-ms"), "4000").expect("knob");
    let sampler = HostSampler::start(&c);
    c.write(&layout(&c, p2, Some("gemma4"), Some("qwen3-vl"), None));
    let s = c
        .wait_status("coder's swap waits for gemma4", 60, |s| {
            s.busy()
                && s.operation
                    .as_ref()
                    .is_some_and(|o| o.phase.contains("wait until gemma4"))
        })
        .await;
    let swap_op = s.operation.as_ref().map(|o| o.id).expect("operation");
    c.write(&layout(&c, p2, Some("gemma4"), Some("qwen36"), None));
    c.wait_serving_at(HEAD, c.vllm_port, GEMMA4, 120).await;
    c.wait_serving_at(WORKER, p2, QWEN36, 120).await;
    let seen = sampler.finish();
    let events = c
        .handle()
        .events
        .query(&spark_control::events::EventFilter::default());
    let cancelled = format!("operation {swap_op} cancelled: the desired state changed");
    assert!(
        !events
            .iter()
            .any(|e| e.error.as_deref() == Some(cancelled.as_str())),
        "coder's swap was cancelled by an edit of vision: {events:?}"
    );
    // spark1: the old model and gemma4, launched once; spark2: its old and new model.
    assert_eq!(seen[HEAD].1.len(), 2, "{seen:?}");
    assert_eq!(seen[WORKER].1.len(), 2, "{seen:?}");
    for ip in [HEAD, WORKER] {
        assert_eq!(seen[ip].0, 1, "never two vLLMs on {ip}: {seen:?}");
    }
}

/// `GET /metrics` of the controller's API, as text.
async fn metrics_text(c: &Cluster) -> String {
    use tower::ServiceExt;
    let router =
        spark_control::http::app(spark_control::http::AppState::new(c.handle().clone(), None));
    let req = axum::http::Request::get("/metrics")
        .body(axum::body::Body::empty())
        .expect("request");
    let resp = router.oneshot(req).await.expect("router answers");
    let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
        .await
        .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

both!(telemetry_scrapes_every_deployments_vllm);
async fn telemetry_scrapes_every_deployments_vllm(g: Generation) {
    let mut c = Cluster::two_heads(300, g);
    let p2 = port2(&c);
    c.write(&layout(&c, p2, Some("qwen36"), Some("qwen3-vl"), None));
    c.start_controller();
    wait_two_solo(&c, p2).await;
    // Tokens on coder's vLLM only: its rate goes up, vision's stays 0.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("http://{HEAD}:{}/v1/completions", c.vllm_port);
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let r = http
            .post(&url)
            .json(&serde_json::json!({ "model": QWEN36, "prompt": "hi", "max_tokens": 64 }))
            .send()
            .await
            .expect("completion");
        assert!(r.status().is_success());
        let _ = r.bytes().await;
    }
    let values = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .map(|a| a.iter().filter_map(|p| p[1].as_f64()).collect())
            .unwrap_or_default()
    };
    // Wait (bounded) for a scrape of each vLLM after the load.
    let deadline = Instant::now() + Duration::from_secs(30);
    let t = loop {
        let (s, t) = crate::downloads::api(&c, "GET", "/api/telemetry", None).await;
        assert_eq!(s, 200, "{t}");
        let d = &t["deployments"];
        let coder_busy = values(&d["coder"]["gen_tps"]).iter().any(|v| *v > 0.0);
        let vision_seen = values(&d["vision"]["gen_tps"]).len() >= 2;
        if coder_busy && vision_seen {
            break t;
        }
        assert!(Instant::now() < deadline, "no per-deployment series: {t}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let d = &t["deployments"];
    let vision = values(&d["vision"]["gen_tps"]);
    assert!(vision.iter().all(|v| *v == 0.0), "vision idled: {vision:?}");
    assert!(!values(&d["vision"]["running"]).is_empty(), "{t}");
    // The top-level `vllm` is still the first deployment's.
    assert_eq!(t["vllm"], d["coder"], "{t}");
    // `/metrics`: one series per deployment, labelled by it.
    let text = metrics_text(&c).await;
    for (deployment, model) in [("coder", "qwen36"), ("vision", "qwen3-vl")] {
        let prefix = format!(
            "spark_control_vllm_requests_running{{deployment=\"{deployment}\",model=\"{model}\"}} "
        );
        assert!(
            text.lines().any(|l| l.starts_with(&prefix)),
            "no {prefix:?} in\n{text}"
        );
    }
}

/// A chat request for `model` through the proxy at `addr`: (status, the JSON answer).
async fn ask(addr: std::net::SocketAddr, model: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&serde_json::json!({"model": model, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// A model the file no longer names keeps taking requests while its deployment's swap
/// waits for another deployment's operation (one operation at a time): it still serves,
/// and nothing has begun stopping it. Once its own swap has run, it is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_model_takes_requests_until_its_swap_begins() {
    let mut c = Cluster::two_heads(300, Generation::B);
    let p2 = port2(&c);
    c.write(&layout(&c, p2, Some("qwen36"), Some("qwen3-vl"), None));
    c.start_controller();
    wait_two_solo(&c, p2).await;
    let (addr, stop) = start_proxy(&c).await;
    // coder's next vLLM takes 8 s to load: its swap holds the one operation slot.
    std::fs::write(c.sim_root(HEAD).join("knobs/startup-delay-ms"), "8000").expect("knob");
    c.write(&layout(&c, p2, Some("gemma4"), Some("qwen3-vl"), None));
    c.wait_status("coder's swap waits for gemma4", 60, |s| {
        s.busy()
            && s.operation
                .as_ref()
                .is_some_and(|o| o.phase.contains("wait until gemma4"))
    })
    .await;
    c.write(&layout(&c, p2, Some("gemma4"), Some("qwen36"), None));
    c.wait_status(
        "vision's edit is in force, coder's swap still runs",
        30,
        |s| {
            let vision = s
                .desired
                .as_ref()
                .and_then(|d| d.deployments().get(1).and_then(|x| x.active_model.clone()));
            vision.as_deref() == Some("qwen36")
                && s.operation.as_ref().is_some_and(|o| {
                    o.phase.contains("wait until gemma4") && o.finished_at.is_none()
                })
        },
    )
    .await;
    // vision still serves qwen3-vl and nothing stops it yet: requests reach it.
    let (status, body) = ask(addr, "eyes").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "qwen3-vl", "{body}");
    c.wait_serving_at(WORKER, p2, QWEN36, 120).await;
    let (status, body) = ask(addr, "eyes").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_loaded", "{body}");
    stop.cancel();
}
