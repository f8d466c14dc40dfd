//! The `spark-control` command line: a thin shell over the library.
//!
//! Owns argument parsing, exit codes and printing. Everything else lives in the library.
//!
//! Exit codes: 0 success; 1 a failure (an invalid desired file, a runtime error such as a
//! busy port or an unreadable token file); 2 a usage error (clap's, for an unknown flag or a
//! bad value); 130 a second Ctrl-C/SIGTERM that did not wait for a safe point.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use spark_control::app::{self, ServeOptions};
use spark_control::edit::{self, DesiredStore};
use spark_control::logging::LogFormat;
use spark_control::model::{self, Observed, Severity};
use spark_control::{demo, plan, sim};

/// Shown after `--help`: what the exit codes mean and the variables read without a flag.
const AFTER_HELP: &str = "\
Exit status:
  0    success
  1    failure: an invalid desired file, or a runtime error (busy port, unreadable file, ...)
  2    usage error: unknown flag or subcommand, bad value
  130  a second Ctrl-C or SIGTERM ended `serve`/`demo` without waiting for a safe point

Environment (besides the [env: ...] of each flag):
  RUST_LOG      log filter, e.g. `info,spark_control::remote=debug` (default: info)
  NO_COLOR      when set and not empty, text logs have no colour (they have colour only on a terminal)
  HF_ENDPOINT   the Hugging Face Hub asked for repo sizes (default: the public Hub)
  HF_TOKEN      token for the Hub
  NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID
                set by systemd for `Type=notify` units: `serve` reports READY=1, pings
                the watchdog at half of WATCHDOG_USEC, and reports STOPPING=1";

