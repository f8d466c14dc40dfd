//! Request-triggered swaps, the drain before a swap, idle unload and per-model limits, on
//! the whole product (`app::start`: loop, API and `/v1` proxy) over the two-sshd cluster,
//! with the official `openai` Python SDK as the client. What is asserted is the world: the
//! desired file's text, which vLLM serves on the head, what the client received.

use std::time::{Duration, Instant};

use crate::harness::cluster::{Cluster, Generation, HEAD};

const QWEN36: &str = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";
const GEMMA4: &str = "google/gemma-4-26B-A4B-it";

/// The harness's file with one deployment `main` (spark1 + spark2) in the `deployments:`
/// shape, `policy` lines added to it, and `proxy` settings.
fn file(c: &Cluster, active: &str, policy: &str, proxy: &str) -> String {
    let text = c.desired(active, proxy);
    let start = text.find("cluster:\n").expect("cluster block");
    let line = format!("active_model: {active}\n");
    let end = text.find(&line).expect("active_model") + line.len();
    let block = format!(
        "deployments:\n  # the one deployment: keep this comment\n  - name: main\n    head: spark1\n    workers: [spark2]\n    port: {}\n    launcher: {}\n{policy}    active_model: {active}\n",
        c.vllm_port,
        c.launcher.display()
    );
    format!("{}{block}{}", &text[..start], &text[end..])
}

/// Runs a Python script with the `openai` SDK against `http://addr/v1`; its stdout.
async fn python(script: &'static str, addr: std::net::SocketAddr) -> String {
    crate::harness::openai_sdk(script, format!("http://{addr}/v1")).await
}

/// `/metrics` of the server at `addr`.
async fn metrics(addr: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

fn desired_text(c: &Cluster) -> String {
    std::fs::read_to_string(c.desired_path()).expect("read desired")
}

/// A streaming chat request for `model` through the proxy, read to its end in the
/// background: (status, every byte of the body).
fn stream(
    addr: std::net::SocketAddr,
    model: &str,
    max_tokens: u32,
) -> tokio::task::JoinHandle<(u16, String)> {
    let body = serde_json::json!({
        "model": model, "stream": true, "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "tell me a long story"}],
    });
    tokio::spawn(async move {
        let r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .post(format!("http://{addr}/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, text)
    })
}

both!(a_request_for_another_model_swaps_the_deployment_to_it);
/// `on_request: swap`: 20 concurrent SDK requests for gemma4 while qwen36 serves all get
/// gemma4's answer; the file now names gemma4 (its comments kept); a qwen36 stream begun
/// before the swap ends whole; the event log says who asked.
async fn a_request_for_another_model_swaps_the_deployment_to_it(g: Generation) {
    let mut c = Cluster::with_launcher(300, g);
    c.write(&file(
        &c,
        "qwen36",
        "    on_request: swap\n",
        "proxy: { drain_grace_secs: 30 }\n",
    ));
    let addr = c.start_app().await;
    c.wait_serving(QWEN36, 90).await;
    // A stream for the old model, running when the swap is asked for, about 15 s long
    // (the fake's 12 tokens, 1.25 s apart): longer than the swap takes to reach its stop
    // plus `docker stop`'s grace before its SIGKILL, so only the drain lets it end whole.
    c.knob("token-delay-ms", Some("1250"));
    let old = stream(addr, "qwen36", 12);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let script = r#"
import sys, threading, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="none", timeout=120, max_retries=0)
out = [None] * 20
def ask(i):
    try:
        r = c.chat.completions.create(model="gemma4", messages=[{"role": "user", "content": "hi %d" % i}], max_tokens=2)
        out[i] = r.model
    except Exception as e:
        out[i] = "error: %r" % e
ts = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
for t in ts: t.start()
for t in ts: t.join()
bad = [x for x in out if x != "gemma4"]
assert not bad, out
print("SDK OK")
"#;
    // What the operation says while the old stream holds the stop back.
    let status_rx = c.handle().status.clone();
    let phases = tokio::spawn(async move {
        let mut seen = Vec::new();
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            if let Some(op) = status_rx.borrow().operation.as_ref() {
                if op.phase.contains("draining") && !seen.contains(&op.phase) {
                    seen.push(op.phase.clone());
                }
            }
            if !seen.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    });
    let asked = Instant::now();
    python(script, addr).await;
    let phases = phases.await.expect("phases");
    assert!(
        phases
            .iter()
            .any(|p| p.contains("stop qwen36") && p.ends_with("— draining 1 request")),
        "{phases:?}"
    );
    let (status, body) = old.await.expect("old stream");
    assert_eq!(status, 200);
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    assert!(!body.contains("event: error"), "{body}");
    // The file says what runs: gemma4 on main, the comment kept.
    let text = desired_text(&c);
    assert!(text.contains("    active_model: gemma4\n"), "{text}");
    assert!(
        text.contains("# the one deployment: keep this comment"),
        "{text}"
    );
    assert_eq!(
        crate::harness::cluster::served_now(c.vllm_port),
        vec![GEMMA4.to_string()]
    );
    // Who asked is on record.
    let events = c.handle().events.query(&Default::default());
    let swap = events
        .iter()
        .find(|e| e.source == "proxy" && e.service == "main")
        .expect("a swap event");
    let what = swap.error.clone().unwrap_or_default();
    assert!(
        what.contains("activate `gemma4`") && what.contains("chat_completions"),
        "{what}"
    );
    eprintln!(
        "20 queued requests served {:?} after asking",
        asked.elapsed()
    );
}

/// With `on_request: off` (the default) nothing changes: 404 `model_not_loaded`, the file
/// untouched. With `proxy.max_concurrent`, a request past the limit gets 429 with
/// `Retry-After`, then the limit frees up when the first ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_means_no_swap_and_limits_answer_429() {
    let mut c = Cluster::with_launcher(300, Generation::B);
    c.write(&file(
        &c,
        "qwen36",
        "",
        "proxy: { max_concurrent: { qwen36: 1 } }\n",
    ));
    let addr = c.start_app().await;
    c.wait_serving(QWEN36, 90).await;
    let before = desired_text(&c);
    c.knob("token-delay-ms", Some("1000"));
    let first = stream(addr, "coder-not-an-alias-qwen36", 1);
    let (status, _) = first.await.expect("join");
    assert_eq!(status, 404, "an unknown name is still 404");
    let long = stream(addr, "qwen36", 20);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="none", timeout=30, max_retries=0)
try:
    c.chat.completions.create(model="qwen36", messages=[{"role": "user", "content": "x"}], max_tokens=2)
    raise SystemExit("expected 429")
except openai.RateLimitError as err:
    assert err.response.headers.get("retry-after"), err.response.headers
    assert err.code == "rate_limit_exceeded", err.code
try:
    c.chat.completions.create(model="gemma4", messages=[{"role": "user", "content": "x"}])
    raise SystemExit("expected NotFoundError")
except openai.NotFoundError as err:
    assert err.code == "model_not_loaded", err.code
print("SDK OK")
"#;
    python(script, addr).await;
    let (status, body) = long.await.expect("join");
    assert_eq!(status, 200);
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    // The limit is free again.
    let (status, _) = stream(addr, "qwen36", 1).await.expect("join");
    assert_eq!(status, 200);
    assert_eq!(
        desired_text(&c),
        before,
        "on_request: off never writes the file"
    );
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("spark_control_limited_total 1"),
        "{metrics}"
    );
}

