//! The browser UI in real headless Chromium, driven over WebDriver, against the real server.
//!
//! Two kinds of server: [`demo_server`] (the whole product on two simulated Sparks: the
//! demo's local transport, fake launcher, fake vLLM, fake docker/hf) and [`plain_server`]
//! (the real loop and API over a given desired file whose hosts are unreachable or absent).
//! Both come from [`serve`], the one place that composes loop + HTTP app; when
//! `app::start` serves the API itself, only `serve` changes.
//!
//! What is asserted is the state of the world: `desired.yaml` on disk, what the API says,
//! what the page shows. Screenshots for the README: `SPARK_SCREENSHOTS=1 cargo test --test
//! it ui::screenshots` (without the variable the test still renders every view, to a temp
//! dir).

mod a11y;
mod budget;
mod charts;
mod deployments;
mod harness;
mod history;
mod models;
mod phone;
mod settings;
mod stream;
mod swap;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::harness::webdriver;

use harness::*;

/// Activate another model: confirmation, live log until `Application startup complete.`,
/// the new model ready, and `active_model` in desired.yaml.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activate_streams_log_and_new_model_becomes_ready() -> Result<()> {
    // The demo starts qwen36; wait for it to serve before swapping.
    let (srv, _d, s) = demo_with_qwen36_ready().await?;
    s.goto(&format!("{}/#/models", srv.base)).await?;
    s.click("[data-testid=activate-gemma4]").await?;
    s.wait_text("[data-testid=confirm-title]", "gemma4", SHORT)
        .await?;
    s.click("[data-testid=confirm-ok]").await?;
    let t = wait_file(&srv.desired, "active_model: gemma4", |t| {
        t.contains("active_model: gemma4")
    })
    .await?;
    assert!(t.contains("# simulated head"), "comments kept:\n{t}");
    s.wait_for("[data-testid=swap-card]", SHORT).await?;
    s.wait_text(
        "[data-testid=swap-log]",
        "Application startup complete.",
        LONG,
    )
    .await?;
    if let Err(e) = s.wait_text("[data-testid=swap-state]", "ready", LONG).await {
        // Say what the server said meanwhile: the page's view vs the API's.
        let st = state(&srv.base).await?;
        let model: Vec<_> = st["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["kind"] == "model")
            .collect();
        let page = s
            .text("[data-testid=swap-detail]")
            .await
            .unwrap_or_default();
        anyhow::bail!(
            "{e}\npage detail: {page}\nAPI operation: {}\nended_operation: {}\nmodel resources: {model:?}\nobserved vllm: {}",
            st["operation"],
            st["ended_operation"],
            st["observed"]["vllm"]
        );
    }
    assert!(s
        .text("[data-testid=header-model]")
        .await?
        .contains("gemma4 · ready"));
    // The API agrees: vLLM serves gemma4's repo.
    let st = state(&srv.base).await?;
    assert_eq!(st["desired"]["active_model"], json!("gemma4"));
    let served = st["observed"]["vllm"]["known"]["value"]["models"].to_string();
    assert!(
        served.contains("google/gemma-4-26B-A4B-it"),
        "served: {served}"
    );
    s.quit().await?;
    Ok(())
}

/// A settings change lands in desired.yaml with every comment intact; an invalid value is
/// refused inline and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_change_lands_in_desired_with_comments() -> Result<()> {
    let srv = plain_server(&commented_fixture()).await?;
    let before = read(&srv.desired);
    let (_d, s) = browser().await?;
    s.goto(&format!("{}/#/models", srv.base)).await?;
    s.click("[data-testid=settings-gemma4] summary").await?;
    let form = "[data-testid=settings-form-gemma4]";
    // Invalid: 1.5 (the field is the file's fraction; 150 % is not a fraction).
    s.type_into(&format!("{form} [name=gpu_memory]"), "1.5")
        .await?;
    s.click(&format!("{form} button[type=submit]")).await?;
    s.wait_text(
        &format!("{form} [data-msg=gpu_memory]"),
        "between 0 and 1",
        SHORT,
    )
    .await?;
    assert_eq!(
        read(&srv.desired),
        before,
        "nothing written for an invalid value"
    );
    // Valid.
    s.type_into(&format!("{form} [name=gpu_memory]"), "0.9")
        .await?;
    s.type_into(&format!("{form} [name=max_context]"), "65536")
        .await?;
    s.exec(
        "const s = document.querySelector(arguments[0]); s.value = 'true'; s.dispatchEvent(new Event('input', {bubbles: true}));",
        json!([format!("{form} [name=prefix_caching]")]),
    )
    .await?;
    s.click(&format!("{form} button[type=submit]")).await?;
    let after = wait_file(&srv.desired, "gemma4's overrides", |t| t.contains("gemma4")).await?;
    let d: Value = serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&after)?)?;
    assert_eq!(
        d["overrides"]["gemma4"],
        json!({"gpu_memory": 0.9, "max_context": 65536, "prefix_caching": true}),
        "{after}"
    );
    assert_eq!(
        comments(&after),
        comments(&before),
        "every comment kept:\n{after}"
    );
    s.quit().await?;
    Ok(())
}

