//! Phones: at 360 and 390 px wide no view scrolls sideways and every Start/Stop/Edit
//! button is on screen (tables become stacked cards), the tabs stay at the top while the
//! page scrolls, and the update banner can be dismissed (until upstream moves on).

use anyhow::{Context, Result};
use serde_json::json;

use super::harness::*;

/// The page's width against the screen's, and the Start/Stop/Edit buttons shown that are
/// not wholly inside the screen horizontally; and how many such buttons are shown.
const MEASURE: &str = "\
const inside = [];
const outside = [];
for (const b of document.querySelectorAll('main button')) {
  if (!/^(Start|Stop|Edit)$/.test(b.textContent.trim()) || b.offsetParent === null) continue;
  const r = b.getBoundingClientRect();
  (r.left >= 0 && r.right <= innerWidth ? inside : outside).push(`${b.textContent.trim()} ${Math.round(r.left)}..${Math.round(r.right)}`);
}
return { page: document.scrollingElement.scrollWidth, screen: innerWidth, inside: inside.length, outside };";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_widths_keep_every_action_on_screen() -> Result<()> {
    let srv = demo_server().await?;
    let (_d, s) = browser().await?;
    for width in [360u32, 390] {
        s.viewport(width, 844, true).await?;
        s.goto(&format!("{}/#/cluster", srv.base)).await?;
        // The simulated Sparks are seen, and the services listed (their buttons drawn).
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
            // The rows with buttons are drawn before they are measured.
            let rows = match view {
                "services" => Some("[data-testid=services-rows] button"),
                "setup" => Some("[data-testid=setup-hosts] button"),
                _ => None,
            };
            if let Some(css) = rows {
                s.wait_for(css, SHORT).await.context(view)?;
            }
            // Measured once the layout settled (two frames after the last change).
            let m = s
                .wait_js(
                    "a settled layout",
                    SHORT,
                    &format!(
                        "return new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done((() => {{ {MEASURE} }})()))));"
                    ),
                    json!([]),
                )
                .await?;
            assert!(
                m["page"].as_u64() <= m["screen"].as_u64(),
                "{view} at {width} px: the page is {} px wide",
                m["page"]
            );
            assert_eq!(m["outside"], json!([]), "{view} at {width} px: {m}");
            if rows.is_some() {
                assert!(
                    m["inside"].as_u64() >= Some(2),
                    "{view} at {width} px shows its buttons: {m}"
                );
            }
        }
    }

    // The tabs stay at the top of the screen while a long view scrolls.
    let mut long = None;
    for view in VIEWS {
        s.exec(
            "location.hash = arguments[0]; return 1;",
            json!([format!("#/{view}")]),
        )
        .await?;
        s.wait_for(&format!("[data-testid=view-{view}]"), SHORT)
            .await?;
        let tall = s
            .exec(
                "return document.scrollingElement.scrollHeight > innerHeight + 300;",
                json!([]),
            )
            .await?;
        if tall == json!(true) {
            long = Some(view);
            break;
        }
    }
    let long = long.context("a view longer than the screen")?;
    let tabs = s
        .exec(
            "window.scrollTo(0, document.scrollingElement.scrollHeight); \
             return new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => { \
               const r = document.querySelector('nav.tabs').getBoundingClientRect(); \
               done([Math.round(r.top), Math.round(r.bottom), Math.round(scrollY)]); })));",
            json!([]),
        )
        .await?;
    assert!(
        tabs[2].as_i64() > Some(100),
        "{long}: the page scrolled: {tabs}"
    );
    assert_eq!(tabs[0], json!(0), "{long}: the tabs are at the top: {tabs}");

    // The update banner (the demo's launcher is behind upstream) can be dismissed, and
    // stays dismissed after a reload.
    s.exec(
        "location.hash = '#/cluster'; window.scrollTo(0, 0); return 1;",
        json!([]),
    )
    .await?;
    s.wait_for("[data-testid=update-banner]", LONG)
        .await
        .context("the update banner")?;
    s.click("[data-testid=update-dismiss]").await?;
    let hidden = "return document.querySelector('[data-testid=update-banner]').hidden;";
    s.wait_js("the banner gone", SHORT, hidden, json!([]))
        .await?;
    s.exec(
        "window.__before = 1; location.reload(); return 1;",
        json!([]),
    )
    .await?;
    // The reloaded page has drawn the state (the banner's input) ...
    s.wait_js(
        "the reloaded page drew the state",
        LONG,
        "return !window.__before && !!document.documentElement.dataset.generation && document.querySelector('[data-testid=behind-count]') !== null;",
        json!([]),
    )
    .await?;
    // ... and keeps the banner dismissed.
    assert_eq!(s.exec(hidden, json!([])).await?, json!(true));
    s.quit().await?;
    Ok(())
}
