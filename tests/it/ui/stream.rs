//! The page's state comes from the state stream (`GET /api/state/stream`), not from
//! polling; and a server restart under an open page makes it resync: the new run's
//! operation shows its own log, not the previous run's log of an operation with the same id.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::harness::*;
use crate::harness::webdriver::Driver;

/// The path of a request URL on `base` (None for other origins).
fn path_on<'a>(base: &str, url: &'a str) -> Option<&'a str> {
    url.strip_prefix(base)
        .map(|p| p.split(['?', '#']).next().unwrap_or(p))
}

/// A hand edit of desired.yaml reaches the open page through the stream, and in the
/// browser's network log there is one request of the stream and none to `/api/state`
/// from load until several observations later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_the_state_stream_and_never_polls() -> Result<()> {
    let srv = plain_server(&commented_fixture()).await?;
    let d = Driver::start().await?;
    let s = d.session_recording_network().await?;
    s.viewport(1280, 800, false).await?;
    s.goto(&format!("{}/#/cluster", srv.base)).await?;
    s.wait_text("[data-testid=header-model]", "qwen36", SHORT)
        .await?;
    let g0 = state(&srv.base).await?["observed"]["generation"]
        .as_u64()
        .context("a generation")?;

    // A change on disk arrives without the page asking.
    let text = read(&srv.desired).replace("active_model: qwen36", "active_model: gemma4");
    std::fs::write(&srv.desired, text)?;
    s.wait_text("[data-testid=header-model]", "gemma4", LONG)
        .await
        .context("the hand edit reached the page")?;
    // Several observations later (each one a published change the stream carried) ...
    wait_state(&srv.base, None, "four more observations", |st| {
        st["observed"]["generation"].as_u64() >= Some(g0 + 4)
    })
    .await?;
    // ... and the page has rendered the newest of them.
    let want = state(&srv.base).await?["observed"]["generation"].clone();
    s.wait_js(
        "the page shows the newest observation",
        SHORT,
        "return Number(document.documentElement.dataset.generation) >= arguments[0];",
        json!([want]),
    )
    .await
    .context("the page's state keeps up")?;

    let sent = s.requests_sent().await?;
    let paths: Vec<&str> = sent
        .iter()
        .filter_map(|(_, url)| path_on(&srv.base, url))
        .collect();
    let streams = paths.iter().filter(|p| **p == "/api/state/stream").count();
    let polls = paths.iter().filter(|p| **p == "/api/state").count();
    assert_eq!(streams, 1, "one stream, never reopened: {paths:?}");
    assert_eq!(polls, 0, "no request to /api/state: {paths:?}");
    s.quit().await?;
    Ok(())
}

/// The lines of each operation the server's log backlog holds, by operation id.
async fn operation_logs(base: &str, last: u64) -> Result<BTreeMap<u64, BTreeSet<String>>> {
    let mut out = BTreeMap::new();
    let http = reqwest::Client::new();
    for id in 1..=last {
        let r = http
            .get(format!("{base}/api/operations/{id}/logs"))
            .timeout(SHORT)
            .send()
            .await?;
        if r.status() != 200 {
            continue;
        }
        let lines = r
            .text()
            .await?
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| l["text"].as_str().map(str::to_owned))
            .filter(|t| !t.trim().is_empty())
            .collect();
        out.insert(id, lines);
    }
    Ok(out)
}

/// The server restarts under an open page (operation ids and log sequence numbers begin
/// again); an operation then started from the page shows the new run's log in the
/// operation card, and none of the lines the previous run logged for that id. The page is
/// the same document throughout (no reload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_page_shows_the_new_operations_log() -> Result<()> {
    let mut srv = demo_server().await?;
    let (_d, s) = browser().await?;
    s.goto(&format!("{}/#/cluster", srv.base)).await?;
    s.wait_text("[data-testid=model-ready]", "ready", LONG)
        .await
        .context("qwen36 ready")?;
    let before = wait_state(&srv.base, None, "the first run's operation ended", |st| {
        st["operation"]["outcome"]["state"] == "succeeded" && st["busy"] == false
    })
    .await?;
    let last = before["operation"]["id"]
        .as_u64()
        .context("an operation id")?;
    // The card's log, open, shows the first run's operation.
    s.click("[data-testid=op-body] [data-role=showlog]").await?;
    s.wait_js(
        "the first run's log in the card",
        SHORT,
        "return document.querySelector('[data-testid=op-body] [data-role=log]').childElementCount > 0;",
        json!([]),
    )
    .await?;
    let old = operation_logs(&srv.base, last).await?;
    let epoch = s
        .exec("return document.documentElement.dataset.epoch;", json!([]))
        .await?;
    assert!(epoch.as_str().is_some_and(|e| !e.is_empty()), "{epoch}");
    s.exec("window.__samePage = 'yes'; return 1;", json!([]))
        .await?;

    srv.restart().await?;
    // The page notices by itself (the stream reconnects and carries a new epoch) ...
    s.wait_js(
        "the page reconnected to the new server",
        LONG,
        "const e = document.documentElement.dataset.epoch; return !!e && e !== arguments[0];",
        json!([epoch]),
    )
    .await
    .context("the restarted server's state reached the page")?;
    // ... and an operation started from it is the new run's operation 1.
    s.exec("location.hash = '#/models'; return 1;", json!([]))
        .await?;
    s.click("[data-testid=activate-gemma4]").await?;
    s.wait_text("[data-testid=confirm-title]", "gemma4", SHORT)
        .await?;
    s.click("[data-testid=confirm-ok]").await?;
    let after = wait_state(&srv.base, None, "gemma4's operation ended", |st| {
        st["desired"]["active_model"] == "gemma4"
            && st["operation"]["outcome"]["state"] == "succeeded"
            && st["busy"] == false
    })
    .await?;
    let id = after["operation"]["id"]
        .as_u64()
        .context("an operation id")?;
    assert_eq!(id, 1, "ids began again: {}", after["operation"]);
    let new = operation_logs(&srv.base, id).await?;
    let new_lines = new.get(&id).cloned().unwrap_or_default();
    let old_lines = old.get(&id).cloned().unwrap_or_default();
    let only_new: Vec<&String> = new_lines.difference(&old_lines).collect();
    let only_old: Vec<&String> = old_lines.difference(&new_lines).collect();
    assert!(
        !only_new.is_empty() && !only_old.is_empty(),
        "the two runs' operation {id} logged different lines"
    );

    s.exec("location.hash = '#/cluster'; return 1;", json!([]))
        .await?;
    let shown = s
        .wait_js(
            "the new operation's log in the card",
            LONG,
            "const l = document.querySelector('[data-testid=op-body] [data-role=log]'); \
             const t = l.hidden ? '' : l.innerText; \
             return arguments[0].every((x) => t.includes(x)) ? t : '';",
            json!([only_new]),
        )
        .await
        .context("the card shows the new run's lines")?;
    let shown = shown.as_str().unwrap_or_default();
    // A line of the previous run that is no part of any new line must not show.
    let stale: Vec<&&String> = only_old
        .iter()
        .filter(|l| shown.contains(l.as_str()) && !new_lines.iter().any(|n| n.contains(l.as_str())))
        .collect();
    assert!(
        stale.is_empty(),
        "the previous run's lines of operation {id}: {stale:?}"
    );
    assert_eq!(
        s.exec("return window.__samePage;", json!([])).await?,
        json!("yes"),
        "the page was not reloaded"
    );
    s.quit().await?;
    Ok(())
}
