//! Swap-queue benchmark: once a model is ready, what queueing for a request-triggered
//! swap adds to a request's latency (`on_request: swap`, issue 17):
//!
//!   cargo bench --bench queue -- [--rounds N] [--clients C]
//!
//! In this process: a fast fake upstream (fixed JSON answer) and the real `/v1` proxy
//! (`proxy::router_with`, a `Demand` with a stand-in writer that only flips the route
//! table: no control loop, no file). Each round, C clients (default 64) at once ask for a
//! model that is not loaded; they all queue behind the one swap; when all C wait, the
//! model is made ready at T and each request's time from T to its answer is recorded.
//! The same C clients then fire at once at T' against the upstream directly, and through
//! the proxy for a model already serving: the time from T' to each answer. p50/p99 over
//! all rounds (default 30). Prints a table and a JSON line. Bounded: N rounds.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::arg;
use spark_control::proxy::{
    self, Demand, ModelEntry, ModelTable, Policy, ProxyConfig, ProxyMetrics, Routes, SwapCause,
    Swapper, Upstream,
};
use tokio::sync::watch;

const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"b","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}]}"#;

fn routes(base: &str, active: &str, ready: bool) -> Routes {
    let entries: Vec<ModelEntry> = ["a", "b"]
        .iter()
        .map(|n| {
            let here = *n == active;
            ModelEntry {
                name: n.to_string(),
                repo: format!("org/{n}"),
                aliases: vec![],
                status: String::new(),
                deployment: here.then(|| "main".to_string()),
                could_run: vec!["main".into()],
                max_model_len: None,
                leaving: false,
                upstream: match (here, ready) {
                    (true, true) => Upstream::Ready {
                        base: base.to_string(),
                        model: Some(format!("org/{n}")),
                    },
                    (true, false) => Upstream::Loading {
                        model: n.to_string(),
                        base: Some(base.to_string()),
                    },
                    _ => Upstream::NotConfigured,
                },
            }
        })
        .collect();
    let mut policy = Policy {
        min_interval: Duration::ZERO,
        queue: 1024,
        ..Policy::default()
    };
    policy.swap_on_request.insert("main".into());
    // The first deployment's upstream is also the `vllm` route (as `routes.rs` builds it).
    let vllm = entries
        .iter()
        .find(|e| e.deployment.is_some())
        .map(|e| e.upstream.clone())
        .unwrap_or_default();
    Routes {
        vllm,
        models: Arc::new(ModelTable::new(entries, Some("main".into()))),
        policy: Arc::new(policy),
        ..Routes::default()
    }
}

/// Writes nothing: marks the model loading (the bench makes it ready).
struct Flip {
    tx: Arc<watch::Sender<Routes>>,
    base: String,
}

impl Swapper for Flip {
    fn set_model(
        &self,
        _deployment: String,
        model: Option<String>,
        _cause: SwapCause,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        let (tx, base) = (self.tx.clone(), self.base.clone());
        Box::pin(async move {
            tx.send_replace(routes(&base, &model.unwrap_or_default(), false));
            Ok(())
        })
    }
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// C requests for `model` at `url`, all sent at once: each one's finish instant.
fn fire(
    client: &reqwest::Client,
    url: &str,
    model: &str,
    clients: usize,
) -> Vec<tokio::task::JoinHandle<Instant>> {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    (0..clients)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.to_string(), body.clone());
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(r.status(), 200, "{:?}", r.text().await);
                let _ = r.bytes().await;
                Instant::now()
            })
        })
        .collect()
}

async fn since(t: Instant, tasks: Vec<tokio::task::JoinHandle<Instant>>, out: &mut Vec<f64>) {
    for task in tasks {
        let done = task.await.expect("join");
        out.push(done.saturating_duration_since(t).as_secs_f64() * 1e6);
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

fn main() {
    let rounds = arg("--rounds", 30) as usize;
    let clients = arg("--clients", 64) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let upstream = serve(axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(|| async {
                ([("content-type", "application/json")], ANSWER)
            }),
        ))
        .await;
        let (tx, rx) = watch::channel(routes(&upstream, "a", true));
        let tx = Arc::new(tx);
        let demand = Demand::new();
        demand.set_swapper(Arc::new(Flip {
            tx: tx.clone(),
            base: upstream.clone(),
        }));
        let app = proxy::router_with(
            rx,
            ProxyConfig::default(),
            Arc::new(ProxyMetrics::new()),
            demand.clone(),
        );
        let proxy_url = format!("{}/v1/chat/completions", serve(app).await);
        let direct_url = format!("{upstream}/v1/chat/completions");
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(clients)
            .build()
            .expect("client");
        // Warm both paths' connections.
        since(Instant::now(), fire(&client, &direct_url, "a", clients), &mut Vec::new()).await;
        since(Instant::now(), fire(&client, &proxy_url, "a", clients), &mut Vec::new()).await;
        let (mut queued, mut direct, mut proxied) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (from, to) = if round % 2 == 0 { ("a", "b") } else { ("b", "a") };
            tx.send_replace(routes(&upstream, from, true));
            let waiting = fire(&client, &proxy_url, to, clients);
            let deadline = Instant::now() + Duration::from_secs(10);
            while demand.waiting(to) < clients && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(demand.waiting(to), clients, "every client queued");
            let t = Instant::now();
            tx.send_replace(routes(&upstream, to, true));
            since(t, waiting, &mut queued).await;
            let t = Instant::now();
            since(t, fire(&client, &direct_url, to, clients), &mut direct).await;
            let t = Instant::now();
            since(t, fire(&client, &proxy_url, to, clients), &mut proxied).await;
        }
        let row = |name: &str, v: &mut Vec<f64>| {
            let (p50, p99) = (pct(v, 0.5), pct(v, 0.99));
            println!("{name:<28} {p50:>10.0} {p99:>10.0}");
            (p50, p99)
        };
        println!(
            "{rounds} rounds × {clients} clients; µs from the moment the model is ready (queued) or the burst starts"
        );
        println!("{:<28} {:>10} {:>10}", "", "p50 µs", "p99 µs");
        let q = row("queued for the swap", &mut queued);
        let d = row("direct to the upstream", &mut direct);
        let p = row("through the proxy, ready", &mut proxied);
        println!(
            "queued − direct: p50 {:+.0} µs, p99 {:+.0} µs; queued − proxied: p50 {:+.0} µs, p99 {:+.0} µs",
            q.0 - d.0,
            q.1 - d.1,
            q.0 - p.0,
            q.1 - p.1
        );
        println!(
            "{}",
            serde_json::json!({
                "rounds": rounds, "clients": clients,
                "queued_p50_us": q.0, "queued_p99_us": q.1,
                "direct_p50_us": d.0, "direct_p99_us": d.1,
                "proxied_p50_us": p.0, "proxied_p99_us": p.1,
            })
        );
    });
}
