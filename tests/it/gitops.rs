//! Git-ops against real repositories on disk (bare "remotes", never a network remote):
//! edits through the API become commits with readable messages, history with diffs,
//! rollback as a new commit that the two-sshd cluster converges to, hand edits shown as
//! uncommitted and never lost, pull mode within one interval and at once by webhook,
//! divergence resolved by a merge that keeps both sides, a failing push visible and retried.
//!
//! What is asserted is the world: `git log` of the repositories (run by the test with the
//! git CLI), the file on disk, what the head serves, what the API says.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use serde_json::Value;
use spark_control::gitops::GitOps;
use spark_control::hosts::Connector;
use spark_control::http::{app, AppState};
use spark_control::reconcile::{self, Handle, LoopConfig};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::harness::cluster::{Cluster, WORKER};

const QWEN36: &str = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";
const GEMMA4: &str = "google/gemma-4-26B-A4B-it";

/// Headers of a write from the UI (a browser sends `Origin`).
const UI: &[(&str, &str)] = &[
    ("host", "localhost"),
    ("origin", "http://localhost"),
    ("content-type", "application/json"),
];

/// Runs git as a person at a terminal would (their own identity); panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Laptop User")
        .env("GIT_AUTHOR_EMAIL", "laptop@example.com")
        .env("GIT_COMMITTER_NAME", "Laptop User")
        .env("GIT_COMMITTER_EMAIL", "laptop@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn subjects(dir: &Path) -> Vec<String> {
    git(dir, &["log", "--first-parent", "--format=%s"])
        .lines()
        .map(String::from)
        .collect()
}

/// A bare repository and a seed clone with `rel` = `text` committed and pushed.
fn remote_with(dir: &Path, rel: &str, text: &str) -> (PathBuf, PathBuf) {
    let remote = dir.join("remote.git");
    git(
        dir,
        &[
            "init",
            "-q",
            "--bare",
            "--initial-branch=main",
            "remote.git",
        ],
    );
    let seed = dir.join("seed");
    git(dir, &["clone", "-q", "remote.git", "seed"]);
    git(&seed, &["symbolic-ref", "HEAD", "refs/heads/main"]);
    let file = seed.join(rel);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&file, text).expect("write seed");
    git(&seed, &["add", rel]);
    git(&seed, &["commit", "-qm", "cluster config"]);
    git(&seed, &["push", "-q", "origin", "main"]);
    (remote, seed)
}

/// The web side over a running loop, with git-ops.
struct Web {
    app: Router,
    gitops: GitOps,
    stop: CancellationToken,
}

