//! Pure parsers of what the poll commands print. Tested on captured text.
//!
//! The poll runs one script per host whose sections are separated by marker lines
//! (`@@containers`, `@@rc 0`, ...); `sections` splits it and each parser turns one
//! section into a value or says why it cannot. No IO.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::observed::{ContainerObserved, GpuObserved, LauncherObserved};

/// One section of the poll output: its lines and the exit status of its command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    /// Output lines.
    pub lines: Vec<String>,
    /// Exit status printed after it (`@@rc N`), if any.
    pub rc: Option<i32>,
}

impl Section {
    /// The lines, or why the section is unusable.
    pub fn ok(&self, what: &str) -> Result<&[String], String> {
        match self.rc {
            Some(0) => Ok(&self.lines),
            Some(127) => Err(format!("{what}: command not found")),
            Some(rc) => Err(format!(
                "{what} failed (exit {rc}){}",
                self.lines
                    .last()
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default()
            )),
            None => Err(format!("{what}: no result (output cut short)")),
        }
    }
}

/// Splits poll output into named sections.
pub fn sections(stdout: &str) -> BTreeMap<String, Section> {
    let mut out: BTreeMap<String, Section> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("@@") {
            if let Some(rc) = rest.strip_prefix("rc ") {
                if let Some(name) = &current {
                    out.entry(name.clone()).or_default().rc = rc.trim().parse().ok();
                }
            } else {
                let name = rest.trim().to_string();
                out.entry(name.clone()).or_default();
                current = Some(name);
            }
        } else if let Some(name) = &current {
            out.entry(name.clone())
                .or_default()
                .lines
                .push(line.to_string());
        }
    }
    out
}

/// `docker ps -a --format '{{.Names}}\t{{.State}}\t{{.Image}}'`.
pub fn docker_ps(lines: &[String]) -> Result<BTreeMap<String, ContainerObserved>, String> {
    let mut out = BTreeMap::new();
    for l in lines.iter().filter(|l| !l.trim().is_empty()) {
        let mut parts = l.split('\t');
        let (Some(name), Some(state)) = (parts.next(), parts.next()) else {
            return Err(format!("unexpected docker ps line: {l:?}"));
        };
        let image = parts.next().unwrap_or("").to_string();
        out.insert(
            name.trim().to_string(),
            ContainerObserved {
                running: state.trim() == "running",
                image,
            },
        );
    }
    Ok(out)
}

/// HF cache listing: lines `complete models--org--name` / `partial models--org--name`.
/// Returns the repos that are complete.
pub fn hf_cache(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("complete "))
        .filter_map(|d| d.trim().strip_prefix("models--"))
        .filter_map(|rest| {
            // models--org--name: the org never contains "--"; the name may.
            rest.split_once("--")
                .map(|(org, name)| format!("{org}/{name}"))
        })
        .collect()
}

/// Launcher section: HEAD on the first line, then optionally `behind N` and subjects.
pub fn launcher(lines: &[String]) -> Result<LauncherObserved, String> {
    let head = lines
        .first()
        .map(|s| s.trim().to_string())
        .filter(|h| h.len() >= 7 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| match lines.first() {
            Some(l) => format!(
                "not a git checkout (`git rev-parse HEAD` said: {})",
                l.trim()
            ),
            None => "not a git checkout (`git rev-parse HEAD` said nothing)".to_string(),
        })?;
    let mut behind = None;
    let mut subjects = Vec::new();
    let mut usage: Option<String> = None;
    let mut branch = None;
    let mut pinned_from = None;
    // A git ref name is at most a few hundred bytes; anything longer is not one.
    let name = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty() && s.len() <= 255);
    for l in &lines[1..] {
        if let Some(n) = l.strip_prefix("behind ") {
            behind = n.trim().parse().ok();
        } else if let Some(s) = l.strip_prefix("subject ") {
            subjects.push(s.to_string());
        } else if l == "usage-begin" {
            usage = Some(String::new());
        } else if let (Some(u), Some(t)) = (usage.as_mut(), l.strip_prefix("usage ")) {
            u.push_str(t);
            u.push('\n');
        } else if let Some(b) = l.strip_prefix("branch ") {
            branch = name(b);
        } else if let Some(b) = l.strip_prefix("pinned-from ") {
            pinned_from = name(b);
        }
    }
    Ok(LauncherObserved {
        head,
        behind,
        subjects,
        usage,

        branch,
        pinned_from,
        ..Default::default()
    })
}

