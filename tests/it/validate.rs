//! The desired file: examples valid, broken files give FILE:LINE:COL errors (never a
//! panic), the checked-in schema is current, and the CLI's exit codes.

use std::path::Path;
use std::process::Command;

use spark_control::model::{schema, validate_bytes, validate_text, Severity};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `text` must produce exactly these rendered diagnostics (file `t.yaml`).
fn check(name: &str, text: &str, expected: &[&str]) {
    let v = validate_text("t.yaml", text);
    let got: Vec<String> = v.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(got, expected, "case `{name}`");
    let has_err = v.diagnostics.iter().any(|d| d.severity == Severity::Error);
    assert_eq!(
        v.desired.is_none(),
        has_err,
        "case `{name}`: desired present iff no error"
    );
}

const HOSTS: &str =
    "version: 1\nhosts:\n  spark1: { address: 10.0.0.1 }\n  spark2: { address: 10.0.0.2 }\n";

#[test]
fn broken_files() {
    let with = |rest: &str| format!("{HOSTS}{rest}");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("empty", "".into(), vec!["t.yaml:1:1: the file is empty; it needs at least `version: 1` (see examples/minimal.yaml)"]),
        ("only comments", "# nothing\n".into(), vec!["t.yaml:1:1: the file is empty; it needs at least `version: 1` (see examples/minimal.yaml)"]),
        ("list at top", "- a\n- b\n".into(), vec!["t.yaml:1:1: the top level is a list; it must be a mapping of keys such as `version: 1`, `hosts:`, `active_model:`"]),
        ("scalar at top", "hello\n".into(), vec!["t.yaml:1:1: the top level is a single string; it must be a mapping of keys such as `version: 1`, `hosts:`, `active_model:`"]),
        ("syntax", "version: [1\n".into(), vec!["t.yaml:2:1: YAML syntax error: while parsing a flow sequence, expected ',' or ']'"]),
        ("truncated", "version: 1\nhosts:\n  spark1: { address: 10.0.0.1\n".into(), vec!["t.yaml:4:1: YAML syntax error: while parsing a flow mapping, did not find expected ',' or '}'"]),
        ("tabs", "version: 1\nhosts:\n\tspark1: {}\n".into(), vec!["t.yaml:3:2: YAML syntax error: tabs disallowed within this context (block indentation) (YAML does not allow tabs for indentation; indent with spaces)"]),
        ("duplicate key", "version: 1\nhosts:\n  a: { address: x }\n  a: { address: y }\n".into(), vec!["t.yaml:4:3: hosts: duplicate key `a` (first defined on line 3); remove one of them"]),
        ("duplicate top key", "version: 1\nversion: 1\n".into(), vec!["t.yaml:2:1: duplicate key `version` (first defined on line 1); remove one of them"]),
        ("unknown key", with("activ_model: qwen36\n"), vec!["t.yaml:5:1: activ_model: unknown key `activ_model`; did you mean `active_model`?"]),
        ("unknown nested key", "version: 1\nhosts:\n  s1: { address: 10.0.0.1, usr: x }\n".into(), vec!["t.yaml:3:28: hosts.s1.usr: unknown key `usr`; did you mean `user`?"]),
        ("unknown key in optional map", with("cluster: { head: spark1, workerz: [spark2] }\n"), vec!["t.yaml:5:26: cluster.workerz: unknown key `workerz`; did you mean `workers`?"]),
        ("missing version", "hosts: {}\n".into(), vec!["t.yaml:1:1: missing required key `version`"]),
        ("wrong type", "version: one\n".into(), vec!["t.yaml:1:10: version: expected a whole number, found \"one\""]),
        ("all-digit pin unquoted", "version: 1\nupdates: { launcher: { pin: 703717716585 } }\n".into(), vec!["t.yaml:2:29: updates.launcher.pin: expected a string, found 703717716585 (write it in quotes to keep it text: \"703717716585\")"]),
        ("bad policy", with("updates: { launcher: sometimes }\n"), vec!["t.yaml:5:22: updates.launcher: \"sometimes\" is not one of: manual, notify, auto, {pin: …}"]),
        ("unknown host in cluster", with("cluster: { head: spark3 }\nactive_model: null\n"), vec!["t.yaml:5:18: cluster.head: unknown host `spark3`; did you mean `spark1`?"]),
        ("unknown worker", with("cluster: { head: spark1, workers: [nuc] }\nactive_model: null\n"), vec!["t.yaml:5:36: cluster.workers[0]: unknown host `nuc`; configured hosts: spark1, spark2"]),
        ("cluster without active_model", with("cluster: { head: spark1 }\n"), vec!["t.yaml:5:1: cluster: `active_model:` is missing; once `cluster:` is set the file must say which model runs (`active_model: null` for none). Is the file cut short or still being written?"]),
        ("unknown model", with("cluster: { head: spark1 }\nactive_model: qwen37\n"), vec!["t.yaml:6:15: active_model: `qwen37` is not in the model catalog; did you mean `qwen36`? (add custom models under `models:`)"]),
        ("active without cluster", "version: 1\nactive_model: qwen36\n".into(), vec!["t.yaml:2:15: active_model: `qwen36` is active but no `cluster:` is configured (set cluster.head to the host that runs the launcher), or set `active_model: null`"]),
        ("cluster model without workers", with("cluster: { head: spark1 }\nactive_model: qwen3-235b-fp8\n"), vec!["t.yaml:6:15: active_model: `qwen3-235b-fp8` is a cluster model but `cluster.workers` is empty; add a worker host or pick a solo model"]),
        ("service unknown host", with("services:\n  parakeet: { kind: stt, host: spark9, port: 8000 }\n"), vec!["t.yaml:6:32: services.parakeet.host: unknown host `spark9`; did you mean `spark1`?"]),
        ("two services one port", with("services:\n  a: { kind: stt, host: spark2, port: 8000 }\n  b: { kind: tts, host: spark2, port: 8000 }\n"), vec!["t.yaml:7:39: services.b.port: port 8000 on `spark2` is already used by service `a`; pick another port or host"]),
        ("service on vllm port", with("cluster: { head: spark1 }\nservices:\n  a: { kind: stt, host: spark1, port: 8888 }\nactive_model: null\n"), vec!["t.yaml:7:39: services.a.port: port 8888 on `spark1` is already used by vLLM (cluster.port); pick another port or host"]),
        ("bad names", "version: 1\nhosts:\n  Spark_1: { address: 10.0.0.1 }\n".into(), vec!["t.yaml:3:3: hosts.Spark_1: host name `Spark_1` is not allowed: names use lowercase letters, digits, `.`, `_` and `-`, start with a letter or digit"]),
        ("hostile model name", with("models:\n  \"x; rm -rf ~\": { repo: org/x }\n"), vec!["t.yaml:6:3: models.x; rm -rf ~: model name `x; rm -rf ~` is not allowed: names use lowercase letters, digits, `.`, `_` and `-`, start with a letter or digit"]),
        ("bad repo", with("models:\n  m: { repo: \"$(id)\" }\n"), vec!["t.yaml:6:14: models.m.repo: `$(id)` is not a Hugging Face repo; write `org/name`, e.g. RedHatAI/Qwen3.6-35B-A3B-NVFP4"]),
        ("gpu memory range", with("overrides:\n  qwen36: { gpu_memory: 1.5 }\n"), vec!["t.yaml:6:25: overrides.qwen36.gpu_memory: 1.5 is outside (0, 1]: it is a fraction of GPU memory, e.g. 0.80"]),
        ("gpu memory zero", with("overrides:\n  qwen36: { gpu_memory: 0 }\n"), vec!["t.yaml:6:25: overrides.qwen36.gpu_memory: 0 is outside (0, 1]: it is a fraction of GPU memory, e.g. 0.80"]),
        ("override unknown model", with("overrides:\n  qwen35: { max_context: 4096 }\n"), vec!["t.yaml:6:3: overrides.qwen35: overrides for `qwen35`, which is not in the model catalog; did you mean `qwen36`?"]),
        ("managed flag", with("overrides:\n  qwen36: { extra_args: [--port, \"9\"] }\n"), vec!["t.yaml:6:26: overrides.qwen36.extra_args[0]: `--port` is managed by spark-control (cluster.port; vLLM listens on 0.0.0.0); remove it"]),
        ("idle-only without auto", with("updates: { launcher: notify, auto_only_when_idle: true }\n"), vec!["t.yaml:5:51: warning: updates.auto_only_when_idle: has an effect only with `launcher: auto`"]),
        ("bad pin", with("updates: { launcher: { pin: main } }\n"), vec!["t.yaml:5:29: updates.launcher.pin: `main` is not a commit hash (7 to 40 hex digits)"]),
        ("alias", "version: &v 1\nx: *v\n".into(), vec!["t.yaml:1:13: YAML anchors (`&name`) are not supported in desired.yaml", "t.yaml:2:4: x: YAML aliases (`*name`) are not supported in desired.yaml; write the value out"]),
        ("two documents", "version: 1\n---\nversion: 1\n".into(), vec!["t.yaml:2:1: several YAML documents in one file; desired.yaml holds exactly one (remove the extra `---`)"]),
        ("mdns warning", "version: 1\nhosts:\n  s: { address: spark-1.local }\n".into(), vec!["t.yaml:3:17: warning: hosts.s.address: `spark-1.local` is an mDNS name: it often resolves to IPv6 first while vLLM binds IPv4 only; use the host's IPv4 address"]),
        ("every error of a stage at once", with("cluster: { head: spark9 }\nservices:\n  a: { kind: stt, host: nope, port: 8000 }\nactive_model: null\n"), vec![
            "t.yaml:5:18: cluster.head: unknown host `spark9`; did you mean `spark1`?",
            "t.yaml:7:25: services.a.host: unknown host `nope`; configured hosts: spark1, spark2",
        ]),
    ];
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for (name, text, expected) in &cases {
        if let Err(e) = std::panic::catch_unwind(|| check(name, text, expected)) {
            failures.push(format!("{name}: {e:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed (see above)",
        failures.len()
    );
}

#[test]
fn hostile_bytes_never_panic() {
    // Binary junk, a NUL, invalid UTF-8 mid-file, deep nesting, a huge file.
    let mut junk = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..5000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        junk.push((x >> 16) as u8);
    }
    for (name, bytes, expect) in [
        ("junk", junk.clone(), "not UTF-8"),
        ("nul", b"version: 1\0\n".to_vec(), "NUL"),
        (
            "latin1",
            b"version: 1\nhosts:\n  caf\xe9: {}\n".to_vec(),
            "t.yaml:3:6: the file is not UTF-8",
        ),
        (
            "deep",
            format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            "t.yaml:",
        ),
        (
            "huge",
            vec![b'a'; 100 * 1024 * 1024],
            "at most 1048576 bytes",
        ),
    ] {
        let v = validate_bytes("t.yaml", &bytes);
        assert!(v.desired.is_none(), "{name}");
        let all: String = v.diagnostics.iter().map(|d| d.to_string()).collect();
        assert!(all.contains(expect), "{name}: {all}");
    }
}

#[test]
fn examples_and_state_are_valid() {
    for f in [
        "examples/desired.yaml",
        "examples/minimal.yaml",
        "examples/cluster.yaml",
        "state/desired.yaml",
    ] {
        let path = root().join(f);
        let v = spark_control::model::validate_file(&path);
        assert!(v.is_ok(), "{f}: {:?}", v.diagnostics);
        let text = std::fs::read_to_string(&path).expect("example readable");
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schema/desired-state.schema.json"),
            "{f} must start with the yaml-language-server schema line"
        );
    }
    // The unconfigured starting point contacts nobody.
    let d = spark_control::model::validate_file(&root().join("state/desired.yaml"))
        .desired
        .expect("valid");
    assert!(d.hosts.is_empty() && d.cluster.is_none() && d.active_model.is_none());
}

