//! Comment preservation through every targeted-edit route: one hand-written, commented
//! fixture keeps every comment (except those on an entry a route removes) and gets the
//! intended value, route after route.

use super::{commented_fixture, TestApp};
use serde_yaml::Value;

const J: (&str, &str) = ("content-type", "application/json");

/// (method, path, body, dotted path to check, expected YAML value there or `~absent`).
const STEPS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "POST",
        "/api/models/tiny/activate",
        "",
        "active_model",
        "tiny",
    ),
    (
        "PUT",
        "/api/models/qwen36/overrides",
        r#"{"max_context":65536,"fp8_kv_cache":null}"#,
        "overrides.qwen36.max_context",
        "65536",
    ),
    (
        "PUT",
        "/api/models/tiny/overrides",
        r#"{"gpu_memory":0.5}"#,
        "overrides.tiny.gpu_memory",
        "0.5",
    ),
    (
        "POST",
        "/api/models",
        r#"{"name":"extra","repo":"org/Extra-7B","mode":"solo"}"#,
        "models.extra.repo",
        "org/Extra-7B",
    ),
    ("DELETE", "/api/models/extra", "", "models.extra", "~absent"),
    (
        "PUT",
        "/api/services/magpie",
        r#"{"running":false,"port":9001}"#,
        "services.magpie.port",
        "9001",
    ),
    (
        "PUT",
        "/api/updates/policy",
        r#"{"policy":"auto"}"#,
        "updates.launcher",
        "auto",
    ),
    (
        "PUT",
        "/api/hosts/spark3",
        r#"{"address":"127.0.0.11","port":1}"#,
        "hosts.spark3.address",
        "127.0.0.11",
    ),
    (
        "PUT",
        "/api/cluster",
        r#"{"workers":["spark2","spark3"]}"#,
        "cluster.workers",
        "[spark2, spark3]",
    ),
    (
        "PUT",
        "/api/cluster",
        r#"{"workers":["spark2"]}"#,
        "cluster.workers",
        "[spark2]",
    ),
    ("DELETE", "/api/hosts/spark3", "", "hosts.spark3", "~absent"),
    (
        "POST",
        "/api/desired/edit",
        r#"{"op":"place_service","service":"parakeet","host":"spark1"}"#,
        "services.parakeet.host",
        "spark1",
    ),
    (
        "POST",
        "/api/desired/edit",
        r#"{"op":"activate","model":null}"#,
        "active_model",
        "null",
    ),
];

fn comments(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.find('#').map(|i| l[i..].trim().to_string()))
        .collect()
}

