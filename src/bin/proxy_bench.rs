//! `proxy-bench`: what the `/v1` proxy costs, measured side by side against going direct.
//!
//! Starts a fast fake upstream and the real proxy as two child processes of this binary
//! (so the proxy's RSS and CPU time can be read from `/proc/<pid>`), then drives both with
//! an in-process load generator: direct vs through the proxy, streaming and not, at 1, 16
//! and 64 concurrent clients, interleaved in halves so drift hits both sides alike. Prints
//! a table and a JSON summary. Owns nothing the product uses; must stay bounded in time.
//!
//! Two CPU layouts, each a fresh set of processes:
//! - `shared`: no pinning; generator, upstream and proxy compete for every core (the worst
//!   case, and what a 2-core laptop running everything would see);
//! - `pinned`: the proxy alone on the last core, the generator and the upstream on the
//!   others (`taskset`), the way it is deployed: spark-control on its own box, clients and
//!   vLLM elsewhere. Direct and proxied runs see the same generator/upstream placement; the
//!   proxied side adds one process on a core of its own.
//!
//! Run: `cargo run --release --bin proxy-bench -- [--layout shared|pinned|both]
//! [--requests N] [--soak N] [--quick]`.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use axum::body::Body;
use axum::serve::ListenerExt as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use spark_control::proxy::{self, ProxyConfig, ProxyMetrics, Routes, Upstream};

#[derive(Parser)]
#[command(about = "Benchmark the /v1 proxy against going direct to a fast fake upstream")]
struct Args {
    /// Requests per cell and side (direct, proxy) of the matrix.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Requests through the proxy between the two RSS readings.
    #[arg(long, default_value_t = 100_000)]
    soak: usize,
    /// Modes to run, comma-separated: `non-stream`, `stream`.
    #[arg(long, value_delimiter = ',', default_values_t = ["non-stream".to_string(), "stream".to_string()])]
    modes: Vec<String>,
    /// Concurrent clients per cell, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64])]
    clients: Vec<usize>,
    /// A smoke run under 30 s: 2,000 requests per cell, 10,000 in the soak.
    #[arg(long)]
    quick: bool,
    /// CPU layout: `shared`, `pinned` (needs 2+ cores and `taskset`), or `both` in turn.
    #[arg(long, default_value = "both")]
    layout: String,
    /// Also measure nginx (one worker, keep-alive, no buffering; on the proxy's core when
    /// pinned) in front of the same upstream, as a reference forwarder.
    #[arg(long)]
    nginx: bool,
    /// Internal: run as the fake upstream or the proxy child.
    #[arg(long, hide = true)]
    role: Option<String>,
    /// Internal (generator role): the cores for the proxy, then for everything else.
    #[arg(long, hide = true, num_args = 2)]
    split: Option<Vec<String>>,
    /// Internal: the proxy child's upstream base URL.
    #[arg(long, hide = true)]
    upstream: Option<String>,
}

const CHAT_BODY: &str =
    r#"{"model":"fake","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}"#;
const CHAT_BODY_STREAM: &str = r#"{"model":"fake","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16,"stream":true}"#;
const JSON_ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"fake","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#;
const SSE_CHUNKS: [&str; 4] = [
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.role.is_none() {
        return run_layouts(&args);
    }
    let runtime = tokio::runtime::Runtime::new().context("starting tokio")?;
    match args.role.as_deref() {
        Some("upstream") => runtime.block_on(serve_upstream()),
        Some("proxy") => {
            let base = args
                .upstream
                .clone()
                .context("--role proxy needs --upstream")?;
            runtime.block_on(serve_proxy(base))
        }
        Some("generator") => runtime.block_on(run(args)),
        Some(other) => bail!("unknown role {other}"),
        None => unreachable!("handled above"),
    }
}

