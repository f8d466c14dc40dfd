//! The Cluster view's charts: one for every series `/api/telemetry` keeps (tokens/s,
//! requests, KV cache; per host GPU use, memory, temperature, power, SSH round trip),
//! each showing the server's latest value.

use anyhow::Result;
use serde_json::{json, Value};

use super::harness::*;

/// Each plot card's title and its "now" text.
const SHOWN: &str = "\
return Array.from(document.querySelectorAll('[data-testid=plots] .plot-card')).map((c) =>
  [c.querySelector('strong').textContent, c.querySelector('[data-role=now]').textContent]);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_telemetry_series_has_a_chart_with_the_servers_latest_value() -> Result<()> {
    let (srv, _d, s) = demo_with_qwen36_ready().await?;
    let mut last = Value::Null;
    for _ in 0..80 {
        let t: Value = reqwest::get(format!("{}/api/telemetry", srv.base))
            .await?
            .json()
            .await?;
        let shown = s.exec(SHOWN, json!([])).await?;
        let cards: Vec<(String, String)> = shown
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let f = |i: usize| c[i].as_str().unwrap_or("").to_string();
                (f(0), f(1))
            })
            .collect();
        let mut want = vec!["Tokens/s".to_string(), "Requests".into(), "KV cache".into()];
        for host in ["spark1", "spark2"] {
            for what in [
                "GPU utilisation",
                "GPU memory",
                "GPU temperature",
                "Power",
                "SSH round trip",
            ] {
                want.push(format!("{what} — {host}"));
            }
        }
        let titles: Vec<String> = cards.iter().map(|(t, _)| t.clone()).collect();
        // The latest temperature of spark1, as the server has it, is what its chart says.
        let temp = t["hosts"]["spark1"]["temp_c"]
            .as_array()
            .and_then(|a| a.last())
            .and_then(|p| p[1].as_f64().or_else(|| p["v"].as_f64()));
        let shown_temp = cards
            .iter()
            .find(|(t, _)| t == "GPU temperature — spark1")
            .map(|(_, n)| n.clone());
        if titles == want {
            if let (Some(v), Some(n)) = (temp, &shown_temp) {
                if *n == format!("{} °C", v.round()) {
                    return Ok(());
                }
            }
        }
        last = json!({ "titles": titles, "want": want, "temp": temp, "shown": shown_temp, "telemetry_spark1": t["hosts"]["spark1"] });
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    anyhow::bail!("the charts never matched the telemetry: {last:#}")
}
