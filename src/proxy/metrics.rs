//! Per-route request counts and latency histograms for `/metrics`, lock-free.
//!
//! Owns the counters and their Prometheus text rendering. Must not block: every update is
//! a relaxed atomic add; rendering reads the atomics without stopping writers.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::route::Route;

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_MICROS: [u64; 19] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    300_000_000,
];

#[derive(Default)]
struct Histogram {
    /// Non-cumulative counts; the last slot is `+Inf`.
    buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = BUCKETS_MICROS.partition_point(|&b| b < micros);
        self.buckets[slot].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, route: &str) {
        let mut cumulative = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative += count.load(Relaxed);
            match BUCKETS_MICROS.get(i) {
                Some(b) => {
                    let le = *b as f64 / 1e6;
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}"
                    );
                }
            }
        }
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {cumulative}");
    }
}

/// Status classes counted per route: 1xx..5xx.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Default)]
struct RouteMetrics {
    by_class: [AtomicU64; CLASSES.len()],
    in_flight: AtomicI64,
    head: Histogram,
    total: Histogram,
}

/// The proxy's counters. Share one `Arc<ProxyMetrics>` between the router and `/metrics`.
#[derive(Default)]
pub struct ProxyMetrics {
    routes: [RouteMetrics; Route::ALL.len()],
}

impl ProxyMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn started(&self, route: Route) {
        self.routes[route.index()].in_flight.fetch_add(1, Relaxed);
    }

    /// The response head (status) is known, from upstream or from the proxy itself.
    pub(crate) fn answered(&self, route: Route, status: u16, elapsed: Duration) {
        let m = &self.routes[route.index()];
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        m.by_class[class].fetch_add(1, Relaxed);
        m.head.record(elapsed);
    }

    /// The exchange is over (body finished, failed, or the client went away).
    pub(crate) fn finished(&self, route: Route, elapsed: Duration) {
        let m = &self.routes[route.index()];
        m.in_flight.fetch_sub(1, Relaxed);
        m.total.record(elapsed);
    }

    /// Total requests answered on a route with a status in `class` (1..=5), for tests.
    pub fn count(&self, route_label: &str, class: usize) -> u64 {
        Route::ALL
            .iter()
            .find(|r| r.label() == route_label)
            .and_then(|r| self.routes[r.index()].by_class.get(class.wrapping_sub(1)))
            .map_or(0, |c| c.load(Relaxed))
    }

    /// Appends the Prometheus text exposition of every proxy metric to `out`.
    pub fn render_prometheus(&self, out: &mut String) {
        out.push_str("# HELP spark_proxy_requests_total Proxied requests answered, by route and status class.\n");
        out.push_str("# TYPE spark_proxy_requests_total counter\n");
        for route in Route::ALL {
            let m = &self.routes[route.index()];
            for (class, count) in CLASSES.iter().zip(&m.by_class) {
                let _ = writeln!(
                    out,
                    "spark_proxy_requests_total{{route=\"{}\",code=\"{class}\"}} {}",
                    route.label(),
                    count.load(Relaxed)
                );
            }
        }
        out.push_str("# HELP spark_proxy_in_flight Proxied requests not finished yet.\n");
        out.push_str("# TYPE spark_proxy_in_flight gauge\n");
        for route in Route::ALL {
            let n = self.routes[route.index()].in_flight.load(Relaxed);
            let _ = writeln!(
                out,
                "spark_proxy_in_flight{{route=\"{}\"}} {n}",
                route.label()
            );
        }
        for (name, help, pick) in [
            (
                "spark_proxy_response_head_seconds",
                "Time from request arrival to the response status being known.",
                (|m: &RouteMetrics| &m.head) as fn(&RouteMetrics) -> &Histogram,
            ),
            (
                "spark_proxy_request_duration_seconds",
                "Time from request arrival to the end of the response body.",
                |m: &RouteMetrics| &m.total,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for route in Route::ALL {
                pick(&self.routes[route.index()]).render(out, name, route.label());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = ProxyMetrics::new();
        m.started(Route::ChatCompletions);
        m.answered(Route::ChatCompletions, 200, Duration::from_micros(80));
        m.finished(Route::ChatCompletions, Duration::from_millis(3));
        m.started(Route::Models);
        m.answered(Route::Models, 502, Duration::from_secs(400));
        let mut out = String::new();
        m.render_prometheus(&mut out);
        for line in [
            "spark_proxy_requests_total{route=\"chat_completions\",code=\"2xx\"} 1",
            "spark_proxy_requests_total{route=\"models\",code=\"5xx\"} 1",
            "spark_proxy_in_flight{route=\"chat_completions\"} 0",
            "spark_proxy_in_flight{route=\"models\"} 1",
            "spark_proxy_response_head_seconds_bucket{route=\"chat_completions\",le=\"0.0001\"} 1",
            "spark_proxy_request_duration_seconds_bucket{route=\"chat_completions\",le=\"0.0025\"} 0",
            "spark_proxy_request_duration_seconds_bucket{route=\"chat_completions\",le=\"0.005\"} 1",
            "spark_proxy_response_head_seconds_bucket{route=\"models\",le=\"300\"} 0",
            "spark_proxy_response_head_seconds_bucket{route=\"models\",le=\"+Inf\"} 1",
            "spark_proxy_response_head_seconds_count{route=\"models\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        assert_eq!(m.count("models", 5), 1);
        assert_eq!(m.count("models", 2), 0);
    }
}