/// Someone else changes the file while it is being edited: the UI shows the difference,
/// writes nothing, and lets the person reload theirs or save over it knowingly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_editor_conflict_shows_difference_and_never_overwrites() -> Result<()> {
    let srv = plain_server(UNCONFIGURED).await?;
    let (_d, s) = browser().await?;
    s.goto(&format!("{}/#/desired", srv.base)).await?;
    s.wait_text("[data-testid=desired-text]", "", SHORT).await?;
    s.wait_js(
        "editor loaded",
        SHORT,
        "return document.querySelector('[data-testid=desired-text]').value.includes('hosts: {}');",
        json!([]),
    )
    .await?;
    // Mine: a comment at the end. Theirs (on disk, meanwhile): another comment.
    s.exec(
        "const t = document.querySelector('[data-testid=desired-text]'); t.value += '# mine\\n'; t.dispatchEvent(new Event('input'));",
        json!([]),
    )
    .await?;
    let theirs = format!("{UNCONFIGURED}# theirs\n");
    std::fs::write(&srv.desired, &theirs)?;
    s.click("[data-testid=desired-save]").await?;
    s.wait_for("[data-testid=desired-conflict]", SHORT).await?;
    let diff = s.text("[data-testid=desired-diff]").await?;
    assert!(
        diff.contains("− # theirs") && diff.contains("+ # mine"),
        "diff: {diff}"
    );
    assert_eq!(read(&srv.desired), theirs, "nothing overwritten");
    // Reload theirs: the editor shows the file on disk.
    s.click("[data-testid=conflict-reload]").await?;
    let v = s
        .exec(
            "return document.querySelector('[data-testid=desired-text]').value;",
            json!([]),
        )
        .await?;
    assert_eq!(v.as_str(), Some(theirs.as_str()));
    // Conflict again, and this time save over theirs knowingly.
    s.exec(
        "const t = document.querySelector('[data-testid=desired-text]'); t.value += '# mine again\\n'; t.dispatchEvent(new Event('input'));",
        json!([]),
    )
    .await?;
    std::fs::write(&srv.desired, format!("{theirs}# theirs again\n"))?;
    s.click("[data-testid=desired-save]").await?;
    s.wait_for("[data-testid=desired-conflict]", SHORT).await?;
    s.click("[data-testid=conflict-retry]").await?;
    wait_file(&srv.desired, "mine again", |t| {
        t == format!("{theirs}# mine again\n")
    })
    .await?;
    // An invalid file is refused with its line.
    s.exec(
        "const t = document.querySelector('[data-testid=desired-text]'); t.value = t.value.replace('version: 1', 'version: 2'); t.dispatchEvent(new Event('input'));",
        json!([]),
    )
    .await?;
    s.click("[data-testid=desired-save]").await?;
    s.wait_text("[data-testid=desired-diags]", "line 2", SHORT)
        .await?;
    assert!(read(&srv.desired).contains("version: 1"));
    s.quit().await?;
    Ok(())
}

