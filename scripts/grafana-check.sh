#!/usr/bin/env bash
# The Grafana dashboard (docs/grafana/spark-control.json) checked the two ways that
# matter: it is what Grafana's own dashboard types (grafana-foundation-sdk) build and
# survives their decoding unchanged, and every panel's PromQL returns data from a real
# Prometheus (Debian's `prometheus`) scraping a running demo on loopback while traffic
# and a model swap go through it. Writes docs/grafana/queries.txt and panels.png.
#
# Needs: prometheus (apt-get install prometheus), python3 with venv, curl, a built
# spark-control (see scripts/demo-lib.sh). PyPI packages go into a venv
# ($GRAFANA_VENV, default ~/.cache/spark-control/grafana-venv).
#   bash scripts/grafana-check.sh [SECONDS]     (default 60 s of traffic)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/demo-lib.sh

seconds="${1:-60}"
venv="${GRAFANA_VENV:-$HOME/.cache/spark-control/grafana-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import grafana_foundation_sdk, matplotlib' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q grafana-foundation-sdk matplotlib
fi
command -v prometheus >/dev/null || { echo "prometheus not found: apt-get install prometheus" >&2; exit 1; }

"$venv/bin/python" scripts/grafana_dashboard.py --check docs/grafana/spark-control.json

start_demo --startup-delay-ms 1500
prom_port=$(free_port 127.0.0.1)
demo_addr="${DEMO_URL#http://}"
cat >"$DEMO_DIR/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: spark-control
    static_configs: [{ targets: ["$demo_addr"] }]
YAML
prometheus --config.file="$DEMO_DIR/prometheus.yml" --storage.tsdb.path="$DEMO_DIR/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$DEMO_DIR/prometheus.log" 2>&1 &
prom_pid=$!
trap 'kill "$prom_pid" 2>/dev/null; wait "$prom_pid" 2>/dev/null; stop_demo' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$prom_port/-/ready" >/dev/null || { cat "$DEMO_DIR/prometheus.log" >&2; exit 1; }

"$venv/bin/python" scripts/grafana_queries.py "$DEMO_URL" "http://127.0.0.1:$prom_port" "$seconds" docs/grafana
# Prometheus itself saw the target up the whole time.
curl -fsS "http://127.0.0.1:$prom_port/api/v1/query?query=up" | grep -q '"value":\[[0-9.]*,"1"\]' \
  || { echo "Prometheus does not see the demo up" >&2; exit 1; }
echo "grafana: dashboard valid, every query returned data (docs/grafana/queries.txt, panels.png)"
