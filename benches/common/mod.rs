//! What the benches share beyond the test harness: their command-line options, and
//! reading the head's remote-side command stamps (`SshdHost::stamp_commands`).

/// The value after `--name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

/// Unix time in ns.
#[allow(dead_code)]
pub fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The stamped commands (unix ns, text) that started after `t0_ns`.
#[allow(dead_code)]
pub fn commands_after(log: &std::path::Path, t0_ns: u128) -> Vec<(u128, String)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (t, cmd) = l.split_once(' ')?;
            let (s, us) = t.split_once('.')?;
            let ns = s.parse::<u128>().ok()? * 1_000_000_000 + us.parse::<u128>().ok()? * 1_000;
            (ns > t0_ns).then(|| (ns, cmd.to_string()))
        })
        .collect()
}