fn num(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.starts_with('[') || s.eq_ignore_ascii_case("n/a") {
        None
    } else {
        s.parse().ok()
    }
}

/// `nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,
/// temperature.gpu,power.draw --format=csv,noheader,nounits`. Values the GPU cannot report
/// (`[N/A]`, e.g. memory on the GB10's unified memory) become 0.
pub fn nvidia_smi(lines: &[String]) -> Result<Vec<GpuObserved>, String> {
    let mut out = Vec::new();
    for l in lines.iter().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        if f.len() < 7 {
            return Err(format!("unexpected nvidia-smi line: {l:?}"));
        }
        out.push(GpuObserved {
            index: f[0]
                .parse()
                .map_err(|_| format!("bad GPU index in {l:?}"))?,
            name: f[1].to_string(),
            util_pct: num(f[2]).unwrap_or(0.0),
            mem_used_mib: num(f[3]).unwrap_or(0.0) as u64,
            mem_total_mib: num(f[4]).unwrap_or(0.0) as u64,
            temp_c: num(f[5]).unwrap_or(0.0),
            power_w: num(f[6]).unwrap_or(0.0),
        });
    }
    Ok(out)
}

/// The most GPU memory used on any GPU, MiB, from [`super::NVIDIA_SMI`] output; `None` when
/// a GPU does not report memory (GB10's unified memory reads `[N/A]`).
pub fn gpu_memory_used(lines: &[String]) -> Result<Option<u64>, String> {
    let gpus = nvidia_smi(lines)?;
    // `[N/A]` reads as 0; no real GPU has 0 MiB in total.
    if gpus.iter().any(|g| g.mem_total_mib == 0) {
        return Ok(None);
    }
    Ok(Some(gpus.iter().map(|g| g.mem_used_mib).max().unwrap_or(0)))
}

/// Host memory from `free -m` (procps): the `Mem:` line's total and available, MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeMemory {
    pub total_mib: u64,
    pub available_mib: u64,
}

/// Parses `free -m`: the header names the columns (`available` is the last on procps ≥
/// 3.3.10), the `Mem:` line has the values.
pub fn free_memory(lines: &[String]) -> Result<FreeMemory, String> {
    let header: Vec<&str> = lines
        .iter()
        .find(|l| l.contains("total"))
        .ok_or("no header line in `free -m` output")?
        .split_whitespace()
        .collect();
    let mem: Vec<&str> = lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix("Mem:"))
        .ok_or("no `Mem:` line in `free -m` output")?
        .split_whitespace()
        .collect();
    let column = |name: &str| -> Result<u64, String> {
        let at = header
            .iter()
            .position(|h| *h == name)
            .ok_or(format!("no `{name}` column in `free -m` output"))?;
        mem.get(at)
            .and_then(|v| v.parse().ok())
            .ok_or(format!("no `{name}` value in `free -m` output"))
    };
    Ok(FreeMemory {
        total_mib: column("total")?,
        available_mib: column("available")?,
    })
}

