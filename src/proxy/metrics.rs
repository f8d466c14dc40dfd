//! Per-series request counts and latency histograms for `/metrics`.
//!
//! A series is one (route, deployment, model); each counts exact status codes, requests in
//! flight, the time to the response head, to the end of the body and — for streamed
//! responses — to the first byte of the body (time to first token). Owns the counters and
//! their rendering. Must not block the data path: a request finds its series under a read
//! lock (a write lock only the first time a label set is seen), every update after that is
//! a relaxed atomic add.
//!
//! The `model` label comes from the client (the request's `model` field), so its values
//! are capped: names longer than [`MAX_LABEL_CHARS`] are cut, and once [`MAX_SERIES`]
//! label sets exist, new models count under `model="other"`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::route::Route;
use crate::prom::{family, sample, Histogram, LATENCY_BUCKETS};

/// The `deployment` label of requests no deployment takes: the speech services' routes,
/// and everything while no deployment is configured (also the name of the older file
/// shape's one deployment).
pub const DEFAULT_DEPLOYMENT: &str = "default";
/// The `deployment` label of a request for a model no deployment serves (answered 404
/// by the proxy itself).
pub const NO_DEPLOYMENT: &str = "none";
/// Label sets kept; further models are counted as `other`.
pub const MAX_SERIES: usize = 64;
/// Longest `model` label value kept.
pub const MAX_LABEL_CHARS: usize = 128;
/// The `model` label when neither the request nor the active upstream names one.
pub const NO_MODEL: &str = "none";
/// The `model` label of models past [`MAX_SERIES`].
pub const OTHER_MODEL: &str = "other";

/// Status codes are counted one by one, 100..=599 (hyper's `StatusCode` range).
const FIRST_CODE: u16 = 100;
const CODES: usize = 500;

/// The counters of one (route, deployment, model).
pub(crate) struct Series {
    route: Route,
    deployment: String,
    model: String,
    codes: Box<[AtomicU64]>,
    in_flight: AtomicI64,
    head: Histogram,
    total: Histogram,
    first_byte: Histogram,
}

impl Series {
    fn new(route: Route, deployment: &str, model: &str) -> Self {
        Series {
            route,
            deployment: deployment.to_string(),
            model: model.to_string(),
            codes: (0..CODES).map(|_| AtomicU64::new(0)).collect(),
            in_flight: AtomicI64::new(0),
            head: Histogram::new(LATENCY_BUCKETS),
            total: Histogram::new(LATENCY_BUCKETS),
            first_byte: Histogram::new(LATENCY_BUCKETS),
        }
    }

    fn labels(&self) -> [(&str, &str); 3] {
        [
            ("route", self.route.label()),
            ("deployment", &self.deployment),
            ("model", &self.model),
        ]
    }

    pub(crate) fn started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    /// The response head (status) is known, from upstream or from the proxy itself.
    pub(crate) fn answered(&self, status: u16, elapsed: Duration) {
        let slot =
            usize::from(status.clamp(FIRST_CODE, FIRST_CODE + CODES as u16 - 1) - FIRST_CODE);
        self.codes[slot].fetch_add(1, Relaxed);
        self.head.record(elapsed);
    }

    /// The first byte of a streamed body went to the client.
    pub(crate) fn first_byte(&self, elapsed: Duration) {
        self.first_byte.record(elapsed);
    }

    /// The exchange is over (body finished, failed, or the client went away).
    pub(crate) fn finished(&self, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Relaxed);
        self.total.record(elapsed);
    }
}

/// One request's metering. Its series is chosen once the model is known
/// ([`Meter::labelled`]); until then nothing is counted. Dropping it ends the exchange,
/// unless the response body took that over ([`Meter::body_finish`]).
pub(crate) struct Meter {
    metrics: Arc<ProxyMetrics>,
    route: Route,
    start: Instant,
    series: Option<Arc<Series>>,
    /// The exchange is still this meter's to end (the body has not taken it over).
    owns_end: bool,
}

impl Meter {
    pub(crate) fn new(metrics: Arc<ProxyMetrics>, route: Route, start: Instant) -> Self {
        Meter {
            metrics,
            route,
            start,
            series: None,
            owns_end: false,
        }
    }

    /// The request's deployment and model are known: its series is picked and it counts
    /// as in flight. Later calls change nothing.
    pub(crate) fn labelled(&mut self, deployment: &str, model: &str) {
        if self.series.is_none() {
            let series = self.metrics.series(self.route, deployment, model);
            series.started();
            self.series = Some(series);
            self.owns_end = true;
        }
    }

