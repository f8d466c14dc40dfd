//! A file cut short never acts: every line-boundary prefix of the shipped example and of
//! the demo's file either fails validation, or plans against the full file's converged
//! world only what the missing lines configured — no model whose own lines are intact is
//! stopped or relaunched, no service is stopped, the launcher is not touched.

use super::props::apply;
use super::*;
use crate::model::catalog::launch_spec;

/// The world a perfect executor leaves after converging on `d` from an idle start.
fn converged(d: &Desired) -> Observed {
    let mut o = idle(d);
    for _ in 0..4 {
        let p = plan(d, &o);
        if p.is_empty() {
            return o;
        }
        for s in &p.steps {
            apply(&mut o, d, s);
        }
    }
    panic!("the full file does not converge");
}

/// The active model's launch as `d` configures it (None: nothing to launch).
fn active_launch(d: &Desired) -> Option<String> {
    let name = d.active_model.as_ref()?;
    let cluster = d.cluster.as_ref()?;
    let cat = catalog(d);
    let addrs = d
        .hosts
        .iter()
        .map(|(k, h)| (k.clone(), h.launcher_address().to_string()))
        .collect();
    launch_spec(cat.get(name)?, cluster, &addrs).map(|s| s.fingerprint)
}

/// Checks every prefix of `text`; returns how many were valid.
fn check_prefixes(label: &str, text: &str) -> usize {
    let full = validate_text(label, text)
        .desired
        .unwrap_or_else(|| panic!("{label} is invalid"));
    let world = converged(&full);
    assert!(
        world.vllm.get().is_some_and(|v| !v.models.is_empty()),
        "{label}: the converged world serves a model (else the property is empty)"
    );
    let full_launch = active_launch(&full);
    let mut valid = 0;
    let mut at = 0;
    loop {
        let prefix = &text[..at];
        let v = validate_text(label, prefix);
        if let Some(d) = v.desired {
            valid += 1;
            let p = plan(&d, &world);
            let shown = || {
                format!(
                    "{label} cut after {} line(s) (next: {:?})\nplan:\n{}",
                    prefix.lines().count(),
                    text[at..].lines().next().unwrap_or(""),
                    render(&p)
                )
            };
            for s in &p.steps {
                match &s.action {
                    Action::StopModel { .. } | Action::LaunchModel { .. } => assert!(
                        active_launch(&d).is_some() && active_launch(&d) != full_launch,
                        "the model is stopped or relaunched though its own lines are intact: {}",
                        shown()
                    ),
                    Action::StopService { .. } => panic!("a service is stopped: {}", shown()),
                    Action::UpdateLauncher { .. }
                    | Action::CheckoutLauncher { .. }
                    | Action::ReturnLauncher { .. } => {
                        panic!("the launcher is touched: {}", shown())
                    }
                    _ => {}
                }
            }
        }
        if at == text.len() {
            break;
        }
        at = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
    }
    valid
}

#[test]
fn prefixes_of_the_example_never_stop_what_they_still_describe() {
    let text = include_str!("../../../examples/desired.yaml");
    let valid = check_prefixes("examples/desired.yaml", text);
    // Version and hosts alone are valid (and must do nothing); so is every cut after
    // `active_model:`.
    assert!(valid > 20, "only {valid} prefixes were valid");
    let cut = &text[..text
        .find("\nactive_model:")
        .expect("example has active_model")
        + 1];
    let v = validate_text("cut.yaml", cut);
    assert!(
        v.desired.is_none(),
        "the file cut before active_model: validates"
    );
    assert!(
        v.errors()
            .any(|d| d.message.contains("`active_model:` is missing")),
        "{:?}",
        v.diagnostics
    );
}

#[test]
fn prefixes_of_the_demo_file_never_stop_what_they_still_describe() {
    let opts = crate::demo::DemoOptions::default();
    let text = crate::demo::desired_text(std::path::Path::new("/tmp/launcher"), &opts);
    let valid = check_prefixes("demo desired.yaml", &text);
    assert!(valid > 5, "only {valid} prefixes were valid");
}
