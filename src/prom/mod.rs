//! Prometheus text exposition (format 0.0.4): metric families, escaped labels, lock-free
//! histograms, and this process's own `process_*` metrics.
//!
//! Owns the text format only: every `/metrics` writer (`http::metrics`, the proxy's
//! counters, the loop's swap histogram) renders through it, so label escaping and the
//! `# HELP`/`# TYPE` lines are written one way. Must not know what is measured, and must
//! not block: a [`Histogram`] update is relaxed atomic adds.

mod histogram;
pub mod process;

use std::fmt::Write as _;

pub use histogram::{Buckets, Histogram, LATENCY_BUCKETS, SWAP_BUCKETS};

/// A label value escaped for the text format (`\`, `"` and newlines).
pub fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes the `# HELP` and `# TYPE` lines of a family (`kind`: counter, gauge, histogram).
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `name{k="v",…} value`; labels are escaped here. No braces when `labels` is empty.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    write_labels(out, labels, None);
    let _ = writeln!(out, " {}", number(value));
}

/// `{k="v",…[,le="…"]}`, or nothing when there are no labels at all.
pub(crate) fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{k}=\"{}\"", esc(v));
    }
    out.push('}');
}

/// A sample value: integers without a fraction, `NaN`/`+Inf`/`-Inf` as the format spells them.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_labels_and_spell_numbers() {
        let mut out = String::new();
        sample(&mut out, "m", &[], 3.0);
        sample(&mut out, "m", &[("a", "x\"y\\z\nw")], 0.25);
        sample(&mut out, "m", &[("a", "1"), ("b", "2")], f64::INFINITY);
        sample(&mut out, "m", &[], f64::NAN);
        assert_eq!(
            out,
            "m 3\nm{a=\"x\\\"y\\\\z\\nw\"} 0.25\nm{a=\"1\",b=\"2\"} +Inf\nm NaN\n"
        );
    }
}
