//! The one text rendering of a plan, used by the CLI, the logs, the UI and the tests.
//!
//! `+` adds (launch, start, download), `-` removes (stop), `~` changes in place
//! (relaunch, launcher update), two spaces indent waits. Lines under `!` say what could not
//! be seen. Pure.

use std::fmt::Write;

use super::{Action, Plan, Step, StopReason};
use crate::model::desired::Mode;

fn duration(secs: u64) -> String {
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// One line for one step (without the reason). A model step of a named deployment says
/// which, after its sign: `+ [vision] launch qwen3-vl on spark2 (…)` (the older file's one
/// deployment, `default`, is not named).
pub fn step_line(step: &Step) -> String {
    let line = action_line(step);
    let deployment = match &step.action {
        Action::StopModel { deployment, .. }
        | Action::LaunchModel { deployment, .. }
        | Action::WaitReady { deployment, .. } => deployment.as_str(),
        _ => "",
    };
    if deployment.is_empty() || deployment == crate::model::deployment::DEFAULT_NAME {
        return line;
    }
    // The sign and its space, or the wait's two-space indent.
    let (sign, rest) = line.split_at(2.min(line.len()));
    format!("{sign}[{deployment}] {rest}")
}

fn action_line(step: &Step) -> String {
    match &step.action {
        Action::StopModel {
            host,
            model,
            reason,
            ..
        } => {
            let what = model.as_deref().unwrap_or("vLLM");
            match reason {
                StopReason::Relaunch { changes } if !changes.is_empty() => {
                    format!("~ relaunch {what} on {host} ({})", changes.join(", "))
                }
                StopReason::Relaunch { .. } => {
                    format!("~ relaunch {what} on {host} (launch command changed)")
                }
                StopReason::Swap { to } => format!("- stop {what} on {host} (swap to {to})"),
                StopReason::NoneDesired => format!("- stop {what} on {host} (no model desired)"),
                StopReason::Cleanup => {
                    format!("- stop {what} on {host} (leftover worker containers)")
                }
                StopReason::Unidentified => {
                    format!("- stop {what} on {host} (unidentified launch)")
                }
                StopReason::Crashed { .. } => {
                    format!("~ relaunch {what} on {host} (crashed)")
                }
            }
        }
        Action::SettleGpu {
            hosts,
            below_mib,
            free_share,
            timeout_secs,
        } => format!(
            "  wait for GPU memory to settle on {} (< {below_mib} MiB, or {:.0}% free on unified memory, up to {})",
            hosts.join(", "),
            free_share * 100.0,
            duration(*timeout_secs)
        ),
        Action::Download { host, repo, .. } => format!("+ download {repo} to {host}"),
        Action::LaunchModel {
            spec,
            host,
            generation,
            ..
        } => {
            let mode = match spec.mode {
                Mode::Solo => "solo".to_string(),
                Mode::Cluster => format!("cluster on {}", spec.hosts.join("+")),
            };
            let _ = generation;
            format!("+ launch {} on {host} ({}, {mode})", spec.model, spec.repo)
        }
        Action::WaitReady {
            model,
            host,
            port,
            timeout_secs,
            ..
        } => format!(
            "  wait until {model} is ready on {host}:{port} (up to {})",
            duration(*timeout_secs)
        ),
        Action::StopService { service, host, .. } => format!("- stop service {service} on {host}"),
        Action::StartService {
            service,
            host,
            port,
            ..
        } => format!("+ start service {service} on {host}:{port}"),
        Action::RestartService { service, host, .. } => {
            format!("~ restart service {service} on {host}")
        }
        Action::FetchLauncher { host } => format!("  check the launcher on {host} for updates"),
        Action::UpdateLauncher { host, behind } => {
            format!("~ update launcher on {host} ({behind} commits behind)")
        }
        Action::CheckoutLauncher { host, commit, from } => {
            let from: String = from.chars().take(12).collect();
            format!("~ checkout launcher on {host} at {commit} (from {from}) and rebuild")
        }
        Action::ReturnLauncher { host, branch, from } => {
            let from: String = from.chars().take(12).collect();
            format!("~ return launcher on {host} to branch {branch} (from {from})")
        }
    }
}

/// The whole plan as text: one line per step with its reason, then what was not seen.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.steps.is_empty() {
        out.push_str("(nothing to do)\n");
    }
    for s in &plan.steps {
        let _ = writeln!(out, "{}  # {}", step_line(s), s.why);
    }
    for u in &plan.unknown {
        let _ = writeln!(out, "! cannot see {u}");
    }
    if !plan.complete {
        out.push_str("! plan incomplete: nothing was decided for what could not be seen\n");
    }
    out
}