impl Drop for Web {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn web(handle: &Handle, data_dir: &Path) -> Web {
    let gitops = GitOps::new(
        handle.store.clone(),
        data_dir.to_path_buf(),
        handle.status.clone(),
    );
    let stop = CancellationToken::new();
    gitops.spawn(stop.clone());
    let state = AppState::new(handle.clone(), None).with_gitops(gitops.clone());
    Web {
        app: app(state),
        gitops,
        stop,
    }
}

impl Web {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value) {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Body::from(body.to_string())).expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
            .await
            .expect("body");
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, v)
    }

    async fn history(&self) -> Value {
        let (s, v) = self.call("GET", "/api/history", &[], "").await;
        assert_eq!(s, 200, "{v}");
        v
    }

    async fn wait_history(&self, what: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let h = self.history().await;
            if pred(&h) {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {secs}s waiting for {what}; history:\n{h:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn wait_until(what: &str, secs: u64, pred: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !pred() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

/// The loop over `desired` with hosts where nothing listens (no sshd needed).
fn plain_loop(desired: &Path, data: &Path) -> (Handle, CancellationToken) {
    std::fs::create_dir_all(data).expect("data dir");
    let key = spark_control::remote::keys::load_or_create_identity(data).expect("key");
    let stop = CancellationToken::new();
    let (handle, _task) = reconcile::spawn_with(
        LoopConfig {
            desired_path: desired.to_path_buf(),
            data_dir: data.to_path_buf(),
            connector: Connector::Ssh {
                key: std::sync::Arc::new(key),
                known_hosts: data.join("known_hosts"),
            },
            poll_interval: Some(Duration::from_secs(2)),
            settle: None,
        },
        reconcile::Addons {
            hub: spark_control::hub::HubConfig::at("http://127.0.0.1:9"),
            ..reconcile::Addons::default()
        },
        stop.clone(),
    );
    (handle, stop)
}

fn commit_ids(h: &Value) -> Vec<String> {
    h["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}

/// Three edits through the API are three commits whose messages say what changed; the
/// file keeps its comments; history lists them with diffs; a rollback to the first version
/// is a fourth commit, and the hosts converge to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_edits_three_commits_then_rollback_converges() {
    let mut c = Cluster::new(1000);
    let dir = c.dir.path().to_path_buf();
    git(&dir, &["init", "-q", "--initial-branch=main"]);
    git(&dir, &["add", "desired.yaml"]);
    git(&dir, &["commit", "-qm", "cluster config"]);
    let handle = c.start_controller();
    let w = web(&handle, &c.data_dir);
    c.wait_serving(QWEN36, 60).await;

    let (s, r) = w.call("POST", "/api/models/gemma4/activate", UI, "").await;
    assert_eq!(s, 200, "{r}");
    assert!(r["git"]["commit"].is_string(), "{r}");
    let (s, r) = w
        .call(
            "PUT",
            "/api/models/gemma4/overrides",
            UI,
            r#"{"max_context":8192}"#,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = w
        .call("PUT", "/api/services/magpie", UI, r#"{"running":false}"#)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        subjects(&dir),
        [
            "stop magpie",
            "gemma4: set max_context 8192",
            "activate gemma4 on spark1",
            "cluster config"
        ]
    );
    let body = git(&dir, &["log", "-1", "--format=%B", "HEAD~2"]);
    assert!(body.contains("Changed-by: UI"), "{body}");
    let head_file = git(&dir, &["show", "HEAD:desired.yaml"]);
    assert!(
        head_file.starts_with("# test cluster\n"),
        "comments intact:\n{head_file}"
    );
    assert_eq!(
        git(&dir, &["status", "--porcelain", "--", "desired.yaml"]),
        ""
    );

    let h = w.history().await;
    let commits = h["commits"].as_array().expect("commits");
    assert_eq!(commits.len(), 4, "{h:#}");
    let activate = &commits[2];
    assert_eq!(activate["subject"], "activate gemma4 on spark1");
    assert_eq!(activate["by"], "UI");
    let diff = activate["diff"].as_str().expect("diff");
    assert!(
        diff.contains("-active_model: qwen36") && diff.contains("+active_model: gemma4"),
        "{diff}"
    );
    assert!(commits[0]["diff"]
        .as_str()
        .expect("diff")
        .contains("running: false"));
    assert_eq!(h["in_force"], commits[0]["id"], "{h:#}");

    c.wait_serving(GEMMA4, 60).await;
    let head = commits[0]["id"].clone();
    w.wait_history("hosts converged to HEAD", 60, |h| h["converged"] == head)
        .await;

    // Rollback to the first version: first the plan it would cause, then a new commit.
    let first = commits[3]["id"].as_str().expect("id").to_string();
    let (s, p) = w
        .call("GET", &format!("/api/history/{first}/plan"), &[], "")
        .await;
    assert_eq!(s, 200, "{p}");
    let changes: Vec<String> = serde_json::from_value(p["changes"].clone()).expect("changes");
    assert!(
        changes.contains(&"activate qwen36 on spark1".to_string()),
        "{changes:?}"
    );
    assert!(changes.contains(&"start magpie".to_string()), "{changes:?}");
    assert!(
        !p["plan"]["steps"].as_array().expect("steps").is_empty(),
        "{p:#}"
    );
    assert!(
        p["plan"]["text"].as_str().expect("text").contains("qwen36"),
        "{p:#}"
    );
    assert_eq!(subjects(&dir).len(), 4, "a preview commits nothing");

    let (s, r) = w
        .call("POST", &format!("/api/history/{first}/rollback"), UI, "")
        .await;
    assert_eq!(s, 200, "{r}");
    let subs = subjects(&dir);
    assert_eq!(subs.len(), 5, "{subs:?}");
    assert!(subs[0].starts_with("rollback to "), "{subs:?}");
    assert_eq!(subs[1], "stop magpie", "history is kept, not rewritten");
    assert_eq!(
        git(&dir, &["show", "HEAD:desired.yaml"]),
        git(&dir, &["show", &format!("{first}:desired.yaml")])
    );
    c.wait_serving(QWEN36, 60).await;
    wait_until("magpie running again", 30, || {
        c.container_running(WORKER, "magpie")
    })
    .await;
    let new_head = Value::String(git(&dir, &["rev-parse", "HEAD"]));
    let h = w
        .wait_history("hosts converged to the rollback", 60, |h| {
            h["converged"] == new_head
        })
        .await;
    assert_eq!(h["in_force"], new_head);
    assert_eq!(h["commits"][0]["in_force"], true);
}

/// A hand edit is shown as uncommitted with its diff, acts, and is never reverted; the next
/// API edit commits it first on its own; the Commit button commits another. Bad input
/// (bad ids, an invalid old version) is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edit_is_uncommitted_survives_and_is_committed_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(&cfg).expect("mkdir");
    let path = cfg.join("desired.yaml");
    let text = format!("{}git: {{}}\n", crate::http::DESIRED);
    std::fs::write(&path, &text).expect("write");
    // The data dir shares the directory: its key must never be committed.
    let (handle, _stop) = plain_loop(&path, &cfg);
    let w = web(&handle, &cfg);

    // `git: {}` without a work tree: a repository is made and the file committed.
    let h = w
        .wait_history("the first commit", 10, |h| {
            h["commits"].as_array().is_some_and(|c| c.len() == 1)
        })
        .await;
    assert_eq!(
        h["commits"][0]["subject"],
        "start tracking the desired file"
    );
    assert!(h["uncommitted"].is_null(), "{h:#}");
    assert_eq!(git(&cfg, &["ls-files"]), "desired.yaml");
    assert_eq!(
        git(&cfg, &["status", "--porcelain"]),
        "",
        "keys and events are ignored"
    );

    // A hand edit: uncommitted, with its diff, and in force.
    let hand = text.replace("active_model: qwen36", "active_model: gemma4");
    std::fs::write(&path, &hand).expect("hand edit");
    let h = w
        .wait_history("the hand edit in force", 20, |h| {
            h["in_force"] == "uncommitted"
        })
        .await;
    let diff = h["uncommitted"]["diff"].as_str().expect("diff");
    assert!(diff.contains("+active_model: gemma4"), "{diff}");
    assert_eq!(h["uncommitted"]["changes"][0], "activate gemma4 on spark1");
    w.gitops.sync_once().await;
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        hand,
        "survives"
    );
    assert_eq!(
        subjects(&cfg).len(),
        1,
        "not committed behind anyone's back"
    );

    // The next API edit commits the hand edit first, on its own.
    let (s, r) = w
        .call(
            "PUT",
            "/api/models/qwen36/overrides",
            &[("content-type", "application/json")],
            r#"{"gpu_memory":0.7}"#,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert!(r["git"]["hand_edit_commit"].is_string(), "{r}");
    assert_eq!(
        subjects(&cfg),
        [
            "qwen36: set gpu_memory 0.7",
            "hand edit: activate gemma4 on spark1",
            "start tracking the desired file"
        ]
    );
    let now = std::fs::read_to_string(&path).expect("read");
    assert!(
        now.contains("active_model: gemma4") && now.contains("gpu_memory: 0.7"),
        "{now}"
    );
    assert!(git(&cfg, &["log", "-1", "--format=%B"]).contains("Changed-by: API client"));

    // Commit button.
    std::fs::write(&path, format!("# tuned by hand\n{now}")).expect("hand edit");
    w.wait_history("uncommitted again", 10, |h| h["uncommitted"].is_object())
        .await;
    let (s, r) = w.call("POST", "/api/history/commit", UI, "").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["changed"], true);
    assert_eq!(subjects(&cfg)[0], "hand edit: edit comments or formatting");
    assert!(
        git(&cfg, &["log", "-1", "--format=%B"]).contains("Changed-by: hand edit, committed by UI")
    );
    let (s, r) = w.call("POST", "/api/history/commit", UI, "").await;
    assert_eq!((s, r["changed"].clone()), (200, Value::Bool(false)));

    // Bad input: clear errors, nothing changes.
    let before = std::fs::read_to_string(&path).expect("read");
    let (s, r) = w
        .call("POST", "/api/history/not-hex/rollback", UI, "")
        .await;
    assert_eq!(s, 400, "{r}");
    assert!(r["error"]["message"]
        .as_str()
        .expect("msg")
        .contains("not a commit id"));
    let (s, r) = w
        .call("POST", "/api/history/0123456789abcdef/rollback", UI, "")
        .await;
    assert_eq!(s, 404, "{r}");
    // A version that is not valid (committed by hand) cannot be rolled back to.
    std::fs::write(&path, "version: 1\nactive_model: [\n").expect("bad");
    git(&cfg, &["commit", "-qam", "broken"]);
    let broken = git(&cfg, &["rev-parse", "HEAD"]);
    std::fs::write(&path, &before).expect("restore");
    git(&cfg, &["commit", "-qam", "fixed"]);
    let (s, r) = w
        .call("POST", &format!("/api/history/{broken}/rollback"), UI, "")
        .await;
    assert_eq!(s, 422, "{r}");
    assert!(r["error"]["diagnostics"][0]["line"].is_number(), "{r}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        before,
        "nothing written"
    );
    assert_eq!(subjects(&cfg)[0], "fixed", "nothing committed");
    let (s, _) = w.call("POST", "/api/git/webhook", &[], "{}").await;
    assert_eq!(s, 403, "no webhook secret is configured");
}

/// Pull mode: a commit pushed to the remote reaches the hosts within one interval; with a
/// long interval, the webhook (with its secret) fetches at once, a wrong secret nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_mode_reaches_the_hosts_within_one_interval_and_at_once_by_webhook() {
    let mut c = Cluster::new(1000);
    let dir = c.dir.path().to_path_buf();
    let secret_file = dir.join("webhook-secret");
    let secret = "a-webhook-secret-of-32-characters";
    std::fs::write(&secret_file, secret).expect("secret");
    let git_section = |interval: u64| {
        format!(
            "git:\n  remote: {}\n  branch: main\n  path: cluster/desired.yaml\n  interval_secs: {interval}\n  webhook_secret_file: {}\n",
            dir.join("remote.git").display(),
            secret_file.display()
        )
    };
    let (_remote, seed) = remote_with(
        &dir,
        "cluster/desired.yaml",
        &c.desired("qwen36", &git_section(5)),
    );
    git(&dir, &["clone", "-q", "remote.git", "controller"]);
    let clone = dir.join("controller");
    c.desired_path = clone.join("cluster/desired.yaml");
    let handle = c.start_controller();
    let w = web(&handle, &c.data_dir);
    c.wait_serving(QWEN36, 60).await;
    w.wait_history("pull mode", 10, |h| h["sync"]["last_fetch"].is_string())
        .await;

    // Within one interval (5 s), then the hosts.
    let seed_file = seed.join("cluster/desired.yaml");
    std::fs::write(&seed_file, c.desired("gemma4", &git_section(3600))).expect("edit");
    git(&seed, &["commit", "-qam", "gemma4 for the weekend"]);
    git(&seed, &["push", "-q", "origin", "main"]);
    let want = git(&seed, &["rev-parse", "HEAD"]);
    let took = wait_until("the pull", 10, || {
        git(&clone, &["rev-parse", "HEAD"]) == want
    })
    .await;
    assert!(
        took <= Duration::from_millis(5000 + 1500),
        "pulled after {took:?}, interval 5 s"
    );
    eprintln!("pull mode: remote commit reached the clone after {took:?} (interval 5 s)");
    c.wait_serving(GEMMA4, 60).await;
    let h = w.history().await;
    assert_eq!(h["commits"][0]["subject"], "gemma4 for the weekend");
    assert_eq!(h["commits"][0]["by"], "git");
    assert_eq!(h["in_force"], Value::String(want.clone()));

    // The interval is now an hour: wait for the round that read it, then only the webhook.
    // (the state is published at the end of a round, so once it says 3600 that round is
    // over and the next fetch is an hour away).
    wait_until("a round with the new interval", 10, || {
        w.gitops.sync_state().interval_secs == Some(3600)
    })
    .await;
    std::fs::write(&seed_file, c.desired("qwen36", &git_section(3600))).expect("edit");
    git(&seed, &["commit", "-qam", "back to qwen36"]);
    git(&seed, &["push", "-q", "origin", "main"]);
    let want = git(&seed, &["rev-parse", "HEAD"]);
    let (s, r) = w
        .call(
            "POST",
            "/api/git/webhook",
            &[("x-gitlab-token", "wrong-secret-wrong-secret")],
            "{}",
        )
        .await;
    assert_eq!(s, 401, "{r}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_ne!(
        git(&clone, &["rev-parse", "HEAD"]),
        want,
        "a wrong secret fetches nothing"
    );
    let (s, r) = w
        .call(
            "POST",
            "/api/git/webhook",
            &[("x-spark-control-secret", secret)],
            "{\"ref\":\"refs/heads/main\"}",
        )
        .await;
    assert_eq!(s, 202, "{r}");
    let took = wait_until("the webhook's pull", 5, || {
        git(&clone, &["rev-parse", "HEAD"]) == want
    })
    .await;
    eprintln!("pull mode: webhook → pulled after {took:?} (interval 3600 s)");
    c.wait_serving(QWEN36, 60).await;
}

/// A conflicting edit here and a change on the remote: the push is rejected, the branch is
/// "diverged" with the remote's diff, nothing is lost on either side; resolving merges
/// (both histories kept) and pushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diverged_loses_nothing_and_a_merge_resolves_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let text = format!(
        "{}git: {{ remote: {}, interval_secs: 3600 }}\n",
        crate::http::DESIRED,
        d.join("remote.git").display()
    );
    let (remote, seed) = remote_with(d, "desired.yaml", &text);
    git(d, &["clone", "-q", "remote.git", "controller"]);
    let clone = d.join("controller");
    let (handle, _stop) = plain_loop(&clone.join("desired.yaml"), &d.join("data"));
    let w = web(&handle, &d.join("data"));
    w.wait_history("the first fetch", 10, |h| {
        h["sync"]["last_fetch"].is_string()
    })
    .await;

    // The remote changes the active model (and, elsewhere, a timeout)...
    let theirs = text
        .replace("active_model: qwen36", "active_model: gemma4")
        .replace("connect_timeout_secs: 1", "connect_timeout_secs: 2");
    std::fs::write(seed.join("desired.yaml"), &theirs).expect("edit");
    git(&seed, &["commit", "-qam", "remote: gemma4"]);
    git(&seed, &["push", "-q", "origin", "main"]);
    let remote_commit = git(&seed, &["rev-parse", "HEAD"]);
    // ...and the UI here activates another model on the same line.
    let (s, r) = w
        .call("POST", "/api/models/qwen3-vl/activate", UI, "")
        .await;
    assert_eq!(s, 200, "{r}");
    let mine = r["git"]["commit"].as_str().expect("commit").to_string();
    let h = w
        .wait_history("diverged", 20, |h| h["sync"]["diverged"].is_object())
        .await;
    let dv = &h["sync"]["diverged"];
    assert!(
        dv["remote_diff"]
            .as_str()
            .expect("diff")
            .contains("+active_model: gemma4"),
        "{dv:#}"
    );
    assert!(
        dv["local_diff"]
            .as_str()
            .expect("diff")
            .contains("+active_model: qwen3-vl"),
        "{dv:#}"
    );
    // Nothing lost: the edit is on disk and committed here; the remote kept its commit.
    assert!(std::fs::read_to_string(clone.join("desired.yaml"))
        .expect("read")
        .contains("active_model: qwen3-vl"));
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), mine);
    assert_eq!(git(&remote, &["rev-parse", "main"]), remote_commit);

    let (s, r) = w
        .call("POST", "/api/git/resolve", UI, r#"{"prefer":"mine"}"#)
        .await;
    assert_eq!(s, 200, "{r}");
    let merged = std::fs::read_to_string(clone.join("desired.yaml")).expect("read");
    assert!(
        merged.contains("active_model: qwen3-vl"),
        "mine won the line both changed:\n{merged}"
    );
    assert!(
        merged.contains("connect_timeout_secs: 2"),
        "the remote's other change kept:\n{merged}"
    );
    let head = git(&clone, &["rev-parse", "HEAD"]);
    wait_until("the merge pushed", 10, || {
        git(&remote, &["rev-parse", "main"]) == head
    })
    .await;
    for c in [&mine, &remote_commit] {
        git(&clone, &["merge-base", "--is-ancestor", c, "HEAD"]);
    }
    let h = w
        .wait_history("in sync", 10, |h| {
            h["sync"]["diverged"].is_null() && h["sync"]["ahead"] == 0
        })
        .await;
    assert!(h["commits"][0]["merge"].as_bool().expect("merge"), "{h:#}");
    assert!(commit_ids(&h).contains(&mine));
}