fn at<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |cur, k| cur.get(k))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edit_route_keeps_the_comments() {
    let fixture = commented_fixture();
    let t = TestApp::start(&fixture, None).await;
    let want = comments(&fixture);
    assert!(want.len() >= 15, "the fixture has comments: {want:?}");
    for (method, path, body, check, expected) in STEPS {
        let headers: &[(&str, &str)] = if body.is_empty() { &[] } else { &[J] };
        let r = t.call(method, path, headers, body.to_string()).await;
        assert!(
            r.status.is_success(),
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
        assert_eq!(r.json()["changed"], true, "{method} {path}");
        let text = t.file();
        assert_eq!(
            r.header("etag"),
            Some(t.desired().await.1),
            "ETag of the write"
        );
        let v = spark_control::model::validate_text("desired.yaml", &text);
        assert!(
            v.is_ok(),
            "{method} {path} left an invalid file: {:?}",
            v.diagnostics
        );
        for c in &want {
            assert!(
                text.contains(c.as_str()),
                "{method} {path} lost the comment {c:?}:\n{text}"
            );
        }
        let tree: Value = serde_yaml::from_str(&text).expect("YAML");
        let got = at(&tree, check);
        if *expected == "~absent" {
            assert!(got.is_none(), "{method} {path}: {check} still there");
        } else {
            let exp: Value = serde_yaml::from_str(expected).expect("expected YAML");
            assert_eq!(got, Some(&exp), "{method} {path}: {check}\n{text}");
        }
    }
}

/// Three deployments over two unreachable hosts, with comments: two solo ones serving,
/// `big` over both idle.
const DEPLOYMENTS: &str = "\
# two solo deployments; big takes both hosts
version: 1
hosts:
  spark1: { address: 127.0.0.9, port: 1 }   # head of coder
  spark2: { address: 127.0.0.10, port: 1 }  # head of vision
deployments:
  - name: coder      # the coding model
    head: spark1
    active_model: qwen36
  - name: vision
    head: spark2
    port: 8889
    active_model: qwen3-vl   # eyes
  - name: big        # tensor-parallel over both
    head: spark1
    workers: [spark2]
    active_model: null
ssh: { connect_timeout_secs: 1 }
";

/// One deployment's model through `set_deployment_model`: previewed first (the changes in
/// words, the plan, nothing written), then applied with the preview's ETag; choosing the
/// cluster deployment stops the two solo ones in the same edit, comments kept. Unknown
/// deployments are 404s naming those that exist; an invalid result is a 422 with its
/// diagnostics and leaves the file alone; the older shape's one deployment is `default`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_models_are_previewed_then_set() {
    let t = TestApp::start(DEPLOYMENTS, None).await;
    t.wait_ready().await;
    let before = t.file();
    let big = r#"{"op":"set_deployment_model","deployment":"big","model":"qwen3-235b-fp8"}"#;
    let r = t.call("POST", "/api/desired/preview", &[J], big).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json();
    assert_eq!(t.file(), before, "a preview writes nothing");
    assert_eq!(p["unchanged"], false);
    let changes: Vec<&str> = p["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(
        changes,
        [
            "coder: stop qwen36 (no active model)",
            "vision: stop qwen3-vl (no active model)",
            "big: activate qwen3-235b-fp8 on spark1+spark2"
        ],
        "{p}"
    );
    assert!(p["plan"]["text"].is_string(), "{p}");
    let etag = p["etag"].as_str().expect("etag").to_string();
    assert_eq!(
        etag,
        t.desired().await.1,
        "the preview names the file it read"
    );

    let r = t
        .call("POST", "/api/desired/edit", &[J, ("if-match", &etag)], big)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = t.file();
    for c in comments(DEPLOYMENTS) {
        assert!(text.contains(&c), "lost {c:?}:\n{text}");
    }
    assert_eq!(
        crate::harness::active_models(&text),
        [
            ("coder".to_string(), None),
            ("vision".to_string(), None),
            ("big".to_string(), Some("qwen3-235b-fp8".to_string()))
        ]
    );
    // The same edit again: already in force.
    let r = t.call("POST", "/api/desired/preview", &[J], big).await;
    assert_eq!(r.json()["unchanged"], true, "{}", r.text());

    // Unknown deployment: 404 naming those there are.
    let r = t
        .call(
            "POST",
            "/api/desired/preview",
            &[J],
            r#"{"op":"set_deployment_model","deployment":"nope","model":"qwen36"}"#,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("coder, vision, big"), "{}", r.text());
    // A cluster model on a one-host deployment: 422 with diagnostics, nothing written.
    let text = t.file();
    let r = t
        .call(
            "POST",
            "/api/desired/edit",
            &[J],
            r#"{"op":"set_deployment_model","deployment":"vision","model":"qwen3-235b-fp8"}"#,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.json()["error"]["diagnostics"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        r.text()
    );
    assert_eq!(t.file(), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_older_shapes_one_deployment_is_default() {
    let t = TestApp::start(&commented_fixture(), None).await;
    let r = t
        .call(
            "POST",
            "/api/desired/edit",
            &[J],
            r#"{"op":"set_deployment_model","deployment":"default","model":"gemma4"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tree: Value = serde_yaml::from_str(&t.file()).expect("YAML");
    assert_eq!(tree["active_model"], Value::from("gemma4"));
    assert!(tree.get("deployments").is_none(), "the shape is kept");
}