/// The editor's 3-way merge: changes that do not overlap are merged into the editor
/// (nothing written until Save, which then succeeds against the file on disk); where both
/// changed the same lines, the two versions are shown side by side and the person keeps
/// one for each before the merge is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_editor_merges_changes_that_do_not_overlap() -> Result<()> {
    let srv = plain_server(UNCONFIGURED).await?;
    let (_d, s) = browser().await?;
    s.goto(&format!("{}/#/desired", srv.base)).await?;
    s.wait_js(
        "editor loaded",
        SHORT,
        "return document.querySelector('[data-testid=desired-text]').value.includes('hosts: {}');",
        json!([]),
    )
    .await?;
    let edit = |js: &'static str| {
        format!("const t = document.querySelector('[data-testid=desired-text]'); {js} t.dispatchEvent(new Event('input'));")
    };
    let value = "return document.querySelector('[data-testid=desired-text]').value;";
    // Mine: a line at the top. Theirs: a line at the end.
    s.exec(
        &edit("t.value = '# mine at the top\\n' + t.value;"),
        json!([]),
    )
    .await?;
    let theirs = format!("{UNCONFIGURED}# theirs\n");
    std::fs::write(&srv.desired, &theirs)?;
    s.click("[data-testid=desired-save]").await?;
    s.wait_for("[data-testid=desired-merged]", SHORT).await?;
    assert_eq!(read(&srv.desired), theirs, "nothing written before Save");
    let merged = format!("# mine at the top\n{theirs}");
    let v = s.exec(value, json!([])).await?;
    assert_eq!(v.as_str(), Some(merged.as_str()));
    s.click("[data-testid=desired-save]").await?;
    wait_file(&srv.desired, "the merge", |t| t == merged).await?;
    // Overlapping: both change the last line.
    s.exec(
        &edit("t.value = t.value.replace('# theirs\\n', '# mine instead\\n');"),
        json!([]),
    )
    .await?;
    let disk = merged.replace("# theirs\n", "# theirs again\n");
    std::fs::write(&srv.desired, &disk)?;
    s.click("[data-testid=desired-save]").await?;
    s.wait_for("[data-testid=hunk-0]", SHORT).await?;
    let hunk = s.text("[data-testid=hunk-0]").await?;
    assert!(
        hunk.contains("# mine instead") && hunk.contains("# theirs again"),
        "side by side: {hunk}"
    );
    let merge_disabled = s
        .exec(
            "return document.querySelector('[data-testid=conflict-merge]').disabled;",
            json!([]),
        )
        .await?;
    assert_eq!(merge_disabled, json!(true), "nothing chosen yet");
    s.click("[data-testid=hunk-0-mine]").await?;
    s.click("[data-testid=conflict-merge]").await?;
    let want = merged.replace("# theirs\n", "# mine instead\n");
    let v = s.exec(value, json!([])).await?;
    assert_eq!(v.as_str(), Some(want.as_str()));
    assert_eq!(read(&srv.desired), disk, "nothing written before Save");
    s.click("[data-testid=desired-save]").await?;
    wait_file(&srv.desired, "mine kept", |t| t == want).await?;
    s.quit().await?;
    Ok(())
}

/// Nothing configured: the onboarding view; adding a host from Setup writes it to the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_and_adding_a_host() -> Result<()> {
    let srv = plain_server(UNCONFIGURED).await?;
    let (_d, s) = browser().await?;
    s.goto(&format!("{}/", srv.base)).await?;
    s.wait_text(
        "[data-testid=cluster-onboarding]",
        "Nothing is configured yet",
        SHORT,
    )
    .await?;
    s.goto(&format!("{}/#/setup", srv.base)).await?;
    s.wait_for("[data-testid=onboarding]", SHORT).await?;
    s.type_into("#hf-name", "spark1").await?;
    s.type_into("#hf-address", "spark1.local").await?;
    s.click("[data-testid=host-form] button[type=submit]")
        .await?;
    s.wait_text("[data-testid=host-form] [data-msg=address]", "IPv4", SHORT)
        .await?;
    s.type_into("#hf-address", "127.0.0.9").await?;
    s.type_into("#hf-port", "1").await?;
    s.click("[data-testid=host-form] button[type=submit]")
        .await?;
    let t = wait_file(&srv.desired, "spark1", |t| t.contains("spark1")).await?;
    let d: serde_yaml::Value = serde_yaml::from_str(&t)?;
    assert_eq!(
        d["hosts"]["spark1"]["address"].as_str(),
        Some("127.0.0.9"),
        "{t}"
    );
    assert!(t.contains("# spark-control desired state"), "{t}");
    s.wait_for("[data-testid=host-spark1]", SHORT).await?;
    s.quit().await?;
    Ok(())
}

