//! Watching the desired file: the *directory* is watched, so editors' and `git checkout`'s
//! rename-over saves are seen, and bursts of events are merged into one trigger.
//!
//! Owns the notify watcher and its thread bridge; sends `()` on a channel when the file may
//! have changed. Does not read the file.

use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Keeps the watcher alive; dropping it stops watching.
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `file`'s directory; `tx` gets a message when an event concerns the file.
pub fn watch(file: &Path, tx: mpsc::Sender<()>) -> notify::Result<FileWatch> {
    let dir: PathBuf = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let relevant = match &res {
            // Reading the file is not changing it: the loop's own read after an event
            // would otherwise trigger the next (inotify reports opens and closes), a
            // busy loop of re-reads. A close after writing is a change.
            Ok(ev) if is_read(&ev.kind) => false,
            Ok(ev) => {
                ev.paths.is_empty()
                    || ev
                        .paths
                        .iter()
                        .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
            }
            Err(_) => true,
        };
        if relevant {
            // A full channel already holds a pending trigger: merging is the point.
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(FileWatch { _watcher: watcher })
}

/// Events that only say the file was opened, read or closed without writing.
fn is_read(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(
        kind,
        notify::EventKind::Access(a) if *a != AccessKind::Close(AccessMode::Write)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading the watched file triggers nothing (the loop re-reads after each trigger:
    /// counting its own reads as changes spun a core at rest); writing it does.
    #[tokio::test]
    async fn reads_do_not_trigger_writes_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("desired.yaml");
        std::fs::write(&file, "a: 1\n").expect("write");
        let (tx, mut rx) = mpsc::channel(1);
        let _w = watch(&file, tx).expect("watch");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        while rx.try_recv().is_ok() {}
        for _ in 0..20 {
            let _ = std::fs::read(&file).expect("read");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(rx.try_recv().is_err(), "a read triggered the loop");
        std::fs::write(&file, "a: 2\n").expect("write");
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await;
        assert!(matches!(got, Ok(Some(()))), "a write did not trigger");
    }
}