/// Past `proxy.swap_queue`, a request for the model being swapped in gets 503 with
/// `Retry-After` and OpenAI's error shape; the others are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_swap_queue_answers_503_with_retry_after() {
    let mut c = Cluster::with_launcher(1500, Generation::A);
    c.write(&file(
        &c,
        "qwen36",
        "    on_request: swap\n",
        "proxy: { swap_queue: 3 }\n",
    ));
    let addr = c.start_app().await;
    c.wait_serving(QWEN36, 90).await;
    let script = r#"
import sys, threading, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="none", timeout=120, max_retries=0)
out = [None] * 8
def ask(i):
    try:
        r = c.chat.completions.create(model="gemma4", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        out[i] = "ok " + r.model
    except openai.APIStatusError as e:
        body = e.response.json()
        out[i] = "%d %s %s %s" % (e.status_code, e.response.headers.get("retry-after"), body["error"]["code"], body["error"]["type"])
ts = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
ok = [x for x in out if x == "ok gemma4"]
full = [x for x in out if x == "503 10 swap_queue_full server_error"]
assert len(ok) == 3 and len(full) == 5, out
print("SDK OK")
"#;
    python(script, addr).await;
    assert!(desired_text(&c).contains("    active_model: gemma4\n"));
    let m = metrics(addr).await;
    assert!(
        m.contains("spark_control_swap_queue_refused_total 5\n"),
        "{m}"
    );
    assert!(
        m.contains("spark_control_swap_wait_seconds_count 3\n"),
        "{m}"
    );
}

