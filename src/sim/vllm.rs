//! The fake vLLM server process: flags, knobs, the startup sequence and log, the route
//! table, `/v1/models`, `/health` and `/metrics`. The OpenAI generation endpoints live in
//! `openai.rs`.
//!
//! Startup is modelled on real vLLM (`vllm/entrypoints/openai/api_server.py`, which calls
//! `create_server_socket` *before* building the engine, see vllm-project/vllm#8204): the
//! port is bound and listening immediately, but nothing is accepted until the model has
//! "loaded", so a client that connects early is held in the kernel backlog and its request
//! hangs until ready (clients must use timeouts). Once ready it prints uvicorn's
//! `INFO:     Application startup complete.` and serves.
//!
//! `/v1/models` shape: vLLM's `ModelCard` (`id`, `object`, `created`, `owned_by: "vllm"`,
//! `root`, `parent`, `max_model_len`, `permission[]`). `/metrics` names: vLLM V1 engine
//! (`vllm:num_requests_running`, `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`,
//! `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`,
//! `vllm:request_success_total`) with `engine` and `model_name` labels, as listed in
//! vLLM's `docs/design/metrics.md`.
//!
//! Must not: listen on anything but the `--host` it is given, or write outside its log
//! and the disconnect log.

use std::io::Write;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::openai;
use super::SimError;

/// Flags of `spark-control sim vllm` / `fake-vllm`.
#[derive(Debug, Clone, clap::Args)]
pub struct VllmArgs {
    /// Address to bind (a loopback address in every simulation).
    #[arg(long)]
    pub host: String,
    /// Port to bind.
    #[arg(long)]
    pub port: u16,
    /// The HF repo being served (`root` in `/v1/models`).
    #[arg(long)]
    pub model: String,
    /// `--served-model-name A [B…]`: the ids clients may use (default: the repo). Like
    /// real vLLM, `/v1/models` lists each one and requests may name any of them; responses
    /// and metrics carry the first.
    #[arg(long, num_args = 1..)]
    pub served_name: Vec<String>,
    /// Context length reported as `max_model_len`.
    #[arg(long, default_value_t = 32768)]
    pub max_model_len: u32,
    /// Time "loading the model" before the API serves (knob file: `startup-delay-ms`).
    #[arg(long)]
    pub startup_delay_ms: Option<u64>,
    /// Delay between streamed tokens (knob file `token-delay-ms`, read per request).
    #[arg(long)]
    pub token_delay_ms: Option<u64>,
    /// Exit 1 after this many seconds of serving (knob file `crash-after-s`).
    #[arg(long)]
    pub crash_after_s: Option<f64>,
    /// Print an engine error and exit 1 during startup (knob file `fail-startup`).
    #[arg(long)]
    pub fail_startup: bool,
    /// Answer completions with HTTP 500 (knob file `fail-completions`, read per request).
    #[arg(long)]
    pub fail_completions: bool,
    /// Append the log here instead of printing to stdout.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Per-host simulation state dir; knobs are read from `<root>/knobs/`.
    #[arg(long, env = "SPARK_SIM_ROOT")]
    pub sim_root: Option<PathBuf>,
    /// Where client disconnects mid-stream are recorded (default `<root>/disconnects.log`).
    #[arg(long)]
    pub disconnect_log: Option<PathBuf>,
}

/// Default "model loading" time.
const DEFAULT_STARTUP_DELAY_MS: u64 = 1000;
/// How often the engine stats line is logged.
const STATS_INTERVAL: Duration = Duration::from_secs(5);
/// Default delay between streamed tokens.
const DEFAULT_TOKEN_DELAY_MS: u64 = 20;

/// Reads knob files under `<root>/knobs/`; flags win over files.
#[derive(Debug, Clone)]
pub(crate) struct Knobs {
    dir: Option<PathBuf>,
    token_delay_flag: Option<u64>,
    fail_completions_flag: bool,
}

impl Knobs {
    fn file(&self, name: &str) -> Option<String> {
        let dir = self.dir.as_ref()?;
        std::fs::read_to_string(dir.join(name))
            .ok()
            .map(|s| s.trim().to_string())
    }
    fn number<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.file(name).and_then(|s| s.parse().ok())
    }
    /// Inter-token delay for the next request.
    pub(crate) fn token_delay(&self) -> Duration {
        let ms = self
            .token_delay_flag
            .or_else(|| self.number("token-delay-ms"))
            .unwrap_or(DEFAULT_TOKEN_DELAY_MS);
        Duration::from_millis(ms)
    }
    /// Whether completions answer 500 right now.
    pub(crate) fn fail_completions(&self) -> bool {
        self.fail_completions_flag || self.file("fail-completions").is_some()
    }
}

