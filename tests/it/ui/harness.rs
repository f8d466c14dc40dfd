//! Shared setup of the browser tests: the servers they drive (the demo, or the real loop
//! over a given file), the browser, and small waits and readers. No assertions live here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use spark_control::demo::{self, Demo, DemoOptions};
use spark_control::hosts::Connector;
use spark_control::http::AppState;
use spark_control::reconcile::{self, LoopConfig};
use tokio_util::sync::CancellationToken;

use crate::harness::webdriver::{Driver, Session};

/// Every view of the UI, in the order of its tabs (`#/<view>`).
pub(super) const VIEWS: [&str; 11] = [
    "cluster",
    "deployments",
    "models",
    "downloads",
    "services",
    "updates",
    "events",
    "plan",
    "desired",
    "history",
    "setup",
];

pub(super) const LONG: Duration = Duration::from_secs(90);
pub(super) const SHORT: Duration = Duration::from_secs(10);

/// A running server.
pub(super) struct Server {
    pub(super) base: String,
    pub(super) desired: PathBuf,
    /// The fake vLLM's port on the simulated head (demo servers only).
    pub(super) vllm_port: Option<u16>,
    running: Running,
    setup: Setup,
    pub(super) _demo: Option<Demo>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.running.shutdown.cancel();
    }
}

impl Server {
    /// Stops the loop and the HTTP server (as a process exit would: every stream ends) and
    /// starts new ones over the same files, on the same address. The simulated hosts keep
    /// running.
    pub(super) async fn restart(&mut self) -> Result<()> {
        self.running.shutdown.cancel();
        (&mut self.running.loop_task).await?;
        (&mut self.running.http_task).await?;
        let at = self.base.trim_start_matches("http://").to_string();
        let listener = bind_again(&at).await?;
        self.running = serve_on(listener, &self.setup).await?;
        Ok(())
    }
}