/// A push the remote refuses is shown with the reason and retried every interval until it
/// lands; the commit stays here meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_push_is_visible_and_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let text = format!(
        "{}git: {{ remote: {}, interval_secs: 5 }}\n",
        crate::http::DESIRED,
        d.join("remote.git").display()
    );
    let (remote, _seed) = remote_with(d, "desired.yaml", &text);
    let hook = remote.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'pushes are closed for maintenance' >&2\nexit 1\n",
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    git(d, &["clone", "-q", "remote.git", "controller"]);
    let clone = d.join("controller");
    let (handle, _stop) = plain_loop(&clone.join("desired.yaml"), &d.join("data"));
    let w = web(&handle, &d.join("data"));
    w.wait_history("the first fetch", 10, |h| {
        h["sync"]["last_fetch"].is_string()
    })
    .await;

    let (s, r) = w.call("POST", "/api/models/gemma4/activate", UI, "").await;
    assert_eq!(s, 200, "{r}");
    let mine = r["git"]["commit"].as_str().expect("commit").to_string();
    let h = w
        .wait_history("the push error", 15, |h| {
            h["sync"]["push_error"].is_string()
        })
        .await;
    let err = h["sync"]["push_error"].as_str().expect("error");
    assert!(
        err.contains("closed for maintenance") || err.contains("declined"),
        "{err}"
    );
    assert_eq!(h["sync"]["ahead"], 1);
    assert!(
        h["sync"]["diverged"].is_null(),
        "a refused push is not a divergence: {h:#}"
    );
    assert_ne!(git(&remote, &["rev-parse", "main"]), mine);
    w.wait_history("a retry", 15, |h| {
        h["sync"]["push_failures"].as_u64() >= Some(2)
    })
    .await;

    std::fs::remove_file(&hook).expect("open pushes");
    let took = wait_until("the retried push", 10, || {
        git(&remote, &["rev-parse", "main"]) == mine
    })
    .await;
    eprintln!(
        "push retried and landed {took:?} after the remote accepted pushes again (interval 5 s)"
    );
    w.wait_history("no push error", 10, |h| h["sync"]["push_error"].is_null())
        .await;
}
