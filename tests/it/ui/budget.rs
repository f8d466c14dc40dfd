//! First load of the demo page: what the browser's own network log says it received, from
//! navigation until the page has drawn the first state and every request it started (other
//! than the state stream, which stays open) has finished, is under 150 kB.
//!
//! The same run prints the figures, timings included (a measurement, not an assertion):
//! `cargo test --test it ui::budget -- --nocapture`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::harness::*;
use crate::harness::webdriver::Driver;

/// 150 kB (decimal, as Lighthouse counts).
const BUDGET: u64 = 150_000;

/// Records when the page first draws a state (`<html data-generation>` set by the renderer;
/// the document is observed, as it has no `<html>` yet when this runs).
const MARK_FIRST_STATE: &str = "\
new MutationObserver((_, o) => {
  if (!document.documentElement || document.documentElement.dataset.generation === undefined) return;
  window.__firstState = performance.now();
  o.disconnect();
}).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-generation'] });";

/// One request as the network log tells it.
#[derive(Default, Debug)]
struct Req {
    url: String,
    kind: String,
    /// Bytes on the wire once finished (headers and body, as encoded).
    finished: Option<u64>,
    failed: bool,
    /// The response headers' bytes.
    headers: u64,
    /// The body chunks received so far, as encoded on the wire and as decoded (Chromium
    /// reports a stream's encoded bytes late and in batches; an event stream is not
    /// compressed, so its decoded length is its length on the wire).
    encoded: u64,
    decoded: u64,
}

impl Req {
    fn bytes(&self) -> u64 {
        self.finished
            .unwrap_or(self.headers + self.encoded.max(self.decoded))
    }
}

fn fold(reqs: &mut BTreeMap<String, Req>, events: &[Value]) {
    for e in events {
        let p = &e["params"];
        let Some(id) = p["requestId"].as_str() else {
            continue;
        };
        let r = reqs.entry(id.to_string()).or_default();
        let n = |v: &Value| v.as_f64().unwrap_or(0.0) as u64;
        match e["method"].as_str().unwrap_or("") {
            "Network.requestWillBeSent" => {
                r.url = p["request"]["url"].as_str().unwrap_or("").to_string();
                r.kind = p["type"].as_str().unwrap_or("").to_string();
            }
            "Network.responseReceived" => r.headers = n(&p["response"]["encodedDataLength"]),
            "Network.dataReceived" => {
                r.encoded += n(&p["encodedDataLength"]);
                r.decoded += n(&p["dataLength"]);
            }
            "Network.loadingFinished" => r.finished = Some(n(&p["encodedDataLength"])),
            "Network.loadingFailed" => r.failed = true,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_load_of_the_demo_is_under_150_kb() -> Result<()> {
    let srv = demo_server().await?;
    let d = Driver::start().await?;
    // The demo is serving, so the first load is the page as a user normally meets it.
    let warm = d.session().await?;
    warm.goto(&format!("{}/#/cluster", srv.base)).await?;
    warm.wait_text("[data-testid=model-ready]", "ready", LONG)
        .await
        .context("qwen36 ready")?;
    warm.quit().await?;
    // A fresh browser profile: nothing cached.
    let s = d.session_recording_network().await?;
    s.viewport(1366, 900, false).await?;
    s.on_new_document(MARK_FIRST_STATE).await?;
    s.devtools_events().await?; // what came before the navigation is not the page's
    s.goto(&format!("{}/#/cluster", srv.base)).await?;
    s.wait_js(
        "the first state drawn",
        LONG,
        "return window.__firstState !== undefined;",
        json!([]),
    )
    .await?;

    // Every request started so far, but the stream, finishes (bounded by LONG).
    let mut reqs = BTreeMap::new();
    let deadline = std::time::Instant::now() + LONG;
    loop {
        fold(&mut reqs, &s.devtools_events().await?);
        let open: Vec<&str> = reqs
            .values()
            .filter(|r| r.kind != "EventSource" && r.finished.is_none() && !r.failed)
            .map(|r| r.url.as_str())
            .collect();
        if open.is_empty() {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "requests never finished: {open:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let mut total = 0;
    let mut lines = Vec::new();
    for r in reqs.values() {
        let bytes = r.bytes();
        total += bytes;
        lines.push(format!("{bytes:>8} B  {:<10} {}", r.kind, r.url));
    }
    let timing = s
        .exec(
            "const n = performance.getEntriesByType('navigation')[0];\
             return { dom_content_loaded_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd,\
                      first_state_ms: window.__firstState };",
            json!([]),
        )
        .await?;
    println!(
        "first load: {total} B on the wire in {} requests\n{}\ntimings (ms from navigation): {timing}",
        reqs.len(),
        lines.join("\n")
    );
    assert!(
        reqs.values().any(|r| r.url.ends_with("/app.js")),
        "the log saw the page's script: {lines:?}"
    );
    assert!(
        total < BUDGET,
        "first load is {total} B, over the {BUDGET} B budget:\n{}",
        lines.join("\n")
    );
    Ok(())
}
