//! Integration tests of `edit`: every `DesiredEdit` on a hand-commented fixture (value tree
//! and exact line diff), hostile strings, concurrent writers, hand edits, atomic writes.

use serde_yaml::Value;
use spark_control::edit::{apply, yaml, DesiredEdit, DesiredStore, Etag, StoreError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

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
            assert_eq!(
                yaml::get(&out, path).expect("get"),
                Some(value.clone()),
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

fn no_validation(_: &str) -> Result<(), Vec<String>> {
    Ok(())
}

fn temp_store(text: &str) -> (tempfile::TempDir, DesiredStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("desired.yaml");
    std::fs::write(&path, text).expect("write fixture");
    (dir, DesiredStore::new(path))
}

fn add_model(i: usize) -> DesiredEdit {
    DesiredEdit::AddModel {
        name: format!("m{i:02}"),
        repo: format!("org/M{i}"),
        mode: "solo".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_writers_with_retry_lose_nothing() {
    let (_dir, store) = temp_store(FIXTURE);
    let conflicts = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (store, conflicts) = (store.clone(), Arc::clone(&conflicts));
        tasks.push(tokio::spawn(async move {
            for _attempt in 0..1000 {
                let (text, etag) = store.read().await.expect("read");
                let new = apply(&text, &add_model(i)).expect("apply");
                match store.write_if(&etag, &new, no_validation).await {
                    Ok(_) => return,
                    Err(StoreError::Conflict { .. }) => {
                        conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => panic!("writer {i}: {e}"),
                }
            }
            panic!("writer {i} never got through");
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let (text, etag) = store.read().await.expect("read");
    assert_eq!(etag, Etag::of(text.as_bytes()));
    let v = parse(&text);
    let models = v["models"].as_mapping().expect("models map");
    assert_eq!(models.len(), 52, "{text}");
    for i in 0..50 {
        assert_eq!(
            v["models"][format!("m{i:02}").as_str()]["repo"],
            Value::String(format!("org/M{i}"))
        );
    }
    assert!(
        text.contains("# a solo model kept for experiments"),
        "comments kept"
    );
    eprintln!(
        "50 writers: {} conflicts retried",
        conflicts.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_revision_has_exactly_one_winner() {
    let (_dir, store) = temp_store(FIXTURE);
    for round in 0..5 {
        let (text, etag) = store.read().await.expect("read");
        let barrier = Arc::new(tokio::sync::Barrier::new(10));
        let mut tasks = Vec::new();
        for i in 0..10 {
            let (store, barrier, text, etag) = (
                store.clone(),
                Arc::clone(&barrier),
                text.clone(),
                etag.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let new = apply(&text, &add_model(round * 10 + i)).expect("apply");
                barrier.wait().await;
                store.write_if(&etag, &new, no_validation).await
            }));
        }
        let (mut won, mut lost) = (0, 0);
        for t in tasks {
            match t.await.expect("task") {
                Ok(_) => won += 1,
                Err(StoreError::Conflict { current_etag, .. }) => {
                    assert_ne!(current_etag, etag);
                    lost += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!((won, lost), (1, 9), "round {round}");
    }
    let v = parse(&store.read().await.expect("read").0);
    assert_eq!(v["models"].as_mapping().map(|m| m.len()), Some(2 + 5));
}

#[tokio::test]
async fn a_hand_edit_between_read_and_write_is_a_conflict() {
    let (dir, store) = temp_store(FIXTURE);
    let (text, etag) = store.read().await.expect("read");
    let ui_text = apply(&text, &edit(r#"{"op":"activate","model":"gemma4"}"#)).expect("apply");
    let hand = FIXTURE.replace("port: 8888", "port: 8899  # changed by hand");
    std::fs::write(dir.path().join("desired.yaml"), &hand).expect("hand edit");
    match store.write_if(&etag, &ui_text, no_validation).await {
        Err(StoreError::Conflict {
            current_text,
            current_etag,
        }) => {
            assert_eq!(current_text, hand);
            assert_eq!(current_etag, Etag::of(hand.as_bytes()));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(store.path()).expect("read"),
        hand,
        "hand edit kept"
    );
    let stale = store
        .edit(
            Some(&etag),
            &edit(r#"{"op":"activate","model":"gemma4"}"#),
            no_validation,
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })));
    let (merged, _) = store
        .edit(
            None,
            &edit(r#"{"op":"activate","model":"gemma4"}"#),
            no_validation,
        )
        .await
        .expect("edit");
    assert!(
        merged.contains("port: 8899  # changed by hand") && merged.contains("active_model: gemma4")
    );
}

#[tokio::test]
async fn invalid_results_are_not_written_and_create_if_missing_never_clobbers() {
    let (dir, store) = temp_store(FIXTURE);
    let (_, etag) = store.read().await.expect("read");
    let refuse = |_: &str| Err(vec!["active_model: unknown model `x` (line 17)".to_string()]);
    let r = store.write_if(&etag, "active_model: x\n", refuse).await;
    assert!(
        matches!(r, Err(StoreError::Invalid { ref errors }) if errors.len() == 1),
        "{r:?}"
    );
    assert_eq!(
        std::fs::read_to_string(store.path()).expect("read"),
        FIXTURE
    );
    assert!(!store
        .create_if_missing("version: 1\n")
        .await
        .expect("create"));
    assert_eq!(
        std::fs::read_to_string(store.path()).expect("read"),
        FIXTURE
    );
    let fresh = DesiredStore::new(dir.path().join("new.yaml"));
    assert!(fresh
        .create_if_missing("version: 1\n")
        .await
        .expect("create"));
    assert_eq!(fresh.read().await.expect("read").0, "version: 1\n");
    assert!(matches!(
        DesiredStore::new(dir.path().join("none.yaml")).read().await,
        Err(StoreError::Io { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_half_written_file_and_permissions_survive() {
    use std::os::unix::fs::PermissionsExt;
    let big = format!(
        "{FIXTURE}{}",
        "# padding line to make the document larger\n".repeat(2000)
    );
    let small = FIXTURE.replace("gemma", "gemma");
    let (dir, store) = temp_store(&small);
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, path, big, small) = (
            Arc::clone(&stop),
            store.path().to_path_buf(),
            big.clone(),
            small.clone(),
        );
        std::thread::spawn(move || {
            let mut reads = 0usize;
            while !stop.load(Ordering::Relaxed) && reads < 10_000_000 {
                let got = std::fs::read_to_string(&path).expect("file always exists");
                assert!(
                    got == big || got == small,
                    "torn read of {} bytes",
                    got.len()
                );
                reads += 1;
            }
            reads
        })
    };
    let mut etag = store.read().await.expect("read").1;
    for i in 0..200 {
        let next = if i % 2 == 0 { &big } else { &small };
        etag = store
            .write_if(&etag, next, no_validation)
            .await
            .expect("write");
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader saw only whole documents");
    assert!(reads > 0);
    let mode = std::fs::metadata(store.path())
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temp files left: {leftovers:?}");
    eprintln!("200 atomic writes, {reads} concurrent whole-document reads");
}