/// A stream still running when the drain's grace ends is ended with exactly one SSE
/// `error` event; the operation's log said it was draining.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_the_grace_ends_with_one_error_event() {
    let mut c = Cluster::with_launcher(300, Generation::B);
    c.write(&file(&c, "qwen36", "", "proxy: { drain_grace_secs: 1 }\n"));
    let addr = c.start_app().await;
    c.wait_serving(QWEN36, 90).await;
    c.knob("token-delay-ms", Some("1000"));
    // The fake's 12 tokens a second apart: 12 s, far past the grace.
    let long = stream(addr, "qwen36", 12);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let cut_asked = Instant::now();
    c.write(&file(&c, "gemma4", "", "proxy: { drain_grace_secs: 1 }\n"));
    let (status, body) = long.await.expect("join");
    let cut_after = cut_asked.elapsed();
    assert_eq!(status, 200);
    assert_eq!(body.matches("event: error").count(), 1, "{body}");
    assert!(body.contains("stream_cut_by_swap"), "{body}");
    let last = body.trim_end().lines().last().unwrap_or("");
    assert!(
        last.starts_with("data: {\"error\"") && last.contains("stream_cut_by_swap"),
        "the error event is the last thing sent: {body}"
    );
    assert!(cut_after < Duration::from_secs(11), "{cut_after:?}");
    c.knob("token-delay-ms", None);
    c.wait_serving(GEMMA4, 90).await;
    let log = c.log_tail(400);
    assert!(log.contains("draining 1 request"), "{log}");
    assert!(log.contains("ended with an error event"), "{log}");
    let m = metrics(addr).await;
    assert!(m.contains("spark_control_cut_streams_total 1\n"), "{m}");
    assert!(
        m.contains("spark_control_swaps_total{cause=\"file\"} 1\n"),
        "{m}"
    );
}

/// `idle_unload_after`: with no request for that long, the file's `active_model` becomes
/// `null` (comments kept) and the model is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_deployment_is_unloaded_by_an_edit() {
    let mut c = Cluster::with_launcher(300, Generation::B);
    c.write(&file(&c, "qwen36", "    idle_unload_after: 3s\n", ""));
    let addr = c.start_app().await;
    c.wait_serving(QWEN36, 90).await;
    // A request keeps it: 2 s later it still serves.
    let (status, _) = stream(addr, "qwen36", 1).await.expect("join");
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(desired_text(&c).contains("    active_model: qwen36\n"));
    let t = Instant::now() + Duration::from_secs(60);
    while !desired_text(&c).contains("    active_model: null\n") && Instant::now() < t {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = desired_text(&c);
    assert!(text.contains("    active_model: null\n"), "{text}");
    assert!(
        text.contains("# the one deployment: keep this comment"),
        "{text}"
    );
    c.wait_status("nothing serves", 60, |s| {
        s.plan.complete && s.plan.steps.is_empty() && !s.busy()
    })
    .await;
    assert!(crate::harness::cluster::served_at(HEAD, c.vllm_port)
        .await
        .is_none());
}

/// An edit in the UI (the API) during a request-triggered swap wins: the file names the
/// edit's model, and the waiting request gets 409 saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_during_a_request_triggered_swap_wins() {
    let mut c = Cluster::with_launcher(300, Generation::B);
    c.write(&file(&c, "qwen36", "    on_request: swap\n", ""));
    let addr = c.start_app().await;
    c.wait_serving(QWEN36, 90).await;
    // gemma4 loads slowly: the edit lands while the request waits.
    c.knob("startup-delay-ms", Some("6000"));
    let waiting = stream(addr, "gemma4", 2);
    let t = Instant::now() + Duration::from_secs(30);
    while !desired_text(&c).contains("    active_model: gemma4\n") && Instant::now() < t {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(desired_text(&c).contains("    active_model: gemma4\n"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("http://{addr}/api/desired/edit"))
        .header("origin", format!("http://{addr}"))
        .json(&serde_json::json!({"op": "set_deployment_model", "deployment": "main", "model": "qwen3-vl"}))
        .send()
        .await
        .expect("edit");
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let (status, body) = waiting.await.expect("join");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("swap_superseded"), "{body}");
    assert!(body.contains("no longer names it"), "{body}");
    assert!(desired_text(&c).contains("    active_model: qwen3-vl\n"));
    let m = metrics(addr).await;
    for cause in ["request", "ui"] {
        let line = format!("spark_control_swaps_total{{cause=\"{cause}\"}} 1\n");
        assert!(m.contains(&line), "{line}: {m}");
    }
    assert!(
        m.contains("spark_control_swaps_total{cause=\"file\"} 0\n"),
        "{m}"
    );
}
