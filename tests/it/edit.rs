//! Integration tests of `edit`: every `DesiredEdit` on a hand-commented fixture (value tree
//! and exact line diff), hostile strings. The file store's tests are in `edit/store.rs`.

mod store;

use serde_yaml::Value;
use spark_control::edit::{apply, yaml, DesiredEdit};

const FIXTURE: &str = include_str!("../fixtures/commented.yaml");

fn parse(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("invalid YAML ({e}):\n{text}"))
}

fn edit(json: &str) -> DesiredEdit {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad edit JSON {json}: {e}"))
}

/// Apply a change (`Some(yaml)` = set, creating maps; `None` = remove) to a value tree.
fn change(v: &mut Value, dotted: &str, new: Option<&str>) {
    let path: Vec<&str> = dotted.split('.').collect();
    let mut cur = v;
    for (i, k) in path.iter().enumerate() {
        let key = Value::String((*k).to_string());
        if cur.is_null() {
            *cur = Value::Mapping(Default::default());
        }
        let m = cur
            .as_mapping_mut()
            .unwrap_or_else(|| panic!("{dotted}: not a mapping at {k}"));
        if i + 1 == path.len() {
            match new {
                Some(y) => {
                    m.insert(key, parse(y));
                }
                None => {
                    m.shift_remove(&key);
                }
            }
            return;
        }
        cur = m.entry(key).or_insert(Value::Null);
    }
}

/// Lines removed (`- `) and added (`+ `), in order, by a longest-common-subsequence diff.
fn line_diff(a: &str, b: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("- {}", a[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", b[j]));
            j += 1;
        }
    }
    out
}

/// Apply `edit_json` to the fixture; the value tree must change by exactly `changes` and
/// the text by exactly the `diff` lines.
fn check(edit_json: &str, changes: &[(&str, Option<&str>)], diff: &[&str]) {
    let out = apply(FIXTURE, &edit(edit_json)).unwrap_or_else(|e| panic!("{edit_json}: {e}"));
    let mut expected = parse(FIXTURE);
    for (path, new) in changes {
        change(&mut expected, path, *new);
    }
    assert_eq!(
        parse(&out),
        expected,
        "value tree after {edit_json}:\n{out}"
    );
    assert_eq!(
        line_diff(FIXTURE, &out),
        diff,
        "line diff after {edit_json}:\n{out}"
    );
    assert_eq!(out.ends_with('\n'), FIXTURE.ends_with('\n'));
}

