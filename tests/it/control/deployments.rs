//! A desired file in the `deployments:` shape on the two-sshd cluster, per launcher
//! generation: the deployment's model is launched with every name it answers to, and an
//! OpenAI client (the official `openai` Python SDK) reaches it through the proxy by
//! catalog name, repo and alias; `/v1/models` lists the catalog with statuses; catalog
//! models served nowhere and unknown names get the 404s clients can tell apart.

use std::sync::Arc;

use spark_control::proxy::{self, ProxyConfig, ProxyMetrics};
use tokio_util::sync::CancellationToken;

use crate::harness::cluster::{Cluster, Generation};

const QWEN36: &str = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";

/// The harness's file with its `cluster:` + `active_model:` replaced by one deployment.
fn deployments_file(c: &Cluster) -> String {
    let text = c.desired(
        "qwen36",
        "models:\n  qwen36: { repo: RedHatAI/Qwen3.6-35B-A3B-NVFP4, aliases: [coder] }\n",
    );
    let start = text.find("cluster:\n").expect("cluster block");
    let end =
        text.find("active_model: qwen36\n").expect("active_model") + "active_model: qwen36\n".len();
    let block = format!(
        "deployments:\n  - name: main\n    head: spark1\n    workers: [spark2]\n    port: {}\n    launcher: {}\n    active_model: qwen36\n",
        c.vllm_port,
        c.launcher.display()
    );
    format!("{}{block}{}", &text[..start], &text[end..])
}

both!(one_deployment_serves_by_every_name_through_the_proxy);
async fn one_deployment_serves_by_every_name_through_the_proxy(g: Generation) {
    let mut c = Cluster::with_launcher(300, g);
    c.write(&deployments_file(&c));
    c.start_controller();
    c.wait_serving(QWEN36, 90).await;
    // vLLM itself answers to the catalog name, the repo and the alias.
    let url = format!(
        "http://{}:{}/v1/models",
        crate::harness::cluster::HEAD,
        c.vllm_port
    );
    let v: serde_json::Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(url)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["qwen36", QWEN36, "coder"]);

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

    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="none", timeout=20, max_retries=0)
models = {m.id: m for m in c.models.list().data}
assert sorted(models) == ["gemma4", "qwen2.5-72b", "qwen3-235b-fp8", "qwen3-vl", "qwen36"], sorted(models)
q = models["qwen36"].model_extra
assert q["status"] == "serving" and q["deployment"] == "main", q
assert q["repo"] == "RedHatAI/Qwen3.6-35B-A3B-NVFP4" and q["aliases"] == ["coder"], q
assert models["gemma4"].model_extra["status"] == "available", models["gemma4"]
for name in ["qwen36", "RedHatAI/Qwen3.6-35B-A3B-NVFP4", "coder"]:
    r = c.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    assert r.model == "qwen36", (name, r.model)
    assert r.choices[0].message.content == "Hello from the", r
for name, code in [("gemma4", "model_not_loaded"), ("gpt-4o", "model_not_found")]:
    try:
        c.chat.completions.create(model=name, messages=[{"role": "user", "content": "x"}])
        raise SystemExit("expected NotFoundError for " + name)
    except openai.NotFoundError as err:
        assert err.code == code, (name, err.code, str(err))
print("SDK OK")
"#;
    crate::harness::openai_sdk(script, format!("http://{addr}/v1")).await;
    shutdown.cancel();
}
