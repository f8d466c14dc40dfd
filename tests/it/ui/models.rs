//! Model cards: per host, whether the model is in that host's Hugging Face cache, as the
//! server observed it; a model downloaded by a swap gets its badge.

use anyhow::Result;
use serde_json::{json, Value};

use super::harness::*;

/// Per model and host of `st`: `"true"`/`"false"` (repo in the host's observed HF cache or
/// not), `"unknown"` when the cache is not known.
fn expected(st: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let hosts = st["desired"]["hosts"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for e in st["catalog"].as_array().into_iter().flatten() {
        let (Some(name), Some(repo)) = (e["name"].as_str(), e["repo"].as_str()) else {
            continue;
        };
        for host in hosts.keys() {
            let cache = &st["observed"]["hosts"][host]["hf_cache"]["known"]["value"];
            let has = match cache.as_array() {
                Some(a) => a.iter().any(|r| r == repo).to_string(),
                None => "unknown".to_string(),
            };
            out.push((name.to_string(), host.clone(), has));
        }
    }
    out
}

const SHOWN: &str = "\
const out = [];
for (const b of document.querySelectorAll('[data-testid^=cache-] [data-host]')) {
  out.push([b.closest('[data-testid^=cache-]').dataset.testid.slice(6), b.dataset.host, b.dataset.downloaded, b.textContent]);
}
return out;";

async fn page_matches_api(s: &crate::harness::webdriver::Session, base: &str) -> Result<Value> {
    let mut last = Value::Null;
    for _ in 0..60 {
        let st = state(base).await?;
        let want = expected(&st);
        let shown = s.exec(SHOWN, json!([])).await?;
        let got: Vec<(String, String, String)> = shown
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let f = |i: usize| r[i].as_str().unwrap_or("").to_string();
                (f(0), f(1), f(2))
            })
            .collect();
        if !want.is_empty() && got == want {
            return Ok(shown);
        }
        last = json!({"want": want, "shown": shown});
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    anyhow::bail!("the cards never showed the API's caches: {last}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_cards_show_where_each_model_is_downloaded() -> Result<()> {
    let (srv, _d, s) = demo_with_qwen36_ready().await?;
    s.goto(&format!("{}/#/models", srv.base)).await?;
    let shown = page_matches_api(&s, &srv.base).await?;
    let rows = shown.as_array().cloned().unwrap_or_default();
    let on = |model: &str, v: &str| {
        rows.iter()
            .any(|r| r[0] == json!(model) && r[2] == json!(v))
    };
    assert!(
        on("qwen36", "true"),
        "qwen36 (just served) is downloaded: {shown}"
    );
    assert!(
        on("gemma4", "false"),
        "gemma4 is not downloaded yet: {shown}"
    );
    let text = rows
        .iter()
        .find(|r| r[0] == json!("qwen36") && r[2] == json!("true"))
        .and_then(|r| r[3].as_str())
        .unwrap_or("");
    assert!(text.starts_with("downloaded on "), "{text}");

    // A swap to gemma4 downloads it; its card then says so.
    s.click("[data-testid=activate-gemma4]").await?;
    s.wait_text("[data-testid=confirm-title]", "gemma4", SHORT)
        .await?;
    s.click("[data-testid=confirm-ok]").await?;
    s.wait_text("[data-testid=swap-state]", "ready", LONG)
        .await?;
    let shown = page_matches_api(&s, &srv.base).await?;
    assert!(
        shown
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r[0] == json!("gemma4") && r[2] == json!("true")),
        "gemma4 downloaded after the swap: {shown}"
    );
    Ok(())
}

/// Unload on the active model's card: confirmed, desired.yaml has no active model, the
/// fake vLLM stops serving it, and the card offers Activate again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unload_stops_the_active_model() -> Result<()> {
    let (srv, _d, s) = demo_with_qwen36_ready().await?;
    s.goto(&format!("{}/#/models", srv.base)).await?;
    // Only the active model's card has Unload.
    s.wait_for("[data-testid=unload-qwen36]", SHORT).await?;
    let shown = s
        .exec(
            "const b = document.querySelector('[data-testid=unload-gemma4]'); return !!(b && b.offsetParent);",
            json!([]),
        )
        .await?;
    assert_eq!(shown, json!(false), "gemma4 is not active: no Unload");
    s.click("[data-testid=unload-qwen36]").await?;
    s.wait_text("[data-testid=confirm-title]", "Unload qwen36", SHORT)
        .await?;
    s.click("[data-testid=confirm-ok]").await?;
    let t = wait_file(&srv.desired, "no active model", |t| {
        let v: serde_yaml::Value = serde_yaml::from_str(t).unwrap_or_default();
        v.get("active_model").is_some_and(|m| m.is_null())
    })
    .await?;
    assert!(t.contains("# simulated head"), "comments kept:\n{t}");
    wait_state(&srv.base, None, "vLLM serving nothing", |st| {
        st["observed"]["vllm"]["known"]["value"]["models"]
            .as_array()
            .is_some_and(|m| m.is_empty())
    })
    .await?;
    s.wait_text("[data-testid=activate-qwen36]", "Activate", SHORT)
        .await?;
    Ok(())
}

/// The add-model form applies the server's name rule (`model::semantic::valid_name`):
/// an upper-case name is refused on the field before anything is sent, with the rule in
/// words; the server refuses the same name; the lower-case one is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_names_follow_the_servers_rule() -> Result<()> {
    for (name, ok) in [
        ("Qwen-Big", false),
        ("qwen-big", true),
        ("-x", false),
        ("a.b_c-9", true),
    ] {
        assert_eq!(
            spark_control::model::valid_name(name),
            ok,
            "the server's rule for {name}"
        );
    }
    let srv = plain_server(&commented_fixture()).await?;
    let (_d, s) = browser().await?;
    s.goto(&format!("{}/#/models", srv.base)).await?;
    let before = read(&srv.desired);
    s.type_into("#am-name", "Qwen-Big").await?;
    s.type_into("#am-repo", "org/Qwen-Big-7B").await?;
    s.click("[data-testid=add-model-form] button[type=submit]")
        .await?;
    s.wait_text(
        "[data-testid=add-model-form] [data-msg=name]",
        "Lower-case letters",
        SHORT,
    )
    .await?;
    assert_eq!(read(&srv.desired), before, "nothing sent");
    s.exec(
        "const i = document.querySelector('#am-name'); i.value = ''; return 1;",
        json!([]),
    )
    .await?;
    s.type_into("#am-name", "qwen-big").await?;
    s.click("[data-testid=add-model-form] button[type=submit]")
        .await?;
    wait_file(&srv.desired, "qwen-big in the catalog", |t| {
        t.contains("qwen-big:") && t.contains("org/Qwen-Big-7B")
    })
    .await?;
    Ok(())
}