#[test]
fn every_desired_edit_changes_only_its_lines() {
    check(
        r#"{"op":"activate","model":"gemma4"}"#,
        &[("active_model", Some("gemma4"))],
        &[
            "- active_model: qwen36              # null: nothing loaded",
            "+ active_model: gemma4              # null: nothing loaded",
        ],
    );
    check(
        r#"{"op":"activate","model":null}"#,
        &[("active_model", Some("null"))],
        &[
            "- active_model: qwen36              # null: nothing loaded",
            "+ active_model: null              # null: nothing loaded",
        ],
    );
    check(
        r#"{"op":"set_overrides","model":"qwen36","overrides":{"gpu_memory":0.9,"fp8_kv_cache":null,"extra_args":["--x","a b"]}}"#,
        &[
            ("overrides.qwen36.gpu_memory", Some("0.9")),
            ("overrides.qwen36.fp8_kv_cache", None),
            ("overrides.qwen36.extra_args", Some("[--x, a b]")),
        ],
        &[
            "-   qwen36: { max_context: 131072, gpu_memory: 0.80, fastsafetensors: true,",
            "-             prefix_caching: true, fp8_kv_cache: false, extra_args: [--reasoning-parser, qwen3] }",
            "+   qwen36: { max_context: 131072, gpu_memory: 0.9, fastsafetensors: true,",
            "+             prefix_caching: true, extra_args: [--x, a b] }",
        ],
    );
    check(
        r#"{"op":"set_overrides","model":"gemma4","overrides":{"max_context":32768,"prefix_caching":true}}"#,
        &[(
            "overrides.gemma4",
            Some("{max_context: 32768, prefix_caching: true}"),
        )],
        &[
            "+   gemma4:",
            "+     max_context: 32768",
            "+     prefix_caching: true",
        ],
    );
    check(
        r#"{"op":"set_overrides","model":"my-model","overrides":{"max_context":null,"env":null}}"#,
        &[("overrides.my-model", None)],
        &[
            "-   my-model:",
            "-     max_context: 65536    # ≈ 64k tokens",
            "-     env:",
            "-       VLLM_LOGGING_LEVEL: DEBUG",
        ],
    );
    check(
        r#"{"op":"set_overrides","model":"my-model","overrides":{"env":{"A":"1","B":"yes"}}}"#,
        &[("overrides.my-model.env", Some("{A: '1', B: 'yes'}"))],
        &[
            "-       VLLM_LOGGING_LEVEL: DEBUG",
            "+       A: \"1\"",
            "+       B: \"yes\"",
        ],
    );
    check(
        r#"{"op":"add_model","name":"new-model","repo":"org/New","mode":"solo"}"#,
        &[("models.new-model", Some("{repo: org/New, mode: solo}"))],
        &["+   new-model:", "+     repo: org/New", "+     mode: solo"],
    );
    check(
        r#"{"op":"add_model","name":"my-model","repo":"org/Other","mode":"cluster"}"#,
        &[("models.my-model.repo", Some("org/Other"))],
        &[
            "-   my-model: { repo: org/Some-Model-FP8, mode: cluster }",
            "+   my-model: { repo: org/Other, mode: cluster }",
        ],
    );
    check(
        r#"{"op":"remove_model","name":"my-model"}"#,
        &[("models.my-model", None), ("overrides.my-model", None)],
        &[
            "-   my-model: { repo: org/Some-Model-FP8, mode: cluster }",
            "-   my-model:",
            "-     max_context: 65536    # ≈ 64k tokens",
            "-     env:",
            "-       VLLM_LOGGING_LEVEL: DEBUG",
        ],
    );
    check(
        r#"{"op":"place_service","service":"magpie","host":"spark1","running":false}"#,
        &[
            ("services.magpie.host", Some("spark1")),
            ("services.magpie.running", Some("false")),
        ],
        &[
            "-   magpie:   { kind: tts, host: spark2, port: 9000, running: true }",
            "+   magpie:   { kind: tts, host: spark1, port: 9000, running: false }",
        ],
    );
    check(
        r#"{"op":"place_service","service":"whisper","host":"spark1","port":8001}"#,
        &[("services.whisper", Some("{host: spark1, port: 8001}"))],
        &["+   whisper: { host: spark1, port: 8001 }"],
    );
    check(
        r#"{"op":"set_update_policy","policy":"auto"}"#,
        &[("updates.launcher", Some("auto"))],
        &[
            "- updates: { launcher: notify }     # manual | notify | auto | pin: <commit>",
            "+ updates: { launcher: auto }     # manual | notify | auto | pin: <commit>",
        ],
    );
    check(
        r#"{"op":"set_update_policy","policy":"pin","pin":"3f2a9c1"}"#,
        &[("updates.launcher", Some("{pin: 3f2a9c1}"))],
        &[
            "- updates: { launcher: notify }     # manual | notify | auto | pin: <commit>",
            "+ updates: { launcher: { pin: 3f2a9c1 } }     # manual | notify | auto | pin: <commit>",
        ],
    );
    check(
        r#"{"op":"set_host","name":"spark3","address":"192.168.1.103","user":"nvidia"}"#,
        &[(
            "hosts.spark3",
            Some("{address: 192.168.1.103, user: nvidia}"),
        )],
        &["+   spark3: { address: 192.168.1.103, user: nvidia }"],
    );
    check(
        r#"{"op":"set_host","name":"spark2","address":"10.0.0.2","port":2222}"#,
        &[
            ("hosts.spark2.address", Some("10.0.0.2")),
            ("hosts.spark2.port", Some("2222")),
        ],
        &[
            "-   spark2: { address: \"192.168.1.102\", user: 'nvidia', port: 22 }",
            "+   spark2: { address: 10.0.0.2, user: 'nvidia', port: 2222 }",
        ],
    );
    check(
        r#"{"op":"remove_host","name":"spark2"}"#,
        &[("hosts.spark2", None)],
        &["-   spark2: { address: \"192.168.1.102\", user: 'nvidia', port: 22 }"],
    );
    check(
        r#"{"op":"set_cluster","head":"spark2","workers":["spark1","spark3"]}"#,
        &[
            ("cluster.head", Some("spark2")),
            ("cluster.workers", Some("[spark1, spark3]")),
        ],
        &[
            "-   head: spark1          # runs launch-cluster.sh",
            "-   workers: [spark2]",
            "+   head: spark2          # runs launch-cluster.sh",
            "+   workers: [spark1, spark3]",
        ],
    );
    check(
        r#"{"op":"set_cluster","workers":[]}"#,
        &[("cluster.workers", Some("[]"))],
        &["-   workers: [spark2]", "+   workers: []"],
    );
}