    /// Whether [`Meter::labelled`] was called.
    pub(crate) fn is_labelled(&self) -> bool {
        self.series.is_some()
    }

    /// The response head is out. Call [`Meter::labelled`] first.
    pub(crate) fn answered(&self, status: u16) {
        if let Some(series) = &self.series {
            series.answered(status, self.start.elapsed());
        }
    }

    /// The response body ends the exchange when it is dropped; `streamed` bodies also
    /// record the time to their first byte.
    pub(crate) fn body_finish(&mut self, streamed: bool) -> Option<Finish> {
        let series = self.series.clone()?;
        self.owns_end = false;
        Some(Finish {
            series,
            start: self.start,
            awaiting_first_byte: streamed,
        })
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if let (true, Some(series)) = (self.owns_end, &self.series) {
            series.finished(self.start.elapsed());
        }
    }
}

/// Held by the response body: records the first byte and, when dropped, the end of the
/// exchange, whatever the path (finished, failed, client gone).
pub(crate) struct Finish {
    series: Arc<Series>,
    start: Instant,
    awaiting_first_byte: bool,
}

impl Finish {
    /// A data frame of `len` bytes went to the client.
    pub(crate) fn sent(&mut self, len: usize) {
        if self.awaiting_first_byte && len > 0 {
            self.awaiting_first_byte = false;
            self.series.first_byte(self.start.elapsed());
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.series.finished(self.start.elapsed());
    }
}

/// The proxy's counters. Share one `Arc<ProxyMetrics>` between the router and `/metrics`.
#[derive(Default)]
pub struct ProxyMetrics {
    series: RwLock<Vec<Arc<Series>>>,
}

/// Cuts a client-given label value to [`MAX_LABEL_CHARS`] characters.
fn label_value(model: &str) -> &str {
    match model.char_indices().nth(MAX_LABEL_CHARS) {
        Some((end, _)) => &model[..end],
        None => model,
    }
}

impl ProxyMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// The series of a label set, made on first use (see the module doc for the caps).
    pub(crate) fn series(&self, route: Route, deployment: &str, model: &str) -> Arc<Series> {
        let model = match label_value(model) {
            "" => NO_MODEL,
            m => m,
        };
        let find = |all: &[Arc<Series>], model: &str| {
            all.iter()
                .find(|s| s.route == route && s.deployment == deployment && s.model == model)
                .cloned()
        };
        // Poisoning only means a panic elsewhere; the list stays usable.
        if let Some(s) = find(
            &self.series.read().unwrap_or_else(|p| p.into_inner()),
            model,
        ) {
            return s;
        }
        let mut all = self.series.write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = find(&all, model) {
            return s;
        }
        let model = if all.len() >= MAX_SERIES {
            OTHER_MODEL
        } else {
            model
        };
        if let Some(s) = find(&all, model) {
            return s;
        }
        let s = Arc::new(Series::new(route, deployment, model));
        all.push(Arc::clone(&s));
        s
    }

    fn snapshot(&self) -> Vec<Arc<Series>> {
        let mut all = self
            .series
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        all.sort_by(|a, b| {
            (a.route.index(), &a.deployment, &a.model).cmp(&(
                b.route.index(),
                &b.deployment,
                &b.model,
            ))
        });
        all
    }

    /// Requests answered on a route with exactly `code`, over every label set (tests).
    pub fn count_code(&self, route_label: &str, code: u16) -> u64 {
        self.snapshot()
            .iter()
            .filter(|s| s.route.label() == route_label)
            .filter_map(|s| s.codes.get(usize::from(code.checked_sub(FIRST_CODE)?)))
            .map(|c| c.load(Relaxed))
            .sum()
    }

    /// Requests answered on a route with a status in `class` (1..=5), for tests.
    pub fn count(&self, route_label: &str, class: usize) -> u64 {
        let Ok(class) = u16::try_from(class) else {
            return 0;
        };
        (class * 100..class * 100 + 100)
            .map(|code| self.count_code(route_label, code))
            .sum()
    }