/// Downloads: paste a repo, watch the bar reach 100 %, then the pre-filled catalog dialog.
/// Needs the downloads API (`/api/downloads`), which this build does not have yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_bar_reaches_100_percent() -> Result<()> {
    let srv = demo_server().await?;
    let (_d, s) = browser().await?;
    s.goto(&format!("{}/#/downloads", srv.base)).await?;
    s.type_into("#dl-repo", "https://huggingface.co/org/Tiny-Model")
        .await?;
    s.click("[data-testid=download-form] button[type=submit]")
        .await?;
    // The new download is listed first (newest at the top, where the form is), above the
    // demo's own earlier one.
    let first_row = "const r = document.querySelectorAll('[data-testid^=download-dl-]'); return r.length >= 2 && Array.from(r).some(x => x.innerText.includes('org/Tiny-Model')) ? r[0].innerText : '';";
    let first = s
        .wait_js("a download row", SHORT, first_row, json!([]))
        .await?;
    anyhow::ensure!(
        first.as_str().unwrap_or("").contains("org/Tiny-Model"),
        "the new download is not at the top: {first}"
    );
    // The row of this download (the demo's own declared download is listed too): its
    // percentage only rises, and reaches 100 %.
    let pct_of_row = "const row = Array.from(document.querySelectorAll('[data-testid^=download-dl-]')).find(r => r.innerText.includes('org/Tiny-Model')); if (!row) return null; return parseInt(row.querySelector('[data-testid=download-pct]').innerText, 10);";
    let mut seen: Vec<i64> = Vec::new();
    let deadline = std::time::Instant::now() + LONG;
    while seen.last() != Some(&100) {
        assert!(
            std::time::Instant::now() < deadline,
            "the bar did not reach 100 %: {seen:?}"
        );
        if let Some(p) = s.exec(pct_of_row, json!([])).await?.as_i64() {
            if seen.last() != Some(&p) {
                seen.push(p);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {seen:?}"
    );
    assert!(
        seen.len() >= 3,
        "the bar should move through several values: {seen:?}"
    );
    s.wait_for("[data-testid=catalog-dialog]", SHORT).await?;
    let v = s.exec("return [document.querySelector('#cat-name').value, document.querySelector('#cat-repo').value];", json!([])).await?;
    assert_eq!(v, json!(["tiny-model", "org/Tiny-Model"]));
    s.click("[data-testid=catalog-save]").await?;
    wait_file(&srv.desired, "tiny-model", |t| t.contains("tiny-model:")).await?;
    s.quit().await?;
    Ok(())
}

/// Every main view renders at desktop (1280×800) and phone (390×844) width: each
/// screenshot is a real PNG of the viewport's size. With `SPARK_SCREENSHOTS=1` the PNGs go
/// to docs/screenshots/ (how the README's pictures are made); otherwise to a temp dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots() -> Result<()> {
    let srv = demo_server().await?;
    let (_d, s) = browser().await?;
    let tmp = tempfile::tempdir()?;
    let out = if std::env::var("SPARK_SCREENSHOTS").is_ok() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
    } else {
        tmp.path().to_path_buf()
    };
    s.goto(&format!("{}/#/cluster", srv.base)).await?;
    s.wait_text("[data-testid=model-ready]", "ready", LONG)
        .await?;
    // Let a few polls fill the plots.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for (w, h, mobile, tag) in [(1280, 800, false, "desktop"), (390, 844, true, "phone")] {
        s.viewport(w, h, mobile).await?;
        for view in [
            "cluster",
            "deployments",
            "models",
            "services",
            "plan",
            "desired",
            "setup",
            "events",
            "updates",
            "downloads",
        ] {
            s.goto(&format!("{}/#/{view}", srv.base)).await?;
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let file = out.join(format!("{view}-{tag}.png"));
            s.screenshot(&file).await?;
            let png = std::fs::read(&file)?;
            assert!(
                png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 24,
                "{view}-{tag}: not a PNG"
            );
            let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
            assert!(width >= w, "{view}-{tag}: {width} px wide, viewport {w}");
        }
    }
    // A swap in progress: confirmation, then the live log.
    s.viewport(1280, 800, false).await?;
    s.goto(&format!("{}/#/models", srv.base)).await?;
    s.click("[data-testid=activate-gemma4]").await?;
    s.wait_text("[data-testid=confirm-title]", "gemma4", SHORT)
        .await?;
    s.screenshot(&out.join("activate-confirm-desktop.png"))
        .await?;
    s.click("[data-testid=confirm-ok]").await?;
    s.wait_text("[data-testid=swap-log]", "launch", LONG)
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.screenshot(&out.join("swap-desktop.png")).await?;
    s.quit().await?;
    Ok(())
}