/// Binds `at` again once the previous server's socket is gone (bounded).
async fn bind_again(at: &str) -> Result<tokio::net::TcpListener> {
    let deadline = std::time::Instant::now() + SHORT;
    loop {
        match tokio::net::TcpListener::bind(at).await {
            Ok(l) => return Ok(l),
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// What a server is started from (kept to start it again).
pub(super) struct Setup {
    desired: PathBuf,
    data_dir: PathBuf,
    connector: Connector,
    /// The Hub the loop asks for sizes (the demo's fake one; never the real Hub).
    hub: String,
    admin_token: Option<String>,
    allowed: Vec<String>,
}

/// A loop and the HTTP server over it.
pub(super) struct Running {
    pub(super) base: String,
    shutdown: CancellationToken,
    loop_task: tokio::task::JoinHandle<()>,
    http_task: tokio::task::JoinHandle<()>,
}

/// Loop + HTTP app on 127.0.0.1:<free port>.
pub(super) async fn serve(setup: &Setup) -> Result<Running> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    serve_on(listener, setup).await
}

async fn serve_on(listener: tokio::net::TcpListener, setup: &Setup) -> Result<Running> {
    let shutdown = CancellationToken::new();
    let addons = reconcile::Addons {
        hub: spark_control::hub::HubConfig::at(&setup.hub),
        ..reconcile::Addons::default()
    };
    let (handle, loop_task) = reconcile::spawn_with(
        LoopConfig {
            desired_path: setup.desired.clone(),
            data_dir: setup.data_dir.clone(),
            connector: setup.connector.clone(),
            poll_interval: Some(Duration::from_millis(700)),
            settle: None,
        },
        addons,
        shutdown.clone(),
    );
    let addr = listener.local_addr()?;
    let mut names = spark_control::http::AllowedHosts::default();
    for a in &setup.allowed {
        names.add(a);
    }
    // Git-ops as `app::start` runs it (off while the file is in no git work tree).
    let gitops = spark_control::gitops::GitOps::new(
        handle.store.clone(),
        setup.data_dir.clone(),
        handle.status.clone(),
    );
    gitops.spawn(shutdown.clone());
    let state = AppState::new(handle, setup.admin_token.clone())
        .with_gitops(gitops)
        .with_allowed_hosts(names)
        .with_shutdown(shutdown.clone());
    let stop = shutdown.clone();
    // The product's own accept loop (Host check, limits, peer addresses).
    let http_task = tokio::spawn(async move {
        let _ = spark_control::http::serve(listener, state, stop).await;
    });
    Ok(Running {
        base: format!("http://{addr}"),
        shutdown,
        loop_task,
        http_task,
    })
}

/// A port free on both simulated hosts' addresses.
pub(super) fn sim_port() -> u16 {
    for _ in 0..50 {
        let l = std::net::TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let p = l.local_addr().expect("local addr").port();
        if std::net::TcpListener::bind(("127.0.0.3", p)).is_ok() {
            return p;
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

/// The whole product on two simulated Sparks (the demo), `qwen36` active.
pub(super) async fn demo_server() -> Result<Server> {
    demo_server_with_token(None).await
}

/// The demo and a browser on its Cluster view, once the demo's `qwen36` serves (the
/// start of every swap scenario).
pub(super) async fn demo_with_qwen36_ready() -> Result<(Server, Driver, Session)> {
    use anyhow::Context;
    let srv = demo_server().await?;
    let (d, s) = browser().await?;
    s.goto(&format!("{}/#/cluster", srv.base)).await?;
    s.wait_text("[data-testid=model-ready]", "ready", LONG)
        .await
        .context("qwen36 ready")?;
    Ok((srv, d, s))
}

/// [`demo_server`], with edits needing `admin_token` when given.
pub(super) async fn demo_server_with_token(admin_token: Option<&str>) -> Result<Server> {
    demo_server_allowing(admin_token, &[]).await
}

/// The demo server answering to the extra names `allowed` as well.
pub(super) async fn demo_server_allowing(
    admin_token: Option<&str>,
    allowed: &[&str],
) -> Result<Server> {
    let dir = tempfile::tempdir()?;
    let opts = DemoOptions {
        vllm_port: sim_port(),
        stt_port: sim_port(),
        tts_port: sim_port(),
        startup_delay_ms: 1500,
        active_model: "qwen36".into(),
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_spark-control"));
    let d = demo::prepare(dir.path(), bin, &opts, false)?;
    let setup = Setup {
        desired: d.desired.clone(),
        data_dir: d.data_dir.clone(),
        connector: d.connector.clone(),
        hub: d.hub.url().to_string(),
        admin_token: admin_token.map(str::to_owned),
        allowed: allowed.iter().map(|a| a.to_string()).collect(),
    };
    let running = serve(&setup).await?;
    Ok(Server {
        base: running.base.clone(),
        desired: d.desired.clone(),
        vllm_port: Some(opts.vllm_port),
        running,
        setup,
        _demo: Some(d),
        _dir: dir,
    })
}

/// The real loop and API over `text` as desired.yaml, over SSH; give it hosts on loopback
/// addresses where nothing listens (127.0.0.9, port 1) or none.
pub(super) async fn plain_server(text: &str) -> Result<Server> {
    let dir = tempfile::tempdir()?;
    let desired = dir.path().join("desired.yaml");
    std::fs::write(&desired, text)?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let key = spark_control::remote::keys::load_or_create_identity(&data)?;
    let connector = Connector::Ssh {
        key: std::sync::Arc::new(key),
        known_hosts: data.join("known_hosts"),
    };
    // Nothing listens on 127.0.0.1:9: sizes are "unknown", and nothing leaves loopback.
    let setup = Setup {
        desired: desired.clone(),
        data_dir: data,
        connector,
        hub: "http://127.0.0.1:9".into(),
        admin_token: None,
        allowed: Vec::new(),
    };
    let running = serve(&setup).await?;
    Ok(Server {
        base: running.base.clone(),
        desired,
        vllm_port: None,
        running,
        setup,
        _demo: None,
        _dir: dir,
    })
}

/// Whether the simulated container `name` on host `ip` has a live (non-zombie) process.
pub(super) fn container_alive(sim_base: &Path, ip: &str, name: &str) -> bool {
    let pid = std::fs::read_to_string(sim_base.join(ip).join("containers").join(name).join("pid"))
        .unwrap_or_default();
    pid.trim().parse::<u32>().is_ok_and(|p| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .is_ok_and(|st| !st.rsplit(") ").next().unwrap_or("").starts_with('Z'))
    })
}

/// Waits until `cond` holds, or fails saying `what` after [`LONG`].
pub(super) async fn wait_until(what: &str, cond: impl Fn() -> bool) -> Result<()> {
    let deadline = std::time::Instant::now() + LONG;
    while !cond() {
        anyhow::ensure!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Sets a `<select>` the way a user's pick does: value, then `input` and `change` events.
pub(super) async fn pick(s: &Session, css: &str, value: &str) -> Result<()> {
    let js = "const e = document.querySelector(arguments[0]); e.value = arguments[1]; \
              e.dispatchEvent(new Event('input', {bubbles: true})); \
              e.dispatchEvent(new Event('change', {bubbles: true})); return e.value;";
    let got = s.exec(js, json!([css, value])).await?;
    anyhow::ensure!(got == json!(value), "{css} has no option {value:?}");
    Ok(())
}

pub(super) async fn dialog_open(s: &Session, testid: &str) -> Result<bool> {
    let js = "const d = document.querySelector(`[data-testid=${arguments[0]}]`); return !!(d && d.open);";
    Ok(s.exec(js, json!([testid])).await? == json!(true))
}

pub(super) async fn browser() -> Result<(Driver, Session)> {
    let d = Driver::start().await?;
    let s = d.session().await?;
    s.viewport(1280, 800, false).await?;
    Ok((d, s))
}

pub(super) async fn state(base: &str) -> Result<Value> {
    state_as(base, None).await
}

/// `/api/state` with the admin token, when the server has one.
pub(super) async fn state_as(base: &str, token: Option<&str>) -> Result<Value> {
    let mut req = reqwest::Client::new()
        .get(format!("{base}/api/state"))
        .timeout(SHORT);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    Ok(req.send().await?.error_for_status()?.json().await?)
}

/// Waits until `/api/state` (with `token`) satisfies `pred`; returns that state.
pub(super) async fn wait_state(
    base: &str,
    token: Option<&str>,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let st = state_as(base, token).await?;
        if pred(&st) {
            return Ok(st);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the API never showed {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) fn read(p: &Path) -> String {
    std::fs::read_to_string(p).expect("read desired.yaml")
}

/// Waits until desired.yaml satisfies `pred`.
pub(super) async fn wait_file(p: &Path, what: &str, pred: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = std::time::Instant::now() + SHORT;
    loop {
        let t = read(p);
        if pred(&t) {
            return Ok(t);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("desired.yaml never had {what}:\n{t}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The comment lines of a YAML text (to check edits keep them).
pub(super) fn comments(t: &str) -> Vec<String> {
    t.lines()
        .filter_map(|l| l.find('#').map(|i| l[i..].trim().to_string()))
        .collect()
}

/// The hand-commented fixture, its hosts moved to loopback addresses where nothing listens.
pub(super) fn commented_fixture() -> String {
    include_str!("../../fixtures/commented.yaml")
        .replace("192.168.1.101", "127.0.0.9")
        .replace("\"192.168.1.102\"", "\"127.0.0.10\"")
        .replace("port: 22 }", "port: 1 }")
        .replace("user: nvidia }", "user: nvidia, port: 1 }")
}

pub(super) const UNCONFIGURED: &str = "\
# spark-control desired state (nothing configured yet)
version: 1
hosts: {}   # add your Sparks here
";
