//! Cancelling the running operation over HTTP on two real sshd "Sparks": a declared
//! download (slow `hf-speed`) is the slow step. Assertions are about the world (no `hf`
//! process left, the cache stops growing, no model launched) and what `/api/state` and
//! `/api/events` say.

use std::time::{Duration, Instant};

use spark_control::status::Outcome;

use crate::downloads::{api, hf_alive};
use crate::harness::cluster::{Cluster, HEAD};

const MIB: u64 = 1024 * 1024;
const REPO: &str = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";

/// Bytes in the head's cache folder of `REPO` (complete and partial files).
fn cache_bytes(c: &Cluster) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-sb"])
        .arg(
            c.sim_root(HEAD)
                .join("hf/hub")
                .join(format!("models--{}", REPO.replace('/', "--"))),
        )
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_running_operation_at_once_and_holds_the_plan() {
    let mut c = Cluster::new(500);
    c.set_repo_size(256 * MIB);
    c.knob("hf-speed", Some(&MIB.to_string()));
    c.start_controller();
    // The cold start downloads first: wait until bytes arrive on the head.
    let s = c
        .wait_status("the download step running", 40, |s| {
            s.busy()
                && s.operation
                    .as_ref()
                    .is_some_and(|o| o.phase.contains("download"))
        })
        .await;
    let id = s.operation.as_ref().expect("operation").id;
    let deadline = Instant::now() + Duration::from_secs(20);
    while hf_alive(&c, HEAD) == 0 || cache_bytes(&c) < MIB {
        assert!(
            Instant::now() < deadline,
            "no bytes arrive\n{}",
            c.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Cancel: 202 at once, the operation ends cancelled within a few seconds.
    let asked = Instant::now();
    let (status, v) = api(&c, "POST", &format!("/api/operations/{id}/cancel"), None).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["cancelling"], id, "{v}");
    let s = c
        .wait_status("the operation cancelled", 5, |s| {
            s.operation
                .as_ref()
                .is_some_and(|o| o.id == id && matches!(o.outcome, Outcome::Cancelled(_)))
        })
        .await;
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(3), "cancelled after {took:?}");
    let Some(Outcome::Cancelled(why)) = s.operation.as_ref().map(|o| o.outcome.clone()) else {
        unreachable!("waited for it");
    };
    assert!(why.contains("cancelled by a client"), "{why}");
    // The world: the hf process is gone, the cache stops growing, nothing was launched,
    // and no new operation starts the same steps again while the hold lasts.
    let deadline = Instant::now() + Duration::from_secs(5);
    while hf_alive(&c, HEAD) > 0 {
        assert!(Instant::now() < deadline, "hf still runs after the cancel");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bytes = cache_bytes(&c);
    assert!(bytes < 256 * MIB);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        cache_bytes(&c),
        bytes,
        "bytes still arrive after the cancel"
    );
    assert!(c.vllm_processes().is_empty(), "a model was launched");
    let s = c.status();
    assert_eq!(
        s.operation.as_ref().map(|o| o.id),
        Some(id),
        "a new operation started"
    );
    assert!(
        s.held
            .as_deref()
            .unwrap_or("")
            .contains("cancelled by a client"),
        "{:?}",
        s.held
    );
    let (_, state) = api(&c, "GET", "/api/state", None).await;
    assert_eq!(
        state["operation"]["outcome"]["state"], "cancelled",
        "{}",
        state["operation"]
    );
    // The event log says who cancelled it.
    let (_, ev) = api(&c, "GET", "/api/events?kind=action", None).await;
    let said = ev["events"].as_array().expect("events").iter().any(|e| {
        e["source"] == "a client" && e["error"] == format!("operation {id} cancelled by a client")
    });
    assert!(said, "{ev}");
    // It ended: 409; an id that never ran: 404.
    let (status, v) = api(&c, "POST", &format!("/api/operations/{id}/cancel"), None).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "operation_ended", "{v}");
    let (status, v) = api(&c, "POST", "/api/operations/999/cancel", None).await;
    assert_eq!(status, 404, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("no operation 999"),
        "{v}"
    );
    // Retry lifts the hold: the plan runs again (the download resumes).
    let (status, _) = api(&c, "POST", "/api/retry", None).await;
    assert_eq!(status, 202);
    c.wait_status("a new operation after retry", 20, |s| {
        s.held.is_none() && s.operation.as_ref().is_some_and(|o| o.id > id)
    })
    .await;
}