#[test]
fn chromium_is_installed() {
    assert!(
        webdriver::available(),
        "install the UI test browser: apt-get install -y chromium chromium-driver"
    );
}

/// At phone width no view is wider than the screen (wide tables and the tab strip scroll
/// inside themselves); on the simulated Sparks in steady state, live updates (new GPU
/// numbers, latencies, plots) do not move anything on the Cluster view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_width_fits_and_ticks_do_not_move_the_layout() -> Result<()> {
    let srv = plain_server(&commented_fixture()).await?;
    let (_d, s) = browser().await?;
    s.viewport(390, 844, true).await?;
    for view in [
        "cluster",
        "models",
        "downloads",
        "services",
        "updates",
        "events",
        "plan",
        "desired",
        "setup",
    ] {
        s.goto(&format!("{}/#/{view}", srv.base)).await?;
        s.wait_for(&format!("[data-testid=view-{view}]"), SHORT)
            .await?;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let w = s
            .exec(
                "return [document.documentElement.scrollWidth, innerWidth];",
                json!([]),
            )
            .await?;
        assert!(
            w[0].as_u64() <= w[1].as_u64(),
            "{view}: page {} px wide on a {} px screen",
            w[0],
            w[1]
        );
    }
    s.quit().await?;
    // Steady state on the simulated Sparks: numbers change on every tick, boxes must not.
    let srv = demo_server().await?;
    let s = _d.session().await?;
    s.viewport(1280, 800, false).await?;
    s.goto(&format!("{}/#/cluster", srv.base)).await?;
    s.wait_text("[data-testid=model-ready]", "ready", LONG)
        .await?;
    s.wait_text("[data-testid=header-op]", "in sync", LONG)
        .await?;
    // Boxes of the cards, headings and table rows (not the header chips, whose text says
    // what runs now and may legitimately change).
    let rects = "return Array.from(document.querySelectorAll('main .card, main h3, main tr')).map(e => { const r = e.getBoundingClientRect(); return [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height), e.innerText.slice(0, 60)]; });";
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = s.exec(rects, json!([])).await?;
    tokio::time::sleep(Duration::from_secs(4)).await; // several state events
    let after = s.exec(rects, json!([])).await?;
    let (b, a) = (
        before.as_array().expect("list"),
        after.as_array().expect("list"),
    );
    assert_eq!(b.len(), a.len(), "elements appeared or vanished: {after}");
    let moved: Vec<String> = b
        .iter()
        .zip(a)
        .filter(|(x, y)| x.as_array().map(|v| &v[..4]) != y.as_array().map(|v| &v[..4]))
        .map(|(x, y)| format!("{x} -> {y}"))
        .collect();
    if !moved.is_empty() {
        let client = reqwest::Client::new();
        let st: serde_json::Value = client
            .get(format!("{}/api/state", srv.base))
            .send()
            .await?
            .json()
            .await?;
        eprintln!(
            "operation: {}\nlast_op plan: {}",
            st["operation"], st["operation"]["plan_text"]
        );
        let logs = client
            .get(format!(
                "{}/api/operations/{}/logs",
                srv.base, st["operation"]["id"]
            ))
            .send()
            .await?
            .text()
            .await?;
        eprintln!("op logs:\n{logs}");
    }
    assert!(
        moved.is_empty(),
        "the layout moved between state ticks:\n{}",
        moved.join("\n")
    );
    s.quit().await?;
    Ok(())
}

