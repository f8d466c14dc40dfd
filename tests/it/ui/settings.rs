//! Model settings mean what they say: the form speaks the file's units and the flags of
//! DESIGN §4, checked where it counts — in desired.yaml and in the argv of the fake vLLM
//! the simulated launcher started.

use anyhow::Result;
use serde_json::json;

use super::harness::*;
use crate::harness::cluster::vllm_argv;

/// The value after `flag` in `argv`.
fn flag_value<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.windows(2)
        .find(|w| w[0] == flag)
        .map(|w| w[1].as_str())
}

/// GPU memory `0.5` typed in the form is `gpu_memory: 0.5` in the file (the field shows
/// the file's fraction, with a % hint), and prefix caching "off" is
/// `--no-enable-prefix-caching` in the relaunched vLLM's argv; "default" is labelled with
/// vLLM's real default (on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_memory_fraction_and_prefix_caching_off_reach_vllm() -> Result<()> {
    let srv = demo_server().await?;
    let port = srv.vllm_port.expect("a demo server");
    let (_d, s) = browser().await?;
    s.goto(&format!("{}/#/cluster", srv.base)).await?;
    s.wait_text("[data-testid=model-ready]", "ready", LONG)
        .await?;
    let before = vllm_argv(port).unwrap_or_default();
    // The demo's qwen36 has gpu_memory: 0.80 and no prefix-caching key.
    assert_eq!(
        flag_value(&before, "--gpu-memory-utilization").map(|v| v.parse::<f64>().ok()),
        Some(Some(0.8)),
        "{before:?}"
    );
    assert!(
        !before.iter().any(|a| a.contains("prefix-caching")),
        "{before:?}"
    );
    let old_pid = before.clone();

    s.goto(&format!("{}/#/models", srv.base)).await?;
    s.click("[data-testid=settings-qwen36] summary").await?;
    let form = "[data-testid=settings-form-qwen36]";
    let shown = s
        .exec(
            "const f = document.querySelector(arguments[0]); return [f.elements.gpu_memory.value, f.elements.prefix_caching.options[0].textContent, f.querySelector('[data-role=gpu-hint]').textContent];",
            json!([form]),
        )
        .await?;
    assert_eq!(shown[0], json!("0.8"), "the file's unit: {shown}");
    assert_eq!(shown[1], json!("default (on)"), "vLLM's default: {shown}");
    assert!(
        shown[2].as_str().unwrap_or("").contains("80 %"),
        "a % hint: {shown}"
    );
    s.type_into(&format!("{form} [name=gpu_memory]"), "0.5")
        .await?;
    s.wait_text(&format!("{form} [data-role=gpu-hint]"), "50 %", SHORT)
        .await?;
    pick(&s, &format!("{form} [name=prefix_caching]"), "false").await?;
    s.click(&format!("{form} button[type=submit]")).await?;
    let t = wait_file(&srv.desired, "gpu_memory: 0.5", |t| {
        t.lines()
            .any(|l| l.contains("qwen36:") && l.contains("gpu_memory: 0.5"))
    })
    .await?;
    let d: serde_json::Value =
        serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&t)?)?;
    assert_eq!(d["overrides"]["qwen36"]["gpu_memory"], json!(0.5), "{t}");
    assert_eq!(
        d["overrides"]["qwen36"]["prefix_caching"],
        json!(false),
        "{t}"
    );

    // The model relaunches with them: the fake vLLM's own argv says so.
    wait_until(
        "vLLM relaunched with 0.5 and --no-enable-prefix-caching",
        || {
            vllm_argv(port).is_some_and(|a| {
                a != old_pid
                    && flag_value(&a, "--gpu-memory-utilization")
                        .and_then(|v| v.parse::<f64>().ok())
                        == Some(0.5)
                    && a.iter().any(|w| w == "--no-enable-prefix-caching")
            })
        },
    )
    .await?;
    s.quit().await?;
    Ok(())
}