#[test]
fn checked_in_schema_is_current() {
    let file = std::fs::read_to_string(root().join("schema/desired-state.schema.json"))
        .expect("schema file");
    assert!(
        file == schema::schema_text(),
        "schema/desired-state.schema.json is stale: run `cargo run -- schema > schema/desired-state.schema.json`"
    );
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spark-control"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run spark-control");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_validate_schema_plan() {
    let (code, out, _) = cli(&[
        "validate",
        "examples/desired.yaml",
        "examples/minimal.yaml",
        "examples/cluster.yaml",
        "state/desired.yaml",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = cli(&["schema"]);
    assert_eq!(code, 0);
    let file = std::fs::read_to_string(root().join("schema/desired-state.schema.json"))
        .expect("schema file");
    assert_eq!(
        out, file,
        "`spark-control schema` must print the checked-in schema byte for byte"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nhosts:\n  s1: { address: 10.0.0.1, usr: x }\n",
    )
    .expect("write");
    let (code, _, err) = cli(&["validate", bad.to_str().expect("utf8 path")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.yaml:3:28: hosts.s1.usr: unknown key `usr`; did you mean `user`?"),
        "{err}"
    );

    // A git-ops preview: desired + observed → plan text.
    let obs = dir.path().join("observed.yaml");
    std::fs::write(
        &obs,
        "generation: 1\nhosts:\n  spark1:\n    reachable: { known: { value: true } }\n    containers: { known: { value: {} } }\n    launch: { known: { value: null } }\n    hf_cache: { known: { value: [RedHatAI/Qwen3.6-35B-A3B-NVFP4] } }\n    launcher: { known: { value: { head: 0123456789abcdef, generation: B } } }\nvllm: { known: { value: { models: [] } } }\n",
    )
    .expect("write");
    let (code, out, err) = cli(&[
        "plan",
        "--desired",
        "examples/minimal.yaml",
        "--observed",
        obs.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("+ launch qwen36 on spark1 (RedHatAI/Qwen3.6-35B-A3B-NVFP4, solo)"),
        "{out}"
    );
    let (code, out, _) = cli(&[
        "plan",
        "--json",
        "--desired",
        "examples/minimal.yaml",
        "--observed",
        obs.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("plan JSON");
    assert_eq!(v["steps"][0]["action"], "launch_model");
}

/// Every diagnostic of `text` is an error, at least one is at `path`, and every rendered
/// diagnostic is short (user text is clipped, never echoed whole). Returns that message.
fn oversized(name: &str, text: &str, path: &str) -> String {
    let v = validate_text("t.yaml", text);
    assert!(v.desired.is_none(), "case `{name}`: must be refused");
    for d in &v.diagnostics {
        let line = d.to_string();
        assert!(
            line.len() < 400,
            "case `{name}`: a {}-byte diagnostic: {}…",
            line.len(),
            &line[..200]
        );
    }
    let d = v
        .diagnostics
        .iter()
        .find(|d| d.path == path)
        .unwrap_or_else(|| {
            panic!(
                "case `{name}`: no diagnostic at {path}: {:?}",
                v.diagnostics
            )
        });
    d.message.clone()
}

#[test]
fn oversized_values_are_refused_with_short_messages() {
    let with = |rest: &str| format!("{HOSTS}cluster: {{ head: spark1 }}\n{rest}");
    let mb = "A".repeat(1_000_000);
    let e = "é".repeat(3000); // 3000 characters, 6000 bytes
    let arg4k = "a".repeat(4000);
    let long_name = "m".repeat(200_000);
    let cases: Vec<(&str, String, String, String)> = vec![
        (
            "1 MB extra_args element",
            with(&format!("overrides:\n  qwen36: {{ extra_args: [\"{mb}\"] }}\n")),
            "overrides.qwen36.extra_args[0]".into(),
            format!("\"{}…\" is 1000000 characters (1000000 bytes); the limit is 4096 characters", "A".repeat(40)),
        ),
        (
            "an element under 4096 characters but over 4096 bytes",
            with(&format!("overrides:\n  qwen36: {{ extra_args: [\"{e}\"] }}\n")),
            "overrides.qwen36.extra_args[0]".into(),
            "the argument is 6000 bytes; the limit is 4096 bytes".into(),
        ),
        (
            "extra_args over 16 KiB in all",
            with(&format!("overrides:\n  qwen36: {{ extra_args: [{}] }}\n", [arg4k.as_str(); 5].join(", "))),
            "overrides.qwen36.extra_args".into(),
            "the arguments total 20000 bytes; the limit is 16384 bytes".into(),
        ),
        (
            "too many extra_args",
            with(&format!("overrides:\n  qwen36: {{ extra_args: [{}] }}\n", ["-x"; 65].join(", "))),
            "overrides.qwen36.extra_args".into(),
            "the list has 65 elements; the limit is 64".into(),
        ),
        (
            "too many env variables",
            with(&format!("overrides:\n  qwen36:\n    env: {{ {} }}\n", (0..65).map(|i| format!("V{i}: x")).collect::<Vec<_>>().join(", "))),
            "overrides.qwen36.env".into(),
            "the mapping has 65 entries; the limit is 64".into(),
        ),
        (
            "env value over 4096",
            with(&format!("overrides:\n  qwen36:\n    env: {{ HF_X: \"{}\" }}\n", "v".repeat(5000))),
            "overrides.qwen36.env.HF_X".into(),
            format!("\"{}…\" is 5000 characters (5000 bytes); the limit is 4096 characters", "v".repeat(40)),
        ),
        (
            "env in all over 8 KiB",
            with(&format!("overrides:\n  qwen36:\n    env: {{ A: \"{a}\", B: \"{a}\", C: \"{a}\" }}\n", a = "v".repeat(3000))),
            "overrides.qwen36.env".into(),
            "names and values total 9003 bytes; the limit is 8192 bytes".into(),
        ),
        (
            "200 KB active model name",
            with(&format!("active_model: {long_name}\n")),
            "active_model".into(),
            format!("\"{}…\" is 200000 characters (200000 bytes); the limit is 63 characters", "m".repeat(40)),
        ),
        (
            "200 KB model name as a key",
            with(&format!("models:\n  {long_name}: {{ repo: org/x }}\n")),
            "".into(),
            "YAML syntax error: mapping values are not allowed in this context (the key on line 7 is longer than YAML's 1024-character limit for keys; names are at most 63 characters)".into(),
        ),
        (
            "200 KB unknown key",
            with(&format!("{long_name}: 1\n")),
            "".into(),
            "YAML syntax error: simple key expect ':' (the key on line 6 is longer than YAML's 1024-character limit for keys; names are at most 63 characters)".into(),
        ),
        (
            "1000-character model name as a key",
            with(&format!("models:\n  {}: {{ repo: org/x }}\n", "m".repeat(1000))),
            format!("models.{}… (1000 bytes)", "m".repeat(60)),
            format!("the name `{}… (1000 bytes)` is 1000 characters (1000 bytes); the limit is 63 characters", "m".repeat(60)),
        ),
        (
            "1000-character unknown key",
            with(&format!("{}: 1\n", "k".repeat(1000))),
            format!("{}… (1000 bytes)", "k".repeat(60)),
            format!("unknown key `{}… (1000 bytes)`; known keys: active_model, cluster, deployments, git, hosts, models, overrides, proxy, services, ssh, updates, version", "k".repeat(60)),
        ),
        (
            "long launcher path",
            format!("{HOSTS}cluster: {{ head: spark1, launcher: \"{}\" }}\n", "d".repeat(2000)),
            "cluster.launcher".into(),
            format!("\"{}…\" is 2000 characters (2000 bytes); the limit is 1024 characters", "d".repeat(40)),
        ),
        (
            "long description",
            with(&format!("models:\n  m: {{ repo: org/x, description: \"{}\" }}\n", "d".repeat(600))),
            "models.m.description".into(),
            format!("\"{}…\" is 600 characters (600 bytes); the limit is 512 characters", "d".repeat(40)),
        ),
        (
            "long address",
            format!("version: 1\nhosts:\n  s: {{ address: \"{}\" }}\n", "1".repeat(300)),
            "hosts.s.address".into(),
            format!("\"{}…\" is 300 characters (300 bytes); the limit is 253 characters", "1".repeat(40)),
        ),
    ];
    let mut failures = Vec::new();
    for (name, text, path, expected) in &cases {
        let got = std::panic::catch_unwind(|| oversized(name, text, path));
        match got {
            Ok(msg) if msg == *expected => {}
            Ok(msg) => failures.push(format!("{name}:\n  got      {msg}\n  expected {expected}")),
            Err(e) => failures.push(format!("{name}: {e:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_over_the_limit_file_is_one_short_message() {
    let text = format!(
        "version: 1\nactive_model: {}\n",
        "m".repeat(2 * 1024 * 1024)
    );
    let v = validate_text("t.yaml", &text);
    assert!(v.desired.is_none());
    let all: Vec<String> = v.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        all,
        ["t.yaml:1:1: the file is 2097178 bytes; a desired-state file is at most 1048576 bytes (is this the right file?)"]
    );
}

#[test]
fn a_long_unknown_model_name_is_clipped_in_the_catalog_message() {
    // 63 characters: a valid length, so the catalog check (not the size check) answers.
    let name = format!("x{}", "9".repeat(62));
    let v = validate_text(
        "t.yaml",
        &format!("{HOSTS}cluster: {{ head: spark1 }}\nactive_model: {name}\n"),
    );
    let msg = &v.errors().next().expect("an error").message;
    assert!(
        msg.starts_with(&format!(
            "`{}… (63 bytes)` is not in the model catalog",
            &name[..60]
        )),
        "{msg}"
    );
}

/// `spark-control serve` with `SPARK_CONTROL_ADMIN_TOKEN=token`, on an address already in
/// use so an accepted token ends in a bind error instead of a running server.
fn serve_with_env_token(token: &str) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let desired = dir.path().join("desired.yaml");
    std::fs::write(&desired, "version: 1\n").expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spark-control"))
        .args(["serve", "--listen", &addr, "--desired"])
        .arg(&desired)
        .arg("--data-dir")
        .arg(dir.path())
        .env("SPARK_CONTROL_ADMIN_TOKEN", token)
        .env_remove("SPARK_CONTROL_ADMIN_TOKEN_FILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run spark-control");
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if t0.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("spark-control serve did not exit on a busy address");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("read stderr");
    (status.code().unwrap_or(-1), err)
}

#[test]
fn a_short_admin_token_in_the_environment_is_refused() {
    let rule = "error: the admin token in SPARK_CONTROL_ADMIN_TOKEN is shorter than 16 characters; use a long random token (e.g. `openssl rand -hex 24`)";
    for short in ["hunter2", "fifteen-chars-x", "   padded-short   "] {
        let (code, err) = serve_with_env_token(short);
        assert_eq!(code, 1, "a failure, not a usage error: {short:?}: {err}");
        assert!(err.contains(rule), "{short:?}: {err}");
        assert!(
            !err.contains(short.trim()),
            "the token must never be printed: {err}"
        );
    }
    // 16 characters pass the check: the server goes on and fails only on the busy port.
    let (code, err) = serve_with_env_token("sixteen-chars-ok");
    assert_ne!(code, 0, "{err}");
    assert!(!err.contains("shorter than 16"), "{err}");
    assert!(err.contains("cannot listen on"), "{err}");
    assert!(!err.contains("sixteen-chars-ok"), "{err}");
}

#[test]
fn git_section_is_checked_with_clear_messages() {
    for (git, expect) in [
        (
            "git: { remote: \"--upload-pack=touch\" }",
            "git.remote: `--upload-pack=touch` is not a git remote",
        ),
        ("git: { remote: \"ext::sh\" }", "remote helpers"),
        (
            "git: { remote: \"https://bob:pw@host/r.git\" }",
            "holds a password",
        ),
        (
            "git: { remote: \"gopher://host/r\" }",
            "the `gopher` transport is not allowed",
        ),
        (
            "git: { branch: \"-x\" }",
            "git.branch: `-x` is not a branch name",
        ),
        (
            "git: { path: \"../x.yaml\" }",
            "git.path: `../x.yaml` is not a path inside",
        ),
        (
            "git: { interval_secs: 1 }",
            "git.interval_secs: fetch at most every 5 seconds",
        ),
        (
            "git: { author: { name: \"a<b\", email: x@y } }",
            "git.author.name",
        ),
        ("git: { remtoe: x }", "did you mean `remote`"),
    ] {
        let v = validate_text("t.yaml", &format!("version: 1\n{git}\n"));
        let all: String = v.diagnostics.iter().map(|d| format!("{d}\n")).collect();
        assert!(!v.is_ok(), "{git}: accepted");
        assert!(all.contains(expect), "{git}:\n{all}");
    }
    for ok in [
        "git: {}",
        "git: { remote: \"git@github.com:me/cluster.git\", branch: release/v1, path: clusters/home/desired.yaml }",
        "git: { remote: /srv/git/cluster.git, interval_secs: 5, push: false }",
    ] {
        let v = validate_text("t.yaml", &format!("version: 1\n{ok}\n"));
        assert!(v.is_ok(), "{ok}: {:?}", v.diagnostics);
    }
}
