//! Concurrent read-modify-write through the HTTP routes: one winner per revision, 409 for
//! the rest, nothing lost; a hand edit between GET and PUT is detected.

use std::collections::HashMap;
use std::sync::Arc;

use super::{TestApp, DESIRED};
use spark_control::edit::{apply, DesiredEdit};

const J: (&str, &str) = ("content-type", "application/json");

/// One writer: read, change, write with If-Match; on 409 rebase on the returned text.
/// Even writers PUT the whole file, odd ones POST the targeted edit. Returns every
/// attempt as (base ETag, won?).
async fn writer(
    t: Arc<TestApp>,
    i: usize,
    start: Arc<tokio::sync::Barrier>,
) -> Vec<(String, bool)> {
    let (mut text, mut etag) = t.desired().await;
    start.wait().await;
    let mut attempts = Vec::new();
    for _ in 0..500 {
        let r = if i.is_multiple_of(2) {
            let edit = DesiredEdit::AddModel {
                name: format!("w{i:02}"),
                repo: format!("org/W{i}"),
                mode: "solo".into(),
            };
            let new = apply(&text, &edit).expect("apply");
            t.call("PUT", "/api/desired", &[("if-match", etag.as_str())], new)
                .await
        } else {
            let body = format!(r#"{{"name":"w{i:02}","repo":"org/W{i}"}}"#);
            t.call(
                "POST",
                "/api/models",
                &[J, ("if-match", etag.as_str())],
                body,
            )
            .await
        };
        match r.status.as_u16() {
            200 | 201 => {
                attempts.push((etag, true));
                return attempts;
            }
            409 => {
                attempts.push((etag, false));
                let e = r.json();
                text = e["error"]["current_text"]
                    .as_str()
                    .expect("current_text")
                    .to_string();
                etag = e["error"]["current_etag"]
                    .as_str()
                    .expect("current_etag")
                    .to_string();
                assert_eq!(r.header("etag").as_deref(), Some(etag.as_str()));
            }
            other => panic!("writer {i}: unexpected {other}: {}", r.text()),
        }
    }
    panic!("writer {i} never got through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_writers_one_winner_per_revision() {
    let t = Arc::new(TestApp::start(DESIRED, None).await);
    let start = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| tokio::spawn(writer(t.clone(), i, start.clone())))
        .collect();
    let mut per_revision: HashMap<String, (usize, usize)> = HashMap::new();
    let mut first_round = (0, 0);
    let first_etag = Etag::of(DESIRED);
    for task in tasks {
        for (etag, won) in task.await.expect("writer") {
            let e = per_revision.entry(etag.clone()).or_default();
            if won {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
            if etag == first_etag {
                if won {
                    first_round.0 += 1;
                } else {
                    first_round.1 += 1;
                }
            }
        }
    }
    // Every writer read the same first revision: exactly one of them won it.
    assert_eq!(first_round, (1, 49), "first revision: (winners, 409s)");
    // Every revision anyone wrote against had exactly one winner (the last one: none).
    let winners: usize = per_revision.values().map(|v| v.0).sum();
    assert_eq!(winners, 50);
    assert!(per_revision.values().all(|v| v.0 <= 1), "{per_revision:?}");
    assert_eq!(per_revision.values().filter(|v| v.0 == 1).count(), 50);
    let (text, _) = t.desired().await;
    let v = spark_control::model::validate_text("desired.yaml", &text);
    assert!(v.is_ok(), "{:?}", v.diagnostics);
    let d = v.desired.expect("valid");
    for i in 0..50 {
        assert_eq!(
            d.models.get(&format!("w{i:02}")).map(|m| m.repo.as_str()),
            Some(format!("org/W{i}").as_str())
        );
    }
    assert!(text.contains("# test cluster") && text.contains("# head"));
}

struct Etag;
impl Etag {
    fn of(text: &str) -> String {
        spark_control::edit::Etag::of(text.as_bytes()).to_string()
    }
}

#[tokio::test]
async fn hand_edit_between_get_and_put_is_a_conflict() {
    let t = TestApp::start(DESIRED, None).await;
    let (text, etag) = t.desired().await;
    let hand = text.replace("# head", "# head, edited by hand");
    std::fs::write(&t.path, &hand).expect("hand edit");
    // Whole-file PUT.
    let mine = text.replace("active_model: qwen36", "active_model: gemma4");
    let r = t
        .call("PUT", "/api/desired", &[("if-match", etag.as_str())], mine)
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"]["current_text"], hand);
    // Targeted edit with the stale ETag.
    let r = t
        .call(
            "POST",
            "/api/models/gemma4/activate",
            &[("if-match", etag.as_str())],
            "",
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"]["current_text"], hand);
    assert_eq!(t.file(), hand, "the hand edit is kept");
    // Without If-Match the edit applies on top of the hand edit.
    let r = t.call("POST", "/api/models/gemma4/activate", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let f = t.file();
    assert!(
        f.contains("# head, edited by hand") && f.contains("active_model: gemma4"),
        "{f}"
    );
}
