//! The `deployments:` shape of the desired file: what it means (one typed list of
//! deployments, the older `cluster:` + `active_model:` shape read as one named `default`)
//! and its errors, each at the line and column of the offending value.

use spark_control::model::{validate_text, Severity};

/// `text` must produce exactly these rendered diagnostics (file `t.yaml`).
fn check(name: &str, text: &str, expected: &[&str]) {
    let v = validate_text("t.yaml", text);
    let got: Vec<String> = v.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(got, expected, "case `{name}`");
    let has_err = v.diagnostics.iter().any(|d| d.severity == Severity::Error);
    assert_eq!(v.desired.is_none(), has_err, "case `{name}`");
}

const HOSTS: &str =
    "version: 1\nhosts:\n  spark1: { address: 10.0.0.1 }\n  spark2: { address: 10.0.0.2 }\n";

const TWO_SOLO: &str = "deployments:\n  - { name: coder, head: spark1, active_model: qwen36 }\n  - { name: vision, head: spark2, active_model: qwen3-vl }\n";

#[test]
fn the_older_shape_is_one_deployment_named_default() {
    let v = validate_text(
        "t.yaml",
        &format!("{HOSTS}cluster: {{ head: spark1, workers: [spark2], port: 9999 }}\nactive_model: qwen36\n"),
    );
    let d = v.desired.expect("valid");
    let deps = d.deployments();
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0].name, "default");
    assert_eq!(deps[0].cluster, d.cluster.clone().expect("cluster"));
    assert_eq!(deps[0].active_model.as_deref(), Some("qwen36"));
    assert!(!d.uses_deployments());
}

#[test]
fn two_deployments_read_in_file_order() {
    let v = validate_text("t.yaml", &format!("{HOSTS}{TWO_SOLO}"));
    let got: Vec<String> = v.diagnostics.iter().map(|d| d.to_string()).collect();
    // Every deployment is converged: no warning.
    assert!(got.is_empty(), "{got:?}");
    let d = v.desired.expect("valid");
    let deps = d.deployments();
    let got: Vec<(&str, &str, Option<&str>, u16)> = deps
        .iter()
        .map(|x| {
            (
                x.name.as_str(),
                x.cluster.head.as_str(),
                x.active_model.as_deref(),
                x.cluster.port,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("coder", "spark1", Some("qwen36"), 8888),
            ("vision", "spark2", Some("qwen3-vl"), 8888)
        ]
    );
    assert_eq!(d.first_deployment().map(|x| x.name), Some("coder".into()));
}

#[test]
fn a_host_in_two_deployments_is_fine_while_only_one_is_active() {
    // The layout of a planned transition: two solo deployments and one cluster deployment
    // over the same hosts, only the cluster one active.
    let text = format!(
        "{HOSTS}deployments:\n  - {{ name: coder, head: spark1, active_model: null }}\n  - {{ name: vision, head: spark2, active_model: null }}\n  - {{ name: big, head: spark1, workers: [spark2], active_model: qwen3-235b-fp8 }}\n"
    );
    let v = validate_text("t.yaml", &text);
    assert!(v.errors().next().is_none(), "{:?}", v.diagnostics);
    assert!(v.desired.is_some());
}

#[test]
fn broken_deployment_files() {
    let with = |rest: &str| format!("{HOSTS}{rest}");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("host in two active deployments", with("deployments:\n  - { name: coder, head: spark1, active_model: qwen36 }\n  - { name: big, head: spark2, workers: [spark1], active_model: gemma4 }\n"),
            vec!["t.yaml:7:42: deployments[1].workers[0]: host `spark1` is in deployment `coder` too, and both have an active model; a host runs one deployment at a time: set one `active_model: null`"]),
        ("cluster model on one host", with("deployments:\n  - { name: coder, head: spark1, active_model: qwen3-235b-fp8 }\n"),
            vec!["t.yaml:6:48: deployments[0].active_model: `qwen3-235b-fp8` is a cluster model but deployment `coder` has one host (no `workers:`); activate it on a deployment with workers or pick a solo model"]),
        ("two checkouts on one head", with("deployments:\n  - { name: a, head: spark1, active_model: null }\n  - { name: b, head: spark1, launcher: /opt/svd, active_model: null }\n"),
            vec!["t.yaml:7:40: deployments[1].launcher: deployment `b` has head `spark1` like deployment `a`, with another `launcher:` (`/opt/svd`, not `~/spark-vllm-docker`); a host has one spark-vllm-docker checkout: give both the same path"]),
        ("two container names on one host", with("deployments:\n  - { name: a, head: spark2, active_model: null }\n  - { name: b, head: spark1, workers: [spark2], container: vllm_big, active_model: null }\n"),
            vec!["t.yaml:7:60: deployments[1].container: deployment `b` runs vLLM on `spark2` in container `vllm_big`, deployment `a` in `vllm_node`; a host runs one vLLM container: give both the same `container:`"]),
        ("duplicate name", with("deployments:\n  - { name: a, head: spark1, active_model: null }\n  - { name: a, head: spark2, active_model: null }\n"),
            vec!["t.yaml:7:13: deployments[1].name: deployment `a` is already the name of deployment 1; names are unique"]),
        ("unknown head", with("deployments:\n  - { name: a, head: spark3, active_model: null }\n"),
            vec!["t.yaml:6:22: deployments[0].head: unknown host `spark3`; did you mean `spark1`?"]),
        ("missing active_model", with("deployments:\n  - { name: a, head: spark1 }\n"),
            vec!["t.yaml:6:5: deployments[0]: `active_model:` is missing in this deployment; say which model it runs (`active_model: null` for none). Is the file cut short or still being written?"]),
        ("both shapes", with("cluster: { head: spark1 }\nactive_model: null\ndeployments:\n  - { name: a, head: spark2, active_model: null }\n"),
            vec!["t.yaml:5:1: cluster: `cluster:` and `deployments:` both describe where vLLM runs; keep one (with several deployments, move the head, workers and port into each entry of `deployments:`)"]),
        ("port clash with a service", with("deployments:\n  - { name: a, head: spark2, port: 8000, active_model: null }\nservices:\n  parakeet: { kind: stt, host: spark2, port: 8000 }\n"),
            vec!["t.yaml:8:46: services.parakeet.port: port 8000 on `spark2` is already used by vLLM of deployment `a`; pick another port or host"]),
        ("alias names another model", with("models:\n  mine: { repo: org/mine, aliases: [qwen36] }\n"),
            vec!["t.yaml:6:37: models.mine.aliases[0]: `qwen36` already names catalog entry `qwen36` (its name, repo or alias); names are unique across the catalog"]),
        ("alias is another repo", with("models:\n  mine: { repo: org/mine, aliases: [RedHatAI/Qwen3.6-35B-A3B-NVFP4] }\n"),
            vec!["t.yaml:6:37: models.mine.aliases[0]: `RedHatAI/Qwen3.6-35B-A3B-NVFP4` already names catalog entry `qwen36` (its name, repo or alias); names are unique across the catalog"]),
        ("alias twice across entries", with("models:\n  a: { repo: org/a, aliases: [coder] }\n  b: { repo: org/b, aliases: [coder] }\n"),
            vec!["t.yaml:7:31: models.b.aliases[0]: `coder` already names catalog entry `a` (its name, repo or alias); names are unique across the catalog"]),
        ("alias like a flag", with("models:\n  a: { repo: org/a, aliases: [--port] }\n"),
            vec!["t.yaml:6:31: models.a.aliases[0]: alias `--port` is not allowed: write a name like `coder` (lowercase letters, digits, `.`, `_`, `-`) or `org/name`"]),
    ];
    for (name, text, expected) in cases {
        check(name, &text, &expected);
    }
}