/// Runs the generator role once per layout, each with fresh children.
fn run_layouts(args: &Args) -> anyhow::Result<()> {
    let layouts: &[&str] = match args.layout.as_str() {
        "both" => &["shared", "pinned"],
        "shared" => &["shared"],
        "pinned" => &["pinned"],
        other => bail!("unknown layout {other:?} (shared, pinned or both)"),
    };
    let exe = std::env::current_exe()?;
    let mut forwarded = vec![
        "--requests".to_string(),
        args.requests.to_string(),
        "--soak".to_string(),
        args.soak.to_string(),
    ];
    if args.quick {
        forwarded.push("--quick".into());
    }
    if args.nginx {
        forwarded.push("--nginx".into());
    }
    let clients: Vec<String> = args.clients.iter().map(usize::to_string).collect();
    forwarded.extend(["--clients".to_string(), clients.join(",")]);
    forwarded.extend(["--modes".to_string(), args.modes.join(",")]);
    for &layout in layouts {
        let mut cmd = Command::new(&exe);
        cmd.args(&forwarded)
            .args(["--role", "generator", "--layout", layout]);
        if layout == "pinned" {
            let Some(cpus) = CpuSplit::detect() else {
                if layouts.len() == 1 {
                    bail!("the pinned layout needs 2+ cores and taskset");
                }
                eprintln!("proxy-bench: pinned layout skipped (needs 2+ cores and taskset)");
                continue;
            };
            cmd.arg("--split").arg(&cpus.proxy).arg(&cpus.others);
            // The generator (that child) and the upstream it spawns inherit these cores.
            cmd = cpus.wrap(&cpus.others, cmd);
        }
        let status = cmd
            .status()
            .with_context(|| format!("running the {layout} layout"))?;
        if !status.success() {
            bail!("the {layout} layout failed: {status}");
        }
    }
    Ok(())
}

/// The cores of this process, split: the last for the proxy, the rest for everything else.
struct CpuSplit {
    proxy: String,
    others: String,
}

impl CpuSplit {
    fn detect() -> Option<Self> {
        let cores = std::thread::available_parallelism().ok()?.get();
        let taskset_works = Command::new("taskset")
            .args(["-c", "0", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        (cores >= 2 && taskset_works).then(|| CpuSplit {
            proxy: (cores - 1).to_string(),
            others: format!("0-{}", cores - 2),
        })
    }

    /// `cmd` run under `taskset -c <cpus>`.
    fn wrap(&self, cpus: &str, cmd: Command) -> Command {
        let mut wrapped = Command::new("taskset");
        wrapped
            .args(["-c", cpus])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        wrapped
    }
}

async fn listen_and_announce(app: axum::Router) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("PORT {}", listener.local_addr()?.port());
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

/// The fast fake upstream: a fixed JSON answer, or four SSE chunks when `"stream":true`.
async fn serve_upstream() -> anyhow::Result<()> {
    async fn chat(body: Bytes) -> axum::response::Response {
        let streaming = body.windows(13).any(|w| w == b"\"stream\":true");
        let builder = axum::response::Response::builder().status(200);
        let response = if streaming {
            let chunks =
                SSE_CHUNKS.map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c.as_bytes())));
            builder
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(futures::stream::iter(chunks)))
        } else {
            builder
                .header("content-type", "application/json")
                .body(Body::from(JSON_ANSWER))
        };
        response.unwrap_or_default()
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    listen_and_announce(app).await
}

async fn serve_proxy(base: String) -> anyhow::Result<()> {
    let upstream = Upstream::Ready {
        base,
        model: Some("fake".into()),
    };
    let (_tx, rx) = tokio::sync::watch::channel(Routes {
        vllm: upstream,
        ..Routes::default()
    });
    let app = proxy::router(rx, ProxyConfig::default(), Arc::new(ProxyMetrics::new()));
    listen_and_announce(app).await
}

/// A proxied side of the comparison: our proxy, or the nginx reference.
struct Side {
    name: &'static str,
    url: hyper::Uri,
    /// The process (and its children) whose CPU and writes are counted.
    root_pid: u32,
}

/// One side's runs in one cell of the matrix, with its CPU and write counts.
#[derive(Default)]
struct Cell {
    runs: Vec<Sample>,
    cpu: Duration,
    writes: u64,
    wall: Duration,
}

/// A child process of this binary, killed (by its own handle) when dropped.
struct ChildProc {
    child: Child,
    port: u16,
}

impl ChildProc {
    /// Spawns this binary in `role`; `cpus` pins it (else it inherits this process's cores).
    fn spawn(
        role: &str,
        upstream: Option<&str>,
        cpus: Option<(&CpuSplit, &str)>,
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["--role", role]);
        if let Some(u) = upstream {
            cmd.args(["--upstream", u]);
        }
        if let Some((split, set)) = cpus {
            cmd = split.wrap(set, cmd);
        }
        cmd.stdout(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning the {role} child"))?;
        let stdout = child.stdout.take().context("child stdout is piped")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("{role} child said {line:?}, not PORT <n>"))?;
        Ok(ChildProc { child, port })
    }

    fn status_field_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

