//! The driver's pure parts: generation detection, the argv per generation (checked against
//! a real bash re-parse for generation A), template checks, state lines and headlines.

use super::*;
use crate::model::catalog::{catalog, launch_spec};
use crate::model::desired::Desired;
use std::collections::BTreeMap;

fn desired(extra: &str) -> Desired {
    let text = format!(
        "version: 1\nhosts:\n  s1: {{ address: 192.168.1.1, interconnect: 10.0.0.1 }}\n  s2: {{ address: 192.168.1.2, interconnect: 10.0.0.2 }}\ncluster: {{ head: s1, workers: [s2] }}\nactive_model: qwen36\n{extra}"
    );
    let parsed = crate::model::yamlpos::parse(&text);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    serde_json::from_value(parsed.value.expect("fixture parses")).expect("fixture is a Desired")
}

fn spec(d: &Desired, model: &str) -> LaunchSpec {
    let addrs: BTreeMap<String, String> = d
        .hosts
        .iter()
        .map(|(k, h)| (k.clone(), h.launcher_address().to_string()))
        .collect();
    let cat = catalog(d);
    launch_spec(
        cat.get(model).expect("model"),
        d.cluster.as_ref().expect("cluster"),
        &addrs,
    )
    .expect("spec")
}

/// What bash does to the words after `exec` on generation A: join with spaces, re-parse.
fn bash_reparse(words: &[String]) -> Vec<String> {
    let joined = words.join(" ");
    // `set -- <joined>` re-parses the text exactly like the launcher's `bash -c "$CMD"`.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -- {joined}; printf '%s\\0' \"$@\""))
        .output()
        .expect("bash runs");
    let mut args: Vec<String> = out
        .stdout
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    args.pop(); // after the last NUL
    args
}

#[test]
fn detects_both_generations_and_refuses_other_text() {
    let a = "Usage: ./launch-cluster.sh [-n <node_ips>] [-t <image_name>] [--name <container_name>] [-d] [action] [command]\n  action          start | stop | status | exec (Default: start)\n";
    let b = "Usage: ./launch-cluster.sh [-n <node_ips>] [--solo] [--ray] [-e VAR=val] [-d] [action] [command]\n  --solo   one node\n  action   start | stop | status | exec\n";
    assert_eq!(detect(a), Ok(Generation::A));
    assert_eq!(detect(b), Ok(Generation::B));
    let e = detect("bash: ./launch-cluster.sh: No such file or directory")
        .expect_err("must be refused");
    assert!(e.contains("No such file"), "{e}");
}

#[test]
fn default_commands_per_generation() {
    let d = desired("");
    let c = d.cluster.as_ref().expect("cluster");
    let solo = spec(&d, "qwen36");
    let a = launch_argv(Generation::A, &solo, c).expect("a");
    assert_eq!(&a[..4], ["./launch-cluster.sh", "-n", "10.0.0.1", "exec"]);
    assert!(!a.iter().any(|w| w == "--solo" || w == "-d"), "{a:?}");
    assert_eq!(a[4], "'vllm'");
    let b = launch_argv(Generation::B, &solo, c).expect("b");
    assert_eq!(
        &b[..6],
        [
            "./launch-cluster.sh",
            "--solo",
            "-d",
            "exec",
            "vllm",
            "serve"
        ]
    );
    let cl = spec(&d, "qwen3-235b-fp8");
    let a = launch_argv(Generation::A, &cl, c).expect("a");
    assert_eq!(a[2], "10.0.0.1,10.0.0.2");
    assert!(a
        .windows(2)
        .any(|w| w == ["'--distributed-executor-backend'", "'ray'"]));
    let b = launch_argv(Generation::B, &cl, c).expect("b");
    assert!(b.windows(2).any(|w| w == ["-tp", "2"]));
    assert!(!b.iter().any(|w| w.contains("ray")), "{b:?}");
    assert_eq!(
        stop_argv(&cl.nodes, c).expect("stop"),
        ["./launch-cluster.sh", "-n", "10.0.0.1,10.0.0.2", "stop"]
    );
}

#[test]
fn hostile_words_survive_generation_a_reparse() {
    let hostile = [
        "$(touch /tmp/spark-control-marker)",
        "`id`",
        "; rm -rf ~",
        "a | b",
        "it's \"quoted\"",
        "two words",
        "new\nline",
        "",
        "!!",
        "\\backslash",
        "*",
    ];
    let words: Vec<String> = hostile.iter().map(|s| s.to_string()).collect();
    let quoted = for_generation(Generation::A, words.clone());
    assert_eq!(bash_reparse(&quoted), words);
    // Unquoted, the same words would split and run: what the quoting prevents.
    assert_ne!(bash_reparse(&words[5..6]), words[5..6]);
    assert_eq!(for_generation(Generation::B, words.clone()), words);
}

#[test]
fn template_overrides_are_checked_against_the_generation() {
    let d = desired("");
    let mut c = d.cluster.clone().expect("cluster");
    let s = spec(&d, "qwen36");
    c.launch_template = Some(
        [
            "./launch-cluster.sh",
            "--solo",
            "exec",
            "vllm",
            "serve",
            "{repo}",
        ]
        .map(String::from)
        .to_vec(),
    );
    let e = launch_argv(Generation::A, &s, &c).expect_err("must be refused");
    assert!(e.contains("--solo") && e.contains("generation A"), "{e}");
    assert!(launch_argv(Generation::B, &s, &c).is_ok());
    c.launch_template = Some(["./launch-cluster.sh", "vllm"].map(String::from).to_vec());
    assert!(launch_argv(Generation::B, &s, &c)
        .expect_err("must be refused")
        .contains("exec"));
    c.stop_template = Some(["./launch-cluster.sh", "stop"].map(String::from).to_vec());
    assert!(stop_argv(&s.nodes, &c)
        .expect_err("must be refused")
        .contains("-n"));
}

#[test]
fn state_lines_and_headlines() {
    assert_eq!(
        parse_state("launcher running 42"),
        Ok(LauncherState::Running { pid: 42 })
    );
    assert_eq!(
        parse_state("launcher exited 1"),
        Ok(LauncherState::Exited { status: 1 })
    );
    assert_eq!(parse_state("launcher none"), Ok(LauncherState::None));
    assert!(parse_state("garbage").is_err());
    let h = headline([
        "Head Node: 1",
        "Error: Local IP (10.0.0.1) is not in the list of nodes (1.2.3.4).",
        "usage",
    ]);
    assert_eq!(
        h.as_deref(),
        Some("Error: Local IP (10.0.0.1) is not in the list of nodes (1.2.3.4).")
    );
    assert_eq!(headline(["a", "b", ""]).as_deref(), Some("b"));
}