/// Services: stopping Magpie from the Services view writes `running: false` (comments
/// kept) and the container really stops on its host; Start brings it back.
/// Updates: the banner's "N commits behind", Apply with its confirmation, the build's lines
/// in the streamed log, and the launcher checkout really at the upstream tip afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_launcher_updates_from_the_ui() -> Result<()> {
    let srv = demo_server().await?;
    let demo = srv._demo.as_ref().expect("a demo server");
    let base = demo.sim.base().to_path_buf();
    let pid_alive = |ip: &str, name: &str| container_alive(&base, ip, name);
    let (_d, s) = browser().await?;
    s.goto(&format!("{}/#/services", srv.base)).await?;
    s.wait_text("[data-testid=service-health-magpie]", "healthy", LONG)
        .await?;
    // The demo's first update check shows the "commits behind" banner above the views,
    // which moves every row down: a click between ChromeDriver's hit test and its mouse
    // events then lands beside the button (no dialog, no error: the race behind a failed
    // full run). Wait for the page the clicks are aimed at.
    s.wait_text("[data-testid=update-banner]", "behind", LONG)
        .await?;
    assert!(pid_alive("127.0.0.3", "magpie"));
    let before = read(&srv.desired);
    s.click("[data-testid=service-stop-magpie]").await?;
    s.wait_for("[data-testid=confirm-ok]", SHORT).await?;
    s.click("[data-testid=confirm-ok]").await?;
    let after = wait_file(&srv.desired, "magpie running: false", |t| {
        t.lines()
            .any(|l| l.contains("magpie:") && l.contains("running: false"))
    })
    .await?;
    assert_eq!(comments(&before), comments(&after), "comments must stay");
    let deadline = std::time::Instant::now() + LONG;
    while pid_alive("127.0.0.3", "magpie") {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "magpie still runs on spark2"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.click("[data-testid=service-start-magpie]").await?;
    if s.exec(
        "return !!document.querySelector('[data-testid=confirm-dialog]').open;",
        json!([]),
    )
    .await?
        == json!(true)
    {
        s.click("[data-testid=confirm-ok]").await?;
    }
    let deadline = std::time::Instant::now() + LONG;
    while !pid_alive("127.0.0.3", "magpie") {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "magpie did not start again on spark2"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_file(&srv.desired, "magpie running: true", |t| {
        t.lines()
            .any(|l| l.contains("magpie:") && l.contains("running: true"))
    })
    .await?;

    // Updates: the demo's upstream is two commits ahead.
    s.goto(&format!("{}/#/updates", srv.base)).await?;
    s.wait_text("[data-testid=updates-behind]", "2 commits behind", LONG)
        .await?;
    // The detected launcher generation (the demo's is B) and the addresses `-n` gets.
    s.wait_text(
        "[data-testid=launcher-generation]",
        "B (mid/late 2026",
        LONG,
    )
    .await?;
    s.wait_text("[data-testid=launcher-nodes]", "spark1: 127.0.1.2", SHORT)
        .await?;
    s.click("[data-testid=updates-apply]").await?;
    s.wait_for("[data-testid=confirm-ok]", SHORT).await?;
    s.click("[data-testid=confirm-ok]").await?;
    s.wait_text(
        "[data-testid=updates-log]",
        "Building image vllm-node",
        LONG,
    )
    .await?;
    s.wait_text("[data-testid=updates-behind]", "up to date", LONG)
        .await?;
    let card = s.text("[data-testid=updates-body]").await?;
    anyhow::ensure!(
        !card.contains("null"),
        "the Updates card shows null: {card}"
    );
    let launcher = base.join("127.0.0.2").join("spark-vllm-docker");
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&launcher)
        .args(["rev-list", "--count", "HEAD..origin/main"])
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "the checkout is at the upstream tip"
    );
    s.quit().await?;
    Ok(())
}

