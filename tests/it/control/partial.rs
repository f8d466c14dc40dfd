//! Half-written and oversized desired files against the running loop on two real sshd
//! "Sparks": nothing acts. The world is checked — the fake vLLM processes, the service
//! containers' processes — and the rule: no operation started.

use std::io::Write;
use std::time::Duration;

use crate::harness::cluster::{Cluster, WORKER};

const QWEN36: &str = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";

/// qwen36's settings in block style, so a cut can fall between two of its lines.
const OVERRIDES: &str = "overrides:\n  qwen36:\n    max_context: 32768\n    gpu_memory: 0.8\n";

/// What runs: vLLM processes and the two services' container processes.
fn world(c: &Cluster) -> (Vec<(u32, String)>, Option<u32>, Option<u32>) {
    (
        c.vllm_processes(),
        c.container_pid(WORKER, "parakeet"),
        c.container_pid(WORKER, "magpie"),
    )
}

fn last_op_id(c: &Cluster) -> Option<u64> {
    c.status().operation.as_ref().map(|o| o.id)
}

/// Writes `text` in place (no rename) in two pieces, `gap` apart: an editor or script
/// that truncates, writes, pauses, writes the rest.
fn write_in_two(path: &std::path::Path, text: &str, cut: usize, gap: Duration) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .expect("open desired");
    f.write_all(&text.as_bytes()[..cut]).expect("first half");
    f.sync_all().expect("sync");
    std::thread::sleep(gap);
    f.write_all(&text.as_bytes()[cut..]).expect("second half");
    f.sync_all().expect("sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_written_files_never_act() {
    let mut c = Cluster::new(500);
    // A window with room for a loaded CI machine; the default (300 ms) is what the
    // edit-latency benchmark measures.
    c.settle = Some(Duration::from_millis(1000));
    let full = c.desired("qwen36", OVERRIDES);
    c.write(&full);
    c.start_controller();
    c.wait_serving(QWEN36, 60).await;
    c.wait_status("idle, services up", 30, |s| {
        s.plan.steps.is_empty()
            && !s.busy()
            && s.observed.services.values().all(|f| f.get() == Some(&true))
    })
    .await;
    let before = world(&c);
    assert!(before.1.is_some() && before.2.is_some(), "{before:?}");
    let op = last_op_id(&c);

    // Two halves 200 ms apart, cut at lines whose prefix would act if it were acted on:
    // between qwen36's two settings (a relaunch with other settings), before
    // `active_model:` (no model), before `services:` and inside them.
    let cuts = [
        full.find("    gpu_memory:").expect("cut in overrides"),
        full.find("active_model:").expect("cut before active_model"),
        full.find("services:").expect("cut before services"),
        full.find("  magpie:").expect("cut inside services"),
    ];
    for cut in cuts {
        write_in_two(c.desired_path(), &full, cut, Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            world(&c),
            before,
            "a two-half write (cut at byte {cut}) acted\n{}",
            c.log_tail(40)
        );
        assert_eq!(
            last_op_id(&c),
            op,
            "an operation started (cut at byte {cut})"
        );
    }

    // Cut just before `active_model:` and left so: refused, said where, nothing stops.
    let cut = full.find("active_model:").expect("active_model");
    c.write(&full[..cut]);
    let s = c
        .wait_status("the cut file rejected", 20, |s| {
            s.desired_diagnostics
                .iter()
                .any(|d| d.message.contains("`active_model:` is missing"))
        })
        .await;
    assert!(
        s.last_error
            .as_deref()
            .unwrap_or("")
            .contains("last valid one stays in force"),
        "{:?}",
        s.last_error
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(world(&c), before, "the model or a service was touched");
    // Still answering (asked until it does: one probe can be slow on a loaded machine; the
    // process check above already says it is the same vLLM).
    c.wait_serving(QWEN36, 20).await;
    let st = c.status();
    let endpoints = spark_control::http::endpoints_of(
        st.desired
            .as_deref()
            .expect("the last valid file stays in force"),
        &st.observed,
    );
    assert!(
        endpoints.get("parakeet").is_some() && endpoints.get("magpie").is_some(),
        "the speech services left /api/endpoints: {endpoints}"
    );

    // A 1 MB argument and a 2 MB model name: validation errors, the model untouched.
    let big_arg = "x".repeat(1_000_000);
    c.write(&c.desired(
        "qwen36",
        &format!("{OVERRIDES}    extra_args: [\"--served-model-name={big_arg}\"]\n"),
    ));
    c.wait_status("the 1 MB argument rejected", 20, |s| {
        s.desired_diagnostics
            .iter()
            .any(|d| d.path.contains("extra_args"))
    })
    .await;
    let huge_name = "m".repeat(2_000_000);
    c.write(&c.desired(&huge_name, OVERRIDES));
    let s = c
        .wait_status("the 2 MB name rejected", 20, |s| {
            s.desired_diagnostics
                .iter()
                .any(|d| d.message.contains("bytes"))
        })
        .await;
    for d in &s.desired_diagnostics {
        assert!(
            d.to_string().len() < 2000,
            "a diagnostic echoes the input: {} bytes",
            d.to_string().len()
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(world(&c), before, "an oversized file touched the world");
    assert_eq!(last_op_id(&c), op, "an oversized file started an operation");
}
