//! The swap card, watched end to end: a swap that needs a download (the demo's fake Hub
//! and `hf` shim: 24 MiB at 3 MiB/s, so about eight seconds) names its phases in plain
//! words with durations, shows the download's %/bytes while it runs, its bar never goes
//! backwards, it never says "superseded" for the model just picked, and it ends with
//! "Switched to gemma4 in N s", collapsed, collecting no later log lines.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::harness::*;

/// What the card shows at one moment.
const SAMPLE: &str = "\
const q = (t) => document.querySelector(`[data-testid=${t}]`);
const rows = Array.from(q('swap-phases').children).map((li) => ({
  phase: li.dataset.phase, state: li.dataset.state,
  text: li.querySelector('.what').textContent,
  detail: li.querySelector('.detail').textContent,
  secs: li.querySelector('.secs').textContent }));
return { title: q('swap-title').textContent, badge: q('swap-state').textContent,
  bar: Number(q('swap-bar').getAttribute('aria-valuenow')), open: q('swap-more').open,
  logLines: q('swap-log').childElementCount, log: q('swap-log').textContent, rows };";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_with_a_download_is_followed_to_switched_in_n_s() -> Result<()> {
    let (srv, _d, s) = demo_with_qwen36_ready().await?;
    // gemma4 is in no host's cache yet: the swap downloads it.
    let st = state(&srv.base).await?;
    let cache = st["observed"]["hosts"]["spark1"]["hf_cache"].to_string();
    assert!(
        !cache.contains("gemma"),
        "gemma4 is cached already: {cache}"
    );

    s.exec("location.hash = '#/models'; return 1;", json!([]))
        .await?;
    s.click("[data-testid=activate-gemma4]").await?;
    s.wait_text("[data-testid=confirm-title]", "gemma4", SHORT)
        .await?;
    s.click("[data-testid=confirm-ok]").await?;
    s.wait_for("[data-testid=swap-card]", SHORT).await?;

    // Watch the card until it says how long the switch took (bounded).
    let mut samples: Vec<Value> = Vec::new();
    let deadline = std::time::Instant::now() + LONG;
    let last = loop {
        let v = s.exec(SAMPLE, json!([])).await?;
        let done = v["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Switched to gemma4 in"));
        samples.push(v.clone());
        if done {
            break v;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the card never said it switched; last: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Never "superseded" (the flash right after the click), and the bar only rises.
    let badges: Vec<&str> = samples.iter().filter_map(|v| v["badge"].as_str()).collect();
    assert!(!badges.contains(&"superseded"), "{badges:?}");
    let bars: Vec<i64> = samples.iter().filter_map(|v| v["bar"].as_i64()).collect();
    assert!(bars.windows(2).all(|w| w[0] <= w[1]), "backwards: {bars:?}");
    assert_eq!(bars.last(), Some(&100), "{bars:?}");
    // The download showed its progress as it ran: a percentage and bytes of a size.
    let download_details: Vec<String> = samples
        .iter()
        .flat_map(|v| v["rows"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["phase"] == "downloading" && r["state"] == "running")
        .filter_map(|r| r["detail"].as_str().map(str::to_owned))
        .collect();
    let with_progress: Vec<&String> = download_details
        .iter()
        .filter(|d| d.contains(" %") && d.contains(" of ") && d.contains("MB"))
        .collect();
    assert!(
        !with_progress.is_empty(),
        "no %/bytes while downloading: {download_details:?}"
    );
    assert!(badges.contains(&"downloading"), "{badges:?}");
    // The bar moves while the download runs (not only between steps).
    let mut while_downloading: Vec<i64> = samples
        .iter()
        .filter(|v| v["badge"] == "downloading")
        .filter_map(|v| v["bar"].as_i64())
        .collect();
    while_downloading.dedup();
    assert!(while_downloading.len() >= 2, "{while_downloading:?}");
    // Only the swap's operation is shown: a launcher check in between is not.
    assert!(!badges.contains(&"other"), "{badges:?}");

    // The end: plain words for every phase, each done with its duration, then "Ready".
    let title = last["title"].as_str().unwrap_or_default();
    let secs = title
        .strip_prefix("Switched to gemma4 in ")
        .context("the final title")?;
    assert!(
        secs.ends_with(" s") && secs.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "{title}"
    );
    assert_eq!(last["badge"], "ready", "{last}");
    let rows = last["rows"].as_array().context("rows")?;
    let phases: Vec<&str> = rows.iter().filter_map(|r| r["phase"].as_str()).collect();
    for want in [
        "stopping",
        "freeing",
        "downloading",
        "starting",
        "loading",
        "ready",
    ] {
        assert!(phases.contains(&want), "no {want} phase: {phases:?}");
    }
    for r in rows {
        assert_eq!(r["state"], "done", "{r}");
        let text = r["text"].as_str().unwrap_or_default();
        assert!(
            !text.starts_with('+') && !text.starts_with('-') && !text.contains('…'),
            "plan text, not words: {text}"
        );
        if r["phase"] != "ready" {
            assert!(r["secs"].as_str().is_some_and(|t| t.ends_with(" s")), "{r}");
        }
    }
    assert!(
        last["log"]
            .as_str()
            .unwrap_or_default()
            .contains("Application startup complete."),
        "the card carried the swap's log"
    );
    // Collapsed, and later operations' lines are not collected.
    assert_eq!(last["open"], json!(false), "collapsed at the end");
    let lines_at_end = last["logLines"].as_u64().context("log lines")?;
    let swap_op = state(&srv.base).await?["operation"]["id"]
        .as_u64()
        .context("the swap's operation")?;
    let r = reqwest::Client::new()
        .post(format!("{}/api/services/parakeet/restart", srv.base))
        .timeout(SHORT)
        .send()
        .await?;
    assert_eq!(r.status(), 202, "{}", r.text().await?);
    wait_state(&srv.base, None, "the restart ran and ended", |st| {
        st["operation"]["id"].as_u64() > Some(swap_op)
            && st["operation"]["outcome"]["state"] != "running"
    })
    .await?;
    let later = reqwest::Client::new()
        .get(format!("{}/api/operations/{}/logs", srv.base, swap_op + 1))
        .timeout(SHORT)
        .send()
        .await?;
    assert_eq!(later.status(), 200, "the later operation logged lines");
    // The page has the later operation's lines (its card on Cluster shows them) ...
    s.exec("location.hash = '#/cluster'; return 1;", json!([]))
        .await?;
    s.wait_js(
        "the page shows the later operation",
        SHORT,
        "return document.querySelector('[data-testid=op-body]').dataset.op === String(arguments[0]);",
        json!([swap_op + 1]),
    )
    .await?;
    s.click("[data-testid=op-body] [data-role=showlog]").await?;
    s.wait_js(
        "the later operation's lines in the page",
        SHORT,
        "return document.querySelector('[data-testid=op-body] [data-role=log]').childElementCount > 0;",
        json!([]),
    )
    .await?;
    // ... and the swap card's log did not grow.
    s.exec("location.hash = '#/models'; return 1;", json!([]))
        .await?;
    let now = s.exec(SAMPLE, json!([])).await?;
    assert_eq!(now["logLines"].as_u64(), Some(lines_at_end), "{now}");
    assert_eq!(now["title"], last["title"]);
    s.quit().await?;
    Ok(())
}

/// Cancel on the swap card, during the download: the operation ends cancelled (the API
/// says so and the plan is held), and the card says "cancelled" with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_on_the_swap_card_cancels_the_swap() -> Result<()> {
    let (srv, _d, s) = demo_with_qwen36_ready().await?;
    s.exec("location.hash = '#/models'; return 1;", json!([]))
        .await?;
    s.click("[data-testid=activate-gemma4]").await?;
    s.wait_text("[data-testid=confirm-title]", "gemma4", SHORT)
        .await?;
    s.click("[data-testid=confirm-ok]").await?;
    s.wait_text("[data-testid=swap-state]", "downloading", LONG)
        .await?;
    let op = s
        .exec(
            "return document.querySelector('[data-testid=swap-card]').dataset.op;",
            json!([]),
        )
        .await?;
    let op: u64 = op
        .as_str()
        .unwrap_or_default()
        .parse()
        .context("the card's operation")?;
    s.click("[data-testid=swap-cancel]").await?;
    s.wait_text("[data-testid=confirm-title]", &format!("#{op}"), SHORT)
        .await?;
    s.click("[data-testid=confirm-ok]").await?;
    let st = wait_state(&srv.base, None, "the swap cancelled", |st| {
        st["ended_operation"]["id"] == json!(op)
            && st["ended_operation"]["outcome"]["state"] == "cancelled"
    })
    .await?;
    assert!(st["held"].is_string(), "the plan waits: {}", st["held"]);
    s.wait_text("[data-testid=swap-state]", "cancelled", SHORT)
        .await?;
    let detail = s.text("[data-testid=swap-detail]").await?;
    assert!(detail.contains("cancelled"), "{detail}");
    let hidden = s
        .exec(
            "return document.querySelector('[data-testid=swap-cancel]').hidden;",
            json!([]),
        )
        .await?;
    assert_eq!(hidden, json!(true), "no Cancel once it ended");
    s.quit().await?;
    Ok(())
}