/// A process and its children (nginx: master and worker), for CPU and write counts.
fn process_tree(pid: u32) -> Vec<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    std::iter::once(pid)
        .chain(children.split_whitespace().filter_map(|c| c.parse().ok()))
        .collect()
}

/// Write-type system calls (`write`, `writev`, …) the processes have made so far.
fn write_calls(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/io"))
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("syscw:"))?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Time on CPU so far, all threads of the processes: the first field of each thread's
/// `/proc/<pid>/task/<tid>/schedstat`, in nanoseconds (not the 10 ms ticks of `stat`,
/// which on a VM charge a process for time its core sat idle).
fn cpu_time(pids: &[u32]) -> Duration {
    let nanos: u64 = pids
        .iter()
        .flat_map(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// nginx as a reference proxy in front of the same upstream (`--nginx`): one worker,
/// keep-alive to the upstream, no buffering either way — the setup a fast C forwarder
/// would be given. Runs in the foreground from a temporary prefix; killed when dropped.
struct Nginx {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Nginx {
    fn spawn(upstream_port: u16, cpus: Option<(&CpuSplit, &str)>) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("proxy-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\ndaemon off;\nmaster_process on;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/b;\n  proxy_temp_path {d}/p;\n\
             fastcgi_temp_path {d}/f;\n  uwsgi_temp_path {d}/u;\n  scgi_temp_path {d}/s;\n\
             upstream up {{ server 127.0.0.1:{upstream_port}; keepalive 512; }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    tcp_nodelay on;\n\
             keepalive_requests 1000000;\n    location / {{\n      proxy_pass http://up;\n\
             proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
             proxy_buffering off;\n      proxy_request_buffering off;\n    }}\n  }}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let mut cmd = Command::new("nginx");
        cmd.arg("-p").arg(&dir).arg("-c").arg(&conf_path);
        if let Some((split, set)) = cpus {
            cmd = split.wrap(set, cmd);
        }
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .context("starting nginx (--nginx needs nginx on PATH: apt-get install nginx)")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nginx did not listen on 127.0.0.1:{port} within 5 s (see {d}/error.log)");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Nginx { child, port, dir })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGKILL to the master leaves its worker behind: ask for a fast shutdown instead.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type LoadClient = Client<HttpConnector, Full<Bytes>>;

/// Latencies of one run, microseconds: whole exchange and time to the first body chunk.
struct Sample {
    total: Vec<u32>,
    first_chunk: Vec<u32>,
    wall: Duration,
    errors: usize,
}

/// `requests` requests from `concurrency` clients against `url`; `stream` picks the body.
async fn drive(
    client: &LoadClient,
    url: &hyper::Uri,
    stream: Option<bool>,
    concurrency: usize,
    requests: usize,
) -> Sample {
    let tickets = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, tickets) = (client.clone(), url.clone(), Arc::clone(&tickets));
            tokio::spawn(async move {
                let mut total = Vec::with_capacity(requests / concurrency + 1);
                let mut first_chunk = Vec::with_capacity(requests / concurrency + 1);
                let mut errors = 0;
                loop {
                    let ticket = tickets.fetch_add(1, Ordering::Relaxed);
                    if ticket >= requests {
                        break;
                    }
                    // `None` alternates, for the soak.
                    let body = match stream.unwrap_or(ticket % 2 == 0) {
                        true => CHAT_BODY_STREAM,
                        false => CHAT_BODY,
                    };
                    let t0 = Instant::now();
                    match exchange(&client, &url, body).await {
                        Some(first) => {
                            total.push(micros(t0.elapsed()));
                            first_chunk.push(micros(first - t0));
                        }
                        None => errors += 1,
                    }
                }
                (total, first_chunk, errors)
            })
        })
        .collect();
    let mut sample = Sample {
        total: Vec::new(),
        first_chunk: Vec::new(),
        wall: Duration::ZERO,
        errors: 0,
    };
    for task in tasks {
        if let Ok((total, first, errors)) = task.await {
            sample.total.extend(total);
            sample.first_chunk.extend(first);
            sample.errors += errors;
        }
    }
    sample.wall = start.elapsed();
    sample
}

/// One request, body read to the end; returns when the first body chunk arrived.
async fn exchange(client: &LoadClient, url: &hyper::Uri, body: &'static str) -> Option<Instant> {
    let request = hyper::Request::post(url.clone())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .ok()?;
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .ok()?
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let mut body = response.into_body();
    let mut first = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.ok()?;
        if first.is_none() && frame.is_data() {
            first = Some(Instant::now());
        }
    }
    first
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)])
}

