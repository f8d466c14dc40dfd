//! Pure parsing of vLLM's Prometheus `/metrics` text and per-second rates from counters.
//!
//! Names of the V1 engine: `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`
//! (counters), `vllm:num_requests_running`, `vllm:num_requests_waiting`,
//! `vllm:kv_cache_usage_perc` (gauges; older servers call the last one
//! `vllm:gpu_cache_usage_perc`). A server with several engines (data parallel) prints one
//! line per engine: counts and counters are summed, the cache fraction is averaged.

/// One scrape, summed over engines. None: the metric was not in the text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VllmSample {
    /// Prompt (prefill) tokens so far (counter).
    pub prompt_tokens: Option<f64>,
    /// Generated tokens so far (counter).
    pub generation_tokens: Option<f64>,
    /// Requests running.
    pub running: Option<f64>,
    /// Requests waiting.
    pub waiting: Option<f64>,
    /// KV-cache usage, 0..=1.
    pub kv_cache: Option<f64>,
}

/// Parses Prometheus text exposition.
pub fn parse(text: &str) -> VllmSample {
    let mut sums: [(f64, u32); 6] = [(0.0, 0); 6];
    const NAMES: [&str; 6] = [
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
    ];
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        let Some(i) = NAMES.iter().position(|n| *n == name) else {
            continue;
        };
        // The value follows the label set (labels may hold spaces inside quotes).
        let rest = match line[name_end..].strip_prefix('{') {
            Some(r) => match closing_brace(r) {
                Some(end) => &r[end + 1..],
                None => continue,
            },
            None => &line[name_end..],
        };
        let Some(v) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        if v.is_finite() {
            sums[i].0 += v;
            sums[i].1 += 1;
        }
    }
    let sum = |i: usize| (sums[i].1 > 0).then_some(sums[i].0);
    let mean = |i: usize| (sums[i].1 > 0).then(|| sums[i].0 / f64::from(sums[i].1));
    VllmSample {
        prompt_tokens: sum(0),
        generation_tokens: sum(1),
        running: sum(2),
        waiting: sum(3),
        kv_cache: mean(4).or_else(|| mean(5)),
    }
}

/// The index of the `}` closing a label set, skipping quoted label values.
fn closing_brace(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Per-second rate of a counter between two scrapes `dt` seconds apart. A counter that
/// went down was reset (vLLM restarted): its new value counts as the increase, as
/// Prometheus' `rate()` does.
pub fn rate(prev: Option<f64>, cur: Option<f64>, dt: f64) -> Option<f64> {
    let (p, c) = (prev?, cur?);
    if dt <= 0.0 {
        return None;
    }
    let inc = if c >= p { c - p } else { c };
    Some(inc / dt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// vLLM 0.10.0 (V1 engine) `/metrics`. The `_created` gauges, the histogram buckets
    /// and the `vllm:kv_cache_usage_perc` line are verbatim from
    /// vllm-project/production-stack#617 ("vllm-router latest version incompatible with
    /// vllm 0.10.0", model zai-org/GLM-4.5); the python_gc line from vllm-project/vllm#26762;
    /// the `generation_tokens_total` value from a V1 capture quoted in a public test
    /// fixture. The excerpts did not show the prompt counter and request gauges with
    /// this model: those lines are written here in the same format, values our own.
    const V1_0_10: &str = r#"# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 12286.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="zai-org/GLM-4.5"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="zai-org/GLM-4.5"} 1.0
# HELP vllm:gpu_prefix_cache_hits_created GPU prefix cache hits, in terms of number of cached tokens. DEPRECATED: Use vllm:prefix_cache_hits instead.
# TYPE vllm:gpu_prefix_cache_hits_created gauge
vllm:gpu_prefix_cache_hits_created{engine="0",model_name="zai-org/GLM-4.5"} 1.7537953269353123e+09
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="zai-org/GLM-4.5"} 9.75010481363281e-06
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="zai-org/GLM-4.5"} 1234.0
# HELP vllm:prompt_tokens_created Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_created gauge
vllm:prompt_tokens_created{engine="0",model_name="zai-org/GLM-4.5"} 1.7537953269354987e+09
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="zai-org/GLM-4.5"} 4.2421665e+07
# HELP vllm:request_generation_tokens Number of generation tokens processed.
# TYPE vllm:request_generation_tokens histogram
vllm:request_generation_tokens_bucket{engine="0",le="1.0",model_name="zai-org/GLM-4.5"} 0.0
vllm:request_generation_tokens_bucket{engine="0",le="500.0",model_name="zai-org/GLM-4.5"} 4.0
"#;

    /// An older server (V0 engine names, no `engine` label): verbatim lines from
    /// vllm-project/production-stack#318 (Qwen/Qwen2.5-Coder-32B-Instruct).
    const V0: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="Qwen/Qwen2.5-Coder-32B-Instruct"} 0.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="Qwen/Qwen2.5-Coder-32B-Instruct"} 0.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="Qwen/Qwen2.5-Coder-32B-Instruct"} 0.0
"#;

    fn check(text: &str, want: VllmSample) {
        assert_eq!(parse(text), want, "{text}");
    }

    #[test]
    fn captured_outputs() {
        check(
            V1_0_10,
            VllmSample {
                prompt_tokens: Some(1234.0),
                generation_tokens: Some(4.2421665e7),
                running: Some(3.0),
                waiting: Some(1.0),
                kv_cache: Some(9.75010481363281e-06),
            },
        );
        check(
            V0,
            VllmSample {
                prompt_tokens: None,
                generation_tokens: None,
                running: Some(0.0),
                waiting: Some(0.0),
                kv_cache: Some(0.0),
            },
        );
    }

    #[test]
    fn engines_sum_and_average() {
        check(
            "vllm:generation_tokens_total{engine=\"0\",model_name=\"m\"} 10\nvllm:generation_tokens_total{engine=\"1\",model_name=\"m\"} 5\nvllm:kv_cache_usage_perc{engine=\"0\"} 0.4\nvllm:kv_cache_usage_perc{engine=\"1\"} 0.6\nvllm:num_requests_running{model_name=\"a } b\"} 2 1700000000000\nvllm:num_requests_waiting NaN\n",
            VllmSample {
                generation_tokens: Some(15.0),
                kv_cache: Some(0.5),
                running: Some(2.0),
                ..VllmSample::default()
            },
        );
        check("", VllmSample::default());
        check("<html>not metrics</html>", VllmSample::default());
    }

    #[test]
    fn rates() {
        for (prev, cur, dt, want) in [
            (Some(100.0), Some(150.0), 5.0, Some(10.0)),
            (Some(100.0), Some(20.0), 2.0, Some(10.0)), // reset: the new value is the increase
            (None, Some(20.0), 2.0, None),
            (Some(1.0), None, 2.0, None),
            (Some(1.0), Some(2.0), 0.0, None),
        ] {
            assert_eq!(rate(prev, cur, dt), want, "{prev:?} {cur:?} {dt}");
        }
    }
}
