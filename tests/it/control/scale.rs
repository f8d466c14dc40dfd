//! Eight simulated Sparks (sshd on 127.0.0.2–127.0.0.9, a launcher checkout on each) and
//! four deployments: three solo (spark1, spark2, spark3) and one cluster over spark4 and
//! spark5; spark6–spark8 hold nothing but are observed like the rest. The controller
//! keeps one SSH connection per host for the whole run, through start-up, polls and a
//! swap, counted by sshd itself (its log's "Accepted publickey" lines), not by us.

use std::sync::atomic::Ordering;

use super::*;
use crate::harness::cluster::Generation;
use crate::harness::sshd::free_port;

const GEMMA4: &str = "google/gemma-4-26B-A4B-it";
const QWEN72: &str = "Qwen/Qwen2.5-72B-Instruct-AWQ";
const BIG: &str = "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8";

both!(eight_hosts_four_deployments_one_connection_per_host);
async fn eight_hosts_four_deployments_one_connection_per_host(g: Generation) {
    let mut c = Cluster::fleet(8, 300, g);
    let ip: Vec<String> = c.sshds().iter().map(|s| s.addr().to_string()).collect();
    let mut port = vec![c.vllm_port];
    for a in &ip[1..4] {
        let mut p = free_port(a);
        while p == c.stt_port || p == c.tts_port {
            p = free_port(a);
        }
        port.push(p);
    }
    let layout = |c: &Cluster, chat: &str| {
        c.fleet_desired(&[
            ("coder", 0, &[], port[0], Some("qwen36")),
            ("vision", 1, &[], port[1], Some("qwen3-vl")),
            ("chat", 2, &[], port[2], Some(chat)),
            ("big", 3, &[4], port[3], Some("qwen3-235b-fp8")),
        ])
    };
    c.write(&layout(&c, "gemma4"));
    c.start_controller();
    for (i, repo) in [QWEN36, QWEN3VL, GEMMA4, BIG].iter().enumerate() {
        c.wait_serving_at(&ip[i], port[i], repo, 180).await;
    }
    let s = c
        .wait_status("every host observed, nothing left to do", 60, |s| {
            s.plan.steps.is_empty() && !s.busy() && s.observed.hosts.len() == 8
        })
        .await;
    for h in 1..=8 {
        let name = format!("spark{h}");
        assert_eq!(
            host_health(&s, &name),
            Some(Health::Healthy),
            "{name} in {:?}",
            s.resources
        );
    }
    // A swap on one deployment runs over the same connections.
    c.write(&layout(&c, "qwen2.5-72b"));
    c.wait_serving_at(&ip[2], port[2], QWEN72, 180).await;
    for (i, repo) in [QWEN36, QWEN3VL, BIG].iter().enumerate() {
        let i = if i == 2 { 3 } else { i };
        assert_eq!(
            crate::harness::cluster::served_at(&ip[i], port[i]).await,
            Some(vec![repo.to_string()]),
            "{} on {}:{}",
            repo,
            ip[i],
            port[i]
        );
    }
    // Ten more polls of all eight hosts.
    let polls = c.handle().metrics.polls.load(Ordering::Relaxed);
    c.wait_status("ten more observations", 60, |_| {
        c.handle().metrics.polls.load(Ordering::Relaxed) >= polls + 10
    })
    .await;
    // The world: one vLLM on each head, none on the spare hosts; the cluster's worker
    // runs the launcher's node container (a headless vLLM in generation B, a Ray node
    // in generation A).
    let mut per_host: Vec<usize> = ip.iter().map(|a| c.vllm_processes_on(a).len()).collect();
    let worker = per_host.remove(4);
    assert_eq!(
        per_host,
        [1, 1, 1, 1, 0, 0, 0],
        "vLLM processes per host but spark5"
    );
    assert!(worker <= 1, "{worker} vLLM processes on spark5");
    assert!(
        c.container_running(&ip[4], "vllm_node"),
        "spark5 is big's worker"
    );
    // sshd's own count: one accepted session per host, for the whole run.
    assert_eq!(
        c.accepted_connections(),
        vec![1; 8],
        "SSH connections accepted per host (sshd logs)"
    );
}
