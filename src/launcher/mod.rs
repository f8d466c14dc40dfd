//! The launcher driver: the one place that knows how spark-vllm-docker's
//! `launch-cluster.sh` is driven (DESIGN §4).
//!
//! Two generations are in use and they differ where it matters:
//! - **A** (early 2026, Ray only): no `--solo`; an unknown word starts the exec command;
//!   `exec` joins its words and bash re-parses them, so every word is quoted here; it
//!   always sets an EXIT trap, so the model lives exactly as long as the launcher process;
//!   vLLM's output goes to the launcher's stdout.
//! - **B** (mid/late 2026): `--solo`, no-Ray default, `-d exec` returns after
//!   `docker exec -d`; the command is re-quoted by the launcher (`printf %q`), so words go
//!   as they are; vLLM's output goes to `docker logs`; the container outlives vLLM.
//!
//! The generation is detected from the usage text `--help` prints; the observer caches it
//! per checkout commit. Both generations: the stop needs `-n` (without it the launcher
//! autodiscovers, finds no peers and stops the head only), and `-n` needs the hosts'
//! interconnect addresses.
//!
//! The controller owns the launcher process: [`START`] runs it in its own session with
//! every fd redirected into `~/.spark-control/launcher.log` and records its pid;
//! [`STOP_OWN`] stops that session and waits for the launcher's own cleanup. Pure apart
//! from those fixed scripts: no IO here.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::catalog::LaunchSpec;
use crate::model::desired::{Cluster, Mode};
use crate::remote::cmd::quote;

/// A generation of `launch-cluster.sh`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum Generation {
    /// Early 2026: Ray only, no `--solo`, `exec` re-parsed by bash, EXIT trap.
    A,
    /// Mid/late 2026: `--solo`, no-Ray default, `-d exec` detaches, `printf %q` re-quoting.
    B,
}

impl Generation {
    /// A short label for people.
    pub fn label(self) -> &'static str {
        match self {
            Generation::A => "A (early 2026: Ray only, no --solo)",
            Generation::B => "B (mid/late 2026: --solo, no-Ray default)",
        }
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Recognises the generation from what `./launch-cluster.sh --help` printed.
pub fn detect(usage: &str) -> Result<Generation, String> {
    let is_usage =
        usage.lines().any(|l| l.trim_start().starts_with("Usage:")) && usage.contains("exec");
    if !is_usage {
        let first = usage.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!(
            "`./launch-cluster.sh --help` printed no usage text (first line: {}); is this a spark-vllm-docker checkout?",
            crate::model::limits::clip(first)
        ));
    }
    Ok(if usage.contains("--solo") {
        Generation::B
    } else {
        Generation::A
    })
}

/// The launcher argv for `spec` on generation `g`, run in the launcher directory.
/// `Err` says why a template override cannot work on this generation.
pub fn launch_argv(g: Generation, spec: &LaunchSpec, c: &Cluster) -> Result<Vec<String>, String> {
    let command = command(g, spec);
    let Some(t) = &c.launch_template else {
        let mut argv = vec!["./launch-cluster.sh".to_string()];
        match (g, spec.mode) {
            (Generation::B, Mode::Solo) => argv.push("--solo".into()),
            _ => {
                argv.push("-n".into());
                argv.push(spec.nodes.join(","));
            }
        }
        if g == Generation::B {
            argv.push("-d".into());
        }
        argv.push("exec".into());
        argv.extend(command);
        return Ok(argv);
    };
    // A template override: placeholders expanded, the command after `exec` as above.
    let Some(exec_at) = t.iter().position(|a| a == "exec") else {
        return Err("cluster.launch_template has no `exec` element: spark-control runs the model with `launch-cluster.sh … exec vllm serve …`".into());
    };
    let mut argv = Vec::new();
    for a in &t[..exec_at] {
        match a.as_str() {
            "--solo" if g == Generation::A => {
                return Err(format!("cluster.launch_template passes `--solo`, but the launcher on the head is generation {g}: there an unknown word such as --solo becomes the command. Use `{{solo}}` (nothing on generation A, which gets `-n <head>`) or unset launch_template"));
            }
            "{solo}" => {
                if g == Generation::B && spec.mode == Mode::Solo {
                    argv.push("--solo".into())
                }
            }
            "{detach}" => {
                if g == Generation::B {
                    argv.push("-d".into())
                }
            }
            other => argv.push(expand(other, spec)),
        }
    }
    argv.push("exec".into());
    // The command part of the template, expanded, then quoted like the default command.
    let mut words = Vec::new();
    for (k, v) in &spec.env {
        if words.is_empty() {
            words.push("env".to_string());
        }
        words.push(format!("{k}={v}"));
    }
    for a in &t[exec_at + 1..] {
        match a.as_str() {
            "{flags}" => words.extend(spec.flags.iter().cloned()),
            "{tp}" => words.extend(tp_words(g, spec)),
            other => words.push(expand(other, spec)),
        }
    }
    argv.extend(for_generation(g, words));
    Ok(argv)
}