/// Serving counters; they really move when requests are served.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) running: AtomicI64,
    pub(crate) prompt_tokens: AtomicU64,
    pub(crate) generation_tokens: AtomicU64,
    pub(crate) success: AtomicU64,
}

/// Shared state of the fake server's handlers.
#[derive(Debug)]
pub(crate) struct AppState {
    /// The first served name: what responses and metrics carry.
    pub(crate) served_name: String,
    /// Every served name (`/v1/models` lists each; a request may name any).
    pub(crate) served_names: Vec<String>,
    pub(crate) root: String,
    pub(crate) max_model_len: u32,
    pub(crate) created: i64,
    pub(crate) knobs: Knobs,
    pub(crate) metrics: Metrics,
    pub(crate) disconnect_log: Option<PathBuf>,
}

/// Builds the route table (tests may call it with `oneshot`).
pub(crate) fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/ping", get(|| async { StatusCode::OK }))
        .route(
            "/version",
            get(|| async { Json(json!({"version": VLLM_VERSION})) }),
        )
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .with_state(state)
}

/// The vLLM version the fake pretends to be.
const VLLM_VERSION: &str = "0.11.0";

async fn models(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let card = |id: &str| {
        json!({
            "id": id,
            "object": "model",
            "created": st.created,
            "owned_by": "vllm",
            "root": st.root,
            "parent": null,
            "max_model_len": st.max_model_len,
            "permission": [{
                "id": format!("modelperm-{:032x}", st.created),
                "object": "model_permission",
                "created": st.created,
                "allow_create_engine": false,
                "allow_sampling": true,
                "allow_logprobs": true,
                "allow_search_indices": false,
                "allow_view": true,
                "allow_fine_tuning": false,
                "organization": "*",
                "group": null,
                "is_blocking": false
            }]
        })
    };
    let data: Vec<serde_json::Value> = st.served_names.iter().map(|n| card(n)).collect();
    Json(json!({ "object": "list", "data": data }))
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let m = &st.metrics;
    let labels = format!("engine=\"0\",model_name=\"{}\"", st.served_name);
    let running = m.running.load(Ordering::Relaxed).max(0);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, extra: &str, value: f64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{labels}{extra}}} {value:?}\n"
        ));
    };
    metric(
        "vllm:num_requests_running",
        "gauge",
        "Number of requests in model execution batches.",
        "",
        running as f64,
    );
    metric(
        "vllm:num_requests_waiting",
        "gauge",
        "Number of requests waiting to be processed.",
        "",
        0.0,
    );
    metric(
        "vllm:kv_cache_usage_perc",
        "gauge",
        "KV-cache usage. 1 means 100 percent usage.",
        "",
        (running as f64 * 0.05).min(1.0),
    );
    metric(
        "vllm:prompt_tokens_total",
        "counter",
        "Number of prefill tokens processed.",
        "",
        m.prompt_tokens.load(Ordering::Relaxed) as f64,
    );
    metric(
        "vllm:generation_tokens_total",
        "counter",
        "Number of generation tokens processed.",
        "",
        m.generation_tokens.load(Ordering::Relaxed) as f64,
    );
    metric(
        "vllm:request_success_total",
        "counter",
        "Count of successfully processed requests.",
        ",finished_reason=\"stop\"",
        m.success.load(Ordering::Relaxed) as f64,
    );
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}

/// Appends vLLM-style log lines to the log file or stdout.
struct Logger {
    file: Option<PathBuf>,
}

impl Logger {
    fn line(&self, text: &str) {
        let line = format!("{text}\n");
        let written = match &self.file {
            Some(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes())),
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
        };
        // A log we cannot write is not a reason to stop serving.
        let _ = written;
    }
    fn info(&self, src: &str, text: &str) {
        let ts = chrono::Utc::now().format("%m-%d %H:%M:%S");
        self.line(&format!("INFO {ts} [{src}] {text}"));
    }
    fn error(&self, src: &str, text: &str) {
        let ts = chrono::Utc::now().format("%m-%d %H:%M:%S");
        self.line(&format!("ERROR {ts} [{src}] {text}"));
    }
}

