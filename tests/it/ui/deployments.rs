//! The Deployments view: one card per deployment (what it should serve, what it serves
//! now), a model chosen per deployment, and the change shown as a plan before anything is
//! written; applied, the file says so (comments kept) and, on the demo, the world follows.

use anyhow::Result;
use serde_json::json;

use super::harness::*;

/// Three deployments over two unreachable loopback hosts: coder and vision solo, big over
/// both (idle).
const THREE: &str = "\
# deployments on two Sparks
version: 1
hosts:
  spark1: { address: 127.0.0.9, port: 1 }   # nothing listens
  spark2: { address: 127.0.0.10, port: 1 }
deployments:
  - name: coder      # the coding model
    head: spark1
    on_request: swap
    idle_unload_after: 30m
    active_model: qwen36
  - name: vision
    head: spark2
    port: 8889
    active_model: qwen3-vl
  - name: big
    head: spark1
    workers: [spark2]
    active_model: null
ssh: { connect_timeout_secs: 1 }
";

/// Shown as a plan first: cancelling writes nothing; applying writes the previewed change
/// (the two solo deployments stopped, big on both hosts), comments kept. A file changed
/// by hand between preview and apply is not overwritten: the page says to preview again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_change_is_previewed_then_applied() -> Result<()> {
    let srv = plain_server(THREE).await?;
    let (_d, s) = browser().await?;
    s.goto(&format!("{}/#/deployments", srv.base)).await?;
    for name in ["coder", "vision", "big"] {
        s.wait_for(&format!("[data-testid=deployment-{name}]"), SHORT)
            .await?;
    }
    s.wait_text("[data-testid=deployment-coder]", "qwen36", SHORT)
        .await?;
    // Each card says what a request for another model does.
    s.wait_text(
        "[data-testid=deployment-policy-coder]",
        "a request for another model swaps it in · unloaded after 30m without a request",
        SHORT,
    )
    .await?;
    s.wait_text(
        "[data-testid=deployment-policy-vision]",
        "requests for other models are refused (404)",
        SHORT,
    )
    .await?;
    // The cluster model cannot be picked on a one-host deployment.
    let disabled = s
        .exec(
            "return document.querySelector('[data-testid=deployment-model-vision] option[value=\"qwen3-235b-fp8\"]').disabled;",
            json!([]),
        )
        .await?;
    assert_eq!(disabled, json!(true));
    // 1. Preview, then cancel: nothing written.
    let before = read(&srv.desired);
    pick(&s, "[data-testid=deployment-model-big]", "qwen3-235b-fp8").await?;
    s.click("[data-testid=deployment-preview-big]").await?;
    s.wait_text(
        "[data-testid=preview-changes]",
        "big: activate qwen3-235b-fp8 on spark1+spark2",
        SHORT,
    )
    .await?;
    let changes = s.text("[data-testid=preview-changes]").await?;
    assert!(
        changes.contains("coder: stop qwen36") && changes.contains("vision: stop qwen3-vl"),
        "{changes}"
    );
    s.wait_for("[data-testid=preview-plan]", SHORT).await?;
    s.click("[data-testid=confirm-cancel]").await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        read(&srv.desired),
        before,
        "a cancelled preview writes nothing"
    );
    // The choice survives state ticks.
    let chosen = s
        .exec(
            "return document.querySelector('[data-testid=deployment-model-big]').value;",
            json!([]),
        )
        .await?;
    assert_eq!(chosen, json!("qwen3-235b-fp8"));

    // 2. Preview, a hand edit meanwhile, apply: refused, the hand edit kept.
    s.click("[data-testid=deployment-preview-big]").await?;
    s.wait_for("[data-testid=preview-changes]", SHORT).await?;
    let hand = before.replace("# the coding model", "# the coding model (edited by hand)");
    std::fs::write(&srv.desired, &hand)?;
    // The edit's If-Match is checked against the file as it is on disk now.
    s.click("[data-testid=confirm-ok]").await?;
    s.wait_text(".toast", "Preview again", SHORT).await?;
    assert_eq!(read(&srv.desired), hand, "the hand edit is not overwritten");

    // 3. Preview and apply.
    s.click("[data-testid=deployment-preview-big]").await?;
    s.wait_for("[data-testid=preview-changes]", SHORT).await?;
    s.click("[data-testid=confirm-ok]").await?;
    let text = wait_file(&srv.desired, "big active", |t| {
        t.contains("active_model: qwen3-235b-fp8")
    })
    .await?;
    for c in comments(&hand) {
        assert!(text.contains(&c), "lost {c:?}:\n{text}");
    }
    assert_eq!(
        crate::harness::active_models(&text),
        [
            ("coder".to_string(), None),
            ("vision".to_string(), None),
            ("big".to_string(), Some("qwen3-235b-fp8".to_string()))
        ]
    );
    s.wait_text("[data-testid=deployment-big]", "qwen3-235b-fp8", SHORT)
        .await?;
    Ok(())
}

/// On the demo (a file in the older shape: one deployment, `default`): gemma4 chosen in
/// the view, previewed (the plan stops qwen36 and starts gemma4), applied; the demo's
/// vLLM then serves gemma4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_deployment_switches_model_from_the_view() -> Result<()> {
    let (srv, _d, s) = demo_with_qwen36_ready().await?;
    s.goto(&format!("{}/#/deployments", srv.base)).await?;
    s.wait_text(
        "[data-testid=deployment-default]",
        "RedHatAI/Qwen3.6-35B-A3B-NVFP4",
        LONG,
    )
    .await?;
    pick(&s, "[data-testid=deployment-model-default]", "gemma4").await?;
    s.click("[data-testid=deployment-preview-default]").await?;
    s.wait_text("[data-testid=preview-changes]", "activate gemma4", SHORT)
        .await?;
    let plan = s.text("[data-testid=preview-plan]").await?;
    assert!(plan.contains("qwen36") && plan.contains("gemma4"), "{plan}");
    s.click("[data-testid=confirm-ok]").await?;
    let t = wait_file(&srv.desired, "active_model: gemma4", |t| {
        t.contains("active_model: gemma4")
    })
    .await?;
    assert!(t.contains("# simulated head"), "comments kept:\n{t}");
    assert!(!t.contains("deployments:"), "the older shape is kept:\n{t}");
    s.wait_text(
        "[data-testid=deployment-default]",
        "google/gemma-4-26B-A4B-it",
        LONG,
    )
    .await?;
    Ok(())
}