fn expand(a: &str, spec: &LaunchSpec) -> String {
    a.replace("{nodes}", &spec.nodes.join(","))
        .replace("{repo}", &spec.repo)
        .replace("{port}", &spec.port.to_string())
}

fn tp_words(g: Generation, spec: &LaunchSpec) -> Vec<String> {
    if spec.mode != Mode::Cluster {
        return Vec::new();
    }
    let mut w = vec!["-tp".to_string(), spec.nodes.len().to_string()];
    if g == Generation::A {
        w.push("--distributed-executor-backend".into());
        w.push("ray".into());
    }
    w
}

/// The command after `exec`: `[env K=V…] vllm serve <repo> --host 0.0.0.0 --port P [-tp N
/// …] <flags>`, as the words vLLM must receive, prepared for the generation.
fn command(g: Generation, spec: &LaunchSpec) -> Vec<String> {
    let mut words = Vec::new();
    if !spec.env.is_empty() {
        words.push("env".to_string());
        words.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
    }
    words.extend(
        [
            "vllm",
            "serve",
            spec.repo.as_str(),
            "--host",
            "0.0.0.0",
            "--port",
        ]
        .map(String::from),
    );
    words.push(spec.port.to_string());
    words.extend(tp_words(g, spec));
    words.extend(spec.flags.iter().cloned());
    for_generation(g, words)
}

/// Generation A joins the words after `exec` with spaces and bash re-parses them: each word
/// is single-quoted, so it arrives as one argument, byte for byte. Generation B re-quotes
/// with `printf %q` itself: words go as they are (quoting here would double-quote).
pub fn for_generation(g: Generation, words: Vec<String>) -> Vec<String> {
    match g {
        Generation::A => words.iter().map(|w| quote(w)).collect(),
        Generation::B => words,
    }
}

/// The stop command: `./launch-cluster.sh -n <every cluster node> stop`.
pub fn stop_argv(nodes: &[String], c: &Cluster) -> Result<Vec<String>, String> {
    let nodes = nodes.join(",");
    match &c.stop_template {
        None => Ok(vec![
            "./launch-cluster.sh".into(),
            "-n".into(),
            nodes,
            "stop".into(),
        ]),
        Some(t) => {
            if !t.iter().any(|a| a.contains("{nodes}")) {
                return Err("cluster.stop_template does not pass `{nodes}`: a stop without `-n` autodiscovers, finds no peers and stops the head only. Add `-n`, `{nodes}` or unset stop_template".into());
            }
            Ok(t.iter().map(|a| a.replace("{nodes}", &nodes)).collect())
        }
    }
}

/// Where spark-control keeps the launcher's state on the head (fixed text).
pub const STATE_DIR: &str = "$HOME/.spark-control";

/// Starts the launcher (`"$@"`, in the current directory) in its own session, stdin from
/// /dev/null, stdout and stderr appended to `launcher.log`, its exit status written to
/// `launcher.status`, its pid (the session id) to `launcher.pid`. Refuses (exit 3) while an
/// earlier launcher of ours is alive. Prints `pid <n>`.
pub const START: &str = r#"d="$HOME/.spark-control"; mkdir -p "$d" || exit 1
if p=$(cat "$d/launcher.pid" 2>/dev/null) && [ -n "$p" ] && kill -0 "-$p" 2>/dev/null && grep -q spark-control-launcher "/proc/$p/cmdline" 2>/dev/null; then
  echo "Error: an earlier launcher started by spark-control (pid $p) is still running" >&2; exit 3
