"""Runs every query of the Grafana dashboard against a real Prometheus scraping a
running demo, while traffic and a model swap go through the demo; plots the results.

  python scripts/grafana_queries.py DEMO_URL PROMETHEUS_URL SECONDS OUT_DIR

Traffic: streamed and non-streamed chat completions through the demo's proxy, some for a
model nobody serves (4xx), and one swap (activate gemma4) a third of the way in. Then
each panel's PromQL goes to Prometheus' /api/v1/query_range over the run; a query that
returns no series, or only NaN, fails the run. Writes OUT_DIR/queries.txt (per query:
series and last values) and OUT_DIR/panels.png (one plot per panel).
"""

import json
import math
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import grafana_dashboard  # noqa: E402


def http(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def served_model(demo):
    status, body = http("GET", f"{demo}/v1/models")
    if status != 200:
        return None
    data = json.loads(body).get("data") or []
    return data[0]["id"] if data else None


def wait_ready(demo, secs):
    deadline = time.time() + secs
    while time.time() < deadline:
        if served_model(demo):
            return
        time.sleep(0.5)
    sys.exit(f"the demo's model was not ready within {secs} s")


def traffic(demo, until, stop):
    n = 0
    while time.time() < until and not stop.is_set():
        model = served_model(demo) or "none"
        if n % 5 == 4:
            model = "no-such-model"
        body = {"model": model, "max_tokens": 16, "stream": n % 3 != 0,
                "messages": [{"role": "user", "content": f"hello {n}"}]}
        http("POST", f"{demo}/v1/chat/completions", body, timeout=60)
        n += 1
        time.sleep(0.2)


def query_range(prom, expr, start, end, step):
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    status, body = http("GET", f"{prom}/api/v1/query_range?{q}")
    doc = json.loads(body)
    if status != 200 or doc.get("status") != "success":
        sys.exit(f"{expr}: {status} {doc}")
    return doc["data"]["result"]


def label(legend, metric):
    out = legend
    for k, v in metric.items():
        out = out.replace("{{" + k + "}}", v)
    return out


def main(demo, prom, seconds, out_dir):
    wait_ready(demo, 90)
    t0 = time.time()
    stop = threading.Event()
    workers = [threading.Thread(target=traffic, args=(demo, t0 + seconds, stop)) for _ in range(2)]
    for w in workers:
        w.start()
    time.sleep(seconds / 3)
    status, body = http("POST", f"{demo}/api/desired/edit", {"op": "activate", "model": "gemma4"})
    if status != 200:
        stop.set()
        sys.exit(f"activate gemma4: {status} {body!r}")
    for w in workers:
        w.join()
    time.sleep(6)  # two scrapes after the last request
    end = time.time()

    results = []
    failed = []
    for q in grafana_dashboard.queries():
        series = query_range(prom, q["expr"], t0 - 120, end, 2)
        finite = [s for s in series if any(not math.isnan(float(v)) for _, v in s["values"])]
        results.append((q, finite))
        if not finite:
            failed.append(q)

    with open(f"{out_dir}/queries.txt", "w") as f:
        f.write(f"# scripts/grafana-check.sh: {len(results)} queries of docs/grafana/spark-control.json\n")
        f.write(f"# against Prometheus scraping the demo every 1 s for a {seconds:.0f} s run\n")
        for q, series in results:
            f.write(f"\n[{q['panel']}] {q['expr']}\n")
            for s in series:
                last = next(float(v) for _, v in reversed(s["values"]) if not math.isnan(float(v)))
                f.write(f"  {label(q['legend'], s['metric'])}: {len(s['values'])} points, last {last:.4g}\n")
            if not series:
                f.write("  NO DATA\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {}
    for q, series in results:
        panels.setdefault(q["panel"], []).append((q, series))
    cols = 4
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 4.2, rows * 2.8), squeeze=False)
    for ax, (title, qs) in zip(axes.flat, panels.items()):
        for q, series in qs:
            for s in series:
                xs = [float(t) - t0 for t, _ in s["values"]]
                ys = [float(v) for _, v in s["values"]]
                ax.plot(xs, ys, label=label(q["legend"], s["metric"])[:28], linewidth=1.2)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xlabel(f"s since traffic began ({qs[0][0]['unit']})", fontsize=6)
        ax.legend(fontsize=5, loc="best")
        ax.axvline(seconds / 3, color="grey", linestyle=":", linewidth=0.8)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    fig.suptitle("spark-control dashboard queries on the demo (dotted: swap to gemma4)", fontsize=10)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/panels.png", dpi=90)

    if failed:
        sys.exit("no data for: " + "; ".join(f"[{q['panel']}] {q['expr']}" for q in failed))
    print(f"all {len(results)} dashboard queries returned data; plots in {out_dir}/panels.png")


if __name__ == "__main__":
    demo, prom, seconds, out_dir = sys.argv[1:5]
    main(demo, prom, float(seconds), out_dir)
