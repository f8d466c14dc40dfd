//! Accessibility: axe-core (vendored, see vendor/axe-core/README.md) run in real Chromium
//! over every view of the demo, at desktop width and on a 390×844 phone, in the light and
//! the dark colour scheme, and over the confirmation dialog, finds no serious or critical
//! violation.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::harness::*;

const AXE: &str = include_str!("vendor/axe-core/axe.min.js");

/// Loads axe into the page (once per document) and runs it on the whole document; returns
/// the serious and critical violations as `{id, impact, help, targets}`.
fn run_axe() -> String {
    format!(
        "if (!window.axe) {{ {AXE}\n }}\n\
return window.axe.run(document, {{ resultTypes: ['violations'] }}).then((r) => r.violations\
  .filter((v) => v.impact === 'serious' || v.impact === 'critical')\
  .map((v) => ({{ id: v.id, impact: v.impact, help: v.help,\
    targets: v.nodes.map((n) => n.target.join(' ') + ' :: ' + n.failureSummary.replace(/\\s+/g, ' ')) }})));"
    )
}

fn describe(where_: &str, found: &Value) -> String {
    let mut out = String::new();
    for v in found.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n{where_}: {} ({}): {}",
            v["id"].as_str().unwrap_or("?"),
            v["impact"].as_str().unwrap_or("?"),
            v["help"].as_str().unwrap_or("")
        ));
        for t in v["targets"].as_array().into_iter().flatten() {
            out.push_str(&format!("\n    {}", t.as_str().unwrap_or("")));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_no_serious_or_critical_violation_in_any_view() -> Result<()> {
    let srv = demo_server().await?;
    let (_d, s) = browser().await?;
    let mut report = String::new();
    for (width, height, phone, dark) in [
        (1366u32, 900u32, false, false),
        (1366, 900, false, true),
        (390, 844, true, false),
        (390, 844, true, true),
    ] {
        s.viewport(width, height, phone).await?;
        s.color_scheme(dark).await?;
        let scheme = if dark { "dark" } else { "light" };
        s.goto(&format!("{}/#/cluster", srv.base)).await?;
        // The simulated Sparks are seen and the model serves: every view has its data.
        s.wait_text("[data-testid=model-ready]", "ready", LONG)
            .await
            .context("qwen36 ready")?;
        for view in VIEWS {
            s.exec(
                "location.hash = arguments[0]; return 1;",
                json!([format!("#/{view}")]),
            )
            .await?;
            s.wait_for(&format!("[data-testid=view-{view}]"), SHORT)
                .await?;
            let rows = match view {
                "services" => Some("[data-testid=services-rows] button"),
                "setup" => Some("[data-testid=setup-hosts] button"),
                _ => None,
            };
            if let Some(css) = rows {
                s.wait_for(css, SHORT).await.context(view)?;
            }
            let found = s.exec(&run_axe(), json!([])).await.context(view)?;
            anyhow::ensure!(found.is_array(), "axe gave no result on {view}: {found}");
            report.push_str(&describe(
                &format!("{view} at {width}x{height} {scheme}"),
                &found,
            ));
        }
        // The confirmation dialog (asked before a model swap), then dismissed.
        s.exec("location.hash = '#/models'; return 1;", json!([]))
            .await?;
        s.click("[data-testid=activate-gemma4]").await?;
        s.wait_text("[data-testid=confirm-title]", "gemma4", SHORT)
            .await?;
        let found = s.exec(&run_axe(), json!([])).await?;
        anyhow::ensure!(found.is_array(), "axe gave no result: {found}");
        report.push_str(&describe(
            &format!("confirm dialog at {width}x{height} {scheme}"),
            &found,
        ));
        s.click("[data-testid=confirm-cancel]").await?;
    }
    assert!(report.is_empty(), "axe-core found:{report}");

    // The check can fail: an image without a text alternative, planted in the page, is
    // reported as critical.
    s.exec(
        "const i = document.createElement('img'); i.src = '/nope.png'; i.dataset.testid = 'planted'; document.querySelector('main').append(i); return 1;",
        json!([]),
    )
    .await?;
    let found = s.exec(&run_axe(), json!([])).await?;
    assert!(
        describe("planted", &found).contains("image-alt (critical)"),
        "axe did not report the planted image: {found}"
    );
    Ok(())
}