/// The control plane for a small vLLM cluster of NVIDIA DGX Spark boxes.
#[derive(Parser)]
#[command(name = "spark-control", version, about, after_help = AFTER_HELP)]
struct Cli {
    /// Log format on stderr: `text` for people, `json` for collectors (one object per line).
    #[arg(
        long,
        global = true,
        env = "SPARK_CONTROL_LOG_FORMAT",
        value_enum,
        ignore_case = true,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check desired-state files; exit 1 with FILE:LINE:COL errors when any is invalid.
    Validate {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the JSON schema of the desired-state file.
    Schema,
    /// Print the plan that would converge OBSERVED towards DESIRED (a git-ops preview).
    Plan {
        /// The desired-state file.
        #[arg(long)]
        desired: PathBuf,
        /// An observed state, as JSON or YAML (the shape `/api/state` reports as `observed`).
        #[arg(long)]
        observed: PathBuf,
        /// Print the plan as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the controller: watch the desired file, converge the Sparks, serve the UI/API.
    Serve {
        /// The desired-state file (created, unconfigured, if missing).
        #[arg(
            long,
            env = "SPARK_CONTROL_DESIRED",
            default_value = "state/desired.yaml"
        )]
        desired: PathBuf,
        /// Data dir: SSH identity, known_hosts, event log, download jobs.
        #[arg(long, env = "SPARK_CONTROL_DATA_DIR", default_value = "state")]
        data_dir: PathBuf,
        /// Address to listen on (the container and StartOS use 0.0.0.0:9999).
        #[arg(long, env = "SPARK_CONTROL_LISTEN", default_value = "127.0.0.1:9999")]
        listen: SocketAddr,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Run everything on two simulated Sparks on this machine (no hardware needed).
    Demo {
        /// Scratch directory for the simulation and its desired file.
        #[arg(long, default_value = "state/demo")]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9999")]
        listen: SocketAddr,
        /// vLLM port on the simulated head.
        #[arg(long, default_value_t = 8888)]
        vllm_port: u16,
        /// Parakeet (STT) port on the simulated worker.
        #[arg(long, default_value_t = 8000)]
        stt_port: u16,
        /// Magpie (TTS) port on the simulated worker.
        #[arg(long, default_value_t = 9000)]
        tts_port: u16,
        /// Keep the demo's desired.yaml from an earlier run instead of starting fresh.
        #[arg(long)]
        keep: bool,
        /// Simulated model start-up time, in milliseconds.
        #[arg(long, default_value_t = 4000)]
        startup_delay_ms: u64,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Print the controller's SSH public key (creating it if missing), for authorized_keys.
    Pubkey {
        /// Data dir holding id_ed25519.
        #[arg(long, env = "SPARK_CONTROL_DATA_DIR", default_value = "state")]
        data_dir: PathBuf,
    },
    /// Set hosts, cluster and service placement in the desired file (a minimal,
    /// comment-preserving edit, validated before it is written).
    Configure {
        /// The desired-state file (created if missing).
        #[arg(
            long,
            env = "SPARK_CONTROL_DESIRED",
            default_value = "state/desired.yaml"
        )]
        desired: PathBuf,
        /// NAME=ADDRESS[,user=USER][,port=PORT], repeatable.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// The cluster head.
        #[arg(long)]
        head: Option<String>,
        /// Cluster workers, comma-separated.
        #[arg(long, value_delimiter = ',')]
        workers: Option<Vec<String>>,
        /// SERVICE=HOST, repeatable (parakeet and magpie get their usual kind and port).
        #[arg(long = "service")]
        services: Vec<String>,
        /// NAME=HEAD[,WORKER...][@PORT], repeatable. One keeps the file's `cluster:` shape;
        /// two or more write `deployments:`.
        #[arg(long = "deployment")]
        deployments: Vec<spark_control::edit::deployments::DeploymentArg>,
    },
    /// Print a shell completion script (e.g. `spark-control completions bash >
    /// /etc/bash_completion.d/spark-control`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; `spark-control man | man -l -`), or write one page per
    /// subcommand into a directory (`spark-control.1`, `spark-control-serve.1`, ...).
    Man {
        /// Write every page into this directory instead of printing the main one.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Simulator processes used by the demo and the tests.
    #[command(hide = true)]
    Sim {
        #[command(subcommand)]
        cmd: sim::SimCommand,
    },
}

#[derive(clap::Args)]
struct AuthArgs {
    /// File holding the admin token required by every mutating API route.
    #[arg(long, env = "SPARK_CONTROL_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// The admin token itself; ignored when a token file is given. Prefer the environment
    /// variable or the file: a command-line argument is visible to every local user.
    #[arg(long, env = "SPARK_CONTROL_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// File with inference keys for /v1, one per line; a key may be followed by the catalog
    /// models it may use (`KEY qwen36,gemma4`), else it may use every model.
    #[arg(long, env = "SPARK_CONTROL_INFERENCE_KEYS_FILE")]
    inference_keys_file: Option<PathBuf>,
    /// Open WebUI's URL, linked from the UI.
    #[arg(long, env = "SPARK_CONTROL_OPEN_WEBUI_URL")]
    open_webui_url: Option<String>,
}

/// How the server meets the network and the file.
#[derive(clap::Args)]
struct NetArgs {
    /// A name the server is reached at (besides localhost, this machine's host name and
    /// any IP address): a DNS/mDNS name, a reverse proxy's or StartOS's name, `*.lan` for
    /// every subdomain. Repeatable or comma-separated. Requests naming any other `Host`
    /// are refused (DNS-rebinding guard).
    #[arg(
        long = "allowed-host",
        env = "SPARK_CONTROL_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    allowed_hosts: Vec<String>,
    /// Close a connection that has not sent a whole request head within this many seconds.
    #[arg(long, env = "SPARK_CONTROL_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Concurrent connections one client address may hold (0: no limit).
    #[arg(
        long,
        env = "SPARK_CONTROL_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 256
    )]
    max_connections_per_client: usize,
    /// A changed desired file is acted on only after it stayed the same this long
    /// (milliseconds), so a half-written file never acts.
    #[arg(long, env = "SPARK_CONTROL_SETTLE_MS", default_value_t = 300)]
    settle_ms: u64,
}

impl NetArgs {
    fn limits(&self) -> spark_control::http::ServeLimits {
        spark_control::http::ServeLimits {
            header_read_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            max_connections_per_client: self.max_connections_per_client,
        }
    }
}

/// Shortest admin token accepted, in characters (after trimming).
const MIN_TOKEN_CHARS: usize = 16;

/// The same rule for the token file and the environment variable. Never prints the token.
fn check_token(token: &str, source: &str) -> anyhow::Result<()> {
    if token.trim().chars().count() < MIN_TOKEN_CHARS {
        bail!("the admin token in {source} is shorter than {MIN_TOKEN_CHARS} characters; use a long random token (e.g. `openssl rand -hex 24`)");
    }
    Ok(())
}

impl AuthArgs {
    fn load(&self) -> anyhow::Result<(Option<String>, Vec<String>)> {
        let token = match &self.admin_token_file {
            Some(p) => {
                let t = std::fs::read_to_string(p)
                    .with_context(|| format!("reading the admin token file {}", p.display()))?;
                let t = t.trim().to_string();
                check_token(&t, &p.display().to_string())?;
                Some(t)
            }
            None => match &self.admin_token {
                Some(t) if !t.is_empty() => {
                    check_token(t, "SPARK_CONTROL_ADMIN_TOKEN")?;
                    Some(t.clone())
                }
                _ => None,
            },
        };
        let keys = match &self.inference_keys_file {
            Some(p) => std::fs::read_to_string(p)
                .with_context(|| format!("reading the inference keys file {}", p.display()))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect(),
            None => Vec::new(),
        };
        Ok((token, keys))
    }
}