/// vLLM's `GET /v1/models` body → the model ids.
pub fn v1_models(body: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("/v1/models is not JSON: {e}"))?;
    let data = v
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or("/v1/models has no `data` list")?;
    Ok(data
        .iter()
        .filter_map(|m| m.get("id").and_then(|i| i.as_str()).map(String::from))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    #[test]
    fn sections_split_with_status() {
        let s = sections("@@containers\nvllm_node\trunning\tvllm\n@@rc 0\n@@gpus\n@@rc 127\n@@hf\ncomplete models--a--b\n");
        assert_eq!(s["containers"].rc, Some(0));
        assert_eq!(s["containers"].lines, ["vllm_node\trunning\tvllm"]);
        assert_eq!(
            s["gpus"].ok("nvidia-smi"),
            Err("nvidia-smi: command not found".into())
        );
        assert_eq!(s["hf"].rc, None);
    }

    #[test]
    fn docker_ps_cases() {
        // Captured from `docker ps -a --format '{{.Names}}\t{{.State}}\t{{.Image}}'` (docker 28).
        let got = docker_ps(&lines("vllm_node\trunning\tvllm-node:latest\nparakeet\texited\tnvcr.io/nim/parakeet:1\nmagpie\tcreated\tmagpie:1\n")).expect("parses");
        assert!(got["vllm_node"].running);
        assert!(!got["parakeet"].running);
        assert!(!got["magpie"].running);
        assert_eq!(got["vllm_node"].image, "vllm-node:latest");
        assert!(docker_ps(&lines("garbage")).is_err());
        assert!(docker_ps(&[]).expect("empty ok").is_empty());
    }

    #[test]
    fn hf_cache_cases() {
        let got = hf_cache(&lines("complete models--RedHatAI--Qwen3.6-35B-A3B-NVFP4\npartial models--google--gemma-4-26B-A4B-it\ncomplete models--org--name--with--dashes\ncomplete datasets--x--y\n"));
        let want: BTreeSet<String> = ["RedHatAI/Qwen3.6-35B-A3B-NVFP4", "org/name--with--dashes"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn launcher_cases() {
        let l = launcher(&lines("0123456789abcdef0123456789abcdef01234567\nbehind 2\nsubject Fix NCCL\nsubject Bump vLLM\n")).expect("ok");
        assert_eq!(l.behind, Some(2));
        assert_eq!(l.subjects, ["Fix NCCL", "Bump vLLM"]);
        assert_eq!((l.branch, l.pinned_from), (None, None));
        let l = launcher(&lines(
            "0123456789abcdef0123456789abcdef01234567\nbranch main\npinned-from main\n",
        ))
        .expect("ok");
        assert_eq!(l.branch.as_deref(), Some("main"));
        assert_eq!(l.pinned_from.as_deref(), Some("main"));
        assert!(launcher(&lines("fatal: not a git repository")).is_err());
    }

    #[test]
    fn nvidia_smi_cases() {
        // GB10 (DGX Spark) reports memory as [N/A] (unified memory); a discrete GPU reports
        // numbers. Format per `nvidia-smi --help-query-gpu` with csv,noheader,nounits.
        let g = nvidia_smi(&lines("0, NVIDIA GB10, 96, [N/A], [N/A], 71, 83.15\n")).expect("ok");
        assert_eq!(g[0].name, "NVIDIA GB10");
        assert_eq!(g[0].util_pct, 96.0);
        assert_eq!(g[0].mem_used_mib, 0);
        assert_eq!(g[0].power_w, 83.15);
        let g = nvidia_smi(&lines("0, NVIDIA H100 80GB HBM3, 0, 1, 81559, 33, 69.91\n1, NVIDIA H100 80GB HBM3, 45, 70000, 81559, 51, 310.2\n")).expect("ok");
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].mem_used_mib, 70000);
        assert!(nvidia_smi(&lines("NVIDIA-SMI has failed")).is_err());
    }

    #[test]
    fn gpu_memory_and_free_cases() {
        // A discrete GPU reports memory; GB10 does not.
        let h100 = lines("0, NVIDIA H100 80GB HBM3, 0, 1, 81559, 33, 69.91\n1, NVIDIA H100 80GB HBM3, 45, 70000, 81559, 51, 310.2\n");
        assert_eq!(gpu_memory_used(&h100), Ok(Some(70000)));
        let gb10 = lines("0, NVIDIA GB10, 96, [N/A], [N/A], 71, 83.15\n");
        assert_eq!(gpu_memory_used(&gb10), Ok(None));
        assert!(gpu_memory_used(&lines("NVIDIA-SMI has failed")).is_err());
        // procps-ng 4.0 `free -m` on a DGX Spark-sized machine.
        let free = lines(
            "               total        used        free      shared  buff/cache   available\n\
             Mem:          122502        9846      103227          44       10547      112656\n\
             Swap:          16383           0       16383\n",
        );
        assert_eq!(
            free_memory(&free),
            Ok(FreeMemory {
                total_mib: 122502,
                available_mib: 112656
            })
        );
        assert!(free_memory(&lines("free: command not found")).is_err());
        let old_procps = lines("             total       used       free     shared    buffers     cached\nMem:          7983       7754        229          0        180       6033\n");
        assert!(free_memory(&old_procps)
            .expect_err("no available column")
            .contains("available"));
    }

    #[test]
    fn v1_models_cases() {
        let body = r#"{"object":"list","data":[{"id":"RedHatAI/Qwen3.6-35B-A3B-NVFP4","object":"model","created":1,"owned_by":"vllm","root":"RedHatAI/Qwen3.6-35B-A3B-NVFP4","parent":null,"max_model_len":131072}]}"#;
        assert_eq!(
            v1_models(body).expect("ok"),
            ["RedHatAI/Qwen3.6-35B-A3B-NVFP4"]
        );
        assert!(v1_models("<html>").is_err());
        assert!(v1_models("{}").is_err());
    }
}