    /// Appends the Prometheus text exposition of every proxy metric to `out`.
    pub fn render_prometheus(&self, out: &mut String) {
        let all = self.snapshot();
        family(
            out,
            "spark_proxy_requests_total",
            "counter",
            "Proxied requests answered, by route, deployment, model and exact status code.",
        );
        for s in &all {
            let [route, deployment, model] = s.labels();
            for (i, count) in s.codes.iter().enumerate() {
                let n = count.load(Relaxed);
                if n > 0 {
                    let code = (usize::from(FIRST_CODE) + i).to_string();
                    sample(
                        out,
                        "spark_proxy_requests_total",
                        &[route, deployment, model, ("code", &code)],
                        n as f64,
                    );
                }
            }
        }
        family(
            out,
            "spark_proxy_in_flight",
            "gauge",
            "Proxied requests whose response has not finished yet.",
        );
        for s in &all {
            sample(
                out,
                "spark_proxy_in_flight",
                &s.labels(),
                s.in_flight.load(Relaxed) as f64,
            );
        }
        for (name, help, pick) in [
            (
                "spark_proxy_response_head_seconds",
                "Time from request arrival to the response status being known.",
                (|s: &Series| &s.head) as fn(&Series) -> &Histogram,
            ),
            (
                "spark_proxy_request_duration_seconds",
                "Time from request arrival to the end of the response body.",
                |s: &Series| &s.total,
            ),
            (
                "spark_proxy_time_to_first_byte_seconds",
                "Streamed responses: time from request arrival to the first byte of the body (time to first token).",
                |s: &Series| &s.first_byte,
            ),
        ] {
            family(out, name, "histogram", help);
            for s in &all {
                pick(s).render(out, name, &s.labels());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_exact_codes_labels_and_cumulative_buckets() {
        let m = ProxyMetrics::new();
        let chat = m.series(Route::ChatCompletions, DEFAULT_DEPLOYMENT, "qwen36");
        chat.started();
        chat.answered(200, Duration::from_micros(80));
        chat.first_byte(Duration::from_micros(900));
        chat.finished(Duration::from_millis(3));
        let models = m.series(Route::Models, DEFAULT_DEPLOYMENT, "");
        models.started();
        models.answered(503, Duration::from_secs(400));
        m.series(Route::Models, DEFAULT_DEPLOYMENT, "")
            .answered(404, Duration::ZERO);
        let mut out = String::new();
        m.render_prometheus(&mut out);
        let l = r#"route="chat_completions",deployment="default",model="qwen36""#;
        let n = r#"route="models",deployment="default",model="none""#;
        for line in [
            format!("spark_proxy_requests_total{{{l},code=\"200\"}} 1"),
            format!("spark_proxy_requests_total{{{n},code=\"503\"}} 1"),
            format!("spark_proxy_requests_total{{{n},code=\"404\"}} 1"),
            format!("spark_proxy_in_flight{{{l}}} 0"),
            format!("spark_proxy_in_flight{{{n}}} 1"),
            format!("spark_proxy_response_head_seconds_bucket{{{l},le=\"0.0001\"}} 1"),
            format!("spark_proxy_request_duration_seconds_bucket{{{l},le=\"0.0025\"}} 0"),
            format!("spark_proxy_request_duration_seconds_bucket{{{l},le=\"0.005\"}} 1"),
            format!("spark_proxy_time_to_first_byte_seconds_bucket{{{l},le=\"0.001\"}} 1"),
            format!("spark_proxy_time_to_first_byte_seconds_count{{{n}}} 0"),
            format!("spark_proxy_response_head_seconds_bucket{{{n},le=\"300\"}} 1"),
            format!("spark_proxy_response_head_seconds_bucket{{{n},le=\"+Inf\"}} 2"),
            format!("spark_proxy_response_head_seconds_count{{{n}}} 2"),
        ] {
            assert!(out.lines().any(|x| x == line), "missing {line:?} in\n{out}");
        }
        assert!(!out.contains("code=\"2xx\""), "{out}");
        assert_eq!(m.count("models", 5), 1);
        assert_eq!(m.count("models", 4), 1);
        assert_eq!(m.count_code("models", 404), 1);
        assert_eq!(m.count("models", 2), 0);
    }

    #[test]
    fn client_chosen_models_are_capped() {
        let m = ProxyMetrics::new();
        let long = "m".repeat(MAX_LABEL_CHARS + 50);
        assert_eq!(
            m.series(Route::Completions, "d", &long).model.len(),
            MAX_LABEL_CHARS
        );
        for i in 0..MAX_SERIES * 2 {
            m.series(Route::ChatCompletions, "d", &format!("model-{i}"))
                .answered(200, Duration::ZERO);
        }
        let all = m.snapshot();
        assert_eq!(all.len(), MAX_SERIES + 1, "the cap plus one `other` series");
        let other = all.iter().find(|s| s.model == OTHER_MODEL).unwrap();
        assert_eq!(other.codes[100].load(Relaxed), (MAX_SERIES + 1) as u64);
        // A model seen before the cap keeps its own series.
        assert_eq!(
            m.series(Route::ChatCompletions, "d", "model-3").model,
            "model-3"
        );
    }
}