#[test]
fn edits_already_in_force_leave_the_bytes_alone() {
    for json in [
        r#"{"op":"activate","model":"qwen36"}"#,
        r#"{"op":"set_overrides","model":"qwen36","overrides":{"gpu_memory":0.8}}"#,
        r#"{"op":"remove_host","name":"nope"}"#,
        r#"{"op":"remove_model","name":"nope"}"#,
        r#"{"op":"set_update_policy","policy":"notify"}"#,
    ] {
        assert_eq!(
            apply(FIXTURE, &edit(json)).expect("applies"),
            FIXTURE,
            "{json}"
        );
    }
}

#[test]
fn bad_requests_are_refused() {
    for json in [
        r#"{"op":"activate"}"#,
        r#"{"op":"explode"}"#,
        r#"{"op":"activate","model":"a","x":1}"#,
    ] {
        assert!(
            serde_json::from_str::<DesiredEdit>(json).is_err(),
            "{json} must not deserialize"
        );
    }
    assert!(apply(
        FIXTURE,
        &edit(r#"{"op":"set_update_policy","policy":"pin"}"#)
    )
    .is_err());
    assert!(apply("a: [", &edit(r#"{"op":"activate","model":"x"}"#)).is_err());
}

const HOSTILE: &[&str] = &[
    "x\n  evil: 1",
    "a: b",
    "# c",
    "{}",
    "- x",
    "&anchor",
    "*ref",
    "!!int 3",
    "'q'",
    "\"dq\"",
    "yes",
    "null",
    "~",
    "0x10",
    "1e3",
    "  pad  ",
    "a #b",
    "[x]",
    "|",
    ">-",
    "---",
    "...",
    "%TAG",
    "@x",
    "`x`",
    "tab\there",
    "üñíçødé ✓",
    "emoji 🚀",
    "back\\slash",
    "\u{7}bell",
    "\u{2028}sep",
    "",
    "k: {a: [1, 2]}",
];

#[test]
fn hostile_strings_round_trip_without_changing_structure() {
    for s in HOSTILE {
        let js = serde_json::to_string(s).expect("string to JSON");
        let sv = || Value::String((*s).to_string());
        let mut model = serde_yaml::Mapping::new();
        model.insert("repo".into(), sv());
        model.insert("mode".into(), "solo".into());
        let model_path = ["models", s];
        let cases: Vec<(String, &[&str], Value)> = vec![
            (
                format!(r#"{{"op":"activate","model":{js}}}"#),
                &["active_model"],
                sv(),
            ),
            (
                format!(r#"{{"op":"place_service","service":"magpie","host":{js}}}"#),
                &["services", "magpie", "host"],
                sv(),
            ),
            (
                format!(r#"{{"op":"add_model","name":{js},"repo":{js},"mode":"solo"}}"#),
                &model_path,
                Value::Mapping(model),
            ),
            (
                format!(r#"{{"op":"set_cluster","workers":[{js},"b"]}}"#),
                &["cluster", "workers"],
                Value::Sequence(vec![sv(), "b".into()]),
            ),
        ];
        for (json, path, value) in cases {
            let out = apply(FIXTURE, &edit(&json)).unwrap_or_else(|e| panic!("{json}: {e}"));
            // The program's reader (`yaml::get`) and libyaml agree on the edited value.
            assert_eq!(
                yaml::get(&out, path).expect("get"),
                Some(serde_json::to_value(&value).expect("a YAML value as JSON")),
                "{json}\n{out}"
            );
            let mut expected = parse(FIXTURE);
            set_value(&mut expected, path, value);
            assert_eq!(
                parse(&out),
                expected,
                "rest of the tree changed by {json}:\n{out}"
            );
        }
    }
}

fn set_value(v: &mut Value, path: &[&str], new: Value) {
    let mut cur = v;
    for k in &path[..path.len() - 1] {
        cur = cur
            .as_mapping_mut()
            .expect("mapping")
            .entry(Value::String((*k).into()))
            .or_insert(Value::Null);
    }
    let last = Value::String(path[path.len() - 1].into());
    cur.as_mapping_mut().expect("mapping").insert(last, new);
}

/// A long random walk of edits (deterministic seed): every step applies without an
/// internal error, the result parses, and removing what was added restores the value tree.
#[test]
fn random_edit_sequences_keep_the_document_valid() {
    let names = [
        "qwen36", "my-model", "tiny", "gemma4", "a b", "yes", "x: y", "ü",
    ];
    let hosts = ["spark1", "spark2", "spark3", "# h"];
    let mut seed: u64 = 0x5eed;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n
    };
    let mut text = FIXTURE.to_string();
    for step in 0..600 {
        let (m, h) = (names[next(names.len())], hosts[next(hosts.len())]);
        let e = match next(9) {
            0 => DesiredEdit::Activate {
                model: (next(3) > 0).then(|| m.to_string()),
            },
            1 => DesiredEdit::AddModel {
                name: m.into(),
                repo: format!("org/{m}"),
                mode: "solo".into(),
            },
            2 => DesiredEdit::RemoveModel { name: m.into() },
            3 => DesiredEdit::PlaceService {
                service: ["parakeet", "magpie", "new"][next(3)].into(),
                host: Some(h.into()),
                port: Some(8000 + next(10) as u16),
                running: Some(next(2) == 0),
            },
            4 => DesiredEdit::SetHost {
                name: h.into(),
                address: format!("10.0.0.{}", next(9)),
                user: None,
                port: None,
            },
            5 => DesiredEdit::RemoveHost { name: h.into() },
            6 => DesiredEdit::SetCluster {
                head: Some(h.into()),
                workers: Some(vec![h.into(); next(3)]),
            },
            7 => DesiredEdit::SetUpdatePolicy {
                policy: ["manual", "auto"][next(2)].into(),
                pin: None,
            },
            _ => {
                let patch = serde_json::json!({
                    "max_context": if next(2) == 0 { serde_json::Value::Null } else { 4096.into() },
                    "extra_args": if next(2) == 0 { serde_json::Value::Null } else { serde_json::json!(["--a", m]) },
                    "env": if next(2) == 0 { serde_json::Value::Null } else { serde_json::json!({ "K": m }) },
                });
                let json =
                    serde_json::json!({ "op": "set_overrides", "model": m, "overrides": patch });
                serde_json::from_value(json).expect("patch")
            }
        };
        text = apply(&text, &e).unwrap_or_else(|err| panic!("step {step} {e:?}: {err}\n{text}"));
        parse(&text);
    }
    assert!(
        text.starts_with("# yaml-language-server"),
        "leading comments kept"
    );
    assert!(text.contains("# end of file"), "trailing comment kept");
}