/// With an admin token configured: the page asks for it before it shows anything, a wrong
/// token is refused (the prompt says so, nothing shows as signed in, nothing changes), the
/// right one signs the browser in with an HttpOnly cookie that script cannot read. Then the update-policy selector pins
/// the launcher (a malformed commit is refused in the form), and a service moves to the
/// other host — in desired.yaml, comments kept, and on the simulated hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_update_policy_and_moving_a_service() -> Result<()> {
    let srv = demo_server_with_token(Some("right-token")).await?;
    let demo = srv._demo.as_ref().expect("a demo server");
    let sim = demo.sim.base().to_path_buf();
    let launcher = sim.join("127.0.0.2").join("spark-vllm-docker");
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&launcher)
        .args(["rev-parse", "HEAD"])
        .output()?;
    let head = String::from_utf8_lossy(&out.stdout).trim().to_string();
    anyhow::ensure!(head.len() == 40, "no launcher HEAD: {head:?}");
    let original = read(&srv.desired);

    let (_d, s) = browser().await?;
    s.goto(&format!("{}/#/updates", srv.base)).await?;
    // Reads need the token on this server: the page asks for it at once.
    let prompt = "return document.querySelector('[data-testid=token-dialog]').open;";
    s.wait_js("the sign-in prompt", LONG, prompt, json!([]))
        .await?;
    // A wrong token is refused by the server: the dialog stays open and says so, nothing
    // is shown as signed in, nothing is stored in the page.
    s.type_into("#td-token", "wrong-token").await?;
    s.click("[data-testid=token-save]").await?;
    s.wait_text("[data-testid=token-msg]", "not the admin token", SHORT)
        .await?;
    anyhow::ensure!(
        dialog_open(&s, "token-dialog").await?,
        "the prompt stays open"
    );
    let label = s.text("[data-testid=token-button]").await?;
    anyhow::ensure!(
        !label.contains('✓'),
        "a wrong token shown as valid: {label}"
    );
    assert_eq!(
        read(&srv.desired),
        original,
        "a wrong token must change nothing"
    );
    // The right one signs in: the page loads, and the credential is an HttpOnly cookie —
    // neither script nor storage can read it.
    s.type_into("#td-token", "right-token").await?;
    s.click("[data-testid=token-save]").await?;
    s.wait_text("[data-testid=token-button]", "✓", SHORT)
        .await?;
    // The race this test once lost: "signed in ✓" shows as soon as the server accepts the
    // token, but the page's first state (fetched only after that) is not rendered yet.
    // When it lands, the launcher facts and the update banner appear above the policy
    // form and its submit button moves down (≈ 100 px at 1280×800). A click sent meanwhile
    // is aimed at where the button *was* (chromedriver computes the point, then the page
    // re-lays out, then the mouse event lands on whatever is there now): nothing is
    // submitted and a 10 s wait below fails. So wait for the state the clicks need — the
    // server's launcher facts rendered in this view (the layout settled) — not for the
    // form being visible, which it is before any state arrives.
    s.wait_text("[data-testid=updates-behind]", "behind", LONG)
        .await?;
    s.wait_for("[data-testid=policy-form]", SHORT).await?;
    let leaked = s
        .exec(
            "return [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage)].join(' ');",
            json!([]),
        )
        .await?;
    anyhow::ensure!(
        !leaked.as_str().unwrap_or("").contains("right-token")
            && !leaked
                .as_str()
                .unwrap_or("")
                .contains("spark_control_session"),
        "the token or session is readable by script: {leaked}"
    );
    pick(&s, "[data-testid=policy-select]", "pin").await?;
    let pin_shown = "return !document.querySelector('[data-testid=pin-field]').hidden;";
    s.wait_js("the pin field", SHORT, pin_shown, json!([]))
        .await?;
    let submit = "[data-testid=policy-form] button[type=submit]";

    // A malformed commit never leaves the form.
    s.type_into("#pin", "not-a-commit").await?;
    s.click(submit).await?;
    s.wait_text(
        "[data-testid=policy-form] [data-msg=pin]",
        "7 to 40 hex digits",
        SHORT,
    )
    .await?;

    // The pin lands with no second prompt, and the file keeps its comments.
    s.type_into("#pin", &head).await?;
    s.click(submit).await?;
    let pinned = wait_file(&srv.desired, "the launcher pinned", |t| {
        t.contains(&head) && t.lines().any(|l| l.contains("pin"))
    })
    .await?;
    anyhow::ensure!(
        !dialog_open(&s, "token-dialog").await?,
        "signed in: no second prompt"
    );
    assert_eq!(comments(&original), comments(&pinned), "comments must stay");
    // The API's desired state trails the file (the loop re-reads it on the directory
    // watch's event): wait until it is in force there, do not read it once.
    let pin_in_force = wait_state(&srv.base, Some("right-token"), "the pin in force", |st| {
        st["desired"]["updates"]["launcher"]["pin"] == json!(head)
    })
    .await?;
    assert_eq!(
        pin_in_force["desired"]["updates"]["launcher"]["pin"],
        json!(head)
    );

    // Move magpie from spark2 to spark1: no second prompt (the token is kept).
    s.goto(&format!("{}/#/services", srv.base)).await?;
    s.wait_text("[data-testid=service-health-magpie]", "healthy", LONG)
        .await?;
    assert!(container_alive(&sim, "127.0.0.3", "magpie"));
    assert!(!container_alive(&sim, "127.0.0.2", "magpie"));
    pick(&s, "[data-testid=service-host-magpie]", "spark1").await?;
    s.wait_for("[data-testid=confirm-ok]", SHORT).await?;
    s.click("[data-testid=confirm-ok]").await?;
    let moved = wait_file(&srv.desired, "magpie on spark1", |t| {
        t.lines()
            .any(|l| l.contains("magpie:") && l.contains("host: spark1"))
    })
    .await?;
    anyhow::ensure!(
        !dialog_open(&s, "token-dialog").await?,
        "the kept token is used"
    );
    assert_eq!(comments(&original), comments(&moved), "comments must stay");
    wait_until("magpie runs on spark1 (127.0.0.2)", || {
        container_alive(&sim, "127.0.0.2", "magpie")
    })
    .await?;
    wait_until("magpie no longer runs on spark2 (127.0.0.3)", || {
        !container_alive(&sim, "127.0.0.3", "magpie")
    })
    .await?;
    s.wait_text("[data-testid=service-health-magpie]", "healthy", LONG)
        .await?;
    s.quit().await?;
    Ok(())
}

