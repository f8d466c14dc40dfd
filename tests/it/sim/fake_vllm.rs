//! The fake vLLM over real HTTP: shapes, streaming timing, metrics, disconnects, knobs.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use super::{free_port, port_open, sim_bin, wait_until};

const IP: &str = "127.0.0.2";
const MODEL: &str = "org/Sim-Model-FP8";

/// A fake vLLM child process, killed on drop.
struct Fake {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Fake {
    fn start(extra: &[&str]) -> Fake {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("knobs")).expect("knobs dir");
        let port = free_port(IP);
        let child = Command::new(sim_bin())
            .args(["--host", IP, "--port", &port.to_string(), "--model", MODEL])
            .args(extra)
            .arg("--log")
            .arg(dir.path().join("vllm.log"))
            .env("SPARK_SIM_ROOT", dir.path())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn fake-vllm");
        Fake { child, port, dir }
    }
    fn url(&self, path: &str) -> String {
        format!("http://{IP}:{}{path}", self.port)
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vllm.log")).unwrap_or_default()
    }
    fn disconnects(&self) -> PathBuf {
        self.dir.path().join("disconnects.log")
    }
    async fn ready(self) -> Fake {
        let ok = wait_until(Duration::from_secs(10), || {
            self.log().contains("Application startup complete.")
        });
        assert!(ok, "fake vLLM never became ready; log:\n{}", self.log());
        self
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn post(f: &Fake, path: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(f.url(path))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json body"))
}

async fn metric(f: &Fake, name: &str) -> f64 {
    let text = client()
        .get(f.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"));
    assert!(line.contains(&format!("model_name=\"{MODEL}\"")), "{line}");
    line.rsplit(' ')
        .next()
        .expect("value")
        .parse()
        .expect("number")
}

#[tokio::test]
async fn models_lists_the_served_model_in_vllm_shape() {
    let f = Fake::start(&["--startup-delay-ms", "50", "--max-model-len", "8192"])
        .ready()
        .await;
    let v: Value = client()
        .get(f.url("/v1/models"))
        .send()
        .await
        .expect("models")
        .json()
        .await
        .expect("json");
    assert_eq!(v["object"], "list");
    let m = &v["data"][0];
    assert_eq!(m["id"], MODEL);
    assert_eq!(m["object"], "model");
    assert_eq!(m["owned_by"], "vllm");
    assert_eq!(m["root"], MODEL);
    assert_eq!(m["max_model_len"], 8192);
    assert!(m["created"].as_i64().is_some_and(|c| c > 1_600_000_000));
    let health = client().get(f.url("/health")).send().await.expect("health");
    assert_eq!(health.status().as_u16(), 200);
}

/// Real vLLM with `--served-model-name A B C` lists a model card per name in `/v1/models`
/// (`BaseModelPath` per name, same `root`), accepts a request naming any of them and
/// answers with the first in `model`.
#[tokio::test]
async fn several_served_names_are_each_listed_and_each_accepted() {
    let f = Fake::start(&[
        "--startup-delay-ms",
        "50",
        "--served-name",
        "qwen36",
        MODEL,
        "coder",
    ])
    .ready()
    .await;
    let v: Value = client()
        .get(f.url("/v1/models"))
        .send()
        .await
        .expect("models")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, vec!["qwen36", MODEL, "coder"]);
    assert!(v["data"]
        .as_array()
        .expect("data")
        .iter()
        .all(|m| m["root"] == MODEL));
    for name in ["qwen36", MODEL, "coder"] {
        let (status, v) = post(
            &f,
            "/v1/chat/completions",
            json!({"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}),
        )
        .await;
        assert_eq!(status, 200, "{name}: {v}");
        assert_eq!(v["model"], "qwen36", "{name}");
    }
    let (status, _) = post(
        &f,
        "/v1/completions",
        json!({"model": "nope", "prompt": "x"}),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn unknown_model_is_404_with_vllm_error_shape() {
    let f = Fake::start(&["--startup-delay-ms", "50"]).ready().await;
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({"model": "nope", "messages": []}),
        ),
        ("/v1/completions", json!({"model": "nope", "prompt": "x"})),
        ("/v1/embeddings", json!({"model": "nope", "input": "x"})),
    ] {
        let (status, v) = post(&f, path, body).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(v["error"]["type"], "NotFoundError", "{path}: {v}");
        assert_eq!(v["error"]["code"], 404, "{path}");
        assert_eq!(v["error"]["message"], "The model `nope` does not exist.");
    }
}

#[tokio::test]
async fn non_streaming_answers_are_deterministic_json_with_usage() {
    let f = Fake::start(&["--startup-delay-ms", "50", "--token-delay-ms", "1"])
        .ready()
        .await;
    let chat = json!({"model": MODEL, "max_tokens": 4,
                      "messages": [{"role": "user", "content": "say hello please"}]});
    let text = json!({"model": MODEL, "prompt": "once upon a time", "max_tokens": 100});
    // (path, body, object, text pointer, expected text, finish_reason)
    let cases = [
        (
            "/v1/chat/completions",
            chat,
            "chat.completion",
            "/choices/0/message/content",
            "Hello from the simulated",
            "length",
        ),
        (
            "/v1/completions",
            text,
            "text_completion",
            "/choices/0/text",
            "Hello from the simulated DGX Spark; this is a test.",
            "stop",
        ),
    ];
    for (path, body, object, ptr, want, finish) in cases {
        let (status, v) = post(&f, path, body).await;
        assert_eq!(status, 200, "{path}: {v}");
        assert_eq!(v["object"], object, "{path}");
        assert_eq!(v["model"], MODEL);
        assert_eq!(v.pointer(ptr).and_then(Value::as_str), Some(want), "{path}");
        assert_eq!(v["choices"][0]["finish_reason"], finish, "{path}");
        let u = &v["usage"];
        let (p, c, t) = (
            u["prompt_tokens"].as_u64(),
            u["completion_tokens"].as_u64(),
            u["total_tokens"].as_u64(),
        );
        assert!(p.is_some_and(|p| p > 0), "{path}: {u}");
        assert_eq!(Some(p.unwrap_or(0) + c.unwrap_or(0)), t, "{path}: {u}");
    }
}

#[tokio::test]
async fn streamed_chunks_arrive_one_token_at_a_time_separated_by_the_delay() {
    let f = Fake::start(&["--startup-delay-ms", "50", "--token-delay-ms", "150"])
        .ready()
        .await;
    let resp = client()
        .post(f.url("/v1/chat/completions"))
        .json(&json!({"model": MODEL, "stream": true, "max_tokens": 5,
                      "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut frames: Vec<(Instant, String)> = Vec::new();
    while let Some(chunk) = body.next().await {
        buf.push_str(std::str::from_utf8(&chunk.expect("chunk")).expect("utf8"));
        while let Some(end) = buf.find("\n\n") {
            let frame = buf[..end].to_string();
            buf.drain(..end + 2);
            let data = frame
                .strip_prefix("data: ")
                .expect("data: frame")
                .to_string();
            frames.push((Instant::now(), data));
        }
    }
    assert_eq!(frames.last().map(|f| f.1.as_str()), Some("[DONE]"));
    let parsed: Vec<(Instant, Value)> = frames[..frames.len() - 1]
        .iter()
        .map(|(t, d)| (*t, serde_json::from_str(d).expect("chunk json")))
        .collect();
    assert!(parsed
        .iter()
        .all(|(_, v)| v["object"] == "chat.completion.chunk"));
    assert_eq!(parsed[0].1["choices"][0]["delta"]["role"], "assistant");
    let tokens: Vec<(Instant, String)> = parsed
        .iter()
        .filter_map(|(t, v)| {
            let c = v.pointer("/choices/0/delta/content")?.as_str()?;
            (!c.is_empty()).then(|| (*t, c.to_string()))
        })
        .collect();
    let text: String = tokens.iter().map(|t| t.1.as_str()).collect();
    assert_eq!(text, "Hello from the simulated DGX");
    for pair in tokens.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(120),
            "tokens only {gap:?} apart"
        );
    }
    let finish = parsed
        .iter()
        .find_map(|(_, v)| v["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("length"));
    let usage = &parsed.last().expect("usage chunk").1;
    assert_eq!(usage["usage"]["completion_tokens"], 5);
}

#[tokio::test]
async fn metrics_counters_move_when_serving() {
    let f = Fake::start(&["--startup-delay-ms", "50", "--token-delay-ms", "1"])
        .ready()
        .await;
    let before = (
        metric(&f, "vllm:prompt_tokens_total").await,
        metric(&f, "vllm:generation_tokens_total").await,
    );
    let (status, _) = post(
        &f,
        "/v1/completions",
        json!({"model": MODEL, "prompt": "one two three", "max_tokens": 3}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(metric(&f, "vllm:prompt_tokens_total").await, before.0 + 3.0);
    assert_eq!(
        metric(&f, "vllm:generation_tokens_total").await,
        before.1 + 3.0
    );
    assert_eq!(metric(&f, "vllm:num_requests_running").await, 0.0);
    assert!(metric(&f, "vllm:kv_cache_usage_perc").await >= 0.0);
    assert_eq!(metric(&f, "vllm:num_requests_waiting").await, 0.0);
}

#[tokio::test]
async fn a_client_leaving_mid_stream_is_recorded_within_a_second() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = Fake::start(&["--startup-delay-ms", "50", "--token-delay-ms", "2000"])
        .ready()
        .await;
    // A raw socket, so "the client went away" means the TCP connection closed (a
    // dropped reqwest body does not close its connection until the body ends).
    let mut s = tokio::net::TcpStream::connect((IP, f.port))
        .await
        .expect("connect");
    let body = json!({"model": MODEL, "prompt": "hi", "stream": true}).to_string();
    let req = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: {IP}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("data: ") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("first chunk in time")
            .expect("read");
        assert!(n > 0, "server closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(!f.disconnects().exists(), "recorded before the client left");
    drop(s);
    let left = Instant::now();
    let seen = wait_until(Duration::from_secs(1), || f.disconnects().exists());
    assert!(seen, "disconnect not recorded within 1 s");
    let line = std::fs::read_to_string(f.disconnects()).expect("disconnect log");
    assert!(
        line.contains("cmpl-") && line.contains("tokens_sent=1"),
        "{line}"
    );
    eprintln!("disconnect recorded after {:?}", left.elapsed());
}

#[tokio::test]
async fn before_ready_the_port_is_bound_but_requests_wait() {
    let f = Fake::start(&["--startup-delay-ms", "1500"]);
    assert!(
        wait_until(Duration::from_secs(5), || port_open(IP, f.port)),
        "port never bound"
    );
    assert!(!f.log().contains("Application startup complete."));
    let t0 = Instant::now();
    let r = client().get(f.url("/health")).send().await.expect("health");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "answered before ready"
    );
    assert!(f
        .log()
        .trim_end()
        .ends_with("INFO:     Application startup complete."));
}

#[tokio::test]
async fn knobs_fail_completions_and_crash() {
    let f = Fake::start(&["--startup-delay-ms", "50", "--crash-after-s", "1.5"])
        .ready()
        .await;
    std::fs::write(f.dir.path().join("knobs/fail-completions"), "").expect("knob");
    let (status, v) = post(
        &f,
        "/v1/completions",
        json!({"model": MODEL, "prompt": "x"}),
    )
    .await;
    assert_eq!(status, 500, "{v}");
    assert_eq!(v["error"]["type"], "InternalServerError");
    std::fs::remove_file(f.dir.path().join("knobs/fail-completions")).expect("rm knob");
    let (status, _) = post(
        &f,
        "/v1/completions",
        json!({"model": MODEL, "prompt": "x"}),
    )
    .await;
    assert_eq!(status, 200);
    let mut f = f;
    let exited = wait_until(
        Duration::from_secs(5),
        || matches!(f.child.try_wait(), Ok(Some(s)) if !s.success()),
    );
    assert!(exited, "crash knob did not make the server exit non-zero");
    assert!(!port_open(IP, f.port));
}

#[tokio::test]
async fn fail_startup_knob_exits_1_after_an_engine_error() {
    let mut f = Fake::start(&["--startup-delay-ms", "100", "--fail-startup"]);
    let mut status = None;
    let exited = wait_until(Duration::from_secs(5), || {
        status = f.child.try_wait().expect("try_wait");
        status.is_some()
    });
    assert!(exited, "fake vLLM did not exit");
    assert_eq!(status.and_then(|s| s.code()), Some(1));
    assert!(
        f.log().contains("EngineCore failed to start."),
        "{}",
        f.log()
    );
    assert!(!f.log().contains("Application startup complete."));
}

/// The official `openai` Python SDK against the fake. Skipped (loudly) when python3 or
/// the SDK is missing, unless `SPARK_SIM_REQUIRE_OPENAI=1` makes it mandatory.
#[tokio::test]
async fn the_official_openai_python_sdk_works_against_it() {
    let have_sdk = Command::new("python3")
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_sdk {
        assert!(
            std::env::var("SPARK_SIM_REQUIRE_OPENAI").as_deref() != Ok("1"),
            "SPARK_SIM_REQUIRE_OPENAI=1 but `import openai` fails (pip install openai)"
        );
        eprintln!("SKIPPED: python3 with the openai SDK is not installed");
        return;
    }
    let f = Fake::start(&["--startup-delay-ms", "50", "--token-delay-ms", "5"])
        .ready()
        .await;
    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="none", timeout=10, max_retries=0)
m = sys.argv[2]
assert [x.id for x in c.models.list().data] == [m]
r = c.chat.completions.create(model=m, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
assert r.choices[0].message.content == "Hello from the", r
assert r.usage.completion_tokens == 3
parts = [ch.choices[0].delta.content or "" for ch in
         c.chat.completions.create(model=m, messages=[{"role": "user", "content": "hi"}],
                                   stream=True) if ch.choices]
assert "".join(parts) == "Hello from the simulated DGX Spark; this is a test.", parts
t = c.completions.create(model=m, prompt="x", max_tokens=2)
assert t.choices[0].text == "Hello from"
e = c.embeddings.create(model=m, input=["a b", "c"])
assert len(e.data) == 2 and len(e.data[0].embedding) == 16
try:
    c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    raise SystemExit("expected NotFoundError")
except openai.NotFoundError as err:
    assert "does not exist" in str(err)
print("SDK OK")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &f.url("/v1"), MODEL])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("SDK OK"),
        "openai SDK run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
