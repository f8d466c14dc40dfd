"""The Grafana dashboard of spark-control's /metrics, built with Grafana's own types.

The dashboard is made with grafana-foundation-sdk's builders (the Python types Grafana
generates from its dashboard schema), so every field it has is one Grafana defines.

  python scripts/grafana_dashboard.py --write docs/grafana/spark-control.json
  python scripts/grafana_dashboard.py --check docs/grafana/spark-control.json
  python scripts/grafana_dashboard.py --queries        # [{"panel", "expr", "legend"}] as JSON

--check fails when the file is not what the builders make (stale), or when decoding it
with the SDK's models (Dashboard.from_json) and encoding it again loses or changes
anything: a field Grafana's schema does not know, or one of the wrong shape.
"""

import json
import sys

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dbm

DS = dbm.DataSourceRef(type_val="prometheus", uid="${datasource}")

# (row, panel title, kind, unit, [(PromQL, legend)]). Rates use 1m windows (a scrape
# every 15 s still gives four points); swaps are rare, so their panels look back 1h.
PANELS = [
    ("Health", "Hosts up (SSH)", "stat", "none", [("spark_control_host_up", "{{host}}")]),
    ("Health", "Services up", "stat", "none", [("spark_control_service_up", "{{service}}")]),
    ("Health", "vLLM ready", "stat", "none", [("spark_control_vllm_ready", "vLLM")]),
    ("Proxy", "Requests per second by status", "timeseries", "reqps",
     [("sum by (code) (rate(spark_proxy_requests_total[1m]))", "{{code}}")]),
    ("Proxy", "Requests per second by model", "timeseries", "reqps",
     [("sum by (model, deployment) (rate(spark_proxy_requests_total[1m]))", "{{deployment}}/{{model}}")]),
    ("Proxy", "Client and server errors (share of requests)", "timeseries", "percentunit",
     [('sum(rate(spark_proxy_requests_total{code=~"4..|5.."}[1m])) / sum(rate(spark_proxy_requests_total[1m]))', "4xx+5xx")]),
    ("Proxy", "Time to first token (streamed), p50 / p95", "timeseries", "s",
     [("histogram_quantile(0.5, sum by (le, model) (rate(spark_proxy_time_to_first_byte_seconds_bucket[1m])))", "p50 {{model}}"),
      ("histogram_quantile(0.95, sum by (le, model) (rate(spark_proxy_time_to_first_byte_seconds_bucket[1m])))", "p95 {{model}}")]),
    ("Proxy", "Request duration p95 by route", "timeseries", "s",
     [("histogram_quantile(0.95, sum by (le, route) (rate(spark_proxy_request_duration_seconds_bucket[1m])))", "{{route}}")]),
    ("Proxy", "Requests in flight", "timeseries", "none",
     [("sum by (model) (spark_proxy_in_flight)", "{{model}}")]),
    ("vLLM", "Tokens per second", "timeseries", "none",
     [("spark_control_vllm_generation_tokens_per_second", "generated {{model}}"),
      ("spark_control_vllm_prompt_tokens_per_second", "prompt {{model}}")]),
    ("vLLM", "Requests running / waiting", "timeseries", "none",
     [("spark_control_vllm_requests_running", "running {{model}}"),
      ("spark_control_vllm_requests_waiting", "waiting {{model}}")]),
    ("vLLM", "KV-cache usage", "timeseries", "percentunit",
     [("spark_control_vllm_kv_cache_usage_ratio", "{{model}}")]),
    ("GPUs", "GPU utilisation", "timeseries", "percentunit",
     [("spark_control_gpu_utilization_ratio", "{{host}} gpu{{gpu}}")]),
    ("GPUs", "GPU temperature", "timeseries", "celsius",
     [("spark_control_gpu_temperature_celsius", "{{host}} gpu{{gpu}}")]),
    ("GPUs", "GPU power", "timeseries", "watt",
     [("spark_control_gpu_power_watts", "{{host}} gpu{{gpu}}")]),
    ("GPUs", "GPU memory used (where reported)", "timeseries", "percentunit",
     [("spark_control_gpu_memory_used_bytes / spark_control_gpu_memory_total_bytes", "{{host}} gpu{{gpu}}")]),
    ("Control loop", "Model swaps in the last hour", "timeseries", "none",
     [("sum by (cause, result) (increase(spark_control_swap_duration_seconds_count[1h]))", "{{cause}} {{result}}")]),
    ("Control loop", "Mean swap duration (last hour)", "timeseries", "s",
     [("sum by (cause) (increase(spark_control_swap_duration_seconds_sum[1h])) / (sum by (cause) (increase(spark_control_swap_duration_seconds_count[1h])) > 0)", "{{cause}}")]),
    ("Control loop", "Operations in the last hour", "timeseries", "none",
     [("sum by (result) (increase(spark_control_operations_total[1h]))", "{{result}}")]),
    ("Control loop", "SSH round trip", "timeseries", "s",
     [("spark_control_host_rtt_seconds", "{{host}}")]),
    ("Process", "Resident memory", "timeseries", "bytes",
     [("process_resident_memory_bytes", "RSS")]),
    ("Process", "CPU", "timeseries", "percentunit",
     [("rate(process_cpu_seconds_total[1m])", "CPU")]),
    ("Process", "Open file descriptors", "timeseries", "none",
     [("process_open_fds", "open"), ("process_max_fds", "limit")]),
    ("Process", "Build", "stat", "none",
     [("spark_control_build_info", "{{version}}")]),
]


def build() -> dbm.Dashboard:
    d = (
        db.Dashboard("spark-control")
        .uid("spark-control")
        .description("The control plane, its OpenAI proxy, vLLM and the Sparks' GPUs, from spark-control's /metrics.")
        .tags(["spark-control", "vllm"])
        .time("now-1h", "now")
        .refresh("30s")
        .with_variable(
            db.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        )
    )
    row = None
    for row_title, title, kind, unit, queries in PANELS:
        if row_title != row:
            d = d.with_row(db.Row(row_title))
            row = row_title
        panel = (stat.Panel() if kind == "stat" else timeseries.Panel()).title(title)
        panel = panel.datasource(DS).unit(unit).height(7).span(6 if kind == "stat" else 8)
        for i, (expr, legend) in enumerate(queries):
            panel = panel.with_target(
                prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i))
            )
        d = d.with_panel(panel)
    return d.build()


def to_dict(model) -> dict:
    return json.loads(json.dumps(model, cls=JSONEncoder))


def text_of(model) -> str:
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def check(path: str) -> None:
    with open(path) as f:
        on_disk = f.read()
    data = json.loads(on_disk)
    if on_disk != text_of(build()):
        sys.exit(f"{path} is stale: run python scripts/grafana_dashboard.py --write {path}")
    again = to_dict(dbm.Dashboard.from_json(data))
    if again != data:
        sys.exit(f"{path} does not survive Grafana's dashboard types unchanged")
    panels = [p for p in data["panels"] if p["type"] != "row"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    print(f"{path}: valid Grafana dashboard (grafana-foundation-sdk round trip), "
          f"{len(panels)} panels, {len(exprs)} queries")


def queries() -> list[dict]:
    return [
        {"panel": title, "expr": expr, "legend": legend, "unit": unit}
        for _, title, _, unit, qs in PANELS
        for expr, legend in qs
    ]


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["--write", path]:
            with open(path, "w") as f:
                f.write(text_of(build()))
        case ["--check", path]:
            check(path)
        case ["--queries"]:
            print(json.dumps(queries(), indent=1))
        case _:
            sys.exit(__doc__)