fn main() -> ExitCode {
    // The simulator links `vllm` to this binary inside its containers: run as the fake vLLM.
    let argv: Vec<String> = std::env::args().collect();
    if argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "vllm")
    {
        return match runtime().and_then(|rt| Ok(rt.block_on(sim::vllm::cli(argv))?)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vllm: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    // Usage errors exit 2 here (clap); `--help` and `--version` exit 0.
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let format = cli.log_format;
    spark_control::logging::init(format);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            match format {
                LogFormat::Json => tracing::error!("{e:#}"),
                LogFormat::Text => eprintln!("error: {e:#}"),
            }
            ExitCode::from(1)
        }
    }
}

/// The parser, with the exit codes and environment after every subcommand's help too.
fn command() -> clap::Command {
    Cli::command().mut_subcommands(|sub| sub.after_help(AFTER_HELP))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { files } => Ok(validate(&files)),
        Command::Schema => {
            print!("{}", model::schema::schema_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            desired,
            observed,
            json,
        } => plan_cmd(&desired, &observed, json),
        Command::Pubkey { data_dir } => {
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let key = spark_control::remote::keys::load_or_create_identity(&data_dir)?;
            println!("{}", spark_control::remote::keys::public_line(&key));
            Ok(ExitCode::SUCCESS)
        }
        Command::Configure {
            desired,
            hosts,
            head,
            workers,
            services,
            deployments,
        } => runtime()?.block_on(configure(
            desired,
            hosts,
            head,
            workers,
            services,
            deployments,
        )),
        Command::Completions { shell } => {
            print!("{}", completions(shell)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out_dir: None } => {
            clap_mangen::Man::new(command())
                .render(&mut std::io::stdout())
                .context("writing the man page")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out_dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(command(), &dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim { cmd } => {
            runtime()?.block_on(sim::run(cmd))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            desired,
            data_dir,
            listen,
            auth,
            net,
        } => {
            let (admin_token, inference_keys) = auth.load()?;
            let rt = runtime()?;
            let listener = rt.block_on(app::bind(listen))?;
            rt.block_on(serve(
                listener,
                ServeOptions {
                    desired,
                    data_dir,
                    listen,
                    admin_token,
                    inference_keys,
                    connector: None,
                    poll_interval: None,
                    open_webui_url: auth.open_webui_url.clone(),
                    hub: None,
                    allowed_hosts: net.allowed_hosts.clone(),
                    limits: net.limits(),
                    settle: Some(Duration::from_millis(net.settle_ms)),
                },
            ))
        }
        Command::Demo {
            dir,
            listen,
            vllm_port,
            stt_port,
            tts_port,
            keep,
            startup_delay_ms,
            auth,
            net,
        } => {
            let (admin_token, inference_keys) = auth.load()?;
            let bin = std::env::current_exe().context("finding this program's path")?;
            let rt = runtime()?;
            // The port first: a busy one fails before the simulation is set up.
            let listener = rt.block_on(app::bind(listen))?;
            let opts = demo::DemoOptions {
                vllm_port,
                stt_port,
                tts_port,
                startup_delay_ms,
                ..demo::DemoOptions::default()
            };
            let d = demo::prepare(&dir, &bin, &opts, keep)?;
            tracing::info!(
                "demo: two simulated Sparks (127.0.0.2 head, 127.0.0.3 worker) under {}",
                dir.display()
            );
            tracing::info!("demo: desired file {}", d.desired.display());
            let code = rt.block_on(serve(
                listener,
                ServeOptions {
                    desired: d.desired.clone(),
                    data_dir: d.data_dir.clone(),
                    listen,
                    admin_token,
                    inference_keys,
                    connector: Some(d.connector.clone()),
                    poll_interval: Some(Duration::from_secs(1)),
                    open_webui_url: auth.open_webui_url.clone(),
                    hub: Some(spark_control::hub::HubConfig::at(d.hub.url())),
                    allowed_hosts: net.allowed_hosts.clone(),
                    limits: net.limits(),
                    settle: Some(Duration::from_millis(net.settle_ms)),
                },
            ));
            let killed = d.sim.shutdown();
            tracing::info!("demo: stopped {killed} simulated process(es)");
            code
        }
    }
}

/// The completion script for `shell`.
///
/// clap_complete 4.6's bash script never completes a subcommand's flags when the binary's
/// name has a hyphen: its dispatch loop names the state `spark__control__subcmd__serve`
/// while the case arms say `spark__subcmd__control__subcmd__serve` (clap-rs/clap#6421,
/// open). The arms are respelled the loop's way; the completions test proves it works.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<String> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "spark-control", &mut out);
    let text = String::from_utf8(out).context("the completion script is not UTF-8")?;
    Ok(match shell {
        clap_complete::Shell::Bash => text.replace("spark__subcmd__control", "spark__control"),
        _ => text,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn serve(listener: tokio::net::TcpListener, opts: ServeOptions) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    let running = app::start_on(listener, opts, shutdown.clone()).await?;
    tracing::info!("spark-control: open http://{}/ in a browser", running.addr);
    // Under systemd (`Type=notify`): ready now, and the watchdog until shutdown.
    spark_control::sdnotify::ready(&format!("serving on {}", running.addr), shutdown.clone());
    let stop = shutdown.clone();
    let (force_tx, force_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(
            "spark-control: shutting down (the running operation stops at a safe point; a second Ctrl-C or SIGTERM exits at once)"
        );
        let t = std::time::Instant::now();
        stop.cancel();
        wait_for_signal().await;
        tracing::warn!(
            "spark-control: second signal after {:.1}s: exiting now without waiting for the running operation",
            t.elapsed().as_secs_f64()
        );
        let _ = force_tx.send(());
    });
    // A second signal: return now, whatever is running (the launch record on the head
    // lets the next start identify what runs, invariant 9); the demo still stops its
    // simulated processes.
    tokio::select! {
        _ = running.done => Ok(ExitCode::SUCCESS),
        Ok(()) = force_rx => Ok(ExitCode::from(130)),
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn configure(
    desired: PathBuf,
    hosts: Vec<String>,
    head: Option<String>,
    workers: Option<Vec<String>>,
    services: Vec<String>,
    deployments: Vec<edit::deployments::DeploymentArg>,
) -> anyhow::Result<ExitCode> {
    let store = DesiredStore::new(desired.clone());
    app::ensure_desired(&desired).await?;
    let (text, etag) = store.read().await?;
    let request = edit::configure::Configure {
        hosts,
        head,
        workers,
        services,
    };
    let mut text = edit::configure::configured(&text, &request)?;
    if !deployments.is_empty() {
        text = edit::deployments::set_deployments(&text, &deployments)?;
    }
    let label = desired.display().to_string();
    let v = model::validate_text(&label, &text);
    for d in &v.diagnostics {
        eprintln!("{d}");
    }
    if !v.is_ok() {
        eprintln!("{label}: not changed (the result would be invalid)");
        return Ok(ExitCode::from(1));
    }
    let validate = |t: &str| {
        let v = model::validate_text(&label, t);
        if v.is_ok() {
            Ok(())
        } else {
            Err(v.errors().map(|d| d.to_string()).collect())
        }
    };
    store.write_if(&etag, &text, validate).await?;
    println!("{label}: updated");
    Ok(ExitCode::SUCCESS)
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        let v = model::validate_file(f);
        for d in &v.diagnostics {
            eprintln!("{d}");
        }
        if v.is_ok() {
            let warnings = v
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Warning)
                .count();
            if warnings == 0 {
                println!("{}: valid", f.display());
            } else {
                println!("{}: valid ({warnings} warning(s))", f.display());
            }
        } else {
            ok = false;
            println!("{}: invalid ({} error(s))", f.display(), v.errors().count());
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn plan_cmd(desired: &Path, observed: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let v = model::validate_file(desired);
    for d in &v.diagnostics {
        eprintln!("{d}");
    }
    let Some(d) = v.desired else {
        return Ok(ExitCode::from(1));
    };
    let text = std::fs::read_to_string(observed)
        .with_context(|| format!("reading {}", observed.display()))?;
    let o: Observed = if observed.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).with_context(|| format!("parsing {}", observed.display()))?
    } else {
        // Through the one YAML reader's JSON value, so enums are written as maps
        // (`known: {...}`) in YAML too.
        let parsed = model::yamlpos::parse(&text);
        if let Some(p) = parsed.problems.iter().find(|p| p.kind.is_unreadable()) {
            bail!(
                "parsing {}:{}:{}: {}",
                observed.display(),
                p.pos.line,
                p.pos.col,
                p.message
            );
        }
        let v = parsed.value.unwrap_or(serde_json::Value::Null);
        serde_json::from_value(v).with_context(|| format!("reading {}", observed.display()))?
    };
    let p = plan::plan(&d, &o);
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", plan::render(&p));
    }
    if p.steps.is_empty() && !p.complete {
        bail!("the plan is incomplete: see the lines starting with `!`");
    }
    Ok(ExitCode::SUCCESS)
}
