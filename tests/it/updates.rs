//! Launcher updates on two real sshd "Sparks": the head's checkout tracks a bare
//! "upstream" repository that tests put a few commits ahead. Assertions are about the
//! checkout (its HEAD, what the fake build recorded) and what `/api/updates` says.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use spark_control::sim::hosts::add_upstream_commits;

use crate::downloads::api;
use crate::harness::cluster::{Cluster, HEAD, WORKER, WORKER_CX7};

fn git_head(c: &Cluster) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(&c.launcher)
        .args(["rev-parse", "HEAD"])
        .output()
        .expect("git");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The commit the image on host `ip` was built from (the fake build writes it on the
/// head, the fake copy on each worker it was asked to copy to).
fn built(c: &Cluster, ip: &str) -> Option<String> {
    std::fs::read_to_string(c.sim_root(ip).join("built-rev"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The branch the head's checkout is on (None: detached).
fn git_branch(c: &Cluster) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(&c.launcher)
        .args(["symbolic-ref", "-q", "--short", "HEAD"])
        .output()
        .expect("git");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn upstream(c: &Cluster, subjects: &[&str]) -> Vec<String> {
    let head = &c.sim.hosts()[0];
    add_upstream_commits(c.sim.base(), head, subjects).expect("upstream commits")
}

async fn wait_updates(c: &Cluster, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (s, v) = api(c, "GET", "/api/updates", None).await;
        assert_eq!(s, 200);
        if pred(&v) {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "/api/updates not as expected after {secs}s: {v}\nlog:\n{}",
                c.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A cluster whose upstream is `subjects` ahead; the controller's first periodic check
/// (due at start; then every 60 s, the shortest interval allowed) sees them.
async fn start(policy: &str, subjects: &[&str]) -> (Cluster, Vec<String>) {
    let mut c = Cluster::new(500);
    c.knob("build-seconds", Some("1"));
    c.write(&c.desired(
        "null",
        &format!("updates: {{ launcher: {policy}, check_interval_secs: 60 }}\n"),
    ));
    let commits = upstream(&c, subjects);
    c.start_controller();
    (c, commits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_shows_commits_behind_and_their_subjects() {
    let (c, _) = start(
        "notify",
        &["Fix NCCL timeout", "Bump vLLM", "Add Qwen3.6 recipe"],
    )
    .await;
    let before = git_head(&c);
    // The periodic check fetches; the observation counts and lists what is new.
    let v = wait_updates(&c, 30, |v| v["behind"] == 3).await;
    assert_eq!(
        v["subjects"],
        serde_json::json!(["Add Qwen3.6 recipe", "Bump vLLM", "Fix NCCL timeout"])
    );
    assert_eq!(v["policy"], "notify");
    assert_eq!(v["head"].as_str(), Some(before.as_str()));
    assert!(v["last_check"].is_string(), "{v}");
    // notify never applies.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(git_head(&c), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_applies_then_pin_converges_to_the_pinned_commit() {
    let (c, commits) = start("auto", &["First upstream change", "Second upstream change"]).await;
    let tip = commits.last().expect("tip").clone();
    // auto: fetch, see 2 behind, pull and build once; the build records what it built.
    let deadline = Instant::now() + Duration::from_secs(60);
    while git_head(&c) != tip || built(&c, HEAD).as_deref() != Some(tip.as_str()) {
        assert!(
            Instant::now() < deadline,
            "auto did not apply\n{}",
            c.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let v = wait_updates(&c, 20, |v| v["behind"] == 0 && v["applying"] == false).await;
    assert!(v["last_apply_error"].is_null(), "{v}");
    // The worker got the image too: the workers were named, not autodiscovered (the
    // simulated autodiscovery finds nobody and fails the build).
    assert_eq!(built(&c, WORKER).as_deref(), Some(tip.as_str()));
    let copied = std::fs::read_to_string(c.sim_root(HEAD).join("copied-to")).expect("copied-to");
    // The worker by its interconnect address (what the launcher scripts name nodes by).
    assert_eq!(copied, format!("{WORKER_CX7}\n"));
    // pin: the checkout converges to the pinned (older) commit.
    let pin = commits[0].clone();
    c.write(&c.desired(
        "null",
        &format!(
            // Quoted: a hash prefix can be all digits, which YAML reads as a number.
            "updates: {{ launcher: {{ pin: \"{}\" }}, check_interval_secs: 60 }}\n",
            &pin[..12]
        ),
    ));
    let deadline = Instant::now() + Duration::from_secs(40);
    while git_head(&c) != pin {
        assert!(
            Instant::now() < deadline,
            "pin did not converge\n{}",
            c.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let v = wait_updates(&c, 20, |v| v["drift"] == false && v["applying"] == false).await;
    assert_eq!(v["policy"], "pin");
    assert!(v["last_apply_error"].is_null(), "{v}");
    // The image was rebuilt from the pinned checkout, on the head and on the worker.
    assert_eq!(built(&c, HEAD).as_deref(), Some(pin.as_str()));
    assert_eq!(built(&c, WORKER).as_deref(), Some(pin.as_str()));
    assert_eq!(git_branch(&c), None, "a pin is a detached HEAD");
    // Converged: nothing more to do, and it stays there.
    c.wait_status("plan empty", 20, |s| s.plan.steps.is_empty() && !s.busy())
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(git_head(&c), pin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_build_leaves_the_previous_checkout_working() {
    let (c, _) = start("manual", &["Broken change"]).await;
    // The head seen over SSH (not just a first observation, which may have found it
    // unreachable on a loaded machine), and the upstream commit fetched.
    let (s, v) = api(&c, "POST", "/api/updates/check", None).await;
    assert_eq!(s, 202, "{v}");
    wait_updates(&c, 60, |v| v["behind"] == 1).await;
    let before = git_head(&c);
    c.knob("build-fail", Some(""));
    let (s, v) = api(&c, "POST", "/api/updates/apply", None).await;
    assert_eq!(s, 202, "{v}");
    let v = wait_updates(&c, 60, |v| {
        v["applying"] == false && v["last_apply_error"].is_string()
    })
    .await;
    let err = v["last_apply_error"].as_str().unwrap_or("");
    assert!(err.contains("keeps working"), "{err}");
    // The world: HEAD is the old commit, the tree is clean, the old build is what ran.
    assert_eq!(git_head(&c), before);
    let status = Command::new("git")
        .arg("-C")
        .arg(&c.launcher)
        .args(["status", "--porcelain"])
        .output()
        .expect("git status");
    assert!(
        status.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    // The build's output was streamed into the log.
    let log = c.log_tail(200);
    assert!(log.contains("failed to solve"), "{log}");
    // With the build fixed, applying again succeeds.
    c.knob("build-fail", None);
    let (s, _) = api(&c, "POST", "/api/updates/apply", None).await;
    assert_eq!(s, 202);
    let v = wait_updates(&c, 60, |v| {
        v["applying"] == false && v["last_apply_error"].is_null() && v["behind"] == 0
    })
    .await;
    assert_ne!(v["head"].as_str(), Some(before.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_with_a_failing_build_tries_once_per_interval() {
    let mut c = Cluster::new(500);
    c.knob("build-seconds", Some("1"));
    c.knob("build-fail", Some(""));
    c.write(&c.desired(
        "null",
        "updates: { launcher: auto, check_interval_secs: 60 }\n",
    ));
    upstream(&c, &["Change that breaks the build"]);
    let before = git_head(&c);
    c.start_controller();
    // `behind` comes from the observations: one made during the apply (after the pull,
    // before the failed build put the checkout back) says 0; the next one says 1 again.
    let v = wait_updates(&c, 40, |v| {
        v["last_apply_error"].is_string() && v["behind"] == 1
    })
    .await;
    assert_eq!(v["behind"], 1, "{v}");
    // Still behind, but auto does not try again within the interval (the loop's failure
    // backoff alone would retry after 10 s); the plan is empty.
    tokio::time::sleep(Duration::from_secs(13)).await;
    let builds = c
        .log_tail(2000)
        .lines()
        .filter(|l| l.contains("Building image vllm-node"))
        .count();
    assert_eq!(builds, 1, "{}", c.log_tail(60));
    assert_eq!(git_head(&c), before);
    let s = c.status();
    assert!(s.plan.steps.is_empty(), "{}", s.plan_text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_a_pin_follows_the_branch_again() {
    let (c, commits) = start(
        "notify",
        &["First upstream change", "Second upstream change"],
    )
    .await;
    let original = git_head(&c);
    wait_updates(&c, 30, |v| v["behind"] == 2).await;
    // Pin the first upstream commit: detached there, image rebuilt.
    let pin = commits[0].clone();
    c.write(&c.desired(
        "null",
        &format!("updates: {{ launcher: {{ pin: \"{pin}\" }}, check_interval_secs: 60 }}\n"),
    ));
    let deadline = Instant::now() + Duration::from_secs(40);
    while git_head(&c) != pin || built(&c, HEAD).as_deref() != Some(pin.as_str()) {
        assert!(
            Instant::now() < deadline,
            "pin did not converge\n{}",
            c.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(git_branch(&c), None);
    c.wait_status("pinned, plan empty", 20, |s| {
        s.plan.steps.is_empty() && !s.busy()
    })
    .await;
    // Unpin (back to notify): the branch is checked out again, where it was, and the
    // image rebuilt from it.
    c.write(&c.desired(
        "null",
        "updates: { launcher: notify, check_interval_secs: 60 }\n",
    ));
    let deadline = Instant::now() + Duration::from_secs(40);
    while git_branch(&c).as_deref() != Some("main")
        || built(&c, HEAD).as_deref() != Some(original.as_str())
    {
        assert!(
            Instant::now() < deadline,
            "the branch was not checked out again\n{}",
            c.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(git_head(&c), original);
    assert_eq!(built(&c, WORKER).as_deref(), Some(original.as_str()));
    // New upstream commits: a check counts them against the branch again.
    upstream(&c, &["Third upstream change"]);
    let (s, v) = api(&c, "POST", "/api/updates/check", None).await;
    assert_eq!(s, 202, "{v}");
    let v = wait_updates(&c, 30, |v| v["behind"] == 3).await;
    assert_eq!(v["branch"], "main", "{v}");
    assert!(v["pinned_from"].is_null(), "{v}");
    assert_eq!(v["subjects"][0], "Third upstream change", "{v}");
    let s = c.status();
    let launcher = s
        .observed
        .hosts
        .get("spark1")
        .and_then(|h| h.launcher.get())
        .expect("launcher observed");
    assert_eq!(launcher.behind, Some(3));
    // notify never applies.
    assert_eq!(git_head(&c), original);
}
