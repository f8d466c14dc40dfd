//! A lock-free histogram with fixed bucket bounds, rendered as a Prometheus histogram.
//!
//! Owns the counts only: the caller picks the bounds and the labels. Updates are relaxed
//! atomic adds; rendering reads them without stopping writers (a scrape racing a write
//! may see a bucket one ahead of `_count`, which Prometheus tolerates).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::write_labels;

/// Upper bounds of the buckets, in microseconds, ascending.
pub type Buckets = &'static [u64];

/// Request latencies: 100 µs … 5 min.
pub const LATENCY_BUCKETS: Buckets = &[
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

/// Model swaps: 1 s … 1 h (a big model's first download and load takes tens of minutes).
pub const SWAP_BUCKETS: Buckets = &[
    1_000_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
    300_000_000,
    600_000_000,
    1_200_000_000,
    1_800_000_000,
    3_600_000_000,
];

/// Counts per bucket plus the sum, in microseconds.
pub struct Histogram {
    bounds: Buckets,
    /// Non-cumulative counts; the last slot is `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: Buckets) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = self.bounds.partition_point(|&b| b < micros);
        self.counts[slot].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Appends `name_bucket…`, `name_sum` and `name_count` lines with `labels`, in seconds.
    pub fn render(&self, out: &mut String, name: &str, labels: &[(&str, &str)]) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => super::number(*b as f64 / 1e6),
                None => "+Inf".to_string(),
            };
            let _ = write!(out, "{name}_bucket");
            write_labels(out, labels, Some(&le));
            let _ = writeln!(out, " {cumulative}");
        }
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = write!(out, "{name}_sum");
        write_labels(out, labels, None);
        let _ = writeln!(out, " {}", super::number(sum));
        let _ = write!(out, "{name}_count");
        write_labels(out, labels, None);
        let _ = writeln!(out, " {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let h = Histogram::new(&[1_000, 10_000]);
        h.record(Duration::from_micros(1_000)); // on the bound: in `le=0.001`
        h.record(Duration::from_micros(5_000));
        h.record(Duration::from_secs(1));
        let mut out = String::new();
        h.render(&mut out, "x_seconds", &[("route", "r")]);
        assert_eq!(
            out,
            "x_seconds_bucket{route=\"r\",le=\"0.001\"} 1\n\
             x_seconds_bucket{route=\"r\",le=\"0.01\"} 2\n\
             x_seconds_bucket{route=\"r\",le=\"+Inf\"} 3\n\
             x_seconds_sum{route=\"r\"} 1.006\n\
             x_seconds_count{route=\"r\"} 3\n"
        );
        assert_eq!(h.count(), 3);
    }
}