fn configure(file: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spark-control"))
        .arg("configure")
        .arg("--desired")
        .arg(file)
        .args(args)
        .output()
        .expect("run spark-control");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `configure` keeps the older shape for one deployment and writes `deployments:` for
/// two; the file it writes is valid and means what was asked.
#[test]
fn configure_writes_the_older_shape_unless_asked_for_two_deployments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("desired.yaml");
    let hosts = ["--host", "spark1=127.0.0.2", "--host", "spark2=127.0.0.3"];
    let mut args = hosts.to_vec();
    args.extend(["--deployment", "main=spark1,spark2@9000"]);
    let (code, err) = configure(&file, &args);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(!text.contains("deployments:"), "{text}");
    let d = validate_text("d", &text).desired.expect("valid");
    let c = d.cluster.clone().expect("cluster:");
    assert_eq!(
        (c.head.as_str(), c.workers.clone(), c.port),
        ("spark1", vec!["spark2".to_string()], 9000)
    );

    // Give the older shape an active model: it moves to the first deployment.
    let text = text.replace("active_model: null", "active_model: qwen36");
    std::fs::write(&file, &text).expect("write");
    let (code, err) = configure(
        &file,
        &[
            "--deployment",
            "coder=spark1",
            "--deployment",
            "vision=spark2@8889",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&file).expect("read");
    let d = validate_text("d", &text).desired.expect("valid");
    assert!(d.cluster.is_none() && d.active_model.is_none(), "{text}");
    let got: Vec<(String, String, u16, Option<String>)> = d
        .deployments()
        .into_iter()
        .map(|x| (x.name, x.cluster.head, x.cluster.port, x.active_model))
        .collect();
    assert_eq!(
        got,
        vec![
            ("coder".into(), "spark1".into(), 8888, Some("qwen36".into())),
            ("vision".into(), "spark2".into(), 8889, None),
        ],
        "{text}"
    );
}

#[test]
fn request_policies_are_checked_where_they_are_written() {
    let text = format!(
        "{HOSTS}deployments:\n  - {{ name: coder, head: spark1, active_model: qwen36, on_request: swap, idle_unload_after: ten minutes }}\nproxy:\n  max_concurrent: {{ qwen36: 0, gpt-4o: 2 }}\n  swap_queue: 0\n"
    );
    let v = validate_text("t.yaml", &text);
    let got: Vec<String> = v.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(v.desired.is_none(), "{got:?}");
    let has = |needle: &str| got.iter().any(|g| g.contains(needle));
    assert!(
        has("t.yaml:6:") && has("`ten minutes` is not a duration: write a number and a unit"),
        "{got:?}"
    );
    assert!(has("t.yaml:8:") && has("must be at least 1"), "{got:?}");
    assert!(
        has("`gpt-4o` is not a catalog model (catalog names: gemma4"),
        "{got:?}"
    );
    assert!(has("t.yaml:9:") && has("must be more than 0"), "{got:?}");
    // Good values read as what they say.
    let text = format!(
        "{HOSTS}deployments:\n  - {{ name: coder, head: spark1, active_model: qwen36, on_request: swap, idle_unload_after: 30m }}\nproxy: {{ max_concurrent: {{ qwen36: 4 }} }}\n"
    );
    let d = validate_text("t.yaml", &text).desired.expect("valid");
    let dep = &d.deployments()[0];
    assert_eq!(
        dep.cluster.on_request,
        spark_control::model::desired::OnRequest::Swap
    );
    assert_eq!(
        dep.cluster
            .idle_unload_after
            .as_deref()
            .and_then(spark_control::model::desired::parse_duration),
        Some(std::time::Duration::from_secs(1800))
    );
    assert_eq!(d.proxy.max_concurrent["qwen36"], 4);
}
