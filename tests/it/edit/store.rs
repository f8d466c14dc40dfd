//! Integration tests of `edit::store`: concurrent writers, hand edits, atomic writes.

use super::{edit, parse, FIXTURE};
use serde_yaml::Value;
use spark_control::edit::{apply, DesiredEdit, DesiredStore, Etag, StoreError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

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
    let small = FIXTURE.to_string();
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