fi
rm -f "$d/launcher.pid" "$d/launcher.status"; : >"$d/launcher.log"
setsid sh -c 'echo $$ >"$1/launcher.pid.tmp" && mv "$1/launcher.pid.tmp" "$1/launcher.pid"; d=$1; shift; "$@"; echo $? >"$d/launcher.status"' spark-control-launcher "$d" "$@" </dev/null >>"$d/launcher.log" 2>&1 &
i=0; while [ ! -s "$d/launcher.pid" ] && [ "$i" -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done
[ -s "$d/launcher.pid" ] || { echo "Error: the launcher did not start within 10 s" >&2; exit 1; }
echo "pid $(cat "$d/launcher.pid")""#;

/// Stops the launcher session spark-control started, if it is alive: SIGTERM to the whole
/// session (so generation A's trap stops the containers), waits up to 60 s for its cleanup
/// to finish, then SIGKILL. Prints what it did; exit 0 when no launcher of ours remains.
pub const STOP_OWN: &str = r#"d="$HOME/.spark-control"
p=$(cat "$d/launcher.pid" 2>/dev/null) || exit 0
[ -n "$p" ] || exit 0
own() { kill -0 "-$p" 2>/dev/null && grep -q spark-control-launcher "/proc/$p/cmdline" 2>/dev/null; }
alive() { ps -e -o pgid= -o stat= | awk -v g="$p" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'; }
if own; then
  echo "stopping the launcher (pid $p) and waiting for its cleanup"
  kill -TERM "-$p" 2>/dev/null
  i=0; while alive && [ "$i" -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
  if alive; then echo "the launcher (pid $p) ignored SIGTERM for 60 s: killing it"; kill -KILL "-$p" 2>/dev/null; sleep 0.2; fi
fi
rm -f "$d/launcher.pid"
exit 0"#;

/// The state of the launcher spark-control started: `launcher running <pid>`,
/// `launcher exited <status>`, `launcher killed`, or `launcher none`.
pub const STATE: &str = r#"d="$HOME/.spark-control"
p=$(cat "$d/launcher.pid" 2>/dev/null)
if [ -z "$p" ]; then echo "launcher none"
elif kill -0 "-$p" 2>/dev/null && grep -q spark-control-launcher "/proc/$p/cmdline" 2>/dev/null; then echo "launcher running $p"
elif [ -s "$d/launcher.status" ]; then echo "launcher exited $(cat "$d/launcher.status")"
else echo "launcher killed"; fi"#;

/// Follows the launcher's output from the start.
pub const FOLLOW_LOG: &str = r#"touch "$HOME/.spark-control/launcher.log"; exec tail -n +1 -F "$HOME/.spark-control/launcher.log" 2>/dev/null"#;

/// The last lines of the launcher's output.
pub const LOG_TAIL: &str = r#"tail -n 20 "$HOME/.spark-control/launcher.log" 2>/dev/null"#;

/// What [`STATE`] printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LauncherState {
    /// No launcher of ours was recorded (or it was stopped and forgotten).
    None,
    /// Alive, with this session id.
    Running {
        /// The session (and process group) id.
        pid: u32,
    },
    /// Exited on its own with this status.
    Exited {
        /// Exit status.
        status: i32,
    },
    /// Gone without an exit status (killed by a signal).
    Killed,
}

/// Parses [`STATE`]'s line.
pub fn parse_state(line: &str) -> Result<LauncherState, String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    match w.as_slice() {
        ["launcher", "none"] => Ok(LauncherState::None),
        ["launcher", "killed"] => Ok(LauncherState::Killed),
        ["launcher", "running", p] => p
            .parse()
            .map(|pid| LauncherState::Running { pid })
            .map_err(|_| format!("bad launcher pid in {line:?}")),
        ["launcher", "exited", s] => s
            .parse()
            .map(|status| LauncherState::Exited { status })
            .map_err(|_| format!("bad launcher status in {line:?}")),
        _ => Err(format!("unexpected launcher state line {line:?}")),
    }
}

/// The line of launcher output that explains a failure: its last `Error:` line, else its
/// last non-empty line.
pub fn headline<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut last = None;
    let mut error = None;
    for l in lines {
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        if is_error_line(t) {
            error = Some(t.to_string());
        }
        last = Some(t.to_string());
    }
    error.or(last)
}

/// Whether a launcher output line reports a failure (`Error: …`).
pub fn is_error_line(line: &str) -> bool {
    line.trim_start().starts_with("Error:")
}

#[cfg(test)]
mod tests;