/// The UI under its Content-Security-Policy, reached by an allowed name, and a DNS
/// rebinding attack played for real: Chromium resolves `spark-control.lan` (allowed) and
/// `evil.example` (not) to the server. Through the allowed name the page runs with no CSP
/// violation (a listener installed before any script counts them) and a change lands;
/// through the rebound name the server answers nothing — script on the `evil.example`
/// page can neither read the state nor write desired.yaml.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csp_holds_and_a_rebinding_page_gets_nothing() -> Result<()> {
    let srv = demo_server_allowing(None, &["spark-control.lan"]).await?;
    let port = srv.base.rsplit(':').next().unwrap_or("").to_string();
    let d = webdriver::Driver::start().await?;
    let s = d
        .session_with(&[
            "--host-resolver-rules=MAP spark-control.lan 127.0.0.1, MAP evil.example 127.0.0.1"
                .to_string(),
        ])
        .await?;
    s.viewport(1280, 800, false).await?;
    s.on_new_document(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', \
         (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + \
         (e.sourceFile || '') + ':' + e.lineNumber));",
    )
    .await?;

    // The CSP is sent with the page.
    let page = reqwest::get(format!("{}/", srv.base)).await?;
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    anyhow::ensure!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "CSP: {csp:?}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");

    // Through the allowed name: every view renders, a change lands, no violation.
    let base = format!("http://spark-control.lan:{port}");
    s.goto(&format!("{base}/#/cluster")).await?;
    s.wait_text("[data-testid=model-ready]", "ready", LONG)
        .await
        .context("qwen36 ready through spark-control.lan")?;
    for view in [
        "models",
        "downloads",
        "services",
        "updates",
        "events",
        "plan",
        "desired",
        "setup",
        "cluster",
    ] {
        s.goto(&format!("{base}/#/{view}")).await?;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    s.goto(&format!("{base}/#/models")).await?;
    s.click("[data-testid=activate-gemma4]").await?;
    s.wait_text("[data-testid=confirm-title]", "gemma4", SHORT)
        .await?;
    s.click("[data-testid=confirm-ok]").await?;
    wait_file(&srv.desired, "active_model: gemma4", |t| {
        t.contains("active_model: gemma4")
    })
    .await?;
    s.wait_for("[data-testid=swap-card]", SHORT).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let violations = s.exec("return window.__csp;", json!([])).await?;
    assert_eq!(violations, json!([]), "CSP violations in the UI");

    // Through the rebound name: the page itself is refused, and its script gets no read
    // and no write.
    let before = read(&srv.desired);
    s.goto(&format!("http://evil.example:{port}/")).await?;
    let body = s.text("body").await?;
    anyhow::ensure!(body.contains("host_not_allowed"), "page: {body}");
    // (WebDriver awaits a returned promise.)
    let probe = r#"
        return (async () => {
          const read = await fetch('/api/state');
          const write = await fetch('/api/hosts/evil', { method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ address: '127.0.0.66' }) });
          return [read.status, write.status, await write.text()];
        })();
    "#;
    let got = s.exec(probe, json!([])).await?;
    assert_eq!(got[0], json!(403), "rebound read: {got}");
    assert_eq!(got[1], json!(403), "rebound write: {got}");
    assert_eq!(
        read(&srv.desired),
        before,
        "the rebound write changed desired.yaml"
    );
    s.quit().await?;
    Ok(())
}
