//! Whether a new desired state leaves the running operation alone: a change to other
//! deployments only (say, a swap on `vision` while `coder`'s model loads) does not make
//! `coder`'s operation stale; it runs to its end and the next plan takes the change up.
//! Pure; the loop feeds the answer to the core as `Loaded::Changed { stale }`.

use std::collections::BTreeSet;

use crate::model::desired::Desired;
use crate::plan::{Action, Step};

/// Whether `old` → `new` changes nothing but deployment entries that none of `remaining`
/// acts for. Any other difference (hosts, catalog, overrides, services, the deployments'
/// number or order) is not "only other deployments" and gets the usual stale check.
pub(super) fn only_other_deployments_changed(
    old: &Desired,
    new: &Desired,
    remaining: &[Step],
) -> bool {
    if old.deployments.len() != new.deployments.len() || old.deployments.is_empty() {
        return false;
    }
    let touched: BTreeSet<&str> = remaining
        .iter()
        .filter_map(|s| match &s.action {
            Action::StopModel { deployment, .. }
            | Action::LaunchModel { deployment, .. }
            | Action::WaitReady { deployment, .. } => Some(deployment.as_str()),
            _ => None,
        })
        .collect();
    if touched.contains("") {
        return false;
    }
    let mut patched = new.clone();
    for (theirs, before) in patched.deployments.iter_mut().zip(&old.deployments) {
        if theirs.name == before.name && !touched.contains(theirs.name.as_str()) {
            *theirs = before.clone();
        }
    }
    patched == *old
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate_text;

    fn layout(coder: &str, vision: &str, extra: &str) -> Desired {
        let text = format!(
            "version: 1\nhosts:\n  spark1: {{ address: 10.0.0.1 }}\n  spark2: {{ address: 10.0.0.2 }}\n\
             deployments:\n  - {{ name: coder, head: spark1, active_model: {coder} }}\n  - {{ name: vision, head: spark2, active_model: {vision} }}\n{extra}"
        );
        validate_text("t.yaml", &text).desired.expect("valid")
    }

    fn wait(deployment: &str) -> Step {
        Step {
            action: Action::WaitReady {
                model: "m".into(),
                repo: "r".into(),
                host: "spark1".into(),
                deployment: deployment.into(),
                served: vec![],
                port: 8888,
                timeout_secs: 1,
            },
            why: String::new(),
        }
    }

    #[test]
    fn a_change_elsewhere_leaves_the_operation_alone() {
        let old = layout("qwen36", "null", "");
        let running = [wait("coder")];
        // Another deployment's model: not this operation's business.
        assert!(only_other_deployments_changed(
            &old,
            &layout("qwen36", "qwen3-vl", ""),
            &running
        ));
        // Its own deployment: the usual check.
        assert!(!only_other_deployments_changed(
            &old,
            &layout("gemma4", "null", ""),
            &running
        ));
        // Anything outside the deployments (here the catalog): the usual check.
        assert!(!only_other_deployments_changed(
            &old,
            &layout(
                "qwen36",
                "qwen3-vl",
                "models: { tiny: { repo: org/tiny } }\n"
            ),
            &running
        ));
        // A step of an older build (no deployment named): the usual check.
        assert!(!only_other_deployments_changed(
            &old,
            &layout("qwen36", "qwen3-vl", ""),
            &[wait("")]
        ));
    }
}