struct Stats {
    p50: f64,
    p99: f64,
    ttfc_p50: f64,
    ttfc_p99: f64,
    rps: f64,
    errors: usize,
}

fn merge_stats(runs: Vec<Sample>) -> Stats {
    let (mut total, mut first, mut wall, mut errors) = (Vec::new(), Vec::new(), Duration::ZERO, 0);
    for s in runs {
        total.extend(s.total);
        first.extend(s.first_chunk);
        wall += s.wall;
        errors += s.errors;
    }
    total.sort_unstable();
    first.sort_unstable();
    Stats {
        p50: percentile(&total, 50.0),
        p99: percentile(&total, 99.0),
        ttfc_p50: percentile(&first, 50.0),
        ttfc_p99: percentile(&first, 99.0),
        rps: total.len() as f64 / wall.as_secs_f64(),
        errors,
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (requests, soak) = if args.quick {
        (2_000, 10_000)
    } else {
        (args.requests, args.soak)
    };
    let split = args.split.as_deref().and_then(|s| match s {
        [proxy, others] => Some(CpuSplit {
            proxy: proxy.clone(),
            others: others.clone(),
        }),
        _ => None,
    });
    let upstream = ChildProc::spawn("upstream", None, None)?;
    let upstream_base = format!("http://127.0.0.1:{}", upstream.port);
    let proxy = ChildProc::spawn(
        "proxy",
        Some(&upstream_base),
        split.as_ref().map(|s| (s, s.proxy.as_str())),
    )?;
    let nginx = match args.nginx {
        true => Some(Nginx::spawn(
            upstream.port,
            split.as_ref().map(|s| (s, s.proxy.as_str())),
        )?),
        false => None,
    };
    let direct_url: hyper::Uri = format!("{upstream_base}/v1/chat/completions").parse()?;
    let proxy_url: hyper::Uri =
        format!("http://127.0.0.1:{}/v1/chat/completions", proxy.port).parse()?;
    // The proxied sides: ours, then the reference when asked for.
    let mut sides = vec![Side {
        name: "proxy",
        url: proxy_url.clone(),
        root_pid: proxy.child.id(),
    }];
    if let Some(n) = &nginx {
        sides.push(Side {
            name: "nginx",
            url: format!("http://127.0.0.1:{}/v1/chat/completions", n.port).parse()?,
            root_pid: n.child.id(),
        });
    }

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: LoadClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);

    let rss_start = proxy.status_field_kib("VmRSS:");
    for url in std::iter::once(&direct_url).chain(sides.iter().map(|s| &s.url)) {
        let warm = drive(&client, url, None, 16, 2_000).await;
        if warm.errors > 0 || warm.total.is_empty() {
            bail!("warm-up against {url} failed ({} errors)", warm.errors);
        }
    }
    let rss_warm = proxy.status_field_kib("VmRSS:");
    let placement = match &split {
        None => {
            let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
            format!("layout shared: generator, upstream and proxy on the same {cores} core(s)")
        }
        Some(s) => format!(
            "layout pinned: proxy on core {}, generator and upstream on core(s) {}",
            s.proxy, s.others
        ),
    };
    println!("\nproxy-bench: {requests} requests per cell and side, soak {soak}; {placement}");

    let mut rows = Vec::new();
    let proxy_cpu_before = cpu_time(&[proxy.child.id()]);
    let mut proxied = 0usize;
    println!(
        "{:<10} {:>4} {:>5} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>9} {:>9} | {:>9} {:>9} {:>6} | {:>8} {:>5} {:>6}",
        "mode",
        "conc",
        "side",
        "p50 dir",
        "p50 prx",
        "added",
        "p99 dir",
        "p99 prx",
        "added",
        "ttfc dir",
        "ttfc add",
        "rps dir",
        "rps prx",
        "ratio",
        "cpu/req",
        "wr/req",
        "busy"
    );
    for mode in &args.modes {
        let stream = match mode.as_str() {
            "non-stream" => false,
            "stream" => true,
            other => bail!("unknown mode {other:?} (non-stream or stream)"),
        };
        for &concurrency in &args.clients {
            let mut direct = Vec::new();
            let mut cells: Vec<Cell> = sides.iter().map(|_| Cell::default()).collect();
            for _half in 0..2 {
                direct.push(
                    drive(
                        &client,
                        &direct_url,
                        Some(stream),
                        concurrency,
                        requests / 2,
                    )
                    .await,
                );
                for (side, cell) in sides.iter().zip(&mut cells) {
                    let pids = process_tree(side.root_pid);
                    let (cpu0, writes0) = (cpu_time(&pids), write_calls(&pids));
                    let run =
                        drive(&client, &side.url, Some(stream), concurrency, requests / 2).await;
                    cell.cpu += cpu_time(&pids).saturating_sub(cpu0);
                    cell.writes += write_calls(&pids).saturating_sub(writes0);
                    cell.wall += run.wall;
                    cell.runs.push(run);
                }
                proxied += requests / 2;
            }
            let d = merge_stats(direct);
            let mode = if stream { "stream" } else { "non-stream" };
            for (side, cell) in sides.iter().zip(cells) {
                let per_request = (requests / 2 * 2).max(1) as f64;
                let cpu_us = cell.cpu.as_secs_f64() * 1e6 / per_request;
                let writes = cell.writes as f64 / per_request;
                let busy = 100.0 * cell.cpu.as_secs_f64() / cell.wall.as_secs_f64().max(1e-9);
                let p = merge_stats(cell.runs);
                let name = side.name;
                println!(
                    "{mode:<10} {concurrency:>4} {name:>5} | {:>7.0}us {:>7.0}us {:>7.0}us | {:>7.0}us {:>7.0}us {:>7.0}us | {:>7.0}us {:>7.0}us | {:>9.0} {:>9.0} {:>6.3} | {cpu_us:>6.1}us {writes:>5.2} {busy:>5.0}%",
                    d.p50, p.p50, p.p50 - d.p50, d.p99, p.p99, p.p99 - d.p99, d.ttfc_p50, p.ttfc_p50 - d.ttfc_p50, d.rps, p.rps, p.rps / d.rps
                );
                rows.push(json!({
                    "mode": mode, "concurrency": concurrency, "side": name, "requests_per_side": requests,
                    "direct": {"p50_us": d.p50, "p99_us": d.p99, "ttfc_p50_us": d.ttfc_p50, "ttfc_p99_us": d.ttfc_p99, "rps": d.rps, "errors": d.errors},
                    "proxied": {"p50_us": p.p50, "p99_us": p.p99, "ttfc_p50_us": p.ttfc_p50, "ttfc_p99_us": p.ttfc_p99, "rps": p.rps, "errors": p.errors},
                    "added_p50_us": p.p50 - d.p50, "added_p99_us": p.p99 - d.p99,
                    "added_ttfc_p50_us": p.ttfc_p50 - d.ttfc_p50, "added_ttfc_p99_us": p.ttfc_p99 - d.ttfc_p99,
                    "throughput_ratio": p.rps / d.rps,
                    "cpu_us_per_request": cpu_us, "write_calls_per_request": writes,
                    "busy_percent_of_a_core": busy,
                }));
            }
        }
    }
    let proxy_cpu = cpu_time(&[proxy.child.id()]).saturating_sub(proxy_cpu_before);
    let cpu_per_request_us = proxy_cpu.as_secs_f64() * 1e6 / proxied.max(1) as f64;

    let rss_before_soak = proxy.status_field_kib("VmRSS:");
    let soak_run = drive(&client, &proxy_url, None, 64, soak).await;
    let rss_after_soak = proxy.status_field_kib("VmRSS:");
    let soak_rps = soak_run.total.len() as f64 / soak_run.wall.as_secs_f64();
    println!("proxy CPU per proxied request (matrix): {cpu_per_request_us:.1} us (schedstat, all threads)");
    println!(
        "proxy RSS: start {rss_start} KiB, after warm-up {rss_warm} KiB, before soak {rss_before_soak} KiB, after {soak} soak requests {rss_after_soak} KiB (soak: {soak_rps:.0} rps, {} errors)",
        soak_run.errors
    );
    let summary = json!({
        "layout": args.layout,
        "placement": placement,
        "requests_per_cell_and_side": requests,
        "matrix": rows,
        "proxy_cpu_us_per_request": cpu_per_request_us,
        "proxy_rss_kib": {"start": rss_start, "after_warmup": rss_warm, "before_soak": rss_before_soak, "after_soak": rss_after_soak, "soak_requests": soak},
        "soak": {"rps": soak_rps, "errors": soak_run.errors},
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
