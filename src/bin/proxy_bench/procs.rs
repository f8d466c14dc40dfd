//! The processes the benchmark starts and watches: its own children (upstream, proxy),
//! nginx as a reference, CPU pinning, and what `/proc` says about them.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// The cores of this process, split: the last for the proxy, the rest for everything else.
pub(crate) struct CpuSplit {
    pub(crate) proxy: String,
    pub(crate) others: String,
}

impl CpuSplit {
    pub(crate) fn detect() -> Option<Self> {
        let cores = std::thread::available_parallelism().ok()?.get();
        let taskset_works = Command::new("taskset")
            .args(["-c", "0", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        (cores >= 2 && taskset_works).then(|| CpuSplit {
            proxy: (cores - 1).to_string(),
            others: format!("0-{}", cores - 2),
        })
    }

    /// `cmd` run under `taskset -c <cpus>`.
    pub(crate) fn wrap(&self, cpus: &str, cmd: Command) -> Command {
        let mut wrapped = Command::new("taskset");
        wrapped
            .args(["-c", cpus])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        wrapped
    }
}

/// A child process of this binary, killed (by its own handle) when dropped.
pub(crate) struct ChildProc {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl ChildProc {
    /// Spawns this binary in `role`; `cpus` pins it (else it inherits this process's cores).
    pub(crate) fn spawn(
        role: &str,
        upstream: Option<&str>,
        cpus: Option<(&CpuSplit, &str)>,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["--role", role]).args(extra);
        if let Some(u) = upstream {
            cmd.args(["--upstream", u]);
        }
        if let Some((split, set)) = cpus {
            cmd = split.wrap(set, cmd);
        }
        cmd.stdout(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning the {role} child"))?;
        let stdout = child.stdout.take().context("child stdout is piped")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("{role} child said {line:?}, not PORT <n>"))?;
        Ok(ChildProc { child, port })
    }

    pub(crate) fn status_field_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

/// A process and its children (nginx: master and worker), for CPU and write counts.
pub(crate) fn process_tree(pid: u32) -> Vec<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    std::iter::once(pid)
        .chain(children.split_whitespace().filter_map(|c| c.parse().ok()))
        .collect()
}

/// Write-type system calls (`write`, `writev`, …) the processes have made so far.
pub(crate) fn write_calls(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/io"))
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("syscw:"))?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Time on CPU so far, all threads of the processes: the first field of each thread's
/// `/proc/<pid>/task/<tid>/schedstat`, in nanoseconds (not the 10 ms ticks of `stat`,
/// which on a VM charge a process for time its core sat idle).
pub(crate) fn cpu_time(pids: &[u32]) -> Duration {
    let nanos: u64 = pids
        .iter()
        .flat_map(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// nginx as a reference proxy in front of the same upstream (`--nginx`): one worker,
/// keep-alive to the upstream, no buffering either way — the setup a fast C forwarder
/// would be given. Runs in the foreground from a temporary prefix; killed when dropped.
pub(crate) struct Nginx {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) dir: std::path::PathBuf,
}

impl Nginx {
    pub(crate) fn spawn(
        upstream_port: u16,
        cpus: Option<(&CpuSplit, &str)>,
    ) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("proxy-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\ndaemon off;\nmaster_process on;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/b;\n  proxy_temp_path {d}/p;\n\
             fastcgi_temp_path {d}/f;\n  uwsgi_temp_path {d}/u;\n  scgi_temp_path {d}/s;\n\
             upstream up {{ server 127.0.0.1:{upstream_port}; keepalive 512; }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    tcp_nodelay on;\n\
             keepalive_requests 1000000;\n    location / {{\n      proxy_pass http://up;\n\
             proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
             proxy_buffering off;\n      proxy_request_buffering off;\n    }}\n  }}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let mut cmd = Command::new("nginx");
        cmd.arg("-p").arg(&dir).arg("-c").arg(&conf_path);
        if let Some((split, set)) = cpus {
            cmd = split.wrap(set, cmd);
        }
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .context("starting nginx (--nginx needs nginx on PATH: apt-get install nginx)")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nginx did not listen on 127.0.0.1:{port} within 5 s (see {d}/error.log)");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Nginx { child, port, dir })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGKILL to the master leaves its worker behind: ask for a fast shutdown instead.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
