//! A bounded time series: (unix ms, value) points, oldest dropped past a maximum age and a
//! maximum count. Pure (the caller passes the time).

use std::collections::VecDeque;

/// One metric over time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    points: VecDeque<(i64, f64)>,
}

/// Upper bound of points per series (an hour at one point per second).
pub const MAX_POINTS: usize = 3600;

impl Series {
    /// Adds a point at `t_ms` and drops points older than `keep_ms` before it. A point not
    /// newer than the last one replaces nothing and is ignored (series stay ordered).
    pub fn push(&mut self, t_ms: i64, v: f64, keep_ms: i64) {
        if !v.is_finite() || self.points.back().is_some_and(|(t, _)| *t >= t_ms) {
            return;
        }
        self.points.push_back((t_ms, v));
        while self
            .points
            .front()
            .is_some_and(|(t, _)| *t < t_ms - keep_ms)
            || self.points.len() > MAX_POINTS
        {
            self.points.pop_front();
        }
    }

    /// Points after `since_ms` (all when None), oldest first.
    pub fn since(&self, since_ms: Option<i64>) -> Vec<(i64, f64)> {
        self.points
            .iter()
            .filter(|(t, _)| since_ms.is_none_or(|s| *t > s))
            .copied()
            .collect()
    }

    /// The newest value.
    pub fn last(&self) -> Option<f64> {
        self.points.back().map(|p| p.1)
    }

    /// The newest value when it was taken at `min_ms` (unix ms) or later.
    pub fn last_since(&self, min_ms: i64) -> Option<f64> {
        self.points.back().filter(|p| p.0 >= min_ms).map(|p| p.1)
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// No points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_an_hour_ordered() {
        let mut s = Series::default();
        let hour = 3_600_000;
        s.push(0, 1.0, hour);
        s.push(0, 2.0, hour); // not newer: ignored
        s.push(1000, f64::NAN, hour); // not a number: ignored
        s.push(1000, 3.0, hour);
        assert_eq!(s.since(None), vec![(0, 1.0), (1000, 3.0)]);
        s.push(hour + 500, 4.0, hour);
        assert_eq!(s.since(None), vec![(1000, 3.0), (hour + 500, 4.0)]);
        assert_eq!(s.since(Some(1000)), vec![(hour + 500, 4.0)]);
        assert_eq!(s.last(), Some(4.0));
        for i in 0..(MAX_POINTS as i64 + 10) {
            s.push(hour + 1000 + i, 0.0, i64::MAX);
        }
        assert_eq!(s.len(), MAX_POINTS);
    }
}
