//! The standard `process_*` metrics of this process, read from `/proc` at scrape time.
//!
//! Names and units follow Prometheus' client libraries (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`,
//! `process_max_fds`, `process_start_time_seconds`), so stock dashboards work. Parsing is
//! pure ([`parse_stat`], [`parse_status_kib`], [`parse_max_fds`]); [`render`] does the
//! reads. On a system without `/proc` the families are simply absent.
//!
//! Times in `/proc/<pid>/stat` are in clock ticks of `USER_HZ`, which Linux fixes at 100
//! for user space on every architecture it supports (`sysconf(_SC_CLK_TCK)` would need
//! `unsafe` FFI, which this crate forbids).

use std::path::Path;

use super::{family, sample};

/// `USER_HZ`: clock ticks per second in `/proc/<pid>/stat`.
const TICKS_PER_SECOND: f64 = 100.0;

/// The fields of `/proc/<pid>/stat` used here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Start time after boot, seconds.
    pub start_after_boot: f64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may hold spaces and `)`: fields
/// are counted after its *last* `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // After `)`: field 3 (state) is index 0, utime (14) is 11, stime (15) 12, starttime (22) 19.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(Stat {
        cpu_seconds: (num(11)? + num(12)?) as f64 / TICKS_PER_SECOND,
        start_after_boot: num(19)? as f64 / TICKS_PER_SECOND,
    })
}

/// A `Key:   123 kB` line of `/proc/<pid>/status`, in KiB.
pub fn parse_status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits` (None when unlimited).
pub fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `btime` of `/proc/stat`: boot time, unix seconds.
pub fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// Appends the `process_*` families of this process.
pub fn render(out: &mut String) {
    render_for(out, Path::new("/proc/self"), Path::new("/proc/stat"));
}

fn render_for(out: &mut String, proc_dir: &Path, proc_stat: &Path) {
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let stat = read(&proc_dir.join("stat")).as_deref().and_then(parse_stat);
    let status = read(&proc_dir.join("status")).unwrap_or_default();
    let mut gauge = |name: &str, kind: &str, help: &str, v: Option<f64>| {
        if let Some(v) = v {
            family(out, name, kind, help);
            sample(out, name, &[], v);
        }
    };
    gauge(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        stat.map(|s| s.cpu_seconds),
    );
    gauge(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        parse_status_kib(&status, "VmRSS").map(|k| (k * 1024) as f64),
    );
    gauge(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        parse_status_kib(&status, "VmSize").map(|k| (k * 1024) as f64),
    );
    let open = std::fs::read_dir(proc_dir.join("fd"))
        .ok()
        .map(|d| d.count() as f64);
    gauge(
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
        open,
    );
    gauge(
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
        read(&proc_dir.join("limits"))
            .as_deref()
            .and_then(parse_max_fds)
            .map(|n| n as f64),
    );
    let boot = read(proc_stat).as_deref().and_then(parse_boot_time);
    gauge(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        stat.zip(boot).map(|(s, b)| b as f64 + s.start_after_boot),
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_paren() {
        // A command name with a space and a `)` in it; utime 250, stime 50, starttime 1234.
        let line = "4242 (tokio) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 1234 123456789 2000 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                cpu_seconds: 3.0,
                start_after_boot: 12.34
            })
        );
        assert_eq!(parse_stat("4242 (short) S 1"), None);
        assert_eq!(parse_stat("no parens"), None);
    }

    #[test]
    fn status_limits_and_btime() {
        let status = "Name:\tspark-control\nVmSize:\t  123456 kB\nVmRSS:\t   2048 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(2048));
        assert_eq!(parse_status_kib(status, "VmSize"), Some(123456));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_max_fds("Max open files unlimited unlimited files"),
            None
        );
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn this_process_reports_itself() {
        let mut out = String::new();
        render(&mut out);
        let value = |name: &str| -> f64 {
            out.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing in\n{out}"))
        };
        // The world's view: the same numbers /proc gives, within what changes meanwhile.
        let rss = value("process_resident_memory_bytes");
        assert!(rss > 1e6, "{rss}");
        assert!(value("process_open_fds") >= 3.0);
        let now = chrono::Utc::now().timestamp() as f64;
        let start = value("process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
        assert!(value("process_cpu_seconds_total") >= 0.0);
    }
}
