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
