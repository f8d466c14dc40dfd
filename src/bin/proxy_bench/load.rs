//! The load generator: concurrent clients, latencies, and their statistics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};

pub(crate) const CHAT_BODY: &str =
    r#"{"model":"fake","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}"#;
pub(crate) const CHAT_BODY_STREAM: &str = r#"{"model":"fake","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16,"stream":true}"#;

pub(crate) type LoadClient = Client<HttpConnector, Full<Bytes>>;

/// Latencies of one run, microseconds: whole exchange and time to the first body chunk.
pub(crate) struct Sample {
    pub(crate) total: Vec<u32>,
    pub(crate) first_chunk: Vec<u32>,
    pub(crate) wall: Duration,
    pub(crate) errors: usize,
}

/// `requests` requests from `concurrency` clients against `url`; `stream` picks the body.
pub(crate) async fn drive(
    client: &LoadClient,
    url: &hyper::Uri,
    stream: Option<bool>,
    concurrency: usize,
    requests: usize,
) -> Sample {
    let tickets = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, tickets) = (client.clone(), url.clone(), Arc::clone(&tickets));
            tokio::spawn(async move {
                let mut total = Vec::with_capacity(requests / concurrency + 1);
                let mut first_chunk = Vec::with_capacity(requests / concurrency + 1);
                let mut errors = 0;
                loop {
                    let ticket = tickets.fetch_add(1, Ordering::Relaxed);
                    if ticket >= requests {
                        break;
                    }
                    // `None` alternates, for the soak.
                    let body = match stream.unwrap_or(ticket % 2 == 0) {
                        true => CHAT_BODY_STREAM,
                        false => CHAT_BODY,
                    };
                    let t0 = Instant::now();
                    match exchange(&client, &url, body).await {
                        Some(first) => {
                            total.push(micros(t0.elapsed()));
                            first_chunk.push(micros(first - t0));
                        }
                        None => errors += 1,
                    }
                }
                (total, first_chunk, errors)
            })
        })
        .collect();
    let mut sample = Sample {
        total: Vec::new(),
        first_chunk: Vec::new(),
        wall: Duration::ZERO,
        errors: 0,
    };
    for task in tasks {
        if let Ok((total, first, errors)) = task.await {
            sample.total.extend(total);
            sample.first_chunk.extend(first);
            sample.errors += errors;
        }
    }
    sample.wall = start.elapsed();
    sample
}

/// One request, body read to the end; returns when the first body chunk arrived.
pub(crate) async fn exchange(
    client: &LoadClient,
    url: &hyper::Uri,
    body: &'static str,
) -> Option<Instant> {
    let request = hyper::Request::post(url.clone())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .ok()?;
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .ok()?
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let mut body = response.into_body();
    let mut first = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.ok()?;
        if first.is_none() && frame.is_data() {
            first = Some(Instant::now());
        }
    }
    first
}

pub(crate) fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)])
}

pub(crate) struct Stats {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) ttfc_p50: f64,
    pub(crate) ttfc_p99: f64,
    pub(crate) rps: f64,
    pub(crate) errors: usize,
}

pub(crate) fn merge_stats(runs: Vec<Sample>) -> Stats {
    let (mut total, mut first, mut wall, mut errors) = (Vec::new(), Vec::new(), Duration::ZERO, 0);
    for s in runs {
        total.extend(s.total);
        first.extend(s.first_chunk);
        wall += s.wall;
        errors += s.errors;
    }
    total.sort_unstable();
    first.sort_unstable();
    Stats {
        p50: percentile(&total, 50.0),
        p99: percentile(&total, 99.0),
        ttfc_p50: percentile(&first, 50.0),
        ttfc_p99: percentile(&first, 99.0),
        rps: total.len() as f64 / wall.as_secs_f64(),
        errors,
    }
}