fn knob_file(root: &Option<PathBuf>, name: &str) -> Option<String> {
    let dir = root.as_ref()?.join("knobs");
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Runs the fake vLLM until SIGTERM/SIGINT, the crash knob, or a startup failure.
pub async fn serve(args: VllmArgs) -> Result<(), SimError> {
    let log = Logger {
        file: args.log.clone(),
    };
    let root = args.sim_root.clone();
    let startup_delay = args
        .startup_delay_ms
        .or_else(|| knob_file(&root, "startup-delay-ms").and_then(|s| s.parse().ok()))
        .unwrap_or(DEFAULT_STARTUP_DELAY_MS);
    let crash_after = args
        .crash_after_s
        .or_else(|| knob_file(&root, "crash-after-s").and_then(|s| s.parse().ok()));
    let fail_startup = args.fail_startup || knob_file(&root, "fail-startup").is_some();
    let served: Vec<String> = if args.served_name.is_empty() {
        vec![args.model.clone()]
    } else {
        args.served_name.clone()
    };
    let addr = format!("{}:{}", args.host, args.port);

    log.info(
        "api_server.py:1885",
        &format!("vLLM API server version {VLLM_VERSION}"),
    );
    log.info(
        "utils.py:326",
        &format!(
            "non-default args: {{'model_tag': '{m}', 'host': '{h}', 'port': {p}, 'model': '{m}', 'max_model_len': {l}, 'served_model_name': ['{s}']}}",
            m = args.model,
            h = args.host,
            p = args.port,
            l = args.max_model_len,
            s = served.join("', '")
        ),
    );
    // Bind first, like vLLM (the port is taken before the engine starts).
    let std_listener = StdListener::bind(&addr).map_err(|source| SimError::Bind {
        addr: addr.clone(),
        source,
    })?;
    log.info(
        "model.py:547",
        "Resolved architecture: Qwen3ForCausalLM (simulated)",
    );
    log.info(
        "gpu_model_runner.py:2338",
        &format!("Starting to load model {}...", args.model),
    );
    let half = Duration::from_millis(startup_delay / 2);
    tokio::time::sleep(half).await;
    if fail_startup {
        let why = knob_file(&root, "fail-startup")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "CUDA out of memory. Tried to allocate 2.00 GiB".to_string());
        log.error("core.py:708", "EngineCore failed to start.");
        log.error("core.py:708", &format!("torch.OutOfMemoryError: {why}"));
        log.line("RuntimeError: Engine core initialization failed. See root cause above.");
        return Err(SimError::StartupFailed(why));
    }
    log.line(
        "Loading safetensors checkpoint shards: 100% Completed | 2/2 [00:01<00:00,  1.10it/s]",
    );
    log.info(
        "gpu_model_runner.py:2392",
        "Model loading took 20.94 GiB and 1.8 seconds",
    );
    tokio::time::sleep(Duration::from_millis(startup_delay) - half).await;
    log.info(
        "kv_cache_utils.py:1087",
        "GPU KV cache size: 1,048,576 tokens",
    );
    log.info(
        "api_server.py:1680",
        &format!("Starting vLLM API server 0 on http://{addr}"),
    );
    log.info("launcher.py:29", "Available routes are:");
    for route in [
        "/health",
        "/metrics",
        "/v1/models",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
    ] {
        log.info("launcher.py:37", &format!("Route: {route}"));
    }
    std_listener
        .set_nonblocking(true)
        .map_err(|source| SimError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let listener =
        tokio::net::TcpListener::from_std(std_listener).map_err(|source| SimError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let state = Arc::new(AppState {
        served_name: served[0].clone(),
        served_names: served,
        root: args.model.clone(),
        max_model_len: args.max_model_len,
        created: chrono::Utc::now().timestamp(),
        knobs: Knobs {
            dir: root.as_ref().map(|r| r.join("knobs")),
            token_delay_flag: args.token_delay_ms,
            fail_completions_flag: args.fail_completions,
        },
        metrics: Metrics::default(),
        disconnect_log: args
            .disconnect_log
            .clone()
            .or_else(|| root.as_ref().map(|r| r.join("disconnects.log"))),
    });
    log.line(&format!(
        "INFO:     Started server process [{}]",
        std::process::id()
    ));
    log.line("INFO:     Waiting for application startup.");
    log.line("INFO:     Application startup complete.");

    let crash = async move {
        match crash_after {
            Some(secs) if secs >= 0.0 => {
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                true
            }
            _ => std::future::pending().await,
        }
    };
    // Like vLLM's periodic stats line; it also makes a foreground launcher whose
    // terminal went away notice (its next write fails), as the real one does.
    let stats_state = state.clone();
    let stats = async move {
        let mut tick = tokio::time::interval(STATS_INTERVAL);
        tick.tick().await;
        loop {
            tick.tick().await;
            let m = &stats_state.metrics;
            log.info(
                "loggers.py:123",
                &format!(
                    "Engine 000: Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 0.0 tokens/s, Running: {} reqs, Waiting: 0 reqs, GPU KV cache usage: 0.0%, Prefix cache hit rate: 0.0% (totals: prompt {} gen {})",
                    m.running.load(Ordering::Relaxed).max(0),
                    m.prompt_tokens.load(Ordering::Relaxed),
                    m.generation_tokens.load(Ordering::Relaxed)
                ),
            );
        }
    };
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(shutdown_signal());
    let log = Logger {
        file: args.log.clone(),
    };
    tokio::select! {
        _ = stats => Ok(()),
        res = server => {
            log.line("INFO:     Shutting down");
            log.line("INFO:     Application shutdown complete.");
            res.map_err(|source| SimError::Bind { addr, source })
        }
        _ = crash => {
            log.error("core.py:838", "EngineCore encountered a fatal error (simulated crash).");
            Err(SimError::StartupFailed("engine core died (crash knob)".to_string()))
        }
    }
}

/// Resolves on SIGTERM or SIGINT (docker stop sends SIGTERM).
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Appends one line to `path` (used for the disconnect record).
pub(crate) fn append_line(path: &Path, line: &str) {
    let res = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    // Recording is best-effort; a failure shows up as a missing line in tests.
    let _ = res;
}

/// The fake vLLM run as `vllm serve <model> [flags…]` — the way the launcher starts the
/// real one inside its container (the simulator links `vllm` to this binary). Reads the
/// flags the real CLI has that the simulation needs (`--host`, `--port`,
/// `--served-model-name A [B…]`, `--max-model-len`, `--headless`) and ignores the rest, so
/// every argument reaches the process's argv exactly as the launcher passed it. `0.0.0.0`
/// binds the simulated host's own loopback address. Like real vLLM, a model that is not in
/// the Hugging Face cache cannot load here (the simulated Sparks have no internet): it
/// prints the error and exits 1. A `--headless` (worker) process serves no HTTP.
pub async fn cli(argv: Vec<String>) -> Result<(), SimError> {
    let bad = |m: String| SimError::StartupFailed(m);
    let mut argv = argv;
    if !argv.is_empty() {
        argv.remove(0);
    }
    let mut it = argv.into_iter().peekable();
    if it.next().as_deref() != Some("serve") {
        return Err(bad("usage: vllm serve <model> [options] (simulator)".into()));
    }
    let model = it
        .next()
        .ok_or_else(|| bad("vllm serve: a model is required".into()))?;
    let mut host = "0.0.0.0".to_string();
    let mut port: u16 = 8000;
    let mut served: Vec<String> = Vec::new();
    let mut max_model_len = 32768;
    let mut headless = false;
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let value = |it: &mut std::iter::Peekable<std::vec::IntoIter<String>>| {
            inline.clone().or_else(|| it.next()).unwrap_or_default()
        };
        match flag.as_str() {
            "--host" => host = value(&mut it),
            "--port" => {
                port = value(&mut it)
                    .parse()
                    .map_err(|_| bad("--port: not a port".into()))?
            }
            "--max-model-len" => max_model_len = value(&mut it).parse().unwrap_or(max_model_len),
            "--headless" => headless = true,
            "--served-model-name" => {
                if let Some(v) = inline {
                    served.push(v);
                } else {
                    while let Some(n) = it.peek() {
                        if n.starts_with('-') {
                            break;
                        }
                        served.extend(it.next());
                    }
                }
            }
            _ => {}
        }
    }
    let sim_ip = std::env::var("SPARK_SIM_IP").unwrap_or_else(|_| "127.0.0.1".into());
    if host == "0.0.0.0" {
        host = sim_ip;
    }
    if !in_hf_cache(&model) {
        println!("(APIServer pid={}) OSError: We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the cached files. Check your internet connection or see how to run the library in offline mode at 'https://huggingface.co/docs/transformers/installation#offline-mode'. ({model} is not in {})", std::process::id(), hf_home().display());
        return Err(bad(format!("{model} is not in the Hugging Face cache")));
    }
    if headless {
        println!("INFO vLLM headless worker for {model}: waiting for the head");
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
    let args = VllmArgs {
        host,
        port,
        model: model.clone(),
        served_name: served,
        max_model_len,
        startup_delay_ms: None,
        token_delay_ms: None,
        crash_after_s: None,
        fail_startup: false,
        fail_completions: false,
        log: None,
        sim_root: std::env::var_os("SPARK_SIM_ROOT").map(PathBuf::from),
        disconnect_log: None,
    };
    serve(args).await
}

fn hf_home() -> PathBuf {
    std::env::var_os("HF_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/huggingface")
        })
}

/// A snapshot with weights and no partial files, as `hf download` leaves it.
fn in_hf_cache(repo: &str) -> bool {
    let dir = hf_home()
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")))
        .join("snapshots");
    let Ok(snaps) = std::fs::read_dir(&dir) else {
        return false;
    };
    let mut weights = false;
    for s in snaps.flatten() {
        for f in std::fs::read_dir(s.path()).into_iter().flatten().flatten() {
            let n = f.file_name().to_string_lossy().into_owned();
            if n.ends_with(".incomplete") {
                return false;
            }
            weights |= n.ends_with(".safetensors");
        }
    }
    weights
}
