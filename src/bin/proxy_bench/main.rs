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

mod load;
mod procs;
mod roles;

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;

use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use load::{drive, merge_stats, LoadClient, Sample};
use procs::{cpu_time, process_tree, write_calls, ChildProc, CpuSplit, Nginx};
use roles::{serve_proxy, serve_upstream};

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
    /// Run the proxy with issue 17's request policies on: the model routed by name
    /// through a catalog table, its deployment `on_request: swap`, and a
    /// `max_concurrent` limit on it (never reached), so every request takes the
    /// admission path; compare with a run without this flag.
    #[arg(long)]
    policies: bool,
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
            runtime.block_on(serve_proxy(base, args.policies))
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
    if args.policies {
        forwarded.push("--policies".into());
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
    let upstream = ChildProc::spawn("upstream", None, None, &[])?;
    let upstream_base = format!("http://127.0.0.1:{}", upstream.port);
    let proxy = ChildProc::spawn(
        "proxy",
        Some(&upstream_base),
        split.as_ref().map(|s| (s, s.proxy.as_str())),
        if args.policies { &["--policies"] } else { &[] },
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
