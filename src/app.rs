//! The composition root of `serve` and `demo`: the control loop, the proxy routes and the
//! HTTP server, started together and stopped together.
//!
//! Owns start-up order and checks (bind the listen address first, then the data dir,
//! identity and a starting desired file: a busy port leaves nothing behind) and shutdown
//! order (stop accepting, end streams, let the running operation reach a safe point).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::edit::DesiredStore;
use crate::hosts::Connector;
use crate::reconcile::{self, Handle, LoopConfig};

/// The unconfigured starting desired file (also `state/desired.yaml`).
pub const STARTING_DESIRED: &str = include_str!("../state/desired.yaml");

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A file or directory problem.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The SSH identity could not be loaded or made.
    #[error("SSH identity in {path}: {detail}")]
    Identity {
        /// The data dir.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another spark-control or the demo running?)")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The desired file could not be created.
    #[error("cannot create the starting desired file {path}: {detail}")]
    Desired {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

/// How to serve.
pub struct ServeOptions {
    /// The desired file.
    pub desired: PathBuf,
    /// The data dir (identity, known_hosts, events).
    pub data_dir: PathBuf,
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// Admin token for mutating routes (None: open, said loudly).
    pub admin_token: Option<String>,
    /// Keys for `/v1` (empty: open).
    pub inference_keys: Vec<String>,
    /// How hosts are reached; None: SSH with the identity in the data dir.
    pub connector: Option<Connector>,
    /// Poll interval override.
    pub poll_interval: Option<Duration>,
    /// Open WebUI's URL, linked from the UI when set.
    pub open_webui_url: Option<String>,
    /// The Hugging Face Hub asked for repo sizes; None: `HF_ENDPOINT`/`HF_TOKEN` from the
    /// environment (the Hub's own convention), else the public Hub.
    pub hub: Option<crate::hub::HubConfig>,
    /// Names the server answers to beyond localhost, its host name and IP addresses
    /// (`--allowed-host`; see `http::hosts`).
    pub allowed_hosts: Vec<String>,
    /// Header-read timeout and per-client connection cap.
    pub limits: crate::http::ServeLimits,
    /// How long a changed desired file must stay unchanged before it is acted on.
    pub settle: Option<Duration>,
}

/// The running parts, for callers that want to look (tests, demo).
pub struct Running {
    /// The control loop's handle.
    pub handle: Handle,
    /// The address the HTTP server listens on.
    pub addr: SocketAddr,
    /// Finishes when everything has stopped.
    pub done: tokio::task::JoinHandle<()>,
}

fn io(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AppError {
    let path = path.to_path_buf();
    move |source| AppError::Io { what, path, source }
}

/// Creates the unconfigured starting desired file at `path` (and its directory) when there
/// is none, with the schema beside it ([`write_schema_beside`]); a schema written beside
/// earlier is brought up to date. Never touches an existing desired file.
pub async fn ensure_desired(path: &std::path::Path) -> Result<(), AppError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
    }
    let text = crate::model::schema::with_modeline_beside(STARTING_DESIRED);
    let created = DesiredStore::new(path.to_path_buf())
        .create_if_missing(&text)
        .await
        .map_err(|e| AppError::Desired {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    let beside = schema_beside(path);
    if created || beside.exists() {
        write_schema_beside(path)?;
    }
    Ok(())
}

fn schema_beside(desired: &std::path::Path) -> PathBuf {
    desired.with_file_name(crate::model::schema::BESIDE_NAME)
}

/// Writes the desired-state schema beside `desired` (`desired-state.schema.json`, the file
/// the modeline of new desired files names), unless it is already current.
pub fn write_schema_beside(desired: &std::path::Path) -> Result<PathBuf, AppError> {
    let path = schema_beside(desired);
    let text = crate::model::schema::schema_text();
    if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(path);
    }
    std::fs::write(&path, text).map_err(io("cannot write the schema", &path))?;
    Ok(path)
}

/// Binds the listen address: the first thing a server does, so a busy port fails before
/// anything is written (data dir, desired file, SSH identity).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, AppError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Listen { addr, source })
}

/// Starts the loop and the server; they run until `shutdown` is cancelled.
pub async fn start(opts: ServeOptions, shutdown: CancellationToken) -> Result<Running, AppError> {
    let listener = bind(opts.listen).await?;
    start_on(listener, opts, shutdown).await
}

/// [`start`] on a listener already bound by [`bind`] (`opts.listen` names it in errors).
pub async fn start_on(
    listener: tokio::net::TcpListener,
    opts: ServeOptions,
    shutdown: CancellationToken,
) -> Result<Running, AppError> {
    let addr = listener.local_addr().map_err(|source| AppError::Listen {
        addr: opts.listen,
        source,
    })?;
    std::fs::create_dir_all(&opts.data_dir)
        .map_err(io("cannot create the data dir", &opts.data_dir))?;
    ensure_desired(&opts.desired).await?;
    // The identity exists even when the hosts are simulated, so Setup can show it.
    let key = crate::remote::keys::load_or_create_identity(&opts.data_dir).map_err(|e| {
        AppError::Identity {
            path: opts.data_dir.clone(),
            detail: e.to_string(),
        }
    })?;
    let connector = match opts.connector {
        Some(c) => c,
        None => Connector::Ssh {
            key: Arc::new(key),
            known_hosts: opts.data_dir.join("known_hosts"),
        },
    };
    let loop_stop = CancellationToken::new();
    let addons = reconcile::Addons {
        hub: opts
            .hub
            .clone()
            .unwrap_or_else(crate::hub::HubConfig::from_env),
        ..reconcile::Addons::default()
    };
    let (handle, loop_task) = reconcile::spawn_with(
        LoopConfig {
            desired_path: opts.desired.clone(),
            data_dir: opts.data_dir.clone(),
            connector,
            poll_interval: opts.poll_interval,
            settle: opts.settle,
        },
        addons,
        loop_stop.clone(),
    );
    let routes = crate::routes::spawn(handle.status.clone(), shutdown.clone());
    // Git-ops: commits of edits, history, pull mode (off when the file is in no git work
    // tree and has no `git:` section).
    let gitops = crate::gitops::GitOps::new(
        handle.store.clone(),
        opts.data_dir.clone(),
        handle.status.clone(),
    );
    gitops.spawn(shutdown.clone());
    let web = WebOptions {
        admin_token: opts.admin_token,
        inference_keys: opts.inference_keys,
        allowed: crate::http::AllowedHosts::for_server(Some(addr), &opts.allowed_hosts),
        limits: opts.limits,
        setup: (Some(opts.data_dir.clone()), opts.open_webui_url.clone()),
        gitops,
    };
    let server = start_server(listener, &handle, routes, web, shutdown.clone());
    let done = tokio::spawn(async move {
        shutdown.cancelled().await;
        // The server stops accepting and ends its streams; then the loop brings the
        // running operation to a safe point.
        let _ = server.await;
        loop_stop.cancel();
        let _ = loop_task.await;
    });
    Ok(Running { handle, addr, done })
}

/// What the HTTP side is started with.
struct WebOptions {
    admin_token: Option<String>,
    inference_keys: Vec<String>,
    allowed: crate::http::AllowedHosts,
    limits: crate::http::ServeLimits,
    setup: (Option<PathBuf>, Option<String>),
    gitops: crate::gitops::GitOps,
}

/// The HTTP side: the API/UI router with the `/v1` proxy merged in.
fn start_server(
    listener: tokio::net::TcpListener,
    handle: &Handle,
    routes: tokio::sync::watch::Receiver<crate::proxy::Routes>,
    web: WebOptions,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    // Proxy settings are read once at start (a change needs a restart; said in the README).
    let desired = crate::model::validate_file(handle.store.path()).desired;
    let proxy_keys = !web.inference_keys.is_empty();
    let proxy_cfg = proxy_config(desired.as_ref(), web.inference_keys);
    let metrics = Arc::new(crate::proxy::ProxyMetrics::new());
    let hook_metrics = metrics.clone();
    let demand = handle.demand.clone();
    let hook_demand = demand.clone();
    let setup = web.setup;
    crate::proxy::spawn_idle_unload(demand.clone(), routes.clone(), shutdown.clone());
    let state = crate::http::AppState::new(handle.clone(), web.admin_token)
        .with_allowed_hosts(web.allowed)
        .with_proxy_keys(proxy_keys)
        .with_limits(web.limits)
        .with_extra_router(crate::proxy::router_with(
            routes,
            proxy_cfg,
            metrics,
            demand.clone(),
        ))
        .with_metrics_hook(move |out| {
            hook_metrics.render_prometheus(out);
            hook_demand.render_prometheus(out);
        })
        .with_shutdown(shutdown.clone())
        .with_setup(setup.0, setup.1)
        .with_gitops(web.gitops);
    // The writer holds the state, which holds the handle, which holds `demand`: the
    // writer is taken out again when the server stops, so none of them is leaked.
    demand.set_swapper(Arc::new(crate::http::DesiredSwapper(state.clone())));
    tokio::spawn(async move {
        if let Err(e) = crate::http::serve(listener, state, shutdown).await {
            tracing::error!("the HTTP server stopped: {e}");
        }
        demand.clear_swapper();
    })
}

/// Proxy settings from the desired file's `proxy:` section (defaults when none yet), and
/// the inference keys: each line of the keys file is `KEY` or `KEY model,model…`.
pub fn proxy_config(
    d: Option<&crate::model::Desired>,
    inference_keys: Vec<String>,
) -> crate::proxy::ProxyConfig {
    let p = d.map(|d| d.proxy.clone()).unwrap_or_default();
    let (inference_keys, key_models) = inference_keys
        .iter()
        .map(|line| match line.trim().split_once(char::is_whitespace) {
            Some((key, models)) => (
                key.to_string(),
                Some(
                    models
                        .split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .map(String::from)
                        .collect(),
                ),
            ),
            None => (line.trim().to_string(), None),
        })
        .unzip();
    crate::proxy::ProxyConfig {
        connect_timeout: Duration::from_millis(p.connect_timeout_ms),
        overall_timeout: Duration::from_secs(p.timeout_secs),
        max_json_body: usize::try_from(p.max_json_body).unwrap_or(usize::MAX),
        max_audio_body: usize::try_from(p.max_audio_body).unwrap_or(usize::MAX),
        inference_keys,
        key_models,
        wait_for_ready: (p.wait_for_ready_secs > 0)
            .then(|| Duration::from_secs(p.wait_for_ready_secs)),
    }
}
