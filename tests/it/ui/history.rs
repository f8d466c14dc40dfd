//! The History view in Chromium: three edits made by clicking are three commits with
//! readable messages; the view lists them with diffs; rolling back shows the plan first,
//! makes a new commit and the simulated Sparks converge to it; a hand edit shows as an
//! uncommitted change that the Commit button records; a divergence from the remote is
//! shown with the remote's diff and resolved from the page.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use super::harness::*;
use crate::gitops::git;

fn subjects(dir: &Path) -> Vec<String> {
    git(dir, &["log", "--first-parent", "--format=%s"])
        .lines()
        .map(String::from)
        .collect()
}

async fn commits_shown(s: &crate::harness::webdriver::Session) -> Result<usize> {
    let n = s
        .exec(
            "return document.querySelectorAll('[data-testid=commits] > li').length;",
            json!([]),
        )
        .await?;
    Ok(n.as_u64().unwrap_or(0) as usize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clicks_three_commits_history_rollback_and_a_hand_edit() -> Result<()> {
    let srv = demo_server().await?;
    let dir = srv.desired.parent().context("dir")?.to_path_buf();
    let name = srv
        .desired
        .file_name()
        .context("name")?
        .to_string_lossy()
        .into_owned();
    git(&dir, &["init", "-q", "--initial-branch=main"]);
    git(&dir, &["add", &name]);
    git(&dir, &["commit", "-qm", "demo config"]);
    let (_d, s) = browser().await?;
    s.goto(&format!("{}/#/cluster", srv.base)).await?;
    s.wait_text("[data-testid=model-ready]", "ready", LONG)
        .await?;

    // 1: activate gemma4.
    s.goto(&format!("{}/#/models", srv.base)).await?;
    s.click("[data-testid=activate-gemma4]").await?;
    s.wait_for("[data-testid=confirm-ok]", SHORT).await?;
    s.click("[data-testid=confirm-ok]").await?;
    wait_file(&srv.desired, "gemma4 active", |t| {
        t.contains("active_model: gemma4")
    })
    .await?;
    // 2: a setting of gemma4.
    s.click("[data-testid=settings-gemma4] summary").await?;
    let form = "[data-testid=settings-form-gemma4]";
    s.type_into(&format!("{form} [name=max_context]"), "65536")
        .await?;
    s.click(&format!("{form} button[type=submit]")).await?;
    wait_file(&srv.desired, "max_context", |t| t.contains("65536")).await?;
    // 3: stop magpie.
    s.goto(&format!("{}/#/services", srv.base)).await?;
    s.click("[data-testid=service-stop-magpie]").await?;
    s.wait_for("[data-testid=confirm-ok]", SHORT).await?;
    s.click("[data-testid=confirm-ok]").await?;
    wait_file(&srv.desired, "magpie stopped", |t| {
        t.lines()
            .any(|l| l.contains("magpie:") && l.contains("running: false"))
    })
    .await?;

    wait_until("three commits", || subjects(&dir).len() == 4).await?;
    let subs = subjects(&dir);
    assert_eq!(
        subs,
        [
            "stop magpie",
            "gemma4: set max_context 65536",
            "activate gemma4 on spark1",
            "demo config"
        ],
        "three clicks, three commits"
    );
    let head_file = git(&dir, &["show", &format!("HEAD:{name}")]);
    assert_eq!(
        comments(&head_file),
        comments(&git(&dir, &["show", &format!("HEAD~3:{name}")])),
        "comments intact"
    );

    // The History view lists them with diffs.
    s.goto(&format!("{}/#/history", srv.base)).await?;
    s.wait_text("[data-testid=commits]", "stop magpie", SHORT)
        .await?;
    assert_eq!(commits_shown(&s).await?, 4);
    let shorts: Vec<String> = git(&dir, &["log", "--format=%h"])
        .lines()
        .map(String::from)
        .collect();
    let activate = format!("[data-testid=commit-{}]", shorts[2]);
    s.click(&format!("{activate} summary")).await?;
    let diff = s
        .wait_text(&format!("{activate} .diff"), "+active_model: gemma4", SHORT)
        .await?;
    assert!(diff.contains("-active_model: qwen36"), "{diff}");
    s.wait_for(&format!("[data-testid=in-force-{}]", shorts[0]), SHORT)
        .await?;

    // Rollback to the first: the plan first, then a new commit; the hosts converge.
    s.click(&format!("[data-testid=rollback-{}]", shorts[3]))
        .await?;
    s.wait_text("[data-testid=confirm-title]", "Roll back", SHORT)
        .await?;
    let changes = s.text("[data-testid=rollback-changes]").await?;
    assert!(changes.contains("activate qwen36 on spark1"), "{changes}");
    let plan = s.text("[data-testid=rollback-plan]").await?;
    assert!(
        plan.contains("qwen36"),
        "the plan names the model it launches:\n{plan}"
    );
    assert_eq!(
        subjects(&dir).len(),
        4,
        "nothing committed before the confirmation"
    );
    s.click("[data-testid=confirm-ok]").await?;
    wait_until("the rollback commit", || subjects(&dir).len() == 5).await?;
    assert!(
        subjects(&dir)[0].starts_with("rollback to "),
        "{:?}",
        subjects(&dir)
    );
    let new_short = git(&dir, &["log", "-1", "--format=%h"]);
    s.wait_for(&format!("[data-testid=converged-{new_short}]"), LONG)
        .await
        .context("the hosts converge to the rollback")?;
    let st = state(&srv.base).await?;
    assert_eq!(st["desired"]["active_model"], "qwen36");

    // A hand edit: shown as uncommitted, with its diff; Commit records it.
    let text = read(&srv.desired);
    std::fs::write(&srv.desired, format!("# tuned by hand\n{text}"))?;
    s.wait_for("[data-testid=uncommitted]", SHORT).await?;
    s.wait_text("[data-testid=uncommitted-diff]", "+# tuned by hand", SHORT)
        .await?;
    s.click("[data-testid=commit-button]").await?;
    wait_until("the hand edit committed", || {
        subjects(&dir)[0].starts_with("hand edit")
    })
    .await?;
    s.wait_js(
        "the uncommitted banner hidden",
        SHORT,
        "return document.querySelector('[data-testid=uncommitted]').hidden;",
        json!([]),
    )
    .await?;
    assert!(
        read(&srv.desired).starts_with("# tuned by hand\n"),
        "the hand edit survives"
    );
    s.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diverged_is_shown_with_the_remotes_diff_and_resolved_from_the_page() -> Result<()> {
    let r = tempfile::tempdir()?;
    let remote = r.path().join("remote.git");
    let text = format!(
        "{}git: {{ remote: {}, interval_secs: 3600 }}\n",
        crate::http::DESIRED,
        remote.display()
    );
    let srv = plain_server(&text).await?;
    let dir = srv.desired.parent().context("dir")?.to_path_buf();
    git(
        r.path(),
        &[
            "init",
            "-q",
            "--bare",
            "--initial-branch=main",
            "remote.git",
        ],
    );
    git(&dir, &["init", "-q", "--initial-branch=main"]);
    git(&dir, &["add", "desired.yaml"]);
    git(&dir, &["commit", "-qm", "cluster config"]);
    git(&dir, &["push", "-q", &remote.to_string_lossy(), "main"]);
    let (_d, s) = browser().await?;
    // Sync now: the controller has fetched the remote as it is now.
    s.goto(&format!("{}/#/history", srv.base)).await?;
    s.click("[data-testid=sync-now]").await?;
    s.wait_for("[data-testid=sync-card]", SHORT).await?;
    s.wait_text("[data-testid=sync-detail]", "every 3600 s", SHORT)
        .await?;
    // Then someone pushes a change of the active model to the remote...
    git(r.path(), &["clone", "-q", "remote.git", "seed"]);
    let seed = r.path().join("seed");
    std::fs::write(
        seed.join("desired.yaml"),
        text.replace("active_model: qwen36", "active_model: gemma4"),
    )?;
    git(&seed, &["commit", "-qam", "remote: gemma4"]);
    git(&seed, &["push", "-q", "origin", "main"]);

    // ...and here the UI activates another model, on the same line.
    s.goto(&format!("{}/#/models", srv.base)).await?;
    s.click("[data-testid=activate-qwen3-vl]").await?;
    s.wait_for("[data-testid=confirm-ok]", SHORT).await?;
    s.click("[data-testid=confirm-ok]").await?;
    wait_file(&srv.desired, "qwen3-vl", |t| {
        t.contains("active_model: qwen3-vl")
    })
    .await?;
    s.goto(&format!("{}/#/history", srv.base)).await?;
    if s.wait_for("[data-testid=diverged]", LONG).await.is_err() {
        let h: serde_json::Value = reqwest::get(format!("{}/api/history", srv.base))
            .await?
            .json()
            .await?;
        anyhow::bail!(
            "never diverged; subjects {:?}; history {h:#}",
            subjects(&dir)
        );
    }
    s.wait_text(
        "[data-testid=diverged-remote-diff]",
        "+active_model: gemma4",
        SHORT,
    )
    .await?;
    s.wait_text(
        "[data-testid=diverged-local-diff]",
        "+active_model: qwen3-vl",
        SHORT,
    )
    .await?;
    assert!(
        read(&srv.desired).contains("active_model: qwen3-vl"),
        "nothing lost"
    );
    s.click("[data-testid=resolve-mine]").await?;
    let head = || git(&dir, &["rev-parse", "HEAD"]);
    wait_until("the merge pushed", || {
        git(&remote, &["rev-parse", "main"]) == head()
    })
    .await?;
    assert!(
        subjects(&dir)[0].starts_with("merge main"),
        "{:?}",
        subjects(&dir)
    );
    git(
        &dir,
        &[
            "merge-base",
            "--is-ancestor",
            &git(&seed, &["rev-parse", "HEAD"]),
            "HEAD",
        ],
    );
    s.wait_js(
        "the diverged card hidden",
        LONG,
        "return document.querySelector('[data-testid=diverged]').hidden;",
        json!([]),
    )
    .await?;
    s.quit().await?;
    Ok(())
}
