//! Safety at the web edge: oversized names and arguments, oversized bodies and bodies of
//! the wrong JSON type get a 4xx in the JSON error shape with a short message, and the
//! desired file on disk is unchanged.

use axum::http::StatusCode;

use super::{Resp, TestApp, DESIRED, TOKEN};

const A: (&str, &str) = ("authorization", "Bearer s3cret-admin-token");
const J: (&str, &str) = ("content-type", "application/json");

/// A 4xx (`status`) in the JSON error shape, with `code`, a short message containing every
/// `needle`, and the desired file as it was.
fn refused(t: &TestApp, r: &Resp, status: u16, code: &str, needles: &[&str]) {
    assert_eq!(
        r.status.as_u16(),
        status,
        "{}",
        &r.text()[..r.text().len().min(500)]
    );
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json"),
        "{}",
        &r.text()[..r.text().len().min(500)]
    );
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(
        msg.len() < 600,
        "a {}-byte message: {}…",
        msg.len(),
        &msg[..300]
    );
    for n in needles {
        assert!(msg.contains(n), "`{n}` not in: {msg}");
    }
    assert!(r.body.len() < 8 * 1024, "a {}-byte response", r.body.len());
    assert_eq!(t.file(), DESIRED, "the desired file must be unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_names_and_arguments_are_4xx_with_short_messages() {
    let _ = TOKEN;
    let t = TestApp::start(DESIRED, Some(TOKEN)).await;
    let huge = "m".repeat(1_900_000);
    let body = format!(r#"{{"name":"{huge}","repo":"org/x"}}"#);
    let r = t.call("POST", "/api/models", &[A, J], body).await;
    refused(
        &t,
        &r,
        422,
        "invalid_desired_state",
        &["models.mmmm", "1900000 bytes", "63"],
    );

    let long = "m".repeat(10_000);
    let r = t
        .call("POST", &format!("/api/models/{long}/activate"), &[A], "")
        .await;
    refused(
        &t,
        &r,
        422,
        "invalid_desired_state",
        &["active_model", "10000 bytes", "63"],
    );

    let arg = "A".repeat(1_000_000);
    let body = format!(r#"{{"extra_args":["{arg}"]}}"#);
    let r = t
        .call("PUT", "/api/models/qwen36/overrides", &[A, J], body)
        .await;
    refused(
        &t,
        &r,
        422,
        "invalid_desired_state",
        &["overrides.qwen36.extra_args[0]", "1000000 bytes", "4096"],
    );

    // A whole file whose active model is 1.9 MB: one short diagnostic.
    let (_, etag) = t.desired().await;
    let text = format!("version: 1\nactive_model: {huge}\n");
    let r = t
        .call("PUT", "/api/desired", &[A, ("if-match", &etag)], text)
        .await;
    refused(
        &t,
        &r,
        422,
        "invalid_desired_state",
        &["at most 1048576 bytes"],
    );

    // An unknown edit whose `op` is huge: serde quotes it whole; the message is clipped.
    let body = format!(r#"{{"op":"{huge}"}}"#);
    let r = t.call("POST", "/api/desired/edit", &[A, J], body).await;
    refused(&t, &r, 422, "wrong_shape", &["unknown variant", "bytes)"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_desired_file_is_a_json_413() {
    let t = TestApp::start(DESIRED, Some(TOKEN)).await;
    let (_, etag) = t.desired().await;
    let text = format!("version: 1\n# {}\n", "x".repeat(3 * 1024 * 1024));
    let r = t
        .call("PUT", "/api/desired", &[A, ("if-match", &etag)], text)
        .await;
    refused(
        &t,
        &r,
        413,
        "body_too_large",
        &["request body", "larger than this route accepts"],
    );
    assert_eq!(r.json()["error"]["type"], "payload_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_of_the_wrong_type_are_422() {
    let t = TestApp::start(DESIRED, Some(TOKEN)).await;
    // serde reads a list into a struct field by field: `[65536]` was max_context = 65536.
    for body in ["[65536]", "[]", "\"max_context\"", "7", "null"] {
        let r = t
            .call("PUT", "/api/models/qwen36/overrides", &[A, J], body)
            .await;
        refused(
            &t,
            &r,
            422,
            "not_an_object",
            &["the body must be a JSON object"],
        );
    }
    let r = t
        .call(
            "PUT",
            "/api/models/qwen36/overrides",
            &[A, J],
            r#"{"max_context":"big"}"#,
        )
        .await;
    refused(&t, &r, 422, "wrong_shape", &["max_context", "invalid type"]);
    // Every JSON body route.
    for (method, uri) in [
        ("POST", "/api/desired/edit"),
        ("POST", "/api/models"),
        ("PUT", "/api/services/parakeet"),
        ("PUT", "/api/updates/policy"),
        ("PUT", "/api/hosts/spark3"),
        ("PUT", "/api/cluster"),
        ("POST", "/api/downloads"),
    ] {
        let r = t.call(method, uri, &[A, J], "[\"x\"]").await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {uri}: {}",
            r.text()
        );
        refused(&t, &r, 422, "not_an_object", &["JSON object", "a list"]);
    }
    // Not JSON at all is still a 400.
    let r = t
        .call("PUT", "/api/models/qwen36/overrides", &[A, J], "[1,")
        .await;
    refused(&t, &r, 400, "malformed", &["not JSON"]);
}
